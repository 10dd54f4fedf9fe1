package components

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi-tls/sdk/v5/go/tls"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"sigs.k8s.io/yaml"

	"github.com/ztedge/ztedge/internal/jwtauth"
)

// jwt-auth's contract (cmd/jwt-auth, internal/jwtauth): its name, paths and where its files go.
const (
	// AuthName names the Deployment, Service, ServiceAccount and AuthService: Envoy calls
	// jwt-auth.<namespace>:3000.
	AuthName = "jwt-auth"
	// AuthCheckPrefix is the ext_authz path prefix: jwt-auth answers checks on /auth/<original path>.
	AuthCheckPrefix = "/auth"
	// TokenPath mints tokens (POST); JWKSPath publishes the verification keys (GET).
	TokenPath = "/token"
	JWKSPath  = "/.well-known/jwks.json"

	// AuthSigningKeysSecret holds one <kid>.pem per signing key.
	AuthSigningKeysSecret = "jwt-auth-signing-keys"
	// AuthUsersSecret holds users.yaml (ztedge:authUsers) when users are configured.
	AuthUsersSecret = "jwt-auth-users"
	// AuthClientsConfigMap holds clients.yaml (the trusted clients) and ca.pem (the stack CA):
	// both are public, the certificates themselves prove possession of the keys.
	AuthClientsConfigMap = "jwt-auth-clients"
	// AuthCertHeaderSecret holds the stack's secret name of the ALB's certificate header (key
	// "name"), which jwt-auth reads from JWT_AUTH_CLIENT_CERT_HEADER_NAME (CertHeaderName).
	AuthCertHeaderSecret = "jwt-auth-cert-header"
	// AuthChecksumAnnotation on the pod template is a digest of what jwt-auth reads only at
	// start-up (users, clients, CA, the certificate header name's key): changing one rolls the
	// pods. Signing keys are left out: jwt-auth re-reads its key directory every 30 s, so a
	// rotation needs no restart.
	AuthChecksumAnnotation = "ztedge.io/config-checksum"

	authConfigDir = "/etc/jwt-auth"
	authUID       = 65532 // distroless "nonroot", the image's USER
)

// Graceful shutdown: on deletion the pod first sleeps (the endpoint is being removed from the
// Service, so Envoy stops opening connections to it), then jwt-auth gets SIGTERM, fails /readyz
// and finishes in-flight checks within its --shutdown-timeout. The grace period covers both.
const (
	authPreStopSeconds  = 5
	authShutdownTimeout = 20 * time.Second
	authGracePeriod     = authPreStopSeconds + int(authShutdownTimeout/time.Second) + 5
)

// Timeouts Envoy gives jwt-auth. A check is a cached signature or chain verification (well
// under a millisecond); /token runs bcrypt and may fetch an OIDC issuer's JWKS (5 s limit).
const (
	authCheckTimeoutMs = 2000
	tokenTimeoutMs     = 10000
	jwksTimeoutMs      = 3000
)

// Resources of each jwt-auth pod. It uses ~50 MiB; a bcrypt check takes one core for ~250 ms, so
// the CPU limit is one core (GOMAXPROCS follows it) rather than a fraction that would stretch
// logins under throttling. GOMEMLIMIT keeps the Go heap under the memory limit. Nothing is written
// to disk but the audit log, which the kubelet rotates (5 × 10 MiB on EKS) and counts as the pod's
// ephemeral storage.
var authResources = map[string]map[string]string{
	"requests": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "64Mi"},
	"limits":   {"cpu": "1", "memory": fmt.Sprintf("%dMi", authMemoryLimitMiB), "ephemeral-storage": "128Mi"},
}

// authMemoryLimitMiB is the memory limit; GOMEMLIMIT is 90 % of it, so the collector works
// harder before the kernel would kill the pod.
const authMemoryLimitMiB = 256

var authGoMemLimit = fmt.Sprintf("%dMiB", authMemoryLimitMiB*9/10)

// AuthRequestHeaders are the request headers Envoy sends to jwt-auth with each check (Emissary
// adds its defaults, among them user-agent and x-forwarded-for). Only what jwt-auth reads:
// the bearer token, the browser origin (per-client CORS origins), the request id (audit log),
// the client address (audit log), and the forwarded client certificate in each of its forms
// (which ones jwt-auth believes is --client-cert-headers). No body, no content-type: the check
// never reads them.
var AuthRequestHeaders = []string{
	"authorization",
	"origin",
	"x-request-id",
	"x-forwarded-for",
	"x-forwarded-client-cert",     // Envoy, when it terminates client TLS (nlb-passthrough)
	"x-amzn-mtls-clientcert",      // ALB mutual TLS passthrough: the chain
	"x-amzn-mtls-clientcert-leaf", // ALB mutual TLS verify: the leaf
}

