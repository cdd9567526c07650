package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dbplane/dbplane/test/harness"
)

// catchUpTimeout bounds how long a standby may take to show a row.
const catchUpTimeout = 60 * time.Second

// TestPostgreSQLReplication runs a Database's three pods on loopback, with
// the composed configuration and init step: the standbys copy the primary by
// themselves and stream from it, rejoin after a restart, and copy it again
// when their data is lost.
func TestPostgreSQLReplication(t *testing.T) {
	c := startPGCluster(t, 3, "staging")
	primary := c.Primary()
	primary.Query(t, "CREATE TABLE orders (id int PRIMARY KEY, item text)")
	primary.Query(t, "INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 1000) g")

	t.Run("StandbysStreamWhatThePrimaryWrites", func(t *testing.T) {
		for _, m := range c.Members[1:] {
			waitRows(t, m, 1000)
			if got := m.Query(t, "SELECT pg_is_in_recovery()"); got != "t" {
				t.Errorf("%s: pg_is_in_recovery() = %s, want t: a standby", m.Name, got)
			}
			if _, err := m.exec(t.Context(), appDatabase, nil, "INSERT INTO orders VALUES (0, 'on a standby')"); err == nil || !strings.Contains(err.Error(), "read-only transaction") {
				t.Errorf("%s: a write on a standby: want a read-only transaction error, got %v", m.Name, err)
			}
		}
		// Each streams as its pod, on its own slot, which the init step
		// created when it copied the primary.
		got := primary.Query(t, "SELECT string_agg(application_name || ' ' || state || ' ' || sync_state, ',' ORDER BY application_name) FROM pg_stat_replication")
		if want := "orders-1 streaming async,orders-2 streaming async"; got != want {
			t.Errorf("pg_stat_replication on the primary: got %q, want %q", got, want)
		}
		got = primary.Query(t, "SELECT string_agg(slot_name || ' ' || slot_type || ' ' || active, ',' ORDER BY slot_name) FROM pg_replication_slots")
		if want := "orders_1 physical true,orders_2 physical true"; got != want {
			t.Errorf("pg_replication_slots on the primary: got %q, want %q", got, want)
		}
		// The login streams with its own password, from the password file
		// the init step wrote, not the superuser's.
		got = primary.Query(t, "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_replication")
		if got != "replication" {
			t.Errorf("standbys stream as %q, want the replication login", got)
		}
	})

	t.Run("BackupReadsFromAStandby", func(t *testing.T) {
		// Once a standby streams, the composed backup reads from the
		// read-only Service: the same job against a standby.
		dir := t.TempDir()
		if r := backupJob(t, postgresql).Run(t, c.Members[1].server, dir, nil); r.Err != nil {
			t.Fatalf("backup from a standby: %v\n%s", r.Err, r.Stderr)
		}
		if gz := backups(t, dir); len(gz) != 1 {
			t.Fatalf("backup from a standby: want one backup, got %v", files(t, dir))
		}
	})

	t.Run("RestartedStandbyCatchesUp", func(t *testing.T) {
		m := c.Members[1]
		m.Stop()
		primary.Query(t, "INSERT INTO orders SELECT g, 'while down ' || g FROM generate_series(1001, 2000) g")
		// The primary keeps the WAL for it on its slot.
		if got := primary.Query(t, "SELECT active FROM pg_replication_slots WHERE slot_name = 'orders_1'"); got != "f" {
			t.Errorf("slot orders_1 of the stopped standby: active = %s, want f", got)
		}
		m.Start(t)
		if !strings.Contains(m.lastInit, "holds a database") {
			t.Errorf("%s: the init step of a restart did not keep the data: %s", m.Name, m.lastInit)
		}
		c.WaitStreaming(t, m)
		waitRows(t, m, 2000)
	})

	t.Run("StandbyWithLostDataCopiesThePrimaryAgain", func(t *testing.T) {
		m := c.Members[2]
		m.Wipe(t)
		primary.Query(t, "INSERT INTO orders SELECT g, 'after the loss ' || g FROM generate_series(2001, 3000) g")
		m.Start(t)
		// Its slot was still there: the copy uses it again.
		if !strings.Contains(m.lastInit, "copied the primary") {
			t.Errorf("%s: the init step did not copy the primary: %s", m.Name, m.lastInit)
		}
		c.WaitStreaming(t, m)
		waitRows(t, m, 3000)
		if got := m.Query(t, "SELECT pg_is_in_recovery()"); got != "t" {
			t.Errorf("%s: pg_is_in_recovery() = %s after copying again, want t", m.Name, got)
		}
	})

	t.Run("PrimaryRestartKeepsItsStandbys", func(t *testing.T) {
		primary.Stop()
		primary.Start(t)
		if got := primary.Query(t, "SELECT pg_is_in_recovery()"); got != "f" {
			t.Fatalf("the first pod came back as a standby: pg_is_in_recovery() = %s", got)
		}
		primary.Query(t, "INSERT INTO orders VALUES (3001, 'after the primary restarted')")
		for _, m := range c.Members[1:] {
			c.WaitStreaming(t, m)
			waitRows(t, m, 3001)
		}
	})
}

