package tests

import (
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ztedge/ztedge/components"
)

// One view of the Envoy configuration an engine generates, whichever engine generated it: the
// guarantee table (guarantees_test.go) reads this view only, so both engines are held to the same
// assertions. Emissary's compiler writes a static bootstrap (snake_case, routes inline); egctl
// writes Envoy admin config dumps (protojson camelCase, routes and endpoints by name through RDS
// and EDS). Both are brought to Envoy's proto field names (snake_case) and indexed by name.
//
//	listener  Emissary: static_resources.listeners[*]; Envoy Gateway: ListenersConfigDump.dynamic_listeners[*].active_state.listener
//	chain     listener.filter_chains[*], with its http_connection_manager's typed_config
//	routes    hcm.route_config (inline) or RoutesConfigDump.dynamic_route_configs[*].route_config named by hcm.rds.route_config_name
//	clusters  static_resources.clusters[*] or ClustersConfigDump.dynamic_active_clusters[*].cluster
//	endpoints cluster.load_assignment or EndpointsConfigDump.dynamic_endpoint_configs[*].endpoint_config

const (
	engineEmissary     = "emissary"
	engineEnvoyGateway = "envoy-gateway"
	hcmFilter          = "envoy.filters.network.http_connection_manager"
	extAuthzFilter     = "envoy.filters.http.ext_authz"
	// egReadinessListener is Envoy Gateway's own /ready endpoint (plain HTTP on 19003, answered by
	// the health_check filter; the NetworkPolicy admits only the load balancer to it).
	egReadinessListener = "envoy-gateway-proxy-ready-0.0.0.0-19003"
)

// envoyView is one configuration (stack × settings) as one engine's Envoy would run it.
type envoyView struct {
	engine, name string
	edit         map[string]string
	chains       []envoyChain
	routeConfigs map[string]any
	clusters     map[string]map[string]any
	endpoints    map[string]any // ClusterLoadAssignment by cluster name
	// certHeader is the stack's secret name for the ALB's certificate header, as its jwt-auth
	// Secret holds it ("" without one).
	certHeader string
}

func (v *envoyView) String() string { return v.engine + "/" + v.name }

// clientAuth is the configuration's mode (every source names it).
func (v *envoyView) clientAuth() string { return v.edit["ztedge:clientAuth"] }

// behindALB: the ALB terminates the client's TLS and is the one hop Envoy trusts.
func (v *envoyView) behindALB() bool {
	return !strings.HasPrefix(v.name, "local/") && v.clientAuth() != components.ClientAuthNLBPassthrough
}

// envoyChain is one filter chain of a listener, with its HTTP connection manager.
type envoyChain struct {
	listener string
	address  string
	name     string
	// isDefault: the listener's default_filter_chain.
	isDefault bool
	tls       map[string]any // transport_socket.typed_config (nil: plaintext)
	hcm       map[string]any // the http_connection_manager's typed_config
}

func (c envoyChain) String() string { return c.listener + "/" + c.name }

// loopback: a listener only the pod itself reaches (Emissary's ready listener on 127.0.0.1:8006).
func (c envoyChain) loopback() bool { return c.address == "127.0.0.1" }

// edgeChains are the chains that serve clients: not loopback, not Envoy Gateway's readiness
// listener (TestEnvoyPublishesNoInternalRoutes checks it routes nowhere).
func (v *envoyView) edgeChains() []envoyChain {
	var out []envoyChain
	for _, ch := range v.chains {
		if !ch.loopback() && ch.listener != egReadinessListener {
			out = append(out, ch)
		}
	}
	return out
}

