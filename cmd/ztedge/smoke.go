package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ztedge/ztedge/internal/smoke"
	"github.com/ztedge/ztedge/stacks"
)

const smokeHelp = `
Runs the acceptance checks against a deployed edge and prints a pass/fail table; the exit status is
0 only when every check passes:

  mtls            TLS 1.3 with a trusted client certificate                         → 2xx
  no-credentials  TLS 1.3, no client certificate, no token                          → 401
  token           TLS 1.3, no client certificate, with a token minted by POST /token
                  (form grant_type=client_certificate, sent over mTLS)              → 2xx
  plain-http      plain HTTP to port 80                                             → refused, no answer or non-2xx
  tls12           a TLS 1.2 handshake                                               → rejected
  foreign-cert    a client certificate from a CA made on the spot                   → rejected (handshake or non-2xx)
  forged-<header> no client certificate, the trusted client's public certificate in
                  <header> (X-Amzn-Mtls-Clientcert, X-Amzn-Mtls-Clientcert-Leaf, each of
                  --cert-headers), on GET and on POST /token                        → non-2xx, no token
  forged-stack-cert-header  the same in the stack's secret certificate header name (with
                  --stack, behind an ALB that forwards client certificates; the name
                  is not printed)                                                   → non-2xx, no token

With --stack, the edge is found from the stack's outputs (the Pulumi CLI reads them): hostname,
caCertificate, clientCertificates (a secret map of client name → PEM certificate and key) and, behind
an ALB that forwards client certificates, clientCertHeaderName (secret; never printed), and
the probed path is the first backend prefix of Pulumi.<stack>.yaml. Without --stack, give
--endpoint, --client-cert and --client-key (and --ca when the edge's certificate is not publicly
trusted). The edge's certificate is verified against the system roots plus the stack's CA.`

const smokeExamples = `  ztedge smoke --stack dev
  ztedge smoke --stack local --endpoint 127.0.0.1:30443       # a kind/k3d NodePort; hostname from the outputs
  ztedge smoke --endpoint edge.example.com:443 --ca ca.pem --client-cert web-app.pem --client-key web-app.key --path /api/orders/`

func runSmoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("smoke", smokeHelp, smokeExamples, stderr)
	stack := fs.String("stack", "", "read the edge's hostname, CA and client certificates from this stack's outputs")
	dir := fs.String("dir", "", "project directory with Pulumi.yaml (default: found upward from the working directory)")
	endpoint := fs.String("endpoint", "", "host:port to connect to (default: <hostname output>:443)")
	serverName := fs.String("server-name", "", "the edge's hostname for TLS and Host (default: the hostname output, or the endpoint's host)")
	httpEndpoint := fs.String("http-endpoint", "", "host:port probed with plain HTTP (default: the endpoint's host, port 80)")
	caFile := fs.String("ca", "", "PEM file of the CA that signed the edge's server certificate (added to the system roots)")
	certFile := fs.String("client-cert", "", "PEM file of a trusted client's certificate (or certificate and key)")
	keyFile := fs.String("client-key", "", "PEM file of that client's private key")
	client := fs.String("client", "", "with --stack: which entry of clientCertificates to use (default: the first by name)")
	path := fs.String("path", "", "protected path to probe (default: the stack's first backend prefix, else /)")
	tokenPath := fs.String("token-path", "/token", "token endpoint")
	timeout := fs.Duration("timeout", 10*time.Second, "time limit of each check")
	certHeaders := fs.String("cert-headers", "", "comma-separated certificate header names to forge besides the ALB's defaults (X-Amzn-Mtls-Clientcert, X-Amzn-Mtls-Clientcert-Leaf), e.g. the stack's secret ones")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *stack == "" && (*endpoint == "" || *certFile == "") {
		return usageError{errors.New("give --stack, or --endpoint with --client-cert and --client-key")}
	}

	t := smoke.Target{Address: *endpoint, ServerName: *serverName, HTTPAddress: *httpEndpoint, Path: *path, TokenPath: *tokenPath, Timeout: *timeout}
	t.CertHeaders = slices.Clone(smoke.DefaultCertHeaders)
	for h := range strings.SplitSeq(*certHeaders, ",") {
		if h = strings.TrimSpace(h); h != "" {
			t.CertHeaders = append(t.CertHeaders, h)
		}
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	t.Roots = roots
	if *stack != "" {
		root, err := projectDir(*dir)
		if err != nil {
			return usageError{err}
		}
		out, err := stacks.Outputs(ctx, *stack, stacks.AutoOptions{Dir: root})
		if err != nil {
			return classify(err)
		}
		plain := map[string]any{}
		for k, v := range out {
			plain[k] = v.Value
		}
		if err := targetFromOutputs(&t, plain, *client); err != nil {
			return fmt.Errorf("stack %s: %w", *stack, err)
		}
		if t.Path == "" {
			t.Path = firstBackendPrefix(root, *stack)
		}
	}
	if *caFile != "" {
		pemBytes, err := os.ReadFile(*caFile)
		if err != nil {
			return usageError{err}
		}
		if !t.Roots.AppendCertsFromPEM(pemBytes) {
			return usageError{fmt.Errorf("--ca %s: no PEM certificate in it", *caFile)}
		}
	}
	if *certFile != "" {
		kf := *keyFile
		if kf == "" {
			kf = *certFile // a bundle with both
		}
		cert, err := tls.LoadX509KeyPair(*certFile, kf)
		if err != nil {
			return usageError{fmt.Errorf("client certificate: %w", err)}
		}
		t.Client = cert
	}

	fmt.Fprintf(stdout, "smoke checks against %s (%s), path %s\n\n", t.Address, orDefault(t.ServerName, "its host"), orDefault(t.Path, "/"))
	results, err := smoke.Run(ctx, t)
	if err != nil {
		return usageError{err}
	}
	smoke.Table(stdout, results)
	if !smoke.Passed(results) {
		return errors.New("some checks failed")
	}
	return nil
}

