package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// paymentsCert issues a leaf whose subject is the configured client, with
// a '+' in its base64 so ALB-style encoding is really exercised.
func paymentsCert(t *testing.T, ca *testCA, notBefore, notAfter time.Time, eku x509.ExtKeyUsage) *x509.Certificate {
	for range 20 {
		c := ca.issue(t, "payments", notBefore, notAfter, eku)
		if strings.Contains(certPEM(c), "+") {
			return c
		}
	}
	t.Fatal("could not get a certificate with '+' in its PEM")
	return nil
}

func TestCheckClientCertificate(t *testing.T) {
	e := newEnv(t, nil)
	good := paymentsCert(t, e.ca, time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	other := newCA(t, "some other CA")
	cases := []struct {
		name   string
		hdr    map[string]string
		status int
		reason string
	}{
		{"ALB leaf (verify mode)", map[string]string{headerALBLeaf: albEncode(certPEM(good))}, 200, ""},
		{"ALB chain (passthrough)", map[string]string{headerALBChain: albEncode(certPEM(good, e.ca.cert))}, 200, ""},
		{"XFCC", map[string]string{headerXFCC: xfccCert(good)}, 200, ""},
		{"XFCC last element wins", map[string]string{headerXFCC: `Hash=1;Cert="garbage-from-client",` + xfccCert(good)}, 200, ""},
		{"another CA", map[string]string{headerALBLeaf: albEncode(certPEM(other.issue(t, "payments", time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)))}, 401, reasonUntrustedCert},
		{"expired", map[string]string{headerALBLeaf: albEncode(certPEM(e.ca.issue(t, "payments", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), x509.ExtKeyUsageClientAuth)))}, 401, reasonExpiredCert},
		{"not yet valid", map[string]string{headerXFCC: xfccCert(e.ca.issue(t, "payments", time.Now().Add(time.Hour), time.Now().Add(2*time.Hour), x509.ExtKeyUsageClientAuth))}, 401, reasonExpiredCert},
		{"server-auth only", map[string]string{headerALBLeaf: albEncode(certPEM(e.ca.issue(t, "payments", time.Time{}, time.Time{}, x509.ExtKeyUsageServerAuth)))}, 401, reasonUntrustedCert},
		{"unknown subject", map[string]string{headerALBLeaf: albEncode(certPEM(e.ca.issue(t, "intruder", time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)))}, 403, reasonClientNotAllowed},
		{"malformed escape", map[string]string{headerALBLeaf: "%zz" + albEncode(certPEM(good))}, 401, reasonBadClientCert},
		{"not PEM", map[string]string{headerALBLeaf: "hello"}, 401, reasonBadClientCert},
		{"truncated PEM", map[string]string{headerALBLeaf: albEncode(certPEM(good)[:300])}, 401, reasonBadClientCert},
		{"trailing junk", map[string]string{headerALBLeaf: albEncode(certPEM(good) + "junk")}, 401, reasonBadClientCert},
		{"query-unescaped '+'", map[string]string{headerALBLeaf: strings.ReplaceAll(albEncode(certPEM(good)), "+", " ")}, 401, reasonBadClientCert},
		{"unterminated XFCC quote", map[string]string{headerXFCC: `Cert="abc`}, 401, reasonBadClientCert},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.setCertMode(modeFor(c.hdr))
			st, hdr, body := e.check("/api/payments/settle", c.hdr)
			if st != c.status || !strings.Contains(body, c.reason) {
				t.Fatalf("%d %s, want %d %s", st, body, c.status, c.reason)
			}
			if st == 200 && (hdr.Get("X-User-ID") != "payments" || hdr.Get("X-User-Permissions") != "payments:settle") {
				t.Fatalf("headers %v", hdr)
			}
		})
	}
	// Path and origin rules use the client's own services and origins.
	e.setCertMode(CertHeadersXFCC)
	h := map[string]string{headerXFCC: xfccCert(good)}
	if st, _, body := e.check("/api/orders", h); st != 403 || !strings.Contains(body, reasonPathNotAllowed) {
		t.Errorf("client outside its services: %d %s", st, body)
	}
	h["Origin"] = testOrigin
	if st, _, body := e.check("/api/payments", h); st != 403 || !strings.Contains(body, reasonOriginNotAllowed) {
		t.Errorf("client with origin: %d %s", st, body)
	}
	// A bearer token, when present, decides alone.
	if st, _, _ := e.check("/api/payments", map[string]string{"Authorization": "Bearer x.y.z", headerXFCC: xfccCert(good)}); st != 401 {
		t.Errorf("bad token + good cert: %d", st)
	}
}

