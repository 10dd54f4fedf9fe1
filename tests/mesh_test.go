package tests

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/chartvalues"
	"github.com/ztedge/ztedge/internal/crdschema"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/internal/render"
	"github.com/ztedge/ztedge/stacks"
)

// Upstream mTLS through a service mesh (stacks/mesh.go, components/istio.go, components/consul.go).

const (
	istioDir           = "tests/testdata/istio-1.30.3"
	consulIntentions   = "tests/testdata/consul-k8s-1.9.11/consul.hashicorp.com_serviceintentions.yaml"
	typeRole           = "kubernetes:rbac.authorization.k8s.io/v1:Role"
	typeRoleBinding    = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
	istioSecurityType  = "kubernetes:" + components.IstioSecurityAPI + ":"
	istioSidecarType   = "kubernetes:" + components.IstioNetworkingAPI + ":Sidecar"
	consulIntentType   = "kubernetes:" + components.ConsulIntentionsAPI + ":ServiceIntentions"
	testConsulAddress  = "https://consul-server.consul.svc:8501"
	testConsulCidr     = "10.0.40.0/24"
	testConsulToken    = "consul-acl-token-value"
	ambassadorReleaseN = "ambassador"
)

// meshEdits are the settings of each mesh mode.
func meshEdits(mode string) map[string]string {
	switch mode {
	case components.UpstreamMtlsIstio:
		return map[string]string{"ztedge:upstreamMtls": "istio"}
	case components.UpstreamMtlsConsul:
		return map[string]string{
			"ztedge:upstreamMtls": "consul", "ztedge:consulAddress": testConsulAddress, "ztedge:consulDatacenter": "dc1",
			"ztedge:consulToken": testConsulToken, "ztedge:consulServerCidrs": `["` + testConsulCidr + `"]`,
		}
	}
	return nil
}

// meshSources are, for a mesh mode, the configurations the edge tests cover: every client-auth
// mode on dev and prod with Emissary and on dev with Edge Stack, and the local stack in its
// modes. With istio, prod installs Istio and the others use an existing installation.
func meshSources(t *testing.T, mode string) map[string]stacks.MapSource {
	out := map[string]stacks.MapSource{}
	edit := func(src stacks.MapSource, install bool) stacks.MapSource {
		for k, v := range meshEdits(mode) {
			src.Values[k] = v
		}
		if mode == components.UpstreamMtlsConsul {
			src.Secrets["ztedge:consulToken"] = true
		}
		if install && mode == components.UpstreamMtlsIstio {
			src.Values["ztedge:istioInstall"] = "true"
		}
		return src
	}
	for _, ca := range []string{components.ClientAuthNLBPassthrough, components.ClientAuthOff} {
		out["local/emissary/"+ca] = edit(stackConfig(t, "local", map[string]string{"ztedge:clientAuth": ca}), false)
	}
	for _, ca := range components.ClientAuthModes {
		for _, stack := range stackFiles {
			out[stack+"/emissary/"+ca] = edit(stackConfig(t, stack, withClientAuth(ca, nil)), stack == "prod")
		}
		src := edgeStackConfig(t)
		src.Values["ztedge:clientAuth"] = ca
		out["dev/edge-stack/"+ca] = edit(src, false)
	}
	return out
}

// forEachMeshRun runs f on every configuration of a mesh mode (named "<stack>/<edition>/<clientAuth>/<mode>").
func forEachMeshRun(t *testing.T, mode string, f func(t *testing.T, r edgeRun)) {
	sources := map[string]stacks.MapSource{}
	for name, src := range meshSources(t, mode) {
		sources[name+"/"+mode] = src
	}
	runCached(t, sources, edgeRunsCache, f) // mesh runs are named apart (…/istio, …/consul)
}

func forEachMeshModeRun(t *testing.T, f func(t *testing.T, mode string, r edgeRun)) {
	for _, mode := range []string{components.UpstreamMtlsIstio, components.UpstreamMtlsConsul} {
		t.Run(mode, func(t *testing.T) {
			forEachMeshRun(t, mode, func(t *testing.T, r edgeRun) { f(t, mode, r) })
		})
	}
}

// meshObjects are the Istio and Consul custom resources a run registered.
func (g *graph) meshObjects() []*mockengine.Resource {
	var out []*mockengine.Resource
	for _, r := range g.all {
		if strings.Contains(r.Type, ".istio.io/") || strings.Contains(r.Type, "consul.hashicorp.com/") {
			out = append(out, r)
		}
	}
	return out
}

func ambassadorRelease(g *graph) *mockengine.Resource { return g.one(typeRelease, ambassadorReleaseN) }

// podValues are the Ambassador pod values (Edge Stack: its emissary-ingress subchart's).
func podValues(t *testing.T, r edgeRun) map[string]any {
	values := releaseValues(t, ambassadorRelease(r.g))
	if r.cfg.Edge.Edition == components.EditionEdgeStack {
		values, _ = values["emissary-ingress"].(map[string]any)
	}
	return values
}

