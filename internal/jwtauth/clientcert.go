package jwtauth

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Headers in which the edge forwards the client certificate it verified.
// They are only trustworthy if the edge overwrites any copy sent by the
// client: ALB does for X-Amzn-Mtls-*; Emissary/Envoy does for XFCC with
// forward_client_cert_details SANITIZE_SET.
const (
	headerALBChain = "X-Amzn-Mtls-Clientcert"      // passthrough mode: URL-encoded PEM chain
	headerALBLeaf  = "X-Amzn-Mtls-Clientcert-Leaf" // verify mode: URL-encoded PEM leaf
	headerXFCC     = "X-Forwarded-Client-Cert"
	maxChainCerts  = 8
	maxCertHeader  = 32 << 10
)

var pemLabelFixer = strings.NewReplacer("-----BEGIN+CERTIFICATE-----", "-----BEGIN CERTIFICATE-----",
	"-----END+CERTIFICATE-----", "-----END CERTIFICATE-----")

var (
	errBadCertHeader = errors.New("malformed forwarded client certificate")
	// The edge sends one certificate in one header value. Anything more is
	// a client's copy next to (or instead of) the edge's, and whichever one
	// a parser picks, an attacker chose it.
	errDuplicateCertHeader = errors.New("more than one value of the certificate header")
	errCommaInCertHeader   = errors.New("raw comma in an ALB certificate header")
	errMultipleLeafCerts   = errors.New("more than one certificate in the leaf header")
)

// parsePEMCerts decodes a URL-encoded PEM bundle. PathUnescape, not
// QueryUnescape: ALB leaves '+' (a base64 character) unescaped, and
// QueryUnescape would turn it into a space. Encoders that write the space
// of "BEGIN CERTIFICATE" as '+' are still understood: '+' cannot occur in
// those lines otherwise.
func parsePEMCerts(encoded string) ([]*x509.Certificate, error) {
	if len(encoded) > maxCertHeader {
		return nil, errBadCertHeader
	}
	raw, err := url.PathUnescape(encoded)
	if err != nil {
		return nil, errBadCertHeader
	}
	raw = pemLabelFixer.Replace(raw)
	rest := []byte(raw)
	var certs []*x509.Certificate
	for {
		// pem.Decode skips any text before a block; nothing but whitespace
		// may stand between (or before) the certificates the edge wrote.
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, errBadCertHeader
		}
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil || block.Type != "CERTIFICATE" || len(block.Headers) != 0 || len(certs) == maxChainCerts {
			return nil, errBadCertHeader
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, errBadCertHeader
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errBadCertHeader
	}
	return certs, nil
}

// Extractors return the forwarded chain (leaf first), whether the source
// carried a certificate at all, and an error for a malformed one.

// extractHeader reads a header holding one URL-encoded PEM bundle (the
// ALB headers): exactly one value, without a raw ',' (the ALB's
// URL-encoded PEM never has one; a comma is how two values are joined),
// and, for the leaf header (leafOnly), exactly one certificate.
func extractHeader(name string, leafOnly bool) func(http.Header) ([]*x509.Certificate, bool, error) {
	return func(h http.Header) ([]*x509.Certificate, bool, error) {
		v, found, err := singleValue(h, name)
		if !found || err != nil {
			return nil, found, err
		}
		if strings.IndexByte(v, ',') >= 0 {
			return nil, true, errCommaInCertHeader
		}
		certs, err := parsePEMCerts(v)
		if err == nil && leafOnly && len(certs) != 1 {
			return nil, true, errMultipleLeafCerts
		}
		return certs, true, err
	}
}

// singleValue is the one value of header name; a second value (even an
// empty one) is refused.
func singleValue(h http.Header, name string) (string, bool, error) {
	vals := h[name]
	switch {
	case len(vals) > 1:
		return "", true, errDuplicateCertHeader
	case len(vals) == 0 || vals[0] == "":
		return "", false, nil
	}
	return vals[0], true, nil
}

// extractXFCC reads the last XFCC element: with SANITIZE_SET there is only
// one, and with APPEND_FORWARD the last is the one our edge added (earlier
// ones came from the client side and are not trusted).
func extractXFCC(h http.Header) ([]*x509.Certificate, bool, error) {
	v, found, err := singleValue(h, headerXFCC)
	if !found || err != nil {
		return nil, found, err
	}
	elems, err := parseXFCC(v)
	if err != nil {
		return nil, true, errBadCertHeader
	}
	if len(elems) == 0 {
		return nil, false, nil
	}
	last := elems[len(elems)-1]
	var chain []*x509.Certificate
	if enc, ok := last["chain"]; ok {
		if chain, err = parsePEMCerts(enc); err != nil {
			return nil, true, err
		}
	}
	if enc, ok := last["cert"]; ok {
		leaf, err := parsePEMCerts(enc)
		if err != nil || len(leaf) != 1 {
			return nil, true, errBadCertHeader
		}
		rest := chain
		chain = []*x509.Certificate{leaf[0]}
		for _, c := range rest {
			if !c.Equal(leaf[0]) {
				chain = append(chain, c)
			}
		}
	}
	if len(chain) == 0 { // e.g. only By=/Hash=: no certificate forwarded
		return nil, false, nil
	}
	return chain, true, nil
}

// certMode is one edge's way of forwarding the client certificate: the
// header it sets and how to read it.
type certMode struct {
	header  string
	extract func(http.Header) ([]*x509.Certificate, bool, error)
}

