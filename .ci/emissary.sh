#!/usr/bin/env bash
# Prepares Emissary 4.1.0's configuration compiler for the Envoy-configuration tier
# (tests/emissaryconfig_test.go, internal/envoytier/compile.py) and prints the environment the
# tests read, as `export` lines (.ci/run evals them):
#   ZTEDGE_EMISSARY_SRC  python/ambassador/src, unpacked once from ../shared/emissary (sha256 checked)
#                        into $ZTEDGE_TOOLS_CACHE (default ~/.cache/ztedge-tools)
#   ZTEDGE_PYTHONPATH    a directory holding Debian's prometheus_client (python3-prometheus-client,
#                        pure Python), for a python3 that has PyYAML, orjson and requests but not it
# The compiler needs nothing else (durationpy is stubbed in compile.py; no Knative objects).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${ZTEDGE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ztedge-tools}
archive="$root/../shared/emissary/emissary-v4.1.0-python.tar.xz"
sum=3e2e0923c12cf2ab073b515d69cd418154d0f131c6dd177e5109cd255436c331 # ../shared/emissary/README.md
src="$CACHE/emissary-4.1.0/python/ambassador/src"

if [ ! -f "$src/ambassador/ir/ir.py" ]; then
  [ -f "$archive" ] || { echo "emissary.sh: $archive is missing (the Emissary compiler source travels in ../shared)" >&2; exit 1; }
  echo "$sum  $archive" | sha256sum -c --quiet - >&2
  rm -rf "$CACHE/emissary-4.1.0" && mkdir -p "$CACHE/emissary-4.1.0"
  tar xJf "$archive" -C "$CACHE/emissary-4.1.0"
fi

python3 -c 'import yaml, orjson, requests' 2>/dev/null || {
  echo "emissary.sh: python3 ($(command -v python3)) lacks PyYAML, orjson or requests, which the compiler imports" >&2; exit 1; }
pylib="$CACHE/emissary-4.1.0/pylib"
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  deb=/usr/lib/python3/dist-packages/prometheus_client
  if [ ! -d "$deb" ]; then
    if [ "$(id -u)" = 0 ]; then
      { apt-get install -y python3-prometheus-client || { apt-get update && apt-get install -y python3-prometheus-client; }; } >&2
    else
      echo "emissary.sh: install python3-prometheus-client (sudo apt-get install -y python3-prometheus-client)" >&2; exit 1
    fi
  fi
  mkdir -p "$pylib" && ln -sfn "$deb" "$pylib/prometheus_client"
fi
printf 'export ZTEDGE_EMISSARY_SRC=%q\nexport ZTEDGE_PYTHONPATH=%q\n' "$src" "$pylib"
