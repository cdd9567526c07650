package xsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
)

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		pw, err := GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != 32 || strings.IndexFunc(pw, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsLetter(r) && !unicode.IsDigit(r) }) >= 0 {
			t.Fatalf("GeneratePassword: want 32 letters and digits, got %q", pw)
		}
		if seen[pw] {
			t.Fatalf("GeneratePassword: repeated %q", pw)
		}
		seen[pw] = true
	}
}

// nopDriver opens connections that are never used.
type nopDriver struct{}

func (nopDriver) Open(string) (driver.Conn, error) { return nil, errors.New("not used") }

func init() { sql.Register("xsql-nop", nopDriver{}) }

func TestPools(t *testing.T) {
	p := NewPools(time.Minute)
	now := time.Now()
	p.now = func() time.Time { return now }
	opened := 0
	open := func() (*sql.DB, error) {
		opened++
		return sql.Open("xsql-nop", "")
	}
	a, err := p.Get("dsn-a", open, DefaultTimeouts)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := p.Get("dsn-a", open, DefaultTimeouts) // Opened above.
	if a != again || opened != 1 {
		t.Errorf("Get: one pool per key, opened %d", opened)
	}
	if _, err := p.Get("dsn-b", open, DefaultTimeouts); err != nil || opened != 2 || p.Len() != 2 {
		t.Errorf("Get: another key opens another pool, opened %d, have %d", opened, p.Len())
	}

	now = now.Add(45 * time.Second)
	if _, err := p.Get("dsn-a", open, DefaultTimeouts); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Second)
	p.Sweep()
	if p.Len() != 1 {
		t.Errorf("Sweep closes only pools idle longer than the idle period, have %d", p.Len())
	}
	p.Close()
	if p.Len() != 0 {
		t.Errorf("Close closes every pool, have %d", p.Len())
	}
}

type nopDB struct{}

func (nopDB) Exec(context.Context, Query) error                             { return nil }
func (nopDB) QueryRow(context.Context, Query, ...any) error                 { return nil }
func (nopDB) QueryStrings(context.Context, Query) ([]string, error)         { return nil, nil }
func (nopDB) QueryMaps(context.Context, Query) ([]map[string]string, error) { return nil, nil }

func TestCounter(t *testing.T) {
	c := &Counter{}
	db := c.Wrap(nopDB{})
	other := c.Wrap(nopDB{})
	_ = db.Exec(t.Context(), Query{})        // Counting only.
	_ = other.QueryRow(t.Context(), Query{}) // Counting only.
	if got := c.Calls(); got != 2 {
		t.Errorf("Counter counts the calls through every DB it wraps: got %d, want 2", got)
	}
}
