package integration

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var engines = []string{postgresql, mysql}

// backupName matches what backup.sh writes.
var backupName = regexp.MustCompile(`^app-[0-9]{8}T[0-9]{6}Z\.sql\.gz$`)

// TestBackupRestore backs up a database of at least 10MB with the composed
// backup job, restores it into a fresh server with the restore script, and
// compares schema, row counts and a digest of every row.
func TestBackupRestore(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			src := start(t, engine)
			d := newDataset(engine, large)
			loaded := time.Now()
			src.Load(t, bytes.NewReader(d.SQL))
			loadTime := time.Since(loaded)
			checkProbes(t, src, d)
			want := fingerprint(t, src)

			dir := t.TempDir()
			b := backupJob(t, engine).Run(t, src, dir, nil)
			if b.Err != nil {
				t.Fatalf("backup of %s: %v", engine, b.Err)
			}
			gz := backups(t, dir)
			if len(gz) != 1 || !backupName.MatchString(gz[0]) {
				t.Fatalf("backup of %s: want one file named like app-<UTC timestamp>.sql.gz, got %v", engine, files(t, dir))
			}
			if diff := cmp.Diff([]string{gz[0], gz[0] + ".manifest", gz[0] + ".sha256"}, files(t, dir)); diff != "" {
				t.Errorf("backup of %s wrote a backup, its manifest and its checksum, nothing else: -want, +got:\n%s", engine, diff)
			}
			sha256sum(t, dir, gz[0])
			compressed, dumped := sizes(t, filepath.Join(dir, gz[0]))

			dst := start(t, engine)
			r := restoreJob(t, engine, "latest").Run(t, dst, dir, nil)
			if r.Err != nil {
				t.Fatalf("restore of %s: %v", engine, r.Err)
			}
			checkProbes(t, dst, d)
			got := fingerprint(t, dst)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: a restored backup holds what was backed up\nfingerprint(): -want, +got:\n%s", engine, diff)
			}

			t.Logf("%s numbers: dataset %d rows, %d bytes of values (%d bytes of SQL, %s bytes on the server; loaded in %.2fs); "+
				"dump %.2fs to %d bytes compressed (%d bytes of SQL, %.1f%%); restore %.2fs",
				engine, d.Rows, d.Payload, len(d.SQL), sizeOnServer(t, src), loadTime.Seconds(),
				b.Elapsed.Seconds(), compressed, dumped, 100*float64(compressed)/float64(dumped), r.Elapsed.Seconds())

			// Restoring again finds the tables just restored, and refuses.
			again := restoreJob(t, engine, gz[0]).Run(t, dst, dir, nil)
			if again.Err == nil || !strings.Contains(again.Stderr, "refusing to restore into app") {
				t.Errorf("%s: restoring into a database with tables must be refused, got exit %v, stderr:\n%s", engine, again.Err, again.Stderr)
			}
			if diff := cmp.Diff(want, fingerprint(t, dst)); diff != "" {
				t.Errorf("%s: a refused restore changes nothing\nfingerprint(): -want, +got:\n%s", engine, diff)
			}
		})
	}
}

// TestBackupFails shows a backup that cannot dump exits non-zero and leaves
// nothing behind: no backup, no temporary file, no checksum.
func TestBackupFails(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			up := start(t, engine)
			up.Load(t, bytes.NewReader(newDataset(engine, small).SQL))
			down := start(t, engine)
			down.Stop()
			pwEnv := backupJob(t, engine).PasswordEnv

			cases := map[string]struct {
				reason string
				server *server
				env    map[string]string
			}{
				"WrongPassword": {
					reason: "A dump the server refuses must fail the backup.",
					server: up,
					env:    map[string]string{pwEnv: "not-the-password"},
				},
				"ServerDown": {
					reason: "A dump that cannot connect must fail the backup.",
					server: down,
				},
				"NoSuchDatabase": {
					reason: "A dump of a database that does not exist must fail the backup.",
					server: up,
					env:    map[string]string{"DATABASE": "nosuchdb"},
				},
			}
			for name, tc := range cases {
				t.Run(name, func(t *testing.T) {
					dir := t.TempDir()
					r := backupJob(t, engine).Run(t, tc.server, dir, tc.env)
					if r.Err == nil {
						t.Errorf("%s\nbackup: want a non-zero exit, got success", tc.reason)
					}
					if diff := cmp.Diff([]string(nil), files(t, dir)); diff != "" {
						t.Errorf("%s\nbackup: -want, +got files left in BACKUP_DIR:\n%s", tc.reason, diff)
					}
				})
			}
		})
	}
}

