package components

// Envoy's access log, as the audit trail's edge half (docs/audit.md). One JSON line per request
// on Ambassador's stdout (Emissary's default envoy_log_path), with the request id Envoy generates
// and forwards to jwt-auth in the ext_authz call (x-request-id is in AuthRequestHeaders), so each
// line joins jwt-auth's audit line for the same request.
//
// Keys are Emissary 4.1.0 Module keys (envoy_log_type, envoy_log_format:
// python/ambassador/src/ambassador/envoy/v3/v3listener.py, json_helper/access_log: with
// envoy_log_type json the format is a dict handed to Envoy's FileAccessLog json_format). The
// values are Envoy command operators (Envoy docs, configuration/observability/access_log/usage).

// AccessLogFormat is the JSON access log line: field name → Envoy command operator.
var AccessLogFormat = map[string]any{
	"time":                  "%START_TIME%",
	"request_id":            "%REQ(X-REQUEST-ID)%",
	"client_address":        "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
	"x_forwarded_for":       "%REQ(X-FORWARDED-FOR)%",
	"method":                "%REQ(:METHOD)%",
	"authority":             "%REQ(:AUTHORITY)%",
	"path":                  "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
	"protocol":              "%PROTOCOL%",
	"upstream_cluster":      "%UPSTREAM_CLUSTER%",
	"status":                "%RESPONSE_CODE%",
	"response_code_details": "%RESPONSE_CODE_DETAILS%",
	"response_flags":        "%RESPONSE_FLAGS%",
	"x_user_id":             "%REQ(X-USER-ID)%",
	"duration_ms":           "%DURATION%",
	"upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
	"bytes_received":        "%BYTES_RECEIVED%",
	"bytes_sent":            "%BYTES_SENT%",
	"user_agent":            "%REQ(USER-AGENT)%",
	"tls_version":           "%DOWNSTREAM_TLS_VERSION%",
	"client_cert_subject":   "%DOWNSTREAM_PEER_SUBJECT%",
	"upstream_host":         "%UPSTREAM_HOST%",
}

// AccessLogModuleConfig is the part of the `ambassador` Module config that turns it on.
func AccessLogModuleConfig() map[string]any {
	format := map[string]any{}
	for k, v := range AccessLogFormat {
		format[k] = v
	}
	return map[string]any{"envoy_log_type": "json", "envoy_log_format": format}
}
