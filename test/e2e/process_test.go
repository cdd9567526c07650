//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const stopTimeout = 15 * time.Second

// A process is one component of the control plane, run from a built binary
// and stopped by its PID. Its stdout and stderr go to <logs>/<name>.log;
// restarts append to the same log.
type process struct {
	name  string
	bin   string
	args  []string
	env   []string
	ports []int
	log   string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // why it exited; read after exited is closed
}

// freePort returns a TCP port nothing listens on, on any interface.
func freePort() (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer l.Close() //nolint:errcheck // Only probing.
	a, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("cannot read the port of %s", l.Addr())
	}
	return a.Port, nil
}

// portTaken tells whether something already listens on port, on any
// interface. A stale process holding a component's port (with an old CA, say)
// makes tests hang silently instead of failing, so the harness refuses to
// start a component whose port is taken.
func portTaken(port int) bool {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return true
	}
	_ = l.Close()
	return false
}

// listener says which process listens on port, when ss can tell.
func listener(port int) string {
	out, err := exec.CommandContext(context.Background(), "ss", "-Hltnp", "sport = :"+strconv.Itoa(port)).Output() //nolint:gosec // A port number.
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// start runs the process. It refuses when one of its ports is taken.
func (p *process) start() error {
	for _, port := range p.ports {
		if portTaken(port) {
			return fmt.Errorf("cannot start %s: port %d is already taken (a stale process?) %s", p.name, port, listener(port))
		}
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open log of %s: %w", p.name, err)
	}
	if _, err := fmt.Fprintf(f, "\n=== %s starting: %s %v\n", time.Now().Format(time.RFC3339Nano), p.bin, p.args); err != nil {
		_ = f.Close()
		return fmt.Errorf("cannot write log of %s: %w", p.name, err)
	}
	cmd := exec.Command(p.bin, p.args...) //nolint:gosec,noctx // Our own binaries and arguments; stopped by stop, not by a context.
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group, so a ^C reaches the harness, which stops
		// everything in order, rather than every component at once.
		Setpgid: true,
		// Killed when the test binary dies without running TestMain's
		// cleanup: a panic in a test, or go test's -timeout.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("cannot start %s: %w", p.name, err)
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.exited)
	}()
	return nil
}

// alive returns an error when the process has exited.
func (p *process) alive() error {
	if p.cmd == nil {
		return fmt.Errorf("%s was never started", p.name)
	}
	select {
	case <-p.exited:
		return fmt.Errorf("%s (pid %d) exited: %w; see %s", p.name, p.cmd.Process.Pid, p.err, p.log)
	default:
		return nil
	}
}

// stop sends SIGTERM to the process's PID, then SIGKILL if it has not
// exited after stopTimeout. Stopping a process that is not running is a no-op.
func (p *process) stop() error {
	if p.cmd == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s (pid %d) ignored SIGTERM for %s and was killed", p.name, p.cmd.Process.Pid, stopTimeout)
}

// waitReady polls ready until it returns nil, failing early when the process
// exits and after timeout.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if err := p.alive(); err != nil {
			return err
		}
		if last = ready(ctx); last == nil {
			// Some components exit right after binding, for instance on a bad
			// flag read late: make sure it is still there.
			return p.alive()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w; see %s", p.name, timeout, last, p.log)
		case <-p.exited:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logTail returns the last n bytes of a log file.
func logTail(path string, n int64) string {
	f, err := os.Open(path) //nolint:gosec // Our own log files.
	if err != nil {
		return err.Error()
	}
	defer f.Close() //nolint:errcheck // Only open for reading.
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, os.ErrClosed) && len(b) == 0 {
		return err.Error()
	}
	return string(b)
}

// logPath is where component name logs.
func logPath(dir, name string) string { return filepath.Join(dir, name+".log") }
