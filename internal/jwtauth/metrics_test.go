package jwtauth

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The login-throttling and refusal counters the alerts read move when /token throttles.
func TestThrottlingIsCounted(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Throttle = ThrottleConfig{UserBurst: 2, UserInterval: time.Minute, IPBurst: 4, IPInterval: time.Minute}
	})
	xff := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": "6.6.6.6, " + ip} }
	for range 3 {
		e.tokenReq(pwForm("alice", "nope"), xff("10.0.0.1"))
	}
	m := e.srv.metrics
	if got := testutil.ToFloat64(m.throttled.WithLabelValues(throttleUsername)); got != 1 {
		t.Errorf("username throttles: %v, want 1", got)
	}
	for range 2 {
		e.tokenReq(pwForm("bob", "nope"), xff("10.0.0.1"))
	}
	if got := testutil.ToFloat64(m.throttled.WithLabelValues(throttleSource)); got != 1 {
		t.Errorf("source throttles: %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.refusals.WithLabelValues("throttled")); got != 2 {
		t.Errorf("throttled refusals: %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.refusals.WithLabelValues("bad_credentials")); got != 3 {
		t.Errorf("bad_credentials refusals: %v, want 3", got)
	}
}

// The client CA's expiry is exported for the certificate-expiry alert.
func TestClientCAExpiryIsExported(t *testing.T) {
	e := newEnv(t, nil)
	want := float64(e.ca.cert.NotAfter.Unix())
	if got := testutil.ToFloat64(e.srv.metrics.clientCANotAfter); got != want {
		t.Errorf("jwt_auth_client_ca_not_after_timestamp_seconds = %v, want %v", got, want)
	}
}

// MetricNames is the registry's own list: the families the alerts read are in it.
func TestMetricNames(t *testing.T) {
	names, err := MetricNames()
	if err != nil {
		t.Fatal(err)
	}
	for n, typ := range map[string]MetricType{
		"jwt_auth_decisions_total": "counter", "jwt_auth_login_throttled_total": "counter",
		"jwt_auth_token_refusals_total": "counter", "jwt_auth_request_duration_seconds": "histogram",
		"jwt_auth_client_ca_not_after_timestamp_seconds": "gauge", "jwt_auth_key_reloads_total": "counter",
	} {
		if names[n] != typ {
			t.Errorf("%s: type %q, want %q", n, names[n], typ)
		}
	}
}

// --metrics-listen serves /metrics and nothing else: the port a NetworkPolicy opens to
// Prometheus cannot reach /auth or /token.
func TestMetricsListenerServesOnlyMetrics(t *testing.T) {
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	maddr := free()
	e := newEnv(t, func(c *Config) { c.MetricsListen = maddr })
	e.serve(t)
	var err error
	get := func(path string) (int, string) {
		var resp *http.Response
		for i := 0; ; i++ {
			resp, err = http.Get("http://" + maddr + path)
			if err == nil || i > 50 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get("/metrics"); st != 200 || !strings.Contains(body, "jwt_auth_decisions_total") {
		t.Errorf("/metrics on the metrics port: %d", st)
	}
	for _, p := range []string{"/auth/x", "/token", "/.well-known/jwks.json", "/healthz"} {
		if st, _ := get(p); st != http.StatusNotFound {
			t.Errorf("%s on the metrics port: %d, want 404", p, st)
		}
	}
}
