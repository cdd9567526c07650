#!/usr/bin/env bash
# Renders a Database through the real crossplane CLI, with our function
# running as a local gRPC process (the Development runtime: no Docker).
#
#   test/render.sh [EXAMPLE] [extra render flags]
#
# RENDER_COMMAND picks the command: "composition render" (default, the
# pinned v2.5 CLI), "render" (its hidden alias) or "beta render" (the pinned
# Crossplane 1.16 CLI, which has no --xrd and no --crossplane-binary).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
example="${1:-examples/databases/postgresql-production.yaml}"
shift || true

# A claim's XDatabase (examples/claims/render/) renders with the claims
# package's Composition and XRD; a Database with the configuration's.
package=package/configuration
if grep -q '^kind: XDatabase$' "${example}"; then
  package=package/configuration-claims
fi

command="${RENDER_COMMAND:-composition render}"
case "${command}" in
"composition render" | render)
  cli="$(test/tools/build.sh crossplane-cli)"
  core="$(test/tools/build.sh crossplane-core)"
  functions=examples/render/functions.yaml
  flags=(--crossplane-binary="${core}" --xrd="${package}/xrd.yaml" --required-resources=examples/render/namespace.yaml)
  ;;
"beta render")
  cli="$(test/tools/build.sh crank)"
  functions=examples/render/functions-crossplane-1.yaml
  flags=(--extra-resources=examples/render/namespace.yaml)
  ;;
*)
  echo "RENDER_COMMAND must be \"composition render\", \"render\" or \"beta render\", got \"${command}\"" >&2
  exit 2
  ;;
esac
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

sed "s|127.0.0.1:9443|127.0.0.1:${port}|" "${functions}" >"${work}/functions.yaml"
# shellcheck disable=SC2086 # The command is one or two words.
"${cli}" ${command} "${example}" "${package}/composition.yaml" "${work}/functions.yaml" \
  "${flags[@]}" "$@"
