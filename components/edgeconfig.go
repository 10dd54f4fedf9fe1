package components

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Ambassador's own configuration objects. Every one is getambassador.io/v3alpha1: with the 4.x CRD
// chart that is the stored version (no conversion webhook), and it is the only version whose schema
// rejects unknown fields, which the tests rely on to catch invented field names.
const (
	AmbassadorAPIVersion = "getambassador.io/v3alpha1"

	// AmbassadorHTTPSPort is Envoy's HTTPS listener; the load balancer sends everything there.
	AmbassadorHTTPSPort = 8443
	// AmbassadorAdminPort serves /ambassador/v0/check_ready (load balancer health checks).
	AmbassadorAdminPort = 8877
	// AmbassadorReadyPath is Emissary's readiness endpoint on AmbassadorAdminPort.
	AmbassadorReadyPath = "/ambassador/v0/check_ready"

	// UpstreamTLSContext is the TLSContext every backend Mapping names: Ambassador presents the
	// upstream client certificate and checks the backend's server certificate against the stack CA.
	UpstreamTLSContext = "upstream"

	// EdgeHostName is the metadata.name of the Host. Mappings join it through MappingSelectorLabel.
	EdgeHostName = "edge"
	// MappingSelectorLabel is the Host's mappingSelector. A Mapping without it (and without the edge
	// hostname) is not served: another team's stray Mapping in the namespace cannot open a route.
	MappingSelectorLabel = "ztedge.io/host"
)

// Client-certificate modes (ztedge:clientAuth).
const (
	ClientAuthALBPassthrough = "alb-passthrough"
	ClientAuthALBVerify      = "alb-verify"
	ClientAuthNLBPassthrough = "nlb-passthrough"
	ClientAuthOff            = "off"
)

// ClientAuthModes lists the modes in documentation order.
var ClientAuthModes = []string{ClientAuthALBPassthrough, ClientAuthALBVerify, ClientAuthNLBPassthrough, ClientAuthOff}

// EnvoyTerminatesTLS reports whether, in a client-auth mode, Envoy terminates the client's TLS and
// checks client certificates itself (nlb-passthrough) instead of an ALB doing it. (With no ALB at
// all, as on a local cluster, Envoy terminates TLS in every mode: see EdgeConfigArgs.BehindALB.)
func EnvoyTerminatesTLS(clientAuth string) bool { return clientAuth == ClientAuthNLBPassthrough }

// EdgeMappingLabels are the metadata labels a Mapping needs to be served by the edge Host. Every
// Mapping on the edge hostname must carry them (the auth layer's /token Mapping too): Emissary
// matches a Mapping that sets a hostname only if the Host's mappingSelector matches as well.
func EdgeMappingLabels() map[string]string {
	return map[string]string{MappingSelectorLabel: EdgeHostName}
}

// EnvoyNormalisation is the `ambassador` Module config that makes Envoy forward only requests
// whose path and headers jwt-auth and the backend read the same way, in every mode. The keys are
// Emissary's (python/ambassador/src/ambassador/ir/irambassador.py AModTransparentKeys and
// envoy/v3/v3listener.py at v4.1.0):
//   - headers_with_underscores_action REJECT_REQUEST: x_user_id must not reach a backend (or a
//     framework that maps "_" to "-") as a second X-User-ID that ext_authz did not overwrite.
//   - merge_slashes: //api/orders/ is the route /api/orders/ that jwt-auth checked, not a
//     different path at the backend.
//   - reject_requests_with_escaped_slashes (Envoy path_with_escaped_slashes_action REJECT_REQUEST):
//     %2F cannot hide a "/" from the prefix match and the check, then be decoded by the backend.
//
// Path normalisation (RFC 3986 dot segments, normalize_path) is not a Module key in Emissary
// 4.1.0: v3listener.py sets normalize_path: true on every HTTP connection manager itself.
var EnvoyNormalisation = map[string]any{
	"headers_with_underscores_action":      "REJECT_REQUEST",
	"merge_slashes":                        true,
	"reject_requests_with_escaped_slashes": true,
}

