package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/components"
)

// Issue 10, item 3: the audit trail. Envoy logs every request as JSON with the fields an
// investigation needs, and its request id is the one jwt-auth logs for the same request.

// TestAccessLogJoinsTheAuditLog: on every stack, clientAuth mode and edition, the `ambassador`
// Module turns on Envoy's JSON access log with the investigation fields, and the id it logs is the
// header the AuthService forwards to jwt-auth (which logs it as request_id).
func TestAccessLogJoinsTheAuditLog(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		m := ambassadorModule(t, r)
		checkModule(t, m) // keys Emissary 4.1.0 reads
		if m["envoy_log_type"] != "json" {
			t.Fatalf("envoy_log_type = %v, want json", m["envoy_log_type"])
		}
		format, _ := m["envoy_log_format"].(map[string]any)
		for field, op := range map[string]string{
			"time":                  "%START_TIME%",
			"request_id":            "%REQ(X-REQUEST-ID)%",
			"client_address":        "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
			"path":                  "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
			"upstream_cluster":      "%UPSTREAM_CLUSTER%",
			"status":                "%RESPONSE_CODE%",
			"response_code_details": "%RESPONSE_CODE_DETAILS%",
			"response_flags":        "%RESPONSE_FLAGS%",
			"x_user_id":             "%REQ(X-USER-ID)%",
		} {
			if format[field] != op {
				t.Errorf("access log field %s = %v, want %s", field, format[field], op)
			}
		}
		auth := r.g.object("AuthService", components.AuthName)
		headers, _ := spec(auth, "allowed_request_headers").([]any)
		if !slices.Contains(headers, any("x-request-id")) {
			t.Errorf("the AuthService does not send x-request-id to jwt-auth (%v): its audit line cannot join the access log", headers)
		}
	})
}

// TestAuditFieldsAreDocumented: docs/audit.md explains every access-log field ztedge configures
// and every field of jwt-auth's audit lines.
func TestAuditFieldsAreDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs/audit.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	fields := sortedKeys(components.AccessLogFormat)
	// jwt-auth's attributes (internal/jwtauth/audit.go: auditCheck, auditGrant).
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "internal/jwtauth/audit.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(src), "\n") {
		if i := strings.Index(line, `slog.String("`); i >= 0 {
			rest := line[i+len(`slog.String("`):]
			fields = append(fields, rest[:strings.IndexByte(rest, '"')])
		} else if i := strings.Index(line, `slog.Int("`); i >= 0 {
			rest := line[i+len(`slog.Int("`):]
			fields = append(fields, rest[:strings.IndexByte(rest, '"')])
		}
	}
	if len(fields) < len(components.AccessLogFormat)+8 {
		t.Fatalf("found only %d fields", len(fields))
	}
	for _, f := range fields {
		if !strings.Contains(doc, "`"+f+"`") {
			t.Errorf("docs/audit.md does not explain field %s", f)
		}
	}
}