// AuthResponseHeaders are the identity headers jwt-auth returns on an allowed check; Envoy
// copies them onto the request to the backend, replacing any a client sent.
var AuthResponseHeaders = []string{"x-user-id", "x-user-permissions"}

// Signing-key phases (ztedge:authSigningKeys). Every key in the Secret verifies and is in the
// JWKS; only the active one signs (the Secret's active-kid names it). Rotation therefore never
// has one replica sign with a key another does not know yet: add the new key as next, `pulumi up`,
// wait for the Secret to reach every pod; make it active and the old one retiring, `pulumi up`;
// after the longest token the old key signed has expired, remove it.
const (
	KeyPhaseNext     = "next"     // published and verifying; not signing yet
	KeyPhaseActive   = "active"   // signs new tokens
	KeyPhaseRetiring = "retiring" // verifies the tokens it signed until they expire
)

// SigningKey is one jwt-auth signing key: a generated ECDSA P-256 key named by its id.
type SigningKey struct {
	ID    string `json:"id"`
	Phase string `json:"phase"`
}

// kidRE is jwt-auth's rule for a key id (it is a file name and a JWT header value).
var kidRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ValidateSigningKeys checks the keys: valid, distinct ids, known phases, exactly one active.
func ValidateSigningKeys(keys []SigningKey) error {
	seen, active := map[string]bool{}, 0
	for _, k := range keys {
		switch {
		case !kidRE.MatchString(k.ID):
			return fmt.Errorf("%q is not a key id (letters, digits, '.', '_', '-'; at most 128)", k.ID)
		case seen[k.ID]:
			return fmt.Errorf("%q is listed twice; never reuse a key id, pick a new one such as k2", k.ID)
		case k.Phase != KeyPhaseNext && k.Phase != KeyPhaseActive && k.Phase != KeyPhaseRetiring:
			return fmt.Errorf("key %q: phase %q must be next, active or retiring", k.ID, k.Phase)
		}
		seen[k.ID] = true
		if k.Phase == KeyPhaseActive {
			active++
		}
	}
	if active != 1 {
		return fmt.Errorf("needs exactly one key with phase active (it signs), has %d, e.g. [{\"id\":\"k1\",\"phase\":\"active\"}]", active)
	}
	return nil
}

// ActiveKeyID is the id of the key that signs.
func ActiveKeyID(keys []SigningKey) string {
	for _, k := range keys {
		if k.Phase == KeyPhaseActive {
			return k.ID
		}
	}
	return ""
}

// AuthClientCertHeaders is jwt-auth's --client-cert-headers: the one certificate header that
// something in front of it verified and set ("" turns client certificates off); jwt-auth refuses a
// request carrying any other, because only the client can have sent it. Envoy terminating the
// client's TLS replaces any X-Forwarded-Client-Cert (SANITIZE_SET); an ALB sets only
// X-Amzn-Mtls-Clientcert in passthrough and only the X-Amzn-Mtls-Clientcert-Leaf family in verify
// mode. Without either (mode off, or an ALB mode on a cluster with no ALB) nobody vouches for one.
func AuthClientCertHeaders(clientAuth string, behindALB bool) string {
	switch {
	case EnvoyTerminatesTLS(clientAuth):
		return jwtauth.CertHeadersXFCC
	case behindALB && clientAuth == ClientAuthALBPassthrough:
		return jwtauth.CertHeadersALBPassthrough
	case behindALB && clientAuth == ClientAuthALBVerify:
		return jwtauth.CertHeadersALBVerify
	default:
		return ""
	}
}

// AuthTrustedHops is jwt-auth's --trusted-hops: how many X-Forwarded-For entries, from the right,
// our own proxies appended. Envoy appends the address it saw (use_remote_address) after the
// l7Depth proxies its Listener trusts, so the client's address is l7Depth+1 from the right.
func AuthTrustedHops(behindALB bool) int {
	return ListenerSpec(behindALB, false)["l7Depth"].(int) + 1
}