// AmbassadorModuleConfig is what the `ambassador` Module's config holds (AmbassadorArgs.Module)
// for a client-auth mode: the normalisation in every mode, plus the client certificate where
// Envoy verifies it. The chart renders that Module from its `module` value and a second one
// would conflict, so ztedge never creates a Module itself.
func AmbassadorModuleConfig(clientAuth string) map[string]any {
	config := map[string]any{}
	for k, v := range EnvoyNormalisation {
		config[k] = v
	}
	for k, v := range AccessLogModuleConfig() { // JSON access log (components/accesslog.go)
		config[k] = v
	}
	// Emissary otherwise adds /ambassador/v0/check_ready and check_alive to the edge's virtual
	// host on 8443, proxied to its admin port (ir/irambassador.py, add_mappings): the internet
	// would learn the pod's readiness and reach the admin server. The load balancer and the
	// kubelet probe 8877 directly, which these settings do not change. (The diagnostics UI is off
	// too: ambassadorPodValues.)
	config["readiness_probe"] = map[string]any{"enabled": false}
	config["liveness_probe"] = map[string]any{"enabled": false}
	if EnvoyTerminatesTLS(clientAuth) {
		// Envoy verified the client's certificate: hand it to jwt-auth in X-Forwarded-Client-Cert.
		// SANITIZE_SET replaces whatever XFCC the client sent, so the header only comes from Envoy.
		// (Behind an ALB, Envoy's default SANITIZE already drops any XFCC a client sends, and how
		// far to trust X-Forwarded-For is the Listener's l7Depth.)
		config["forward_client_cert_details"] = "SANITIZE_SET"
		config["set_current_client_cert_details"] = map[string]any{"subject": true, "cert": true, "chain": true, "uri": true, "dns": true}
	}
	return config
}

// SecretRef names a Kubernetes Secret in the Ambassador namespace and the resource that creates
// it, so the objects that name it are created after it.
type SecretRef struct {
	Name     string
	Resource pulumi.Resource
}

// EdgeConfigArgs configures Ambassador for the edge.
type EdgeConfigArgs struct {
	// Namespace is Ambassador's namespace (an output of it, so objects wait for it); every object,
	// and every Secret they name, lives there.
	Namespace pulumi.StringInput
	// Hostname is the edge's public name (the ACM certificate's name).
	Hostname   string
	ClientAuth string
	// BehindALB: an ALB terminates the client's TLS and opens its own connection to Envoy
	// (alb-* and off modes on EKS). Otherwise the client's TLS ends at Envoy: NLB passthrough, or a
	// Service on a local cluster.
	BehindALB bool
	// ProxyProtocol: connections arrive with a PROXY v2 header (the NLB of nlb-passthrough on EKS;
	// a local Service sends none).
	ProxyProtocol bool
	Backends      []Backend
	// CRDs is the getambassador.io CRD install; every object waits for it.
	CRDs pulumi.Resource
	// ServerCert is Ambassador's server certificate (kubernetes.io/tls).
	ServerCert SecretRef
	// CACert holds the edge CA certificate under tls.crt: Envoy verifies the backends' server
	// certificates with it.
	CACert SecretRef
	// ClientCACert holds the trusted-client CA under tls.crt: where Envoy terminates the client's
	// TLS (nlb-passthrough) it verifies client certificates against it, and nothing else.
	ClientCACert SecretRef
	// UpstreamCert is the client certificate Ambassador presents to backends (kubernetes.io/tls).
	UpstreamCert SecretRef
	// RateLimits enforce the backends' rate limits (RateLimiting.Enforcers): Mappings that carry
	// rate-limit labels are created after them, so a route never exists without its limit.
	RateLimits []pulumi.Resource
	// Auth is the auth gate (AuthService.Gate): every backend Mapping (none bypasses auth) is
	// created after it, so Emissary never serves a backend route without ext_authz, not even
	// on the first `up`; destroy (and a replacement of the AuthService) removes the routes first.
	Auth []pulumi.Resource
	// RouteNamespace, when set, is the namespace the backends' Mappings are created in: the edge
	// namespace as the AuthService reports it (AuthService.RouteNamespace), so that a replaced
	// AuthService replaces them too, deleting them first.
	RouteNamespace pulumi.StringInput
	// Mesh, when set, replaces the upstream TLSContext with a service mesh's (upstreamMtls istio
	// or consul): every backend Mapping names it and is addressed the mesh's way.
	Mesh *UpstreamMesh
	// CertHeader is the stack's secret certificate header name (CertHeaderName.ExtAuthHeader; nil:
	// none): every backend Mapping removes it, so no backend learns it.
	CertHeader pulumi.StringInput
}

