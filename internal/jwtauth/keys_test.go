package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

func TestLoadKeyDirFormatsAndSecretMountLayout(t *testing.T) {
	dir := t.TempDir()
	// A Kubernetes Secret volume: real files in a timestamped dir, "..data"
	// pointing at it, and <kid>.pem symlinks through ..data.
	ts := filepath.Join(dir, "..2024_05_01_10_00_00.123")
	if err := os.Mkdir(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	writeKey(t, ts, "2024-01", false)
	writeKey(t, ts, "2024-02", true)
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{"2024-01", "2024-02"} {
		if err := os.Symlink(filepath.Join("..data", kid+".pem"), filepath.Join(dir, kid+".pem")); err != nil {
			t.Fatal(err)
		}
	}
	// openssl ecparam -genkey writes EC PARAMETERS before the key.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(k)
	withParams := "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" +
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	writeFile(t, dir, "2023-12.pem", withParams)
	writeFile(t, dir, ".hidden.pem", "junk")
	writeFile(t, dir, "README", "not a key")

	ks, err := LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := ks.KIDs(); !reflect.DeepEqual(got, []string{"2023-12", "2024-01", "2024-02"}) {
		t.Fatalf("kids %v", got)
	}
	if ks.SigningKID() != "2024-02" {
		t.Fatalf("signing kid %s", ks.SigningKID())
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(ks.jwks, &set); err != nil || len(set.Keys) != 3 {
		t.Fatalf("jwks %s: %v", ks.jwks, err)
	}
	for _, k := range set.Keys {
		if k.Algorithm != "ES256" || k.Use != "sig" || k.KeyID == "" || !k.IsPublic() || !k.Valid() {
			t.Errorf("jwk %+v", k)
		}
	}
}

func TestLoadKeyDirRejects(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalECPrivateKey(p384)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDer, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	cases := map[string]struct{ name, content, want string }{
		"P-384":    {"a.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p384der})), "P-256"},
		"RSA":      {"a.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDer})), "P-256"},
		"not PEM":  {"a.pem", "hello", "no PEM private key"},
		"cert":     {"a.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "unexpected PEM block"},
		"bad kid":  {"a b.pem", "", "kid"},
		"two keys": {"a.pem", "", "more than one"},
	}
	for name, c := range cases {
		dir := t.TempDir()
		content := c.content
		if name == "bad kid" || name == "two keys" {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.MarshalECPrivateKey(k)
			content = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
			if name == "two keys" {
				content += content
			}
		}
		writeFile(t, dir, c.name, content)
		_, err := LoadKeyDir(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", name, err, c.want)
		}
	}
	if _, err := LoadKeyDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing dir accepted")
	}
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := p.Header["kid"].(string)
	return kid
}

func TestKeyRotationWithoutDowntime(t *testing.T) {
	e := newEnv(t, nil)
	oldTok := e.login("alice", "correct horse")
	if kidOf(t, oldTok) != "2024-01" {
		t.Fatal("first token not signed by 2024-01")
	}
	// Step 1: a new, greater kid appears; it signs, both verify.
	writeKey(t, e.keyDir, "2025-01", false)
	if err := e.srv.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	newTok := e.login("alice", "correct horse")
	if kidOf(t, newTok) != "2025-01" {
		t.Fatalf("new token kid %s", kidOf(t, newTok))
	}
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if st, _, body := e.check("/api/orders", bearer(tok)); st != 200 {
			t.Fatalf("%s token during overlap: %d %s", name, st, body)
		}
	}
	_, _, jwks := e.do(http.MethodGet, "/.well-known/jwks.json", nil, nil)
	if !strings.Contains(jwks, `"2024-01"`) || !strings.Contains(jwks, `"2025-01"`) {
		t.Fatalf("jwks during overlap: %s", jwks)
	}
	// Step 2: the old key is dropped; its tokens stop verifying at once,
	// even though the check result was cached.
	if err := os.Remove(filepath.Join(e.keyDir, "2024-01.pem")); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	if st, _, body := e.check("/api/orders", bearer(oldTok)); st != 401 || !strings.Contains(body, reasonUnknownKID) {
		t.Fatalf("token of removed key: %d %s", st, body)
	}
	if st, _, _ := e.check("/api/orders", bearer(newTok)); st != 200 {
		t.Fatalf("new token after removal: %d", st)
	}
	_, _, jwks = e.do(http.MethodGet, "/.well-known/jwks.json", nil, nil)
	if strings.Contains(jwks, `"2024-01"`) {
		t.Fatalf("removed key still published: %s", jwks)
	}
}

func TestBadReloadKeepsKeysAndReadiness(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice", "correct horse")
	writeFile(t, e.keyDir, "2030-01.pem", "garbage")
	if err := e.srv.ReloadKeys(); err == nil {
		t.Fatal("garbage key accepted")
	}
	if st, _, _ := e.check("/api/orders", bearer(tok)); st != 200 {
		t.Fatalf("token after failed reload: %d", st)
	}
	if st, _, _ := e.do(http.MethodGet, "/readyz", nil, nil); st != 200 {
		t.Fatalf("readyz after failed reload: %d", st)
	}
	if e.srv.KeySet().SigningKID() != "2024-01" {
		t.Fatal("signing key changed by a failed reload")
	}
}

func TestReadinessNeedsAKey(t *testing.T) {
	e := newEnv(t, nil)
	os.Remove(filepath.Join(e.keyDir, "2024-01.pem"))
	if err := e.srv.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := e.do(http.MethodGet, "/readyz", nil, nil); st != http.StatusServiceUnavailable {
		t.Fatalf("readyz without keys: %d", st)
	}
	if st, m, _ := e.tokenReq(pwForm("alice", "correct horse"), nil); st != http.StatusServiceUnavailable || m["error"] != "temporarily_unavailable" {
		t.Fatalf("mint without keys: %d %v", st, m)
	}
	if st, _, _ := e.do(http.MethodGet, "/healthz", nil, nil); st != 200 {
		t.Fatalf("healthz: %d", st)
	}
	writeKey(t, e.keyDir, "2026-01", true)
	e.srv.ReloadKeys()
	if st, _, _ := e.do(http.MethodGet, "/readyz", nil, nil); st != 200 {
		t.Fatalf("readyz with key: %d", st)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice", "correct horse")
	e.check("/api/orders", bearer(tok))
	e.check("/api/nope", bearer(tok))
	_, _, body := e.do(http.MethodGet, "/metrics", nil, nil)
	for _, want := range []string{
		`jwt_auth_decisions_total{reason="token",result="allow"} 1`,
		`jwt_auth_decisions_total{reason="path_not_allowed",result="deny"} 1`,
		`jwt_auth_tokens_minted_total{grant="password"} 1`,
		`jwt_auth_request_duration_seconds_count{endpoint="check"} 2`,
		`jwt_auth_signing_keys 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if st, _, _ := e.do(http.MethodPost, "/metrics", nil, nil); st != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", st)
	}
	if st, _, _ := e.do(http.MethodGet, "/nope", nil, nil); st != 404 {
		t.Errorf("unknown path: %d", st)
	}
}

// TestServePollsKeysAndShutsDownGracefully runs the real Serve loop: the
// key directory poll picks up a new key, and SIGTERM-style cancellation
// lets an in-flight /token request (held up by a slow upstream JWKS)
// finish before Serve returns.
func TestServePollsKeysAndShutsDownGracefully(t *testing.T) {
	up := newUpstream(t)
	up.delay = 400 * time.Millisecond
	e := newEnv(t, func(c *Config) {
		c.KeyReloadInterval = 20 * time.Millisecond
		c.OIDCIssuer, c.OIDCAudience, c.OIDCJWKSURL = up.issuer, "ztedge-client", up.url()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()

	writeKey(t, e.keyDir, "2025-06", false)
	deadline := time.Now().Add(3 * time.Second)
	for e.srv.KeySet().SigningKID() != "2025-06" {
		if time.Now().After(deadline) {
			t.Fatal("poll did not pick up the new key")
		}
		time.Sleep(10 * time.Millisecond)
	}

	type result struct {
		status int
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		form := exchangeForm(up.sign(t, up.claims("upstream-alice"), "RS256"))
		resp, err := http.PostForm(base+"/token", form)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		resp.Body.Close()
		inflight <- result{status: resp.StatusCode}
	}()
	<-up.requested // the request is now in flight, waiting on the JWKS
	cancel()
	r := <-inflight
	if r.err != nil || r.status != 200 {
		t.Fatalf("in-flight request during shutdown: %v %d", r.err, r.status)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}
