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
	return strings.NewReplacer("@SCRATCH@", e.Scratch, "@DUMP@", e.Dump, "@COUNT@", e.Count,
		"@RESTORE_SCRIPT@", RestoreScript(e)).Replace(verifyScript)
}

func restoreScriptFor(tables, restore, ext string) string {
	return strings.NewReplacer("@TABLES@", tables, "@RESTORE@", restore, "@EXT@", ext).Replace(restoreScript)
}
