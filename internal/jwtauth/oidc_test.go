package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// upstream is a local OIDC provider: a JWKS endpoint on loopback and the
// keys to sign ID tokens with.
type upstream struct {
	issuer    string
	srv       *httptest.Server
	fetches   atomic.Int32
	delay     time.Duration
	failing   atomic.Bool
	requested chan struct{}

	mu   sync.Mutex
	keys map[string]crypto.Signer // kid -> key; RS256 for RSA, ES256 for EC
}

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u := &upstream{
		issuer:    "https://idp.example.test",
		requested: make(chan struct{}, 1),
		keys:      map[string]crypto.Signer{"rsa-1": rk, "ec-1": ek},
	}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.fetches.Add(1)
		select {
		case u.requested <- struct{}{}:
		default:
		}
		time.Sleep(u.delay)
		if u.failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		u.mu.Lock()
		set := jose.JSONWebKeySet{}
		for kid, k := range u.keys {
			alg := "RS256"
			if _, ok := k.(*ecdsa.PrivateKey); ok {
				alg = "ES256"
			}
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: alg, Use: "sig"})
		}
		u.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) url() string { return u.srv.URL + "/jwks" }

func (u *upstream) claims(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": u.issuer, "aud": "ztedge-client", "sub": sub,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "email": sub + "@example.test"}
}

// sign signs with the first key of the algorithm's type.
func (u *upstream) sign(t testing.TB, c jwt.Claims, alg string) string {
	t.Helper()
	kid := map[string]string{"RS256": "rsa-1", "ES256": "ec-1"}[alg]
	return u.signWith(t, c, kid)
}

func (u *upstream) signWith(t testing.TB, c jwt.Claims, kid string) string {
	t.Helper()
	u.mu.Lock()
	k := u.keys[kid]
	u.mu.Unlock()
	m := jwt.SigningMethod(jwt.SigningMethodRS256)
	if _, ok := k.(*ecdsa.PrivateKey); ok {
		m = jwt.SigningMethodES256
	}
	tok := jwt.NewWithClaims(m, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func exchangeForm(subjectToken string) url.Values {
	return url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subjectToken},
		"subject_token_type": {tokenTypeIDToken}}
}

func oidcEnv(t *testing.T) (*env, *upstream) {
	up := newUpstream(t)
	e := newEnv(t, func(c *Config) {
		c.OIDCIssuer, c.OIDCAudience, c.OIDCJWKSURL = up.issuer, "ztedge-client", up.url()
	})
	return e, up
}

func TestTokenExchange(t *testing.T) {
	e, up := oidcEnv(t)
	for _, alg := range []string{"RS256", "ES256"} {
		st, m, hdr := e.tokenReq(exchangeForm(up.sign(t, up.claims("upstream-alice"), alg)), nil)
		if st != 200 || m["issued_token_type"] != tokenTypeAccess || hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d %v", alg, st, m)
		}
		st, h, _ := e.check("/api/orders/1", bearer(m["access_token"].(string)))
		if st != 200 || h.Get("X-User-ID") != "alice" {
			t.Fatalf("%s: exchanged token check %d %v", alg, st, h)
		}
	}
	if n := up.fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1 (cached)", n)
	}
}

func TestTokenExchangeRefusals(t *testing.T) {
	e, up := oidcEnv(t)
	with := func(k string, v any) jwt.MapClaims {
		c := up.claims("upstream-alice")
		c[k] = v
		return c
	}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, up.claims("upstream-alice"))
	hs.Header["kid"] = "rsa-1"
	hsTok, _ := hs.SignedString([]byte("shared"))
	cases := map[string]string{
		"wrong audience": up.sign(t, with("aud", "other"), "RS256"),
		"wrong issuer":   up.sign(t, with("iss", "https://evil.test"), "RS256"),
		"expired":        up.sign(t, with("exp", time.Now().Add(-time.Hour).Unix()), "ES256"),
		"unmapped sub":   up.sign(t, up.claims("stranger"), "RS256"),
		"HS256":          hsTok,
		"alg none":       algNone(up.claims("upstream-alice")),
		"garbage":        "abc",
		"our own token":  e.login("alice", "correct horse"),
	}
	for name, tok := range cases {
		st, m, _ := e.tokenReq(exchangeForm(tok), nil)
		if st != 400 || m["error"] != "invalid_grant" {
			t.Errorf("%s: %d %v", name, st, m)
		}
	}
	good := up.sign(t, up.claims("upstream-alice"), "RS256")
	f := exchangeForm(good)
	f.Set("subject_token_type", "urn:ietf:params:oauth:token-type:saml2")
	if st, m, _ := e.tokenReq(f, nil); st != 400 || m["error"] != "invalid_request" {
		t.Errorf("saml token type: %d %v", st, m)
	}
	f.Del("subject_token_type") // tolerated
	if st, m, _ := e.tokenReq(f, nil); st != 200 {
		t.Errorf("no subject_token_type: %d %v", st, m)
	}
}

