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

func restoreScriptFor(tables, restore, ext string) string {
	return strings.NewReplacer("@TABLES@", tables, "@RESTORE@", restore, "@EXT@", ext).Replace(restoreScript)
}
