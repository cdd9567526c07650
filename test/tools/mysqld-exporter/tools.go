//go:build tools

// Package tools pins mysqld-exporter. test/tools/build.sh builds it.
package tools

import _ "github.com/prometheus/mysqld_exporter"
