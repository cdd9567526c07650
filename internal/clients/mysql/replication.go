package mysql

import (
	"context"
	"database/sql"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"

	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// Replication on MySQL 8 and MariaDB. MySQL 8.0 (from 8.0.26, which the
// 8.0 image is past) and 8.4 take the same statements: the source/replica
// forms, since 8.4 removed the master/slave ones. MariaDB 10.11 knows SHOW
// REPLICA STATUS but not CHANGE REPLICATION SOURCE, and names its columns
// and variables master/slave. Only MariaDB runs in the tests: the MySQL 8
// forms are proven by the builders' tests against the MySQL 8.0 and 8.4
// reference manuals, not on a server.

// systemSchemas hold no app data.
const systemSchemas = `('mysql', 'sys', 'performance_schema', 'information_schema')`

// A dialect is what differs between the flavors' replication, as data.
type dialect struct {
	// reloadTLS reads the TLS files again: MySQL 8's ALTER INSTANCE
	// RELOAD TLS, MariaDB's FLUSH SSL.
	reloadTLS string
	// ssl, around the CA file's literal, ends change with TLS to the
	// source, verified against the CA and the source's host name.
	ssl []string
	// observe reads in one row: read_only, the read-only setting that binds
	// the superuser too, the executed transactions, the tables outside the
	// system schemas, the clone plugin's status, the semi-sync source
	// setting, its replica count and the replica setting, and whether
	// semi-sync is active as a source (not fallen back to asynchronous)
	// and as a replica (its receiver acknowledges) (NULL where the server
	// has no such variable).
	observe string
	// status lists the replica's source, one row per channel.
	status string
	// Column names of status; received holds the transactions the
	// receiver got, applied or not.
	host, port, io, sqlThread, lag, received string

	// adopt makes a stopped replica's replication start from what it
	// executed, its own transactions included (a former primary's); empty
	// where auto-positioning reads the executed set anyway.
	adopt string
	// stopReceiver stops only the receiver; waitApplied waits, with the
	// received transactions and a timeout in seconds as arguments, until
	// the applier executed them and returns 0 then.
	stopReceiver, waitApplied string
	// forget removes the replica's source; open makes the server take
	// writes; demote makes a primary refuse them, waiting for commits
	// under way. None persists: a server that restarts is read-only
	// again (the composed read_only), until the provider opens it.
	forget string
	open   []string
	demote string

	stop, start string
	// change names the source's host, port, user and password, in that
	// order of %s; the rest of the statement is fixed.
	change []string
	// protect makes a replica refuse writes, even the superuser's, and
	// keeps it so across restarts where the server can.
	protect string
	// semiSyncReplica acknowledges what a replica receives.
	semiSyncReplica string
	// semiSyncOn and semiSyncOff set the source side; waitFor sets the
	// replica count, empty where the server has none.
	semiSyncOn, semiSyncOff, waitFor string
	// clone is whether CLONE INSTANCE exists.
	clone bool
}

// variable reads one global variable that may not exist (a plugin's) as
// NULL, from the table each flavor keeps them in.
func variable(table, name string) string {
	return "(SELECT VARIABLE_VALUE FROM " + table + " WHERE VARIABLE_NAME = '" + name + "')"
}

var dialects = map[Flavor]dialect{
	// SET PERSIST writes mysqld-auto.cnf in the data directory: a replica
	// restarts read-only and a primary keeps semi-sync.
	MySQL: {
		observe: `SELECT @@global.read_only, @@global.super_read_only, @@global.gtid_executed,
  (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN ` + systemSchemas + `),
  (SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'clone'),
  ` + variable("performance_schema.global_variables", "rpl_semi_sync_source_enabled") + `,
  ` + variable("performance_schema.global_variables", "rpl_semi_sync_source_wait_for_replica_count") + `,
  ` + variable("performance_schema.global_variables", "rpl_semi_sync_replica_enabled") + `,
  ` + variable("performance_schema.global_status", "Rpl_semi_sync_source_status") + `,
  ` + variable("performance_schema.global_status", "Rpl_semi_sync_replica_status"),
		status: "SHOW REPLICA STATUS",
		host:   "Source_Host", port: "Source_Port", io: "Replica_IO_Running", sqlThread: "Replica_SQL_Running", lag: "Seconds_Behind_Source",
		received: "Retrieved_Gtid_Set",
		stop:     "STOP REPLICA", start: "START REPLICA",
		// GET_SOURCE_PUBLIC_KEY: the login is caching_sha2_password, and
		// the replica connects without TLS. SOURCE_CONNECT_RETRY: after a
		// failover a replica reaches the new primary within a second, not
		// the default 60.
		change:       []string{"CHANGE REPLICATION SOURCE TO SOURCE_HOST = ", ", SOURCE_PORT = ", ", SOURCE_USER = ", ", SOURCE_PASSWORD = ", ", SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, GET_SOURCE_PUBLIC_KEY = 1"},
		ssl:          []string{", SOURCE_SSL = 1, SOURCE_SSL_CA = ", ", SOURCE_SSL_VERIFY_SERVER_CERT = 1"},
		stopReceiver: "STOP REPLICA IO_THREAD",
		waitApplied:  "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)",
		forget:       "RESET REPLICA ALL",
		// read_only OFF turns super_read_only off too; SET GLOBAL, not
		// PERSIST: the replica's persisted super_read_only stays for its
		// next start.
		open:            []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"},
		demote:          "SET GLOBAL super_read_only = ON",
		protect:         "SET PERSIST super_read_only = ON",
		semiSyncReplica: "SET PERSIST rpl_semi_sync_replica_enabled = ON",
		semiSyncOn:      "SET PERSIST rpl_semi_sync_source_enabled = ON",
		semiSyncOff:     "SET PERSIST rpl_semi_sync_source_enabled = OFF",
		waitFor:         "SET PERSIST rpl_semi_sync_source_wait_for_replica_count = ",
		clone:           true,
		reloadTLS:       "ALTER INSTANCE RELOAD TLS",
	},
	// MariaDB has no SET PERSIST: a restarted replica comes up as the
	// configuration says (read_only with replicas), with its source
	// configured, and the provider protects it again. Semi-sync is built
	// in since 10.3.3 and waits for one replica. Its position is the
	// binlog state (every server's last transaction per domain), which
	// tells a former primary's own unreplicated transaction apart
	// (PositionContains); every pod logs what it applies.
	MariaDB: {
		observe: `SELECT @@global.read_only, @@global.read_only, @@global.gtid_binlog_state,
  (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN ` + systemSchemas + `),
  NULL,
  ` + variable("information_schema.GLOBAL_VARIABLES", "RPL_SEMI_SYNC_MASTER_ENABLED") + `,
  NULL,
  ` + variable("information_schema.GLOBAL_VARIABLES", "RPL_SEMI_SYNC_SLAVE_ENABLED") + `,
  ` + variable("information_schema.GLOBAL_STATUS", "RPL_SEMI_SYNC_MASTER_STATUS") + `,
  ` + variable("information_schema.GLOBAL_STATUS", "RPL_SEMI_SYNC_SLAVE_STATUS"),
		status: "SHOW REPLICA STATUS",
		host:   "Master_Host", port: "Master_Port", io: "Slave_IO_Running", sqlThread: "Slave_SQL_Running", lag: "Seconds_Behind_Master",
		received: "Gtid_IO_Pos",
		stop:     "STOP SLAVE", start: "START SLAVE",
		change: []string{"CHANGE MASTER TO MASTER_HOST = ", ", MASTER_PORT = ", ", MASTER_USER = ", ", MASTER_PASSWORD = ", ", MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1"},
		ssl:    []string{", MASTER_SSL = 1, MASTER_SSL_CA = ", ", MASTER_SSL_VERIFY_SERVER_CERT = 1"},
		// slave_pos holds only what the server replicated: a former
		// primary's own transactions are in gtid_current_pos.
		adopt:           "SET GLOBAL gtid_slave_pos = @@global.gtid_current_pos",
		stopReceiver:    "STOP SLAVE IO_THREAD",
		waitApplied:     "SELECT MASTER_GTID_WAIT(?, ?)",
		forget:          "RESET SLAVE ALL",
		open:            []string{"SET GLOBAL read_only = OFF"},
		demote:          "SET GLOBAL read_only = ON",
		protect:         "SET GLOBAL read_only = ON",
		semiSyncReplica: "SET GLOBAL rpl_semi_sync_slave_enabled = ON",
		semiSyncOn:      "SET GLOBAL rpl_semi_sync_master_enabled = ON",
		semiSyncOff:     "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
		reloadTLS:       "FLUSH SSL",
	},
}

// ReloadTLSStatement makes a running server read its certificate, key and
// CA files again: new connections get the new certificate, open ones keep
// theirs.
func ReloadTLSStatement(f Flavor) (string, error) {
	d, err := dialectOf(f)
	return d.reloadTLS, err
}

func dialectOf(f Flavor) (dialect, error) {
	d, ok := dialects[f]
	if !ok {
		return dialect{}, errors.Errorf("unsupported flavor %q", f)
	}
	return d, nil
}

// ReplicationQuery reads what ParseReplication needs besides the status
// rows, in one row of ten columns.
func ReplicationQuery(f Flavor) (xsql.Query, error) {
	d, err := dialectOf(f)
	return xsql.Query{SQL: d.observe}, err
}

// ReplicaStatusQuery lists the server's replication sources.
func ReplicaStatusQuery(f Flavor) (xsql.Query, error) {
	d, err := dialectOf(f)
	return xsql.Query{SQL: d.status}, err
}

// A ReplicationRow is the row ReplicationQuery returns.
type ReplicationRow [10]sql.NullString

// Dest are the scan destinations of the row.
func (r *ReplicationRow) Dest() []any {
	out := make([]any, len(r))
	for i := range r {
		out[i] = &r[i]
	}
	return out
}

// ParseReplication reads a server's replication state from its
// ReplicationQuery row and the rows of its ReplicaStatusQuery. The server
// is primary when it is writable and replicates from no one.
func ParseReplication(f Flavor, r ReplicationRow, status []map[string]string) (*xsql.ReplicationState, error) {
	d, err := dialectOf(f)
	if err != nil {
		return nil, err
	}
	on := func(s sql.NullString) bool {
		v := strings.ToUpper(s.String)
		return s.Valid && (v == "1" || v == "ON")
	}
	s := &xsql.ReplicationState{
		OwnSource: true,
		Protected: on(r[1]),
		Position:  r[2].String,
		CanClone:  r[4].String == "ACTIVE",
	}
	if r[3].Valid {
		n, err := strconv.ParseInt(r[3].String, 10, 64)
		if err != nil {
			return nil, errors.Wrapf(err, "cannot parse the number of tables %q", r[3].String)
		}
		s.UserTables = n
	}
	if r[5].Valid {
		s.SemiSync = &xsql.SemiSync{SourceEnabled: on(r[5]), ReplicaEnabled: on(r[7]), SourceActive: on(r[8]), ReplicaActive: on(r[9])}
		if r[6].Valid {
			n, err := strconv.Atoi(r[6].String)
			if err != nil {
				return nil, errors.Wrapf(err, "cannot parse the semi-sync replica count %q", r[6].String)
			}
			s.SemiSync.WaitFor = n
		}
	}
	// The default channel; MariaDB's multi-source and MySQL's named
	// channels are not dbplane's.
	if len(status) > 0 && status[0][d.host] != "" {
		row := status[0]
		src := &xsql.Source{Host: row[d.host], IO: row[d.io], SQL: row[d.sqlThread], LastError: row["Last_IO_Error"], Received: strip(row[d.received])}
		if src.LastError == "" {
			src.LastError = row["Last_SQL_Error"]
		}
		if p, err := strconv.Atoi(row[d.port]); err == nil {
			src.Port = p
		}
		if v, ok := row[d.lag]; ok && v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, errors.Wrapf(err, "cannot parse %s %q", d.lag, v)
			}
			src.LagSeconds = &n
		}
		s.Source = src
	}
	s.Primary = !on(r[0]) && !s.Protected && s.Source == nil
	// Writable or not: every pod of a replicated Database starts
	// read-only until the provider opens it.
	s.Blank = s.Source == nil && s.UserTables == 0
	s.Received = s.Position
	if s.Source != nil && s.Source.Received != "" {
		if s.Received, err = union(s.Position, s.Source.Received); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// sourceHost validates a source's or donor's host and port.
func sourceHost(ep xsql.Endpoint) (string, error) {
	if ep.Host == "" {
		return "", errors.New("the source host is empty")
	}
	if ep.Port < 0 || ep.Port > 65535 {
		return "", errors.Errorf("invalid source port %d", ep.Port)
	}
	return QuoteLiteral(ep.Host)
}

// ReplicateStatements make a server a protected replica of source, logging
// in as cred with GTID auto-positioning: stop replication, refuse writes,
// acknowledge for semi-sync and stop waiting as a source (when the server
// has the settings), point it at source, start. Every statement is idempotent, so a replica that was only
// stopped gets the same.
func ReplicateStatements(f Flavor, source xsql.Endpoint, cred xsql.Credential, semiSync bool) ([]string, error) {
	d, err := dialectOf(f)
	if err != nil {
		return nil, err
	}
	host, err := sourceHost(source)
	if err != nil {
		return nil, err
	}
	if err := ValidateUserName(cred.Username); err != nil {
		return nil, errors.Wrap(err, "invalid replication login")
	}
	user, err := QuoteLiteral(cred.Username)
	if err != nil {
		return nil, err
	}
	pw, err := QuoteLiteral(cred.Password)
	if err != nil {
		return nil, errors.New("invalid replication password") // Not the password's text.
	}
	c := d.change
	change := c[0] + host + c[1] + strconv.Itoa(port(source)) + c[2] + user + c[3] + pw + c[4]
	if source.CAFile != "" {
		ca, err := QuoteLiteral(source.CAFile)
		if err != nil {
			return nil, errors.Wrap(err, "invalid CA file")
		}
		change += d.ssl[0] + ca + d.ssl[1]
	}
	stmts := []string{d.stop, d.protect}
	if semiSync {
		// A former primary keeps its source side on otherwise, and its
		// applier, logging what it applies, would wait for
		// acknowledgements no one sends (up to the semi-sync timeout,
		// each time), stalling replication.
		stmts = append(stmts, d.semiSyncReplica, d.semiSyncOff)
	}
	if d.adopt != "" {
		stmts = append(stmts, d.adopt)
	}
	return append(stmts, change, d.start), nil
}

// StopReceiverStatement stops a replica's receiver, so that what it
// applies next is all it will ever have from the lost source.
func StopReceiverStatement(f Flavor) (string, error) {
	d, err := dialectOf(f)
	return d.stopReceiver, err
}

// WaitAppliedQuery waits up to timeout until the server executed every
// transaction of received (its source's Received), returning one number:
// 0 when it did. received is an argument, not SQL text.
func WaitAppliedQuery(f Flavor, received string, timeout time.Duration) (xsql.Query, error) {
	d, err := dialectOf(f)
	return xsql.Query{SQL: d.waitApplied, Args: []any{received, int64(timeout.Seconds())}}, err
}

// PromoteStatements make a replica that applied what it received a
// primary: replication stops, its source is forgotten, and it takes
// writes. A server that replicates from no one (a primary that restarted
// read-only, a new Database's first pod) only takes writes. Nothing is
// persisted, so a restart leaves it read-only.
func PromoteStatements(f Flavor, replica bool) ([]string, error) {
	d, err := dialectOf(f)
	if err != nil {
		return nil, err
	}
	if !replica {
		return d.open, nil
	}
	return append([]string{d.stop, d.forget}, d.open...), nil
}

// DemoteStatement makes a primary refuse writes, even the superuser's
// where the flavor can; it waits for the commits under way (up to the
// session's lock_wait_timeout).
func DemoteStatement(f Flavor) (string, error) {
	d, err := dialectOf(f)
	return d.demote, err
}

// SessionsQuery lists the sessions a demoted primary ends: every one but
// the asking session, the server's own threads and the replicas'
// binary log readers, which must still receive the last transactions.
var SessionsQuery = xsql.Query{SQL: `SELECT ID FROM information_schema.PROCESSLIST
  WHERE ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler') AND COMMAND NOT LIKE 'Binlog Dump%' AND COMMAND <> 'Daemon'`}

// KillStatement ends session id.
func KillStatement(id uint64) string {
	return "KILL CONNECTION " + strconv.FormatUint(id, 10)
}

// StopReplicationStatement stops a replica's threads; StartReplication
// starts them again, and the receiver connects to its source anew.
func StopReplicationStatement(f Flavor) (string, error) {
	d, err := dialectOf(f)
	return d.stop, err
}

// StartReplicationStatement starts a replica's threads.
func StartReplicationStatement(f Flavor) (string, error) {
	d, err := dialectOf(f)
	return d.start, err
}

// ProtectStatement makes a replica refuse writes, even the superuser's.
func ProtectStatement(f Flavor) (string, error) {
	d, err := dialectOf(f)
	return d.protect, err
}

// SemiSyncSourceStatements make commits on a primary wait for n replicas,
// or for none when n is 0. MariaDB waits for one whatever n is.
func SemiSyncSourceStatements(f Flavor, n int) ([]string, error) {
	d, err := dialectOf(f)
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return []string{d.semiSyncOff}, nil
	}
	var out []string
	if d.waitFor != "" {
		out = append(out, d.waitFor+strconv.Itoa(n))
	}
	return append(out, d.semiSyncOn), nil
}