func TestClientCertIntermediateChain(t *testing.T) {
	e := newEnv(t, nil)
	// root (in --client-ca) -> intermediate (sent by the client) -> leaf
	ik, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	itpl := &x509.Certificate{
		SerialNumber: newSerial(), Subject: pkix.Name{CommonName: "intermediate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	ider, err := x509.CreateCertificate(rand.Reader, itpl, e.ca.cert, &ik.PublicKey, e.ca.key)
	if err != nil {
		t.Fatal(err)
	}
	icert, _ := x509.ParseCertificate(ider)
	inter := &testCA{cert: icert, key: ik}
	leaf := inter.issue(t, "payments", time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)

	e.setCertMode(CertHeadersALBPassthrough)
	if st, _, body := e.check("/api/payments", map[string]string{headerALBChain: albEncode(certPEM(leaf, icert))}); st != 200 {
		t.Fatalf("ALB chain with intermediate: %d %s", st, body)
	}
	e.setCertMode(CertHeadersXFCC)
	xfcc := `Cert="` + url.QueryEscape(certPEM(leaf)) + `";Chain="` + url.QueryEscape(certPEM(leaf, icert)) + `"`
	if st, _, body := e.check("/api/payments", map[string]string{headerXFCC: xfcc}); st != 200 {
		t.Fatalf("XFCC Cert+Chain: %d %s", st, body)
	}
	// Without the intermediate the leaf does not chain to the root.
	e.setCertMode(CertHeadersALBVerify)
	if st, _, _ := e.check("/api/payments", map[string]string{headerALBLeaf: albEncode(certPEM(leaf))}); st != 401 {
		t.Fatalf("leaf without intermediate: %d", st)
	}
}

// TestClientCertHeaderModes: each mode believes exactly the one header its
// edge sets and refuses a request carrying any other certificate header,
// even next to a good one or a valid token: a client added it. In alb-verify
// mode the ALB sets -Leaf (client A here); a client adding the passthrough
// header with client B's certificate used to authenticate as B.
func TestClientCertHeaderModes(t *testing.T) {
	e := newEnv(t, nil)
	clients := writeFile(t, e.dir, "two-clients.yaml", `clients:
  - {subject: "CN=client-a,O=Example\\, Inc.", id: client-a, services: [/]}
  - {subject: "CN=client-b,O=Example\\, Inc.", id: client-b, services: [/]}
`)
	var err error
	if e.srv.certs.clients, err = loadClients(clients); err != nil {
		t.Fatal(err)
	}
	a := e.ca.issue(t, "client-a", time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	b := e.ca.issue(t, "client-b", time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	sent := map[string]string{ // each header, carrying B: what a client can add
		headerALBChain: albEncode(certPEM(b, e.ca.cert)),
		headerALBLeaf:  albEncode(certPEM(b)),
		headerXFCC:     xfccCert(b),
	}
	edge := map[string]string{ // what each mode's edge sets for A
		CertHeadersALBPassthrough: albEncode(certPEM(a, e.ca.cert)),
		CertHeadersALBVerify:      albEncode(certPEM(a)),
		CertHeadersXFCC:           xfccCert(a),
	}
	tok := e.login("bob", "bobpw")
	for mode, m := range certModes {
		e.setCertMode(mode)
		if st, hdr, body := e.check("/x", map[string]string{m.header: edge[mode]}); st != 200 || hdr.Get("X-User-ID") != "client-a" {
			t.Errorf("%s: own header alone: %d %s %v", mode, st, body, hdr)
		}
		for name, v := range sent {
			if name == m.header {
				continue
			}
			if st, _, body := e.check("/x", map[string]string{m.header: edge[mode], name: v}); st != 401 || !strings.Contains(body, reasonForeignCertHeader) {
				t.Errorf("%s: %s added next to the edge's header: %d %s, want 401 %s", mode, name, st, body, reasonForeignCertHeader)
			}
			if st, _, body := e.check("/x", map[string]string{name: v}); st != 401 || !strings.Contains(body, reasonForeignCertHeader) {
				t.Errorf("%s: %s alone: %d %s", mode, name, st, body)
			}
			h := bearer(tok)
			h[name] = v
			if st, _, body := e.check("/x", h); st != 401 || !strings.Contains(body, reasonForeignCertHeader) {
				t.Errorf("%s: %s next to a valid token: %d %s", mode, name, st, body)
			}
			st, m, _ := e.tokenReq(url.Values{"grant_type": {GrantClientCert}}, map[string]string{m.header: edge[mode], name: v})
			if st != 400 || m["error"] != "invalid_grant" {
				t.Errorf("%s: token grant with %s added: %d %v", mode, name, st, m)
			}
		}
	}
	if !strings.Contains(e.logs.String(), `"reason":"`+reasonForeignCertHeader+`"`) {
		t.Error("refusals are not in the audit log with their reason")
	}
}

func TestClientCertCacheRespectsExpiry(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClientCertHeaders = CertHeadersALBVerify })
	leaf := e.ca.issue(t, "payments", time.Now().Add(-time.Hour), e.clk.now().Add(time.Minute), x509.ExtKeyUsageClientAuth)
	h := map[string]string{headerALBLeaf: albEncode(certPEM(leaf))}
	if st, _, _ := e.check("/api/payments", h); st != 200 {
		t.Fatalf("fresh cert: %d", st)
	}
	e.clk.advance(2 * time.Minute)
	if st, _, body := e.check("/api/payments", h); st != 401 || !strings.Contains(body, reasonExpiredCert) {
		t.Fatalf("cert expired after caching: %d %s", st, body)
	}
}

func TestParsePEMCertsALBEncoding(t *testing.T) {
	ca := newCA(t, "ca")
	leaf := paymentsCert(t, ca, time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	for name, enc := range map[string]string{
		"alb":   albEncode(certPEM(leaf, ca.cert)),
		"query": url.QueryEscape(certPEM(leaf, ca.cert)),
		"path":  url.PathEscape(certPEM(leaf, ca.cert)),
	} {
		certs, err := parsePEMCerts(enc)
		if err != nil || len(certs) != 2 || !certs[0].Equal(leaf) || !certs[1].Equal(ca.cert) {
			t.Errorf("%s: %v (%d certs)", name, err, len(certs))
		}
	}
	var many []*x509.Certificate
	for range maxChainCerts + 1 {
		many = append(many, ca.cert)
	}
	if _, err := parsePEMCerts(url.QueryEscape(certPEM(many...))); err == nil {
		t.Error("over-long chain accepted")
	}
	if _, err := parsePEMCerts(strings.Repeat("A", maxCertHeader+1)); err == nil {
		t.Error("oversize header accepted")
	}
	_ = http.StatusOK
}

// TestClientCertPinning: a trusted client from the stack CA is its current
// certificate(s), not every certificate ever issued for its CN. After the
// PKI re-issues it (new fingerprint in the clients file), the old one
// (e.g. stolen with its key) is refused, though it still chains and has
// not expired.
func TestClientCertPinning(t *testing.T) {
	e := newEnv(t, nil)
	stolen := e.ca.issue(t, "payments", time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	current := e.ca.issue(t, "payments", time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	pinned := func(certs ...*x509.Certificate) *env {
		var fps []string
		for _, c := range certs {
			fps = append(fps, `"`+CertFingerprint(c.Raw)+`"`)
		}
		return newEnv(t, func(c *Config) {
			c.ClientsFile = writeFile(t, t.TempDir(), "clients.yaml",
				"clients:\n  - {name: payments, fingerprints: ["+strings.Join(fps, ", ")+"], services: [/api/payments]}\n")
			c.ClientCAFile = writeFile(t, t.TempDir(), "ca.pem", string(e.ca.pem))
		})
	}
	before := pinned(stolen)
	if st, hdr, body := before.check("/api/payments", map[string]string{headerXFCC: xfccCert(stolen)}); st != 200 || hdr.Get("X-User-ID") != "payments" {
		t.Fatalf("pinned certificate: %d %s", st, body)
	}
	after := pinned(current) // `pulumi up --replace` re-issued the certificate
	if st, _, body := after.check("/api/payments", map[string]string{headerXFCC: xfccCert(stolen)}); st != 401 || !strings.Contains(body, reasonCertNotCurrent) {
		t.Fatalf("replaced certificate: %d %s, want 401 %s", st, body, reasonCertNotCurrent)
	}
	if st, _, body := after.check("/api/payments", map[string]string{headerXFCC: xfccCert(current)}); st != 200 {
		t.Fatalf("current certificate: %d %s", st, body)
	}
	st, m, _ := after.tokenReq(url.Values{"grant_type": {GrantClientCert}}, map[string]string{headerXFCC: xfccCert(stolen)})
	if st != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("token grant with the replaced certificate: %d %v", st, m)
	}
	// During a renewal both may be pinned.
	if st, _, _ := pinned(stolen, current).check("/api/payments", map[string]string{headerXFCC: xfccCert(stolen)}); st != 200 {
		t.Fatalf("two pins: %d", st)
	}
}

// doHeader sends a check or a /token form with headers that may repeat.
func (e *env) doHeader(path string, h http.Header, form url.Values) (int, string) {
	e.t.Helper()
	method, body := http.MethodGet, ""
	if form != nil {
		method, body = http.MethodPost, form.Encode()
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header = h
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClientCertOneCertificateOneHeader: a second value of the mode's
// header, two certificates joined by a comma, or a second certificate in
// the leaf header used to authenticate as the first certificate's client
// (h.Get reads the first value, the PEM parser skipped text between
// certificates and took chain[0] as the leaf). Each is refused with its
// own reason on the check and on the client_certificate grant, counted and
// audited; the edge's single header still works.
func TestClientCertOneCertificateOneHeader(t *testing.T) {
	e := newEnv(t, nil)
	good := paymentsCert(t, e.ca, time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	intruder := e.ca.issue(t, "intruder", time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	leaf, chain := albEncode(certPEM(good)), albEncode(certPEM(good, e.ca.cert))
	two := func(name, a, b string) http.Header { return http.Header{name: {a, b}} }
	one := func(name, v string) http.Header { return http.Header{name: {v}} }
	cases := []struct {
		name, mode string
		hdr        http.Header
		reason     string
	}{
		{"two -Leaf values, trusted first", CertHeadersALBVerify, two(headerALBLeaf, leaf, albEncode(certPEM(intruder))), reasonDuplicateCertHeader},
		{"two -Leaf values, same cert", CertHeadersALBVerify, two(headerALBLeaf, leaf, leaf), reasonDuplicateCertHeader},
		{"-Leaf then an empty value", CertHeadersALBVerify, two(headerALBLeaf, leaf, ""), reasonDuplicateCertHeader},
		{"-Leaf joined by a comma", CertHeadersALBVerify, one(headerALBLeaf, leaf+","+albEncode(certPEM(intruder))), reasonCertHeaderComma},
		{"two certificates in -Leaf", CertHeadersALBVerify, one(headerALBLeaf, albEncode(certPEM(good, intruder))), reasonMultipleLeafCerts},
		{"two chain values", CertHeadersALBPassthrough, two(headerALBChain, chain, albEncode(certPEM(intruder, e.ca.cert))), reasonDuplicateCertHeader},
		{"chains joined by a comma", CertHeadersALBPassthrough, one(headerALBChain, chain+","+chain), reasonCertHeaderComma},
		{"text between chain certificates", CertHeadersALBPassthrough, one(headerALBChain, albEncode(certPEM(good)+"x\n"+certPEM(e.ca.cert))), reasonBadClientCert},
		{"two XFCC values", CertHeadersXFCC, two(headerXFCC, xfccCert(good), xfccCert(good)), reasonDuplicateCertHeader},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.setCertMode(c.mode)
			// The first value alone is accepted (and cached): the refusal
			// below must not come from a cold cache.
			if m := certModes[c.mode]; c.reason == reasonDuplicateCertHeader {
				if st, body := e.doHeader("/auth/api/payments", one(m.header, c.hdr[m.header][0]), nil); st != 200 {
					t.Fatalf("first value alone: %d %s", st, body)
				}
			}
			before := testutil.ToFloat64(e.srv.metrics.decisions.WithLabelValues("deny", c.reason))
			st, body := e.doHeader("/auth/api/payments", c.hdr.Clone(), nil)
			if st != 401 || !strings.Contains(body, `"reason":"`+c.reason+`"`) {
				t.Fatalf("check: %d %s, want 401 %s", st, body, c.reason)
			}
			if got := testutil.ToFloat64(e.srv.metrics.decisions.WithLabelValues("deny", c.reason)); got != before+1 {
				t.Errorf("not counted: %v -> %v", before, got)
			}
			st, body = e.doHeader("/token", c.hdr.Clone(), url.Values{"grant_type": {GrantClientCert}})
			if st != 400 || !strings.Contains(body, "invalid_grant") {
				t.Fatalf("grant: %d %s, want 400 invalid_grant", st, body)
			}
			if !strings.Contains(e.logs.String(), `"msg":"token","request_id"`) || !strings.Contains(e.logs.String(), `"reason":"`+c.reason+`","status":400`) {
				t.Errorf("grant refusal not audited with %s", c.reason)
			}
		})
	}
}
