package jwtauth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// TestLoginThrottlePerIPv6Prefix: every address of an IPv6 /64 used to
// have its own source bucket, so one host (which is given a whole /64)
// had 2^64 of them. IPv6 sources now share one per /64 (configurable);
// IPv4 sources keep one each.
func TestLoginThrottlePerIPv6Prefix(t *testing.T) {
	for _, c := range []struct {
		prefix int
		want   []int // status of each attempt
	}{
		{0, []int{400, 400, 429, 400}},   // default /64
		{128, []int{400, 400, 400, 400}}, // per address, as before
	} {
		e := newEnv(t, func(cfg *Config) {
			cfg.Throttle = ThrottleConfig{IPBurst: 2, IPInterval: time.Hour, UserBurst: 100, IPv6Prefix: c.prefix}
		})
		for i, src := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:1:2:3", "2001:db8:1:3::1"} {
			st, m, _ := e.tokenReq(pwForm("alice", "wrong"), map[string]string{"X-Forwarded-For": src})
			if st != c.want[i] {
				t.Errorf("prefix %d, %s: %d %v, want %d", c.prefix, src, st, m, c.want[i])
			}
		}
		for _, src := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} { // IPv4: per address
			if st, _, _ := e.tokenReq(pwForm("alice", "wrong"), map[string]string{"X-Forwarded-For": src}); st != 400 {
				t.Errorf("prefix %d, %s: %d, want 400", c.prefix, src, st)
			}
		}
	}
	cfg := Config{SigningKeysDir: "x", Issuer: "i", Audience: "a", Throttle: ThrottleConfig{IPv6Prefix: 16}}
	cfg.setDefaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--login-ipv6-prefix") {
		t.Errorf("prefix 16: %v, want an error naming --login-ipv6-prefix", err)
	}
}

// TestClientCertTokenExpiresWithCertificate: a client_certificate token
// used to live its full TTL even when the certificate expired sooner.
func TestClientCertTokenExpiresWithCertificate(t *testing.T) {
	e := newEnv(t, nil)
	notAfter := time.Now().Add(3 * time.Minute)
	cert := paymentsCert(t, e.ca, time.Time{}, notAfter, x509.ExtKeyUsageClientAuth)
	st, m, _ := e.tokenReq(url.Values{"grant_type": {GrantClientCert}}, map[string]string{headerXFCC: xfccCert(cert)})
	if st != 200 {
		t.Fatalf("grant: %d %v", st, m)
	}
	var c Claims
	if _, _, err := jwt.NewParser().ParseUnverified(m["access_token"].(string), &c); err != nil {
		t.Fatal(err)
	}
	if c.ExpiresAt.After(notAfter) {
		t.Errorf("token exp %v after the certificate's NotAfter %v", c.ExpiresAt.Time, notAfter)
	}
	if in := m["expires_in"].(float64); in > 180 || in < 170 {
		t.Errorf("expires_in %v, want about 180", in)
	}
	// A certificate outliving the TTL still gets the TTL.
	long := paymentsCert(t, e.ca, time.Time{}, time.Now().Add(time.Hour), x509.ExtKeyUsageClientAuth)
	if st, m, _ := e.tokenReq(url.Values{"grant_type": {GrantClientCert}}, map[string]string{headerXFCC: xfccCert(long)}); st != 200 || m["expires_in"].(float64) != DefaultTokenTTL.Seconds() {
		t.Errorf("long-lived certificate: %d %v", st, m)
	}
}

// TestTokensNeverAdmitEverything: a token with services [""] used to allow
// every path (underService matched the empty prefix). Minting refuses
// empty or relative prefixes and permissions with commas; a token that
// carries them anyway (only our key could sign one) is refused.
func TestTokensNeverAdmitEverything(t *testing.T) {
	e := newEnv(t, nil)
	for _, id := range []*Identity{
		{ID: "x", Services: []string{""}},
		{ID: "x", Services: []string{"api/orders"}},
		{ID: "x", Services: []string{"/"}, Permissions: []string{"a,b"}},
	} {
		if _, _, err := e.srv.mint(id); !errors.Is(err, errBadIdentity) {
			t.Errorf("mint %+v: %v, want errBadIdentity", id, err)
		}
	}
	for _, services := range [][]string{{""}, {"api"}, {"", "/api/orders"}} {
		c := e.claims()
		c["services"] = services
		tok := sign(t, e.keys["2024-01"], "2024-01", c)
		if st, _, body := e.check("/admin/users", bearer(tok)); st != 401 || !strings.Contains(body, reasonInvalidClaims) {
			t.Errorf("services %q: %d %s, want 401 %s", services, st, body, reasonInvalidClaims)
		}
	}
	if underService("/admin", []string{""}) {
		t.Error(`underService matches the empty prefix`)
	}
}

