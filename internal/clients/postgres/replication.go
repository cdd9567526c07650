package postgres

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"

	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// replicationSQL returns, in one row and one round trip, what a server says
// about replication as one JSON document, which ParseReplicationState reads:
// whether it is in recovery, its timeline, a standby's received and replayed
// locations (received: at least what it replayed, which a standby restarted
// while detached has only) and WAL receiver status, how long ago a
// streaming receiver last heard from its primary, whether a failover
// detached it (Detach; pg_file_settings, which only superusers and
// pg_read_all_settings may read), a primary's WAL senders with their lag,
// its physical slots with the WAL each retains, and
// synchronous_standby_names. Functions that fail during recovery
// (pg_current_wal_lsn, pg_walfile_name) are only reached outside it. The
// primary's timeline is the one of the WAL file it writes; a standby's is
// the one its receiver streams, else the one it replays.
const replicationSQL = `SELECT pg_catalog.json_build_object(
  'primary', NOT pg_catalog.pg_is_in_recovery(),
  'timeline', CASE WHEN pg_catalog.pg_is_in_recovery()
    THEN COALESCE((SELECT received_tli FROM pg_catalog.pg_stat_wal_receiver),
                  (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()))
    ELSE ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int
  END,
  'receivedLSN', GREATEST(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())::text,
  'replayedLSN', pg_catalog.pg_last_wal_replay_lsn()::text,
  'receiver', (SELECT status FROM pg_catalog.pg_stat_wal_receiver),
  'heardMillis', (SELECT (EXTRACT(EPOCH FROM pg_catalog.now() - last_msg_receipt_time) * 1000)::bigint
    FROM pg_catalog.pg_stat_wal_receiver WHERE status = 'streaming'),
  'synchronousStandbyNames', pg_catalog.current_setting('synchronous_standby_names'),
  'detached', pg_catalog.has_function_privilege('pg_catalog.pg_show_all_file_settings()', 'EXECUTE')
    AND EXISTS (SELECT 1 FROM pg_catalog.pg_file_settings WHERE name = 'primary_conninfo' AND setting = '' AND applied),
  'replicas', CASE WHEN pg_catalog.pg_is_in_recovery() THEN '[]'::json ELSE (
    SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
      'name', application_name, 'state', state, 'syncState', sync_state,
      'lagBytes', pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), replay_lsn)::bigint,
      'lagMillis', (EXTRACT(EPOCH FROM replay_lag) * 1000)::bigint
    ) ORDER BY application_name, pid), '[]'::json)
    FROM pg_catalog.pg_stat_replication) END,
  'slots', (
    SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
      'name', slot_name, 'active', active, 'walStatus', wal_status,
      'retainedBytes', CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL
        ELSE pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::bigint END
    ) ORDER BY slot_name), '[]'::json)
    FROM pg_catalog.pg_replication_slots WHERE slot_type = 'physical')
)`

// ReplicationQuery reads a server's replication state in one round trip.
func ReplicationQuery() xsql.Query {
	return xsql.Query{SQL: replicationSQL}
}

// ParseReplicationState reads the document ReplicationQuery returns.
func ParseReplicationState(doc []byte) (*xsql.ReplicationState, error) {
	s := &xsql.ReplicationState{}
	if err := json.Unmarshal(doc, s); err != nil {
		return nil, errors.Wrap(err, "cannot parse replication state")
	}
	return s, nil
}

// slotName is what a physical slot name may hold: lower-case letters,
// digits and underscores, as PostgreSQL requires.
var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// DropSlotQuery drops physical replication slot name, but only while it is
// inactive: a standby that connected since it was observed keeps its slot.
// A slot that is gone already is no error.
func DropSlotQuery(name string) (xsql.Query, error) {
	return slotQuery(`SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots
  WHERE slot_name = $1 AND slot_type = 'physical' AND NOT active`, name)
}

// slotQuery is sql with slot name as $1, once the name is one PostgreSQL
// accepts.
func slotQuery(sql, name string) (xsql.Query, error) {
	if !slotName.MatchString(name) {
		return xsql.Query{}, errors.Errorf("invalid replication slot name %q: it must be 1 to 63 lower-case letters, digits and underscores", name)
	}
	return xsql.Query{SQL: sql, Args: []any{name}}, nil
}

// SynchronousStandbyNames renders the synchronous_standby_names that makes
// a commit wait for any n of standbys: ANY n ("a", "b"), each name quoted
// as the setting's parser reads it (double quotes, inner ones doubled).
// Zero n, or no standbys, is asynchronous: empty.
func SynchronousStandbyNames(n int, standbys []string) (string, error) {
	if n <= 0 || len(standbys) == 0 {
		return "", nil
	}
	quoted := make([]string, len(standbys))
	for i, s := range standbys {
		q, err := QuoteIdentifier(s)
		if err != nil {
			return "", errors.Wrap(err, "invalid standby name")
		}
		quoted[i] = q
	}
	return "ANY " + strconv.Itoa(min(n, len(standbys))) + " (" + strings.Join(quoted, ", ") + ")", nil
}

