//go:build tools

// Package tools pins golangci-lint, the linter make lint runs over the
// project. test/tools/build.sh builds it.
package tools

import _ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
