#!/usr/bin/env bash
# Builds a pinned tool from its wrapper module under test/tools/<name> into
# the cache outside the repo, keyed by version, once. Prints the binary path.
#
#   test/tools/build.sh crossplane-cli|crossplane-core
set -euo pipefail

name="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${DBPLANE_CACHE:-${HOME}/.cache/dbplane}/bin"

case "${name}" in
crossplane-cli)
  version=v2.5.0
  pkg=github.com/crossplane/cli/v2/cmd/crossplane
  ;;
crossplane-core)
  version=v2.4.2
  pkg=github.com/crossplane/crossplane/v2/cmd/crossplane
  ;;
golangci-lint)
  version=v2.15.0
  pkg=github.com/golangci/golangci-lint/v2/cmd/golangci-lint
  ;;
etcd)
  # The version k8s.io/kubernetes v1.35.4 pins; the server module's root is the binary.
  version=v3.6.5
  pkg=go.etcd.io/etcd/server/v3
  ;;
kwok)
  version=v0.8.0
  pkg=sigs.k8s.io/kwok/cmd/kwok
  ;;
kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
  # Four binaries from one wrapper module (test/tools/kube) with the version
  # stamped the way Kubernetes releases do, so /version and the skew checks
  # see v1.35.4. Built here rather than below because the wrapper directory
  # is shared and the ldflags differ.
  version=v1.35.4
  out="${cache}/${name}-${version}"
  if [[ ! -x "${out}" ]]; then
    mkdir -p "${cache}"
    echo "building ${name} ${version} into ${out} (cold: 1-10 minutes)" >&2
    x=""
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      x+=" -X ${p}.gitVersion=${version} -X ${p}.gitMajor=1 -X ${p}.gitMinor=35"
      x+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=2026-01-01T00:00:00Z"
    done
    (
      cd "${here}/kube"
      CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w${x}" \
        -o "${out}.tmp" "k8s.io/kubernetes/cmd/${name}"
    )
    mv "${out}.tmp" "${out}"
  fi
  echo "${out}"
  exit 0
  ;;
*)
  echo "unknown tool ${name}" >&2
  exit 2
  ;;
esac

out="${cache}/${name}-${version}"
if [[ -x "${out}" ]]; then
  echo "${out}"
  exit 0
fi
mkdir -p "${cache}"
echo "building ${name} ${version} into ${out} (cold: 5-20 minutes)" >&2
(
  cd "${here}/${name}"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X github.com/crossplane/crossplane-runtime/v2/pkg/version.version=${version}" \
    -o "${out}.tmp" "${pkg}"
)
mv "${out}.tmp" "${out}"
echo "${out}"
