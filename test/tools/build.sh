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
