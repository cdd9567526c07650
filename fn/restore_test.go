package fn

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

var placeholder = regexp.MustCompile(`@[A-Z]+@`)

// TestScripts checks every engine's backup and restore scripts are complete
// and parse. test/integration runs them against real servers.
func TestScripts(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found")
	}
	for _, typ := range []v1.Engine{v1.PostgreSQL, v1.MySQL} {
		e := engines[typ]
		if tables, restore := e.RestoreTables, e.Restore; tables == "" || restore == "" {
			t.Errorf("%s: want restore commands, got tables %q, restore %q", typ, tables, restore)
		}
		for name, script := range map[string]string{"BackupScript": BackupScript(e), "RestoreScript": RestoreScript(e), "VerifyScript": VerifyScript(e)} {
			if got := placeholder.FindAllString(script, -1); len(got) > 0 {
				t.Errorf("%s(%s): placeholders left: %v", name, typ, got)
			}
			cmd := exec.CommandContext(t.Context(), bash, "-n") //nolint:gosec // bash from PATH, checking our own script.
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s(%s): bash -n: %v\n%s", name, typ, err, out)
			}
		}
	}
}

// Stubs replace the engine's clients: the database has $STUB_TABLES tables
// and a load writes the SQL to $STUB_OUT.
const (
	stubTables  = `echo "${STUB_TABLES}"`
	stubRestore = `cat > "${STUB_OUT}"`
)

// A backup file for the stubbed restore: name, content and whether its
// checksum file is written, and for which name.
type backupFile struct {
	Name    string
	SQL     string
	SumFor  string
	Corrupt bool
}

