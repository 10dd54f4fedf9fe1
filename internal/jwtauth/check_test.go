package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestCheckAllowsValidToken(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice", "correct horse")
	for _, p := range []string{"/api/orders", "/api/orders/42", "/api/orders/42?x=1", "/api/users", "/api/users/7", "/api//orders/1"} {
		h := bearer(tok)
		h["Origin"] = testOrigin
		st, hdr, body := e.check(p, h)
		if st != http.StatusOK {
			t.Fatalf("%s: status %d body %s", p, st, body)
		}
		if got := hdr.Get("X-User-ID"); got != "alice" {
			t.Errorf("%s: X-User-ID = %q", p, got)
		}
		if got := hdr.Get("X-User-Permissions"); got != "orders:read,orders:write" {
			t.Errorf("%s: X-User-Permissions = %q", p, got)
		}
	}
	// Any method is checked the same way (ext_authz keeps the method).
	req, _ := http.NewRequest(http.MethodDelete, e.ts.URL+"/auth/api/orders/1", nil)
	req.Header.Set("Authorization", "bearer "+tok) // scheme is case-insensitive
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
}

// hs256WithPublicKey is the classic algorithm-confusion forgery: HMAC
// keyed with the verifier's public key bytes.
func hs256WithPublicKey(t *testing.T, pub *ecdsa.PublicKey, c jwt.MapClaims, kid string) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func algNone(c jwt.MapClaims) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": "2024-01"})
	p, _ := json.Marshal(c)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(p) + "."
}

func TestCheckRejectsBadTokens(t *testing.T) {
	e := newEnv(t, nil)
	key := e.keys["2024-01"]
	now := e.clk.now()
	with := func(k string, v any) jwt.MapClaims {
		c := e.claims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	valid := sign(t, key, "2024-01", e.claims())
	parts := strings.Split(valid, ".")
	forgedBody, _ := json.Marshal(with("services", []string{"/"}))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forgedBody) + "." + parts[2]
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	cases := []struct {
		name, token, reason string
	}{
		{"expired beyond leeway", sign(t, key, "2024-01", with("exp", now.Add(-31*time.Second).Unix())), reasonExpired},
		{"not yet valid", sign(t, key, "2024-01", with("nbf", now.Add(2*time.Minute).Unix())), reasonNotYetValid},
		{"issued in the future", sign(t, key, "2024-01", with("iat", now.Add(2*time.Minute).Unix())), reasonNotYetValid},
		{"wrong issuer", sign(t, key, "2024-01", with("iss", "https://evil.test")), reasonBadIssuer},
		{"no issuer", sign(t, key, "2024-01", with("iss", nil)), reasonMissingClaim},
		{"wrong audience", sign(t, key, "2024-01", with("aud", "someone-else")), reasonBadAudience},
		{"no exp", sign(t, key, "2024-01", with("exp", nil)), reasonMissingClaim},
		{"no sub", sign(t, key, "2024-01", with("sub", nil)), reasonMissingClaim},
		{"alg none", algNone(e.claims()), reasonBadSignature},
		{"HS256 with public key bytes", hs256WithPublicKey(t, &key.PublicKey, e.claims(), "2024-01"), reasonBadSignature},
		{"tampered payload", tampered, reasonBadSignature},
		{"signed by a stranger", sign(t, otherKey, "2024-01", e.claims()), reasonBadSignature},
		{"unknown kid", sign(t, otherKey, "2099-01", e.claims()), reasonUnknownKID},
		{"no kid", sign(t, key, "", e.claims()), reasonUnknownKID},
		{"oversize", sign(t, key, "2024-01", with("pad", strings.Repeat("x", MaxTokenBytes))), reasonTokenTooLarge},
		{"garbage", "not.a.jwt", reasonMalformed},
		{"two segments", parts[0] + "." + parts[1], reasonMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, hdr, body := e.check("/api/orders/1", bearer(c.token))
			if st != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401; body %s", st, body)
			}
			if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", hdr.Get("WWW-Authenticate"))
			}
			var m map[string]string
			if err := json.Unmarshal([]byte(body), &m); err != nil || m["reason"] != c.reason || m["error"] != "unauthorized" {
				t.Errorf("body %s, want reason %s", body, c.reason)
			}
			if hdr.Get("X-User-ID") != "" {
				t.Error("deny carries X-User-ID")
			}
			if strings.Contains(body, c.token) || strings.Contains(e.logs.String(), c.token) {
				t.Error("token echoed in body or log")
			}
		})
	}
	// The control: the untouched token passes, so the cases above fail for
	// the reason they claim.
	if st, _, body := e.check("/api/orders/1", bearer(valid)); st != http.StatusOK {
		t.Fatalf("valid token: %d %s", st, body)
	}
}