var certModes = map[string]certMode{
	CertHeadersALBPassthrough: {headerALBChain, extractHeader(headerALBChain, false)},
	CertHeadersALBVerify:      {headerALBLeaf, extractHeader(headerALBLeaf, true)},
	CertHeadersXFCC:           {headerXFCC, extractXFCC},
}

// certHeaders is every certificate header of every mode.
var certHeaders = []string{headerALBChain, headerALBLeaf, headerXFCC}

// certModeFor is the mode's reader, under the stack's own header name when
// one is set (alb-* modes only; Validate checks).
func certModeFor(mode, name string) certMode {
	m := certModes[mode]
	if name == "" {
		return m
	}
	name = http.CanonicalHeaderKey(name)
	return certMode{header: name, extract: extractHeader(name, mode == CertHeadersALBVerify)}
}

// ValidCertHeaderName: a renamed certificate header is an HTTP token of 16 to
// 64 letters, digits and dashes, not one of the default names, and only
// in an ALB mode (Envoy's XFCC is sanitised, not renamed).
func ValidCertHeaderName(name, mode string) error {
	if name == "" {
		return nil
	}
	if mode != CertHeadersALBPassthrough && mode != CertHeadersALBVerify {
		return fmt.Errorf("--client-cert-header-name is for the ALB modes (alb-passthrough, alb-verify), not %q", mode)
	}
	ok := len(name) >= 16 && len(name) <= 64
	for _, r := range name {
		ok = ok && (r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}
	for _, d := range certHeaders {
		ok = ok && !strings.EqualFold(name, d)
	}
	if !ok {
		return errors.New("--client-cert-header-name must be 16 to 64 letters, digits and dashes, and not a default certificate header name")
	}
	return nil
}

// certAuth authenticates callers by forwarded client certificate.
type certAuth struct {
	mode    certMode
	roots   *x509.CertPool
	clients *clientDB
	cache   *ttlCache[certResult]
	now     func() time.Time
}

type certResult struct {
	p       *principal
	subject string
}

func loadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--client-ca %s: no PEM certificates found", file)
	}
	return pool, nil
}

// firstExpiry is the earliest NotAfter of the certificates in a PEM bundle.
func firstExpiry(file string) (time.Time, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return time.Time{}, err
	}
	var first time.Time
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return time.Time{}, err
		}
		if first.IsZero() || c.NotAfter.Before(first) {
			first = c.NotAfter
		}
	}
	if first.IsZero() {
		return first, fmt.Errorf("%s: no certificate", file)
	}
	return first, nil
}

// present: the mode's header was sent with a value (or twice, which
// authenticate refuses).
func (c *certAuth) present(h http.Header) bool {
	vals := h[c.mode.header]
	return len(vals) > 1 || (len(vals) == 1 && vals[0] != "")
}

// foreignHeader reports a certificate header the mode's edge never sets:
// the client sent it, hoping we would read it (e.g. X-Amzn-Mtls-Clientcert
// next to the -Leaf the ALB set in verify mode).
func (c *certAuth) foreignHeader(h http.Header) bool {
	for _, name := range certHeaders {
		if name != c.mode.header {
			if _, sent := h[name]; sent {
				return true
			}
		}
	}
	return false
}

// authenticate verifies the forwarded chain against --client-ca for client
// auth at the current time and maps the leaf subject to a --clients entry.
// It returns the subject seen (for the audit log) even when refusing.
func (c *certAuth) authenticate(h http.Header) (*principal, string, string) {
	// Look the raw header values up before parsing anything: parsing and
	// chain verification dominate the cost.
	if c.foreignHeader(h) {
		return nil, "", reasonForeignCertHeader
	}
	vals := h[c.mode.header]
	if len(vals) > 1 { // before the cache: its key is one value
		return nil, "", reasonDuplicateCertHeader
	}
	now := c.now()
	key := cacheKey(h.Get(c.mode.header))
	if r, ok := c.cache.get(key, now); ok {
		return r.p, r.subject, ""
	}
	chain, found, err := c.mode.extract(h)
	switch {
	case err != nil:
		return nil, "", certErrorReason(err)
	case !found:
		return nil, "", reasonMissingCredentials
	}
	leaf := chain[0]
	subject := leaf.Subject.String()
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         c.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return nil, subject, reasonExpiredCert
		}
		return nil, subject, reasonUntrustedCert
	}
	id, pinned := c.clients.lookup(leaf, subject)
	switch {
	case id == nil:
		return nil, subject, reasonClientNotAllowed
	case !pinned: // replaced (revoked) or never issued by our PKI
		return nil, subject, reasonCertNotCurrent
	}
	p := newPrincipal(id, reasonAllowClientCert, subject)
	// Neither the cached result nor a minted token outlives the chain.
	p.notAfter = chains[0][0].NotAfter
	for _, ch := range chains[0] {
		if ch.NotAfter.Before(p.notAfter) {
			p.notAfter = ch.NotAfter
		}
	}
	exp := now.Add(maxCacheLife)
	if p.notAfter.Before(exp) {
		exp = p.notAfter
	}
	c.cache.put(key, certResult{p: p, subject: subject}, exp)
	return p, subject, ""
}

// certErrorReason is the refusal reason of an extractor error.
func certErrorReason(err error) string {
	switch {
	case errors.Is(err, errDuplicateCertHeader):
		return reasonDuplicateCertHeader
	case errors.Is(err, errCommaInCertHeader):
		return reasonCertHeaderComma
	case errors.Is(err, errMultipleLeafCerts):
		return reasonMultipleLeafCerts
	}
	return reasonBadClientCert
}
