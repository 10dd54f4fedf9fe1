package metricsrelay

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeEnvoy stands for Envoy's admin listener and records what reaches it.
type fakeEnvoy struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (f *fakeEnvoy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r.Clone(r.Context()))
	f.mu.Unlock()
	if r.URL.Path != "/stats/prometheus" {
		http.Error(w, "admin: "+r.URL.Path, http.StatusOK) // Envoy's admin answers every path
		return
	}
	_, _ = io.WriteString(w, "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"b\"} 1\n")
}

func newRelay(t *testing.T) (*Relay, *fakeEnvoy, *httptest.Server) {
	t.Helper()
	envoy := &fakeEnvoy{}
	up := httptest.NewServer(envoy)
	t.Cleanup(up.Close)
	r := New(up.URL+"/stats/prometheus", slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, envoy, srv
}

// TestRelayServesTheStatistics: GET /metrics is Envoy's /stats/prometheus.
func TestRelayServesTheStatistics(t *testing.T) {
	_, _, srv := newRelay(t)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "envoy_cluster_upstream_rq_total") {
		t.Fatalf("GET /metrics: %s %q", resp.Status, body)
	}
}

// TestRelayServesNothingElse: the paths an attacker wants from the admin port (diagd's
// _internal API, pprof, the diagnostics UI, Envoy's admin commands) and every other method are
// refused by the relay itself, and never reach Envoy.
func TestRelayServesNothingElse(t *testing.T) {
	_, envoy, srv := newRelay(t)
	cases := []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/ambassador/v0/diag/"},
		{"POST", "/_internal/v0/watt?url=http://attacker.example/snapshot"},
		{"GET", "/debug/pprof/"},
		{"GET", "/debug/pprof/cmdline"},
		{"POST", "/quitquitquit"},
		{"GET", "/stats/prometheus"},
		{"GET", "/metrics/"},
		{"GET", "//metrics"},
		{"GET", "/metrics/../quitquitquit"},
		{"GET", "/%6detrics"},
		{"GET", "/METRICS"},
		{"POST", "/metrics"},
		{"PUT", "/metrics"},
		{"DELETE", "/metrics"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("x"))
		req.URL.Opaque = c.path // send the path as written, not cleaned by the client
		if i := strings.IndexByte(c.path, '?'); i >= 0 {
			req.URL.Opaque = c.path[:i]
			req.URL.RawQuery = c.path[i+1:]
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %s, want 404 or 405", c.method, c.path, resp.Status)
		}
	}
	if len(envoy.seen) != 0 {
		t.Errorf("%d refused requests reached Envoy, e.g. %s %s", len(envoy.seen), envoy.seen[0].Method, envoy.seen[0].URL)
	}
}

// TestRelayForwardsNothingOfTheScraper: no header, query or body of the scrape reaches Envoy
// (diagd trusts X-Ambassador-Diag-IP; Envoy's admin reads query parameters as commands).
func TestRelayForwardsNothingOfTheScraper(t *testing.T) {
	_, envoy, srv := newRelay(t)
	req, _ := http.NewRequest("GET", srv.URL+"/metrics?filter=.*&usedonly&format=json", nil)
	req.Header.Set("X-Ambassador-Diag-IP", "127.0.0.1")
	req.Header.Set("Authorization", "Bearer stolen")
	req.Header.Set("X-Forwarded-For", "127.0.0.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(envoy.seen) != 1 {
		t.Fatalf("Envoy saw %d requests, want 1", len(envoy.seen))
	}
	got := envoy.seen[0]
	if got.Method != "GET" || got.URL.Path != "/stats/prometheus" || got.URL.RawQuery != "" {
		t.Errorf("Envoy got %s %s, want GET /stats/prometheus with no query", got.Method, got.URL)
	}
	for _, h := range []string{"X-Ambassador-Diag-Ip", "Authorization", "X-Forwarded-For"} {
		if v := got.Header.Get(h); v != "" {
			t.Errorf("the scraper's %s: %q reached Envoy", h, v)
		}
	}
}

// TestRelayBoundsConcurrentScrapes: beyond the bound a scrape is answered 503 at once, without a
// request to Envoy.
func TestRelayBoundsConcurrentScrapes(t *testing.T) {
	r, envoy, srv := newRelay(t)
	for range cap(r.scrapes) {
		r.scrapes <- struct{}{} // scrapes in flight
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || len(envoy.seen) != 0 {
		t.Errorf("scrape over the bound: %s, Envoy saw %d", resp.Status, len(envoy.seen))
	}
}

// TestRelayFailsClosedOnABadUpstream: an upstream error is a 502, not Envoy's error page.
func TestRelayFailsClosedOnABadUpstream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://attacker.example/", http.StatusFound)
	}))
	defer up.Close()
	srv := httptest.NewServer(New(up.URL, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("a redirecting upstream: %s, want 502 (redirects are not followed)", resp.Status)
	}
}
