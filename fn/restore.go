package fn

import (
	_ "embed"
	"strings"
)

//go:embed scripts/restore.sh
var restoreScript string

// A restorer is how an engine's client loads a backup. Both are shell
// command lines that read the password from the engine's ClientPasswordEnv.
type restorer struct {
	// Tables prints the number of tables in $DATABASE.
	Tables string
	// Restore is the pipeline stage that loads the SQL on stdin into
	// $DATABASE, stopping at the first error.
	Restore string
}

// restorers are keyed by engine PortName.
//
// TODO: move these into the engine table as Tables and Restore, next
// to Dump.
var restorers = map[string]restorer{
	// The dump holds no CREATE DATABASE: it loads into $DATABASE, which the
	// image creates. It loads in one transaction, so a failed load changes
	// nothing.
	"postgresql": {
		Tables:  `psql --host="${DB_HOST}" --port="${DB_PORT}" --username="${DB_USER}" --dbname="${DATABASE}" --no-password --no-psqlrc --tuples-only --no-align --set=ON_ERROR_STOP=1 --command="SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"`,
		Restore: `psql --host="${DB_HOST}" --port="${DB_PORT}" --username="${DB_USER}" --dbname="${DATABASE}" --no-password --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --single-transaction --file=- --output=/dev/null`,
	},
	// The dump (mysqldump --databases) creates $DATABASE if need be and
	// selects it. The client's packet limit is raised so that it is never
	// the limit: a hex-encoded BLOB row is twice its size.
	"mysql": {
		Tables:  `mysql --protocol=TCP --host="${DB_HOST}" --port="${DB_PORT}" --user="${DB_USER}" --batch --skip-column-names --execute="SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${DATABASE}'"`,
		Restore: `mysql --protocol=TCP --host="${DB_HOST}" --port="${DB_PORT}" --user="${DB_USER}" --default-character-set=utf8mb4 --max-allowed-packet=1G`,
	},
}

// RestoreScript is the shell script that restores a backup written by the
// engine's BackupScript.
func RestoreScript(e engine) string {
	return restoreScriptFor(restorers[e.PortName], e.DumpExt)
}

func restoreScriptFor(r restorer, ext string) string {
	return strings.NewReplacer("@TABLES@", r.Tables, "@RESTORE@", r.Restore, "@EXT@", ext).Replace(restoreScript)
}
