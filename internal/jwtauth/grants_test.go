package jwtauth

import (
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func pwForm(user, pw string) url.Values {
	return url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}
}

func TestPasswordGrantIssuesToken(t *testing.T) {
	e := newEnv(t, nil)
	st, m, hdr := e.tokenReq(pwForm("alice", "correct horse"), nil)
	if st != http.StatusOK {
		t.Fatalf("%d %v", st, m)
	}
	if hdr.Get("Cache-Control") != "no-store" || m["token_type"] != "Bearer" || m["expires_in"] != float64(600) {
		t.Fatalf("response %v, Cache-Control %q", m, hdr.Get("Cache-Control"))
	}
	var c Claims
	tok, err := jwt.ParseWithClaims(m["access_token"].(string), &c, func(*jwt.Token) (any, error) {
		return &e.keys["2024-01"].PublicKey, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(e.clk.now))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["kid"] != "2024-01" {
		t.Errorf("kid %v", tok.Header["kid"])
	}
	if c.Issuer != testIssuer || len(c.Audience) != 1 || c.Audience[0] != testAudience || c.Subject != "alice" ||
		c.ID == "" || c.IssuedAt == nil || c.NotBefore == nil || c.ExpiresAt.Sub(c.IssuedAt.Time) != 10*time.Minute {
		t.Errorf("claims %+v", c.RegisteredClaims)
	}
	if strings.Join(c.Permissions, ",") != "orders:read,orders:write" ||
		strings.Join(c.Services, ",") != "/api/orders,/api/users" || strings.Join(c.Origins, ",") != testOrigin {
		t.Errorf("access claims %v %v %v", c.Permissions, c.Services, c.Origins)
	}
	// Two logins give two distinct jti values.
	_, m2, _ := e.tokenReq(pwForm("alice", "correct horse"), nil)
	if m2["access_token"] == m["access_token"] {
		t.Error("tokens repeat")
	}
}

func TestPasswordGrantRefusalsLookAlike(t *testing.T) {
	e := newEnv(t, nil)
	_, wrongPw, _ := e.tokenReq(pwForm("alice", "wrong"), nil)
	_, noUser, _ := e.tokenReq(pwForm("mallory", "correct horse"), nil)
	_, longPw, _ := e.tokenReq(pwForm("alice", "correct horse"+strings.Repeat("x", 80)), nil)
	if wrongPw["error"] != "invalid_grant" || wrongPw["error_description"] != noUser["error_description"] ||
		noUser["error"] != "invalid_grant" || longPw["error"] != "invalid_grant" {
		t.Fatalf("refusals differ: %v / %v / %v", wrongPw, noUser, longPw)
	}
	desc := wrongPw["error_description"].(string)
	if strings.Contains(desc, "user not") || strings.Contains(desc, "unknown") {
		t.Errorf("description gives the reason away: %q", desc)
	}
}

func TestTokenEndpointRequestErrors(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.OIDCIssuer, c.OIDCAudience, c.OIDCJWKSURL = "", "", "" })
	cases := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"no grant", url.Values{}, 400, "invalid_request"},
		{"unknown grant", url.Values{"grant_type": {"authorization_code"}}, 400, "unsupported_grant_type"},
		{"exchange not configured", url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {"x"}}, 400, "unsupported_grant_type"},
		{"missing password", url.Values{"grant_type": {"password"}, "username": {"alice"}}, 400, "invalid_request"},
	}
	for _, c := range cases {
		st, m, _ := e.tokenReq(c.form, nil)
		if st != c.status || m["error"] != c.code {
			t.Errorf("%s: %d %v", c.name, st, m)
		}
	}
	st, _, body := e.do(http.MethodGet, "/token", nil, nil)
	if st != http.StatusMethodNotAllowed || !strings.Contains(body, "invalid_request") {
		t.Errorf("GET /token: %d %s", st, body)
	}
	st, _, body = e.do(http.MethodPost, "/token", map[string]string{"Content-Type": "application/json"}, strings.NewReader(`{"grant_type":"password"}`))
	if st != http.StatusBadRequest {
		t.Errorf("JSON body: %d %s", st, body)
	}
	big := "grant_type=password&username=alice&password=" + strings.Repeat("x", maxFormBytes)
	st, _, _ = e.do(http.MethodPost, "/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, strings.NewReader(big))
	if st != http.StatusBadRequest {
		t.Errorf("oversize form: %d", st)
	}
}

