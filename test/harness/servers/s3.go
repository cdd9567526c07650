package servers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// S3Bucket is the one bucket an S3 server has.
const S3Bucket = "dbplane-backups"

// An S3 server is a real S3-compatible server, versitygw over a directory,
// on 127.0.0.1, with one bucket, S3Bucket. It is killed when the test that
// started it ends.
type S3 struct {
	// Addr is host:port; Endpoint the URL clients use.
	Addr, Endpoint string
	// AccessKeyID and SecretAccessKey are the root keys, random.
	AccessKeyID, SecretAccessKey string

	bin, dir string
	cmd      *exec.Cmd
	done     chan error
	logs     *bytes.Buffer
	stopped  bool
}

// StartS3 starts versitygw from bin (built from its pinned module) with
// random root keys, passed in its environment, never its command line.
func StartS3(t testing.TB, bin string) *S3 {
	t.Helper()
	s := &S3{bin: bin, dir: t.TempDir(), AccessKeyID: "dbplane" + RandomHex(t, 6), SecretAccessKey: RandomHex(t, 24)}
	if err := os.Mkdir(filepath.Join(s.dir, S3Bucket), 0o750); err != nil {
		t.Fatal(err)
	}
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	s.Endpoint = "http://" + s.Addr
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s.Start(t)
	t.Cleanup(s.Stop)
	return s
}

// RandomHex is n random bytes, in hex.
func RandomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Start runs the server, again after Stop, over the same directory, and
// waits until it accepts connections.
func (s *S3) Start(t testing.TB) {
	t.Helper()
	s.cmd = exec.CommandContext(context.WithoutCancel(t.Context()), s.bin, "--port", s.Addr, "posix", s.dir) //nolint:gosec // The pinned test server.
	s.cmd.Env = []string{"ROOT_ACCESS_KEY_ID=" + s.AccessKeyID, "ROOT_SECRET_ACCESS_KEY=" + s.SecretAccessKey, "HOME=" + s.dir}
	s.logs = &bytes.Buffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("cannot start versitygw: %v", err)
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	s.stopped = false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(t.Context(), "tcp", s.Addr)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case err := <-s.done:
			t.Fatalf("versitygw exited: %v\n%s", err, s.logs)
		default:
		}
	}
	t.Fatalf("versitygw does not listen on %s:\n%s", s.Addr, s.logs)
}

// Stop kills the server at once, as a crash or a lost network would.
func (s *S3) Stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.logs.WriteString("cannot kill versitygw: " + err.Error() + "\n")
	}
	// Killed, it exits with an error: what it printed is in logs.
	if err := <-s.done; err != nil {
		s.logs.WriteString("versitygw: " + err.Error() + "\n")
	}
}

// RcloneEnv configures rclone's remote dbplane: for the server with the
// root keys, by variables, as the composed Jobs configure it.
func (s *S3) RcloneEnv() []string {
	return []string{
		"RCLONE_CONFIG=/dev/null",
		"RCLONE_CONFIG_DBPLANE_TYPE=s3",
		"RCLONE_CONFIG_DBPLANE_PROVIDER=Other",
		"RCLONE_CONFIG_DBPLANE_ENDPOINT=" + s.Endpoint,
		"RCLONE_CONFIG_DBPLANE_REGION=us-east-1",
		"RCLONE_CONFIG_DBPLANE_ENV_AUTH=false",
		"RCLONE_CONFIG_DBPLANE_FORCE_PATH_STYLE=true",
		"RCLONE_CONFIG_DBPLANE_ACCESS_KEY_ID=" + s.AccessKeyID,
		"RCLONE_CONFIG_DBPLANE_SECRET_ACCESS_KEY=" + s.SecretAccessKey,
	}
}

// List is every object under prefix in the bucket, relative to it, sorted,
// as Debian's rclone lists them over the S3 API.
func (s *S3) List(t testing.TB, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "rclone", "lsf", "--files-only", "-R", "dbplane:"+S3Bucket+"/"+prefix) //nolint:gosec // The test's own listing of its bucket.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, s.RcloneEnv()...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cannot list s3://%s/%s: %v: %s", S3Bucket, prefix, err, stderr.String())
	}
	names := strings.Fields(out.String())
	slices.Sort(names)
	return names
}

// Logs is what the server printed.
func (s *S3) Logs() string { return fmt.Sprint(s.logs) }
