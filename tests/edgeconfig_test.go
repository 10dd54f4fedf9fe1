package tests

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

const (
	ambassadorTypePrefix = "kubernetes:getambassador.io/"
	typeService          = "kubernetes:core/v1:Service"
	typeConfigMap        = "kubernetes:core/v1:ConfigMap"
	typePDB              = "kubernetes:policy/v1:PodDisruptionBudget"
	typeValidation       = "aws:acm/certificateValidation:CertificateValidation"
)

// edgeRun is one configuration of the edge: a stack file, a client-auth mode and an edition.
type edgeRun struct {
	name string
	cfg  *stacks.Config
	g    *graph
}

var (
	edgeRunsMu    sync.Mutex
	edgeRunsCache = map[string]edgeRun{}
)

// edgeSources are the EKS configurations every edge test covers: each client-auth mode on both
// stack files with Emissary, and on dev with Edge Stack; withLocal adds the local stack (no AWS
// load balancer) in the modes it allows.
func edgeSources(t *testing.T, withLocal bool) map[string]stacks.MapSource {
	out := map[string]stacks.MapSource{}
	if withLocal {
		out["local/emissary/"+components.ClientAuthNLBPassthrough] = stackConfig(t, "local", nil)
		out["local/emissary/"+components.ClientAuthOff] = stackConfig(t, "local", map[string]string{"ztedge:clientAuth": components.ClientAuthOff})
	}
	for _, mode := range components.ClientAuthModes {
		for _, stack := range stackFiles {
			out[stack+"/emissary/"+mode] = stackConfig(t, stack, withClientAuth(mode, nil))
		}
		src := edgeStackConfig(t)
		src.Values["ztedge:clientAuth"] = mode
		out["dev/edge-stack/"+mode] = src
	}
	return out
}

// forEachEdgeRun runs f on every EKS edge configuration, forEachEdgeRunAndLocal on the local
// stack's too. The program runs once per configuration for the whole test binary.
func forEachEdgeRun(t *testing.T, f func(t *testing.T, r edgeRun)) { runEdge(t, false, f) }

func forEachEdgeRunAndLocal(t *testing.T, f func(t *testing.T, r edgeRun)) { runEdge(t, true, f) }

func runEdge(t *testing.T, withLocal bool, f func(t *testing.T, r edgeRun)) {
	runCached(t, edgeSources(t, withLocal), edgeRunsCache, f)
}

// runCached runs f on each named configuration ("<stack>/..."), running the program once per
// name and keeping the graph in cache for the other tests.
func runCached(t *testing.T, sources map[string]stacks.MapSource, cache map[string]edgeRun, f func(t *testing.T, r edgeRun)) {
	for _, name := range sortedKeys(sources) {
		src := sources[name]
		t.Run(name, func(t *testing.T) {
			edgeRunsMu.Lock()
			r, ok := cache[name]
			if !ok {
				stack := strings.SplitN(name, "/", 2)[0]
				cfg, err := stacks.Load(src, stack)
				if err != nil {
					edgeRunsMu.Unlock()
					t.Fatal(err)
				}
				g, err := run(t, stack, src)
				if err != nil {
					edgeRunsMu.Unlock()
					t.Fatal(err)
				}
				r = edgeRun{name: name, cfg: cfg, g: g}
				cache[name] = r
			}
			edgeRunsMu.Unlock()
			g := *r.g
			g.t = t
			r.g = &g
			f(t, r)
		})
	}
}

// ambassadorObjects are every getambassador.io object the program registered, from any layer.
func (g *graph) ambassadorObjects() []*mockengine.Resource {
	var out []*mockengine.Resource
	for _, r := range g.all {
		if strings.HasPrefix(r.Type, ambassadorTypePrefix) {
			out = append(out, r)
		}
	}
	return out
}

func (g *graph) kind(kind string) []*mockengine.Resource {
	return g.ofType("kubernetes:" + components.AmbassadorAPIVersion + ":" + kind)
}

