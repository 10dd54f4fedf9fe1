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

// AmbassadorModuleConfig is what a client-auth mode needs in the `ambassador` Module's config
// (AmbassadorArgs.Module). The chart renders that Module from its `module` value and a second
// one would conflict, so ztedge never creates a Module itself.
func AmbassadorModuleConfig(clientAuth string) map[string]any {
	if !EnvoyTerminatesTLS(clientAuth) {
		// Behind an ALB, how far to trust X-Forwarded-For is the Listener's l7Depth, and Envoy's
		// default (SANITIZE) already drops any X-Forwarded-Client-Cert a client sends.
		return map[string]any{}
	}
	return map[string]any{
		// Envoy verified the client's certificate: hand it to jwt-auth in X-Forwarded-Client-Cert.
		// SANITIZE_SET replaces whatever XFCC the client sent, so the header only comes from Envoy.
		"forward_client_cert_details":     "SANITIZE_SET",
		"set_current_client_cert_details": map[string]any{"subject": true, "cert": true, "chain": true, "uri": true, "dns": true},
	}
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
	Backends  []Backend
	// CRDs is the getambassador.io CRD install; every object waits for it.
	CRDs pulumi.Resource
	// ServerCert is Ambassador's server certificate (kubernetes.io/tls).
	ServerCert SecretRef
	// CACert holds the stack CA certificate under tls.crt: Envoy verifies client certificates
	// (nlb-passthrough) and backend server certificates with it.
	CACert SecretRef
	// UpstreamCert is the client certificate Ambassador presents to backends (kubernetes.io/tls).
	UpstreamCert SecretRef
	// RateLimits enforce the backends' rate limits (RateLimiting.Enforcers): Mappings that carry
	// rate-limit labels are created after them, so a route never exists without its limit.
	RateLimits []pulumi.Resource
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
		"CACert.Name": a.CACert.Name, "UpstreamCert.Name": a.UpstreamCert.Name,
	} {
		if v == "" {
			missing = append(missing, what)
		}
	}
	if a.Namespace == nil || a.CRDs == nil || a.ServerCert.Resource == nil || a.CACert.Resource == nil || a.UpstreamCert.Resource == nil {
		missing = append(missing, "Namespace, CRDs and the Secret resources")
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("edge-config: %s required", strings.Join(missing, ", "))
	}
	if !slices.Contains(ClientAuthModes, a.ClientAuth) {
		return fmt.Errorf("edge-config: client auth %q is not one of %s", a.ClientAuth, strings.Join(ClientAuthModes, ", "))
	}
	if a.BehindALB && EnvoyTerminatesTLS(a.ClientAuth) {
		return fmt.Errorf("edge-config: %s passes TLS through to Envoy; it cannot be behind an ALB", a.ClientAuth)
	}
	return nil
}

// ListenerSpec is the one Envoy listener: HTTPS on 8443. There is no cleartext listener: nothing
// sends to 8080 (the ALB has only an HTTPS listener and talks HTTPS to 8443; the NLB forwards
// 443 → 8443 only), so opening it would only add a port to defend.
func ListenerSpec(behindALB bool) map[string]any {
	spec := map[string]any{
		"port":        AmbassadorHTTPSPort,
		"protocol":    "HTTPS",
		"hostBinding": map[string]any{"namespace": map[string]any{"from": "SELF"}},
	}
	if behindALB {
		// One ALB in front: trust its X-Forwarded-Proto and exactly one X-Forwarded-For hop, so
		// the client address is the one the ALB saw and a client cannot spoof it.
		spec["securityModel"] = "XFP"
		spec["l7Depth"] = 1
	} else {
		// Every connection on this port is the client's own TLS session, and no proxy's
		// forwarding headers are trusted.
		spec["securityModel"] = "SECURE"
		spec["l7Depth"] = 0
	}
	return spec
}

// HostSpec serves the edge hostname on TLS 1.3 only and rejects anything Envoy considers insecure.
// verifyClientCerts asks clients for a certificate issued by the CA in caSecret.
func HostSpec(hostname string, behindALB, verifyClientCerts bool, serverCertSecret, caSecret string) map[string]any {
	tls := map[string]any{
		"min_tls_version": "v1.3",
		"max_tls_version": "v1.3",
		"alpn_protocols":  "h2,http/1.1",
	}
	if verifyClientCerts {
		// Ask for a client certificate and verify it against the stack CA, but do not require one:
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
	object := func(kind, objName string, labels map[string]string, spec map[string]any, after ...pulumi.Resource) (*apiextensions.CustomResource, error) {
		return newAmbassadorObject(ctx, name+"-"+strings.ToLower(kind)+"-"+objName, kind, objName, args.Namespace, labels, spec,
			child, pulumi.DependsOn(append([]pulumi.Resource{args.CRDs}, after...)))
	}

	if c.Listener, err = object("Listener", "https", nil, ListenerSpec(args.BehindALB)); err != nil {
		return nil, err
	}
	verify := EnvoyTerminatesTLS(args.ClientAuth)
	host := HostSpec(args.Hostname, args.BehindALB, verify, args.ServerCert.Name, args.CACert.Name)
	hostSecrets := []pulumi.Resource{args.ServerCert.Resource}
	if verify {
		hostSecrets = append(hostSecrets, args.CACert.Resource)
	}
	if c.Host, err = object("Host", EdgeHostName, nil, host, hostSecrets...); err != nil {
		return nil, err
	}
	c.TLSContext, err = object("TLSContext", UpstreamTLSContext, nil, UpstreamTLSContextSpec(args.UpstreamCert.Name, args.CACert.Name),
		args.UpstreamCert.Resource, args.CACert.Resource)
	if err != nil {
		return nil, err
	}
	for _, b := range args.Backends {
		// A route appears only once the TLSContext it names (and its rate limit) exist.
		after := []pulumi.Resource{c.TLSContext}
		if b.RateLimit != nil {
			after = append(after, args.RateLimits...)
		}
		m, err := object("Mapping", b.Name, EdgeMappingLabels(), MappingSpec(b, args.Hostname), after...)
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