// TestBackupRetention shows a backup deletes backups older than the
// retention, with their checksums, and never the newest good one.
func TestBackupRetention(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			s := start(t, engine)
			s.Load(t, bytes.NewReader(newDataset(engine, small).SQL))
			j := backupJob(t, engine)
			if got := j.Env["RETENTION_DAYS"]; got != "7" {
				t.Fatalf("composed RETENTION_DAYS: want the default 7, got %q", got)
			}

			now := time.Now().UTC()
			at := func(days int) string { return "app-" + now.AddDate(0, 0, -days).Format("20060102T150405Z") + ".sql.gz" }
			pair := func(days int) []file {
				return []file{{at(days), days}, {at(days) + ".sha256", days}}
			}
			cases := map[string]struct {
				reason string
				old    []file
				env    map[string]string
				fail   bool
				want   []string
			}{
				"MixedAges": {
					reason: "Backups older than RETENTION_DAYS go with their checksums; younger ones stay.",
					old:    slices.Concat(pair(1), pair(6), pair(8), pair(30)),
					want:   []string{at(6), at(6) + ".sha256", at(1), at(1) + ".sha256"},
				},
				"AllOld": {
					reason: "When every backup is old, all go but the one just written.",
					old:    slices.Concat(pair(8), pair(30), pair(400)),
					want:   []string{},
				},
				"FailedRunPrunesNothing": {
					reason: "A failed backup deletes nothing: the newest good backup stays, however old.",
					old:    slices.Concat(pair(8), pair(30)),
					env:    map[string]string{j.PasswordEnv: "not-the-password"},
					fail:   true,
					want:   []string{at(30), at(30) + ".sha256", at(8), at(8) + ".sha256"},
				},
				"Leftovers": {
					reason: "Old orphaned checksums and stale temporary files go; other files, young ones and other databases' backups stay.",
					old: []file{
						{at(30) + ".sha256", 30}, {at(2) + ".sha256", 2},
						{"." + at(2) + ".partial", 2}, {"." + at(2) + ".partial.sha256", 2}, {".app-20000101T000000Z.sql.gz.partial", 0},
						{"other-20200101T000000Z.sql.gz", 30}, {"app-notes.txt", 30},
					},
					want: []string{".app-20000101T000000Z.sql.gz.partial", at(2) + ".sha256", "app-notes.txt", "other-20200101T000000Z.sql.gz"},
				},
			}
			for name, tc := range cases {
				t.Run(name, func(t *testing.T) {
					dir := t.TempDir()
					for _, f := range tc.old {
						p := filepath.Join(dir, f.name)
						if err := os.WriteFile(p, []byte("old\n"), 0o600); err != nil {
							t.Fatal(err)
						}
						if out, err := exec.CommandContext(t.Context(), "touch", "-d", strconv.Itoa(f.days)+" days ago", p).CombinedOutput(); err != nil { //nolint:gosec // A file in the test's temp dir.
							t.Fatalf("touch -d: %v: %s", err, out)
						}
					}
					before := files(t, dir)

					r := j.Run(t, s, dir, tc.env)
					if (r.Err != nil) != tc.fail {
						t.Fatalf("%s\nbackup: want failure %t, got exit %v", tc.reason, tc.fail, r.Err)
					}
					got := files(t, dir)
					var written []string
					for _, n := range got {
						if !slices.Contains(before, n) && backupName.MatchString(strings.TrimSuffix(strings.TrimSuffix(n, ".sha256"), ".manifest")) {
							written = append(written, n)
						}
					}
					if want := map[bool]int{false: 3, true: 0}[tc.fail]; len(written) != want {
						t.Fatalf("%s\nbackup: want %d new files, got %v", tc.reason, want, written)
					}
					got = slices.DeleteFunc(got, func(n string) bool { return slices.Contains(written, n) })
					want := slices.Sorted(slices.Values(tc.want))
					if diff := cmp.Diff(want, got, cmpEmpty); diff != "" {
						t.Errorf("%s\nbackup: -want, +got files besides the new backup:\n%s", tc.reason, diff)
					}
				})
			}
		})
	}
}

