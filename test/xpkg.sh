#!/usr/bin/env bash
# Builds dbplane's Crossplane packages offline into ${XPKG_OUT:-_output/xpkg}:
#   function-dbplane.xpkg       the function, with its runtime image embedded
#   configuration-dbplane.xpkg  the Database XRD and Composition
#   configuration-dbplane-claims.xpkg  the legacy XDatabase XRD (claim
#                               DatabaseClaim) and its Composition
#   provider-sql.xpkg           the SQL provider, with its runtime image embedded
# `crossplane xpkg build` reads every YAML under a package root, so each
# package is staged alone: examples and tests never end up in a package.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
out="$(realpath -m "${XPKG_OUT:-_output/xpkg}")"
version="${VERSION:-v0.1.0}"
cli="$(test/tools/build.sh crossplane-cli)"

rm -rf "${out}"
mkdir -p "${out}/stage/function" "${out}/stage/configuration" "${out}/stage/configuration-claims"
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "-s -w" -o "${out}/function" ./cmd/function
(cd test/tools/image && GOFLAGS=-mod=mod go run . --binary="${out}/function" \
  --ref="xpkg.dbplane.io/dbplane/function-dbplane:${version}" --out="${out}/function-image.tar")

cp -r package/function/. "${out}/stage/function/"
cp crossplane.yaml package/configuration/xrd.yaml package/configuration/composition.yaml "${out}/stage/configuration/"
cp package/configuration-claims/crossplane.yaml package/configuration-claims/xrd.yaml package/configuration-claims/composition.yaml \
  "${out}/stage/configuration-claims/"

"${cli}" xpkg build --package-root="${out}/stage/function" \
  --embed-runtime-image-tarball="${out}/function-image.tar" -o "${out}/function-dbplane.xpkg"
"${cli}" xpkg build --package-root="${out}/stage/configuration" -o "${out}/configuration-dbplane.xpkg"
"${cli}" xpkg build --package-root="${out}/stage/configuration-claims" -o "${out}/configuration-dbplane-claims.xpkg"

# The SQL provider. Unlike the function it talks TLS to databases, so its
# image carries this machine's CA bundle (Debian's ca-certificates).
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "-s -w" -o "${out}/provider" ./cmd/provider
(cd test/tools/image && GOFLAGS=-mod=mod go run . --binary="${out}/provider" --entrypoint=/provider --port=8080/tcp \
  --ca-bundle=/etc/ssl/certs/ca-certificates.crt \
  --ref="xpkg.dbplane.io/dbplane/provider-sql:${version}" --out="${out}/provider-image.tar")
mkdir -p "${out}/stage/provider" && cp -r package/provider/. "${out}/stage/provider/"
"${cli}" xpkg build --package-root="${out}/stage/provider" \
  --embed-runtime-image-tarball="${out}/provider-image.tar" -o "${out}/provider-sql.xpkg"
ls -l "${out}"/*.xpkg