// AuthServiceArgs configures jwt-auth and its registration with Ambassador.
type AuthServiceArgs struct {
	// Namespace is Ambassador's namespace as an output of the namespace (objects wait for it);
	// NamespaceName is the same name, known now, for the addresses Envoy calls.
	Namespace     pulumi.StringInput
	NamespaceName string
	// Hostname is the edge's public name: tokens are issued by https://<Hostname> for the
	// audience <Hostname>, and the /token and JWKS routes are served on it.
	Hostname string
	Image    string
	Replicas int
	TokenTTL string // Go duration, 5m to 15m
	// SigningKeys are the signing keys with their phases (see KeyPhaseNext); all verify, the
	// active one signs. Never reuse an id: verifiers cache keys by id.
	SigningKeys []SigningKey
	// Users is the ztedge:authUsers document (a secret); empty turns the password grant off.
	Users string
	// ClientAuth is the edge's client-certificate mode, and BehindALB whether an ALB terminates
	// the client's TLS (as in EdgeConfigArgs); TrustedClients authenticate with certificates from
	// the PKI's trusted-client CA (subject CN = client name), which CACertPem is: only that CA, so
	// neither Ambassador's upstream certificate nor a server certificate passes as a client.
	// ClientCerts are their current certificates by name (Pki.ClientCerts): jwt-auth accepts those
	// and no other.
	ClientAuth     string
	BehindALB      bool
	TrustedClients []TrustedClient
	CACertPem      pulumi.StringInput
	ClientCerts    pulumi.StringMapInput
	// OIDC token exchange; all three or none.
	OidcIssuer, OidcAudience, OidcJwksURL string
	// CRDs is the getambassador.io CRD install; the AuthService and Mappings wait for it.
	CRDs pulumi.Resource
	// GatewayAPI: the engine is Envoy Gateway, whose ext_authz and jwt-auth routes are Gateway API
	// objects (components/gatewayapi_edge.go): no Ambassador objects, no CRDs needed.
	GatewayAPI bool
	// DependsOn is what the pods need to be schedulable (the node group).
	DependsOn []pulumi.Resource
	// MetricsPort, when not 0, makes jwt-auth serve /metrics alone on this port (named
	// "metrics"), the only port the monitoring namespace is admitted to (components/monitoring.go).
	MetricsPort int
}

// AuthService is jwt-auth (Deployment, Service, PodDisruptionBudget, key and config Secrets) and
// the Ambassador objects that put it in front of every route: the AuthService, and Mappings for
// /token and the JWKS, which bypass it.
type AuthService struct {
	pulumi.ResourceState

	TokenEndpoint pulumi.StringOutput `pulumi:"tokenEndpoint"`
	JwksURL       pulumi.StringOutput `pulumi:"jwksUrl"`
	Issuer        pulumi.StringOutput `pulumi:"issuer"`
	Audience      pulumi.StringOutput `pulumi:"audience"`

	Deployment *appsv1.Deployment
	Service    *corev1.Service
	// AuthService is the getambassador.io AuthService: every Mapping without bypass_auth is checked.
	AuthService *apiextensions.CustomResource
	// CertHeaderName is set when an ALB forwards client certificates to jwt-auth: the header's
	// secret name, which the load balancer gives it and the engine's ext_authz passes on.
	CertHeaderName *CertHeaderName
}

// Gate is what must exist before any checked route or any exposure of Envoy: the AuthService
// (without it Emissary routes with no ext_authz, and a client's own X-User-ID reaches the
// backend) and the jwt-auth Deployment (the provider awaits it Available, so checks get answers).
// Depending on these two resources, not on this component: a component's children are collected
// asynchronously, so depending on it may miss some.
func (c *AuthService) Gate() []pulumi.Resource {
	if c.AuthService == nil { // GatewayAPI: the engine's ext_authz waits for the Deployment
		return []pulumi.Resource{c.Deployment}
	}
	return []pulumi.Resource{c.AuthService, c.Deployment}
}

// RouteNamespace is the edge namespace read from the AuthService object: the backends' Mappings
// take their metadata.namespace from it, so they depend on the AuthService through an input, not
// only through DependsOn. The engine replaces (deletes first, re-creates after) only dependents
// whose inputs depend on a resource it deletes before replacing it, and pulumi-kubernetes deletes
// a same-named object before it creates it: without this input, `up --replace` of the AuthService
// (or a change that replaces it) would leave every Mapping served with no auth check while the
// AuthService is gone. With it, a namespace that is unknown until the AuthService is back makes
// the provider plan a replacement of each Mapping, which the engine deletes first
// (TestAuthServiceReplacementTakesTheRoutesDownFirst on the real engine). A replaced jwt-auth
// Deployment needs no such link: Envoy fails closed while it has no endpoint.
func (c *AuthService) RouteNamespace() pulumi.StringInput {
	if c.AuthService == nil { // GatewayAPI: the SecurityPolicies carry the check themselves
		return nil
	}
	return c.AuthService.Metadata.Namespace().Elem()
}

