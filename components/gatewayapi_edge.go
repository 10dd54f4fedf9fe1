package components

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The edge on Envoy Gateway: the same contract as EdgeConfig (components/edgeconfig.go) and the
// auth layer's Ambassador objects, in Gateway API and Envoy Gateway v1.9.1 objects.
//
//	Listener+Host          → Gateway (one HTTPS listener, no HTTP one) + ClientTrafficPolicy
//	AuthService            → SecurityPolicy extAuth on the Gateway and on every backend route
//	/token, JWKS Mappings  → HTTPRoutes whose SecurityPolicy has no extAuth (the only two)
//	Mapping per backend    → HTTPRoute + SecurityPolicy (extAuth, CORS) + BackendTrafficPolicy
//	upstream TLSContext    → EnvoyProxy backendTLS client certificate + BackendTLSPolicy
const (
	// GatewayListenerName is the Gateway's only listener.
	GatewayListenerName = "https"
	// EdgeCAConfigMap, in each backend namespace, carries the edge CA (ca.crt) that the
	// BackendTLSPolicy verifies the backend's server certificate with.
	EdgeCAConfigMap = "ztedge-edge-ca"
	// GatewayAuthPolicy is the Gateway-wide ext_authz: a route nobody gave a policy is still checked.
	GatewayAuthPolicy = "edge-auth"
	// AuthPublicPolicy is the SecurityPolicy of the /token and JWKS routes: no extAuth.
	AuthPublicPolicy = AuthName + "-public"
)

// AuthRouteNames are the HTTPRoutes of jwt-auth's unchecked paths.
var AuthRouteNames = []string{AuthName + "-token", AuthName + "-jwks"}

// GatewaySpec is the edge Gateway: HTTPS on 443 with the PKI's server certificate, routes from
// the edge namespace only. Behind an ALB the listener has no hostname: the ALB connects without
// SNI (see HostSpec); the routes still match the edge hostname only.
func GatewaySpec(hostname string, behindALB bool, serverSecret string) map[string]any {
	listener := map[string]any{
		"name":     GatewayListenerName,
		"port":     GatewayHTTPSPort,
		"protocol": "HTTPS",
		"tls": map[string]any{
			"mode":            "Terminate",
			"certificateRefs": []any{map[string]any{"kind": "Secret", "name": serverSecret}},
		},
		"allowedRoutes": map[string]any{
			"namespaces": map[string]any{"from": "Same"},
			"kinds":      []any{map[string]any{"kind": "HTTPRoute"}},
		},
	}
	if !behindALB {
		listener["hostname"] = hostname
	}
	return map[string]any{"gatewayClassName": EnvoyGatewayClassName, "listeners": []any{listener}}
}

func gatewayParent() []any {
	return []any{map[string]any{"name": GatewayName, "sectionName": GatewayListenerName}}
}

func msDuration(ms int) string {
	if ms%1000 == 0 {
		return fmt.Sprintf("%ds", ms/1000)
	}
	return fmt.Sprintf("%dms", ms)
}

// BackendRouteSpec routes one backend's prefix on the edge hostname to its Service, the prefix
// replaced by "/" as Emissary's rewrite does (jwt-auth checks the original path), without the
// stack's secret certificate header (certHeader, nil: none), which the router removes after
// ext_authz has passed it to jwt-auth.
func BackendRouteSpec(b Backend, hostname string, certHeader pulumi.StringInput) map[string]any {
	timeout := b.TimeoutMs
	if timeout == 0 {
		timeout = DefaultTimeoutMs
	}
	filters := []any{map[string]any{"type": "URLRewrite", "urlRewrite": map[string]any{
		"path": map[string]any{"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"},
	}}}
	if certHeader != nil {
		filters = append(filters, map[string]any{"type": "RequestHeaderModifier", "requestHeaderModifier": map[string]any{"remove": []any{certHeader}}})
	}
	return map[string]any{
		"parentRefs": gatewayParent(),
		"hostnames":  []any{hostname},
		"rules": []any{map[string]any{
			"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": b.Prefix}}},
			"filters":     filters,
			"backendRefs": []any{map[string]any{"name": b.ServiceName(), "namespace": b.Namespace, "port": b.Port}},
			"timeouts":    map[string]any{"request": msDuration(timeout)},
		}},
	}
}