// TestUsersOneBcryptCost: users hashed at different bcrypt costs used to
// load, and a wrong password for the cost-4 user answered in 1 ms against
// 50 ms for an unknown user (the dummy hash used the highest cost): a
// username oracle. They are refused at start and by ValidateUsers (which
// `pulumi preview` runs), naming the users and the fix; with one cost the
// dummy hash has that cost, so both answers cost the same.
func TestUsersOneBcryptCost(t *testing.T) {
	h := func(cost int) string {
		b, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	mixed := fmt.Sprintf("users:\n  - {username: alice, password_hash: %q, services: [/]}\n  - {username: bob, password_hash: %q, services: [/]}\n  - {username: carol, oidc_subject: c, services: [/]}\n", h(4), h(5))
	err := ValidateUsers([]byte(mixed), "entry")
	for _, want := range []string{"cost 4: alice", "cost 5: bob", "different bcrypt costs", "jwt-auth hash-password -cost 5"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("mixed costs: %v, want it to contain %q", err, want)
		}
	}
	dir := t.TempDir()
	if _, err := loadUsers(writeFile(t, dir, "mixed.yaml", mixed)); err == nil || !strings.Contains(err.Error(), "--users") {
		t.Errorf("start with mixed costs: %v, want an error naming --users", err)
	}
	// One cost (an OIDC-only user has none): accepted, dummy at that cost.
	same := fmt.Sprintf("users:\n  - {username: alice, password_hash: %q, services: [/]}\n  - {username: bob, password_hash: %q, services: [/]}\n  - {username: carol, oidc_subject: c, services: [/]}\n", h(5), h(5))
	db, err := loadUsers(writeFile(t, dir, "same.yaml", same))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := bcrypt.Cost(db.dummyHash); c != 5 {
		t.Errorf("dummy hash cost %d, want 5", c)
	}
}

// TestSecretCertHeaderName: with the stack's own name for the ALB's
// certificate header, jwt-auth believes that header only and refuses every
// request carrying a default name (which only a client can have sent, if
// the ALB renames its own), with a trusted client's certificate or not.
func TestSecretCertHeaderName(t *testing.T) {
	const secret = "X-Ztedge-7f3a9c2e51b04d86"
	for _, mode := range []string{CertHeadersALBPassthrough, CertHeadersALBVerify} {
		e := newEnv(t, func(c *Config) { c.ClientCertHeaders, c.ClientCertHeaderName = mode, secret })
		good := paymentsCert(t, e.ca, time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
		v := albEncode(certPEM(good))
		if st, hdr, body := e.check("/api/payments", map[string]string{secret: v}); st != 200 || hdr.Get("X-User-Id") != "payments" {
			t.Errorf("%s: the secret header: %d %s", mode, st, body)
		}
		for _, name := range []string{headerALBChain, headerALBLeaf, headerXFCC} {
			fv := v
			if name == headerXFCC {
				fv = xfccCert(good)
			}
			if st, _, body := e.check("/api/payments", map[string]string{name: fv}); st != 401 || !strings.Contains(body, reasonForeignCertHeader) {
				t.Errorf("%s: default %s alone: %d %s, want 401 %s", mode, name, st, body, reasonForeignCertHeader)
			}
			if st, _, body := e.check("/api/payments", map[string]string{secret: v, name: fv}); st != 401 || !strings.Contains(body, reasonForeignCertHeader) {
				t.Errorf("%s: default %s next to the secret one: %d %s", mode, name, st, body)
			}
			if st, m, _ := e.tokenReq(url.Values{"grant_type": {GrantClientCert}}, map[string]string{name: fv}); st != 400 || m["error"] != "invalid_grant" {
				t.Errorf("%s: grant with default %s: %d %v", mode, name, st, m)
			}
		}
	}
	for _, c := range []struct{ mode, name string }{
		{CertHeadersXFCC, secret}, {CertHeadersALBVerify, "short"}, {CertHeadersALBVerify, "X-Amzn-Mtls-Clientcert-Leaf"},
		{CertHeadersALBVerify, "X-Ztedge-has space-in-it"},
	} {
		cfg := Config{SigningKeysDir: "x", Issuer: "i", Audience: "a", ClientsFile: "c", ClientCAFile: "ca", ClientCertHeaders: c.mode, ClientCertHeaderName: c.name}
		cfg.setDefaults()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--client-cert-header-name") {
			t.Errorf("%s %q: %v, want an error naming --client-cert-header-name", c.mode, c.name, err)
		}
	}
}