// TestRestoreRefuses shows the restore script loads nothing from a backup it
// cannot verify, or into a database that has tables, unless forced.
func TestRestoreRefuses(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			src := start(t, engine)
			d := newDataset(engine, small)
			src.Load(t, bytes.NewReader(d.SQL))
			good := t.TempDir()
			if r := backupJob(t, engine).Run(t, src, good, nil); r.Err != nil {
				t.Fatalf("backup: %v", r.Err)
			}
			gz := backups(t, good)[0]
			newer := "app-29991231T235959Z.sql.gz"

			empty := start(t, engine)
			nonEmpty := start(t, engine)
			nonEmpty.Query(t, "CREATE TABLE leftover (id int PRIMARY KEY); INSERT INTO leftover VALUES (1)")

			cases := map[string]struct {
				reason string
				target *server
				// prepare changes a copy of the good backup directory.
				prepare func(t *testing.T, dir string)
				// backup is spec.restore.backup; env overrides what the
				// API would not accept.
				backup string
				env    map[string]string
				want   string
			}{
				"Corrupted": {
					reason:  "A backup whose checksum does not match must not be loaded.",
					target:  empty,
					prepare: func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, gz)) },
					backup:  "latest",
					want:    "checksum mismatch",
				},
				"Truncated": {
					reason: "A truncated backup must not be loaded.",
					target: empty,
					prepare: func(t *testing.T, dir string) {
						if err := os.Truncate(filepath.Join(dir, gz), 1000); err != nil {
							t.Fatal(err)
						}
					},
					backup: gz,
					want:   "checksum mismatch",
				},
				"ChecksumMissing": {
					reason:  "A backup without a checksum must not be loaded.",
					target:  empty,
					prepare: func(t *testing.T, dir string) { remove(t, filepath.Join(dir, gz+".sha256")) },
					backup:  "latest",
					want:    ".sha256 is missing",
				},
				"ChecksumOfAnotherFile": {
					reason: "A checksum file must name the backup it is for.",
					target: empty,
					prepare: func(t *testing.T, dir string) {
						copyFile(t, filepath.Join(dir, gz), filepath.Join(dir, newer))
						copyFile(t, filepath.Join(dir, gz+".sha256"), filepath.Join(dir, newer+".sha256"))
					},
					backup: newer,
					want:   "is not a sha256sum line for " + newer,
				},
				"NewestCorrupted": {
					reason: "latest is the newest backup; if it is damaged, restore fails rather than load an older one.",
					target: empty,
					prepare: func(t *testing.T, dir string) {
						copyFile(t, filepath.Join(dir, gz), filepath.Join(dir, newer))
						sum, err := os.ReadFile(filepath.Join(dir, gz+".sha256")) //nolint:gosec // Test data.
						if err != nil {
							t.Fatal(err)
						}
						write(t, filepath.Join(dir, newer+".sha256"), strings.Replace(string(sum), gz, newer, 1))
						flipByte(t, filepath.Join(dir, newer))
					},
					backup: "latest",
					want:   "cannot verify " + newer + ": checksum mismatch",
				},
				"NoBackups": {
					reason:  "With no backup there is nothing to restore.",
					target:  empty,
					prepare: func(t *testing.T, dir string) { remove(t, filepath.Join(dir, gz)) },
					backup:  "latest",
					want:    "cannot find a backup of app",
				},
				"PathOutsideBackupDir": {
					reason: "RESTORE_FROM names a file in BACKUP_DIR, nothing else.",
					target: empty,
					backup: "latest",
					env:    map[string]string{"RESTORE_FROM": "../" + gz},
					want:   "RESTORE_FROM must be latest or a file name matching",
				},
				"AnotherDatabasesBackup": {
					reason: "A backup of another database must not be loaded into this one.",
					target: empty,
					prepare: func(t *testing.T, dir string) {
						copyFile(t, filepath.Join(dir, gz), filepath.Join(dir, "other-20200101T000000Z.sql.gz"))
					},
					backup: "other-20200101T000000Z.sql.gz",
					want:   "RESTORE_FROM must be latest or a file name matching",
				},
				"NonEmptyTarget": {
					reason: "A database that has tables must not be loaded into without RESTORE_FORCE.",
					target: nonEmpty,
					backup: "latest",
					want:   "refusing to restore into app: it already has 1 table(s)",
				},
			}
			for name, tc := range cases {
				t.Run(name, func(t *testing.T) {
					dir := t.TempDir()
					copyFile(t, filepath.Join(good, gz), filepath.Join(dir, gz))
					copyFile(t, filepath.Join(good, gz+".sha256"), filepath.Join(dir, gz+".sha256"))
					if tc.prepare != nil {
						tc.prepare(t, dir)
					}
					before := fingerprint(t, tc.target)
					j := restoreJob(t, engine, tc.backup)
					r := j.Run(t, tc.target, dir, tc.env)
					if r.Err == nil {
						t.Errorf("%s\nrestore: want a non-zero exit, got success", tc.reason)
					}
					if !strings.Contains(r.Stderr, tc.want) {
						t.Errorf("%s\nrestore: want %q in stderr, got:\n%s", tc.reason, tc.want, r.Stderr)
					}
					if diff := cmp.Diff(before, fingerprint(t, tc.target)); diff != "" {
						t.Errorf("%s\nrestore: -want, +got database after a refused restore:\n%s", tc.reason, diff)
					}
				})
			}

			// Forced, the backup loads next to the table that was there.
			r := restoreJob(t, engine, "latest").Run(t, nonEmpty, good, map[string]string{"RESTORE_FORCE": "true"})
			if r.Err != nil {
				t.Fatalf("restore with RESTORE_FORCE=true into a database with an unrelated table: %v", r.Err)
			}
			checkProbes(t, nonEmpty, d)
			want := fingerprint(t, src)
			got := fingerprint(t, nonEmpty)
			if got["table leftover"] == "" {
				t.Errorf("restore with RESTORE_FORCE=true: the unrelated table leftover must stay")
			}
			delete(got, "table leftover")
			delete(got, "schema")
			delete(want, "schema")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("restore with RESTORE_FORCE=true: -want, +got tables:\n%s", diff)
			}
		})
	}
}