// AuthRouteSpec routes exactly one path and method on the edge hostname to jwt-auth.
func AuthRouteSpec(hostname, path, method string, timeoutMs int) map[string]any {
	return map[string]any{
		"parentRefs": gatewayParent(),
		"hostnames":  []any{hostname},
		"rules": []any{map[string]any{
			"matches":     []any{map[string]any{"path": map[string]any{"type": "Exact", "value": path}, "method": method}},
			"backendRefs": []any{map[string]any{"name": AuthName, "port": JwtAuth.Port}},
			"timeouts":    map[string]any{"request": msDuration(timeoutMs)},
		}},
	}
}

// ExtAuthSpec is jwt-auth as ext_authz, as AuthServiceSpec is for Emissary: /auth/<path>, only
// the headers jwt-auth reads (certHeader: CertHeaderName.ExtAuthHeader), its identity headers overwrite
// the client's, fail closed with 503.
func ExtAuthSpec(certHeader pulumi.StringInput) map[string]any {
	return map[string]any{
		"http": map[string]any{
			"backendRefs":      []any{map[string]any{"name": AuthName, "port": JwtAuth.Port}},
			"path":             AuthCheckPrefix,
			"headersToBackend": stringsAny(AuthResponseHeaders),
		},
		"headersToExtAuth": authRequestHeaders(certHeader),
		"failOpen":         false,
		"statusOnError":    503,
		"timeout":          msDuration(authCheckTimeoutMs),
	}
}

func routeTarget(names ...string) []any {
	out := make([]any, 0, len(names))
	for _, n := range names {
		out = append(out, map[string]any{"group": GatewayAPIGroup, "kind": "HTTPRoute", "name": n})
	}
	return out
}

func gatewayTarget() []any {
	return []any{map[string]any{"group": GatewayAPIGroup, "kind": "Gateway", "name": GatewayName}}
}

// BackendSecuritySpec is a backend route's policy: ext_authz (a route policy replaces the
// Gateway's, so it is spelled again) and CORS.
func BackendSecuritySpec(b Backend, certHeader pulumi.StringInput) map[string]any {
	spec := map[string]any{"targetRefs": routeTarget(b.Name), "extAuth": ExtAuthSpec(certHeader)}
	if len(b.Origins) > 0 {
		spec["cors"] = map[string]any{
			"allowOrigins":     stringsAny(b.Origins),
			"allowMethods":     stringsAny(orDefault(b.Methods, defaultCorsMethods)),
			"allowHeaders":     stringsAny(orDefault(b.Headers, defaultCorsHeaders)),
			"allowCredentials": b.Credentials,
			"maxAge":           corsMaxAgeSeconds + "s",
		}
	}
	return spec
}

// GatewaySecuritySpec checks every route of the Gateway; AuthPublicSecuritySpec replaces it on
// the two jwt-auth routes with a policy that has no extAuth (a CORS policy open to no origin).
func GatewaySecuritySpec(certHeader pulumi.StringInput) map[string]any {
	return map[string]any{"targetRefs": gatewayTarget(), "extAuth": ExtAuthSpec(certHeader)}
}

func AuthPublicSecuritySpec() map[string]any {
	return map[string]any{"targetRefs": routeTarget(AuthRouteNames...), "cors": map[string]any{"allowOrigins": []any{}}}
}