// CloneStatements replace a server's data with a copy of donor's, logging
// in to donor as cred (MySQL 8's CLONE, which needs BACKUP_ADMIN on the
// donor). clone_valid_donor_list takes host:port, so the host may hold no
// colon or comma: a DNS name or an IPv4 address.
func CloneStatements(f Flavor, donor xsql.Endpoint, cred xsql.Credential) ([]string, error) {
	d, err := dialectOf(f)
	if err != nil {
		return nil, err
	}
	if !d.clone {
		return nil, errors.Errorf("%s has no CLONE", f)
	}
	if strings.ContainsAny(donor.Host, ":,") {
		return nil, errors.Errorf("donor host %q: clone_valid_donor_list cannot hold a colon or comma", donor.Host)
	}
	host, err := sourceHost(donor)
	if err != nil {
		return nil, err
	}
	if err := ValidateUserName(cred.Username); err != nil {
		return nil, errors.Wrap(err, "invalid replication login")
	}
	user, err := QuoteLiteral(cred.Username)
	if err != nil {
		return nil, err
	}
	pw, err := QuoteLiteral(cred.Password)
	if err != nil {
		return nil, errors.New("invalid replication password") // Not the password's text.
	}
	p := strconv.Itoa(port(donor))
	list, err := QuoteLiteral(donor.Host + ":" + p)
	if err != nil {
		return nil, err
	}
	return []string{
		"SET GLOBAL clone_valid_donor_list = " + list,
		"CLONE INSTANCE FROM " + user + "@" + host + ":" + p + " IDENTIFIED BY " + pw,
	}, nil
}

