package jwtauth

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"
)

// Reasons for 403s and allows (metric labels).
const (
	reasonBadPath           = "bad_path"
	reasonPathNotAllowed    = "path_not_allowed"
	reasonOriginNotAllowed  = "origin_not_allowed"
	reasonBadClientCert     = "bad_client_cert"
	reasonUntrustedCert     = "untrusted_client_cert"
	reasonExpiredCert       = "expired_client_cert"
	reasonClientNotAllowed  = "client_not_allowed"
	reasonForeignCertHeader = "foreign_client_cert_header"
	reasonCertNotCurrent    = "client_cert_not_current"
	// One certificate, from one header value, once (clientcert.go).
	reasonDuplicateCertHeader = "duplicate_client_cert_header"
	reasonCertHeaderComma     = "client_cert_header_comma"
	reasonMultipleLeafCerts   = "multiple_leaf_certs"
	reasonOverloaded          = "overloaded" // /token 503: no request slot in time (limits.go)
	reasonAllowToken          = "token"
	reasonAllowClientCert     = "client_cert"
	checkPrefix               = "/auth"
	wwwAuthenticateInvalid    = `Bearer error="invalid_token"`
	wwwAuthenticateRequired   = `Bearer`
)

// originalPath recovers the path the client asked Emissary for from the
// ext_authz request path (/auth/<original path>). It refuses rather than
// normalises anything an upstream could resolve differently from us, which
// is how path-prefix checks get bypassed: dot-segments in any spelling
// (see dotSegment), encoded slashes and backslashes, NUL. Envoy
// (normalize_path, merge_slashes, escaped slashes rejected) has already
// resolved plain dot-segments and merged slashes, so what is refused here
// is what Envoy left for the upstream to interpret. Duplicate slashes and
// a trailing slash are cleaned, as merge_slashes does.
func originalPath(r *http.Request) (string, bool) {
	p := strings.TrimPrefix(r.URL.Path, checkPrefix)
	if p == "" {
		return "/", true
	}
	if p[0] != '/' || strings.ContainsAny(p, "\\\x00") || !utf8.ValidString(p) {
		return "", false
	}
	if raw := r.URL.RawPath; raw != "" {
		lower := strings.ToLower(raw)
		if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
			return "", false
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		if dotSegment(seg) {
			return "", false
		}
	}
	return path.Clean(p), true
}

// maxDecodes bounds how many layers of percent-encoding a segment is
// unwrapped: an upstream decoding twice is plausible, and a segment still
// encoded after that is refused anyway.
const maxDecodes = 3

// dotSegment reports a segment (already percent-decoded once, by Go) that
// some upstream could take for "." or "..", or that hides a slash: servlet
// containers drop ";" path parameters ("..;" is ".."), and a server that
// decodes again turns %2e%2e (sent as %252e%252e) into "..", and %252f
// into a slash. A segment that is still encoded after maxDecodes rounds,
// or holds a '%' that is not an escape (a lenient decoder might decode
// around it), or is not valid UTF-8 after a round (overlong "%c0%ae" is a
// dot to some decoders), is refused too.
func dotSegment(seg string) bool {
	for range maxDecodes + 1 {
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		if seg == "." || seg == ".." || strings.ContainsAny(seg, "/\\\x00") {
			return true
		}
		if strings.IndexByte(seg, '%') < 0 {
			return false
		}
		dec, err := url.PathUnescape(seg)
		// Invalid UTF-8 after decoding: an overlong form such as %c0%ae
		// is "." to a lenient decoder.
		if err != nil || !utf8.ValidString(dec) {
			return true
		}
		seg = dec
	}
	return true
}

// underService reports whether p lies under one of the prefixes, on a
// path-segment boundary: "/api" admits "/api" and "/api/x", not "/apix".
func underService(p string, services []string) bool {
	for _, s := range services {
		if s == "" || s[0] != '/' { // never "everything"
			continue
		}
		if s != "/" {
			s = strings.TrimSuffix(s, "/")
		}
		if s == "/" || p == s || (strings.HasPrefix(p, s) && p[len(s)] == '/') {
			return true
		}
	}
	return false
}

// originAllowed: no Origin header is fine (not a browser cross-origin
// call); otherwise it must be listed (scheme and host compare
// case-insensitively, as browsers send them lower-case anyway).
func originAllowed(origin string, origins []string) bool {
	if origin == "" {
		return true
	}
	for _, o := range origins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// bearerToken extracts the token from "Bearer <token>" (scheme
// case-insensitive). ok is false when the header is another scheme.
func bearerToken(h string) (tok string, ok bool) {
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}

// decision is the outcome of one check, for the response, log and metrics.
type decision struct {
	status  int
	reason  string
	p       *principal
	path    string
	subject string // client-cert subject seen, even if refused
}

// decide runs the ext_authz check. A Bearer token, when present, decides
// authentication alone; otherwise a forwarded client certificate may.
func (s *Server) decide(r *http.Request) decision {
	d := decision{}
	var reason string
	if s.certs != nil && s.certs.foreignHeader(r.Header) {
		// Whatever else it carries, a request with a certificate header
		// our edge never sets is forged.
		return decision{status: http.StatusUnauthorized, reason: reasonForeignCertHeader}
	}
	authz := r.Header.Get("Authorization")
	if tok, isBearer := bearerToken(authz); isBearer {
		if tok == "" {
			return decision{status: http.StatusUnauthorized, reason: reasonBadAuthorization}
		}
		d.p, reason = s.verifier.verify(tok)
	} else if s.certs != nil && s.certs.present(r.Header) {
		d.p, d.subject, reason = s.certs.authenticate(r.Header)
	} else {
		reason = reasonMissingCredentials
	}
	if d.p == nil {
		d.status, d.reason = http.StatusUnauthorized, reason
		if reason == reasonClientNotAllowed {
			d.status = http.StatusForbidden
		}
		return d
	}
	p, ok := originalPath(r)
	d.path = p
	switch {
	case !ok:
		d.status, d.reason = http.StatusForbidden, reasonBadPath
	case !underService(p, d.p.services):
		d.status, d.reason = http.StatusForbidden, reasonPathNotAllowed
	case !originAllowed(r.Header.Get("Origin"), d.p.origins):
		d.status, d.reason = http.StatusForbidden, reasonOriginNotAllowed
	default:
		d.status, d.reason = http.StatusOK, d.p.via
	}
	return d
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	d := s.decide(r)
	h := w.Header()
	switch d.status {
	case http.StatusOK:
		h["X-User-Id"] = []string{d.p.id}
		h["X-User-Permissions"] = []string{d.p.permHeader}
		w.WriteHeader(http.StatusOK)
	case http.StatusUnauthorized:
		if d.reason == reasonMissingCredentials {
			h.Set("WWW-Authenticate", wwwAuthenticateRequired)
		} else {
			h.Set("WWW-Authenticate", wwwAuthenticateInvalid)
		}
		writeJSONError(w, d.status, "unauthorized", "reason", d.reason)
	default:
		writeJSONError(w, d.status, "forbidden", "reason", d.reason)
	}
	s.metrics.decision(d.status == http.StatusOK, d.reason)
	s.metrics.observe(endpointCheck, s.cfg.Now().Sub(start))
	s.auditCheck(r, &d)
}