// TestMeshTLSContextAndMappings: in each mesh mode, every backend route names the mesh's
// TLSContext (and none the PKI's), the TLSContext loads the mesh's certificates and waits for
// their source, and Consul routes resolve the backend's sidecar through the ConsulResolver.
func TestMeshTLSContextAndMappings(t *testing.T) {
	forEachMeshModeRun(t, func(t *testing.T, mode string, r edgeRun) {
		g := r.g
		var want map[string]any
		var name string
		var source []*mockengine.Resource
		switch mode {
		case components.UpstreamMtlsIstio:
			name = components.IstioTLSContext
			want = map[string]any{"hosts": []any{}, "secret": "istio-certs", "cacert_chain_file": "/etc/istio-certs/root-cert.pem", "alpn_protocols": "istio", "min_tls_version": "v1.3", "max_tls_version": "v1.3"}
			source = []*mockengine.Resource{ambassadorRelease(g)}
		case components.UpstreamMtlsConsul:
			name = components.ConsulTLSContext
			want = map[string]any{"hosts": []any{}, "secret": "consul-connect-leaf", "ca_secret": "consul-connect-roots", "min_tls_version": "v1.3", "max_tls_version": "v1.3"}
			source = []*mockengine.Resource{g.one(typeDeployment, "consul-sync")}
		}
		if n := len(g.kind("TLSContext")); n != 1 {
			t.Errorf("%d TLSContexts, want only the mesh's", n)
		}
		tc := g.object("TLSContext", name)
		if got := spec(tc); !reflect.DeepEqual(got, want) {
			t.Errorf("TLSContext %s spec\n got %v\nwant %v", name, got, want)
		}
		for _, s := range source {
			if !g.dependsOn(tc, s) {
				t.Errorf("TLSContext %s does not wait for %s (its certificates)", name, s.Name)
			}
		}
		routes := 0
		for _, m := range g.kind("Mapping") {
			if spec(m, "bypass_auth") == true {
				continue
			}
			routes++
			if spec(m, "tls") != name {
				t.Errorf("Mapping %s: tls %v, want %s", m.Name, spec(m, "tls"), name)
			}
			if !g.dependsOn(m, tc) {
				t.Errorf("Mapping %s does not wait for TLSContext %s", m.Name, name)
			}
		}
		if routes != len(r.cfg.Edge.Backends) {
			t.Errorf("%d backend routes for %d backends", routes, len(r.cfg.Edge.Backends))
		}
		for _, b := range r.cfg.Edge.Backends {
			m := g.object("Mapping", b.Name)
			switch mode {
			case components.UpstreamMtlsIstio:
				// The sidecar intercepts the backend's own port.
				if want := "https://" + b.ServiceName() + "." + b.Namespace + ":"; !strings.HasPrefix(str(spec(m, "service")), want) || spec(m, "resolver") != nil {
					t.Errorf("Mapping %s: service %v resolver %v", b.Name, spec(m, "service"), spec(m, "resolver"))
				}
			case components.UpstreamMtlsConsul:
				if spec(m, "service") != b.ServiceName()+"-sidecar-proxy" || spec(m, "resolver") != "consul-dc1" {
					t.Errorf("Mapping %s: service %v resolver %v, want %s-sidecar-proxy via consul-dc1", b.Name, spec(m, "service"), spec(m, "resolver"), b.ServiceName())
				}
				if !g.dependsOn(tc, g.object("ConsulResolver", "consul-dc1")) {
					t.Errorf("the TLSContext (and so the routes) does not wait for the ConsulResolver")
				}
			}
		}
		if mode == components.UpstreamMtlsConsul {
			res := g.object("ConsulResolver", "consul-dc1")
			if got := spec(res); !reflect.DeepEqual(got, map[string]any{"address": testConsulAddress, "datacenter": "dc1"}) {
				t.Errorf("ConsulResolver spec %v", got)
			}
		}
	})
}