// EdgeConfig is the Listener, Host, upstream TLSContext and one Mapping per backend.
type EdgeConfig struct {
	pulumi.ResourceState

	Listener   *apiextensions.CustomResource
	Host       *apiextensions.CustomResource
	TLSContext *apiextensions.CustomResource
	Mappings   map[string]*apiextensions.CustomResource // by backend name
}

func (a *EdgeConfigArgs) validate() error {
	var missing []string
	for what, v := range map[string]string{
		"Hostname": a.Hostname, "ServerCert.Name": a.ServerCert.Name,
		"CACert.Name": a.CACert.Name, "ClientCACert.Name": a.ClientCACert.Name, "UpstreamCert.Name": a.UpstreamCert.Name,
	} {
		if v == "" {
			missing = append(missing, what)
		}
	}
	if len(a.Backends) > 0 && len(a.Auth) == 0 {
		missing = append(missing, "Auth (the backends' routes wait for it)")
	}
	if a.Namespace == nil || a.CRDs == nil || a.ServerCert.Resource == nil || a.CACert.Resource == nil || a.ClientCACert.Resource == nil || a.UpstreamCert.Resource == nil {
		missing = append(missing, "Namespace, CRDs and the Secret resources")
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("edge-config: %s required", strings.Join(missing, ", "))
	}
	if !slices.Contains(ClientAuthModes, a.ClientAuth) {
		return fmt.Errorf("edge-config: client auth %q is not one of %s", a.ClientAuth, strings.Join(ClientAuthModes, ", "))
	}
	if a.ProxyProtocol && a.BehindALB {
		return fmt.Errorf("edge-config: an ALB sends no PROXY protocol header; ProxyProtocol is for the NLB")
	}
	if a.BehindALB && EnvoyTerminatesTLS(a.ClientAuth) {
		return fmt.Errorf("edge-config: %s passes TLS through to Envoy; it cannot be behind an ALB", a.ClientAuth)
	}
	return nil
}

// ProxyProtocolStack is the Listener's protocolStack behind an NLB that sends PROXY protocol v2:
// the PROXY header comes first on the connection, then the client's TLS. Not Emissary's
// "HTTPSPROXY" shorthand: in 4.1.0 it is [TLS, PROXY, HTTP, TCP] (irlistener.py), which puts the
// TLS inspector before the PROXY filter and breaks every handshake (emissary#4153).
var ProxyProtocolStack = []any{"PROXY", "TLS", "HTTP", "TCP"}

