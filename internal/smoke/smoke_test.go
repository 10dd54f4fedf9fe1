package smoke_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/internal/smoke"
	"github.com/ztedge/ztedge/internal/smoke/smoketest"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func start(t *testing.T, b smoketest.Behaviour) smoke.Target { return smoketest.Start(t, b).Target }

func runChecks(t *testing.T, target smoke.Target) map[string]smoke.Result {
	t.Helper()
	results, err := smoke.Run(context.Background(), target)
	must(t, err)
	byName := map[string]smoke.Result{}
	for _, r := range results {
		byName[r.Check] = r
	}
	if len(byName) != 8 {
		t.Fatalf("want 8 checks, got %+v", results)
	}
	return byName
}

func TestGoodEdgePassesEveryCheck(t *testing.T) {
	results := runChecks(t, start(t, smoketest.Good))
	for name, r := range results {
		if !r.Pass {
			t.Errorf("%s: expected %s, got %s", name, r.Expect, r.Got)
		}
	}
	if got := results["no-credentials"].Got; !strings.HasPrefix(got, "401") {
		t.Errorf("no-credentials: got %q", got)
	}
}

// Each wrong edge must fail exactly the checks that are about its fault, and pass the others (an
// edge serving without credentials also serves forged certificate headers).
func TestWrongEdgesFailTheirCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edge  smoketest.Behaviour
		fails []string
	}{
		{"accepts TLS 1.2", smoketest.Behaviour{MinTLS: tls.VersionTLS12, VerifyClientCerts: true, RequireAuth: true}, []string{"tls12"}},
		{"accepts any client certificate", smoketest.Behaviour{MinTLS: tls.VersionTLS13, RequireAuth: true}, []string{"foreign-cert"}},
		{"serves plain HTTP", smoketest.Behaviour{MinTLS: tls.VersionTLS13, VerifyClientCerts: true, RequireAuth: true, ServeHTTP: true}, []string{"plain-http"}},
		{"serves without credentials", smoketest.Behaviour{MinTLS: tls.VersionTLS13, VerifyClientCerts: true}, []string{"no-credentials", "forged-x-amzn-mtls-clientcert", "forged-x-amzn-mtls-clientcert-leaf"}},
		{"believes a client's certificate header", smoketest.Behaviour{MinTLS: tls.VersionTLS13, VerifyClientCerts: true, RequireAuth: true, TrustsCertHeader: true}, []string{"forged-x-amzn-mtls-clientcert-leaf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := runChecks(t, start(t, tc.edge))
			for name, r := range results {
				if want := !slices.Contains(tc.fails, name); r.Pass != want {
					t.Errorf("%s: pass=%v, want %v (got %s)", name, r.Pass, want, r.Got)
				}
			}
		})
	}
}

// The stack's secret certificate header is forged under a label without the name: an edge that
// believes it fails that check, and the printed table never holds the name.
func TestSecretCertHeaderIsForgedWithoutShowingIt(t *testing.T) {
	const secret = "X-Ztedge-0123456789abcdef01234567"
	for _, believes := range []bool{false, true} {
		edge := smoketest.Good
		if believes {
			edge.TrustsHeader = secret
		}
		target := start(t, edge)
		target.SecretCertHeader = secret
		results, err := smoke.Run(context.Background(), target)
		must(t, err)
		var table strings.Builder
		smoke.Table(&table, results)
		if strings.Contains(strings.ToLower(table.String()), strings.ToLower(secret)) {
			t.Errorf("the table shows the secret header name:\n%s", table.String())
		}
		for _, r := range results {
			if r.Check == "forged-stack-cert-header" && r.Pass == believes {
				t.Errorf("edge believing it %v: forged-stack-cert-header pass=%v (%s)", believes, r.Pass, r.Got)
			}
		}
		if !strings.Contains(table.String(), "forged-stack-cert-header") {
			t.Errorf("no forged-stack-cert-header check:\n%s", table.String())
		}
	}
}

// A trusted client whose certificate the edge does not know fails the checks that need it.
func TestUntrustedClientFailsMTLSAndToken(t *testing.T) {
	target := start(t, smoketest.Good)
	other, err := smoke.ForeignClient()
	must(t, err)
	target.Client = other
	results := runChecks(t, target)
	for _, name := range []string{"mtls", "token"} {
		if results[name].Pass {
			t.Errorf("%s passed with a certificate the edge does not trust", name)
		}
	}
}

// Nothing listening proves nothing: the checks that expect a rejection must not pass on a refusal
// of the TLS port.
func TestUnreachableEdgeFails(t *testing.T) {
	target := start(t, smoketest.Good)
	target.Address = smoketest.ClosedPort(t)
	results, err := smoke.Run(context.Background(), target)
	must(t, err)
	if smoke.Passed(results) {
		t.Fatal("an unreachable edge passed")
	}
	for _, r := range results {
		if r.Pass && r.Check != "plain-http" && r.Check != "no-credentials" {
			t.Errorf("%s passed against a closed port: %s", r.Check, r.Got)
		}
		if r.Check == "no-credentials" && r.Pass {
			t.Errorf("no-credentials passed without a 401")
		}
	}
}

func TestTargetNeedsAClientAndAnEndpoint(t *testing.T) {
	if _, err := smoke.Run(context.Background(), smoke.Target{Address: "edge.example.com"}); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Errorf("missing port: %v", err)
	}
	if _, err := smoke.Run(context.Background(), smoke.Target{Address: "edge.example.com:443"}); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("missing client: %v", err)
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	smoke.Table(&b, []smoke.Result{{"mtls", "2xx", "200 OK", true}, {"tls12", "handshake rejected", "TLS 1.2 handshake succeeded", false}})
	want := "CHECK  EXPECT              GOT                          RESULT\n" +
		"mtls   2xx                 200 OK                       pass\n" +
		"tls12  handshake rejected  TLS 1.2 handshake succeeded  FAIL\n" +
		"smoke: 1 of 2 checks passed\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	if smoke.Passed(nil) {
		t.Error("no results must not count as passing")
	}
}
