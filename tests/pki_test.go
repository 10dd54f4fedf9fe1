package tests

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/mockengine"
)

const (
	typePrivateKey     = "tls:index/privateKey:PrivateKey"
	typeSelfSigned     = "tls:index/selfSignedCert:SelfSignedCert"
	typeCertReq        = "tls:index/certRequest:CertRequest"
	typeSigned         = "tls:index/locallySignedCert:LocallySignedCert"
	typeSecret         = "kubernetes:core/v1:Secret"
	typeNamespace      = "kubernetes:core/v1:Namespace"
	typeNamespacePatch = "kubernetes:core/v1:NamespacePatch"
)

// pkiIssued is what each stack file's PKI issues besides the CA: Ambassador's server certificate,
// the upstream client certificate, one per backend and one per trusted client.
var pkiIssued = map[string][]string{
	"dev":  {"pki-backend-orders", "pki-client-web-app", "pki-server", "pki-upstream"},
	"prod": {"pki-backend-orders", "pki-backend-payments", "pki-client-billing-batch", "pki-client-web-app", "pki-server", "pki-upstream"},
}

// pkiCAs are the PKI's three CAs, one per purpose: servers (edge), trusted clients, Ambassador's
// upstream identity.
var pkiCAs = []string{"pki-ca", "pki-client-ca", "pki-upstream-ca"}

// issuerOf is the CA each issued certificate must come from.
func issuerOf(name string) string {
	switch {
	case name == "pki-upstream":
		return "pki-upstream-ca"
	case strings.HasPrefix(name, "pki-client-"):
		return "pki-client-ca"
	default: // the server and the backends' server certificates
		return "pki-ca"
	}
}

func names(rs []*mockengine.Resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	sort.Strings(out)
	return out
}

// secretNamed returns the Kubernetes Secret with that metadata.name and namespace.
func (g *graph) secretNamed(namespace, name string) *mockengine.Resource {
	g.t.Helper()
	for _, s := range g.ofType(typeSecret) {
		if input(s, "metadata", "name") == name && input(s, "metadata", "namespace") == namespace {
			return s
		}
	}
	g.t.Fatalf("no Secret %s/%s", namespace, name)
	return nil
}

func output(r *mockengine.Resource, key string) string {
	return str(r.Outputs.MapRepl(nil, unwrapSecret)[key])
}

// plain is input with secret values unwrapped (Mappable keeps them wrapped).
// plain is input: secrets unwrapped.
func plain(r *mockengine.Resource, path ...string) any { return input(r, path...) }

