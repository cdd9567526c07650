// Package integration runs the scripts dbplane composes against real database
// servers: throwaway PostgreSQL and MariaDB instances on 127.0.0.1, installed
// by test/servers/install.sh. The tests take the exact command and
// environment of the composed backup CronJob, and the restore script, and
// override only what differs from a cluster: the host, port, backup
// directory and the password the Secret would hold.
//
// Without the server binaries the tests skip, unless CI is set: then they
// fail.
//
// The MySQL images ship Oracle's mysqldump and mysql; Debian's MariaDB ships
// MariaDB's (mariadb-dump, with mysqldump a link to it). What the tests prove
// with MariaDB's tools holds for Oracle's except where they differ:
//
//   - GTIDs. With gtid_mode=ON, as dbplane configures MySQL, Oracle's
//     mysqldump defaults to --set-gtid-purged=AUTO: the dump turns off
//     SQL_LOG_BIN and sets @@GLOBAL.GTID_PURGED. Loading it into the server
//     it came from fails (ERROR 3546, the GTIDs overlap) and what it loads
//     never reaches replicas. --set-gtid-purged=OFF avoids both. MariaDB's
//     mysqldump has no such flag and fails on it; --loose-set-gtid-purged=OFF
//     works with both.
//   - Column statistics. Oracle's 8.0 mysqldump defaults to
//     --column-statistics=1, which fails against MariaDB (and MySQL 5.7)
//     servers. Not a problem with the server's own image.
//   - Sandbox mode. mariadb-dump from 10.11.8 (10.5.25, 10.6.18, 11.x) starts
//     its output with /*M!999999\- enable the sandbox mode */, which Oracle's
//     mysql client rejects. Load a dump with the client of the tool that
//     wrote it, as restore.sh does by running in the server's image.
//   - Tablespaces. Oracle's mysqldump since 8.0.21 needs the PROCESS
//     privilege unless given --no-tablespaces (both accept it). The backup
//     runs as root, which has it.
//   - Packet size. Only the receiving side enforces max_allowed_packet, so
//     what bounds a restore is the server's: 64MB by default in MySQL 8,
//     16MB in MariaDB 10.11 (these tests run MariaDB with 64MB). With
//     --hex-blob an INSERT is over twice the size of its row, so a row over
//     about 32MB can be backed up but not restored on MySQL 8 defaults.
//   - MYSQL_PWD. Oracle documents it as deprecated; the 8.0 and 8.4 clients
//     still read it. MariaDB's clients read it.
//   - Character set. Both dump utf8mb4 by default. A MariaDB server defaults
//     to latin1 unless configured; dbplane's MySQL configuration sets
//     utf8mb4, and so do these tests.
//
// For PostgreSQL, pg_dump from 14.19, 15.14, 16.10 and 17.6 on brackets the
// dump with \restrict and \unrestrict, which older psql rejects: a dump loads
// with psql of the same or a newer minor release.
package integration
