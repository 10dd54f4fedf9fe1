-- wrk script for the jwt-auth check endpoint: every request carries the
-- bearer token from $TOKEN (see cmd/loadgen/load-auth.sh).
--   TOKEN=... wrk -t2 -c32 -d10s --latency -s cmd/loadgen/check.lua http://127.0.0.1:3901/auth/api/orders/1
local token = os.getenv("TOKEN")
if token == nil or token == "" then
  error("set TOKEN to a bearer token")
end
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. token