// object returns the getambassador.io object of a kind with that metadata.name.
func (g *graph) object(kind, name string) *mockengine.Resource {
	g.t.Helper()
	for _, r := range g.kind(kind) {
		if input(r, "metadata", "name") == name {
			return r
		}
	}
	g.t.Fatalf("no %s named %s", kind, name)
	return nil
}

// crdInstall is what getambassador.io objects must wait for: the CRD release (Emissary) or the
// aes-crds.yaml ConfigFile (Edge Stack).
func crdInstall(g *graph, cfg *stacks.Config) *mockengine.Resource {
	if cfg.Edge.Edition == components.EditionEdgeStack {
		return g.one(typeConfigFile, "ambassador-crds")
	}
	return g.one(typeRelease, "ambassador-crds")
}

func spec(r *mockengine.Resource, path ...string) any {
	return input(r, append([]string{"spec"}, path...)...)
}

// behindALB: an ALB terminates the client's TLS (alb-* and off on EKS); otherwise Envoy does.
func behindALB(cfg *stacks.Config) bool {
	return cfg.Platform != stacks.PlatformLocal && cfg.Edge.ClientAuth != components.ClientAuthNLBPassthrough
}

// TestEdgeConfigOrdering: the graph creates each Ambassador object only after what it names.
func TestEdgeConfigOrdering(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		g, ns := r.g, r.cfg.Edge.Namespace
		crds := crdInstall(g, r.cfg)
		objects := g.ambassadorObjects()
		if len(objects) < 3+len(r.cfg.Edge.Backends) {
			t.Fatalf("only %d getambassador.io objects", len(objects))
		}
		for _, o := range objects {
			if !g.dependsOn(o, crds) {
				t.Errorf("%s %s does not wait for the CRD install %s", o.Type, o.Name, crds.Name)
			}
			if input(o, "metadata", "namespace") != ns {
				t.Errorf("%s %s is in namespace %v, not %s", o.Type, o.Name, input(o, "metadata", "namespace"), ns)
			}
		}
		host, tlsContext := g.object("Host", components.EdgeHostName), g.object("TLSContext", components.UpstreamTLSContext)
		server, ca, upstream := g.secretNamed(ns, components.ServerSecretName), g.secretNamed(ns, components.CASecretName), g.secretNamed(ns, components.UpstreamSecretName)
		clientCA := g.secretNamed(ns, components.ClientCASecretName)
		if !g.dependsOn(host, server) {
			t.Errorf("Host does not wait for Secret %s", components.ServerSecretName)
		}
		if components.EnvoyTerminatesTLS(r.cfg.Edge.ClientAuth) != g.dependsOn(host, clientCA) {
			t.Errorf("Host waits for the client CA Secret: %v; it names it only when Envoy verifies client certificates", g.dependsOn(host, clientCA))
		}
		if !g.dependsOn(tlsContext, upstream) || !g.dependsOn(tlsContext, ca) {
			t.Errorf("TLSContext does not wait for Secrets %s and %s", components.UpstreamSecretName, components.CASecretName)
		}
		for _, b := range r.cfg.Edge.Backends {
			m := g.object("Mapping", b.Name)
			if !g.dependsOn(m, tlsContext) {
				t.Errorf("Mapping %s does not wait for the TLSContext it names", b.Name)
			}
			if b.RateLimit == nil {
				continue
			}
			// A rate-limited route exists only once its limit is enforced.
			var limiter *mockengine.Resource
			if r.cfg.Edge.Edition == components.EditionEdgeStack {
				limiter = g.object("RateLimit", b.Name)
			} else {
				limiter = g.object("RateLimitService", components.RateLimitServiceName)
			}
			if !g.dependsOn(m, limiter) {
				t.Errorf("Mapping %s does not wait for %s", b.Name, limiter.Type)
			}
		}
		if r.cfg.Edge.Edition == components.EditionEmissary {
			// Emissary calls the limiter as soon as the RateLimitService exists: the server is ready first.
			rls := g.object("RateLimitService", components.RateLimitServiceName)
			if !g.dependsOn(rls, g.one(typeDeployment, "ratelimit")) || !g.dependsOn(g.one(typeDeployment, "ratelimit"), g.one(typeDeployment, "ratelimit-redis")) {
				t.Errorf("RateLimitService → server → Redis ordering missing")
			}
		}
	})
}

