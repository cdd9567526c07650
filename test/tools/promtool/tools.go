//go:build tools

// Package tools pins promtool. test/tools/build.sh builds it.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
