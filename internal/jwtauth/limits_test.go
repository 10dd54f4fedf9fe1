package jwtauth

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLimitsFitTheMemoryLimit: for every limit the derived connections
// (each reading a full header block) and requests (each a full /token
// form) fit in the share of the limit given to clients.
func TestLimitsFitTheMemoryLimit(t *testing.T) {
	for _, mib := range []int64{96, 128, 256, 512, 2048} {
		limit := mib << 20
		l := LimitsFor(limit)
		used := int64(baseBytes) + int64(l.MaxConnections)*connBytes + int64(l.MaxRequests)*requestBytes
		if used > int64(float64(limit)*budgetShare) || l.MaxConnections < 50 || l.MaxRequests < 10 {
			t.Errorf("%d MiB: %+v uses %d MiB of %d MiB", mib, l, used>>20, mib)
		}
	}
	for in, want := range map[string]int64{"256Mi": 256 << 20, "268435456": 256 << 20, "1Gi": 1 << 30, "512Ki": 512 << 10} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "256MB", "-1", "0", "1Ti"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
	cfg := Config{SigningKeysDir: "x", Issuer: "i", Audience: "a", MemoryLimit: 64 << 20}
	cfg.setDefaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--memory-limit") {
		t.Errorf("64 MiB: %v, want an error naming --memory-limit", err)
	}
}

// serveLimited runs the real Serve loop with small limits.
func serveLimited(t *testing.T, l Limits) (*env, string) {
	e := newEnv(t, func(c *Config) { c.Limits = l })
	return e, e.serve(t)
}

// startRequest opens a connection and sends a request's head without its
// end, so the server holds the connection (reading headers) or, with a
// body announced, the request (reading the body).
func startRequest(t *testing.T, addr, head string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	return c
}

// answered sends a whole check on a new connection and returns its
// status, or 0 if none came within wait.
func answered(t *testing.T, addr string, wait time.Duration) int {
	c := startRequest(t, addr, "GET /auth/x HTTP/1.1\r\nHost: a\r\n\r\n")
	defer c.Close() // or it would take the next free slot
	_ = c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestConnectionLimit: connections beyond the limit used to be accepted
// without bound (each reading up to 64 KiB of headers). Now they wait in
// the accept queue until one closes.
func TestConnectionLimit(t *testing.T) {
	_, addr := serveLimited(t, Limits{MaxConnections: 3, MaxRequests: 8})
	var held []net.Conn
	for range 3 {
		held = append(held, startRequest(t, addr, "GET /auth/x HTTP/1.1\r\nHost: a\r\nX-Pad: "))
	}
	if st := answered(t, addr, 300*time.Millisecond); st != 0 {
		t.Fatalf("a fourth connection was served (%d) while three were open", st)
	}
	held[0].Close()
	if st := answered(t, addr, 2*time.Second); st != http.StatusUnauthorized {
		t.Fatalf("after one closed: %d, want 401", st)
	}
}

// TestRequestLimit: /token requests beyond the limit get 503 after a short
// wait instead of piling up (each may hold a 64 KiB body); checks and
// health probes still answer.
func TestRequestLimit(t *testing.T) {
	e, addr := serveLimited(t, Limits{MaxConnections: 16, MaxRequests: 1})
	// A /token request whose body never comes holds the one request slot.
	startRequest(t, addr, "POST /token HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant")
	time.Sleep(100 * time.Millisecond)
	resp, err := http.PostForm("http://"+addr+"/token", map[string][]string{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("/token while the slot is taken: %d, want 503 with Retry-After", resp.StatusCode)
	}
	if st := answered(t, addr, 2*time.Second); st != http.StatusUnauthorized {
		t.Errorf("check while the /token slot is taken: %d, want 401", st)
	}
	if st := probe(t, addr, "/healthz"); st != 200 {
		t.Errorf("/healthz while the slot is taken: %d", st)
	}
	if got := testutil.ToFloat64(e.srv.metrics.refusals.WithLabelValues(reasonOverloaded)); got != 1 {
		t.Errorf("overloaded refusals counted %v, want 1", got)
	}
}

func probe(t *testing.T, addr, path string) int {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
