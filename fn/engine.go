package fn

import (
	v1 "github.com/dbplane/dbplane/apis/v1"
)

// An engine is everything that differs between MySQL and PostgreSQL. Builders
// read it; they never switch on the engine themselves.
type engine struct {
	// Versions this engine supports, keyed by spec.version.
	Versions map[string]release

	Port     int32
	PortName string
	// UID and GID the official image's server runs as.
	UID int64

	// Superuser is the administrative login whose password the composed
	// Secret holds.
	Superuser string

	// ConfigKey is the file name in the ConfigMap, mounted at ConfigDir.
	ConfigKey string
	ConfigDir string
	// Args start the server with our configuration.
	Args []string

	// PasswordEnv are environment variables the image and its client tools
	// read the superuser password from. All come from the Secret.
	PasswordEnv []string
	// ClientPasswordEnv is the variable the client tools read it from.
	ClientPasswordEnv string
	// Env are literal, non-secret environment variables. DataDirEnv, when
	// set, is given the release's DataDir.
	Env        map[string]string
	DataDirEnv string

	// Probes, run inside the server container. Startup waits out first
	// initialisation (which listens on no TCP port); liveness asks whether the
	// server answers; readiness runs a query over TCP with the password.
	StartupProbe   []string
	LivenessProbe  []string
	ReadinessProbe []string

	// Exporter is the Prometheus exporter sidecar for monitoring.metrics.
	Exporter exporter

	// Dump is the shell pipeline stage that writes a logical backup of
	// $DATABASE to stdout; DumpExt names its format in the file name.
	Dump    string
	DumpExt string
	// RestoreTables prints the number of tables in $DATABASE; Restore is
	// the pipeline stage that loads the SQL on stdin into $DATABASE,
	// stopping at the first error. Both read the password from
	// ClientPasswordEnv.
	RestoreTables string
	Restore       string

	// Config renders the server configuration file for a tuning profile.
	Config func(t tuning) string
}

// A release is one supported major version of an engine.
type release struct {
	Image string
	// DataMount is where the data volume is mounted, DataSubPath the
	// volume's sub directory mounted there, and DataDir the directory the
	// server keeps its files in.
	DataMount   string
	DataSubPath string
	DataDir     string
	// EndOfLife, when set, is reported as a warning.
	EndOfLife string
}

// An exporter is a Prometheus metrics sidecar.
type exporter struct {
	Image       string
	Port        int32
	Args        []string
	Env         map[string]string
	PasswordEnv string
}

// pgRelease is a PostgreSQL release of the official image. Before 18 the image
// keeps PGDATA at /var/lib/postgresql/data; we use a sub directory so that a
// volume's lost+found does not stop initdb. From 18 on the image expects the
// volume at /var/lib/postgresql and keeps PGDATA at /var/lib/postgresql/18/docker.
func pgRelease(v string) release {
	r := release{
		Image:     "docker.io/library/postgres:" + v,
		DataMount: "/var/lib/postgresql/data",
		DataDir:   "/var/lib/postgresql/data/pgdata",
	}
	if v >= "18" {
		r.DataMount = "/var/lib/postgresql"
		r.DataDir = "/var/lib/postgresql/" + v + "/docker"
	}
	return r
}