// A file is a file name and its age in days.
type file struct {
	name string
	days int
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.Transformer("nonNil", func(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
})

// files are the names in dir, hidden ones too, sorted.
func files(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// backups are the backup files in dir, oldest first.
func backups(t testing.TB, dir string) []string {
	t.Helper()
	return slices.DeleteFunc(files(t, dir), func(n string) bool { return !backupName.MatchString(n) })
}

// sha256sum checks a backup against its checksum file with sha256sum -c.
func sha256sum(t *testing.T, dir, name string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "sha256sum", "--check", "--strict", name+".sha256") //nolint:gosec // A backup the test made.
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum --check %s.sha256: %v: %s", name, err, out)
	}
}

// sizes are a gzip file's size and its uncompressed size.
func sizes(t *testing.T, name string) (compressed, uncompressed int64) {
	t.Helper()
	f, err := os.Open(name) //nolint:gosec // Test data.
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() //nolint:errcheck // Read only.
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, zr) //nolint:gosec // A backup of the test's own small data set.
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size(), n
}

func flipByte(t *testing.T, name string) {
	t.Helper()
	b, err := os.ReadFile(name) //nolint:gosec // Test data.
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(name, b, 0o600); err != nil { //nolint:gosec // A file in the test's temp dir.
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from) //nolint:gosec // Test data.
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil { //nolint:gosec // A file in the test's temp dir.
		t.Fatal(err)
	}
}

func write(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o600); err != nil { //nolint:gosec // A file in the test's temp dir.
		t.Fatal(err)
	}
}

func remove(t *testing.T, name string) {
	t.Helper()
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
}
