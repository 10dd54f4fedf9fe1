package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Benchmarks of the check path in-process (handler, audit log encoding
// and metrics included; the log goes to io.Discard). The loopback HTTP
// figure is BenchmarkCheckLoopbackHTTP and cmd/loadgen.

type discardRW struct {
	h      http.Header
	status int
}

func (d *discardRW) Header() http.Header         { return d.h }
func (d *discardRW) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardRW) WriteHeader(s int)           { d.status = s }

func benchEnv(b *testing.B, mutate func(*Config)) *env {
	return newEnv(b, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
		if mutate != nil {
			mutate(c)
		}
	})
}

func runCheck(b *testing.B, e *env, hdr map[string]string, path string, want int) {
	r, _ := http.NewRequest(http.MethodGet, "http://jwt-auth/auth"+path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	h := e.srv.Handler()
	rw := &discardRW{h: http.Header{}}
	h.ServeHTTP(rw, r)
	if rw.status != want {
		b.Fatalf("status %d, want %d", rw.status, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(rw.h)
		h.ServeHTTP(rw, r)
	}
}

func allowHeaders(e *env) map[string]string {
	// The env clock stands still: a token of the configured TTL stays valid
	// (a longer one would be refused as token_lifetime_too_long).
	h := bearer(sign(e.t, e.keys["2024-01"], "2024-01", e.claims()))
	h["Origin"] = testOrigin
	h["X-Request-Id"] = "bench-1"
	return h
}

func BenchmarkCheckAllow(b *testing.B) {
	e := benchEnv(b, nil)
	runCheck(b, e, allowHeaders(e), "/api/orders/42", 200)
}

// BenchmarkCheckAllowUncached is the first sight of a token: ECDSA
// verification and claim decoding.
func BenchmarkCheckAllowUncached(b *testing.B) {
	e := benchEnv(b, func(c *Config) { c.TokenCacheSize = -1 })
	runCheck(b, e, allowHeaders(e), "/api/orders/42", 200)
}

func BenchmarkCheckAllowParallel(b *testing.B) {
	e := benchEnv(b, nil)
	hdr := allowHeaders(e)
	h := e.srv.Handler()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r, _ := http.NewRequest(http.MethodGet, "http://jwt-auth/auth/api/orders/42", nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		rw := &discardRW{h: http.Header{}}
		for pb.Next() {
			clear(rw.h)
			h.ServeHTTP(rw, r)
		}
	})
}

func BenchmarkCheckDenyPath(b *testing.B) {
	e := benchEnv(b, nil)
	runCheck(b, e, allowHeaders(e), "/api/payments", 403)
}

func BenchmarkCheckDenyNoToken(b *testing.B) {
	e := benchEnv(b, nil)
	runCheck(b, e, nil, "/api/orders", 401)
}

func BenchmarkCheckDenyExpired(b *testing.B) {
	e := benchEnv(b, nil)
	c := e.claims()
	c["exp"] = time.Now().Add(-time.Hour).Unix()
	runCheck(b, e, bearer(sign(b, e.keys["2024-01"], "2024-01", c)), "/api/orders", 401)
}

// BenchmarkCheckDenyBadSignature is the cost an attacker can impose per
// request: a well-formed token with a known kid and a wrong signature.
func BenchmarkCheckDenyBadSignature(b *testing.B) {
	e := benchEnv(b, nil)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	runCheck(b, e, bearer(sign(b, stranger, "2024-01", e.claims())), "/api/orders", 401)
}

func BenchmarkCheckClientCert(b *testing.B) {
	e := benchEnv(b, nil)
	good := e.ca.issue(b, "payments", time.Time{}, time.Now().Add(time.Hour), x509.ExtKeyUsageClientAuth)
	runCheck(b, e, map[string]string{headerXFCC: xfccCert(good)}, "/api/payments", 200)
}

func BenchmarkMint(b *testing.B) {
	e := benchEnv(b, nil)
	id := &Identity{ID: "alice", Permissions: []string{"orders:read"}, Services: []string{"/api/orders"}, Origins: []string{testOrigin}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.srv.mint(id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckLoopbackHTTP is one keep-alive client against the real
// HTTP server on 127.0.0.1 (client and server share the CPU).
func BenchmarkCheckLoopbackHTTP(b *testing.B) {
	e := benchEnv(b, nil)
	hdr := allowHeaders(e)
	r, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/auth/api/orders/42", nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	c := e.ts.Client()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkPasswordRefusal compares the two refusals a username oracle
// would tell apart: a wrong password for a known user and any password for
// an unknown one (compared against the dummy hash). With every user at one
// bcrypt cost (enforced at load) both cost one compare at that cost.
func BenchmarkPasswordRefusal(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), 8)
	if err != nil {
		b.Fatal(err)
	}
	doc := fmt.Sprintf("users:\n  - {username: alice, password_hash: %q, services: [/]}\n", hash)
	db, err := loadUsers(writeFile(b, b.TempDir(), "users.yaml", doc))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, user string }{{"wrong_password", "alice"}, {"unknown_user", "mallory"}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, ok := db.authenticate(c.user, "wrong"); ok {
					b.Fatal("accepted")
				}
			}
		})
	}
}
