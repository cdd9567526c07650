// Package fake is an xsql.DB for tests: it records what it is asked to run
// and answers with the functions it is given.
package fake

import (
	"context"
	"reflect"
	"sync"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"

	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// A DB records every query and answers with its Mock functions; a nil
// function succeeds with nothing.
type DB struct {
	MockExec         func(q xsql.Query) error
	MockQueryRow     func(q xsql.Query, dest ...any) error
	MockQueryStrings func(q xsql.Query) ([]string, error)
	MockQueryMaps    func(q xsql.Query) ([]map[string]string, error)

	mu  sync.Mutex
	ran []xsql.Query
}

var _ xsql.DB = &DB{}

// Exec records q and runs MockExec.
func (d *DB) Exec(_ context.Context, q xsql.Query) error {
	d.record(q)
	if d.MockExec == nil {
		return nil
	}
	return d.MockExec(q)
}

// QueryRow records q and runs MockQueryRow.
func (d *DB) QueryRow(_ context.Context, q xsql.Query, dest ...any) error {
	d.record(q)
	if d.MockQueryRow == nil {
		return xsql.ErrNoRows
	}
	return d.MockQueryRow(q, dest...)
}

// QueryStrings records q and runs MockQueryStrings.
func (d *DB) QueryStrings(_ context.Context, q xsql.Query) ([]string, error) {
	d.record(q)
	if d.MockQueryStrings == nil {
		return nil, nil
	}
	return d.MockQueryStrings(q)
}

// QueryMaps records q and runs MockQueryMaps.
func (d *DB) QueryMaps(_ context.Context, q xsql.Query) ([]map[string]string, error) {
	d.record(q)
	if d.MockQueryMaps == nil {
		return nil, nil
	}
	return d.MockQueryMaps(q)
}

func (d *DB) record(q xsql.Query) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ran = append(d.ran, q)
}

// Ran returns the SQL of every query so far.
func (d *DB) Ran() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, len(d.ran))
	for i, q := range d.ran {
		out[i] = q.SQL
	}
	return out
}

// Scan sets each dest, a pointer, to the value at the same position.
func Scan(dest []any, vals ...any) error {
	if len(dest) != len(vals) {
		return errors.Errorf("scanning %d values into %d destinations", len(vals), len(dest))
	}
	for i, v := range vals {
		d := reflect.ValueOf(dest[i])
		if d.Kind() != reflect.Pointer || !reflect.ValueOf(v).Type().AssignableTo(d.Elem().Type()) {
			return errors.Errorf("cannot scan %T into %T", v, dest[i])
		}
		d.Elem().Set(reflect.ValueOf(v))
	}
	return nil
}