func (a *AuthServiceArgs) validate() error {
	var missing []string
	for what, v := range map[string]string{"NamespaceName": a.NamespaceName, "Hostname": a.Hostname, "Image": a.Image} {
		if v == "" {
			missing = append(missing, what)
		}
	}
	if a.Namespace == nil || (a.CRDs == nil && !a.GatewayAPI) {
		missing = append(missing, "Namespace and CRDs")
	}
	if len(missing) > 0 {
		return fmt.Errorf("auth: %s required", strings.Join(missing, ", "))
	}
	if a.Replicas < 1 {
		return fmt.Errorf("auth: Replicas must be at least 1")
	}
	if ttl, err := time.ParseDuration(a.TokenTTL); err != nil || ttl < jwtauth.MinTokenTTL || ttl > jwtauth.MaxTokenTTL {
		return fmt.Errorf("auth: TokenTTL %q must be a duration from %s to %s", a.TokenTTL, jwtauth.MinTokenTTL, jwtauth.MaxTokenTTL)
	}
	if err := ValidateSigningKeys(a.SigningKeys); err != nil {
		return fmt.Errorf("auth: SigningKeys: %w", err)
	}
	if (a.OidcIssuer == "") != (a.OidcJwksURL == "") || (a.OidcIssuer == "") != (a.OidcAudience == "") {
		return fmt.Errorf("auth: OidcIssuer, OidcAudience and OidcJwksURL go together")
	}
	if a.OidcIssuer != "" && a.Users == "" {
		return fmt.Errorf("auth: OIDC token exchange needs Users (upstream subjects map to users by oidcSubject)")
	}
	if a.clientCerts() && (a.CACertPem == nil || a.ClientCerts == nil) {
		return fmt.Errorf("auth: CACertPem and ClientCerts are required with TrustedClients")
	}
	return nil
}

// clientCerts reports whether jwt-auth authenticates trusted clients by certificate.
func (a *AuthServiceArgs) clientCerts() bool {
	return len(a.TrustedClients) > 0 && AuthClientCertHeaders(a.ClientAuth, a.BehindALB) != ""
}

// secretCertHeader reports whether an ALB hands jwt-auth the client certificate, which it then
// does under the stack's secret header name (CertHeaderName). Envoy's XFCC needs none: Envoy
// replaces whatever the client sent.
func (a *AuthServiceArgs) secretCertHeader() bool {
	mode := AuthClientCertHeaders(a.ClientAuth, a.BehindALB)
	return a.clientCerts() && (mode == jwtauth.CertHeadersALBPassthrough || mode == jwtauth.CertHeadersALBVerify)
}

// AuthClientsFile is jwt-auth's --clients file: each trusted client matched by its certificate's
// CN, which is the client's name (NewPki issues it so), and pinned to the SHA-256 fingerprints of
// the certificates it holds now (fingerprints, by client name), so a re-issued certificate revokes
// the previous one. Matching by CN is safe here because --client-ca holds only the stack's CA.
func AuthClientsFile(clients []TrustedClient, fingerprints map[string][]string) (string, error) {
	entries := make([]jwtauth.ClientEntry, 0, len(clients))
	for _, c := range clients {
		entries = append(entries, jwtauth.ClientEntry{
			Name: c.Name, Fingerprints: fingerprints[c.Name],
			Access: jwtauth.Access{Permissions: c.Permissions, Services: c.Services, Origins: c.Origins},
		})
	}
	b, err := yaml.Marshal(map[string]any{"clients": entries})
	return string(b), err
}

// certFingerprints pins each client's current certificate (PEM) by its SHA-256 fingerprint.
func certFingerprints(certs map[string]string) (map[string][]string, error) {
	out := map[string][]string{}
	for name, p := range certs {
		block, _ := pem.Decode([]byte(p))
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("auth: client %q: its certificate is not PEM", name)
		}
		out[name] = []string{jwtauth.CertFingerprint(block.Bytes)}
	}
	return out, nil
}

// authAddress is where Envoy reaches jwt-auth (plain HTTP inside the namespace).
func authAddress(namespace string) string {
	return fmt.Sprintf("%s.%s:%d", AuthName, namespace, JwtAuth.Port)
}

// authRequestHeaders are AuthRequestHeaders plus the secret certificate header name when there is
// one (nil: none). The default names stay, so jwt-auth sees, and refuses, a client's forged copy.
func authRequestHeaders(certHeader pulumi.StringInput) []any {
	headers := stringsAny(AuthRequestHeaders)
	if certHeader != nil {
		headers = append(headers, certHeader)
	}
	return headers
}

// AuthServiceSpec registers jwt-auth as Ambassador's external authorization service. It fails
// closed: when jwt-auth cannot answer, the request is refused with 503 (retryable) rather than
// let through; Emissary's default would be 403. certHeader is CertHeaderName.ExtAuthHeader.
func AuthServiceSpec(namespace string, certHeader pulumi.StringInput) map[string]any {
	return map[string]any{
		"auth_service": authAddress(namespace),
		"proto":        "http",
		// Emissary uses protocol_version only for gRPC; v3 keeps a later switch from picking the removed v2.
		"protocol_version":              "v3",
		"path_prefix":                   AuthCheckPrefix,
		"timeout_ms":                    authCheckTimeoutMs,
		"allowed_request_headers":       authRequestHeaders(certHeader),
		"allowed_authorization_headers": stringsAny(AuthResponseHeaders),
		"failure_mode_allow":            false,
		"status_on_error":               map[string]any{"code": 503},
	}
}

