// Package smoke runs the acceptance checks of the ztedge design against a deployed edge:
//
//	mtls            TLS 1.3 with a trusted client certificate            → 2xx
//	no-credentials  TLS 1.3, no client certificate, no token             → 401
//	token           TLS 1.3, no client certificate, a token minted by
//	                POST /token (grant_type=client_certificate, over mTLS) → 2xx
//	plain-http      plain HTTP                                           → refused, no answer, or non-2xx
//	tls12           a TLS 1.2 handshake                                  → rejected
//	foreign-cert    a client certificate from another CA (made here)     → handshake rejected or non-2xx
//	forged-<header> TLS 1.3, no client certificate, the trusted client's
//	                public certificate in <header> (the ALB's default
//	                names, and the stack's secret ones if given); GET and
//	                POST /token (grant_type=client_certificate)         → non-2xx, no token
//
// The forged-header checks prove what no test here can: that the real load balancer does not pass a
// client's own copy of its certificate header through to jwt-auth as if it had set it (a certificate
// is public; whoever holds a trusted client's certificate, not its key, would become that client).
//
// Each check opens its own connection (no reuse), so one check's handshake cannot satisfy another's.
package smoke

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Target is the edge under test.
type Target struct {
	// Address is where the TLS endpoint listens (host:port). Connections go there whatever the
	// ServerName, so an edge can be tested before its DNS name resolves (or on a local cluster).
	Address string
	// ServerName is the edge's hostname: the TLS server name, the certificate's expected name and
	// the Host header. Default: the host of Address.
	ServerName string
	// HTTPAddress is probed with plain HTTP. Default: the host of Address, port 80.
	HTTPAddress string
	// Roots verify the edge's server certificate (nil: the system roots, as for an ACM certificate).
	Roots *x509.CertPool
	// Client is a trusted client's certificate and key (issued by the stack's CA).
	Client tls.Certificate
	// Path is a protected route behind the edge (a backend prefix such as /api/orders/).
	Path string
	// TokenPath is the token endpoint (default /token).
	TokenPath string
	// Timeout bounds each check (default 10s).
	Timeout time.Duration
	// CertHeaders are forged with the trusted client's public certificate, with no client
	// certificate presented (default: DefaultCertHeaders). Add the stack's secret header names.
	CertHeaders []string
	// SecretCertHeader is the stack's secret certificate header name (clientCertHeaderName),
	// forged like CertHeaders; its check is "forged-stack-cert-header" and the name never shows.
	SecretCertHeader string
}

// DefaultCertHeaders are the ALB's default names of its certificate headers.
var DefaultCertHeaders = []string{"X-Amzn-Mtls-Clientcert", "X-Amzn-Mtls-Clientcert-Leaf"}

// Result is one check's outcome.
type Result struct {
	Check  string
	Expect string
	Got    string
	Pass   bool
}

func (t *Target) defaults() error {
	host, _, err := net.SplitHostPort(t.Address)
	if err != nil {
		return fmt.Errorf("endpoint %q: want host:port, e.g. edge.example.com:443", t.Address)
	}
	if t.ServerName == "" {
		t.ServerName = host
	}
	if t.HTTPAddress == "" {
		t.HTTPAddress = net.JoinHostPort(host, "80")
	}
	if t.Path == "" {
		t.Path = "/"
	}
	if !strings.HasPrefix(t.Path, "/") {
		t.Path = "/" + t.Path
	}
	if t.TokenPath == "" {
		t.TokenPath = "/token"
	}
	if t.Timeout <= 0 {
		t.Timeout = 10 * time.Second
	}
	if len(t.CertHeaders) == 0 {
		t.CertHeaders = DefaultCertHeaders
	}
	if len(t.Client.Certificate) == 0 {
		return errors.New("a trusted client certificate and key are required (the mtls and token checks use them)")
	}
	return nil
}