// ListenerSpec is the one Envoy listener: HTTPS on 8443. There is no cleartext listener: nothing
// sends to 8080 (the ALB has only an HTTPS listener and talks HTTPS to 8443; the NLB forwards
// 443 → 8443 only), so opening it would only add a port to defend. proxyProtocol: the NLB
// prefixes each connection with a PROXY v2 header carrying the client's address (nlb-passthrough).
func ListenerSpec(behindALB, proxyProtocol bool) map[string]any {
	spec := map[string]any{
		"port":        AmbassadorHTTPSPort,
		"protocol":    "HTTPS",
		"hostBinding": map[string]any{"namespace": map[string]any{"from": "SELF"}},
	}
	if proxyProtocol {
		// Envoy then takes the client's address from the PROXY header (the NLB's own address
		// otherwise), so jwt-auth, rate limits and logs see the client. protocol and
		// protocolStack are exclusive.
		delete(spec, "protocol")
		spec["protocolStack"] = ProxyProtocolStack
	}
	// securityModel XFP, never SECURE: Emissary gives the HTTPS listener a second, plaintext filter
	// chain (httphost-shared, for any connection the TLS inspector finds is not TLS) and adds
	// every route to it. Under SECURE those routes match unconditionally, so a client speaking
	// plain HTTP to 8443 is routed; under XFP each route requires X-Forwarded-Proto: https and
	// the Host's insecure action (Reject) drops the http ones (envoy/v3/v3listener.py,
	// compute_http_routes, at v4.1.0). Envoy sets X-Forwarded-Proto itself from the connection
	// unless the Listener trusts a hop (l7Depth): TestEnvoyServesNoPlaintext.
	spec["securityModel"] = "XFP"
	if behindALB {
		// One ALB in front: trust its X-Forwarded-Proto and exactly one X-Forwarded-For hop, so
		// the client address is the one the ALB saw and a client cannot spoof it.
		spec["l7Depth"] = 1
	} else {
		// Every connection on this port is the client's own TLS session: no proxy's forwarding
		// headers are trusted, and Envoy overwrites any X-Forwarded-Proto a client sends.
		spec["l7Depth"] = 0
	}
	return spec
}

// HostSpec serves the edge hostname on TLS 1.3 only and rejects anything Envoy considers insecure.
// verifyClientCerts asks clients for a certificate issued by the CA in caSecret (the trusted-client CA).
func HostSpec(hostname string, behindALB, verifyClientCerts bool, serverCertSecret, caSecret string) map[string]any {
	tls := map[string]any{
		"min_tls_version": "v1.3",
		"max_tls_version": "v1.3",
		"alpn_protocols":  "h2,http/1.1",
	}
	if verifyClientCerts {
		// Ask for a client certificate and verify it against the client CA, but do not require one:
		// a client without a certificate must then present a JWT, which jwt-auth checks.
		tls["ca_secret"] = caSecret
		tls["cert_required"] = false
	}
	if behindALB {
		// The ALB opens its TLS connection to Envoy without SNI, and Emissary matches a Host's TLS
		// filter chain on SNI = hostname, so a named Host would reset every ALB connection
		// (filter_chain_not_found). "*" gives a chain without a server-name match; routes still
		// match only the edge hostname because every Mapping sets it (an :authority match).
		// TLS 1.3 on this hop works: with a TLS 1.3 listener policy the ALB talks to targets with
		// ELBSecurityPolicy-TLS13-1-0-2021-06, which includes 1.3 (AWS ALB "security policies").
		hostname = "*"
	}
	return map[string]any{
		"hostname":  hostname,
		"tlsSecret": map[string]any{"name": serverCertSecret},
		// The certificate comes from ztedge's PKI. Edge Stack would otherwise run ACME for a Host
		// whose Secret is not there yet; Emissary ignores the field.
		"acmeProvider":    map[string]any{"authority": "none"},
		"tls":             tls,
		"requestPolicy":   map[string]any{"insecure": map[string]any{"action": "Reject"}},
		"mappingSelector": map[string]any{"matchLabels": toAnyMap(EdgeMappingLabels())},
	}
}

// UpstreamTLSContextSpec is used only to originate TLS to backends (hosts: []): Ambassador presents
// the upstream client certificate and verifies the backend's certificate chain against the CA.
func UpstreamTLSContextSpec(upstreamSecret, caSecret string) map[string]any {
	return map[string]any{
		"hosts":           []any{},
		"secret":          upstreamSecret,
		"ca_secret":       caSecret,
		"min_tls_version": "v1.3",
		"max_tls_version": "v1.3",
	}
}