// TestListenerAndHost: one HTTPS listener, TLS 1.3 only, cleartext rejected, the client
// certificate asked for only where Envoy terminates the client's TLS.
func TestListenerAndHost(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		g, mode := r.g, r.cfg.Edge.ClientAuth
		listeners := g.kind("Listener")
		if len(listeners) != 1 {
			t.Fatalf("%d Listeners, want exactly one (HTTPS 8443)", len(listeners))
		}
		l := listeners[0]
		// Only behind an ALB are forwarding headers trusted (one hop); where clients reach Envoy
		// directly, trusting any would let them spoof their address. XFP in every mode: under
		// SECURE the plaintext chain routes everything (TestEnvoyServesNoPlaintext).
		wantModel, wantDepth := "XFP", float64(1)
		if !behindALB(r.cfg) {
			wantDepth = 0
		}
		want := map[string]any{
			"port": float64(8443), "protocol": "HTTPS", "securityModel": wantModel, "l7Depth": wantDepth,
			"hostBinding": map[string]any{"namespace": map[string]any{"from": "SELF"}},
		}
		if proxyProtocol(r.cfg) {
			// TestRealClientAddressThroughTheNLB
			delete(want, "protocol")
			want["protocolStack"] = []any{"PROXY", "TLS", "HTTP", "TCP"}
		}
		if got := spec(l); !reflect.DeepEqual(got, want) {
			t.Errorf("Listener spec\n got %v\nwant %v", got, want)
		}

		hosts := g.kind("Host")
		if len(hosts) != 1 {
			t.Fatalf("%d Hosts, want one", len(hosts))
		}
		h := hosts[0]
		if spec(h, "requestPolicy", "insecure", "action") != "Reject" {
			t.Errorf("Host insecure action %v: cleartext must be rejected, not redirected or routed", spec(h, "requestPolicy", "insecure", "action"))
		}
		if spec(h, "tlsContext") != nil {
			t.Errorf("Host sets both tls and tlsContext (mutually exclusive)")
		}
		if spec(h, "tlsSecret", "name") != components.ServerSecretName || spec(h, "acmeProvider", "authority") != "none" {
			t.Errorf("Host tlsSecret %v, acmeProvider %v: the PKI's certificate only, never ACME", spec(h, "tlsSecret"), spec(h, "acmeProvider"))
		}
		tls, _ := spec(h, "tls").(map[string]any)
		if tls["min_tls_version"] != "v1.3" || tls["max_tls_version"] != "v1.3" || tls["alpn_protocols"] != "h2,http/1.1" {
			t.Errorf("Host tls %v: want TLS 1.3 only with h2 and http/1.1", tls)
		}
		if mode == components.ClientAuthNLBPassthrough {
			if tls["ca_secret"] != components.ClientCASecretName || tls["cert_required"] != false {
				t.Errorf("nlb-passthrough: Host must verify optional client certificates against the client CA: %v", tls)
			}
		} else if _, ok := tls["ca_secret"]; ok {
			t.Errorf("%s: Envoy asks for client certificates it has no use for: %v", mode, tls)
		}
		if behindALB(r.cfg) && spec(h, "hostname") != "*" {
			t.Errorf("%s: Host hostname %v: the ALB connects without SNI, only \"*\" has a filter chain that accepts it", mode, spec(h, "hostname"))
		}
		if !behindALB(r.cfg) && spec(h, "hostname") != r.cfg.Hostname {
			t.Errorf("%s: Host hostname %v, want %s (clients send SNI)", mode, spec(h, "hostname"), r.cfg.Hostname)
		}
		// Every Mapping, from any layer, joins the Host: selector labels and the edge hostname.
		selector, _ := spec(h, "mappingSelector", "matchLabels").(map[string]any)
		if len(selector) == 0 {
			t.Fatalf("Host has no mappingSelector")
		}
		for _, m := range g.kind("Mapping") {
			labels, _ := input(m, "metadata", "labels").(map[string]any)
			for k, v := range selector {
				if labels[k] != v {
					t.Errorf("Mapping %s lacks the Host's selector label %s=%v: Emissary would not serve it", m.Name, k, v)
				}
			}
			if spec(m, "hostname") != r.cfg.Hostname {
				t.Errorf("Mapping %s hostname %v, want %s", m.Name, spec(m, "hostname"), r.cfg.Hostname)
			}
		}
	})
}