// TestMeshKeepsTheEdgeBoundary: jwt-auth still checks every backend route, the default-deny
// NetworkPolicies and the Ambassador-only ingress to backends stay, in every mesh run.
func TestMeshKeepsTheEdgeBoundary(t *testing.T) {
	forEachMeshModeRun(t, func(t *testing.T, mode string, r edgeRun) {
		g := r.g
		authService := g.object("AuthService", components.AuthName)
		if spec(authService, "failure_mode_allow") != false {
			t.Errorf("AuthService failure_mode_allow %v", spec(authService, "failure_mode_allow"))
		}
		authPods := g.one(typeDeployment, components.AuthName)
		for _, b := range r.cfg.Edge.Backends {
			m := g.object("Mapping", b.Name)
			if spec(m, "bypass_auth") != nil || !g.dependsOn(m, authService) || !g.dependsOn(m, authPods) {
				t.Errorf("Mapping %s: bypass_auth %v, waits for the AuthService %v and jwt-auth %v", b.Name, spec(m, "bypass_auth"), g.dependsOn(m, authService), g.dependsOn(m, authPods))
			}
		}
		namespaces := []string{r.cfg.Edge.Namespace}
		for _, b := range r.cfg.Edge.Backends {
			namespaces = append(namespaces, b.Namespace)
		}
		for _, ns := range namespaces {
			deny := false
			for _, p := range policies(g) {
				if p.namespace == ns && len(p.pods) == 0 && reflect.DeepEqual(p.types, []any{"Ingress", "Egress"}) && p.ingress == nil && p.egress == nil {
					deny = true
				}
				// No mesh policy may open a namespace to everyone.
				for _, rules := range [][]any{p.ingress, p.egress} {
					for _, rule := range rules {
						rm, _ := rule.(map[string]any)
						if rm["from"] == nil && rm["to"] == nil || rm["ports"] == nil {
							t.Errorf("policy %s/%s has a rule without peers or ports: %v", p.namespace, p.r.Name, rule)
						}
					}
				}
			}
			if !deny {
				t.Errorf("namespace %s lost its default-deny policy", ns)
			}
		}
		for _, b := range r.cfg.Edge.Backends {
			found := false
			for _, p := range policies(g) {
				if p.namespace == b.Namespace && str(input(p.r, "metadata", "name")) == b.Name+"-from-ambassador" {
					found = true
				}
			}
			if !found {
				t.Errorf("backend %s lost its Ambassador-only ingress policy", b.Name)
			}
		}
	})
}

// meshPolicy returns the NetworkPolicy named name in namespace ns.
func meshPolicy(t *testing.T, g *graph, ns, name string) np {
	t.Helper()
	for _, p := range policies(g) {
		if p.namespace == ns && str(input(p.r, "metadata", "name")) == name {
			return p
		}
	}
	t.Fatalf("no NetworkPolicy %s/%s", ns, name)
	return np{}
}

func peerRule(ns string, pods map[string]string, ports ...float64) map[string]any {
	var ps []any
	for _, p := range ports {
		ps = append(ps, map[string]any{"protocol": "TCP", "port": p})
	}
	return map[string]any{"peers": []any{map[string]any{
		"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": ns}},
		"podSelector":       map[string]any{"matchLabels": toAny(pods)},
	}}, "ports": ps}
}

// rulesAs normalises ingress/egress rules to {peers, ports}.
func rulesAs(rules []any) []any {
	var out []any
	for _, r := range rules {
		m := r.(map[string]any)
		peers := m["from"]
		if peers == nil {
			peers = m["to"]
		}
		out = append(out, map[string]any{"peers": peers, "ports": m["ports"]})
	}
	return out
}