// errRestartAfterClone is MySQL's ER_CLONE_... "Restart server failed
// (mysqld is not managed by supervisor process)": the clone succeeded and
// the server shut down to start on the cloned data; in a pod the kubelet
// starts the container again.
const errRestartAfterClone = 3707

// A ReplicationClient observes and configures replication on one MySQL or
// MariaDB server, as the admin login.
type ReplicationClient struct {
	db      xsql.DB
	addr    string
	flavors *Flavors
	served  func(ctx context.Context) ([]byte, error)
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
	f, err := c.flavors.Of(ctx, c.addr, c.db)
	if err != nil {
		return err
	}
	stmt, err := ReloadTLSStatement(f)
	if err != nil {
		return err
	}
	return errors.Wrap(c.db.Exec(ctx, xsql.Query{SQL: stmt}), "cannot reload the server's TLS")
}

// NewReplicationClient returns a ReplicationClient running SQL through db
// on the server at ep.
func NewReplicationClient(db xsql.DB, ep xsql.Endpoint, flavors *Flavors) *ReplicationClient {
	return &ReplicationClient{db: db, addr: net.JoinHostPort(ep.Host, strconv.Itoa(port(ep))), flavors: flavors}
}

// Observe reads the server's replication state in two round trips (one
// more the first time, for the flavor).
func (c *ReplicationClient) Observe(ctx context.Context) (*xsql.ReplicationState, error) {
	f, err := c.flavors.Of(ctx, c.addr, c.db)
	if err != nil {
		return nil, err
	}
	q, err := ReplicationQuery(f)
	if err != nil {
		return nil, err
	}
	var r ReplicationRow
	if err := c.db.QueryRow(ctx, q, r.Dest()...); err != nil {
		return nil, errors.Wrap(err, "cannot observe replication")
	}
	q, err = ReplicaStatusQuery(f)
	if err != nil {
		return nil, err
	}
	status, err := c.db.QueryMaps(ctx, q)
	if err != nil {
		return nil, errors.Wrap(err, "cannot show replica status")
	}
	return ParseReplication(f, r, status)
}