// authMappingSpec routes exactly one path on the edge hostname to jwt-auth, unchecked: callers of
// /token have no token yet, and the JWKS is public. prefix_exact and method keep the hole to that
// path and method; rewrite keeps the path (Emissary's default rewrite would turn it into "/").
func authMappingSpec(hostname, namespace, path, method string, timeoutMs int) map[string]any {
	return map[string]any{
		"hostname":     hostname,
		"prefix":       path,
		"prefix_exact": true,
		"rewrite":      path,
		"method":       method,
		"service":      authAddress(namespace),
		"bypass_auth":  true,
		"timeout_ms":   timeoutMs,
	}
}

// TokenMappingSpec is the /token route (POST only).
func TokenMappingSpec(hostname, namespace string) map[string]any {
	return authMappingSpec(hostname, namespace, TokenPath, "POST", tokenTimeoutMs)
}

// JWKSMappingSpec is the JWKS route (GET only): backends and clients verify tokens with it.
func JWKSMappingSpec(hostname, namespace string) map[string]any {
	return authMappingSpec(hostname, namespace, JWKSPath, "GET", jwksTimeoutMs)
}

// authArgs is jwt-auth's command line. Every path is under authConfigDir; every value is
// public, so flags (visible in `kubectl describe`) rather than environment variables.
func (a *AuthServiceArgs) authArgs() []string {
	args := []string{
		fmt.Sprintf("--listen=:%d", JwtAuth.Port),
		"--signing-keys=" + authConfigDir + "/keys",
		"--issuer=https://" + a.Hostname,
		// The audience is the edge itself (its hostname): tokens are for this edge and the
		// services behind it, and a token minted by another ztedge stack is refused.
		"--audience=" + a.Hostname,
		"--token-ttl=" + a.TokenTTL,
		fmt.Sprintf("--trusted-hops=%d", AuthTrustedHops(a.BehindALB)),
		"--shutdown-timeout=" + authShutdownTimeout.String(),
		// jwt-auth sizes its connection and request limits to the pod's memory limit.
		fmt.Sprintf("--memory-limit=%dMi", authMemoryLimitMiB),
	}
	if a.Users != "" {
		args = append(args, "--users="+authConfigDir+"/users/users.yaml")
	}
	if a.clientCerts() {
		args = append(args,
			"--clients="+authConfigDir+"/clients/clients.yaml",
			"--client-ca="+authConfigDir+"/clients/ca.pem",
			"--client-cert-headers="+AuthClientCertHeaders(a.ClientAuth, a.BehindALB))
	}
	if a.MetricsPort != 0 {
		args = append(args, fmt.Sprintf("--metrics-listen=:%d", a.MetricsPort))
	}
	if a.OidcIssuer != "" {
		args = append(args, "--oidc-issuer="+a.OidcIssuer, "--oidc-audience="+a.OidcAudience, "--oidc-jwks-url="+a.OidcJwksURL)
	}
	return args
}