// SetSynchronousStandbyNamesStatements set synchronous_standby_names to
// value in postgresql.auto.conf, or reset it when value is empty, and
// reload the configuration. ALTER SYSTEM cannot run in a transaction, so
// each statement is its own query.
func SetSynchronousStandbyNamesStatements(value string) ([]string, error) {
	set := "ALTER SYSTEM RESET synchronous_standby_names"
	if value != "" {
		lit, err := QuoteLiteral(value)
		if err != nil {
			return nil, errors.Wrap(err, "invalid synchronous_standby_names")
		}
		set = "ALTER SYSTEM SET synchronous_standby_names = " + lit
	}
	return []string{set, "SELECT pg_catalog.pg_reload_conf()"}, nil
}

// A ReplicationClient observes and repairs replication on one PostgreSQL
// server, in its maintenance database.
type ReplicationClient struct {
	open   Opener
	served func(ctx context.Context) ([]byte, error)
}

// WithServedCertificate says how ServedCertificate connects, making the
// client an xsql.TLSServer.
func (c *ReplicationClient) WithServedCertificate(f func(ctx context.Context) ([]byte, error)) *ReplicationClient {
	c.served = f
	return c
}

// ServedCertificate is the certificate a new connection gets.
func (c *ReplicationClient) ServedCertificate(ctx context.Context) ([]byte, error) {
	if c.served == nil {
		return nil, errors.New("cannot read the served certificate: no way to connect was given")
	}
	return c.served(ctx)
}

// ReloadTLS makes the server read its TLS files again.
func (c *ReplicationClient) ReloadTLS(ctx context.Context) error {
	db, err := c.open(MaintenanceDatabase)
	if err != nil {
		return err
	}
	return errors.Wrap(db.Exec(ctx, ReloadTLSQuery), "cannot reload the server's TLS")
}

// NewReplicationClient returns a ReplicationClient reaching the server
// through open.
func NewReplicationClient(open Opener) *ReplicationClient {
	return &ReplicationClient{open: open}
}

// Observe reads the server's replication state in one round trip.
func (c *ReplicationClient) Observe(ctx context.Context) (*xsql.ReplicationState, error) {
	db, err := c.open(MaintenanceDatabase)
	if err != nil {
		return nil, err
	}
	var doc []byte
	if err := db.QueryRow(ctx, ReplicationQuery(), &doc); err != nil {
		return nil, errors.Wrap(err, "cannot observe replication")
	}
	return ParseReplicationState(doc)
}

// DropSlot drops physical replication slot name if it is inactive.
func (c *ReplicationClient) DropSlot(ctx context.Context, name string) error {
	q, err := DropSlotQuery(name)
	if err != nil {
		return err
	}
	db, err := c.open(MaintenanceDatabase)
	if err != nil {
		return err
	}
	return errors.Wrapf(db.Exec(ctx, q), "cannot drop replication slot %q", name)
}

// SetSynchronousStandbyNames sets synchronous_standby_names to value, or
// resets it when empty, and reloads the configuration.
func (c *ReplicationClient) SetSynchronousStandbyNames(ctx context.Context, value string) error {
	stmts, err := SetSynchronousStandbyNamesStatements(value)
	if err != nil {
		return err
	}
	db, err := c.open(MaintenanceDatabase)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if err := db.Exec(ctx, xsql.Query{SQL: s}); err != nil {
			return errors.Wrap(err, "cannot set synchronous_standby_names")
		}
	}
	// pg_reload_conf only signals the postmaster, which then signals every
	// backend: until this session reads the new value, the next observe
	// may read the old one and set it again.
	for range 40 {
		var now string
		if err := db.QueryRow(ctx, xsql.Query{SQL: "SELECT pg_catalog.current_setting('synchronous_standby_names')"}, &now); err != nil {
			return errors.Wrap(err, "cannot read synchronous_standby_names back")
		}
		if now == value {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Wrap(ctx.Err(), "cannot read synchronous_standby_names back")
		case <-time.After(25 * time.Millisecond):
		}
	}
	return errors.Errorf("cannot set synchronous_standby_names: the server still reads another value after 1 s")
}

// promoteSQL promotes a standby and waits up to 15 s (within the call timeout) for it to accept
// writes; it returns false when the wait ran out.
const promoteSQL = `SELECT pg_catalog.pg_promote(true, 15)`

// createSlotSQL creates a physical slot reserving WAL from now, unless it
// exists.
const createSlotSQL = `SELECT pg_catalog.pg_create_physical_replication_slot($1, true)
  WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)`

// restartReceiverSQL ends a standby's WAL receiver: the startup process
// starts another one at once, which connects to primary_conninfo's host
// again: the read-write Service, now the new primary.
const restartReceiverSQL = `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_wal_receiver`

// CreateSlotQuery creates physical replication slot name, reserving WAL at
// once, unless it exists.
func CreateSlotQuery(name string) (xsql.Query, error) { return slotQuery(createSlotSQL, name) }

