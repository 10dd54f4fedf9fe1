package components

import (
	"fmt"
	"strings"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi-tls/sdk/v5/go/tls"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Names of the Secrets the PKI writes; the Host, TLSContexts and backends refer to them.
const (
	// ServerSecretName holds Ambassador's server certificate for the edge hostname (kubernetes.io/tls).
	ServerSecretName = "ambassador-server-cert"
	// CASecretName holds the CA certificate only, as Emissary's ca_secret reads it: data key
	// tls.crt (a TLSContext/Host ca_secret uses the secret's tls.crt as the trusted CA;
	// python/ambassador/ir/irtlscontext.py), type Opaque because kubernetes.io/tls requires a key.
	// ca.crt carries the same certificate for other tools.
	CASecretName = "ambassador-ca-cert"
	// ClientCASecretName holds the trusted-client CA (tls.crt, like CASecretName): the Host verifies
	// client certificates against it where Envoy terminates the client's TLS (nlb-passthrough).
	ClientCASecretName = "ambassador-client-ca"
	// UpstreamSecretName holds the client certificate Ambassador presents to backends (mTLS).
	UpstreamSecretName = "upstream-certs"
	// UpstreamCommonName is the subject CN of that certificate; backends may pin it.
	UpstreamCommonName = "ambassador-upstream"
)

// The PKI has three CAs, one per purpose, so no certificate is trusted where it has no business:
//   - the edge CA issues server certificates (Ambassador's, the backends'); clients and Ambassador
//     verify servers with it.
//   - the client CA issues the trusted clients' certificates; only the edge's client-certificate
//     checks trust it (Host ca_secret, jwt-auth --client-ca, the ALB trust store).
//   - the upstream CA issues only Ambassador's upstream client certificate; only backends trust it
//     (their Secret's ca.crt). A trusted client that reaches a backend cannot pose as Ambassador,
//     and Ambassador's upstream certificate is not a trusted client at the edge.
const (
	edgeCAPurpose     = "edge"
	clientCAPurpose   = "client"
	upstreamCAPurpose = "upstream"
)

// BackendSecretName is the Secret, in the backend's namespace, with the backend's server
// certificate (tls.crt, tls.key, from the edge CA) and the upstream CA (ca.crt): the only issuer
// whose client certificates the backend accepts, i.e. Ambassador's.
func BackendSecretName(b Backend) string { return b.Name + "-tls" }

// Key usages (RFC 5280 names as the tls provider spells them).
var (
	caUses     = []string{"cert_signing", "crl_signing", "digital_signature"}
	serverUses = []string{"digital_signature", "server_auth"}
	clientUses = []string{"digital_signature", "client_auth"}
)

// PkiArgs describes the private CA and everything it issues.
type PkiArgs struct {
	// CommonName of the edge CA, e.g. "ztedge dev edge CA"; the client and upstream CAs are named
	// after it with "client" and "upstream" in place of "edge".
	CommonName string
	// Hostname is the edge's public name, the first SAN of Ambassador's server certificate.
	Hostname string
	// AmbassadorNamespace receives the server, CA and upstream Secrets (an output of the
	// namespace, so the Secrets wait for it). AmbassadorNamespaceName is the same, known now:
	// it goes into the server certificate's in-cluster DNS names.
	AmbassadorNamespace     pulumi.StringInput
	AmbassadorNamespaceName string
	AmbassadorServiceName   string
	TrustedClients          []TrustedClient
	Backends                []Backend
	// BackendNamespaces maps each backend namespace to an output of that namespace.
	BackendNamespaces map[string]pulumi.StringOutput

	CaValidityHours     int
	ValidityPeriodHours int // server and client certificates
	// EarlyRenewalHours: `pulumi up` re-issues a certificate (the CA too) this long before it expires.
	EarlyRenewalHours int
}

// Pki is a private CA, its certificates and the Kubernetes Secrets that carry them.
type Pki struct {
	pulumi.ResourceState

	// CACertPem is the edge CA certificate (public): clients verify the edge's server certificate
	// with it, Ambassador the backends'.
	CACertPem pulumi.StringOutput `pulumi:"caCertPem"`
	// ClientCACertPem is the trusted-client CA certificate (public): what the client-certificate
	// checks trust (jwt-auth --client-ca, the ALB trust store).
	ClientCACertPem pulumi.StringOutput `pulumi:"clientCaCertPem"`
	// UpstreamCACertPem is the upstream CA certificate (public): what backends trust.
	UpstreamCACertPem pulumi.StringOutput `pulumi:"upstreamCaCertPem"`
	// ClientBundles maps each trusted client to its certificate, private key and the CA
	// certificate, PEM concatenated. A Pulumi secret.
	ClientBundles pulumi.StringMapOutput `pulumi:"clientBundles"`
	// ClientCerts maps each trusted client to its current certificate (PEM, public): jwt-auth pins
	// these, so re-issuing one revokes the previous certificate.
	ClientCerts pulumi.StringMapOutput
	// Inventory has one entry per CA and certificate (expiry and renewal, no PEM): the stack
	// output `certificates` (ztedge certs).
	Inventory []pulumi.Output

	ServerSecret   *corev1.Secret
	CASecret       *corev1.Secret
	ClientCASecret *corev1.Secret
	UpstreamSecret *corev1.Secret
	// BackendSecrets is keyed by backend name.
	BackendSecrets map[string]*corev1.Secret
}

func (a *PkiArgs) validate() error {
	if a.CommonName == "" || a.Hostname == "" || a.AmbassadorNamespace == nil || a.AmbassadorNamespaceName == "" || a.AmbassadorServiceName == "" {
		return fmt.Errorf("pki: CommonName, Hostname, AmbassadorNamespace(Name) and AmbassadorServiceName are required")
	}
	if a.ValidityPeriodHours < 1 || a.CaValidityHours < a.ValidityPeriodHours {
		return fmt.Errorf("pki: validity %dh must be positive and within the CA's %dh", a.ValidityPeriodHours, a.CaValidityHours)
	}
	if a.EarlyRenewalHours < 0 || a.EarlyRenewalHours >= a.ValidityPeriodHours {
		return fmt.Errorf("pki: EarlyRenewalHours %d must be between 0 and the validity %d", a.EarlyRenewalHours, a.ValidityPeriodHours)
	}
	for _, b := range a.Backends {
		if _, ok := a.BackendNamespaces[b.Namespace]; !ok {
			return fmt.Errorf("pki: backend %q: namespace %q is not in BackendNamespaces", b.Name, b.Namespace)
		}
	}
	return nil
}

// ServiceDNSNames are the names a Service answers to inside the cluster.
func ServiceDNSNames(service, namespace string) []string {
	return []string{service, service + "." + namespace, service + "." + namespace + ".svc", service + "." + namespace + ".svc.cluster.local"}
}

// issued is a key pair and the certificate the CA signed for it.
type issued struct {
	key  *tls.PrivateKey
	cert pulumi.StringOutput
}

// newKey makes an ECDSA P-256 key: Envoy and every TLS 1.3 client accept it, and the tls
// provider returns it as a secret (SEC1 "EC PRIVATE KEY" PEM).
func newKey(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) (*tls.PrivateKey, error) {
	return tls.NewPrivateKey(ctx, name, &tls.PrivateKeyArgs{Algorithm: pulumi.String("ECDSA"), EcdsaCurve: pulumi.String("P256")}, opts...)
}

// NewPki creates the CA, issues every certificate and writes the Secrets.
func NewPki(ctx *pulumi.Context, name string, args *PkiArgs, opts ...pulumi.ResourceOption) (*Pki, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	c := &Pki{BackendSecrets: map[string]*corev1.Secret{}}
	child, err := register(ctx, "ztedge:pki:Pki", name, c, opts)
	if err != nil {
		return nil, err
	}

	// signer is a CA's key and certificate. A self-signed CA per purpose; the edge CA keeps the
	// resource names it always had ("<name>-ca"), so existing stacks keep their CA.
	type signer struct {
		key  *tls.PrivateKey
		cert *tls.SelfSignedCert
	}
	newCA := func(purpose string) (signer, error) {
		id, cn := name+"-ca", args.CommonName
		if purpose != edgeCAPurpose {
			id, cn = name+"-"+purpose+"-ca", caCommonName(args.CommonName, purpose)
		}
		key, err := newKey(ctx, id, child)
		if err != nil {
			return signer{}, err
		}
		cert, err := tls.NewSelfSignedCert(ctx, id, &tls.SelfSignedCertArgs{
			PrivateKeyPem:       key.PrivateKeyPem,
			Subject:             tls.SelfSignedCertSubjectArgs{CommonName: pulumi.String(cn), Organization: pulumi.String("ztedge")},
			IsCaCertificate:     pulumi.Bool(true),
			AllowedUses:         pulumi.ToStringArray(caUses),
			ValidityPeriodHours: pulumi.Int(args.CaValidityHours),
			EarlyRenewalHours:   pulumi.Int(args.EarlyRenewalHours),
			SetSubjectKeyId:     pulumi.Bool(true),
			SetAuthorityKeyId:   pulumi.Bool(true),
		}, child)
		if err == nil {
			c.Inventory = append(c.Inventory, issuedCertificate(cn, KindCA, cn, cert.ValidityEndTime, cert.ReadyForRenewal, args.EarlyRenewalHours))
		}
		return signer{key, cert}, err
	}
	edgeSigner, err := newCA(edgeCAPurpose)
	if err != nil {
		return nil, err
	}
	clientSigner, err := newCA(clientCAPurpose)
	if err != nil {
		return nil, err
	}
	upstreamSigner, err := newCA(upstreamCAPurpose)
	if err != nil {
		return nil, err
	}
	ca, clientCA, upstreamCA := edgeSigner.cert, clientSigner.cert, upstreamSigner.cert
	c.CACertPem, c.ClientCACertPem, c.UpstreamCACertPem = ca.CertPem, clientCA.CertPem, upstreamCA.CertPem

	issue := func(by signer, id, commonName string, dnsNames, uses []string, what, kind string) (*issued, error) {
		key, err := newKey(ctx, id, child)
		if err != nil {
			return nil, err
		}
		req := &tls.CertRequestArgs{
			PrivateKeyPem: key.PrivateKeyPem,
			Subject:       tls.CertRequestSubjectArgs{CommonName: pulumi.String(commonName), Organization: pulumi.String("ztedge")},
		}
		if len(dnsNames) > 0 { // client certificates name a subject only
			req.DnsNames = pulumi.ToStringArray(dnsNames)
		}
		csr, err := tls.NewCertRequest(ctx, id, req, child)
		if err != nil {
			return nil, err
		}
		cert, err := tls.NewLocallySignedCert(ctx, id, &tls.LocallySignedCertArgs{
			CertRequestPem:      csr.CertRequestPem,
			CaPrivateKeyPem:     by.key.PrivateKeyPem,
			CaCertPem:           by.cert.CertPem,
			AllowedUses:         pulumi.ToStringArray(uses),
			ValidityPeriodHours: pulumi.Int(args.ValidityPeriodHours),
			EarlyRenewalHours:   pulumi.Int(args.EarlyRenewalHours),
			SetSubjectKeyId:     pulumi.Bool(true),
		}, child)
		if err != nil {
			return nil, err
		}
		c.Inventory = append(c.Inventory, issuedCertificate(what, kind, commonName, cert.ValidityEndTime, cert.ReadyForRenewal, args.EarlyRenewalHours))
		return &issued{key: key, cert: cert.CertPem}, nil
	}
	// secret writes a certificate, its key and the CA; the key stays a Pulumi secret end to end.
	secret := func(id, secretName string, namespace pulumi.StringInput, typ string, data pulumi.StringMap) (*corev1.Secret, error) {
		return corev1.NewSecret(ctx, id, &corev1.SecretArgs{
			Metadata:   metav1.ObjectMetaArgs{Name: pulumi.String(secretName), Namespace: namespace},
			Type:       pulumi.String(typ),
			StringData: data,
		}, child)
	}
	// tlsData: ca.crt is what the holder trusts for its peers.
	tlsData := func(i *issued, trusts pulumi.StringOutput) pulumi.StringMap {
		return pulumi.StringMap{
			"tls.crt": i.cert,
			"tls.key": pulumi.ToSecret(i.key.PrivateKeyPem).(pulumi.StringOutput),
			"ca.crt":  trusts,
		}
	}

	// Ambassador's server certificate: the public hostname (NLB passthrough, where Envoy
	// terminates client TLS) and the Service's in-cluster names.
	serverNames := append([]string{args.Hostname}, ServiceDNSNames(args.AmbassadorServiceName, args.AmbassadorNamespaceName)...)
	server, err := issue(edgeSigner, name+"-server", args.Hostname, serverNames, serverUses, "Ambassador server certificate", KindServer)
	if err != nil {
		return nil, err
	}
	if c.ServerSecret, err = secret(name+"-server", ServerSecretName, args.AmbassadorNamespace, "kubernetes.io/tls", tlsData(server, ca.CertPem)); err != nil {
		return nil, err
	}
	if c.CASecret, err = secret(name+"-ca", CASecretName, args.AmbassadorNamespace, "Opaque",
		pulumi.StringMap{"tls.crt": ca.CertPem, "ca.crt": ca.CertPem}); err != nil {
		return nil, err
	}
	if c.ClientCASecret, err = secret(name+"-client-ca", ClientCASecretName, args.AmbassadorNamespace, "Opaque",
		pulumi.StringMap{"tls.crt": clientCA.CertPem, "ca.crt": clientCA.CertPem}); err != nil {
		return nil, err
	}
	// Ambassador's upstream certificate trusts the edge CA for the backends' server certificates.
	upstream, err := issue(upstreamSigner, name+"-upstream", UpstreamCommonName, nil, clientUses, "Ambassador upstream client certificate", KindClient)
	if err != nil {
		return nil, err
	}
	if c.UpstreamSecret, err = secret(name+"-upstream", UpstreamSecretName, args.AmbassadorNamespace, "kubernetes.io/tls", tlsData(upstream, ca.CertPem)); err != nil {
		return nil, err
	}

	for _, b := range args.Backends {
		cert, err := issue(edgeSigner, name+"-backend-"+b.Name, b.ServiceName()+"."+b.Namespace+".svc", ServiceDNSNames(b.ServiceName(), b.Namespace), serverUses,
			"backend "+b.Name+" server certificate", KindServer)
		if err != nil {
			return nil, err
		}
		if c.BackendSecrets[b.Name], err = secret(name+"-backend-"+b.Name, BackendSecretName(b), args.BackendNamespaces[b.Namespace], "kubernetes.io/tls", tlsData(cert, upstreamCA.CertPem)); err != nil {
			return nil, err
		}
	}

	bundles, certs := pulumi.StringMap{}, pulumi.StringMap{}
	for _, tc := range args.TrustedClients {
		cert, err := issue(clientSigner, name+"-client-"+tc.Name, tc.Name, nil, clientUses, "trusted client "+tc.Name, KindClient)
		if err != nil {
			return nil, err
		}
		// The client verifies the edge with the edge CA (its certificate comes from the client CA).
		bundles[tc.Name] = pulumi.Sprintf("%s%s%s", cert.cert, cert.key.PrivateKeyPem, ca.CertPem)
		certs[tc.Name] = cert.cert
	}
	c.ClientCerts = certs.ToStringMapOutput()
	c.ClientBundles = pulumi.ToSecret(bundles).(pulumi.StringMapOutput)

	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{
		"caCertPem": c.CACertPem, "clientCaCertPem": c.ClientCACertPem, "upstreamCaCertPem": c.UpstreamCACertPem,
		"clientBundles": c.ClientBundles,
	})
}

// caCommonName names a CA after the edge CA's name: "ztedge dev edge CA" → "ztedge dev client CA".
func caCommonName(edgeCommonName, purpose string) string {
	if base, ok := strings.CutSuffix(edgeCommonName, " "+edgeCAPurpose+" CA"); ok {
		return base + " " + purpose + " CA"
	}
	return edgeCommonName + " (" + purpose + ")"
}