// TestUpstreamMutualTLS: Ambassador originates TLS 1.3 to every backend with its client
// certificate and checks the backend's certificate against the stack CA.
func TestUpstreamMutualTLS(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		want := map[string]any{
			"hosts": []any{}, "secret": components.UpstreamSecretName, "ca_secret": components.CASecretName,
			"min_tls_version": "v1.3", "max_tls_version": "v1.3",
		}
		if got := spec(r.g.object("TLSContext", components.UpstreamTLSContext)); !reflect.DeepEqual(got, want) {
			t.Errorf("upstream TLSContext\n got %v\nwant %v", got, want)
		}
		for _, b := range r.cfg.Edge.Backends {
			m := r.g.object("Mapping", b.Name)
			if spec(m, "tls") != components.UpstreamTLSContext || !strings.HasPrefix(str(spec(m, "service")), "https://") {
				t.Errorf("Mapping %s: service %v tls %v: backends are called over mutual TLS", b.Name, spec(m, "service"), spec(m, "tls"))
			}
		}
	})
}

// TestBackendMappings checks each backend's route against its configuration.
func TestBackendMappings(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		for _, b := range r.cfg.Edge.Backends {
			m := r.g.object("Mapping", b.Name)
			svc := b.Service
			if svc == "" {
				svc = b.Name
			}
			timeout := b.TimeoutMs
			if timeout == 0 {
				timeout = 15000
			}
			want := map[string]any{
				"hostname": r.cfg.Hostname, "prefix": b.Prefix, "rewrite": "/", "tls": "upstream",
				"service":    fmt.Sprintf("https://%s.%s:%d", svc, b.Namespace, b.Port),
				"timeout_ms": float64(timeout),
				"labels": map[string]any{"ambassador": []any{map[string]any{"per_user": []any{
					map[string]any{"generic_key": map[string]any{"value": b.Name}},
					map[string]any{"request_headers": map[string]any{"key": "user_id", "header_name": "x-user-id"}},
				}}}},
			}
			if b.RateLimit == nil {
				delete(want, "labels")
			}
			if b.CircuitBreaker != nil {
				want["circuit_breakers"] = []any{map[string]any{
					"priority": "default", "max_connections": float64(b.CircuitBreaker.MaxConnections), "max_pending_requests": float64(b.CircuitBreaker.MaxPendingRequests),
					"max_requests": float64(b.CircuitBreaker.MaxRequests), "max_retries": float64(b.CircuitBreaker.MaxRetries),
				}}
			}
			if b.Retries != nil {
				want["retry_policy"] = map[string]any{
					"retry_on": b.Retries.RetryOn, "num_retries": float64(b.Retries.NumRetries),
					// A protobuf Duration: seconds only.
					"per_try_timeout": fmt.Sprintf("%.3fs", float64(b.Retries.PerTryTimeoutMs)/1000),
				}
			}
			if len(b.Origins) > 0 {
				methods, headers := b.Methods, b.Headers
				if len(methods) == 0 {
					methods = []string{"GET", "POST"}
				}
				if len(headers) == 0 {
					headers = []string{"Authorization", "Content-Type"}
				}
				want["cors"] = map[string]any{
					"origins": toAnyList(b.Origins), "methods": toAnyList(methods), "headers": toAnyList(headers),
					"credentials": b.Credentials, "max_age": "600",
				}
			}
			if name := stackCertHeader(r.g); name != "" { // no backend learns it
				want["remove_request_headers"] = []any{strings.ToLower(name)}
			}
			if got := spec(m); !reflect.DeepEqual(got, want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				t.Errorf("Mapping %s\n got %s\nwant %s", b.Name, gj, wj)
			}
		}
		// Every backend route goes through jwt-auth, and no route allows every origin.
		for _, b := range r.cfg.Edge.Backends {
			if m := r.g.object("Mapping", b.Name); spec(m, "bypass_auth") != nil {
				t.Errorf("Mapping %s sets bypass_auth %v", b.Name, spec(m, "bypass_auth"))
			}
		}
		for _, m := range r.g.kind("Mapping") {
			origins, _ := spec(m, "cors", "origins").([]any)
			for _, o := range origins {
				if strings.Contains(str(o), "*") || !strings.HasPrefix(str(o), "https://") {
					t.Errorf("Mapping %s allows CORS origin %v", m.Name, o)
				}
			}
		}
	})
}