// TestIstioWiring: Ambassador's certificate-only sidecar, the backends in the mesh with STRICT
// mTLS admitting only Ambassador's identity, the sidecars' way to istiod, and the order:
// Istio (when installed) and the Sidecar before Ambassador's pods, the CRDs before the objects.
func TestIstioWiring(t *testing.T) {
	forEachMeshRun(t, components.UpstreamMtlsIstio, func(t *testing.T, r edgeRun) {
		g, cfg := r.g, r.cfg
		v := podValues(t, r)
		want := components.IstioAmbassadorPodValues()
		for _, k := range []string{"podLabels", "podAnnotations", "volumes", "volumeMounts"} {
			if got, _ := yamlJSON(v[k]); got != mustJSON(t, want[k]) {
				t.Errorf("Ambassador pod value %s = %s, want %s", k, got, mustJSON(t, want[k]))
			}
		}
		ann, _ := v["podAnnotations"].(map[string]any)
		if ann["sidecar.istio.io/interceptionMode"] != "NONE" || ann["traffic.sidecar.istio.io/includeInboundPorts"] != "" || ann["traffic.sidecar.istio.io/includeOutboundIPRanges"] != "" {
			t.Errorf("the sidecar may intercept Envoy's traffic: %v", ann)
		}
		if !strings.Contains(str(ann["proxy.istio.io/config"]), "OUTPUT_CERTS: /etc/istio-certs") {
			t.Errorf("proxy.istio.io/config %q does not write the certificates to the shared volume", ann["proxy.istio.io/config"])
		}
		envs, _ := v["env"].(map[string]any)
		if envs["AMBASSADOR_ISTIO_SECRET_DIR"] != "/etc/istio-certs" || envs["AMBASSADOR_ENVOY_BASE_ID"] != "1" || envs["SCOUT_DISABLE"] != "1" {
			t.Errorf("env %v", envs)
		}
		// Ambassador's namespace stays restricted (no istio-init) and unlabelled for injection.
		ambNs := g.namespace(cfg.Edge.Namespace)
		if l := input(ambNs, "metadata", "labels").(map[string]any); l[components.IstioInjectionLabel] != nil {
			t.Errorf("Ambassador's namespace is labelled for injection: %v", l)
		}
		// Backends: injection label, STRICT PeerAuthentication, Ambassador-only AuthorizationPolicy.
		naming := components.AmbassadorNamesFor(cfg.Edge.Edition)
		principal := "*/ns/" + cfg.Edge.Namespace + "/sa/" + naming.Release
		for _, b := range cfg.Edge.Backends {
			l := input(g.namespace(b.Namespace), "metadata", "labels").(map[string]any)
			if l[components.IstioInjectionLabel] != "enabled" {
				t.Errorf("backend namespace %s labels %v: not in the mesh", b.Namespace, l)
			}
			pa := meshObject(t, g, "PeerAuthentication", b.Namespace, b.Name+"-strict")
			if got, want := mustJSON(t, input(pa, "spec")), mustJSON(t, map[string]any{"selector": map[string]any{"matchLabels": toAny(b.Selector())}, "mtls": map[string]any{"mode": "STRICT"}}); got != want {
				t.Errorf("PeerAuthentication %s: %s, want %s", b.Name, got, want)
			}
			ap := meshObject(t, g, "AuthorizationPolicy", b.Namespace, b.Name+"-from-ambassador")
			wantAP := map[string]any{
				"selector": map[string]any{"matchLabels": toAny(b.Selector())}, "action": "ALLOW",
				"rules": []any{map[string]any{
					"from": []any{map[string]any{"source": map[string]any{"principals": []any{principal}}}},
					"to":   []any{map[string]any{"operation": map[string]any{"ports": []any{str(b.Port)}}}},
				}},
			}
			if got, want := mustJSON(t, input(ap, "spec")), mustJSON(t, wantAP); got != want {
				t.Errorf("AuthorizationPolicy %s:\n got %s\nwant %s", b.Name, got, want)
			}
			for _, o := range []*mockengine.Resource{pa, ap} {
				if !g.dependsOn(o, g.namespace(b.Namespace)) {
					t.Errorf("%s does not wait for namespace %s", o.Name, b.Namespace)
				}
			}
			// Sidecars in the backend namespace reach istiod.
			p := meshPolicy(t, g, b.Namespace, "sidecars-to-istiod")
			if got, want := mustJSON(t, rulesAs(p.egress)), mustJSON(t, []any{peerRule("istio-system", components.IstiodPodLabels, 15012)}); got != want || len(p.pods) != 0 {
				t.Errorf("sidecars-to-istiod in %s: %s pods %v, want %s", b.Namespace, got, p.pods, want)
			}
		}
		p := meshPolicy(t, g, cfg.Edge.Namespace, "ambassador-to-istiod")
		if got, want := mustJSON(t, rulesAs(p.egress)), mustJSON(t, []any{peerRule("istio-system", components.IstiodPodLabels, 15012)}); got != want || !reflect.DeepEqual(p.pods, toAny(naming.PodLabels)) {
			t.Errorf("ambassador-to-istiod: %s pods %v", got, p.pods)
		}
		// The Sidecar keeps Ambassador's proxy to certificates and exists before its pods.
		sc := meshObject(t, g, "Sidecar", cfg.Edge.Namespace, "ambassador-certificates-only")
		if got, want := mustJSON(t, input(sc, "spec")), mustJSON(t, map[string]any{"workloadSelector": map[string]any{"labels": toAny(naming.PodLabels)}, "egress": []any{map[string]any{"hosts": []any{"~/*"}}}}); got != want {
			t.Errorf("Sidecar %s, want %s", got, want)
		}
		rel := ambassadorRelease(g)
		if !g.dependsOn(rel, sc) {
			t.Errorf("Ambassador's release does not wait for the Sidecar")
		}
		// Istio installed by ztedge (prod): base, then istiod, then Ambassador's pods; the mesh
		// objects wait for the CRDs of the base chart.
		install := strings.HasPrefix(r.name, "prod/")
		releases := map[string]*mockengine.Resource{}
		for _, rr := range g.ofType(typeRelease) {
			releases[rr.Name] = rr
		}
		base, istiod := releases["istio-base"], releases["istio-istiod"]
		if install != (base != nil && istiod != nil) {
			t.Fatalf("istioInstall %v but releases base %v istiod %v", install, base != nil, istiod != nil)
		}
		if install {
			if !g.dependsOn(istiod, base) || !g.dependsOn(rel, istiod) {
				t.Errorf("order: istiod→base %v, Ambassador→istiod %v", g.dependsOn(istiod, base), g.dependsOn(rel, istiod))
			}
			for _, o := range g.meshObjects() {
				if !g.dependsOn(o, base) {
					t.Errorf("%s does not wait for Istio's CRDs (the base release)", o.Name)
				}
			}
			for rel, want := range map[*mockengine.Resource]map[string]any{
				base:   {"name": "istio-base", "chart": "base", "version": "1.30.3", "namespace": "istio-system", "repositoryOpts": map[string]any{"repo": "https://istio-release.storage.googleapis.com/charts"}},
				istiod: {"name": "istiod", "chart": "istiod", "version": "1.30.3", "namespace": "istio-system", "repositoryOpts": map[string]any{"repo": "https://istio-release.storage.googleapis.com/charts"}},
			} {
				for k, v := range want {
					if got := input(rel, k); !reflect.DeepEqual(got, v) {
						t.Errorf("%s: %s = %v, want %v", rel.Name, k, got, v)
					}
				}
				if !g.dependsOn(rel, g.namespace("istio-system")) {
					t.Errorf("%s does not wait for its namespace", rel.Name)
				}
			}
		}
	})
}

