package tests

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/components"
)

// The README's security guarantees, each asserted on the Envoy configuration Emissary 4.1.0's
// compiler generates from every configuration of emissarySources (emissaryconfig_test.go). Each
// test names the JSON path it reads; "listener", "chain" and "route" below are
//
//	static_resources.listeners[*]
//	static_resources.listeners[*].filter_chains[*]
//	...filter_chains[*].filters[http_connection_manager].typed_config.route_config.virtual_hosts[*].routes[*]

const hcmFilter = "envoy.filters.network.http_connection_manager"

// envoyChain is one filter chain of a listener, with its HTTP connection manager.
type envoyChain struct {
	listener string
	address  string
	name     string
	tls      map[string]any // transport_socket.typed_config (nil: plaintext)
	hcm      map[string]any // the http_connection_manager's typed_config
}

func (c envoyChain) String() string { return c.listener + "/" + c.name }

func envoyChains(c *emissaryConfig) []envoyChain {
	var out []envoyChain
	for _, l := range asList(dig(c.envoy, "static_resources", "listeners")) {
		for _, fc := range asList(dig(l, "filter_chains")) {
			ch := envoyChain{listener: str(dig(l, "name")), address: str(dig(l, "address", "socket_address", "address")), name: str(dig(fc, "name"))}
			ch.tls, _ = dig(fc, "transport_socket", "typed_config").(map[string]any)
			for _, f := range asList(dig(fc, "filters")) {
				if dig(f, "name") == hcmFilter {
					ch.hcm, _ = dig(f, "typed_config").(map[string]any)
				}
			}
			out = append(out, ch)
		}
	}
	return out
}

// edgeChains are the chains of the listeners a client can reach (not Emissary's loopback ready
// listener on 127.0.0.1:8006).
func edgeChains(c *emissaryConfig) []envoyChain {
	var out []envoyChain
	for _, ch := range envoyChains(c) {
		if ch.address != "127.0.0.1" {
			out = append(out, ch)
		}
	}
	return out
}

type envoyRoute struct {
	chain envoyChain
	vhost string
	route map[string]any
}

func (r envoyRoute) String() string {
	m, _ := json.Marshal(dig(r.route, "match"))
	return r.chain.String() + " " + r.vhost + " " + string(m)
}

func routesOf(ch envoyChain) []envoyRoute {
	var out []envoyRoute
	for _, vh := range asList(dig(ch.hcm, "route_config", "virtual_hosts")) {
		for _, rt := range asList(dig(vh, "routes")) {
			m, _ := rt.(map[string]any)
			out = append(out, envoyRoute{chain: ch, vhost: str(dig(vh, "name")), route: m})
		}
	}
	return out
}

// headerMatch returns the exact value a route requires of a header ("" when it sets none).
func headerMatch(r envoyRoute, name string) string {
	for _, h := range asList(dig(r.route, "match", "headers")) {
		if strings.EqualFold(str(dig(h, "name")), name) {
			if v, ok := dig(h, "string_match", "exact").(string); ok {
				return v
			}
		}
	}
	return ""
}

// behindALBConfig: the ALB terminates the client's TLS and is the one hop Envoy trusts.
func behindALBConfig(c *emissaryConfig) bool {
	return !strings.HasPrefix(c.name, "local/") && c.edit["ztedge:clientAuth"] != components.ClientAuthNLBPassthrough
}

// forEachCompiled runs f for every compiled configuration as a subtest.
func forEachCompiled(t *testing.T, f func(t *testing.T, c *emissaryConfig)) {
	for _, c := range compiledEmissaryConfigs(t) {
		t.Run(c.name, func(t *testing.T) { f(t, c) })
	}
}

// TestEnvoyCompilesOurObjectsCleanly: the compiler reports no error and no notice (an ignored
// field, an unresolved Secret, a Mapping it dropped are reported there), and every configuration
// the matrix names compiles (none refused by the program). Reads: errors, notices.
func TestEnvoyCompilesOurObjectsCleanly(t *testing.T) {
	forEachCompiled(t, func(t *testing.T, c *emissaryConfig) {
		if len(c.errors) > 0 {
			t.Errorf("compiler errors: %v", c.errors)
		}
		if len(c.notices) > 0 {
			t.Errorf("compiler notices: %v", c.notices)
		}
	})
	if len(emissaryRefused) > 0 {
		t.Errorf("configurations the program refused (the matrix must hold valid ones only): %v", emissaryRefused)
	}
}