// targetFromOutputs fills what the flags left empty from the stack outputs hostname,
// caCertificate and clientCertificates.
func targetFromOutputs(t *smoke.Target, out map[string]any, client string) error {
	hostname, _ := out["hostname"].(string)
	if t.ServerName == "" {
		t.ServerName = hostname
	}
	if t.Address == "" {
		if hostname == "" {
			return errors.New("no hostname output: pass --endpoint")
		}
		t.Address = net.JoinHostPort(hostname, "443")
	}
	if ca, ok := out["caCertificate"].(string); ok && ca != "" {
		if !t.Roots.AppendCertsFromPEM([]byte(ca)) {
			return errors.New("the caCertificate output holds no PEM certificate")
		}
	}
	bundles, _ := out["clientCertificates"].(map[string]any)
	if len(bundles) == 0 {
		return errors.New("no clientCertificates output (name → PEM certificate and key): pass --client-cert and --client-key")
	}
	names := make([]string, 0, len(bundles))
	for n := range bundles {
		names = append(names, n)
	}
	sort.Strings(names)
	if client == "" {
		client = names[0]
	}
	bundle, ok := bundles[client].(string)
	if !ok {
		return fmt.Errorf("no client %q in clientCertificates (have %v)", client, names)
	}
	cert, err := tls.X509KeyPair([]byte(bundle), []byte(bundle))
	if err != nil {
		return fmt.Errorf("clientCertificates[%s]: %w", client, err)
	}
	t.Client = cert
	// The header the stack's ALB sends the certificate in: a client that forges it must be refused
	// too (its check is labelled without the name, which is secret).
	t.SecretCertHeader, _ = out["clientCertHeaderName"].(string)
	return nil
}

// firstBackendPrefix is the path of the stack's first backend (a protected route), or "" when the
// stack file has none or cannot be read (the checks then probe /).
func firstBackendPrefix(root, stack string) string {
	src, err := stacks.ReadStackFile(root, stack)
	if err != nil {
		return ""
	}
	cfg, err := stacks.Load(src, stack)
	if err != nil || len(cfg.Edge.Backends) == 0 {
		return ""
	}
	return cfg.Edge.Backends[0].Prefix
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
