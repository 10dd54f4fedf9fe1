// Package smoketest stands up test edges on 127.0.0.1 that behave as the design asks, or wrong in
// one chosen way, so the smoke checks (and the CLI around them) can be shown to pass and to fail.
package smoketest

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ztedge/ztedge/internal/smoke"
)

// Behaviour is how a test edge behaves; the zero value is wrong in every way, Good is the design.
type Behaviour struct {
	MinTLS            uint16 // lowest TLS version accepted
	VerifyClientCerts bool   // client certificates must chain to the edge's CA
	RequireAuth       bool   // no certificate and no token → 401
	ServeHTTP         bool   // answer plain HTTP with 200
	// TrustsCertHeader believes a client certificate sent in the ALB's leaf header (what an edge
	// passing a client's own copy through looks like).
	TrustsCertHeader bool
	// TrustsHeader, if set, is a header the edge believes a client certificate from the same way
	// (a stack's secret name, forged).
	TrustsHeader string
}

// believesHeader: the request carries a certificate header this edge (wrongly) believes.
func (b Behaviour) believesHeader(r *http.Request) bool {
	return b.TrustsCertHeader && r.Header.Get(smoke.DefaultCertHeaders[1]) != "" || b.TrustsHeader != "" && r.Header.Get(b.TrustsHeader) != ""
}

// Good is the edge of the design: TLS 1.3 only, client certificates verified, auth required, no HTTP.
var Good = Behaviour{MinTLS: tls.VersionTLS13, VerifyClientCerts: true, RequireAuth: true}

// ServerName is the test edge's hostname (its certificate's name).
const ServerName = "edge.ztedge.test"

// Path is the protected route the test edge serves.
const Path = "/api/orders/"

// Edge is a running test edge.
type Edge struct {
	// Target points the smoke checks at the edge, with a trusted client.
	Target smoke.Target
	// PEM encodings of the CA and the trusted client, as an operator would have them in files.
	CAPEM, ClientCertPEM, ClientKeyPEM []byte
}

// Start runs an edge with behaviour b on loopback until the test ends.
func Start(t testing.TB, b Behaviour) *Edge {
	t.Helper()
	ca, err := smoke.NewCA("ztedge test CA")
	must(t, err)
	serverCert, err := ca.Issue(ServerName, true, ServerName)
	must(t, err)
	client, err := ca.Issue("web-app", false)
	must(t, err)

	cfg := &tls.Config{MinVersion: b.MinTLS, Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequestClientCert}
	if b.VerifyClientCerts {
		cfg.ClientAuth, cfg.ClientCAs = tls.VerifyClientCertIfGiven, ca.Pool()
	}
	const token = "minted-token"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("grant_type") != "client_certificate" || len(r.TLS.PeerCertificates) == 0 && !b.believesHeader(r) {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": token, "token_type": "Bearer"})
	})
	mux.HandleFunc("GET "+Path, func(w http.ResponseWriter, r *http.Request) {
		authed := len(r.TLS.PeerCertificates) > 0 || r.Header.Get("Authorization") == "Bearer "+token || b.believesHeader(r)
		if b.RequireAuth && !authed {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "orders")
	})
	tlsAddr := serve(t, tls.NewListener(listen(t), cfg), mux)

	httpAddr := ClosedPort(t)
	if b.ServeHTTP {
		httpAddr = serve(t, listen(t), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "plain") }))
	}
	keyDER, err := x509.MarshalECPrivateKey(client.PrivateKey.(*ecdsa.PrivateKey))
	must(t, err)
	return &Edge{
		Target: smoke.Target{
			Address: tlsAddr, ServerName: ServerName, HTTPAddress: httpAddr, Roots: ca.Pool(), Client: client,
			Path: Path, Timeout: 5 * time.Second,
		},
		CAPEM:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}),
		ClientCertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: client.Certificate[0]}),
		ClientKeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}

func listen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	return ln
}

func serve(t testing.TB, ln net.Listener, h http.Handler) string {
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// ClosedPort is a loopback address where nothing listens (connections are refused).
func ClosedPort(t testing.TB) string {
	ln := listen(t)
	addr := ln.Addr().String()
	must(t, ln.Close())
	return addr
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
