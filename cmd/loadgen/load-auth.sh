#!/bin/sh
# Loopback load run of the jwt-auth check endpoint (make load-auth).
# Starts bin/jwt-auth on 127.0.0.1 with a fresh key and one user, then
# drives GET /auth/api/orders/1 with cmd/loadgen (and with wrk too when
# it is installed and WRK=1). Everything stays on 127.0.0.1 and stops by
# itself. Knobs: PORT, DURATION, CONCURRENCY, WRK, WRK_THREADS, and
# SERVER_PROCS / CLIENT_PROCS (GOMAXPROCS of jwt-auth / loadgen; on a
# 2-core box 1 each keeps the two from preempting each other).
#
# SCENARIO=flood: checks while FLOOD (48) workers send wrong-password
# logins, each from a new X-Forwarded-For address and for a new user, at
# production bcrypt cost 12 (p99 of the checks is the figure).
# SCENARIO=long-usernames: 1,500 logins with 60 KiB usernames, from new
# addresses; prints jwt-auth's live heap before and after.
# SCENARIO=headers: checks while HEADER_FLOOD (4000) clients, each on its
# own connection, send checks with 60 KiB of headers; jwt-auth runs with
# MEMORY_LIMIT (256Mi, the pod's limit) and the run fails if its peak RSS
# goes over it.
# SCENARIO=compare: the same checks against a bare net/http server
# answering 200 (loadgen -serve-bare), against jwt-auth with one cached
# token, and against jwt-auth with a new token on every request
# (first sight: ES256 verification each time).
set -eu
BIN=${BIN:-bin}
PORT=${PORT:-3901}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-8}
WRK_THREADS=${WRK_THREADS:-1}
SERVER_PROCS=${SERVER_PROCS:-}
CLIENT_PROCS=${CLIENT_PROCS:-1}
SCENARIO=${SCENARIO:-checks}
FLOOD=${FLOOD:-48}
HEADER_FLOOD=${HEADER_FLOOD:-4000}
MEMORY_LIMIT_MIB=${MEMORY_LIMIT_MIB:-256}
BASE="http://127.0.0.1:$PORT"
COST=10 HOPS=0
case $SCENARIO in
flood) COST=12 HOPS=1 ;;         # production cost; every login from its own address, as behind Emissary
long-usernames) COST=4 HOPS=1 ;; # memory, not CPU, is measured: cheap hashes keep the run short
esac

tmp=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mkdir "$tmp/keys"
"$BIN/jwt-auth" gen-key >"$tmp/keys/2025-01.pem"
hash=$(printf 'load-test-password\n' | "$BIN/jwt-auth" hash-password -cost "$COST")
cat >"$tmp/users.yaml" <<YAML
users:
  - username: load
    password_hash: "$hash"
    permissions: [orders:read]
    services: [/api/orders]
    origins: [https://app.example.com]
YAML

# The audit log goes to a file, as it would go to the container log.
# (The memory limit goes by environment so that an older jwt-auth without
# the flag can be driven by the same script.)
JWT_AUTH_MEMORY_LIMIT=${MEMORY_LIMIT_MIB}Mi GOMAXPROCS=$SERVER_PROCS "$BIN/jwt-auth" --listen "127.0.0.1:$PORT" --signing-keys "$tmp/keys" \
	--issuer https://auth.load.test --audience ztedge --users "$tmp/users.yaml" \
	--trusted-hops "$HOPS" >"$tmp/audit.log" 2>&1 &
pid=$!

loadgen() {
	GOMAXPROCS=$CLIENT_PROCS "$BIN/loadgen" -target "$BASE" -username load -password load-test-password \
		-origin https://app.example.com -concurrency "$CONCURRENCY" "$@"
}
case $SCENARIO in
checks)
	echo "== cmd/loadgen, $CONCURRENCY connections, $DURATION"
	loadgen -duration "$DURATION"
	;;
flood)
	echo "== cmd/loadgen, $CONCURRENCY check connections under a login flood of $FLOOD workers (bcrypt cost 12), $DURATION"
	loadgen -duration "$DURATION" -flood "$FLOOD"
	;;
headers)
	echo "== cmd/loadgen, $CONCURRENCY check connections while $HEADER_FLOOD clients send 60 KiB headers, $DURATION, limit ${MEMORY_LIMIT_MIB} MiB"
	loadgen -duration "$DURATION" -header-flood "$HEADER_FLOOD" -header-bytes 61440 -pid "$pid" -rss-limit-mib "$MEMORY_LIMIT_MIB"
	;;
compare)
	GOMAXPROCS=$SERVER_PROCS "$BIN/loadgen" -serve-bare "127.0.0.1:$((PORT + 1))" -duration 2m &
	bare=$!
	echo "== bare net/http, $CONCURRENCY connections, $DURATION"
	GOMAXPROCS=$CLIENT_PROCS "$BIN/loadgen" -target "http://127.0.0.1:$((PORT + 1))" -token bare -concurrency "$CONCURRENCY" -duration "$DURATION"
	kill "$bare"
	wait "$bare" 2>/dev/null || true
	echo "== jwt-auth, cached token, $CONCURRENCY connections, $DURATION"
	loadgen -duration "$DURATION"
	echo "== jwt-auth, first sight (a new token per request), $CONCURRENCY connections, $DURATION"
	loadgen -duration "$DURATION" -fresh-tokens "${FRESH_TOKENS:-100000}" -signing-key "$tmp/keys/2025-01.pem"
	;;
long-usernames)
	echo "== baseline"
	loadgen -duration 2s -heap
	echo "== 1500 logins with 60 KiB usernames, 8 workers"
	loadgen -duration 2m -flood 8 -flood-requests 1500 -flood-username-bytes 61440 -heap # checks stop with the flood
	;;
*)
	echo "SCENARIO must be checks, flood, headers, compare or long-usernames" >&2
	exit 2
	;;
esac

if [ "${WRK:-0}" = 1 ] && command -v wrk >/dev/null 2>&1; then
	echo "== wrk -t$WRK_THREADS -c$CONCURRENCY -d$DURATION"
	TOKEN=$("$BIN/loadgen" -target "$BASE" -username load -password load-test-password -print-token) \
		wrk -t"$WRK_THREADS" -c"$CONCURRENCY" -d"$DURATION" --latency -s cmd/loadgen/check.lua "$BASE/auth/api/orders/1"
fi

kill -TERM "$pid"
wait "$pid" || true
pid=""
echo "== audit lines written: $(grep -c '"msg":"check"' "$tmp/audit.log")"