// TestPostgreSQLSynchronousCommit shows what synchronous mode promises: a
// commit the app saw is on a standby too. With no standby streaming, a
// commit waits; it completes when one comes back.
func TestPostgreSQLSynchronousCommit(t *testing.T) {
	c := startPGCluster(t, 2, "production")
	primary, standby := c.Primary(), c.Members[1]
	// The Replication the function composes for production, reconciled by
	// the provider's controller, sets synchronous_standby_names.
	re := newReplicationEnv(t, c)
	cr := re.replicationOf(2, int(c.p.SyncStandbys))
	if cr.Spec.ForProvider.Synchronous != 1 {
		t.Fatalf("production composes synchronous %d, want 1", cr.Spec.ForProvider.Synchronous)
	}
	re.converge(t, cr)
	if got := primary.Query(t, "SHOW synchronous_standby_names"); got != `ANY 1 ("orders-1")` {
		t.Fatalf("synchronous_standby_names: got %s", got)
	}
	if err := harness.Poll(t.Context(), catchUpTimeout, func(ctx context.Context) error {
		out, err := primary.exec(ctx, "postgres", nil, "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'orders-1'")
		if err == nil && out != "quorum" {
			err = fmt.Errorf("orders-1 sync_state %q", out)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	primary.Query(t, "CREATE TABLE payments (id int PRIMARY KEY)")
	primary.Query(t, "INSERT INTO payments VALUES (1)")
	waitTableRows(t, standby, "payments", 1)

	standby.Stop()
	done := make(chan error, 1)
	go func() {
		_, err := primary.exec(context.WithoutCancel(t.Context()), appDatabase, nil, "INSERT INTO payments VALUES (2)")
		done <- err
	}()
	// The commit waits for a standby: its backend waits on SyncRep, and it
	// has not returned.
	if err := harness.Poll(t.Context(), catchUpTimeout, func(ctx context.Context) error {
		out, err := primary.exec(ctx, "postgres", nil, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND query LIKE 'INSERT INTO payments VALUES (2)%'")
		if err == nil && out != "1" {
			err = fmt.Errorf("%s backends wait on SyncRep", out)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the commit returned while no standby streamed: %v", err)
	default:
	}

	standby.Start(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the waiting commit failed: %v", err)
		}
	case <-time.After(catchUpTimeout):
		t.Fatal("the waiting commit did not complete after the standby came back")
	}
	waitTableRows(t, standby, "payments", 2)
}

// waitRows waits until the orders table on m has n rows.
func waitRows(t testing.TB, m *pgMember, n int) {
	t.Helper()
	waitTableRows(t, m, "orders", n)
}

// waitTableRows waits until table on m has n rows.
func waitTableRows(t testing.TB, m *pgMember, table string, n int) {
	t.Helper()
	want := fmt.Sprint(n)
	if err := harness.Poll(t.Context(), catchUpTimeout, func(ctx context.Context) error {
		out, err := m.exec(ctx, appDatabase, nil, "SELECT count(*) FROM "+table)
		if err != nil {
			return err
		}
		if out != want {
			return errors.New(m.Name + " has " + out + " rows in " + table + ", want " + want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