// Run performs every check; an error means the target itself is unusable (not that a check failed).
func Run(ctx context.Context, t Target) ([]Result, error) {
	if err := t.defaults(); err != nil {
		return nil, err
	}
	foreign, err := ForeignClient()
	if err != nil {
		return nil, err
	}
	var results []Result
	add := func(check, expect string, pass bool, got string) {
		results = append(results, Result{Check: check, Expect: expect, Got: got, Pass: pass})
	}

	status, got := t.get(ctx, &t.Client, "")
	add("mtls", "2xx", is2xx(status), got)

	status, got = t.get(ctx, nil, "")
	add("no-credentials", "401", status == http.StatusUnauthorized, got)

	token, mintGot := t.mint(ctx)
	if token == "" {
		add("token", "2xx", false, "no token: "+mintGot)
	} else {
		status, got = t.get(ctx, nil, token)
		add("token", "2xx", is2xx(status), got)
	}

	pass, got := t.plainHTTP(ctx)
	add("plain-http", "refused, no answer or non-2xx", pass, got)

	pass, got = t.tls12(ctx)
	add("tls12", "handshake rejected", pass, got)

	status, got = t.get(ctx, &foreign, "")
	// The edge is reachable (other checks connect), so a connection that fails after it opened is
	// the edge refusing the certificate; one that never opened proves nothing.
	rejected := status == 0 && !strings.HasPrefix(got, noConnection) || status != 0 && !is2xx(status)
	add("foreign-cert", "handshake rejected or non-2xx", rejected, got)

	for _, name := range t.CertHeaders {
		pass, got := t.forged(ctx, name)
		add("forged-"+strings.ToLower(name), "non-2xx, no token", pass, got)
	}
	if t.SecretCertHeader != "" {
		pass, got := t.forged(ctx, t.SecretCertHeader)
		add("forged-stack-cert-header", "non-2xx, no token", pass, strings.ReplaceAll(got, t.SecretCertHeader, "<secret>"))
	}
	return results, nil
}

// forged sends the trusted client's certificate (public data) in header name, URL-encoded as the
// ALB writes it, without presenting a client certificate: on a check and on the token endpoint.
// It passes only when both answered and neither succeeded.
func (t *Target) forged(ctx context.Context, name string) (bool, string) {
	der := t.Client.Certificate[0]
	value := strings.ReplaceAll(url.PathEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))), "%2F", "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url(t.Path), nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set(name, value)
	status, got := describe(t.client(nil, 0).Do(req))
	if status == 0 || is2xx(status) {
		return false, "GET: " + got
	}
	form := url.Values{"grant_type": {"client_certificate"}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, t.url(t.TokenPath), strings.NewReader(form.Encode()))
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(name, value)
	tstatus, tgot := describe(t.client(nil, 0).Do(req))
	if tstatus == 0 || is2xx(tstatus) {
		return false, "POST " + t.TokenPath + ": " + tgot
	}
	return true, "GET " + got + "; POST " + tgot
}

func is2xx(status int) bool { return status >= 200 && status < 300 }

// client returns an HTTP client that dials Address, speaks TLS 1.3 only (the edge's policy: a
// 1.2-only edge fails the checks that expect success), and presents cert if given.
func (t *Target) client(cert *tls.Certificate, maxVersion uint16) *http.Client {
	cfg := &tls.Config{ServerName: t.ServerName, RootCAs: t.Roots, MinVersion: tls.VersionTLS13, MaxVersion: maxVersion}
	if cert != nil {
		c := *cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	if maxVersion != 0 && maxVersion < tls.VersionTLS13 {
		cfg.MinVersion = maxVersion
	}
	dialer := &net.Dialer{Timeout: t.Timeout}
	return &http.Client{
		Timeout: t.Timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, t.Address)
			},
			TLSClientConfig:   cfg,
			DisableKeepAlives: true,
			Proxy:             nil, // the checks are about this edge, never a proxy in between
		},
		// A redirect is an answer of its own (e.g. HTTP → HTTPS); never follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (t *Target) url(path string) string {
	return (&url.URL{Scheme: "https", Host: t.ServerName, Path: path}).String()
}