// TestEnvoyServesNoPlaintext: Emissary gives the HTTPS listener a plaintext chain besides the TLS
// one. Every route on it must require X-Forwarded-Proto: https, and where no hop is trusted
// (xff_num_trusted_hops 0: Envoy overwrites that header from the connection, which on this chain
// is cleartext) such a route can never match. Behind an ALB one hop is trusted: the header is the
// ALB's, and a cleartext connection to 8443 can only come from the load balancer's subnets
// (TestEdgeNetworkPolicyAdmitsOnlyTheLoadBalancer). Reads: chain.transport_socket,
// chain.filters[hcm].typed_config.xff_num_trusted_hops and use_remote_address, route.match.headers.
func TestEnvoyServesNoPlaintext(t *testing.T) {
	forEachCompiled(t, func(t *testing.T, c *emissaryConfig) {
		wantHops := 0.0
		if behindALBConfig(c) {
			wantHops = 1
		}
		tlsChains := 0
		for _, ch := range edgeChains(c) {
			if ch.tls != nil {
				tlsChains++
				continue
			}
			if ch.hcm == nil {
				t.Errorf("%s: a plaintext chain that is not HTTP", ch)
				continue
			}
			if dig(ch.hcm, "use_remote_address") != true {
				t.Errorf("%s: use_remote_address is %v: Envoy would not set X-Forwarded-Proto itself", ch, dig(ch.hcm, "use_remote_address"))
			}
			hops, _ := dig(ch.hcm, "xff_num_trusted_hops").(float64)
			if hops != wantHops {
				t.Errorf("%s: xff_num_trusted_hops %v, want %v", ch, hops, wantHops)
			}
			for _, r := range routesOf(ch) {
				if headerMatch(r, "x-forwarded-proto") != "https" {
					t.Errorf("cleartext is routed: %s has no x-forwarded-proto: https match", r)
				}
			}
		}
		if tlsChains == 0 {
			t.Errorf("no TLS filter chain on the edge listener (an unresolved certificate Secret?)")
		}
	})
}

// TestEnvoyTLS13Only: every TLS chain negotiates TLS 1.3 and nothing else; where Envoy terminates
// the client's TLS and client certificates are on (nlb-passthrough) it asks for a client certificate, verified against
// the trusted-client CA, without requiring one (no certificate: the JWT path). Reads:
// chain.transport_socket.typed_config.common_tls_context.tls_params,
// ...common_tls_context.validation_context.trusted_ca, ...require_client_certificate.
func TestEnvoyTLS13Only(t *testing.T) {
	forEachCompiled(t, func(t *testing.T, c *emissaryConfig) {
		for _, ch := range edgeChains(c) {
			if ch.tls == nil {
				continue
			}
			params := dig(ch.tls, "common_tls_context", "tls_params")
			if min, max := str(dig(params, "tls_minimum_protocol_version")), str(dig(params, "tls_maximum_protocol_version")); min != "TLSv1_3" || max != "TLSv1_3" {
				t.Errorf("%s: TLS %s..%s, want TLSv1_3 only", ch, min, max)
			}
			verify := components.EnvoyTerminatesTLS(c.edit["ztedge:clientAuth"])
			ca := dig(ch.tls, "common_tls_context", "validation_context", "trusted_ca")
			if verify != (ca != nil) {
				t.Errorf("%s: client certificate validation %v, want %v", ch, ca != nil, verify)
			}
			if dig(ch.tls, "require_client_certificate") == true {
				t.Errorf("%s: a client certificate is required: clients with a JWT only are cut off", ch)
			}
		}
	})
}

// TestEnvoyChecksEveryBackendRoute: the ext_authz filter (jwt-auth) runs on every chain, fails
// closed, hands jwt-auth's X-User-ID and X-User-Permissions to the backend (overwriting a
// client's copy), and no route switches it off except POST /token and GET on the JWKS. Reads:
// hcm.http_filters[envoy.filters.http.ext_authz].typed_config (failure_mode_allow,
// http_service.authorization_response.allowed_upstream_headers),
// route.typed_per_filter_config["envoy.filters.http.ext_authz"].disabled.
func TestEnvoyChecksEveryBackendRoute(t *testing.T) {
	forEachCompiled(t, func(t *testing.T, c *emissaryConfig) {
		routes := 0
		for _, ch := range edgeChains(c) {
			var authz any
			for _, f := range asList(dig(ch.hcm, "http_filters")) {
				if dig(f, "name") == "envoy.filters.http.ext_authz" {
					authz = dig(f, "typed_config")
				}
			}
			if authz == nil {
				t.Errorf("%s: no ext_authz filter", ch)
				continue
			}
			if dig(authz, "failure_mode_allow") == true {
				t.Errorf("%s: ext_authz fails open", ch)
			}
			allowed, _ := json.Marshal(dig(authz, "http_service", "authorization_response", "allowed_upstream_headers"))
			for _, h := range []string{"x-user-id", "x-user-permissions"} {
				if !strings.Contains(strings.ToLower(string(allowed)), `"`+h+`"`) {
					t.Errorf("%s: jwt-auth's %s does not reach the backend (allowed_upstream_headers %s)", ch, h, allowed)
				}
			}
			for _, r := range routesOf(ch) {
				routes++
				off := dig(r.route, "typed_per_filter_config", "envoy.filters.http.ext_authz", "disabled") == true
				path, method := str(dig(r.route, "match", "path")), headerMatch(r, ":method")
				public := (path == components.TokenPath && method == "POST") || (path == components.JWKSPath && method == "GET")
				switch {
				case off && !public:
					t.Errorf("the auth check is off on %s", r)
				case public && !off:
					t.Errorf("%s is checked: callers of /token and the JWKS have no token yet", r)
				}
			}
		}
		if routes == 0 {
			t.Error("no routes")
		}
	})
}