// NewAuthService creates jwt-auth and registers it with Ambassador.
func NewAuthService(ctx *pulumi.Context, name string, args *AuthServiceArgs, opts ...pulumi.ResourceOption) (*AuthService, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	c := &AuthService{}
	child, err := register(ctx, "ztedge:auth:AuthService", name, c, opts)
	if err != nil {
		return nil, err
	}
	labels := appLabels(AuthName)
	meta := func(objName string) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(objName), Namespace: args.Namespace, Labels: pulumi.ToStringMap(labels)}
	}

	// Signing keys: one ECDSA P-256 key per id, generated by the tls provider (a Pulumi secret
	// end to end), in one Secret that jwt-auth reads as a directory.
	keyData := pulumi.StringMap{jwtauth.ActiveKIDFile: pulumi.String(ActiveKeyID(args.SigningKeys)).ToStringOutput()}
	for _, k := range args.SigningKeys {
		kid := k.ID
		key, err := tls.NewPrivateKey(ctx, name+"-signing-"+kid, &tls.PrivateKeyArgs{
			Algorithm: pulumi.String("ECDSA"), EcdsaCurve: pulumi.String("P256"),
		}, child)
		if err != nil {
			return nil, err
		}
		keyData[kid+".pem"] = pulumi.ToSecret(key.PrivateKeyPem).(pulumi.StringOutput)
	}
	keys, err := corev1.NewSecret(ctx, name+"-signing-keys", &corev1.SecretArgs{
		Metadata: meta(AuthSigningKeysSecret), Type: pulumi.String("Opaque"), StringData: keyData,
	}, child)
	if err != nil {
		return nil, err
	}
	// Secret files are readable by the pod's group only (fsGroup), not by every user.
	volumes := corev1.VolumeArray{authSecretVolume("keys", keys)}
	mounts := corev1.VolumeMountArray{authMount("keys")}

	// The digest of the start-up-only files; the users document is hashed, never copied.
	clientsFile := pulumi.String("").ToStringOutput()
	caPem := pulumi.StringInput(pulumi.String(""))
	if args.Users != "" {
		users, err := corev1.NewSecret(ctx, name+"-users", &corev1.SecretArgs{
			Metadata:   meta(AuthUsersSecret),
			Type:       pulumi.String("Opaque"),
			StringData: pulumi.StringMap{"users.yaml": pulumi.ToSecret(pulumi.String(args.Users)).(pulumi.StringOutput)},
		}, child)
		if err != nil {
			return nil, err
		}
		volumes = append(volumes, authSecretVolume("users", users))
		mounts = append(mounts, authMount("users"))
	}
	if args.clientCerts() {
		clientsFile = args.ClientCerts.ToStringMapOutput().ApplyT(func(certs map[string]string) (string, error) {
			fps, err := certFingerprints(certs)
			if err != nil {
				return "", err
			}
			return AuthClientsFile(args.TrustedClients, fps)
		}).(pulumi.StringOutput)
		caPem = args.CACertPem
		clients, err := corev1.NewConfigMap(ctx, name+"-clients", &corev1.ConfigMapArgs{
			Metadata: meta(AuthClientsConfigMap),
			Data:     pulumi.StringMap{"clients.yaml": clientsFile, "ca.pem": args.CACertPem},
		}, child)
		if err != nil {
			return nil, err
		}
		volumes = append(volumes, corev1.VolumeArgs{
			Name:      pulumi.String("clients"),
			ConfigMap: corev1.ConfigMapVolumeSourceArgs{Name: clients.Metadata.Name(), DefaultMode: pulumi.Int(0o444)},
		})
		mounts = append(mounts, authMount("clients"))
	}
	// The secret certificate header name reaches jwt-auth by environment, from its own Secret.
	env := corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("GOMEMLIMIT"), Value: pulumi.String(authGoMemLimit)}}
	certHeaderVersion := pulumi.String("").ToStringOutput()
	if args.secretCertHeader() {
		if c.CertHeaderName, err = newCertHeaderName(ctx, name, args.ClientAuth, child); err != nil {
			return nil, err
		}
		certHeader, err := corev1.NewSecret(ctx, name+"-cert-header", &corev1.SecretArgs{
			Metadata: meta(AuthCertHeaderSecret), Type: pulumi.String("Opaque"),
			StringData: pulumi.StringMap{"name": c.CertHeaderName.Name},
		}, child)
		if err != nil {
			return nil, err
		}
		env = append(env, corev1.EnvVarArgs{Name: pulumi.String("JWT_AUTH_CLIENT_CERT_HEADER_NAME"), ValueFrom: corev1.EnvVarSourceArgs{
			SecretKeyRef: corev1.SecretKeySelectorArgs{Name: certHeader.Metadata.Name(), Key: pulumi.String("name")},
		}})
		certHeaderVersion = c.CertHeaderName.Version
	}
	checksum := pulumi.All(caPem, clientsFile, certHeaderVersion).ApplyT(func(in []any) string {
		h := sha256.New()
		parts := []string{args.Users, in[1].(string), in[0].(string)}
		if v := in[2].(string); v != "" { // only then: stacks without one keep their checksum
			parts = append(parts, v)
		}
		for _, part := range parts {
			fmt.Fprintf(h, "%d:%s", len(part), part)
		}
		return hex.EncodeToString(h.Sum(nil))
	}).(pulumi.StringOutput)

	sa, err := corev1.NewServiceAccount(ctx, name, &corev1.ServiceAccountArgs{
		Metadata: meta(AuthName),
		// jwt-auth never calls the Kubernetes API: no token in the pod.
		AutomountServiceAccountToken: pulumi.Bool(false),
	}, child)
	if err != nil {
		return nil, err
	}

	selector := &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(JwtAuth.Labels)}
	spread := func(key, whenUnsatisfiable string) corev1.TopologySpreadConstraintArgs {
		return corev1.TopologySpreadConstraintArgs{
			MaxSkew: pulumi.Int(1), TopologyKey: pulumi.String(key), WhenUnsatisfiable: pulumi.String(whenUnsatisfiable),
			LabelSelector: selector,
			// Count only this revision's pods (a rollout does not skew itself) and ignore cordoned
			// nodes (a drain can still reschedule the evicted pod).
			MatchLabelKeys:   pulumi.ToStringArray([]string{"pod-template-hash"}),
			NodeTaintsPolicy: pulumi.String("Honor"),
		}
	}
	notRoot := pulumi.Int(authUID)
	seccomp := corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")}
	httpGet := func(path string) corev1.HTTPGetActionArgs {
		return corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String("http")}
	}
	c.Deployment, err = appsv1.NewDeployment(ctx, name, &appsv1.DeploymentArgs{
		Metadata: meta(AuthName),
		Spec: appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(args.Replicas),
			Selector: selector,
			// Keep every replica serving while a new one starts: auth is on every request's path.
			Strategy: appsv1.DeploymentStrategyArgs{
				Type:          pulumi.String("RollingUpdate"),
				RollingUpdate: appsv1.RollingUpdateDeploymentArgs{MaxSurge: pulumi.Int(1), MaxUnavailable: pulumi.Int(0)},
			},
			RevisionHistoryLimit: pulumi.Int(5),
			Template: corev1.PodTemplateSpecArgs{
				Metadata: metav1.ObjectMetaArgs{
					Labels:      pulumi.ToStringMap(labels),
					Annotations: pulumi.StringMap{AuthChecksumAnnotation: checksum},
				},
				Spec: corev1.PodSpecArgs{
					ServiceAccountName:            sa.Metadata.Name(),
					AutomountServiceAccountToken:  pulumi.Bool(false),
					EnableServiceLinks:            pulumi.Bool(false),
					TerminationGracePeriodSeconds: pulumi.Int(authGracePeriod),
					SecurityContext: corev1.PodSecurityContextArgs{
						RunAsNonRoot: pulumi.Bool(true), RunAsUser: notRoot, RunAsGroup: notRoot, FsGroup: notRoot,
						SeccompProfile: seccomp,
					},
					// Over zones when possible; over nodes always, so one node failure leaves a
					// replica (with one replica per node the PDB also keeps drains moving).
					TopologySpreadConstraints: corev1.TopologySpreadConstraintArray{
						spread("topology.kubernetes.io/zone", "ScheduleAnyway"),
						spread("kubernetes.io/hostname", "DoNotSchedule"),
					},
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String(AuthName),
						Image:           pulumi.String(args.Image),
						ImagePullPolicy: pulumi.String("IfNotPresent"),
						Args:            pulumi.ToStringArray(args.authArgs()),
						Env:             env,
						Ports:           authPorts(args.MetricsPort),
						// Ready only with a signing key loaded and not shutting down; alive while it serves.
						ReadinessProbe: corev1.ProbeArgs{
							HttpGet: httpGet("/readyz"), PeriodSeconds: pulumi.Int(5), TimeoutSeconds: pulumi.Int(2), FailureThreshold: pulumi.Int(2),
						},
						LivenessProbe: corev1.ProbeArgs{
							HttpGet: httpGet("/healthz"), PeriodSeconds: pulumi.Int(10), TimeoutSeconds: pulumi.Int(2), FailureThreshold: pulumi.Int(3),
						},
						Lifecycle: corev1.LifecycleArgs{
							PreStop: corev1.LifecycleHandlerArgs{Sleep: corev1.SleepActionArgs{Seconds: pulumi.Int(authPreStopSeconds)}},
						},
						Resources: corev1.ResourceRequirementsArgs{
							Requests: pulumi.ToStringMap(authResources["requests"]),
							Limits:   pulumi.ToStringMap(authResources["limits"]),
						},
						SecurityContext: corev1.SecurityContextArgs{
							RunAsNonRoot: pulumi.Bool(true), RunAsUser: notRoot, RunAsGroup: notRoot,
							ReadOnlyRootFilesystem:   pulumi.Bool(true),
							AllowPrivilegeEscalation: pulumi.Bool(false),
							Privileged:               pulumi.Bool(false),
							Capabilities:             corev1.CapabilitiesArgs{Drop: pulumi.ToStringArray([]string{"ALL"})},
							SeccompProfile:           seccomp,
						},
						VolumeMounts: mounts,
					}},
					Volumes: volumes,
				},
			},
		},
	}, child, pulumi.DependsOn(args.DependsOn))
	if err != nil {
		return nil, err
	}

	c.Service, err = corev1.NewService(ctx, name, &corev1.ServiceArgs{
		Metadata: meta(AuthName),
		Spec: corev1.ServiceSpecArgs{
			Type:     pulumi.String("ClusterIP"),
			Selector: pulumi.ToStringMap(JwtAuth.Labels),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("http"), Port: pulumi.Int(JwtAuth.Port), TargetPort: pulumi.String("http"),
				Protocol: pulumi.String("TCP"), AppProtocol: pulumi.String("http"),
			}},
		},
	}, child)
	if err != nil {
		return nil, err
	}

	// With two or more replicas a drain takes one at a time. With one there is no budget: it
	// could only say "never evict", which blocks node drains and upgrades forever, and a single
	// replica is down during any restart anyway (dev only).
	if args.Replicas >= 2 {
		_, err = policyv1.NewPodDisruptionBudget(ctx, name, &policyv1.PodDisruptionBudgetArgs{
			Metadata: meta(AuthName),
			Spec: policyv1.PodDisruptionBudgetSpecArgs{
				Selector:       selector,
				MaxUnavailable: pulumi.Int(1),
				// A crash-looping pod serves nothing; do not let it hold up a drain.
				UnhealthyPodEvictionPolicy: pulumi.String("AlwaysAllow"),
			},
		}, child)
		if err != nil {
			return nil, err
		}
	}

	if args.GatewayAPI {
		return c.finish(ctx, args)
	}
	// Ambassador objects. The AuthService waits only for the CRDs: it must exist before any checked
	// route, and those routes (and the load balancer) wait for it and for the Deployment (Gate).
	object := func(kind, objName string, objLabels map[string]string, spec map[string]any, opts ...pulumi.ResourceOption) (*apiextensions.CustomResource, error) {
		return newAmbassadorObject(ctx, name+"-"+strings.ToLower(kind)+"-"+objName, kind, objName, args.Namespace, objLabels, spec,
			append([]pulumi.ResourceOption{child, pulumi.DependsOn([]pulumi.Resource{args.CRDs})}, opts...)...)
	}
	// Its name is fixed (Emissary allows one), so a replacement can only delete it first: say so,
	// or `up --replace` fails creating a second one ("already exists"). Deleting first is what
	// makes the engine take the backend Mappings down before it (RouteNamespace).
	if c.AuthService, err = object("AuthService", AuthName, nil, AuthServiceSpec(args.NamespaceName, c.CertHeaderName.ExtAuthHeader()), pulumi.DeleteBeforeReplace(true)); err != nil {
		return nil, err
	}
	if _, err = object("Mapping", AuthName+"-token", EdgeMappingLabels(), TokenMappingSpec(args.Hostname, args.NamespaceName)); err != nil {
		return nil, err
	}
	if _, err = object("Mapping", AuthName+"-jwks", EdgeMappingLabels(), JWKSMappingSpec(args.Hostname, args.NamespaceName)); err != nil {
		return nil, err
	}

	return c.finish(ctx, args)
}

