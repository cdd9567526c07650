package integration

import (
	"context"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// A partition stands for the network between a Database's servers and
// everyone else: the provider's SQL clients dial through ProviderDial, and
// the read-write Service's stand-in (which the standbys and the apps use)
// through Dial. It cuts a port as a network partition does, neither
// refusing nor closing: a new connection's handshake gets no answer, and an
// open one's bytes are lost, until the caller's deadline. The server's
// kubelet (the tests' direct connections) is never cut.
type partition struct {
	mu sync.Mutex
	// cut ports, and provider ports cut from the provider only.
	cut, provider map[string]bool
}

func newPartition() *partition {
	return &partition{cut: map[string]bool{}, provider: map[string]bool{}}
}

// Cut cuts port off from the provider, the standbys and the apps;
// CutProvider from the provider only; Heal ends either.
func (p *partition) Cut(port int)         { p.set(port, true, true) }
func (p *partition) CutProvider(port int) { p.set(port, false, true) }
func (p *partition) Heal(port int)        { p.set(port, false, false) }

func (p *partition) set(port int, cut, provider bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut[strconv.Itoa(port)], p.provider[strconv.Itoa(port)] = cut, provider
}

func (p *partition) isCut(addr string, provider bool) bool {
	_, port, _ := net.SplitHostPort(addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut[port] || (provider && p.provider[port])
}

// ProviderDial is the provider's xsql.DialFunc.
func (p *partition) ProviderDial(ctx context.Context, network, addr string) (net.Conn, error) {
	return p.dial(ctx, network, addr, true)
}

// Dial dials for the standbys and the apps.
func (p *partition) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return p.dial(ctx, network, addr, false)
}

func (p *partition) dial(ctx context.Context, network, addr string, provider bool) (net.Conn, error) {
	if p.isCut(addr, provider) {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.ErrDeadlineExceeded}
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: c, cut: func() bool { return p.isCut(addr, provider) }, closed: make(chan struct{})}, nil
}

// A cutConn loses what it reads and blocks writes while it is cut, until
// its deadline.
type cutConn struct {
	net.Conn
	cut func() bool

	mu       sync.Mutex
	deadline time.Time
	once     sync.Once
	closed   chan struct{}
}

func (c *cutConn) Read(b []byte) (int, error) {
	for {
		if err := c.waitWhileCut(); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(b)
		if !c.cut() {
			return n, err
		}
		// Cut while the bytes were on their way: lost.
	}
}

func (c *cutConn) Write(b []byte) (int, error) {
	if err := c.waitWhileCut(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// waitWhileCut returns nil once not cut, or a timeout at the deadline.
func (c *cutConn) waitWhileCut() error {
	for c.cut() {
		c.mu.Lock()
		d := c.deadline
		c.mu.Unlock()
		if !d.IsZero() && time.Now().After(d) {
			return &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
		}
		select {
		case <-c.closed:
			return net.ErrClosed
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func (c *cutConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *cutConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *cutConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
