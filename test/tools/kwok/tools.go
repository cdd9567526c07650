//go:build tools

// Package tools pins kwok, which fakes the e2e cluster's node, pods and
// volumes. test/tools/build.sh builds it.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
