// Package apis holds dbplane's API types and the generators that turn them
// into deepcopy functions, CRDs and the Database XRD.
package apis

// The Database XRD is generated from apis/v1: controller-gen writes a CRD to a
// scratch directory and xrdgen wraps its schema into an XRD. Run `go generate
// ./...` (or `make generate`); CI fails when the result differs from git.

//go:generate go tool controller-gen object paths=./v1/... paths=./input/...
//go:generate go tool controller-gen crd:crdVersions=v1 paths=./input/... output:crd:dir=../package/function/input
//go:generate go tool controller-gen crd:crdVersions=v1 paths=./v1/... output:crd:dir=../_output/crd
//go:generate go run ./xrdgen --crd=../_output/crd/database.example.com_databases.yaml --out=../package/configuration/xrd.yaml --legacy-out=../package/configuration-claims/xrd.yaml
