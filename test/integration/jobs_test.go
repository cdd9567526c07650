package integration

import (
	"bytes"
	"context"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/dbplane/dbplane/fn"
)

// scriptTimeout bounds one backup or restore run.
const scriptTimeout = 5 * time.Minute

// versions are the versions composed for each engine. The scripts are the
// same for every version of an engine.
var versions = map[string]string{postgresql: "15", mysql: "8.4"}

// A job is a composed container's command and environment, as it would run
// in the cluster.
type job struct {
	Command []string
	Env     map[string]string
	// PasswordEnv is the variable set from the credentials Secret.
	PasswordEnv string
	// S3Keys maps the variables set from the platform's S3 credentials
	// and encryption key Secrets to their keys in them.
	S3Keys map[string]string
}

// database is a Database with backups on, as a user would write it, that
// restores from backup of the Database orders when backup is set.
func database(engine, backup string) string {
	d := `apiVersion: database.example.com/v1
kind: Database
metadata:
  name: orders
  namespace: team-a
spec:
  type: ` + engine + `
  version: "` + versions[engine] + `"
  storage:
    size: 5Gi
  backup:
    enabled: true
`
	if backup != "" {
		d += `  restore:
    from: orders
    backup: ` + backup + "\n"
	}
	return d
}

// params resolves a Database the way the function does.
func params(t testing.TB, engine, backup string) fn.Params {
	t.Helper()
	return paramsWith(t, engine, backup, fn.Input{SQLUsers: true})
}

// paramsWith resolves a Database the way the function does with an Input.
func paramsWith(t testing.TB, engine, backup string, in fn.Input) fn.Params {
	t.Helper()
	return resolve(t, database(engine, backup), in)
}

// resolve resolves the Database doc the way the function does.
func resolve(t testing.TB, doc string, in fn.Input) fn.Params {
	t.Helper()
	u := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &u); err != nil {
		t.Fatalf("cannot unmarshal Database: %v", err)
	}
	db, err := fn.Decode(u)
	if err != nil {
		t.Fatal(err)
	}
	fn.Default(&db.Spec)
	if errs := fn.Validate(db); len(errs) > 0 {
		t.Fatalf("Validate(): %v", errs.ToAggregate())
	}
	p, err := fn.Resolve(db, fn.Observed{}, in, func() (string, error) { return "cluster-password-unused", nil })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// backupJob is the command and environment of the composed backup CronJob's
// container.
func backupJob(t testing.TB, engine string) job {
	t.Helper()
	cs := fn.BackupCronJob(params(t, engine, "")).Spec.JobTemplate.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("backup CronJob of %s: want 1 container, got %d", engine, len(cs))
	}
	return fromContainer(t, cs[0])
}

// restoreJob is the command and environment of the composed restore Job's
// container, for a Database that restores backup (latest or a file name).
func restoreJob(t testing.TB, engine, backup string) job {
	t.Helper()
	cs := fn.RestoreJob(params(t, engine, backup)).Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("restore Job of %s: want 1 container, got %d", engine, len(cs))
	}
	j := fromContainer(t, cs[0])
	if got := j.Env["RESTORE_FROM"]; got != backup {
		t.Fatalf("restore Job of %s: want RESTORE_FROM %q, got %q", engine, backup, got)
	}
	return j
}

func fromContainer(t testing.TB, c corev1.Container) job {
	t.Helper()
	j := job{Command: c.Command, Env: map[string]string{}, S3Keys: map[string]string{}}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
			(e.ValueFrom.SecretKeyRef.Name == s3CredentialsSecret || e.ValueFrom.SecretKeyRef.Name == s3KeySecret):
			j.S3Keys[e.Name] = e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			if j.PasswordEnv != "" {
				t.Fatalf("container %s: want one variable from the Secret, got %s and %s", c.Name, j.PasswordEnv, e.Name)
			}
			j.PasswordEnv = e.Name
		case e.ValueFrom != nil:
			t.Fatalf("container %s: variable %s comes from neither a literal nor the Secret", c.Name, e.Name)
		default:
			j.Env[e.Name] = e.Value
		}
	}
	if j.PasswordEnv == "" {
		t.Fatalf("container %s: no password variable from the Secret", c.Name)
	}
	return j
}

// A run is the outcome of running a job.
type run struct {
	Stdout, Stderr string
	Elapsed        time.Duration
	Err            error
}

// Run runs the job against s with its backups in dir. Only what differs from
// the cluster is overridden: the host, port and backup directory, and the
// password the Secret would hold; extra adds to or overrides the rest.
func (j job) Run(t testing.TB, s *server, dir string, extra map[string]string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), scriptTimeout)
	defer cancel()
	cmd := j.Cmd(ctx, t, s, dir, extra)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	begin := time.Now()
	err := cmd.Run()
	r := run{Stdout: out.String(), Stderr: stderr.String(), Elapsed: time.Since(begin), Err: err}
	status := "success"
	if err != nil {
		status = err.Error()
	}
	t.Logf("%s %s: %s in %s\nstdout:\n%s\nstderr:\n%s", s.Engine, scriptName(j), status, r.Elapsed.Round(time.Millisecond), r.Stdout, r.Stderr)
	return r
}

// Cmd is the command Run runs, not started.
func (j job) Cmd(ctx context.Context, t testing.TB, s *server, dir string, extra map[string]string) *exec.Cmd {
	t.Helper()
	if s.PasswordEnv() != j.PasswordEnv {
		t.Fatalf("composed job reads the password from %s, the %s client from %s", j.PasswordEnv, s.Engine, s.PasswordEnv())
	}
	env := map[string]string{}
	for k, v := range j.Env {
		env[k] = v
	}
	for _, k := range []string{"DB_HOST", "DB_PORT", "BACKUP_DIR"} {
		if _, ok := env[k]; !ok {
			t.Fatalf("composed job has no %s to override: %v", k, j.Env)
		}
	}
	env["DB_HOST"] = "127.0.0.1"
	env["DB_PORT"] = strconv.Itoa(s.Port)
	// The TLS Secret's CA is the server's.
	if s.TLS == nil {
		t.Fatalf("the composed job verifies the server with TLS: start %s with TLS", s.Engine)
	}
	for k, v := range env {
		env[k] = localTLS(v, s.TLS.Dir)
	}
	env["BACKUP_DIR"] = dir
	env[j.PasswordEnv] = s.Password
	for k, v := range extra {
		env[k] = v
	}

	command := make([]string, 0, len(j.Command))
	for _, a := range j.Command {
		command = append(command, localTLS(a, s.TLS.Dir))
	}
	cmd := exec.CommandContext(ctx, command[0], command[1:]...) //nolint:gosec // The composed command.
	// The images' PATH; HOME keeps the tester's ~/.my.cnf and ~/.pgpass out.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	return cmd
}

func scriptName(j job) string {
	if strings.Contains(j.Command[len(j.Command)-1], "dbplane restore") {
		return "restore"
	}
	return "backup"
}
