#!/usr/bin/env bash
# Prints the path of egctl (Envoy Gateway's CLI) at the version pinned in e2e/tools/egctl/go.mod,
# building it from the Go module proxy once per version into $ZTEDGE_E2E_CACHE (default
# ~/.cache/ztedge-e2e), like e2e/run.sh does for the real-engine tools. The Envoy-configuration
# tier (tests/envoygateway_test.go) runs `egctl x translate` offline on the rendered objects.
# Cold build: about 10 minutes on two shared cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${ZTEDGE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ztedge-e2e}
v=$(awk '$1 == "github.com/envoyproxy/gateway" && $2 ~ /^v/ { print $2; exit }' "$root/e2e/tools/egctl/go.mod")
out="$CACHE/egctl-$v/egctl"
if [ ! -x "$out" ]; then
  mkdir -p "$(dirname "$out")"
  start=$SECONDS
  (cd "$root/e2e/tools/egctl" && GOFLAGS="${GOFLAGS:-} -buildvcs=false" go build -trimpath -ldflags "-s -w" -o "$out.tmp" github.com/envoyproxy/gateway/cmd/egctl)
  mv "$out.tmp" "$out"
  printf 'built egctl %s in %ss\n' "$v" "$((SECONDS - start))" >&2
fi
printf '%s' "$out"