func TestCheckLeewayAndCachedExpiry(t *testing.T) {
	e := newEnv(t, nil)
	c := e.claims()
	c["exp"] = e.clk.now().Add(time.Minute).Unix()
	tok := sign(t, e.keys["2024-01"], "2024-01", c)
	if st, _, _ := e.check("/api/orders", bearer(tok)); st != http.StatusOK {
		t.Fatalf("fresh token: %d", st)
	}
	if e.srv.verifier.cache.len() != 1 {
		t.Fatalf("verified token not cached")
	}
	e.clk.advance(time.Minute + 20*time.Second) // past exp, inside 30 s leeway
	if st, _, _ := e.check("/api/orders", bearer(tok)); st != http.StatusOK {
		t.Fatalf("inside leeway: %d", st)
	}
	e.clk.advance(15 * time.Second) // past exp+leeway: the cache must not save it
	for range 2 {                   // the second answer comes from the negative cache
		st, _, body := e.check("/api/orders", bearer(tok))
		if st != http.StatusUnauthorized || !strings.Contains(body, reasonExpired) {
			t.Fatalf("expired cached token: %d %s", st, body)
		}
	}
	if c, ok := e.srv.verifier.cache.get(cacheKey(tok), e.clk.now()); !ok || c.p != nil || c.reason != reasonExpired {
		t.Fatalf("expired result not cached: %+v %v", c, ok)
	}
}

func TestCheckMissingCredentials(t *testing.T) {
	e := newEnv(t, nil)
	for _, h := range []map[string]string{nil, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer "}} {
		st, hdr, body := e.check("/api/orders", h)
		if st != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("%v: %d %q %s", h, st, hdr.Get("WWW-Authenticate"), body)
		}
	}
}

func TestCheckPathRules(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice", "correct horse")
	cases := []struct {
		path   string
		status int
		reason string
	}{
		{"/api/orders/1", 200, ""},
		{"/api/ordersx", 403, reasonPathNotAllowed},
		{"/api/payments", 403, reasonPathNotAllowed},
		{"/", 403, reasonPathNotAllowed},
		{"", 403, reasonPathNotAllowed},
		{"/api/orders/../payments", 403, reasonBadPath},
		{"/api/orders/./1", 403, reasonBadPath},
		{"/api/orders/%2e%2e/payments", 403, reasonBadPath},
		{"/api/orders%2F..%2Fpayments", 403, reasonBadPath},
		{"/api/orders%2fx", 403, reasonBadPath},
		{"/api/orders/%5c..%5cpayments", 403, reasonBadPath},
		{"/api/orders/a%00b", 403, reasonBadPath},
	}
	for _, c := range cases {
		st, _, body := e.check(c.path, bearer(tok))
		if st != c.status || !strings.Contains(body, c.reason) {
			t.Errorf("%q: %d %s, want %d %s", c.path, st, body, c.status, c.reason)
		}
	}
	// bob may go anywhere: "/" is a valid service prefix.
	bob := e.login("bob", "bobpw")
	if st, hdr, _ := e.check("/anything/at/all", bearer(bob)); st != 200 || hdr.Get("X-User-Permissions") != "" {
		t.Errorf("bob: %d perms %q", st, hdr.Get("X-User-Permissions"))
	}
}

func TestCheckOriginRules(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice", "correct horse")
	for origin, want := range map[string]int{
		"":                                  200,
		testOrigin:                          200,
		"HTTPS://APP.EXAMPLE.COM":           200,
		"https://evil.example.com":          403,
		"https://app.example.com.evil.test": 403,
		"null":                              403,
	} {
		h := bearer(tok)
		if origin != "" {
			h["Origin"] = origin
		}
		st, _, body := e.check("/api/orders", h)
		if st != want || (want == 403 && !strings.Contains(body, reasonOriginNotAllowed)) {
			t.Errorf("origin %q: %d %s", origin, st, body)
		}
	}
	// bob has no origins: any browser origin is refused, none is fine.
	bob := e.login("bob", "bobpw")
	if st, _, _ := e.check("/x", map[string]string{"Authorization": "Bearer " + bob, "Origin": testOrigin}); st != 403 {
		t.Errorf("bob with origin: %d", st)
	}
}

