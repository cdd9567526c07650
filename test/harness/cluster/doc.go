// Package cluster starts dbplane on a real local control plane for the e2e
// suites: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// built from k8s.io/kubernetes, kwok faking a node with its pods, a volume
// binder provisioning their claims, Crossplane core and its RBAC manager
// running as their ServiceAccounts, the composition function as a local
// process Crossplane calls over mTLS, and the SQL provider as a local process
// running as its ServiceAccount, with dbplane's XRD and Composition
// installed. It also holds what the suites do with Databases on it,
// including real PostgreSQL servers on loopback behind a Database's fake
// pods, which the provider reaches through its test-only address map.
//
// Every other file carries the e2e build tag, as the suites in test/e2e do.
package cluster
