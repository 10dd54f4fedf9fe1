package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

const (
	testIssuer   = "https://auth.ztedge.test"
	testAudience = "ztedge"
	testOrigin   = "https://app.example.com"
)

// clock is a settable time source shared by the server and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// writeKey writes a fresh P-256 key as <kid>.pem, in SEC1 or PKCS#8 form.
func writeKey(t testing.TB, dir, kid string, pkcs8 bool) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if pkcs8 {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	} else {
		block = sec1(t, k)
	}
	if err := os.WriteFile(filepath.Join(dir, kid+".pem"), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

func sec1(t testing.TB, k *ecdsa.PrivateKey) *pem.Block {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
}

// writePEMKey writes a given key as <kid>.pem (SEC1).
func writePEMKey(t testing.TB, dir, kid string, k *ecdsa.PrivateKey) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, kid+".pem"), pem.EncodeToMemory(sec1(t, k)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lowCostHash keeps tests fast; production hashes use cost >= 12.
func lowCostHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// testCA is a throwaway CA for client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64 = 100

func newSerial() *big.Int {
	serial++
	return big.NewInt(serial)
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"ztedge test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: k, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a client certificate; zero times mean "valid now".
func (ca *testCA) issue(t testing.TB, cn string, notBefore, notAfter time.Time, eku x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = time.Now().Add(time.Hour)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Example, Inc."}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{eku},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func certPEM(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

// albEncode mimics ALB: percent-encoding (space as %20, newline as %0A)
// that leaves '+', '=' and '/' alone.
func albEncode(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), "%2F", "/")
}

// xfccCert builds an Envoy XFCC value with the certificate in Cert="...".
func xfccCert(c *x509.Certificate) string {
	return `By=spiffe://cluster.local/ns/ambassador/sa/ambassador;Hash=abc;Subject="` +
		c.Subject.String() + `";Cert="` + url.PathEscape(certPEM(c)) + `"`
}

// env is a running service on loopback with every way in enabled.
type env struct {
	t      testing.TB
	dir    string
	keyDir string
	keys   map[string]*ecdsa.PrivateKey
	clk    *clock
	ca     *testCA
	srv    *Server
	ts     *httptest.Server
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const usersYAML = `users:
  - username: alice
    password_hash: "%s"
    oidc_subject: upstream-alice
    permissions: [orders:read, orders:write]
    services: [/api/orders, /api/users/]
    origins: [https://app.example.com]
  - username: bob
    password_hash: "%s"
    permissions: []
    services: [/]
    origins: []
`

const clientsYAML = `clients:
  - subject: "CN=payments,O=Example\\, Inc."
    id: payments
    permissions: [payments:settle]
    services: [/api/payments]
    origins: []
`

// newEnv starts a server; mutate adjusts the config before New.
func newEnv(t testing.TB, mutate func(*Config)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), keys: map[string]*ecdsa.PrivateKey{}, clk: newClock(), logs: &syncBuffer{}}
	e.keyDir = filepath.Join(e.dir, "keys")
	if err := os.Mkdir(e.keyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	e.keys["2024-01"] = writeKey(t, e.keyDir, "2024-01", false)
	e.ca = newCA(t, "ztedge test client CA")
	users := writeFile(t, e.dir, "users.yaml", fmt.Sprintf(usersYAML, lowCostHash(t, "correct horse"), lowCostHash(t, "bobpw")))
	clients := writeFile(t, e.dir, "clients.yaml", clientsYAML)
	caFile := writeFile(t, e.dir, "ca.pem", string(e.ca.pem))
	cfg := Config{
		Listen:            "127.0.0.1:0",
		SigningKeysDir:    e.keyDir,
		Issuer:            testIssuer,
		Audience:          testAudience,
		UsersFile:         users,
		ClientsFile:       clients,
		ClientCAFile:      caFile,
		ClientCertHeaders: CertHeadersXFCC,
		KeyReloadInterval: -1,
		Logger:            slog.New(slog.NewJSONHandler(e.logs, nil)),
		Now:               e.clk.now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(e.ts.Close)
	return e
}

// setCertMode switches the forwarded-certificate mode of a running env
// (one edge never switches; tests reuse one CA across modes).
func (e *env) setCertMode(mode string) {
	e.srv.certs.mode = certModes[mode]
	e.srv.certs.cache.purge()
}

// modeFor is the mode whose edge sets the one certificate header in hdr.
func modeFor(hdr map[string]string) string {
	for mode, m := range certModes {
		if _, ok := hdr[m.header]; ok {
			return mode
		}
	}
	return CertHeadersXFCC
}

// do sends a request and returns status, headers and body.
func (e *env) do(method, path string, hdr map[string]string, body io.Reader) (int, http.Header, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.ts.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (e *env) check(path string, hdr map[string]string) (int, http.Header, string) {
	e.t.Helper()
	return e.do(http.MethodGet, "/auth"+path, hdr, nil)
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// tokenReq posts a form to /token and decodes the JSON answer.
func (e *env) tokenReq(form url.Values, hdr map[string]string) (int, map[string]any, http.Header) {
	e.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range hdr {
		h[k] = v
	}
	st, rh, body := e.do(http.MethodPost, "/token", h, strings.NewReader(form.Encode()))
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		e.t.Fatalf("token response %d not JSON: %q", st, body)
	}
	return st, m, rh
}

func (e *env) login(user, pw string) string {
	e.t.Helper()
	st, m, _ := e.tokenReq(url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}, nil)
	if st != http.StatusOK {
		e.t.Fatalf("login %s: %d %v", user, st, m)
	}
	return m["access_token"].(string)
}

// claims returns valid claims for alice, relative to the env clock.
func (e *env) claims() jwt.MapClaims {
	now := e.clk.now()
	return jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": "alice",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"jti": "t1", "permissions": []string{"orders:read"},
		"services": []string{"/api/orders"}, "origins": []string{testOrigin},
	}
}

// sign makes an ES256 token with the given key and kid, in the low-S
// spelling jwt-auth mints and accepts.
func sign(t testing.TB, key *ecdsa.PrivateKey, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return toLowS(s)
}

// serve runs the real Serve loop on a loopback port until the test ends
// (which fails if Serve did) and returns its address.
func (e *env) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}
