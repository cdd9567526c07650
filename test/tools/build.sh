#!/usr/bin/env bash
# Builds a pinned tool from its wrapper module under test/tools/<dir> into
# the cache outside the repo, keyed by version, once. Prints the binary path.
#
#   test/tools/build.sh crossplane-cli|crossplane-core|crossplane-core-v1|crank|registry|etcd|kwok|golangci-lint|
#                       kube-apiserver|kube-controller-manager|kube-scheduler|kubectl|
#                       postgres-exporter|mysqld-exporter|promtool|versitygw
#
# The version lives in one place: the wrapper's go.mod requires the tool's
# module, and that require line is the version built, stamped and cached. A
# bump there (go get MODULE@vX in the wrapper) rebuilds.
set -euo pipefail

name="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${DBPLANE_CACHE:-${HOME}/.cache/dbplane}/bin"

# Per tool: the module its wrapper requires and the main package to build.
# The wrapper directory is the tool's name unless set.
dir="${name}"
# Build tags, when a tool needs some; they are part of the cache key.
tags=""
case "${name}" in
crossplane-cli)
  mod=github.com/crossplane/cli/v2
  pkg=${mod}/cmd/crossplane
  ;;
crossplane-core)
  mod=github.com/crossplane/crossplane/v2
  pkg=${mod}/cmd/crossplane
  ;;
crossplane-core-v1)
  # Crossplane 1.20's core (the last 1.x minor), to run claims against a
  # 1.x control plane. Its main package is cmd/crossplane of the 1.x module.
  mod=github.com/crossplane/crossplane
  pkg=${mod}/cmd/crossplane
  ;;
crank)
  # The Crossplane 1.x CLI, for `crossplane beta render` (gone in v2). Its
  # main package is cmd/crank of the 1.x core module.
  mod=github.com/crossplane/crossplane
  pkg=${mod}/cmd/crank
  ;;
etcd)
  # The version k8s.io/kubernetes pins; the server module's root is the binary.
  mod=go.etcd.io/etcd/server/v3
  pkg=${mod}
  ;;
registry)
  # The CNCF distribution registry: the loopback OCI registry the e2e
  # suite pushes dbplane's packages to and Crossplane installs them from.
  mod=github.com/distribution/distribution/v3
  pkg=${mod}/cmd/registry
  ;;
kwok)
  mod=sigs.k8s.io/kwok
  pkg=${mod}/cmd/kwok
  ;;
golangci-lint)
  mod=github.com/golangci/golangci-lint/v2
  pkg=${mod}/cmd/golangci-lint
  ;;
postgres-exporter)
  # The version fn composes (its image tag); test/integration runs it.
  mod=github.com/prometheus-community/postgres_exporter
  pkg=${mod}/cmd/postgres_exporter
  ;;
mysqld-exporter)
  mod=github.com/prometheus/mysqld_exporter
  pkg=${mod}
  ;;
promtool)
  # Prometheus' Go module: v0.3MM.P is Prometheus 3.MM.P. Without the
  # service discovery plugins (Prometheus' own build tag): the tests only
  # check and test rules, and the cloud SDKs were most of its cold build.
  mod=github.com/prometheus/prometheus
  pkg=${mod}/cmd/promtool
  tags=remove_all_sd
  ;;
versitygw)
  # The S3-compatible server test/integration uploads backups to.
  mod=github.com/versity/versitygw
  pkg=${mod}/cmd/versitygw
  ;;
kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
  # Four binaries from one wrapper module.
  dir=kube
  mod=k8s.io/kubernetes
  pkg=${mod}/cmd/${name}
  ;;
*)
  echo "unknown tool ${name}" >&2
  exit 2
  ;;
esac

# The version the wrapper's go.mod requires, read from the file itself (not
# go list -m, which needs the module cache populated, so a warm binary cache
# would stop working offline). go.mod is machine-formatted: either
# "require MOD VERSION" or "MOD VERSION" inside a "require (" block.
gomod="${here}/${dir}/go.mod"
if [[ ! -f "${gomod}" ]]; then
  echo "no wrapper module ${gomod} for ${name}" >&2
  exit 2
fi
version="$(awk -v mod="${mod}" '
  $1 == "require" && $2 == mod { print $3; exit }
  $1 == "require" && $2 == "(" { block = 1; next }
  block && $1 == ")" { block = 0; next }
  block && $1 == mod { print $2; exit }
' "${gomod}")"
if [[ ! "${version}" =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]]; then
  echo "${gomod} does not require ${mod} at a semantic version (got '${version}')" >&2
  exit 2
fi

out="${cache}/${name}-${version}${tags:+-${tags//,/-}}"
if [[ -x "${out}" ]]; then
  echo "${out}"
  exit 0
fi

# Version stamps, per module the way its releases set them, from the version
# read above.
x=""
case "${mod}" in
github.com/crossplane/crossplane)
  # Crossplane 1.x keeps its version in the core module itself.
  x="-X github.com/crossplane/crossplane/internal/version.version=${version}"
  ;;
github.com/crossplane/*)
  x="-X github.com/crossplane/crossplane-runtime/v2/pkg/version.version=${version}"
  ;;
github.com/golangci/golangci-lint/*)
  # Without a date, golangci-lint reports the wrapper module's version instead.
  x="-X main.version=${version#v} -X main.date=2026-01-01T00:00:00Z"
  ;;
github.com/prometheus/* | github.com/prometheus-community/*)
  # What the exporters print in --version and report as *_exporter_build_info.
  x="-X github.com/prometheus/common/version.Version=${version#v}"
  ;;
k8s.io/kubernetes)
  # So /version and the skew checks see the pinned Kubernetes version.
  IFS=. read -r major minor _ <<<"${version#v}"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X ${p}.gitVersion=${version} -X ${p}.gitMajor=${major} -X ${p}.gitMinor=${minor}"
    x+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=2026-01-01T00:00:00Z"
  done
  ;;
esac

mkdir -p "${cache}"
echo "building ${name} ${version} into ${out} (cold: 1-20 minutes)" >&2
(
  cd "${here}/${dir}"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags "${tags}" -ldflags "-s -w ${x}" \
    -o "${out}.tmp" "${pkg}"
)
mv "${out}.tmp" "${out}"
echo "${out}"