func toAnyList(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}

// TestRateLimiting: Emissary gets envoyproxy/ratelimit (hardened, failing closed) whose
// descriptors match the Mappings' labels; Edge Stack gets RateLimit resources instead.
func TestRateLimiting(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		g, ns := r.g, r.cfg.Edge.Namespace
		limited := map[string]stacksRate{}
		for _, b := range r.cfg.Edge.Backends {
			if b.RateLimit != nil {
				limited[b.Name] = stacksRate{b.RateLimit.RequestsPerUnit, b.RateLimit.Unit}
			}
		}
		if len(limited) == 0 {
			t.Fatal("the stack files should rate-limit at least one backend")
		}
		if r.cfg.Edge.Edition == components.EditionEdgeStack {
			for _, d := range g.ofType(typeDeployment) {
				if strings.HasPrefix(d.Name, "ratelimit") {
					t.Errorf("Edge Stack keeps its own rate-limit service; ztedge deployed %s", d.Name)
				}
			}
			if n := len(g.kind("RateLimitService")); n != 0 {
				t.Errorf("Edge Stack's chart creates the RateLimitService; ztedge registered %d more", n)
			}
			for name, rate := range limited {
				want := map[string]any{"domain": "ambassador", "limits": []any{map[string]any{
					"name": name + "-per-user", "pattern": []any{map[string]any{"generic_key": name}, map[string]any{"user_id": "*"}},
					"rate": float64(rate.n), "unit": rate.unit, "action": "Enforce",
				}}}
				if got := spec(g.object("RateLimit", name)); !reflect.DeepEqual(got, want) {
					t.Errorf("RateLimit %s\n got %v\nwant %v", name, got, want)
				}
			}
			return
		}

		rls, _ := spec(g.object("RateLimitService", components.RateLimitServiceName)).(map[string]any)
		want := map[string]any{
			"service": "ratelimit." + ns + ":8081", "protocol_version": "v3", "domain": "ambassador",
			"failure_mode_deny": true, "timeout_ms": float64(100),
		}
		if !reflect.DeepEqual(rls, want) {
			t.Errorf("RateLimitService\n got %v\nwant %v", rls, want)
		}
		// The service address is the server's Service.
		svc := g.one(typeService, "ratelimit")
		if input(svc, "metadata", "name") != "ratelimit" || input(svc, "spec", "ports").([]any)[0].(map[string]any)["port"] != float64(8081) {
			t.Errorf("ratelimit Service %v does not serve ratelimit:8081", input(svc, "spec"))
		}
		// The server's descriptors are exactly the Mappings' labels, with the configured rates.
		cm := g.one(typeConfigMap, "ratelimit-config")
		var config struct {
			Domain      string `json:"domain"`
			Descriptors []struct {
				Key, Value  string
				Descriptors []struct {
					Key       string
					RateLimit struct {
						Unit            string `json:"unit"`
						RequestsPerUnit int    `json:"requests_per_unit"`
					} `json:"rate_limit"`
				}
			}
		}
		if err := yaml.Unmarshal([]byte(str(input(cm, "data", "config.yaml"))), &config); err != nil {
			t.Fatal(err)
		}
		if config.Domain != rls["domain"] {
			t.Errorf("config domain %q differs from the RateLimitService's %v", config.Domain, rls["domain"])
		}
		got := map[string]stacksRate{}
		for _, d := range config.Descriptors {
			if d.Key != "generic_key" || len(d.Descriptors) != 1 || d.Descriptors[0].Key != "user_id" {
				t.Errorf("descriptor %+v does not match the labels generic_key → user_id", d)
				continue
			}
			got[d.Value] = stacksRate{d.Descriptors[0].RateLimit.RequestsPerUnit, d.Descriptors[0].RateLimit.Unit}
		}
		if !reflect.DeepEqual(got, limited) {
			t.Errorf("descriptors %v, want %v", got, limited)
		}
		for _, m := range g.kind("Mapping") {
			if labels, ok := spec(m, "labels").(map[string]any); ok {
				if _, ok := labels[str(rls["domain"])]; !ok || len(labels) != 1 {
					t.Errorf("Mapping %s labels %v are not (only) in the RateLimitService domain", m.Name, labels)
				}
			}
		}

		// The server reaches Redis through its Service, reads the ConfigMap where the runtime
		// looks ($RUNTIME_ROOT/$RUNTIME_SUBDIRECTORY/config) and keeps its debug port inside the pod.
		server := input(g.one(typeDeployment, "ratelimit"), "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
		env := map[string]any{}
		for _, e := range server["env"].([]any) {
			env[str(e.(map[string]any)["name"])] = e.(map[string]any)["value"]
		}
		redis := g.one(typeService, "ratelimit-redis")
		for k, v := range map[string]string{
			"REDIS_URL": str(input(redis, "metadata", "name")) + "." + ns + ":6379", "REDIS_SOCKET_TYPE": "tcp", "GRPC_PORT": "8081",
			"RUNTIME_ROOT": "/data", "RUNTIME_SUBDIRECTORY": "ratelimit", "RUNTIME_IGNOREDOTFILES": "true", "USE_STATSD": "false",
			"DEBUG_HOST": "127.0.0.1",
		} {
			if env[k] != v {
				t.Errorf("ratelimit env %s = %v, want %s", k, env[k], v)
			}
		}
		mount := server["volumeMounts"].([]any)[0].(map[string]any)
		if mount["mountPath"] != "/data/ratelimit/config" || mount["readOnly"] != true {
			t.Errorf("config mounted at %v", mount)
		}
		if input(redis, "spec", "ports").([]any)[0].(map[string]any)["port"] != float64(6379) {
			t.Errorf("Redis Service ports %v", input(redis, "spec", "ports"))
		}

		replicas := min(r.cfg.Edge.Replicas, 3)
		for name, n := range map[string]int{"ratelimit": replicas, "ratelimit-redis": 1} {
			d := g.one(typeDeployment, name)
			checkHardened(t, d)
			if input(d, "spec", "replicas") != float64(n) {
				t.Errorf("%s replicas %v, want %d", name, input(d, "spec", "replicas"), n)
			}
			pdbs := 0
			for _, p := range g.ofType(typePDB) {
				if p.Name == name {
					pdbs++
				}
			}
			if (n >= 2) != (pdbs == 1) {
				t.Errorf("%s: %d replicas, %d PodDisruptionBudgets", name, n, pdbs)
			}
		}
	})
}

