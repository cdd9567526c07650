package fn

import (
	_ "embed"
	"strings"
)

//go:embed scripts/restore.sh
var restoreScript string

// RestoreScript is the shell script that restores a backup written by the
// engine's BackupScript.
func RestoreScript(e engine) string {
	return restoreScriptFor(e.RestoreTables, e.Restore, e.DumpExt)
}

//go:embed scripts/verify.sh
var verifyScript string

// VerifyScript is the shell script that restores the newest backup into a
// scratch server and compares it with its manifest.
func VerifyScript(e engine) string {
	return strings.NewReplacer("@SCRATCH@", e.Scratch, "@DUMP@", scratchClient(e.Dump), "@COUNT@", e.Count,
		"@RESTORE_SCRIPT@", restoreScriptFor(scratchClient(e.RestoreTables), scratchClient(e.Restore), e.DumpExt)).Replace(verifyScript)
}

// scratchClient is cmd, a client of the Database's servers, made a client
// of verify.sh's scratch server: over loopback inside the verify pod, with
// no TLS, since the scratch server has no certificate (the Database's
// clients verify its servers' certificates, which name other hosts and
// whose keys the verify pod does not hold). PostgreSQL's clients take
// their TLS from the environment, which verify.sh sets for the scratch
// server.
func scratchClient(cmd string) string {
	return strings.ReplaceAll(cmd, mysqlClientTLS, mysqlScratchClient)
}

// mysqlScratchClient turns TLS off in MySQL 8 (ssl-mode) and MariaDB
// (skip-ssl) clients; each ignores the other's option.
const mysqlScratchClient = `--loose-ssl-mode=DISABLED --loose-skip-ssl`

func restoreScriptFor(tables, restore, ext string) string {
	return strings.NewReplacer("@TABLES@", tables, "@RESTORE@", restore, "@EXT@", ext, "@LOCK@", volumeLock()).Replace(restoreScript)
}
