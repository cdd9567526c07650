// Package harness holds what dbplane's real-server test tiers share: a
// process manager that starts a binary with its output in a log file and
// stops it by its PID, a free-port helper, polling, work directories kept on
// failure or with DBPLANE_E2E_KEEP set, and a timings table.
//
// It carries no build tag: test/integration, which runs in a plain `go test
// ./...`, imports it. The local control plane the e2e suites start is in
// the cluster subpackage, behind the e2e build tag.
package harness
