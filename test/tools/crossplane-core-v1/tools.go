//go:build tools

// Package tools pins Crossplane 1.20's core (cmd/crossplane of the 1.x
// module), to run dbplane's claims against the last 1.x minor release.
package tools

import _ "github.com/crossplane/crossplane/cmd/crossplane"
