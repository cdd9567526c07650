package mysql

import (
	"testing"
	"time"

	"github.com/dbplane/dbplane/internal/clients/xsql"
	"github.com/dbplane/dbplane/internal/clients/xsql/fake"
)

// TestPoolDBDialsThroughAddressMap shows the MySQL driver dials the name
// the ProviderConfig gives through the Dial hook.
func TestPoolDBDialsThroughAddressMap(t *testing.T) {
	m, accepted := fake.AddressMapTo(t, "orders.team-a.svc.cluster.local:3306")
	o := xsql.Options{Timeouts: xsql.Timeouts{Call: 5 * time.Second, Dial: 5 * time.Second}, Dial: m.Dial(nil)}
	pools := xsql.NewPools(time.Minute)
	t.Cleanup(pools.Close)
	db, err := PoolDB(pools, xsql.Endpoint{Host: "orders.team-a.svc.cluster.local", Port: 3306}, xsql.Credential{Username: "root", Password: "pw"}, o)
	if err != nil {
		t.Fatal(err)
	}
	var one int
	_ = db.QueryRow(t.Context(), xsql.Query{SQL: "SELECT 1"}, &one) // Fails: the listener closes the connection.
	select {
	case <-accepted:
	default:
		t.Error("PoolDB: the driver did not dial the address the map gives")
	}
}