// TestRestoreScript runs the restore script with stubbed clients: which file
// it picks, what it verifies, what it refuses.
func TestRestoreScript(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found")
	}
	const (
		older = "app-20261120T020000Z.sql.gz"
		newer = "app-20261121T020000Z.sql.gz"
	)
	good := func(name, sql string) backupFile { return backupFile{Name: name, SQL: sql, SumFor: name} }
	type want struct {
		Loaded string
		Err    string
	}
	cases := map[string]struct {
		reason string
		files  []backupFile
		from   string
		tables string
		force  string
		want   want
	}{
		"LatestByName": {
			reason: "latest is the newest by the UTC timestamp in the name, whatever the files' times.",
			files:  []backupFile{good(newer, "newer"), good(older, "older")},
			from:   "latest",
			tables: "0",
			want:   want{Loaded: "newer"},
		},
		"ByName": {
			reason: "A named backup is loaded, not the newest.",
			files:  []backupFile{good(newer, "newer"), good(older, "older")},
			from:   older,
			tables: "0",
			want:   want{Loaded: "older"},
		},
		"IgnoresTemporaryFiles": {
			reason: "A backup being written (.name.partial) is not a backup.",
			files:  []backupFile{good(older, "older"), good("."+newer+".partial", "partial")},
			from:   "latest",
			tables: "0",
			want:   want{Loaded: "older"},
		},
		"Corrupt": {
			reason: "A backup that does not match its checksum is not loaded.",
			files:  []backupFile{{Name: newer, SQL: "newer", SumFor: newer, Corrupt: true}, good(older, "older")},
			from:   "latest",
			tables: "0",
			want:   want{Err: "checksum mismatch"},
		},
		"NoChecksum": {
			reason: "A backup without a checksum is not loaded.",
			files:  []backupFile{{Name: newer, SQL: "newer"}},
			from:   "latest",
			tables: "0",
			want:   want{Err: newer + ".sha256 is missing"},
		},
		"ChecksumForAnotherFile": {
			reason: "A checksum file must name its backup.",
			files:  []backupFile{{Name: newer, SQL: "newer", SumFor: older}},
			from:   newer,
			tables: "0",
			want:   want{Err: "is not a sha256sum line for " + newer},
		},
		"NotFound": {
			reason: "A named backup must exist.",
			files:  []backupFile{good(older, "older")},
			from:   newer,
			tables: "0",
			want:   want{Err: "cannot find " + newer},
		},
		"NoBackups": {
			reason: "latest needs a backup.",
			from:   "latest",
			tables: "0",
			want:   want{Err: "cannot find a backup of app"},
		},
		"Path": {
			reason: "RESTORE_FROM is a file name in BACKUP_DIR, not a path.",
			files:  []backupFile{good(older, "older")},
			from:   "./" + older,
			tables: "0",
			want:   want{Err: "RESTORE_FROM must be latest or a file name matching"},
		},
		"HasTables": {
			reason: "A database that has tables is refused.",
			files:  []backupFile{good(older, "older")},
			from:   "latest",
			tables: "3",
			want:   want{Err: "refusing to restore into app: it already has 3 table(s)"},
		},
		"HasTablesForced": {
			reason: "RESTORE_FORCE=true loads into a database that has tables.",
			files:  []backupFile{good(older, "older")},
			from:   "latest",
			tables: "3",
			force:  "true",
			want:   want{Loaded: "older"},
		},
		"CannotCountTables": {
			reason: "A client that answers nonsense stops the restore.",
			files:  []backupFile{good(older, "older")},
			from:   "latest",
			tables: "ERROR",
			want:   want{Err: "cannot count the tables of app"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for i, f := range tc.files {
				writeBackup(t, dir, f, time.Now().Add(time.Duration(i)*time.Hour))
			}
			out := filepath.Join(t.TempDir(), "loaded")
			cmd := exec.CommandContext(t.Context(), bash, "-c", restoreScriptFor(stubTables, stubRestore, "sql")) //nolint:gosec // Our own restore script with stub commands.
			cmd.Env = []string{
				"PATH=" + os.Getenv("PATH"), "BACKUP_DIR=" + dir, "DATABASE=app", "DB_HOST=db", "DB_PORT=1", "DB_USER=root",
				"RESTORE_FROM=" + tc.from, "RESTORE_FORCE=" + tc.force, "STUB_TABLES=" + tc.tables, "STUB_OUT=" + out,
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			got := want{}
			if err := cmd.Run(); err != nil {
				got.Err = stderr.String()
			}
			if b, err := os.ReadFile(out); err == nil { //nolint:gosec // Test output.
				got.Loaded = string(b)
			}
			if tc.want.Err != "" && strings.Contains(got.Err, tc.want.Err) {
				got.Err = tc.want.Err
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nRestoreScript(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// writeBackup writes a gzipped backup and its checksum as backup.sh does,
// with the given modification time.
func writeBackup(t *testing.T, dir string, f backupFile, mtime time.Time) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(f.SQL)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b.Bytes())
	data := b.Bytes()
	if f.Corrupt {
		data[len(data)/2] ^= 1
	}
	p := filepath.Join(dir, f.Name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if f.SumFor != "" {
		line := hex.EncodeToString(sum[:]) + "  " + f.SumFor + "\n"
		if err := os.WriteFile(p+".sha256", []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVerifyScriptScratchClients: verify.sh's clients reach the scratch
// server without TLS (it has no certificate), while the backup and restore
// scripts' clients of the Database's servers keep verifying them.
func TestVerifyScriptScratchClients(t *testing.T) {
	my := VerifyScript(engines[v1.MySQL])
	if strings.Contains(my, mysqlClientTLS) || !strings.Contains(my, mysqlScratchClient) {
		t.Errorf("VerifyScript(MySQL): want its clients with %q, none with %q", mysqlScratchClient, mysqlClientTLS)
	}
	if !strings.Contains(RestoreScript(engines[v1.MySQL]), mysqlClientTLS) {
		t.Errorf("RestoreScript(MySQL): want its clients of the Database's servers with %q", mysqlClientTLS)
	}
	if pg := VerifyScript(engines[v1.PostgreSQL]); !strings.Contains(pg, "export PGSSLMODE=disable") {
		t.Errorf("VerifyScript(PostgreSQL): want PGSSLMODE=disable for the scratch server")
	}
}