// DropSlot is not MySQL's: it has no replication slots.
func (c *ReplicationClient) DropSlot(_ context.Context, name string) error {
	return errors.Errorf("cannot drop replication slot %q: MySQL has no replication slots", name)
}

// SetSynchronousStandbyNames is not MySQL's: SetSemiSync is.
func (c *ReplicationClient) SetSynchronousStandbyNames(_ context.Context, _ string) error {
	return errors.New("cannot set synchronous_standby_names: MySQL has none")
}

// Replicate makes the server a protected replica of source.
func (c *ReplicationClient) Replicate(ctx context.Context, source xsql.Endpoint, cred xsql.Credential, semiSync bool) error {
	f, err := c.flavors.Of(ctx, c.addr, c.db)
	if err != nil {
		return err
	}
	stmts, err := ReplicateStatements(f, source, cred, semiSync)
	if err != nil {
		return err
	}
	return errors.Wrap(redact(c.exec(ctx, stmts...), cred.Password), "cannot configure replication")
}

// Protect makes the server refuse writes, even the superuser's.
func (c *ReplicationClient) Protect(ctx context.Context) error {
	f, err := c.flavors.Of(ctx, c.addr, c.db)
	if err != nil {
		return err
	}
	stmt, err := ProtectStatement(f)
	if err != nil {
		return err
	}
	return errors.Wrap(c.exec(ctx, stmt), "cannot make the server read-only")
}