// Defaults of a backend's route when its config leaves them out.
const (
	// DefaultTimeoutMs is a route's timeout when a backend sets none (Emissary's own default).
	DefaultTimeoutMs  = 15000
	corsMaxAgeSeconds = "600"
)

var (
	defaultCorsMethods = []string{"GET", "POST"}
	defaultCorsHeaders = []string{"Authorization", "Content-Type"}
)

// MappingSpec routes one backend: its prefix on the edge hostname to https://<service>.<namespace>:<port>
// with mutual TLS (tls: upstream). There is no bypass_auth: every request goes through jwt-auth,
// whose answer sets X-User-ID and X-User-Permissions (ext_authz overwrites any copy the client sent).
// A Mapping-level remove_request_headers would not help: Envoy applies it in the router, after
// ext_authz, so it would strip the identity jwt-auth just added.
func MappingSpec(b Backend, hostname string) map[string]any {
	timeout := b.TimeoutMs
	if timeout == 0 {
		timeout = DefaultTimeoutMs
	}
	spec := map[string]any{
		"hostname": hostname,
		"prefix":   b.Prefix,
		// Emissary's default, spelled out: the backend sees paths relative to its prefix
		// (/api/orders/items → /items). jwt-auth checks the original path.
		"rewrite":    "/",
		"service":    fmt.Sprintf("https://%s.%s:%d", b.ServiceName(), b.Namespace, b.Port),
		"tls":        UpstreamTLSContext,
		"timeout_ms": timeout,
	}
	if len(b.Origins) > 0 {
		spec["cors"] = map[string]any{
			"origins":     stringsAny(b.Origins),
			"methods":     stringsAny(orDefault(b.Methods, defaultCorsMethods)),
			"headers":     stringsAny(orDefault(b.Headers, defaultCorsHeaders)),
			"credentials": b.Credentials,
			"max_age":     corsMaxAgeSeconds,
		}
	}
	if cb := b.CircuitBreaker; cb != nil {
		breaker := map[string]any{"priority": "default"}
		for k, v := range map[string]int{
			"max_connections": cb.MaxConnections, "max_pending_requests": cb.MaxPendingRequests,
			"max_requests": cb.MaxRequests, "max_retries": cb.MaxRetries,
		} {
			if v > 0 { // 0 keeps Envoy's default for that limit
				breaker[k] = v
			}
		}
		spec["circuit_breakers"] = []any{breaker}
	}
	if r := b.Retries; r != nil {
		policy := map[string]any{"retry_on": r.RetryOn, "num_retries": r.NumRetries}
		if r.PerTryTimeoutMs > 0 {
			// Passed to Envoy as a protobuf Duration, which only takes seconds ("1.5s").
			policy["per_try_timeout"] = fmt.Sprintf("%.3fs", float64(r.PerTryTimeoutMs)/1000)
		}
		spec["retry_policy"] = policy
	}
	if labels := RateLimitLabels(b); labels != nil {
		spec["labels"] = labels
	}
	return spec
}

