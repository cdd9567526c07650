//go:build tools

// Package tools pins postgres-exporter. test/tools/build.sh builds it.
package tools

import _ "github.com/prometheus-community/postgres_exporter/cmd/postgres_exporter"