// SetSemiSync makes commits wait for n replicas, or none when n is 0.
func (c *ReplicationClient) SetSemiSync(ctx context.Context, n int) error {
	f, err := c.flavors.Of(ctx, c.addr, c.db)
	if err != nil {
		return err
	}
	stmts, err := SemiSyncSourceStatements(f, n)
	if err != nil {
		return err
	}
	return errors.Wrap(c.exec(ctx, stmts...), "cannot set semi-synchronous replication")
}

// Clone replaces the server's data with a copy of donor's. The server shuts
// down when the copy is complete (its pod's container starts it again):
// that is success.
func (c *ReplicationClient) Clone(ctx context.Context, donor xsql.Endpoint, cred xsql.Credential) error {
	f, err := c.flavors.Of(ctx, c.addr, c.db)
	if err != nil {
		return err
	}
	stmts, err := CloneStatements(f, donor, cred)
	if err != nil {
		return err
	}
	err = c.exec(ctx, stmts...)
	if me := (*mysql.MySQLError)(nil); errors.As(err, &me) && me.Number == errRestartAfterClone {
		return nil
	}
	return errors.Wrap(redact(err, cred.Password), "cannot clone")
}

// redact removes password from err's text: a server's syntax error quotes
// the statement near the error, and errors reach conditions and events.
func redact(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "<redacted>"))
}