func TestTokenExchangeUpstreamRotationAndOutage(t *testing.T) {
	e, up := oidcEnv(t)
	if st, _, _ := e.tokenReq(exchangeForm(up.sign(t, up.claims("upstream-alice"), "RS256")), nil); st != 200 {
		t.Fatal("first exchange failed")
	}
	// Upstream rotates in a new key: the unknown kid triggers a refetch,
	// but not more often than every 10 s.
	nk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	up.mu.Lock()
	up.keys["ec-2"] = nk
	up.mu.Unlock()
	tok := up.signWith(t, up.claims("upstream-alice"), "ec-2")
	if st, _, _ := e.tokenReq(exchangeForm(tok), nil); st != 400 {
		t.Fatalf("refetch not rate limited: %d", st)
	}
	e.clk.advance(11 * time.Second)
	if st, m, _ := e.tokenReq(exchangeForm(tok), nil); st != 200 {
		t.Fatalf("rotated upstream key: %d %v", st, m)
	}
	// Outage: cached keys keep working past the cache TTL.
	up.failing.Store(true)
	e.clk.advance(10 * time.Minute)
	c := up.claims("upstream-alice")
	c["iat"], c["exp"] = e.clk.now().Unix(), e.clk.now().Add(5*time.Minute).Unix()
	if st, m, _ := e.tokenReq(exchangeForm(up.sign(t, c, "RS256")), nil); st != 200 {
		t.Fatalf("during JWKS outage with cached keys: %d %v", st, m)
	}
}

func TestTokenExchangeJWKSDown(t *testing.T) {
	e, up := oidcEnv(t)
	up.failing.Store(true)
	if st, m, _ := e.tokenReq(exchangeForm(up.sign(t, up.claims("upstream-alice"), "RS256")), nil); st != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("JWKS down: %d %v", st, m)
	}
}

// hangUp sends an exchange with tok and hangs up as soon as jwt-auth has
// asked the upstream for its JWKS (or after 20 ms when wait is false): the
// attack on the refetch window.
func (e *env) hangUp(t *testing.T, up *upstream, tok string, wait bool) {
	t.Helper()
	select { // drop a stale signal
	case <-up.requested:
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.ts.URL+"/token", strings.NewReader(exchangeForm(tok).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := e.ts.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if !wait {
		time.Sleep(20 * time.Millisecond)
	} else {
		select {
		case <-up.requested:
		case <-time.After(5 * time.Second):
			t.Fatal("jwt-auth never fetched the JWKS")
		}
	}
	cancel()
	<-done
}

// TestTokenExchangeNotStalledByHangUps: an exchange with an unknown kid,
// hung up at once, used to cancel the JWKS fetch and still spend the 10 s
// refetch window, so every exchange failed until it reopened (a new
// replica never loaded the JWKS; an upstream key rotation was never seen).
// Now the fetch completes whoever hangs up, and the exchange keeps working
// while the attack runs.
func TestTokenExchangeNotStalledByHangUps(t *testing.T) {
	e, up := oidcEnv(t)
	up.delay = 100 * time.Millisecond
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attack := jwt.NewWithClaims(jwt.SigningMethodES256, up.claims("upstream-alice"))
	attack.Header["kid"] = "no-such-kid"
	attackTok, err := attack.SignedString(stranger)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh replica: the attacker comes first.
	e.hangUp(t, up, attackTok, true)
	if st, m, _ := e.tokenReq(exchangeForm(up.sign(t, up.claims("upstream-alice"), "RS256")), nil); st != 200 {
		t.Fatalf("exchange after a hung-up fetch on a fresh replica: %d %v", st, m)
	}
	// The upstream rotates; the attacker hangs up on the refetch the new
	// kid would need.
	nk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	up.mu.Lock()
	up.keys["ec-2"] = nk
	up.mu.Unlock()
	e.clk.advance(11 * time.Second)
	e.hangUp(t, up, attackTok, true)
	if st, m, _ := e.tokenReq(exchangeForm(up.signWith(t, up.claims("upstream-alice"), "ec-2")), nil); st != 200 {
		t.Fatalf("rotated key after a hung-up refetch: %d %v", st, m)
	}
	// Exchanges keep working while hang-ups go on, each window.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				e.hangUp(t, up, attackTok, false)
			}
		}
	}()
	for i := range 10 {
		e.clk.advance(11 * time.Second)
		if st, m, _ := e.tokenReq(exchangeForm(up.sign(t, up.claims("upstream-alice"), "ES256")), nil); st != 200 {
			t.Errorf("exchange %d during the attack: %d %v", i, st, m)
		}
	}
	close(stop)
	wg.Wait()
}

// TestTokenExchangeFailedFetchBacksOffBriefly: a failed JWKS fetch no
// longer closes the 10 s refetch window, only a 1 s back-off, so the
// upstream coming back is seen within a second.
func TestTokenExchangeFailedFetchBacksOffBriefly(t *testing.T) {
	e, up := oidcEnv(t)
	tok := up.sign(t, up.claims("upstream-alice"), "RS256")
	up.failing.Store(true)
	if st, _, _ := e.tokenReq(exchangeForm(tok), nil); st != 400 {
		t.Fatalf("JWKS down: %d", st)
	}
	up.failing.Store(false)
	n := up.fetches.Load()
	if st, _, _ := e.tokenReq(exchangeForm(tok), nil); st != 400 || up.fetches.Load() != n {
		t.Fatalf("refetched within the back-off: %d, %d fetches", st, up.fetches.Load()-n)
	}
	e.clk.advance(time.Second)
	if st, m, _ := e.tokenReq(exchangeForm(tok), nil); st != 200 {
		t.Fatalf("upstream back, 1 s later: %d %v", st, m)
	}
}
