package jwtauth

import (
	"crypto/x509"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/; the seeds added here
// are the ones that need this run's random keys (a valid token, a
// certificate from this run's CA).

var knownReasons = slices.Concat(allowReasons, denyReasons)

// FuzzCheckToken drives the whole ext_authz decision with an arbitrary
// Authorization header, path and Origin. Whatever the input, only a
// token we signed may pass, and only inside its services and origins.
func FuzzCheckToken(f *testing.F) {
	e := newEnv(f, func(c *Config) { c.ClientsFile, c.ClientCAFile = "", "" })
	valid := sign(f, e.keys["2024-01"], "2024-01", e.claims())
	f.Add("Bearer "+valid, "/api/orders/1", testOrigin)
	f.Add("Bearer "+valid, "/api/orders/../x", "")
	f.Add("bearer "+valid+" ", "/api/orders%2fx", "https://evil.test")
	f.Add("Bearer "+valid[:len(valid)-2], "/api/orders", "")
	f.Add("Bearer "+algNone(e.claims()), "/api/orders", "")
	f.Fuzz(func(t *testing.T, authz, path, origin string) {
		u, err := url.ParseRequestURI("/auth" + path)
		if err != nil {
			return
		}
		r := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}
		r.Header.Set("Authorization", authz)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		d := e.srv.decide(r)
		if !slices.Contains(knownReasons, d.reason) {
			t.Fatalf("unknown reason %q", d.reason)
		}
		switch d.status {
		case http.StatusOK:
			if d.p == nil || d.p.id != "alice" || !underService(d.path, []string{"/api/orders"}) {
				t.Fatalf("allowed %+v for path %q", d.p, d.path)
			}
			if origin != "" && !strings.EqualFold(origin, testOrigin) {
				t.Fatalf("allowed origin %q", origin)
			}
			for _, seg := range strings.Split(u.Path, "/") {
				if seg == "." || seg == ".." {
					t.Fatalf("allowed dot-segment path %q", u.Path)
				}
			}
		case http.StatusUnauthorized, http.StatusForbidden:
		default:
			t.Fatalf("status %d", d.status)
		}
	})
}

