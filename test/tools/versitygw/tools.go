//go:build tools

// Package tools pins versitygw, the S3-compatible server the integration
// tests upload backups to. test/tools/build.sh builds it.
package tools

import _ "github.com/versity/versitygw/cmd/versitygw"