func chainsOf(listeners []any) []envoyChain {
	var out []envoyChain
	for _, l := range listeners {
		// The default chain serves connections no filter_chain_match selects: a chain like the others.
		matched := asList(dig(l, "filter_chains"))
		fcs := matched
		if d := dig(l, "default_filter_chain"); d != nil {
			fcs = append(fcs, d)
		}
		for i, fc := range fcs {
			ch := envoyChain{listener: text(dig(l, "name")), address: text(dig(l, "address", "socket_address", "address")), name: text(dig(fc, "name")), isDefault: i >= len(matched)}
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

type envoyRoute struct {
	chain envoyChain
	vhost string
	route map[string]any
}

func (r envoyRoute) String() string {
	m, _ := json.Marshal(dig(r.route, "match"))
	return r.chain.String() + " " + r.vhost + " " + string(m)
}

func (r envoyRoute) path() string { return text(dig(r.route, "match", "path")) }
func (r envoyRoute) prefix() string {
	return text(dig(r.route, "match", "prefix")) + text(dig(r.route, "match", "path_separated_prefix"))
}
func (r envoyRoute) cluster() string { return text(dig(r.route, "route", "cluster")) }

// public: the two routes a caller without a token must reach (POST /token, GET on the JWKS).
func (r envoyRoute) public() bool {
	method := headerMatch(r, ":method")
	return (r.path() == components.TokenPath && method == "POST") || (r.path() == components.JWKSPath && method == "GET")
}

// routesOf are a chain's routes, inline (Emissary) or through RDS (Envoy Gateway).
func (v *envoyView) routesOf(ch envoyChain) []envoyRoute {
	rc := dig(ch.hcm, "route_config")
	if name := text(dig(ch.hcm, "rds", "route_config_name")); name != "" {
		rc = v.routeConfigs[name]
	}
	var out []envoyRoute
	for _, vh := range asList(dig(rc, "virtual_hosts")) {
		for _, rt := range asList(dig(vh, "routes")) {
			out = append(out, envoyRoute{chain: ch, vhost: text(dig(vh, "name")), route: asMap(rt)})
		}
	}
	return out
}

// headerMatch returns the exact value a route requires of a header ("" when it sets none).
func headerMatch(r envoyRoute, name string) string {
	for _, h := range asList(dig(r.route, "match", "headers")) {
		if strings.EqualFold(text(dig(h, "name")), name) {
			if v, ok := dig(h, "string_match", "exact").(string); ok {
				return v
			}
		}
	}
	return ""
}

// extAuthzFilters are the chain's ext_authz filters (Envoy Gateway names one per SecurityPolicy,
// "envoy.filters.http.ext_authz/securitypolicy/<ns>/<name>").
func extAuthzFilters(ch envoyChain) []map[string]any {
	var out []map[string]any
	for _, f := range asList(dig(ch.hcm, "http_filters")) {
		if n := text(dig(f, "name")); n == extAuthzFilter || strings.HasPrefix(n, extAuthzFilter+"/") {
			out = append(out, asMap(f))
		}
	}
	return out
}

// extAuthzRequestHeaders are the request headers an ext_authz filter passes to its service,
// lower-cased: Envoy Gateway sets the filter's allowed_headers, Emissary the older field under
// http_service.authorization_request.
func extAuthzRequestHeaders(f map[string]any) []string {
	patterns := dig(f, "typed_config", "allowed_headers", "patterns")
	if patterns == nil {
		patterns = dig(f, "typed_config", "http_service", "authorization_request", "allowed_headers", "patterns")
	}
	var out []string
	for _, p := range asList(patterns) {
		if h := text(dig(p, "exact")); h != "" {
			out = append(out, strings.ToLower(h))
		}
	}
	return out
}

// authzRunsOn: an ext_authz filter runs on the route. A filter that is on for the chain runs
// unless the route's per-filter config disables it (Emissary: ExtAuthzPerRoute disabled); one
// that is off for the chain runs only where the route enables it (Envoy Gateway: a FilterConfig
// per route, not disabled).
func authzRunsOn(f map[string]any, r envoyRoute) bool {
	per, set := asMap(dig(r.route, "typed_per_filter_config"))[text(f["name"])]
	if set {
		return dig(per, "disabled") != true
	}
	return f["disabled"] != true
}

// upstreamTLS are the TLS contexts a cluster's endpoints are reached with: the one of the
// transport_socket_matches entry an endpoint's metadata selects, else the cluster's own socket.
func (v *envoyView) upstreamTLS(name string) []any {
	cl := v.clusters[name]
	matches := asList(dig(cl, "transport_socket_matches"))
	if len(matches) == 0 {
		return []any{dig(cl, "transport_socket", "typed_config")}
	}
	var out []any
	for _, ep := range v.lbEndpoints(name) {
		selected := dig(ep, "metadata", "filter_metadata", "envoy.transport_socket_match")
		var ctx any = dig(cl, "transport_socket", "typed_config")
		for _, m := range matches {
			if selected != nil && sameJSON(dig(m, "match"), selected) {
				ctx = dig(m, "transport_socket", "typed_config")
				break
			}
		}
		out = append(out, ctx)
	}
	return out
}

// lbEndpoints are a cluster's endpoints, inline or from EDS.
func (v *envoyView) lbEndpoints(name string) []any {
	la := v.endpoints[name]
	if la == nil {
		la = dig(v.clusters[name], "load_assignment")
	}
	var out []any
	for _, e := range asList(dig(la, "endpoints")) {
		out = append(out, asList(dig(e, "lb_endpoints"))...)
	}
	return out
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// emissaryView indexes the bootstrap Emissary's compiler generated.
func emissaryView(c *emissaryConfig) *envoyView {
	v := &envoyView{engine: engineEmissary, name: c.name, edit: c.edit, certHeader: c.certHeader, clusters: map[string]map[string]any{}}
	v.chains = chainsOf(asList(dig(c.envoy, "static_resources", "listeners")))
	for _, cl := range asList(dig(c.envoy, "static_resources", "clusters")) {
		v.clusters[text(dig(cl, "name"))] = asMap(cl)
	}
	return v
}

// envoyGatewayView indexes the config dumps of egctl's translation (the "xds" key).
func envoyGatewayView(name string, edit map[string]string, translated map[string]any) *envoyView {
	v := &envoyView{engine: engineEnvoyGateway, name: name, edit: edit, routeConfigs: map[string]any{}, clusters: map[string]map[string]any{}, endpoints: map[string]any{}}
	var listeners []any
	for _, proxy := range asMap(snakeCase(translated["xds"])) {
		for _, c := range asList(dig(proxy, "configs")) {
			switch typ := text(dig(c, "@type")); {
			case strings.HasSuffix(typ, ".ListenersConfigDump"):
				for _, l := range asList(dig(c, "dynamic_listeners")) {
					listeners = append(listeners, dig(l, "active_state", "listener"))
				}
			case strings.HasSuffix(typ, ".RoutesConfigDump"):
				for _, rc := range asList(dig(c, "dynamic_route_configs")) {
					v.routeConfigs[text(dig(rc, "route_config", "name"))] = dig(rc, "route_config")
				}
			case strings.HasSuffix(typ, ".ClustersConfigDump"):
				for _, cl := range asList(dig(c, "dynamic_active_clusters")) {
					v.clusters[text(dig(cl, "cluster", "name"))] = asMap(dig(cl, "cluster"))
				}
			case strings.HasSuffix(typ, ".EndpointsConfigDump"):
				for _, e := range asList(dig(c, "dynamic_endpoint_configs")) {
					v.endpoints[text(dig(e, "endpoint_config", "cluster_name"))] = dig(e, "endpoint_config")
				}
			}
		}
	}
	v.chains = chainsOf(listeners)
	return v
}

// protoJSONName is a protojson (lowerCamelCase) field name; map keys such as filter names
// ("envoy.filters.http.cors"), header names and "@type" are not, and stay as they are.
var protoJSONName = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)
var upperLetter = regexp.MustCompile(`[A-Z]`)

// snakeCase renames protojson field names to Envoy's proto names (tlsParams → tls_params).
func snakeCase(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if protoJSONName.MatchString(k) {
				k = upperLetter.ReplaceAllStringFunc(k, func(s string) string { return "_" + strings.ToLower(s) })
			}
			out[k] = snakeCase(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = snakeCase(val)
		}
		return out
	}
	return v
}

var (
	egViewsOnce sync.Once
	egViews     []*envoyView
	egResults   map[string]map[string]any
)

// envoyGatewayViews translates every egSources configuration once (egctl, offline) for all the
// guarantee tests; egResults keeps each translation's objects and their status.
func envoyGatewayViews(t *testing.T) []*envoyView {
	egctl := egctlPath(t)
	egViewsOnce.Do(func() {
		egResults = map[string]map[string]any{}
		sources := egSources(t)
		for _, name := range sortedKeys(sources) {
			g, objs := egRender(t, name, sources[name])
			res := translate(t, egctl, objs)
			egResults[name] = res
			view := envoyGatewayView(name, sources[name], res)
			view.certHeader = stackCertHeader(g)
			egViews = append(egViews, view)
		}
	})
	if len(egViews) == 0 {
		t.Fatal("no Envoy Gateway configuration translated (see the first test that failed)")
	}
	return egViews
}

// forEachEngineView runs f on every configuration of both engines, as subtests engine/config.
func forEachEngineView(t *testing.T, f func(t *testing.T, v *envoyView)) {
	var views []*envoyView
	for _, c := range compiledEmissaryConfigs(t) {
		views = append(views, emissaryView(c))
	}
	views = append(views, envoyGatewayViews(t)...)
	for _, v := range views {
		t.Run(v.String(), func(t *testing.T) { f(t, v) })
	}
}

// text is a JSON string value, "" for anything else (absent included).
func text(v any) string { s, _ := v.(string); return s }

// stackCertHeader is the secret certificate header name the stack gives jwt-auth (its Secret
// AuthCertHeaderSecret), "" without one.
func stackCertHeader(g *graph) string {
	for _, s := range g.ofType(typeSecret) {
		if input(s, "metadata", "name") == components.AuthCertHeaderSecret {
			data, _ := plain(s, "stringData").(map[string]any)
			return str(data["name"])
		}
	}
	return ""
}
