package xsql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"sync"
	"time"
)

// Pools shares one database/sql pool per server, login and database between
// reconciles, so that a steady-state Observe reuses an open connection
// instead of paying for TCP, TLS and authentication every poll. A pool not
// used for a while is closed; a changed admin password or host makes a new
// key, and the old pool ages out.
type Pools struct {
	idle time.Duration
	now  func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]*pooled
}

type pooled struct {
	sql  *sql.DB
	db   DB
	used time.Time
}

// NewPools returns pools that close after idle without use.
func NewPools(idle time.Duration) *Pools {
	return &Pools{idle: idle, now: time.Now, m: map[[sha256.Size]byte]*pooled{}}
}

// Get returns the DB for key, which must identify everything open connects
// with (a DSN does), opening it the first time. Keys are kept only as
// hashes.
func (p *Pools) Get(key string, open func() (*sql.DB, error), t Timeouts) (DB, error) {
	k := sha256.Sum256([]byte(key))
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.m[k]; ok {
		e.used = p.now()
		return e.db, nil
	}
	s, err := open()
	if err != nil {
		return nil, err
	}
	e := &pooled{sql: s, db: NewDB(s, t), used: p.now()}
	p.m[k] = e
	return e.db, nil
}

// Len is the number of open pools.
func (p *Pools) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// Sweep closes the pools not used for the idle period.
func (p *Pools) Sweep() {
	p.mu.Lock()
	var stale []*sql.DB
	for k, e := range p.m {
		if p.now().Sub(e.used) > p.idle {
			stale = append(stale, e.sql)
			delete(p.m, k)
		}
	}
	p.mu.Unlock()
	for _, s := range stale {
		_ = s.Close() // Closing idle connections; nothing to report to.
	}
}

// Close closes every pool.
func (p *Pools) Close() {
	p.mu.Lock()
	all := p.m
	p.m = map[[sha256.Size]byte]*pooled{}
	p.mu.Unlock()
	for _, e := range all {
		_ = e.sql.Close() // Shutting down.
	}
}

// Start sweeps every minute until ctx is done, then closes every pool. It
// makes Pools a controller-runtime manager Runnable.
func (p *Pools) Start(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.Close()
			return nil
		case <-t.C:
			p.Sweep()
		}
	}
}