type stacksRate struct {
	n    int
	unit string
}

// checkHardened asserts the pod security every ztedge workload has.
func checkHardened(t *testing.T, d *mockengine.Resource) {
	t.Helper()
	pod, _ := input(d, "spec", "template", "spec").(map[string]any)
	if pod["automountServiceAccountToken"] != false {
		t.Errorf("%s mounts a service-account token it does not need", d.Name)
	}
	for _, c := range pod["containers"].([]any) {
		c := c.(map[string]any)
		sc, _ := c["securityContext"].(map[string]any)
		if sc["runAsNonRoot"] != true || sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false ||
			!reflect.DeepEqual(sc["capabilities"], map[string]any{"drop": []any{"ALL"}}) ||
			!reflect.DeepEqual(sc["seccompProfile"], map[string]any{"type": "RuntimeDefault"}) {
			t.Errorf("%s container %v: securityContext %v is not hardened", d.Name, c["name"], sc)
		}
		res, _ := c["resources"].(map[string]any)
		limits, _ := res["limits"].(map[string]any)
		if res["requests"] == nil || limits["memory"] == nil || limits["ephemeral-storage"] == nil {
			t.Errorf("%s container %v: resources %v need requests and memory and ephemeral-storage limits", d.Name, c["name"], res)
		}
		if uid, _ := sc["runAsUser"].(float64); uid < 10000 {
			t.Errorf("%s container %v runs as uid %v, which may be a host user's", d.Name, c["name"], sc["runAsUser"])
		}
		if c["readinessProbe"] == nil || c["livenessProbe"] == nil {
			t.Errorf("%s container %v has no readiness or liveness probe", d.Name, c["name"])
		}
		if img := str(c["image"]); !strings.Contains(img, ":") || strings.HasSuffix(img, ":latest") {
			t.Errorf("%s image %s is not pinned", d.Name, img)
		}
	}
}