func (c *ReplicationClient) exec(ctx context.Context, stmts ...string) error {
	for _, s := range stmts {
		if err := c.db.Exec(ctx, xsql.Query{SQL: s}); err != nil {
			return err
		}
	}
	return nil
}

// appliedTimeout bounds how long a promoted replica may take to apply
// what it received.
const appliedTimeout = 30 * time.Second

// Promote makes a replica the primary once it applied everything it
// received: its receiver stops first, so that nothing more arrives from a
// source that may still be alive. Then it forgets its source and takes
// writes. On a server that replicates from no one (a restarted primary)
// it only makes it take writes.
func (c *ReplicationClient) Promote(ctx context.Context) error {
	f, err := c.flavors.Of(ctx, c.addr, c.db)
	if err != nil {
		return err
	}
	stop, err := StopReceiverStatement(f)
	if err != nil {
		return err
	}
	s, err := c.Observe(ctx)
	if err != nil {
		return err
	}
	if s.Source != nil {
		if err := c.exec(ctx, stop); err != nil {
			return errors.Wrap(err, "cannot stop the replica's receiver")
		}
		if s, err = c.Observe(ctx); err != nil {
			return err
		}
	}
	if s.Source != nil && s.Source.Received != "" {
		q, err := WaitAppliedQuery(f, s.Source.Received, appliedTimeout)
		if err != nil {
			return err
		}
		var n sql.NullInt64
		if err := c.db.QueryRow(ctx, q, &n); err != nil {
			return errors.Wrap(err, "cannot wait for the replica to apply what it received")
		}
		if !n.Valid || n.Int64 != 0 {
			return errors.Errorf("cannot promote: the replica did not apply the transactions it received (%s) within %s", s.Source.Received, appliedTimeout)
		}
	}
	stmts, err := PromoteStatements(f, s.Source != nil)
	if err != nil {
		return err
	}
	return errors.Wrap(c.exec(ctx, stmts...), "cannot make the server the primary")
}

