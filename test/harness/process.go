package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// DefaultStopTimeout is how long Stop waits after StopSignal before it kills
// a Process that sets no StopTimeout.
const DefaultStopTimeout = 15 * time.Second

// A Process is a long-running binary a test starts: a component of the
// control plane, or a database server. Its stdout and stderr go to Log;
// restarts append to the same log. It is stopped by its PID, never by name.
//
// Set the exported fields, then call Start. A Process may be started again
// after it exited or was stopped.
type Process struct {
	// Name names the process in errors.
	Name string
	// Bin is the binary's path.
	Bin string
	// Args are the binary's arguments.
	Args []string
	// Env is the environment, as exec.Cmd's: nil inherits this process's.
	Env []string
	// Dir is the working directory; empty is this process's.
	Dir string
	// Ports are the TCP ports the process binds. Start refuses to start it
	// when one is taken: a stale process holding a component's port (with
	// an old CA, say) makes tests hang silently instead of failing.
	Ports []int
	// Log is the file stdout and stderr are appended to.
	Log string
	// Credential, when not nil, runs the process as another user.
	Credential *syscall.Credential
	// StopSignal is what Stop sends first; zero is SIGTERM.
	StopSignal syscall.Signal
	// DeathSignal is what the kernel sends the process when this one dies
	// without stopping it (a panic in a test, go test's -timeout); zero is
	// SIGKILL.
	DeathSignal syscall.Signal
	// StopTimeout is how long Stop waits for the process to exit before it
	// kills it; zero is DefaultStopTimeout.
	StopTimeout time.Duration

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // why it exited; read after exited is closed
}

// Start starts the process. It refuses when one of its Ports is taken.
func (p *Process) Start() error {
	for _, port := range p.Ports {
		if PortTaken(port) {
			return fmt.Errorf("cannot start %s: port %d is already taken (a stale process?) %s", p.Name, port, listener(port))
		}
	}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open log of %s: %w", p.Name, err)
	}
	if _, err := fmt.Fprintf(f, "\n=== %s starting: %s %v\n", time.Now().Format(time.RFC3339Nano), p.Bin, p.Args); err != nil {
		_ = f.Close()
		return fmt.Errorf("cannot write log of %s: %w", p.Name, err)
	}
	death := p.DeathSignal
	if death == 0 {
		death = syscall.SIGKILL
	}
	cmd := exec.Command(p.Bin, p.Args...) //nolint:gosec,noctx // Our own binaries and arguments; stopped by Stop, not by a context.
	cmd.Env = p.Env
	cmd.Dir = p.Dir
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: p.Credential,
		// Its own process group, so a ^C reaches the test binary, which
		// stops everything in order, rather than every process at once.
		Setpgid: true,
		// Signalled when the test binary dies without stopping it.
		Pdeathsig: death,
	}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("cannot start %s: %w", p.Name, err)
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

// PID is the process's PID, or 0 when it was never started.
func (p *Process) PID() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Alive returns an error when the process is not running.
func (p *Process) Alive() error {
	if p.cmd == nil {
		return fmt.Errorf("%s was never started", p.Name)
	}
	select {
	case <-p.exited:
		if p.err == nil {
			return fmt.Errorf("%s (pid %d) exited with status 0; see %s", p.Name, p.cmd.Process.Pid, p.Log)
		}
		return fmt.Errorf("%s (pid %d) exited: %w; see %s", p.Name, p.cmd.Process.Pid, p.err, p.Log)
	default:
		return nil
	}
}

// Stop sends StopSignal to the process's PID, then SIGKILL to its process
// group if it has not exited after StopTimeout, and returns an error saying
// so. Stopping a process that is not running is a no-op.
func (p *Process) Stop() error {
	if p.cmd == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	sig, timeout := p.StopSignal, p.StopTimeout
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if timeout == 0 {
		timeout = DefaultStopTimeout
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, sig) // It may have just exited.
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
	}
	// The process group: the process and anything it started.
	_ = syscall.Kill(-pid, syscall.SIGKILL) // It may have just exited.
	<-p.exited
	return fmt.Errorf("%s (pid %d) ignored %v for %s and was killed", p.Name, pid, sig, timeout)
}

// Kill sends SIGKILL to the process's group at once (the process and
// anything it started, such as a PostgreSQL server's backends), as the
// kernel's OOM killer or a node crash does, and waits until it exited.
// Killing a process that is not running is a no-op.
func (p *Process) Kill() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // It may have just exited.
	<-p.exited
}

// WaitReady polls ready until it returns nil, failing early when the process
// exits and after timeout with ready's last error.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if err := p.Alive(); err != nil {
			return err
		}
		if last = ready(ctx); last == nil {
			// Some processes exit right after binding, for instance on a
			// bad flag read late: make sure it is still there.
			return p.Alive()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w; see %s", p.Name, timeout, last, p.Log)
		case <-p.exited:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Tail returns the last n bytes of a log file, or why it cannot.
func Tail(path string, n int64) string {
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
