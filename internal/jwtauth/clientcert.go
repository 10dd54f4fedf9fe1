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

var errBadCertHeader = errors.New("malformed forwarded client certificate")

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
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" || len(certs) == maxChainCerts {
			return nil, errBadCertHeader
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, errBadCertHeader
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errBadCertHeader
	}
	return certs, nil
}

// Extractors return the forwarded chain (leaf first), whether the source
// carried a certificate at all, and an error for a malformed one.

// extractHeader reads a header holding one URL-encoded PEM bundle (the
// ALB headers).
func extractHeader(name string) func(http.Header) ([]*x509.Certificate, bool, error) {
	return func(h http.Header) ([]*x509.Certificate, bool, error) {
		v := h.Get(name)
		if v == "" {
			return nil, false, nil
		}
		certs, err := parsePEMCerts(v)
		return certs, true, err
	}
}

// extractXFCC reads the last XFCC element: with SANITIZE_SET there is only
// one, and with APPEND_FORWARD the last is the one our edge added (earlier
// ones came from the client side and are not trusted).
func extractXFCC(h http.Header) ([]*x509.Certificate, bool, error) {
	vals := h.Values(headerXFCC)
	if len(vals) == 0 {
		return nil, false, nil
	}
	v := strings.Join(vals, ",")
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
	CertHeadersALBPassthrough: {headerALBChain, extractHeader(headerALBChain)},
	CertHeadersALBVerify:      {headerALBLeaf, extractHeader(headerALBLeaf)},
	CertHeadersXFCC:           {headerXFCC, extractXFCC},
}

// certHeaders is every certificate header of every mode.
var certHeaders = []string{headerALBChain, headerALBLeaf, headerXFCC}

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

func (c *certAuth) present(h http.Header) bool { return h.Get(c.mode.header) != "" }

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
	now := c.now()
	key := cacheKey(strings.Join(h.Values(c.mode.header), ","))
	if r, ok := c.cache.get(key, now); ok {
		return r.p, r.subject, ""
	}
	chain, found, err := c.mode.extract(h)
	switch {
	case err != nil:
		return nil, "", reasonBadClientCert
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
	// Reuse the result no longer than the verified chain stays valid.
	exp := now.Add(maxCacheLife)
	for _, ch := range chains[0] {
		if ch.NotAfter.Before(exp) {
			exp = ch.NotAfter
		}
	}
	c.cache.put(key, certResult{p: p, subject: subject}, exp)
	return p, subject, ""
}