// Demote makes a primary refuse writes, once its commits under way are
// done, and ends every other session, so that clients reconnect through
// the read-write Service. Sessions holding the read-only switch back (an
// open transaction past lock_wait_timeout) are ended and it is tried once
// more.
func (c *ReplicationClient) Demote(ctx context.Context) error {
	f, err := c.flavors.Of(ctx, c.addr, c.db)
	if err != nil {
		return err
	}
	stmt, err := DemoteStatement(f)
	if err != nil {
		return err
	}
	if err := c.exec(ctx, stmt); err != nil {
		if err := c.killSessions(ctx); err != nil {
			return err
		}
		if err := c.exec(ctx, stmt); err != nil {
			return errors.Wrap(err, "cannot make the primary read-only")
		}
	}
	return c.killSessions(ctx)
}

func (c *ReplicationClient) killSessions(ctx context.Context) error {
	rows, err := c.db.QueryMaps(ctx, SessionsQuery)
	if err != nil {
		return errors.Wrap(err, "cannot list sessions")
	}
	for _, r := range rows {
		id, err := strconv.ParseUint(r["ID"], 10, 64)
		if err != nil {
			return errors.Wrapf(err, "cannot parse session id %q", r["ID"])
		}
		// A session that ended meanwhile is no error.
		if err := c.exec(ctx, KillStatement(id)); err != nil && !isUnknownThread(err) {
			return errors.Wrapf(err, "cannot end session %d", id)
		}
	}
	return nil
}

// errUnknownThread is ER_NO_SUCH_THREAD.
const errUnknownThread = 1094

func isUnknownThread(err error) bool {
	me := (*mysql.MySQLError)(nil)
	return errors.As(err, &me) && me.Number == errUnknownThread
}

// StopReplication stops a replica's threads.
func (c *ReplicationClient) StopReplication(ctx context.Context) error {
	return c.replicationStatement(ctx, StopReplicationStatement, "cannot stop replication")
}

// StartReplication starts a replica's threads: its receiver connects to
// its source anew.
func (c *ReplicationClient) StartReplication(ctx context.Context) error {
	return c.replicationStatement(ctx, StartReplicationStatement, "cannot start replication")
}

func (c *ReplicationClient) replicationStatement(ctx context.Context, stmt func(Flavor) (string, error), what string) error {
	f, err := c.flavors.Of(ctx, c.addr, c.db)
	if err != nil {
		return err
	}
	s, err := stmt(f)
	if err != nil {
		return err
	}
	return errors.Wrap(c.exec(ctx, s), what)
}
