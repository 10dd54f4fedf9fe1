#!/usr/bin/env bash
# The alert rules under test: `promtool check rules` (syntax, templates) and `promtool test rules`
# (components/monitoring/rules_test.yaml: each alert with a series that fires it and one that does
# not). promtool is built from the Go module proxy at the version pinned in
# .ci/tools/promtool/go.mod, once per version, into ~/.cache/ztedge-tools/promtool-<version>/.
# PROMTOOL=<path> uses another binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
CACHE=${ZTEDGE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ztedge-tools}

if [ -z "${PROMTOOL:-}" ]; then
  v=$(awk '$1 == "github.com/prometheus/prometheus" && $2 ~ /^v/ { print $2; exit }' .ci/tools/promtool/go.mod)
  [ -n "$v" ] || { echo ".ci/tools/promtool/go.mod pins no github.com/prometheus/prometheus version" >&2; exit 1; }
  PROMTOOL="$CACHE/promtool-$v/promtool"
  if [ ! -x "$PROMTOOL" ]; then
    start=$SECONDS
    mkdir -p "$(dirname "$PROMTOOL")"
    (cd .ci/tools/promtool && go build -trimpath -ldflags "-s -w" -o "$PROMTOOL.tmp" github.com/prometheus/prometheus/cmd/promtool)
    mv "$PROMTOOL.tmp" "$PROMTOOL"
    printf 'built promtool %s in %ss\n' "$v" "$((SECONDS - start))" >&2
  fi
fi
"$PROMTOOL" --version | head -1
cd components/monitoring
"$PROMTOOL" check rules rules.yaml
"$PROMTOOL" test rules rules_test.yaml
