//go:build tools

// Package tools pins etcd at the version k8s.io/kubernetes v1.35.4 pins; the
// server module's root package is the etcd binary. test/tools/build.sh builds it.
package tools

import _ "go.etcd.io/etcd/server/v3"