// finish sets and registers the outputs.
func (c *AuthService) finish(ctx *pulumi.Context, args *AuthServiceArgs) (*AuthService, error) {
	c.TokenEndpoint = pulumi.String("https://" + args.Hostname + TokenPath).ToStringOutput()
	c.JwksURL = pulumi.String("https://" + args.Hostname + JWKSPath).ToStringOutput()
	c.Issuer = pulumi.String("https://" + args.Hostname).ToStringOutput()
	c.Audience = pulumi.String(args.Hostname).ToStringOutput()
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{
		"tokenEndpoint": c.TokenEndpoint, "jwksUrl": c.JwksURL, "issuer": c.Issuer, "audience": c.Audience,
	})
}

// authSecretVolume mounts a Secret readable by the pod's group (fsGroup) only.
func authSecretVolume(volName string, s *corev1.Secret) corev1.VolumeArgs {
	return corev1.VolumeArgs{
		Name:   pulumi.String(volName),
		Secret: corev1.SecretVolumeSourceArgs{SecretName: s.Metadata.Name(), DefaultMode: pulumi.Int(0o440)},
	}
}

// authMount puts a volume at authConfigDir/<name>, read-only; the whole directory, not a subPath,
// so the kubelet's updates (key rotation) reach the running pods.
func authMount(volName string) corev1.VolumeMountArgs {
	return corev1.VolumeMountArgs{Name: pulumi.String(volName), MountPath: pulumi.String(authConfigDir + "/" + volName), ReadOnly: pulumi.Bool(true)}
}

// authPorts are jwt-auth's container ports: the service port, and the metrics port when set.
func authPorts(metricsPort int) corev1.ContainerPortArray {
	ports := corev1.ContainerPortArray{corev1.ContainerPortArgs{
		Name: pulumi.String("http"), ContainerPort: pulumi.Int(JwtAuth.Port), Protocol: pulumi.String("TCP"),
	}}
	if metricsPort != 0 {
		ports = append(ports, corev1.ContainerPortArgs{Name: pulumi.String(MetricsPortName), ContainerPort: pulumi.Int(metricsPort), Protocol: pulumi.String("TCP")})
	}
	return ports
}
