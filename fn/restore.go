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
	tables, restore := restoreCommands(e)
	return restoreScriptFor(tables, restore, e.DumpExt)
}

// restoreCommands are the engine's commands that count the tables and
// load a backup.
func restoreCommands(e engine) (tables, restore string) {
	return e.RestoreTables, e.Restore
}

func restoreScriptFor(tables, restore, ext string) string {
	return strings.NewReplacer("@TABLES@", tables, "@RESTORE@", restore, "@EXT@", ext).Replace(restoreScript)
}