// TestIstioChartValuesAreTheCharts: what ztedge sets on the base and istiod charts exists in
// their values.yaml at 1.30.3 (under _internal_defaults_do_not_set, where both keep their defaults).
func TestIstioChartValuesAreTheCharts(t *testing.T) {
	for file, values := range map[string]map[string]any{
		"base-values.yaml":   components.IstioBaseValues("istio-system"),
		"istiod-values.yaml": components.IstiodValues("istio-system"),
	} {
		chart := istioChart(t, file)
		if unknown := chart.UnknownKeys(values); len(unknown) > 0 {
			t.Errorf("%s: values the chart does not define: %v", file, unknown)
		}
		// The check can fail: a misspelt key is reported.
		if unknown := chart.UnknownKeys(map[string]any{"global": map[string]any{"istioNamespce": "x"}}); len(unknown) != 1 {
			t.Errorf("%s: a misspelt key was not reported: %v", file, unknown)
		}
	}
}

func istioChart(t *testing.T, file string) *chartvalues.Chart {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), istioDir, file))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]any
	if err := yaml.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	defaults, ok := all["_internal_defaults_do_not_set"].(map[string]any)
	if !ok {
		t.Fatalf("%s has no _internal_defaults_do_not_set", file)
	}
	sub, err := yaml.Marshal(defaults)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chartvalues.ParseChart(sub, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMeshPodValuesAreTheChart: the pod values the meshes add are keys of the emissary-ingress
// chart 4.1.0 (Edge Stack passes them to that subchart).
func TestMeshPodValuesAreTheChart(t *testing.T) {
	chart := loadChart(t, emissaryValuesFile)
	for name, values := range map[string]map[string]any{"istio": components.IstioAmbassadorPodValues(), "consul": components.ConsulAmbassadorPodValues()} {
		if unknown := chart.UnknownKeys(values); len(unknown) > 0 {
			t.Errorf("%s: values the chart does not define: %v", name, unknown)
		}
	}
}

func meshObject(t *testing.T, g *graph, kind, ns, name string) *mockengine.Resource {
	t.Helper()
	for _, o := range g.meshObjects() {
		if strings.HasSuffix(o.Type, ":"+kind) && input(o, "metadata", "namespace") == ns && input(o, "metadata", "name") == name {
			return o
		}
	}
	t.Fatalf("no %s %s/%s", kind, ns, name)
	return nil
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	s, err := yamlJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConsulWiring: the certificate sync (least privilege, token only from its Secret, ready
// only with certificates), the token for Emissary's Consul watches, intentions admitting only
// Ambassador, the NetworkPolicies Consul needs, and the order.
func TestConsulWiring(t *testing.T) {
	forEachMeshRun(t, components.UpstreamMtlsConsul, func(t *testing.T, r edgeRun) {
		g, cfg := r.g, r.cfg
		token := g.one(typeSecret, "consul-token")
		if input(token, "metadata", "name") != "consul-acl-token" || !isSecret(token, "stringData") || input(token, "stringData", "token") != testConsulToken {
			t.Errorf("the ACL token Secret: name %v, secret %v", input(token, "metadata", "name"), isSecret(token, "stringData"))
		}
		rel := ambassadorRelease(g)
		if !g.dependsOn(rel, token) {
			t.Errorf("Ambassador's pods start before the token Secret they read")
		}
		v := podValues(t, r)
		if !strings.Contains(str(v["envRaw"]), "CONSUL_HTTP_TOKEN") || !strings.Contains(str(v["envRaw"]), "name: consul-acl-token") || strings.Contains(str(v), testConsulToken) {
			t.Errorf("Ambassador's env must take CONSUL_HTTP_TOKEN from the Secret: %v", v["envRaw"])
		}
		sync := g.one(typeDeployment, "consul-sync")
		c := input(sync, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
		if c["image"] != cfg.Auth.Image || !reflect.DeepEqual(c["args"], toAnyList(components.ConsulSyncArgs(testConsulAddress, "dc1"))) {
			t.Errorf("consul-cert-sync container image %v args %v", c["image"], c["args"])
		}
		if strings.Contains(mustJSON(t, input(sync)), testConsulToken) {
			t.Errorf("the ACL token is in the Deployment")
		}
		env := mustJSON(t, c["env"])
		if !strings.Contains(env, `"secretKeyRef":{"key":"token","name":"consul-acl-token"}`) {
			t.Errorf("consul-cert-sync env %s", env)
		}
		if c["readinessProbe"] == nil {
			t.Errorf("consul-cert-sync has no readiness probe: the TLSContext could name empty Secrets")
		}
		checkHardened(t, sync)
		role := g.one(typeRole, "consul-sync")
		wantRules := []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"secrets"}, "resourceNames": []any{"consul-connect-leaf", "consul-connect-roots"}, "verbs": []any{"get", "patch"}}}
		if !reflect.DeepEqual(input(role, "rules"), wantRules) {
			t.Errorf("consul-cert-sync's Role %v, want %v", input(role, "rules"), wantRules)
		}
		binding := g.one(typeRoleBinding, "consul-sync")
		if !g.dependsOn(sync, binding) || !g.dependsOn(sync, token) {
			t.Errorf("consul-cert-sync starts before its RoleBinding or token")
		}
		for _, s := range []string{"consul-leaf", "consul-roots"} {
			sec := g.one(typeSecret, s)
			if !g.dependsOn(sync, sec) {
				t.Errorf("consul-cert-sync starts before Secret %s exists", s)
			}
		}
		// Intentions: only Ambassador, the rest denied.
		for _, b := range cfg.Edge.Backends {
			si := meshObject(t, g, "ServiceIntentions", b.Namespace, b.ServiceName())
			want := map[string]any{"destination": map[string]any{"name": b.ServiceName()}, "sources": []any{
				map[string]any{"name": "ambassador", "action": "allow"}, map[string]any{"name": "*", "action": "deny"},
			}}
			if got := input(si, "spec"); !reflect.DeepEqual(got, want) {
				t.Errorf("ServiceIntentions %s: %v", b.Name, got)
			}
			p := meshPolicy(t, g, b.Namespace, b.Name+"-sidecar-from-ambassador")
			naming := components.AmbassadorNamesFor(cfg.Edge.Edition)
			if got, want := mustJSON(t, rulesAs(p.ingress)), mustJSON(t, []any{peerRule(cfg.Edge.Namespace, naming.PodLabels, 20000)}); got != want || !reflect.DeepEqual(p.pods, toAny(b.Selector())) {
				t.Errorf("%s sidecar ingress %s, want %s", b.Name, got, want)
			}
		}
		// Ambassador and the sync reach Consul's servers only.
		consulRule := map[string]any{"peers": []any{map[string]any{"ipBlock": map[string]any{"cidr": testConsulCidr}}}, "ports": []any{map[string]any{"protocol": "TCP", "port": float64(8501)}}}
		amb := meshPolicy(t, g, cfg.Edge.Namespace, "ambassador-to-consul")
		if rules := rulesAs(amb.egress); len(rules) != 1+len(cfg.Edge.Backends) || mustJSON(t, rules[0]) != mustJSON(t, consulRule) {
			t.Errorf("ambassador-to-consul egress %s", mustJSON(t, rules))
		}
		syncEgress := meshPolicy(t, g, cfg.Edge.Namespace, "consul-cert-sync-egress")
		if rules := rulesAs(syncEgress.egress); len(rules) != 2 || mustJSON(t, rules[0]) != mustJSON(t, consulRule) || !reflect.DeepEqual(syncEgress.pods, toAny(components.ConsulSyncLabels)) {
			t.Errorf("consul-cert-sync-egress %s", mustJSON(t, rules))
		}
	})
}

// TestEveryMeshObjectMatchesItsCRD: every Istio and Consul object, and every getambassador.io
// object of the mesh runs, validates against the pinned CRDs (Istio 1.30.3's crd-all.gen.yaml,
// consul-k8s 1.9.11's ServiceIntentions, Emissary 4.1.0's), at the version the CRD stores.
func TestEveryMeshObjectMatchesItsCRD(t *testing.T) {
	root := repoRoot(t)
	mesh, err := crdschema.Load(filepath.Join(root, istioDir, "crd-all.gen.yaml"), filepath.Join(root, consulIntentions))
	if err != nil {
		t.Fatal(err)
	}
	amb := ambassadorSchemas(t)
	var mu sync.Mutex
	seen := map[string]bool{}
	forEachMeshModeRun(t, func(t *testing.T, mode string, r edgeRun) {
		for _, o := range r.g.meshObjects() {
			obj, _ := plain(o).(map[string]any)
			kind := str(obj["kind"])
			mu.Lock()
			seen[kind] = true
			mu.Unlock()
			if obj["apiVersion"] != mesh.StorageVersion(kind) {
				t.Errorf("%s %s is %v; the CRD stores %s", kind, o.Name, obj["apiVersion"], mesh.StorageVersion(kind))
			}
			for _, err := range mesh.Validate(obj) {
				t.Errorf("%s %s: %v", o.Type, o.Name, err)
			}
		}
		for _, o := range r.g.ambassadorObjects() {
			obj, _ := plain(o).(map[string]any)
			mu.Lock()
			seen[str(obj["kind"])] = true
			mu.Unlock()
			for _, err := range amb.Validate(obj) {
				t.Errorf("%s %s: %v", o.Type, o.Name, err)
			}
		}
	})
	for _, k := range []string{"Sidecar", "PeerAuthentication", "AuthorizationPolicy", "ServiceIntentions", "ConsulResolver", "TLSContext", "Mapping"} {
		if !seen[k] {
			t.Errorf("no %s was validated", k)
		}
	}
	// The check can fail: a misspelt field of each mesh kind is reported.
	for kind, obj := range map[string]map[string]any{
		"PeerAuthentication":  {"apiVersion": components.IstioSecurityAPI, "spec": map[string]any{"mtls": map[string]any{"mod": "STRICT"}}},
		"AuthorizationPolicy": {"apiVersion": components.IstioSecurityAPI, "spec": map[string]any{"rules": []any{map[string]any{"from": []any{map[string]any{"source": map[string]any{"principal": []any{"x"}}}}}}}},
		"Sidecar":             {"apiVersion": components.IstioNetworkingAPI, "spec": map[string]any{"egress": []any{map[string]any{"host": []any{"~/*"}}}}},
		"ServiceIntentions":   {"apiVersion": components.ConsulIntentionsAPI, "spec": map[string]any{"destination": map[string]any{"nam": "x"}}},
	} {
		obj["kind"] = kind
		obj["metadata"] = map[string]any{"name": "x", "namespace": "y"}
		if errs := mesh.Validate(obj); len(errs) == 0 {
			t.Errorf("%s with a misspelt field passed", kind)
		}
	}
}

// TestPkiModeHasNoMesh: the default stacks emit no mesh object and keep the PKI's TLSContext.
func TestPkiModeHasNoMesh(t *testing.T) {
	for _, stack := range append(slices.Clone(stackFiles), "local") {
		g := mustRun(t, stack)
		if objs := g.meshObjects(); len(objs) != 0 {
			t.Errorf("%s: mesh objects in pki mode: %d", stack, len(objs))
		}
		g.object("TLSContext", components.UpstreamTLSContext)
		for _, m := range g.kind("Mapping") {
			if spec(m, "bypass_auth") != true && spec(m, "tls") != components.UpstreamTLSContext {
				t.Errorf("%s: Mapping %s tls %v", stack, m.Name, spec(m, "tls"))
			}
		}
	}
}

// TestMeshConfigErrors: a mesh mode without what it needs, or a combination that cannot work,
// is refused before anything is created, naming the key and the reason.
func TestMeshConfigErrors(t *testing.T) {
	consul := func(edit map[string]string) map[string]string {
		out := meshEdits(components.UpstreamMtlsConsul)
		for k, v := range edit {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name string
		edit map[string]string
		want []string
	}{
		{"unknown mode", map[string]string{"ztedge:upstreamMtls": "linkerd"}, []string{"ztedge:upstreamMtls", "pki", "istio or consul"}},
		{"consul without address", consul(map[string]string{"ztedge:consulAddress": ""}), []string{"ztedge:consulAddress", "is required with upstreamMtls consul"}},
		{"consul address not a URL", consul(map[string]string{"ztedge:consulAddress": "consul:8500"}), []string{"ztedge:consulAddress", "not https://host[:port]"}},
		{"consul token over the network in clear", consul(map[string]string{"ztedge:consulAddress": "http://10.0.40.10:8500"}), []string{"ztedge:consulAddress", "clear text outside the cluster"}},
		{"consul without datacenter", consul(map[string]string{"ztedge:consulDatacenter": ""}), []string{"ztedge:consulDatacenter", "is required"}},
		{"consul without token", consul(map[string]string{"ztedge:consulToken": ""}), []string{"ztedge:consulToken", "is required", "--secret"}},
		{"consul without server CIDRs", consul(map[string]string{"ztedge:consulServerCidrs": "[]"}), []string{"ztedge:consulServerCidrs", "is required"}},
		{"consul server CIDR everything", consul(map[string]string{"ztedge:consulServerCidrs": `["0.0.0.0/0"]`}), []string{"ztedge:consulServerCidrs", "admits every address"}},
		{"consul server CIDR with host bits", consul(map[string]string{"ztedge:consulServerCidrs": `["10.0.40.1/24"]`}), []string{"ztedge:consulServerCidrs", "not a CIDR"}},
		{"consul keys in pki mode", map[string]string{"ztedge:consulAddress": testConsulAddress}, []string{"ztedge:upstreamMtls", "is pki but consul* keys are set"}},
		{"istio install in pki mode", map[string]string{"ztedge:istioInstall": "true"}, []string{"ztedge:istioInstall", "only with upstreamMtls istio"}},
		{"istio install in consul mode", consul(map[string]string{"ztedge:istioInstall": "true"}), []string{"ztedge:istioInstall", "one mesh"}},
		{"consul keys in istio mode", map[string]string{"ztedge:upstreamMtls": "istio", "ztedge:consulAddress": testConsulAddress}, []string{"ztedge:upstreamMtls", "is istio but consul* keys are set"}},
		{"istio version not checked", map[string]string{"ztedge:upstreamMtls": "istio", "ztedge:istioInstall": "true", "ztedge:istioVersion": "1.22.0"}, []string{"ztedge:istioVersion", "not supported", "1.30.3"}},
		{"istio chart repository", map[string]string{"ztedge:upstreamMtls": "istio", "ztedge:istioInstall": "true", "ztedge:istioChartRepository": "http://charts.example.com"}, []string{"ztedge:istioChartRepository", "https://"}},
		{"istio namespace", map[string]string{"ztedge:upstreamMtls": "istio", "ztedge:istioNamespace": "Istio_System"}, []string{"ztedge:istioNamespace", "not a Kubernetes namespace name"}},
		{"istio backend in Ambassador's namespace", map[string]string{"ztedge:upstreamMtls": "istio", "ztedge:backends": `[{"name":"a","namespace":"ambassador","port":8080,"prefix":"/a/"}]`}, []string{"ztedge:backends", `backend "a" is in ambassadorNamespace`, "namespace of their own"}},
		{"istio backend in istiod's namespace", map[string]string{"ztedge:upstreamMtls": "istio", "ztedge:backends": `[{"name":"a","namespace":"istio-system","port":8080,"prefix":"/a/"}]`}, []string{"ztedge:backends", `"istio-system"`, "must not be labelled"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := stackConfig(t, "dev", tc.edit)
			if tc.edit["ztedge:consulToken"] != "" {
				src.Secrets["ztedge:consulToken"] = true
			}
			_, err := stacks.Load(src, "dev")
			if err == nil {
				t.Fatalf("accepted %v", tc.edit)
			}
			found := false
			for _, line := range strings.Split(err.Error(), "\n") {
				ok := true
				for _, w := range tc.want {
					ok = ok && strings.Contains(line, w)
				}
				found = found || ok
			}
			if !found {
				t.Errorf("no problem line contains all of %q:\n%v", tc.want, err)
			}
			// Nothing is created.
			g, err := run(t, "dev", src)
			if err == nil || len(g.all) != 0 {
				t.Errorf("program ran (err %v) and registered %d resources", err, len(g.all))
			}
		})
	}
	// A token set in plain text is refused too.
	src := stackConfig(t, "dev", consul(nil))
	if _, err := stacks.Load(src, "dev"); err == nil || !strings.Contains(err.Error(), "ztedge:consulToken: is a secret") {
		t.Errorf("a plain-text consulToken was accepted: %v", err)
	}
}

// TestRenderShowsTheMesh: `ztedge render` of the prod stack with examples/mesh/<mode>.yaml
// appended (what .ci/policy.sh renders) lists the mesh objects, and the Consul token does not
// appear in any file.
func TestRenderShowsTheMesh(t *testing.T) {
	root := repoRoot(t)
	want := map[string][]string{
		"istio": {
			"kubernetes/ambassador/sidecar-ambassador-certificates-only.yaml", "kubernetes/ambassador/tlscontext-istio-upstream.yaml",
			"kubernetes/orders/peerauthentication-orders-strict.yaml", "kubernetes/orders/authorizationpolicy-orders-from-ambassador.yaml",
			"kubernetes/orders/networkpolicy-sidecars-to-istiod.yaml", "helm/istio-system-istio-base.yaml", "helm/istio-system-istiod.yaml",
		},
		"consul": {
			"kubernetes/ambassador/consulresolver-consul-dc1.yaml", "kubernetes/ambassador/tlscontext-consul-upstream.yaml",
			"kubernetes/ambassador/deployment-consul-cert-sync.yaml", "kubernetes/ambassador/role-consul-cert-sync.yaml",
			"kubernetes/orders/serviceintentions-orders.yaml",
		},
	}
	for mode, files := range want {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			prod, err := os.ReadFile(filepath.Join(root, "Pulumi.prod.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			fragment, err := os.ReadFile(filepath.Join(root, "examples/mesh", mode+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "Pulumi.prod.yaml"), append(prod, fragment...), 0o644); err != nil {
				t.Fatal(err)
			}
			src, err := stacks.ReadStackFile(dir, "prod")
			if err != nil {
				t.Fatal(err)
			}
			if src.Values["ztedge:upstreamMtls"] != mode {
				t.Fatalf("the fragment did not land in the config block: upstreamMtls %q", src.Values["ztedge:upstreamMtls"])
			}
			g, err := run(t, "prod", src)
			if err != nil {
				t.Fatal(err)
			}
			out, err := render.NewBundle(g.all).YAMLFiles()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if _, ok := out[f]; !ok {
					t.Errorf("render has no %s", f)
				}
			}
			for name, b := range out {
				if strings.Contains(string(b), stacks.SecretPlaceholder) {
					t.Errorf("%s shows the Consul token placeholder in clear", name)
				}
			}
		})
	}
}
