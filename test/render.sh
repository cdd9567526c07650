#!/usr/bin/env bash
# Renders a Database through the real crossplane CLI, with our function
# running as a local gRPC process (the Development runtime: no Docker).
#
#   test/render.sh [EXAMPLE] [extra crossplane composition render flags]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
example="${1:-examples/databases/postgresql-production.yaml}"
shift || true

cli="$(test/tools/build.sh crossplane-cli)"
core="$(test/tools/build.sh crossplane-core)"
mkdir -p _output/bin
go build -o _output/bin/function ./cmd/function

# A free loopback port: the first one nothing answers on.
port=19443
while (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; do port=$((port + 1)); done

work="$(mktemp -d)"
_output/bin/function --insecure --address="127.0.0.1:${port}" --metrics-address= 2>"${work}/function.log" &
fpid=$!
trap 'kill "${fpid}" 2>/dev/null || true; rm -rf "${work}"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null && break
  kill -0 "${fpid}" 2>/dev/null || { cat "${work}/function.log" >&2; exit 1; }
  sleep 0.1
done

sed "s|127.0.0.1:9443|127.0.0.1:${port}|" examples/render/functions.yaml >"${work}/functions.yaml"
"${cli}" composition render "${example}" package/configuration/composition.yaml "${work}/functions.yaml" \
  --crossplane-binary="${core}" --xrd=package/configuration/xrd.yaml \
  --required-resources=examples/render/namespace.yaml "$@"