func TestCheckAuditLog(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice", "correct horse")
	h := bearer(tok)
	h["X-Request-Id"] = "req-123"
	e.check("/api/orders/9", h)
	e.check("/api/payments", map[string]string{"Authorization": "Bearer " + tok, "X-Request-Id": "req-456"})
	var allow, deny map[string]any
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line not JSON: %s", line)
		}
		switch m["request_id"] {
		case "req-123":
			allow = m
		case "req-456":
			deny = m
		}
	}
	if allow == nil || allow["decision"] != "allow" || allow["subject"] != "alice" || allow["path"] != "/api/orders/9" || allow["time"] == nil {
		t.Errorf("allow line: %v", allow)
	}
	if deny == nil || deny["decision"] != "deny" || deny["reason"] != reasonPathNotAllowed {
		t.Errorf("deny line: %v", deny)
	}
	logs := e.logs.String()
	if strings.Contains(logs, tok) || strings.Contains(logs, "correct horse") || strings.Contains(logs, "$2a$") {
		t.Error("log holds a token, password or hash")
	}
}

func TestUnderService(t *testing.T) {
	svc := []string{"/api/orders", "/static/"}
	for p, want := range map[string]bool{
		"/api/orders": true, "/api/orders/1": true, "/api/ordersx": false, "/api": false,
		"/static": true, "/static/app.js": true, "/staticx": false,
	} {
		if got := underService(p, svc); got != want {
			t.Errorf("underService(%q) = %v", p, got)
		}
	}
	if underService("/x", nil) {
		t.Error("no services must admit nothing")
	}
}

// TestCheckPathTricks: a token for /api/orders is not accepted for paths
// that an upstream resolves outside it: servlet path parameters ("..;" is
// ".."), dot-segments encoded once more than Envoy decodes, encoded
// slashes hidden the same way. Harmless look-alikes stay allowed.
func TestCheckPathTricks(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice", "correct horse")
	for _, p := range []string{
		"/api/orders/..;/payments/items",
		"/api/orders/%2e%2e;/payments/items",
		"/api/orders/%2E%2E;/payments/items",
		"/api/orders/..;jsessionid=1/payments",
		"/api/orders/.;/x",
		"/api/orders/%2e%2e%3b/payments",
		"/api/orders/%252e%252e/payments",
		"/api/orders/%252e%252e;/payments",
		"/api/orders/%252E./payments",
		"/api/orders/%25252e%25252e/payments",
		"/api/orders/%252fx",
		"/api/orders/..%252f..%252fpayments",
		"/api/orders/%255c..",
		"/api/orders/%2500",
		"/api/orders/%25zz",
	} {
		if st, _, body := e.check(p, bearer(tok)); st != 403 || !strings.Contains(body, reasonBadPath) {
			t.Errorf("%q: %d %s, want 403 %s", p, st, body, reasonBadPath)
		}
	}
	for _, p := range []string{"/api/orders/1;v=2", "/api/orders/a.b", "/api/orders/..a", "/api/orders/%2e%2ex", "/api/orders//1/", "/api/orders/...", "/api/orders/%41"} {
		if st, _, body := e.check(p, bearer(tok)); st != 200 {
			t.Errorf("%q: %d %s, want 200", p, st, body)
		}
	}
}

// TestCheckPathInvalidUTF8: overlong UTF-8 dot segments (%c0%ae is "." to
// a lenient decoder) used to pass, and the audit line showed U+FFFD, not
// the attempt. Paths must be valid UTF-8 after every round of decoding;
// the audit line of a refusal records the path as sent.
func TestCheckPathInvalidUTF8(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice", "correct horse")
	for _, p := range []string{
		"/api/orders/%c0%ae%c0%ae/payments/items",
		"/api/orders/%c0%ae/x",
		"/api/orders/%e0%80%ae%e0%80%ae/payments",
		"/api/orders/%25c0%25ae%25c0%25ae/payments",
		"/api/orders/%ff",
	} {
		if st, _, body := e.check(p, bearer(tok)); st != 403 || !strings.Contains(body, reasonBadPath) {
			t.Errorf("%q: %d %s, want 403 %s", p, st, body, reasonBadPath)
		}
		if !strings.Contains(e.logs.String(), `"path":"/auth`+p+`"`) {
			t.Errorf("%q: audit line does not record the path as sent", p)
		}
	}
	if strings.Contains(e.logs.String(), `\ufffd`) {
		t.Error("audit log shows U+FFFD")
	}
	if st, _, body := e.check("/api/orders/caf%C3%A9", bearer(tok)); st != 200 {
		t.Errorf("valid UTF-8: %d %s", st, body)
	}
}