// Promote turns a standby into the primary and waits until it accepts
// writes.
func (c *ReplicationClient) Promote(ctx context.Context) error {
	db, err := c.open(MaintenanceDatabase)
	if err != nil {
		return err
	}
	var ok bool
	if err := db.QueryRow(ctx, xsql.Query{SQL: promoteSQL}, &ok); err != nil {
		return errors.Wrap(err, "cannot promote")
	}
	if !ok {
		return errors.New("cannot promote: the server did not leave recovery within 15 s")
	}
	return nil
}

// CreateSlot creates physical replication slot name unless it exists.
func (c *ReplicationClient) CreateSlot(ctx context.Context, name string) error {
	q, err := CreateSlotQuery(name)
	if err != nil {
		return err
	}
	db, err := c.open(MaintenanceDatabase)
	if err != nil {
		return err
	}
	return errors.Wrapf(db.Exec(ctx, q), "cannot create replication slot %q", name)
}

// RestartReceiver makes a standby connect to its primary again.
func (c *ReplicationClient) RestartReceiver(ctx context.Context) error {
	db, err := c.open(MaintenanceDatabase)
	if err != nil {
		return err
	}
	return errors.Wrap(db.Exec(ctx, xsql.Query{SQL: restartReceiverSQL}), "cannot restart the WAL receiver")
}

// detachSQL stops a standby from streaming from anyone: with an empty
// primary_conninfo its startup process ends the WAL receiver and starts
// none. ALTER SYSTEM keeps it across a restart, until Attach.
var detachSQL = []string{`ALTER SYSTEM SET primary_conninfo = ''`, `SELECT pg_catalog.pg_reload_conf()`}

// attachSQL undoes detachSQL: the composed primary_conninfo, the
// read-write Service, applies again and a WAL receiver starts.
var attachSQL = []string{`ALTER SYSTEM RESET primary_conninfo`, `SELECT pg_catalog.pg_reload_conf()`}

// receivingSQL tells whether a WAL receiver runs, connected or still
// connecting (pg_stat_wal_receiver shows one only once connected), and
// what the standby received.
const receivingSQL = `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity WHERE backend_type = 'walreceiver'),
  COALESCE(pg_catalog.pg_last_wal_receive_lsn()::text, '')`

// Detach makes a standby stop receiving WAL, and keep from receiving any
// after a restart, until Attach; it returns once no WAL receiver runs and
// none started for 250 ms. A receiver still running 200 ms after the
// reload is ended: one the startup process starts again before it read
// the empty primary_conninfo is ended too.
func (c *ReplicationClient) Detach(ctx context.Context) error {
	db, err := c.open(MaintenanceDatabase)
	if err != nil {
		return err
	}
	for _, s := range detachSQL {
		if err := db.Exec(ctx, xsql.Query{SQL: s}); err != nil {
			return errors.Wrap(err, "cannot detach the standby from its primary")
		}
	}
	// Done once two reads 250 ms apart find no receiver and the same WAL
	// received: a startup process that had not read the reload yet would
	// have started one by then.
	quiet, lastLSN := time.Time{}, ""
	for last := time.Now(); ; {
		var receiving bool
		var lsn string
		if err := db.QueryRow(ctx, xsql.Query{SQL: receivingSQL}, &receiving, &lsn); err != nil {
			return errors.Wrap(err, "cannot read the standby's WAL receiver")
		}
		switch {
		case receiving || lsn != lastLSN:
			quiet, lastLSN = time.Time{}, lsn
		case quiet.IsZero():
			quiet = time.Now()
		case time.Since(quiet) >= 250*time.Millisecond:
			return nil
		}
		if receiving && time.Since(last) > 200*time.Millisecond {
			if err := db.Exec(ctx, xsql.Query{SQL: restartReceiverSQL}); err != nil {
				return errors.Wrap(err, "cannot end the WAL receiver")
			}
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return errors.Wrap(ctx.Err(), "cannot detach the standby: its WAL receiver still runs")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Attach undoes Detach: the standby streams from the read-write Service
// again. On a server Detach never changed it changes nothing.
func (c *ReplicationClient) Attach(ctx context.Context) error {
	db, err := c.open(MaintenanceDatabase)
	if err != nil {
		return err
	}
	for _, s := range attachSQL {
		if err := db.Exec(ctx, xsql.Query{SQL: s}); err != nil {
			return errors.Wrap(err, "cannot attach the standby to its primary")
		}
	}
	return nil
}

// MarkDemoted records in the server's postgresql.auto.conf, for the pod's
// init step, that it is to follow another primary when it starts next: a
// switchover stops it, and it must not start as a primary again even
// before the new one answers.
func (c *ReplicationClient) MarkDemoted(ctx context.Context) error {
	db, err := c.open(MaintenanceDatabase)
	if err != nil {
		return err
	}
	return errors.Wrap(db.Exec(ctx, xsql.Query{SQL: "ALTER SYSTEM SET dbplane.demoted = 'true'"}), "cannot mark the primary demoted")
}