// TestAmbassadorModuleForClientAuth: only when Envoy terminates the client's TLS does the
// Module make Envoy replace X-Forwarded-Client-Cert with the verified certificate.
func TestAmbassadorModuleForClientAuth(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		values := releaseValues(t, r.g.one(typeRelease, "ambassador"))
		module := values["module"]
		if r.cfg.Edge.Edition == components.EditionEdgeStack {
			module = values["emissary-ingress"].(map[string]any)["module"]
		}
		m, _ := module.(map[string]any)
		checkModule(t, m)
		nlb := r.cfg.Edge.ClientAuth == components.ClientAuthNLBPassthrough
		if got := m["forward_client_cert_details"]; (got == "SANITIZE_SET") != nlb || (!nlb && got != nil) {
			t.Errorf("forward_client_cert_details %v in mode %s", got, r.cfg.Edge.ClientAuth)
		}
		if nlb {
			details, _ := m["set_current_client_cert_details"].(map[string]any)
			if details["cert"] != true || details["chain"] != true {
				t.Errorf("set_current_client_cert_details %v: jwt-auth needs the certificate and its chain", details)
			}
		}
	})
}

// TestBackendConfigErrors: bad backends are refused before any resource exists, each with an
// error naming the setting and the entry.
func TestBackendConfigErrors(t *testing.T) {
	valid := func() map[string]any {
		return map[string]any{
			"name": "orders", "namespace": "orders", "port": 8443, "prefix": "/api/orders/",
			"origins": []any{"https://app.example.com"}, "credentials": true,
			"rateLimit": map[string]any{"requestsPerUnit": 10, "unit": "minute"},
			"retries":   map[string]any{"retryOn": "5xx", "numRetries": 2, "perTryTimeoutMs": 1000},
		}
	}
	other := func(edit func(b map[string]any)) []any {
		b := valid()
		b["name"], b["namespace"], b["prefix"] = "billing", "billing", "/api/billing/"
		edit(b)
		return []any{valid(), b}
	}
	cases := []struct {
		name     string
		backends []any
		want     string // "" = valid
	}{
		{"valid", other(func(map[string]any) {}), ""},
		{"duplicate prefix", other(func(b map[string]any) { b["prefix"] = "/api/orders/" }), `backends[1].prefix "/api/orders/" is also used by backend orders`},
		{"duplicate name", other(func(b map[string]any) { b["name"] = "orders" }), `backends[1].name "orders" is used twice`},
		{"port 0", other(func(b map[string]any) { b["port"] = 0 }), "backends[1].port 0 is out of range"},
		{"port too big", other(func(b map[string]any) { b["port"] = 70000 }), "backends[1].port 70000 is out of range"},
		{"wildcard origin", other(func(b map[string]any) { b["origins"] = []any{"*"} }), "wildcards are not allowed"},
		{"wildcard subdomain origin", other(func(b map[string]any) { b["origins"] = []any{"https://*.example.com"} }), "wildcards are not allowed"},
		{"origin with a path", other(func(b map[string]any) { b["origins"] = []any{"https://app.example.com/"} }), "no path or trailing slash"},
		{"http origin", other(func(b map[string]any) { b["origins"] = []any{"http://app.example.com"} }), "must be an exact lower-case https origin"},
		{"credentials without origins", other(func(b map[string]any) { delete(b, "origins") }), "credentials is true but origins is empty"},
		{"wildcard CORS header", other(func(b map[string]any) { b["headers"] = []any{"*"} }), `headers: "*" is not an HTTP header name`},
		{"reserved prefix /token/", other(func(b map[string]any) { b["prefix"] = "/token/" }), "is reserved for the edge"},
		{"reserved prefix /ambassador/", other(func(b map[string]any) { b["prefix"] = "/ambassador/v0/" }), "is reserved for the edge"},
		{"reserved prefix /.well-known/", other(func(b map[string]any) { b["prefix"] = "/.well-known/jwks/" }), "is reserved for the edge"},
		{"prefix /", other(func(b map[string]any) { b["prefix"] = "/" }), "must be a path such as /api/orders/"},
		{"rate unit", other(func(b map[string]any) { b["rateLimit"] = map[string]any{"requestsPerUnit": 10, "unit": "fortnight"} }), `rateLimit needs requestsPerUnit ≥ 1 and unit second, minute or hour (got 10 per "fortnight")`},
		{"rate zero", other(func(b map[string]any) { b["rateLimit"] = map[string]any{"requestsPerUnit": 0, "unit": "minute"} }), "rateLimit needs requestsPerUnit ≥ 1"},
		{"ambassador namespace", other(func(b map[string]any) { b["namespace"] = "ambassador" }), `backends[1].namespace "ambassador" is reserved for the edge itself`},
		{"kube-system", other(func(b map[string]any) { b["namespace"] = "kube-system" }), `namespace "kube-system" is reserved`},
		{"retry condition", other(func(b map[string]any) { b["retries"] = map[string]any{"retryOn": "always", "numRetries": 2} }), `retries.retryOn "always" is not one of`},
		{"per-try timeout", other(func(b map[string]any) {
			b["timeoutMs"] = 2000
			b["retries"] = map[string]any{"retryOn": "5xx", "numRetries": 2, "perTryTimeoutMs": 5000}
		}), "perTryTimeoutMs 5000 must be between 0 and the route timeout (2000 ms)"},
		{"unknown field", other(func(b map[string]any) { b["prefixes"] = "/x/" }), `unknown field "prefixes"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, _ := json.Marshal(c.backends)
			_, err := stacks.Load(stackConfig(t, "dev", map[string]string{"ztedge:backends": string(raw)}), "dev")
			if c.want == "" {
				if err != nil {
					t.Fatalf("valid backends refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", c.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "ztedge:backends") && strings.Contains(l, c.want) }) {
				t.Errorf("error does not name ztedge:backends with %q:\n%v", c.want, err)
			}
		})
	}
}