// NewEdgeConfig creates the Listener, Host, upstream TLSContext and the backends' Mappings.
func NewEdgeConfig(ctx *pulumi.Context, name string, args *EdgeConfigArgs, opts ...pulumi.ResourceOption) (*EdgeConfig, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	c := &EdgeConfig{Mappings: map[string]*apiextensions.CustomResource{}}
	child, err := register(ctx, "ztedge:edge:EdgeConfig", name, c, opts)
	if err != nil {
		return nil, err
	}
	objectIn := func(namespace pulumi.StringInput, kind, objName string, labels map[string]string, spec map[string]any, after ...pulumi.Resource) (*apiextensions.CustomResource, error) {
		return newAmbassadorObject(ctx, name+"-"+strings.ToLower(kind)+"-"+objName, kind, objName, namespace, labels, spec,
			child, pulumi.DependsOn(append([]pulumi.Resource{args.CRDs}, after...)))
	}
	object := func(kind, objName string, labels map[string]string, spec map[string]any, after ...pulumi.Resource) (*apiextensions.CustomResource, error) {
		return objectIn(args.Namespace, kind, objName, labels, spec, after...)
	}

	if c.Listener, err = object("Listener", "https", nil, ListenerSpec(args.BehindALB, args.ProxyProtocol)); err != nil {
		return nil, err
	}
	verify := EnvoyTerminatesTLS(args.ClientAuth)
	host := HostSpec(args.Hostname, args.BehindALB, verify, args.ServerCert.Name, args.ClientCACert.Name)
	hostSecrets := []pulumi.Resource{args.ServerCert.Resource}
	if verify {
		hostSecrets = append(hostSecrets, args.ClientCACert.Resource)
	}
	if c.Host, err = object("Host", EdgeHostName, nil, host, hostSecrets...); err != nil {
		return nil, err
	}
	tlsName := UpstreamTLSContext
	if m := args.Mesh; m != nil {
		tlsName = m.TLSContext
		c.TLSContext, err = object("TLSContext", m.TLSContext, nil, m.Spec, m.After...)
	} else {
		c.TLSContext, err = object("TLSContext", UpstreamTLSContext, nil, UpstreamTLSContextSpec(args.UpstreamCert.Name, args.CACert.Name),
			args.UpstreamCert.Resource, args.CACert.Resource)
	}
	if err != nil {
		return nil, err
	}
	for _, b := range args.Backends {
		// A route appears only once auth can check it, and the TLSContext it names (and its rate
		// limit) exist.
		after := append([]pulumi.Resource{c.TLSContext}, args.Auth...)
		if b.RateLimit != nil {
			after = append(after, args.RateLimits...)
		}
		spec := MappingSpec(b, args.Hostname)
		spec["tls"] = tlsName
		if args.CertHeader != nil {
			// Removed by Envoy's router, after ext_authz has passed it to jwt-auth.
			spec["remove_request_headers"] = []any{args.CertHeader}
		}
		if args.Mesh != nil && args.Mesh.Route != nil {
			args.Mesh.Route(b, spec)
		}
		namespace := args.Namespace
		if args.RouteNamespace != nil {
			namespace = args.RouteNamespace
		}
		m, err := objectIn(namespace, "Mapping", b.Name, EdgeMappingLabels(), spec, after...)
		if err != nil {
			return nil, err
		}
		c.Mappings[b.Name] = m
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{})
}

// newAmbassadorObject registers one getambassador.io/v3alpha1 object with a fixed metadata.name:
// other objects refer to it by that name (Mappings name the TLSContext), so it must not be auto-named.
func newAmbassadorObject(ctx *pulumi.Context, logical, kind, name string, namespace pulumi.StringInput, labels map[string]string, spec map[string]any, opts ...pulumi.ResourceOption) (*apiextensions.CustomResource, error) {
	all := map[string]string{"app.kubernetes.io/part-of": "ztedge", "app.kubernetes.io/managed-by": "pulumi"}
	for k, v := range labels {
		all[k] = v
	}
	return apiextensions.NewCustomResource(ctx, logical, &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String(AmbassadorAPIVersion),
		Kind:       pulumi.String(kind),
		Metadata: &metav1.ObjectMetaArgs{
			Name:      pulumi.String(name),
			Namespace: namespace,
			Labels:    pulumi.ToStringMap(all),
		},
		OtherFields: kubernetes.UntypedArgs{"spec": spec},
	}, opts...)
}

func orDefault(v, def []string) []string {
	if len(v) == 0 {
		return def
	}
	return v
}

func stringsAny(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}