// get requests Path and returns the status (0 when no response) and a description.
func (t *Target) get(ctx context.Context, cert *tls.Certificate, token string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url(t.Path), nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return describe(t.client(cert, 0).Do(req))
}

// mint asks the token endpoint for a token with the client-certificate grant over mTLS.
func (t *Target) mint(ctx context.Context) (string, string) {
	form := url.Values{"grant_type": {"client_certificate"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url(t.TokenPath), strings.NewReader(form.Encode()))
	if err != nil {
		return "", err.Error()
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := t.client(&t.Client, 0).Do(req)
	if err != nil {
		return "", describeErr(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if !is2xx(resp.StatusCode) {
		return "", fmt.Sprintf("POST %s: %s", t.TokenPath, resp.Status)
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.AccessToken == "" {
		return "", fmt.Sprintf("POST %s: %s without an access_token", t.TokenPath, resp.Status)
	}
	return body.AccessToken, resp.Status
}

// plainHTTP passes when nothing answers on the HTTP port, or what answers refuses to serve.
func (t *Target) plainHTTP(ctx context.Context) (bool, string) {
	dialer := &net.Dialer{Timeout: t.Timeout}
	c := &http.Client{
		Timeout: t.Timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, t.HTTPAddress)
			},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.ServerName+t.Path, nil)
	if err != nil {
		return false, err.Error()
	}
	status, got := describe(c.Do(req))
	return !is2xx(status), got
}

// tls12 passes when a TCP connection opens but a TLS 1.2 handshake fails; a closed port proves
// nothing about the TLS policy, so it fails the check.
func (t *Target) tls12(ctx context.Context) (bool, string) {
	conn, err := (&net.Dialer{Timeout: t.Timeout}).DialContext(ctx, "tcp", t.Address)
	if err != nil {
		return false, describeErr(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(t.Timeout))
	tc := tls.Client(conn, &tls.Config{
		ServerName: t.ServerName, RootCAs: t.Roots,
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{t.Client},
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return true, describeErr(err)
	}
	return false, "TLS 1.2 handshake succeeded"
}

const noConnection = "no connection: "

func describe(resp *http.Response, err error) (int, string) {
	if err != nil {
		return 0, describeErr(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Status
}

// describeErr shortens transport errors to what matters: refused, timed out, or the TLS alert.
func describeErr(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var opErr *net.OpError
	var alert tls.AlertError
	var recErr tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.As(err, &alert), errors.As(err, &recErr):
		return "handshake: " + msg
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return noConnection + msg
	case strings.Contains(msg, "tls:") || strings.Contains(msg, "handshake") || strings.Contains(msg, "certificate"):
		return "handshake: " + msg
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer: " + msg
	}
	return msg
}

// Passed reports whether every check passed.
func Passed(results []Result) bool {
	for _, r := range results {
		if !r.Pass {
			return false
		}
	}
	return len(results) > 0
}

// Table writes the results as an aligned table and a closing count.
func Table(w io.Writer, results []Result) {
	widths := [3]int{len("CHECK"), len("EXPECT"), len("GOT")}
	for _, r := range results {
		widths[0] = max(widths[0], len(r.Check))
		widths[1] = max(widths[1], len(r.Expect))
		widths[2] = max(widths[2], len(r.Got))
	}
	row := func(a, b, c, d string) {
		fmt.Fprintf(w, "%-*s  %-*s  %-*s  %s\n", widths[0], a, widths[1], b, widths[2], c, d)
	}
	row("CHECK", "EXPECT", "GOT", "RESULT")
	passed := 0
	for _, r := range results {
		verdict := "FAIL"
		if r.Pass {
			verdict = "pass"
			passed++
		}
		row(r.Check, r.Expect, r.Got, verdict)
	}
	fmt.Fprintf(w, "smoke: %d of %d checks passed\n", passed, len(results))
}