// ClientTrafficSpec is the client side of the Gateway: TLS 1.3 only; where Envoy terminates the
// client's TLS (nlb-passthrough), an optional client certificate verified against the
// trusted-client CA and handed to jwt-auth in an XFCC that Envoy sets after dropping the
// client's; behind an ALB exactly one trusted X-Forwarded-For hop; with the NLB the PROXY header
// carries the client address. The identity headers jwt-auth sets are removed before anything
// reads them, and the normalisation matches EnvoyNormalisation.
func ClientTrafficSpec(clientAuth string, behindALB, proxyProtocol bool, clientCASecret string) map[string]any {
	tls := map[string]any{"minVersion": "1.3", "maxVersion": "1.3", "alpnProtocols": []any{"h2", "http/1.1"}}
	xfcc := map[string]any{"mode": "Sanitize"}
	if EnvoyTerminatesTLS(clientAuth) {
		tls["clientValidation"] = map[string]any{
			"caCertificateRefs": []any{map[string]any{"kind": "Secret", "name": clientCASecret}},
			// A client without a certificate must present a JWT instead (as Host cert_required false).
			"mode": "VerifyIfGiven",
		}
		xfcc = map[string]any{"mode": "SanitizeSet", "certDetailsToAdd": []any{"Subject", "Cert", "Chain", "URI", "DNS"}}
	}
	spec := map[string]any{
		"targetRefs": gatewayTarget(),
		"tls":        tls,
		"headers": map[string]any{
			"xForwardedClientCert":  xfcc,
			"withUnderscoresAction": "RejectRequest",
			"earlyRequestHeaders":   map[string]any{"remove": stringsAny(AuthResponseHeaders)},
		},
		"path": map[string]any{"escapedSlashesAction": "RejectRequest", "disableMergeSlashes": false},
	}
	if behindALB {
		spec["clientIPDetection"] = map[string]any{"xForwardedFor": map[string]any{"numTrustedHops": AuthTrustedHops(true) - 1}}
	}
	if proxyProtocol {
		spec["proxyProtocol"] = map[string]any{"optional": false}
	}
	return spec
}

// BackendTrafficSpec is a backend route's rate limit, circuit breaker and retries (nil: none).
// The rate limit is Envoy Gateway's local one, per Envoy replica and per X-User-ID: a global
// limit needs Envoy Gateway's rate-limit service and a Redis of its own (not built yet).
func BackendTrafficSpec(b Backend) map[string]any {
	spec := map[string]any{"targetRefs": routeTarget(b.Name)}
	if rl := b.RateLimit; rl != nil {
		spec["rateLimit"] = map[string]any{"type": "Local", "local": map[string]any{"rules": []any{map[string]any{
			"clientSelectors": []any{map[string]any{"headers": []any{map[string]any{"name": "x-user-id", "type": "Distinct"}}}},
			"limit":           map[string]any{"requests": rl.RequestsPerUnit, "unit": strings.ToUpper(rl.Unit[:1]) + rl.Unit[1:]},
		}}}}
	}
	if cb := b.CircuitBreaker; cb != nil {
		breaker := map[string]any{}
		for k, v := range map[string]int{
			"maxConnections": cb.MaxConnections, "maxPendingRequests": cb.MaxPendingRequests,
			"maxParallelRequests": cb.MaxRequests, "maxParallelRetries": cb.MaxRetries,
		} {
			if v > 0 {
				breaker[k] = v
			}
		}
		spec["circuitBreaker"] = breaker
	}
	if r := b.Retries; r != nil {
		retry := map[string]any{"numRetries": r.NumRetries, "retryOn": map[string]any{"triggers": []any{r.RetryOn}}}
		if r.PerTryTimeoutMs > 0 {
			retry["perRetry"] = map[string]any{"timeout": msDuration(r.PerTryTimeoutMs)}
		}
		spec["retry"] = retry
	}
	if len(spec) == 1 {
		return nil
	}
	return spec
}