// engines is the engine table. The official images run their servers as UID
// 999 and accept a non-root start when the data directory is writable.
var engines = map[v1.Engine]engine{
	v1.PostgreSQL: {
		Versions: map[string]release{
			"14": pgRelease("14"),
			"15": pgRelease("15"),
			"16": pgRelease("16"),
			"17": pgRelease("17"),
			"18": pgRelease("18"),
		},
		Port:              5432,
		PortName:          "postgresql",
		UID:               999,
		Superuser:         "postgres",
		ConfigKey:         "postgresql.conf",
		ConfigDir:         "/etc/dbplane",
		Args:              []string{"-c", "config_file=/etc/dbplane/postgresql.conf"},
		PasswordEnv:       []string{"POSTGRES_PASSWORD", "PGPASSWORD"},
		ClientPasswordEnv: "PGPASSWORD",
		Env:               map[string]string{"POSTGRES_USER": "postgres", "POSTGRES_DB": appDatabase, "PGUSER": "postgres"},
		DataDirEnv:        "PGDATA",

		StartupProbe:   []string{"pg_isready", "--host=127.0.0.1", "--port=5432", "--username=postgres", "--dbname=postgres"},
		LivenessProbe:  []string{"pg_isready", "--host=127.0.0.1", "--port=5432", "--username=postgres", "--dbname=postgres"},
		ReadinessProbe: []string{"psql", "--host=127.0.0.1", "--port=5432", "--username=postgres", "--dbname=postgres", "--no-psqlrc", "--tuples-only", "--command=SELECT 1"},

		Exporter: exporter{
			Image: "quay.io/prometheuscommunity/postgres-exporter:v0.17.1",
			Port:  9187,
			Env: map[string]string{
				"DATA_SOURCE_URI":  "127.0.0.1:5432/postgres?sslmode=disable",
				"DATA_SOURCE_USER": "postgres",
			},
			PasswordEnv: "DATA_SOURCE_PASS",
		},

		// --clean --if-exists: a load drops each object the dump holds
		// before creating it, as mysqldump does for tables, so that a
		// forced restore replaces them rather than fails on them.
		Dump:    `pg_dump --host="${DB_HOST}" --port="${DB_PORT}" --username="${DB_USER}" --dbname="${DATABASE}" --no-password --format=plain --no-owner --no-privileges --clean --if-exists`,
		DumpExt: "sql",
		// The dump holds no CREATE DATABASE: it loads into $DATABASE, which
		// the image creates, in one transaction, so a failed load changes
		// nothing.
		RestoreTables: `psql --host="${DB_HOST}" --port="${DB_PORT}" --username="${DB_USER}" --dbname="${DATABASE}" --no-password --no-psqlrc --tuples-only --no-align --set=ON_ERROR_STOP=1 --command="SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"`,
		Restore:       `psql --host="${DB_HOST}" --port="${DB_PORT}" --username="${DB_USER}" --dbname="${DATABASE}" --no-password --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --single-transaction --file=- --output=/dev/null`,
		Config:        postgresqlConf,
	},
	v1.MySQL: { //nolint:gosec // Names of environment variables and the superuser, no credential.
		Versions: map[string]release{
			"8.0": {Image: "docker.io/library/mysql:8.0", DataMount: "/var/lib/mysql", DataSubPath: "mysql", DataDir: "/var/lib/mysql", EndOfLife: "MySQL 8.0 reached its end of life in April 2026 and gets no more security fixes: move to 8.4"},
			"8.4": {Image: "docker.io/library/mysql:8.4", DataMount: "/var/lib/mysql", DataSubPath: "mysql", DataDir: "/var/lib/mysql"},
		},
		Port:              3306,
		PortName:          "mysql",
		UID:               999,
		Superuser:         "root",
		ConfigKey:         "dbplane.cnf",
		ConfigDir:         "/etc/mysql/conf.d",
		PasswordEnv:       []string{"MYSQL_ROOT_PASSWORD", "MYSQL_PWD"},
		ClientPasswordEnv: "MYSQL_PWD",
		Env:               map[string]string{"MYSQL_DATABASE": appDatabase},

		StartupProbe:   []string{"mysqladmin", "--protocol=TCP", "--host=127.0.0.1", "--port=3306", "--user=root", "ping"},
		LivenessProbe:  []string{"mysqladmin", "--protocol=TCP", "--host=127.0.0.1", "--port=3306", "--user=root", "ping"},
		ReadinessProbe: []string{"mysql", "--protocol=TCP", "--host=127.0.0.1", "--port=3306", "--user=root", "--batch", "--skip-column-names", "--execute=SELECT 1"},

		Exporter: exporter{ //nolint:gosec // The name of the password variable, no credential.
			Image:       "docker.io/prom/mysqld-exporter:v0.17.2",
			Port:        9104,
			Args:        []string{"--mysqld.address=127.0.0.1:3306", "--mysqld.username=root"},
			PasswordEnv: "MYSQLD_EXPORTER_PASSWORD",
		},

		// --set-gtid-purged=OFF: with gtid_mode=ON Oracle's mysqldump would
		// write SET @@GLOBAL.GTID_PURGED and SQL_LOG_BIN=0, so the dump could
		// not be loaded back into its own server (ERROR 3546) and a load
		// would not reach replicas. --loose- because MariaDB's mysqldump,
		// which test/integration runs, does not know the flag.
		Dump:    `mysqldump --protocol=TCP --host="${DB_HOST}" --port="${DB_PORT}" --user="${DB_USER}" --loose-set-gtid-purged=OFF --single-transaction --routines --triggers --events --hex-blob --databases "${DATABASE}"`,
		DumpExt: "sql",
		// The dump (mysqldump --databases) creates $DATABASE if need be and
		// selects it. Each INSERT must fit the server's max_allowed_packet
		// (64MB by default in MySQL 8): with --hex-blob a BLOB takes twice
		// its size.
		RestoreTables: `mysql --protocol=TCP --host="${DB_HOST}" --port="${DB_PORT}" --user="${DB_USER}" --batch --skip-column-names --execute="SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${DATABASE}'"`,
		Restore:       `mysql --protocol=TCP --host="${DB_HOST}" --port="${DB_PORT}" --user="${DB_USER}" --default-character-set=utf8mb4`,
		Config:        myCnf,
	},
}
