#!/bin/sh
# Loopback load run of the jwt-auth check endpoint (make load-auth).
# Starts bin/jwt-auth on 127.0.0.1 with a fresh key and one user, then
# drives GET /auth/api/orders/1 with cmd/loadgen (and with wrk too when
# it is installed and WRK=1). Everything stays on 127.0.0.1 and stops by
# itself. Knobs: PORT, DURATION, CONCURRENCY, WRK, WRK_THREADS, and
# SERVER_PROCS / CLIENT_PROCS (GOMAXPROCS of jwt-auth / loadgen; on a
# 2-core box 1 each keeps the two from preempting each other).
set -eu
BIN=${BIN:-bin}
PORT=${PORT:-3901}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-8}
WRK_THREADS=${WRK_THREADS:-1}
SERVER_PROCS=${SERVER_PROCS:-}
CLIENT_PROCS=${CLIENT_PROCS:-1}
BASE="http://127.0.0.1:$PORT"

tmp=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mkdir "$tmp/keys"
"$BIN/jwt-auth" gen-key >"$tmp/keys/2025-01.pem"
hash=$(printf 'load-test-password\n' | "$BIN/jwt-auth" hash-password -cost 10)
cat >"$tmp/users.yaml" <<YAML
users:
  - username: load
    password_hash: "$hash"
    permissions: [orders:read]
    services: [/api/orders]
    origins: [https://app.example.com]
YAML

# The audit log goes to a file, as it would go to the container log.
GOMAXPROCS=$SERVER_PROCS "$BIN/jwt-auth" --listen "127.0.0.1:$PORT" --signing-keys "$tmp/keys" \
	--issuer https://auth.load.test --audience ztedge --users "$tmp/users.yaml" \
	--trusted-hops 0 >"$tmp/audit.log" 2>&1 &
pid=$!

echo "== cmd/loadgen, $CONCURRENCY connections, $DURATION"
GOMAXPROCS=$CLIENT_PROCS "$BIN/loadgen" -target "$BASE" -username load -password load-test-password \
	-origin https://app.example.com -concurrency "$CONCURRENCY" -duration "$DURATION"

if [ "${WRK:-0}" = 1 ] && command -v wrk >/dev/null 2>&1; then
	echo "== wrk -t$WRK_THREADS -c$CONCURRENCY -d$DURATION"
	TOKEN=$("$BIN/loadgen" -target "$BASE" -username load -password load-test-password -print-token) \
		wrk -t"$WRK_THREADS" -c"$CONCURRENCY" -d"$DURATION" --latency -s cmd/loadgen/check.lua "$BASE/auth/api/orders/1"
fi

kill -TERM "$pid"
wait "$pid" || true
pid=""
echo "== audit lines written: $(grep -c '"msg":"check"' "$tmp/audit.log")"