// BackendTLSSpec makes Envoy originate TLS to the backend's Service and verify its certificate
// (issued by the edge CA for <service>.<namespace>.svc) with the edge CA only.
func BackendTLSSpec(b Backend) map[string]any {
	return map[string]any{
		"targetRefs": []any{map[string]any{"group": "", "kind": "Service", "name": b.ServiceName()}},
		"validation": map[string]any{
			"caCertificateRefs": []any{map[string]any{"group": "", "kind": "ConfigMap", "name": EdgeCAConfigMap}},
			"hostname":          b.ServiceName() + "." + b.Namespace + ".svc",
		},
	}
}

// ReferenceGrantSpec lets the edge namespace's HTTPRoutes name Services in a backend namespace.
func ReferenceGrantSpec(edgeNamespace string) map[string]any {
	return map[string]any{
		"from": []any{map[string]any{"group": GatewayAPIGroup, "kind": "HTTPRoute", "namespace": edgeNamespace}},
		"to":   []any{map[string]any{"group": "", "kind": "Service"}},
	}
}

// GatewayEdgeArgs configures the edge's Gateway API objects.
type GatewayEdgeArgs struct {
	Namespace     pulumi.StringInput // the edge namespace (an output: objects wait for it)
	NamespaceName string
	Hostname      string
	ClientAuth    string
	BehindALB     bool
	ProxyProtocol bool
	Backends      []Backend
	// BackendNamespaces are the backend namespaces by name (outputs of their namespaces).
	BackendNamespaces map[string]pulumi.StringOutput
	CRDs              pulumi.Resource
	Controller        pulumi.Resource // the gateway-helm release
	GatewayClass      pulumi.Resource
	ServerCert        SecretRef
	ClientCACert      SecretRef
	CACertPem         pulumi.StringInput // the edge CA, for BackendTLSPolicy
	// Auth is the auth gate: the Gateway-wide ext_authz is in place before any route, and every
	// route waits for it and for jwt-auth.
	Auth []pulumi.Resource
	// CertHeader is the secret certificate header name ext_authz passes to jwt-auth (nil: none).
	CertHeader pulumi.StringInput
}

// GatewayEdge is the Gateway, its policies and one route per backend.
type GatewayEdge struct {
	pulumi.ResourceState

	Gateway *apiextensions.CustomResource
	// Gate is what exposure waits for: the Gateway, its client policy and its ext_authz.
	Gate []pulumi.Resource
}

func (a *GatewayEdgeArgs) validate() error {
	if a.Namespace == nil || a.NamespaceName == "" || a.Hostname == "" || a.CRDs == nil || a.Controller == nil || a.GatewayClass == nil ||
		a.ServerCert.Resource == nil || a.ClientCACert.Resource == nil || a.CACertPem == nil || len(a.Auth) == 0 {
		return fmt.Errorf("gateway-edge: Namespace(Name), Hostname, CRDs, Controller, GatewayClass, ServerCert, ClientCACert, CACertPem and Auth are required")
	}
	for _, b := range a.Backends {
		if _, ok := a.BackendNamespaces[b.Namespace]; !ok {
			return fmt.Errorf("gateway-edge: backend %q: namespace %q is not in BackendNamespaces", b.Name, b.Namespace)
		}
	}
	return nil
}