func TestLoginThrottling(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Throttle = ThrottleConfig{UserBurst: 3, UserInterval: time.Minute, IPBurst: 6, IPInterval: time.Minute}
	})
	xff := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": "6.6.6.6, " + ip} }
	// Per username: three tries, then 429 even with the right password,
	// from a different address.
	for i := range 3 {
		if st, m, _ := e.tokenReq(pwForm("alice", "nope"), xff("10.0.0.1")); st != 400 {
			t.Fatalf("try %d: %d %v", i, st, m)
		}
	}
	st, m, hdr := e.tokenReq(pwForm("alice", "correct horse"), xff("10.0.0.2"))
	if st != http.StatusTooManyRequests || m["error"] != "slow_down" || hdr.Get("Retry-After") == "" {
		t.Fatalf("throttled user: %d %v Retry-After %q", st, m, hdr.Get("Retry-After"))
	}
	// Case does not dodge the user bucket.
	if st, _, _ := e.tokenReq(pwForm("ALICE", "x"), xff("10.0.0.3")); st != http.StatusTooManyRequests {
		t.Fatalf("case variant: %d", st)
	}
	// Other users are unaffected; the bucket refills with time.
	if st, _, _ := e.tokenReq(pwForm("bob", "bobpw"), xff("10.0.0.4")); st != 200 {
		t.Fatalf("bob: %d", st)
	}
	e.clk.advance(time.Minute)
	if st, _, _ := e.tokenReq(pwForm("alice", "correct horse"), xff("10.0.0.5")); st != 200 {
		t.Fatalf("after refill: %d", st)
	}
	// Per source address: the rightmost X-Forwarded-For hop (our edge's
	// view) counts; the client-supplied left part does not.
	for i := range 6 {
		spoof := map[string]string{"X-Forwarded-For": "1.1.1." + string(rune('0'+i)) + ", 10.9.9.9"}
		if st, _, _ := e.tokenReq(pwForm("user"+string(rune('a'+i)), "x"), spoof); st != 400 {
			t.Fatalf("ip try %d: %d", i, st)
		}
	}
	if st, _, _ := e.tokenReq(pwForm("bob", "bobpw"), map[string]string{"X-Forwarded-For": "2.2.2.2, 10.9.9.9"}); st != http.StatusTooManyRequests {
		t.Fatalf("throttled address: %d", st)
	}
}

func TestLimiterMapEvictsRefilledFirst(t *testing.T) {
	now := time.Now()
	l := newLimiterMap(2, time.Minute, 3)
	l.allow("victim", now)
	l.allow("victim", now) // drained
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		l.allow(k, now)
	}
	if len(l.m) > 3 {
		t.Fatalf("map grew to %d", len(l.m))
	}
	if ok, _ := l.allow("victim", now); ok {
		t.Fatal("flooding new keys evicted the drained victim bucket")
	}
}

func TestSourceAddr(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.7:4711"
	if got := sourceAddr(r, 1); got != "192.0.2.7" {
		t.Errorf("no XFF: %s", got)
	}
	r.Header.Set("X-Forwarded-For", "203.0.113.9, 198.51.100.2")
	for hops, want := range map[int]string{0: "192.0.2.7", 1: "198.51.100.2", 2: "203.0.113.9", 3: "192.0.2.7"} {
		if got := sourceAddr(r, hops); got != want {
			t.Errorf("hops %d: %s want %s", hops, got, want)
		}
	}
	r.Header.Set("X-Forwarded-For", "not-an-ip")
	if got := sourceAddr(r, 1); got != "192.0.2.7" {
		t.Errorf("junk XFF: %s", got)
	}
}

func TestClientCertificateGrant(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClientCertHeaders = CertHeadersALBVerify })
	good := paymentsCert(t, e.ca, time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	form := url.Values{"grant_type": {GrantClientCert}}
	st, m, _ := e.tokenReq(form, map[string]string{headerALBLeaf: albEncode(certPEM(good))})
	if st != 200 {
		t.Fatalf("%d %v", st, m)
	}
	tok := m["access_token"].(string)
	if st, hdr, _ := e.check("/api/payments/1", bearer(tok)); st != 200 || hdr.Get("X-User-ID") != "payments" {
		t.Fatalf("client token check: %d %v", st, hdr)
	}
	other := newCA(t, "other").issue(t, "payments", time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	for name, h := range map[string]map[string]string{
		"other CA":  {headerALBLeaf: albEncode(certPEM(other))},
		"no cert":   nil,
		"malformed": {headerALBLeaf: "%%%"},
	} {
		if st, m, _ := e.tokenReq(form, h); st != 400 || m["error"] != "invalid_grant" {
			t.Errorf("%s: %d %v", name, st, m)
		}
	}
}