// TestEnvoyPublishesNoInternalRoutes: the edge's virtual hosts route only ztedge's Mappings:
// no /ambassador/v0/ (Emissary's check_ready and check_alive, proxied to the admin port) and no
// route to a cluster on 127.0.0.1. Reads: route.match.prefix, route.route.cluster and the
// cluster's load_assignment.
func TestEnvoyPublishesNoInternalRoutes(t *testing.T) {
	forEachCompiled(t, func(t *testing.T, c *emissaryConfig) {
		local := map[string]bool{}
		for _, cl := range asList(dig(c.envoy, "static_resources", "clusters")) {
			b, _ := json.Marshal(dig(cl, "load_assignment"))
			if strings.Contains(string(b), `"address":"127.0.0.1"`) {
				local[str(dig(cl, "name"))] = true
			}
		}
		for _, ch := range edgeChains(c) {
			for _, r := range routesOf(ch) {
				prefix := str(dig(r.route, "match", "prefix"))
				if strings.HasPrefix(prefix, "/ambassador/") {
					t.Errorf("Emissary's internal route is public: %s", r)
				}
				if cl := str(dig(r.route, "route", "cluster")); local[cl] {
					t.Errorf("%s goes to the pod's loopback (cluster %s)", r, cl)
				}
			}
		}
	})
}

// TestEnvoyOriginatesMTLSToBackends: every cluster a backend route sends to speaks TLS 1.3 to
// the backend, presents Ambassador's client certificate and verifies the backend's chain.
// Reads: route.route.cluster, cluster.transport_socket.typed_config.common_tls_context
// (tls_certificates, validation_context.trusted_ca, tls_params).
func TestEnvoyOriginatesMTLSToBackends(t *testing.T) {
	forEachCompiled(t, func(t *testing.T, c *emissaryConfig) {
		clusters := map[string]any{}
		for _, cl := range asList(dig(c.envoy, "static_resources", "clusters")) {
			clusters[str(dig(cl, "name"))] = cl
		}
		backends := 0
		for _, ch := range edgeChains(c) {
			for _, r := range routesOf(ch) {
				path := str(dig(r.route, "match", "path"))
				if path == components.TokenPath || path == components.JWKSPath {
					continue // jwt-auth, in Ambassador's namespace
				}
				name := str(dig(r.route, "route", "cluster"))
				cl, ok := clusters[name]
				if !ok {
					t.Errorf("%s: cluster %q is not defined", r, name)
					continue
				}
				backends++
				ctx := dig(cl, "transport_socket", "typed_config", "common_tls_context")
				if ctx == nil {
					t.Errorf("cluster %s (%s): no upstream TLS", name, r)
					continue
				}
				if len(asList(dig(ctx, "tls_certificates"))) == 0 {
					t.Errorf("cluster %s: presents no client certificate", name)
				}
				if dig(ctx, "validation_context", "trusted_ca") == nil {
					t.Errorf("cluster %s: does not verify the backend's certificate", name)
				}
				if v := str(dig(ctx, "tls_params", "tls_minimum_protocol_version")); v != "TLSv1_3" {
					t.Errorf("cluster %s: upstream TLS minimum %s", name, v)
				}
			}
		}
		if backends == 0 {
			t.Error("no backend routes")
		}
	})
}

// TestEnvoyIgnoresOtherNamespaces: only ztedge configures Ambassador. A Service annotation that
// names Ambassador's namespace and the edge Host's label, and a Mapping in a backend's namespace
// (hostileObjects, both with bypass_auth and a forged X-User-ID), produce no route: Emissary
// watches its own namespace only. Reads: route.match.prefix on every chain, and the compiler's
// errors (a dropped object is not an error).
func TestEnvoyIgnoresOtherNamespaces(t *testing.T) {
	forEachCompiled(t, func(t *testing.T, c *emissaryConfig) {
		for _, ch := range envoyChains(c) {
			for _, r := range routesOf(ch) {
				if strings.HasPrefix(str(dig(r.route, "match", "prefix")), hostilePrefix) {
					t.Errorf("an object outside Ambassador's namespace is routed: %s (bypass_auth: %v)", r,
						dig(r.route, "typed_per_filter_config", "envoy.filters.http.ext_authz", "disabled"))
				}
			}
		}
	})
}