// NewGatewayEdge creates the edge's Gateway API objects in order: Gateway-wide client policy and
// ext_authz, then the Gateway, then routes (jwt-auth's with their public policy first, so they are
// never checked by mistake; backends' with their own policies first, so they are never open).
func NewGatewayEdge(ctx *pulumi.Context, name string, args *GatewayEdgeArgs, opts ...pulumi.ResourceOption) (*GatewayEdge, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	c := &GatewayEdge{}
	child, err := register(ctx, "ztedge:edge:GatewayEdge", name, c, opts)
	if err != nil {
		return nil, err
	}
	object := func(kind, version, objName string, ns pulumi.StringInput, spec map[string]any, after ...pulumi.Resource) (*apiextensions.CustomResource, error) {
		group := GatewayAPIGroup
		if strings.HasSuffix(kind, "TrafficPolicy") || kind == "SecurityPolicy" {
			group = EnvoyGatewayGroup
		}
		return newGatewayObject(ctx, name+"-"+strings.ToLower(kind)+"-"+objName, group+"/"+version, kind, objName, true, ns, spec,
			child, pulumi.DependsOn(append([]pulumi.Resource{args.CRDs}, after...)))
	}
	edgeNs := args.Namespace
	clientPolicy, err := object("ClientTrafficPolicy", "v1alpha1", GatewayName, edgeNs,
		ClientTrafficSpec(args.ClientAuth, args.BehindALB, args.ProxyProtocol, args.ClientCACert.Name), args.ClientCACert.Resource)
	if err != nil {
		return nil, err
	}
	gatewayAuth, err := object("SecurityPolicy", "v1alpha1", GatewayAuthPolicy, edgeNs, GatewaySecuritySpec(args.CertHeader), args.Auth...)
	if err != nil {
		return nil, err
	}
	c.Gateway, err = object("Gateway", "v1", GatewayName, edgeNs, GatewaySpec(args.Hostname, args.BehindALB, args.ServerCert.Name),
		args.ServerCert.Resource, args.Controller, args.GatewayClass, clientPolicy, gatewayAuth)
	if err != nil {
		return nil, err
	}
	c.Gate = []pulumi.Resource{c.Gateway, clientPolicy, gatewayAuth}

	public, err := object("SecurityPolicy", "v1alpha1", AuthPublicPolicy, edgeNs, AuthPublicSecuritySpec(), args.Auth...)
	if err != nil {
		return nil, err
	}
	for i, r := range []map[string]any{
		AuthRouteSpec(args.Hostname, TokenPath, "POST", tokenTimeoutMs),
		AuthRouteSpec(args.Hostname, JWKSPath, "GET", jwksTimeoutMs),
	} {
		if _, err := object("HTTPRoute", "v1", AuthRouteNames[i], edgeNs, r, c.Gateway, public); err != nil {
			return nil, err
		}
	}

	caMaps := map[string]pulumi.Resource{}
	for _, ns := range sortedNamespaces(args.BackendNamespaces) {
		nsOut := args.BackendNamespaces[ns]
		cm, err := corev1.NewConfigMap(ctx, name+"-edge-ca-"+ns, &corev1.ConfigMapArgs{
			Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(EdgeCAConfigMap), Namespace: nsOut},
			Data:     pulumi.StringMap{"ca.crt": args.CACertPem},
		}, child)
		if err != nil {
			return nil, err
		}
		grant, err := object("ReferenceGrant", "v1beta1", "ztedge-edge-routes", nsOut, ReferenceGrantSpec(args.NamespaceName))
		if err != nil {
			return nil, err
		}
		caMaps[ns] = cm
		caMaps[ns+"/grant"] = grant
	}
	for _, b := range args.Backends {
		bns := args.BackendNamespaces[b.Namespace]
		backendTLS, err := object("BackendTLSPolicy", "v1", b.Name, bns, BackendTLSSpec(b), caMaps[b.Namespace])
		if err != nil {
			return nil, err
		}
		after := []pulumi.Resource{c.Gateway, backendTLS, caMaps[b.Namespace+"/grant"]}
		security, err := object("SecurityPolicy", "v1alpha1", b.Name, edgeNs, BackendSecuritySpec(b, args.CertHeader), args.Auth...)
		if err != nil {
			return nil, err
		}
		after = append(after, security)
		if spec := BackendTrafficSpec(b); spec != nil {
			traffic, err := object("BackendTrafficPolicy", "v1alpha1", b.Name, edgeNs, spec)
			if err != nil {
				return nil, err
			}
			after = append(after, traffic)
		}
		if _, err := object("HTTPRoute", "v1", b.Name, edgeNs, BackendRouteSpec(b, args.Hostname, args.CertHeader), after...); err != nil {
			return nil, err
		}
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{})
}
