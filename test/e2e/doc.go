// Package e2e runs dbplane on a real local control plane: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from
// k8s.io/kubernetes, kwok faking a node with its pods and volumes, Crossplane
// core and its RBAC manager running as their ServiceAccounts, the
// composition function as a local process Crossplane calls over mTLS, and
// the SQL provider as a local process running as its ServiceAccount. No
// Docker, kind or internet: every binary is built from a pinned wrapper
// module under test/tools by test/tools/build.sh, once. The control plane is
// test/harness/cluster's; these files hold the scenarios, and TestMain,
// which starts it once for them all.
//
// Nothing runs inside the pods (no images, DNS or pod network): the suites
// prove what the API shows, through the whole Crossplane pipeline. Only the
// Databases of provider_test.go get SQL logins (the SQLUsersComposition):
// real PostgreSQL servers on loopback stand behind their pods, which the
// provider reaches through its address map. The tests carry the e2e build
// tag:
//
//	go test -tags e2e ./test/e2e/ -count=1 -v -timeout 60m
package e2e
