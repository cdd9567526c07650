//go:build tools

// Package tools pins the Kubernetes control-plane binaries the e2e harness
// runs (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl).
// test/tools/build.sh builds them from this module.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