// FuzzParseToken checks the verifier alone against mutated tokens: a
// token that passes must carry exactly the claims that were signed.
func FuzzParseToken(f *testing.F) {
	e := newEnv(f, nil)
	c := e.claims()
	c["exp"] = time.Now().Add(time.Hour).Unix()
	valid := sign(f, e.keys["2024-01"], "2024-01", c)
	f.Add(valid)
	parts := strings.Split(valid, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Fuzz(func(t *testing.T, tok string) {
		p, reason := e.srv.verifier.verify(tok)
		if p == nil {
			if !slices.Contains(denyReasons, reason) {
				t.Fatalf("unknown reason %q", reason)
			}
			return
		}
		if p.id != "alice" || p.permHeader != "orders:read" || !reflect.DeepEqual(p.services, []string{"/api/orders"}) {
			t.Fatalf("forged principal %+v from %q", p, tok)
		}
		if tok != valid {
			// Strict base64 decoding leaves no second spelling of the same
			// header and payload; only ECDSA's (r, n-s) twin could pass.
			tp := strings.Split(tok, ".")
			if len(tp) != 3 || tp[0] != parts[0] || tp[1] != parts[1] {
				t.Fatalf("different header/payload accepted: %q", tok)
			}
		}
	})
}

// FuzzParseXFCC: the parser never panics, and what it returns survives a
// format/parse round trip.
func FuzzParseXFCC(f *testing.F) {
	f.Add(`By=spiffe://a;Hash=h;Subject="CN=x,O=A\, Inc.";Cert="-----BEGIN%20CERTIFICATE-----%0A"`)
	f.Add(`a=b,c="d;e",f="g\"h"`)
	f.Fuzz(func(t *testing.T, h string) {
		elems, err := parseXFCC(h)
		if err != nil {
			return
		}
		if len(elems) > maxXFCCElements {
			t.Fatalf("%d elements", len(elems))
		}
		for _, el := range elems {
			for k := range el {
				if k == "" || k != strings.ToLower(k) {
					t.Fatalf("bad key %q", k)
				}
			}
		}
		again, err := parseXFCC(formatXFCC(elems))
		if err != nil || !reflect.DeepEqual(again, elems) {
			t.Fatalf("round trip of %q: %v, %v != %v", h, err, again, elems)
		}
	})
}

// FuzzForwardedCert feeds arbitrary ALB and XFCC header values to the
// client-certificate path: no panic, a known reason, and no identity
// unless a certificate from our CA for a configured subject was sent.
func FuzzForwardedCert(f *testing.F) {
	e := newEnv(f, nil)
	good := e.ca.issue(f, "payments", time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	f.Add(albEncode(certPEM(good)), "")
	f.Add("", xfccCert(good))
	f.Add(albEncode(certPEM(good, e.ca.cert)), "")
	f.Add(url.QueryEscape(certPEM(good)), "")
	f.Add("", `Hash=x;Cert="`+url.QueryEscape(certPEM(good))+`";Chain="`+url.QueryEscape(certPEM(good, e.ca.cert))+`"`)
	// The ALB value goes in the passthrough header: each mode sees it and
	// XFCC, one of them foreign.
	var modes []*certAuth
	for _, m := range []string{CertHeadersALBPassthrough, CertHeadersXFCC} {
		c := *e.srv.certs
		c.mode, c.cache = certModes[m], newTTLCache[certResult](100)
		modes = append(modes, &c)
	}
	f.Fuzz(func(t *testing.T, alb, xfcc string) {
		h := http.Header{}
		if alb != "" {
			h.Set(headerALBChain, alb)
		}
		if xfcc != "" {
			h.Set(headerXFCC, xfcc)
		}
		for _, mode := range modes {
			p, _, reason := mode.authenticate(h)
			if p == nil {
				if !slices.Contains(denyReasons, reason) {
					t.Fatalf("unknown reason %q", reason)
				}
				continue
			}
			if p.id != "payments" || p.certSubject != good.Subject.String() {
				t.Fatalf("identity %+v", p)
			}
			if alb != "" && xfcc != "" {
				t.Fatalf("%s mode accepted a request with both headers", mode.mode.header)
			}
		}
	})
}

// FuzzOriginalPath: whatever path jwt-auth accepts, an upstream that
// resolves it its own way (servlet ";" parameters, one or two more rounds
// of percent-decoding) finds no dot-segment to resolve and no hidden
// slash, so it serves the same path jwt-auth authorised. The model is
// path.Clean, independent of originalPath's own rules.
func FuzzOriginalPath(f *testing.F) {
	for _, s := range []string{"/api/a/..;/b/items", "/api/a/%2e%2e;/b", "/api/a/%252e%252e/b", "/api/a;x/b", "/a//b/", "/a/%252f/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI("/auth" + raw)
		if err != nil {
			return
		}
		p, ok := originalPath(&http.Request{URL: u})
		if !ok {
			return
		}
		if path.Clean(p) != p {
			t.Fatalf("accepted %q as unclean %q", raw, p)
		}
		servlet := func(s string) string {
			segs := strings.Split(s, "/")
			for i, seg := range segs {
				segs[i], _, _ = strings.Cut(seg, ";")
			}
			return strings.Join(segs, "/")
		}
		view := u.Path // what reached the upstream, decoded once
		for round := range 3 {
			for _, v := range []string{view, servlet(view)} {
				if resolved := path.Clean(v); resolved != mergeSlashes(v) {
					t.Fatalf("accepted %q (%q); after %d more decodes an upstream sees %q and resolves it to %q", raw, p, round, v, resolved)
				}
			}
			if view, err = url.PathUnescape(view); err != nil {
				return
			}
		}
	})
}

// mergeSlashes is path.Clean without resolving dot-segments.
func mergeSlashes(p string) string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}
