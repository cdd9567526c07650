// Package sql holds the API types of dbplane's provider: the namespaced
// ProviderConfig that names a database server and its admin login, the User
// managed resource, a least-privilege login with a rotated password, and the
// Replication managed resource, the streaming replication of one Database.
package sql

// controller-gen writes deepcopy functions next to the types and the CRDs
// into the provider package. Run `go generate ./...` in apis/ (or `make
// generate`); CI fails when the result differs from git. The managed
// resource methods angryjet would generate are in v1alpha1/zz_managed.go,
// written by hand and held to the crossplane-runtime interfaces by
// compile-time assertions.

//go:generate go tool controller-gen object paths=./v1alpha1/...
//go:generate go tool controller-gen crd:crdVersions=v1 paths=./v1alpha1/... output:crd:dir=../../package/provider/crds