func TestPkiInventory(t *testing.T) {
	for _, stack := range stackFiles {
		t.Run(stack, func(t *testing.T) {
			g := mustRun(t, stack)
			issued := pkiIssued[stack]
			// The PKI's keys (jwt-auth's signing key is the auth layer's, tested there).
			var pkiKeys []*mockengine.Resource
			for _, k := range g.ofType(typePrivateKey) {
				if strings.Contains(k.Parent, "ztedge:pki:Pki") {
					pkiKeys = append(pkiKeys, k)
				}
			}
			if got, want := names(pkiKeys), append(append([]string(nil), pkiCAs...), issued...); !reflect.DeepEqual(got, sorted(want)) {
				t.Errorf("private keys %v, want %v", got, sorted(want))
			}
			if got := names(g.ofType(typeSelfSigned)); !reflect.DeepEqual(got, pkiCAs) {
				t.Errorf("self-signed certificates %v: want the three CAs only", got)
			}
			for _, typ := range []string{typeCertReq, typeSigned} {
				if got := names(g.ofType(typ)); !reflect.DeepEqual(got, issued) {
					t.Errorf("%s: %v, want %v", typ, got, issued)
				}
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func TestPrivateKeysAreEcdsaP256(t *testing.T) {
	for _, stack := range stackFiles {
		g := mustRun(t, stack)
		for _, k := range g.ofType(typePrivateKey) {
			if input(k, "algorithm") != "ECDSA" || input(k, "ecdsaCurve") != "P256" {
				t.Errorf("%s: key %s is %v %v, want ECDSA P256", stack, k.Name, input(k, "algorithm"), input(k, "ecdsaCurve"))
			}
		}
	}
}

func TestCertificateProfiles(t *testing.T) {
	g := mustRun(t, "prod")
	for caName, cn := range map[string]string{"pki-ca": "ztedge prod edge CA", "pki-client-ca": "ztedge prod client CA", "pki-upstream-ca": "ztedge prod upstream CA"} {
		ca := g.one(typeSelfSigned, caName)
		if input(ca, "isCaCertificate") != true || !reflect.DeepEqual(input(ca, "allowedUses"), []any{"cert_signing", "crl_signing", "digital_signature"}) {
			t.Errorf("%s: isCaCertificate %v, uses %v", caName, input(ca, "isCaCertificate"), input(ca, "allowedUses"))
		}
		if input(ca, "subject", "commonName") != cn {
			t.Errorf("%s: CN %v, want %s (purpose-specific names)", caName, input(ca, "subject", "commonName"), cn)
		}
		if plain(ca, "privateKeyPem") != output(g.one(typePrivateKey, caName), "privateKeyPem") {
			t.Errorf("%s is not signed with its own key", caName)
		}
		if input(ca, "validityPeriodHours") != float64(26280) || input(ca, "earlyRenewalHours") != float64(360) {
			t.Errorf("%s validity %v / early renewal %v: want the config defaults 26280 / 360", caName, input(ca, "validityPeriodHours"), input(ca, "earlyRenewalHours"))
		}
	}

	svc := func(s, ns string) []any {
		return []any{s, s + "." + ns, s + "." + ns + ".svc", s + "." + ns + ".svc.cluster.local"}
	}
	want := map[string]struct {
		cn   string
		dns  []any
		uses string
	}{
		"pki-server":               {"edge.example.com", append([]any{"edge.example.com"}, svc("emissary-ingress", "ambassador")...), "server_auth"},
		"pki-upstream":             {"ambassador-upstream", nil, "client_auth"},
		"pki-backend-orders":       {"orders.orders.svc", svc("orders", "orders"), "server_auth"},
		"pki-backend-payments":     {"payments-api.payments.svc", svc("payments-api", "payments"), "server_auth"},
		"pki-client-web-app":       {"web-app", nil, "client_auth"},
		"pki-client-billing-batch": {"billing-batch", nil, "client_auth"},
	}
	for name, w := range want {
		csr := g.one(typeCertReq, name)
		cert := g.one(typeSigned, name)
		if cn := input(csr, "subject", "commonName"); cn != w.cn {
			t.Errorf("%s: CN %v, want %s", name, cn, w.cn)
		}
		if got, _ := input(csr, "dnsNames").([]any); !reflect.DeepEqual(got, w.dns) {
			t.Errorf("%s: DNS names %v, want %v", name, got, w.dns)
		}
		if plain(csr, "privateKeyPem") != output(g.one(typePrivateKey, name), "privateKeyPem") {
			t.Errorf("%s: the request is not for its own key", name)
		}
		if !reflect.DeepEqual(input(cert, "allowedUses"), []any{"digital_signature", w.uses}) {
			t.Errorf("%s: uses %v, want digital_signature and %s only", name, input(cert, "allowedUses"), w.uses)
		}
		issuer := issuerOf(name)
		if input(cert, "caCertPem") != output(g.one(typeSelfSigned, issuer), "certPem") || plain(cert, "caPrivateKeyPem") != output(g.one(typePrivateKey, issuer), "privateKeyPem") ||
			input(cert, "certRequestPem") != output(csr, "certRequestPem") {
			t.Errorf("%s: not signed by %s for its own request", name, issuer)
		}
		if input(cert, "validityPeriodHours") != float64(2160) || input(cert, "earlyRenewalHours") != float64(360) {
			t.Errorf("%s: validity %v / early renewal %v, want 2160 / 360", name, input(cert, "validityPeriodHours"), input(cert, "earlyRenewalHours"))
		}
	}
}

// TestPkiSecrets checks each Secret's name, namespace, type, keys and contents: what the Host,
// TLSContexts and backends read.
func TestPkiSecrets(t *testing.T) {
	g := mustRun(t, "prod")
	caPem := output(g.one(typeSelfSigned, "pki-ca"), "certPem")
	upstreamCAPem := output(g.one(typeSelfSigned, "pki-upstream-ca"), "certPem")
	clientCAPem := output(g.one(typeSelfSigned, "pki-client-ca"), "certPem")
	// ca.crt is what the holder trusts for its peers: Ambassador the edge CA (backends' servers),
	// backends the upstream CA only (Ambassador's client certificate, no trusted client's).
	trusts := map[string]string{"pki-server": caPem, "pki-upstream": caPem, "pki-backend-orders": upstreamCAPem, "pki-backend-payments": upstreamCAPem}
	tlsSecret := func(ns, name, issuedAs string) {
		t.Helper()
		s := g.secretNamed(ns, name)
		want := map[string]any{
			"tls.crt": output(g.one(typeSigned, issuedAs), "certPem"),
			"tls.key": output(g.one(typePrivateKey, issuedAs), "privateKeyPem"),
			"ca.crt":  trusts[issuedAs],
		}
		if input(s, "type") != "kubernetes.io/tls" || !reflect.DeepEqual(plain(s, "stringData"), want) {
			t.Errorf("Secret %s/%s: type %v data %v\nwant kubernetes.io/tls %v", ns, name, input(s, "type"), plain(s, "stringData"), want)
		}
	}
	tlsSecret("ambassador", components.ServerSecretName, "pki-server")
	tlsSecret("ambassador", components.UpstreamSecretName, "pki-upstream")
	tlsSecret("orders", "orders-tls", "pki-backend-orders")
	tlsSecret("payments", "payments-tls", "pki-backend-payments")

	// Emissary reads a ca_secret's tls.crt (irtlscontext.py); kubernetes.io/tls would demand a key.
	ca := g.secretNamed("ambassador", components.CASecretName)
	if input(ca, "type") != "Opaque" || !reflect.DeepEqual(plain(ca, "stringData"), map[string]any{"tls.crt": caPem, "ca.crt": caPem}) {
		t.Errorf("CA Secret: type %v data %v", input(ca, "type"), plain(ca, "stringData"))
	}
	clientCA := g.secretNamed("ambassador", components.ClientCASecretName)
	if input(clientCA, "type") != "Opaque" || !reflect.DeepEqual(plain(clientCA, "stringData"), map[string]any{"tls.crt": clientCAPem, "ca.crt": clientCAPem}) {
		t.Errorf("client CA Secret: type %v data %v", input(clientCA, "type"), plain(clientCA, "stringData"))
	}

	// Each Secret waits for its namespace.
	for _, s := range g.ofType(typeSecret) {
		if !strings.Contains(s.Parent, "ztedge:pki:Pki") {
			continue
		}
		ns := str(input(s, "metadata", "namespace"))
		if !g.dependsOn(s, g.namespace(ns)) {
			t.Errorf("Secret %s does not wait for namespace %s", s.Name, ns)
		}
	}
}

// TestPrivateKeysStaySecret: a private key reaches Kubernetes only inside a Secret's data, marked
// as a Pulumi secret, and appears in no other resource's inputs.
func TestPrivateKeysStaySecret(t *testing.T) {
	for _, stack := range stackFiles {
		g := mustRun(t, stack)
		keys := map[string]bool{}
		for _, k := range g.ofType(typePrivateKey) {
			keys[output(k, "privateKeyPem")] = true
		}
		withKey := 0
		for _, r := range g.all {
			if r.Type == typeSecret {
				data, _ := plain(r, "stringData").(map[string]any)
				if keys[str(data["tls.key"])] {
					withKey++
					if !isSecret(r, "stringData") {
						t.Errorf("%s: Secret %s carries a private key in plain stringData", stack, r.Name)
					}
				}
				continue
			}
			if strings.HasPrefix(r.Type, "tls:") {
				continue // the keys' own resources and the certificates signed with them
			}
			if strings.Contains(str(r.Inputs.MapRepl(nil, unwrapSecret)), "PRIVATE KEY") {
				t.Errorf("%s: %s %s has a private key in its inputs", stack, r.Type, r.Name)
			}
		}
		if want := len(pkiIssued[stack]) - countClients(stack); withKey != want {
			t.Errorf("%s: %d Secrets hold a private key, want %d (server, upstream, backends)", stack, withKey, want)
		}
	}
}

func countClients(stack string) int {
	n := 0
	for _, name := range pkiIssued[stack] {
		if strings.HasPrefix(name, "pki-client-") {
			n++
		}
	}
	return n
}

// TestClientBundlesAreSecret runs the component alone to read its outputs: the bundles (key
// included) are a secret, the CA certificate is not.
func TestClientBundlesAreSecret(t *testing.T) {
	eng := mockengine.New("ztedge", "dev", "")
	var bundlesSecret, caSecret bool
	var bundles map[string]string
	err := eng.Run(func(ctx *pulumi.Context) error {
		pki, err := components.NewPki(ctx, "pki", &components.PkiArgs{
			CommonName: "test CA", Hostname: "edge.example.com",
			AmbassadorNamespace: pulumi.String("ambassador"), AmbassadorNamespaceName: "ambassador", AmbassadorServiceName: "emissary-ingress",
			TrustedClients:  []components.TrustedClient{{Name: "web-app", Services: []string{"/api/"}}},
			CaValidityHours: 1000, ValidityPeriodHours: 100, EarlyRenewalHours: 10,
		})
		if err != nil {
			return err
		}
		bundlesSecret, caSecret = pulumi.IsSecret(pki.ClientBundles), pulumi.IsSecret(pki.CACertPem)
		done := make(chan struct{})
		pki.ClientBundles.ApplyT(func(m map[string]string) int { bundles = m; close(done); return 0 })
		<-done
		return nil
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bundlesSecret || caSecret {
		t.Errorf("ClientBundles secret: %v (want true); CACertPem secret: %v (want false)", bundlesSecret, caSecret)
	}
	b := bundles["web-app"]
	for _, part := range []string{"BEGIN CERTIFICATE", "BEGIN EC PRIVATE KEY"} {
		if !strings.Contains(b, part) {
			t.Errorf("bundle lacks %s:\n%s", part, b)
		}
	}
	if strings.Count(b, "BEGIN CERTIFICATE") != 2 || !slices.Contains(sortedKeys(bundles), "web-app") {
		t.Errorf("bundle should hold the client certificate and the CA certificate:\n%s", b)
	}
}
