package postgres

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/test"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
	"github.com/dbplane/dbplane/internal/clients/xsql/fake"
)

var errMissingDB = &pgconn.PgError{Code: "3D000", Message: `database "app" does not exist`}

// servers returns an Opener over fake databases by name; a name without
// one does not exist.
func servers(dbs map[string]*fake.DB) Opener {
	return func(name string) (xsql.DB, error) {
		if db, ok := dbs[name]; ok {
			return db, nil
		}
		return &fake.DB{
			MockExec:         func(xsql.Query) error { return errMissingDB },
			MockQueryRow:     func(xsql.Query, ...any) error { return errMissingDB },
			MockQueryStrings: func(xsql.Query) ([]string, error) { return nil, errMissingDB },
		}, nil
	}
}

func answer(t *testing.T, d Detail) func(xsql.Query, ...any) error {
	t.Helper()
	doc, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return func(_ xsql.Query, dest ...any) error { return fake.Scan(dest, doc) }
}

func TestClientObserve(t *testing.T) {
	l := xsql.Login{Name: "app_rw", Database: "app", Privileges: v1alpha1.ReadWrite}
	drifted := inSync()
	drifted.Attributes = false
	type want struct {
		o   *xsql.Observation
		ran map[string]int
		err error
	}
	cases := map[string]struct {
		reason string
		dbs    func(t *testing.T) map[string]*fake.DB
		want   want
	}{
		"InSync": {
			reason: "One query on the login's database observes a login in sync: no drift.",
			dbs: func(t *testing.T) map[string]*fake.DB {
				return map[string]*fake.DB{"app": {MockQueryRow: answer(t, inSync())}}
			},
			want: want{
				o:   &xsql.Observation{Exists: true, Verifier: pencilSCRAM, Detail: inSync()},
				ran: map[string]int{"app": 1},
			},
		},
		"Drifted": {
			reason: "Drift is listed for humans and the detail kept for SetPrivileges.",
			dbs: func(t *testing.T) map[string]*fake.DB {
				return map[string]*fake.DB{"app": {MockQueryRow: answer(t, drifted)}}
			},
			want: want{
				o:   &xsql.Observation{Exists: true, Verifier: pencilSCRAM, Drift: []string{"role attributes differ from " + levels[v1alpha1.ReadWrite].attributes()}, Detail: drifted},
				ran: map[string]int{"app": 1},
			},
		},
		"Missing": {
			reason: "A missing login is reported with the detail Create needs.",
			dbs: func(t *testing.T) map[string]*fake.DB {
				return map[string]*fake.DB{"app": {MockQueryRow: answer(t, Detail{Admin: "postgres", DatabaseOwner: "postgres"})}}
			},
			want: want{
				o:   &xsql.Observation{Detail: Detail{Admin: "postgres", DatabaseOwner: "postgres"}},
				ran: map[string]int{"app": 1},
			},
		},
		"DatabaseMissing": {
			reason: "Without its database the login is observed from the maintenance database, and the missing database is drift.",
			dbs: func(t *testing.T) map[string]*fake.DB {
				return map[string]*fake.DB{MaintenanceDatabase: {MockQueryRow: answer(t, inSync())}}
			},
			want: want{
				o: &xsql.Observation{Exists: true, Verifier: pencilSCRAM, Drift: []string{`database "app" does not exist`},
					Detail: func() Detail { d := inSync(); d.DatabaseMissing = true; return d }()},
				ran: map[string]int{MaintenanceDatabase: 1},
			},
		},
		"Error": {
			reason: "A failed query is an error naming what failed.",
			dbs: func(*testing.T) map[string]*fake.DB {
				return map[string]*fake.DB{"app": {MockQueryRow: func(xsql.Query, ...any) error { return errors.New("boom") }}}
			},
			want: want{err: errors.Wrap(errors.New("boom"), "cannot observe login"), ran: map[string]int{"app": 1}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dbs := tc.dbs(t)
			c := NewClient(servers(dbs), xsql.Endpoint{Host: "db"})
			o, err := c.Observe(t.Context(), l)
			ran := map[string]int{}
			for n, db := range dbs {
				ran[n] = len(db.Ran())
			}
			if diff := cmp.Diff(tc.want, want{o: o, ran: ran, err: err}, cmp.AllowUnexported(want{}), test.EquateErrors(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nObserve(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestClientCreateIsOneTransaction(t *testing.T) {
	app := &fake.DB{}
	c := NewClient(servers(map[string]*fake.DB{"app": app}), xsql.Endpoint{Host: "db"})
	c.verifier = func(string) (string, error) { return pencilSCRAM, nil }
	l := xsql.Login{Name: "app_ro", Database: "app", Privileges: v1alpha1.ReadOnly}
	o := &xsql.Observation{Detail: Detail{Admin: "postgres", DatabaseOwner: "postgres", Schema: &Schema{}}}
	if err := c.Create(t.Context(), l, o, "pencil"); err != nil {
		t.Fatal(err)
	}
	stmts, err := CreateStatements(l, o.Detail.(Detail), pencilSCRAM) //nolint:forcetypeassert // Set above.
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{Script(stmts...).SQL}, app.Ran()); diff != "" {
		t.Errorf("Create sends one script (one round trip, one implicit transaction): -want, +got:\n%s", diff)
	}

	missing := &xsql.Observation{Detail: Detail{DatabaseMissing: true}}
	if err := c.Create(t.Context(), l, missing, "pencil"); err == nil {
		t.Error("Create refuses a login whose database does not exist")
	}
}

func TestClientDelete(t *testing.T) {
	drop, err := DropOwnedStatements("app_owner")
	if err != nil {
		t.Fatal(err)
	}
	dropRole, _ := DropRoleStatement("app_owner")     // Valid name.
	others, _ := DependentDatabasesQuery("app_owner") // Valid name.
	l := xsql.Login{Name: "app_owner", Database: "app", Privileges: v1alpha1.Owner}

	type want struct {
		ran map[string][]string
		err bool
	}
	cases := map[string]struct {
		reason string
		dbs    func() map[string]*fake.DB
		want   want
	}{
		"OwnsObjectsElsewhere": {
			reason: "Delete drops what the login owns in its database and every other database it has objects in, then the role.",
			dbs: func() map[string]*fake.DB {
				return map[string]*fake.DB{
					"app":   {MockQueryStrings: func(xsql.Query) ([]string, error) { return []string{"other", "gone"}, nil }},
					"other": {},
				}
			},
			want: want{ran: map[string][]string{
				"app":   {Script(drop...).SQL, others.SQL, dropRole},
				"other": {Script(drop...).SQL},
			}},
		},
		"DatabaseGone": {
			reason: "When the login's database is gone Delete works from the maintenance database.",
			dbs: func() map[string]*fake.DB {
				return map[string]*fake.DB{MaintenanceDatabase: {}}
			},
			want: want{ran: map[string][]string{MaintenanceDatabase: {Script(drop...).SQL, others.SQL, dropRole}}},
		},
		"Fails": {
			reason: "A failure stops Delete before it drops the role, for the next reconcile to retry.",
			dbs: func() map[string]*fake.DB {
				return map[string]*fake.DB{"app": {MockExec: func(xsql.Query) error { return errors.New("lock timeout") }}}
			},
			want: want{ran: map[string][]string{"app": {Script(drop...).SQL}}, err: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dbs := tc.dbs()
			err := NewClient(servers(dbs), xsql.Endpoint{Host: "db"}).Delete(t.Context(), l)
			ran := map[string][]string{}
			for n, db := range dbs {
				ran[n] = db.Ran()
			}
			if diff := cmp.Diff(tc.want, want{ran: ran, err: err != nil}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nDelete(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestPoolOpenerDialsThroughAddressMap shows the pgx driver dials the name
// the ProviderConfig gives through the Dial hook, without resolving it
// first: a name no DNS knows reaches the loopback address it maps to.
func TestPoolOpenerDialsThroughAddressMap(t *testing.T) {
	m, accepted := fake.AddressMapTo(t, "orders.team-a.svc.cluster.local:5432")
	o := xsql.Options{Timeouts: xsql.Timeouts{Call: 5 * time.Second, Dial: 5 * time.Second}, Dial: m.Dial(nil)}
	pools := xsql.NewPools(time.Minute)
	t.Cleanup(pools.Close)
	open := PoolOpener(pools, xsql.Endpoint{Host: "orders.team-a.svc.cluster.local", Port: 5432}, xsql.Credential{Username: "postgres", Password: "pw"}, o)
	db, err := open("app")
	if err != nil {
		t.Fatal(err)
	}
	var one int
	_ = db.QueryRow(t.Context(), xsql.Query{SQL: "SELECT 1"}, &one) // Fails: the listener closes the connection.
	select {
	case <-accepted:
	default:
		t.Error("PoolOpener: the driver did not dial the address the map gives")
	}
}
