package tests

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

const (
	typeNetworkPolicy = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
	typeDeployment    = "kubernetes:apps/v1:Deployment"
)

// np is a NetworkPolicy as plain data.
type np struct {
	r         *mockengine.Resource
	namespace string
	pods      map[string]any // spec.podSelector.matchLabels; empty: every pod
	types     []any
	ingress   []any
	egress    []any
}

func policies(g *graph) []np {
	var out []np
	for _, r := range g.ofType(typeNetworkPolicy) {
		p := np{r: r, namespace: str(input(r, "metadata", "namespace"))}
		p.pods, _ = input(r, "spec", "podSelector", "matchLabels").(map[string]any)
		p.types, _ = input(r, "spec", "policyTypes").([]any)
		p.ingress, _ = input(r, "spec", "ingress").([]any)
		p.egress, _ = input(r, "spec", "egress").([]any)
		out = append(out, p)
	}
	return out
}

// policyRun is one configuration the policy tests cover: both stack files and Edge Stack.
var policyRuns = map[string]func(t *testing.T) stacks.MapSource{
	"dev":        func(t *testing.T) stacks.MapSource { return stackConfig(t, "dev", nil) },
	"prod":       func(t *testing.T) stacks.MapSource { return stackConfig(t, "prod", nil) },
	"edge-stack": edgeStackConfig,
}

func stackOf(name string) string {
	if name == "prod" {
		return "prod"
	}
	return "dev"
}

func forEachPolicyRun(t *testing.T, f func(t *testing.T, g *graph, cfg *stacks.Config)) {
	for name, src := range policyRuns {
		t.Run(name, func(t *testing.T) {
			s := src(t)
			cfg, err := stacks.Load(s, stackOf(name))
			if err != nil {
				t.Fatal(err)
			}
			g, err := run(t, stackOf(name), s)
			if err != nil {
				t.Fatal(err)
			}
			f(t, g, cfg)
		})
	}
}

// TestDefaultDenyEverywhere: every edge namespace denies all traffic unless a policy allows it,
// and allows DNS to CoreDNS only.
func TestDefaultDenyEverywhere(t *testing.T) {
	forEachPolicyRun(t, func(t *testing.T, g *graph, cfg *stacks.Config) {
		namespaces := []string{cfg.Edge.Namespace}
		for _, b := range cfg.Edge.Backends {
			namespaces = append(namespaces, b.Namespace)
		}
		dns := []any{map[string]any{
			"to":    []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "kube-system"}}, "podSelector": map[string]any{"matchLabels": map[string]any{"k8s-app": "kube-dns"}}}},
			"ports": []any{map[string]any{"protocol": "UDP", "port": float64(53)}, map[string]any{"protocol": "TCP", "port": float64(53)}},
		}}
		for _, ns := range namespaces {
			deny, allowDNS := false, false
			for _, p := range policies(g) {
				if p.namespace != ns || len(p.pods) != 0 {
					continue
				}
				if reflect.DeepEqual(p.types, []any{"Ingress", "Egress"}) && p.ingress == nil && p.egress == nil {
					deny = true
				}
				if reflect.DeepEqual(p.types, []any{"Egress"}) && reflect.DeepEqual(p.egress, dns) {
					allowDNS = true
				}
			}
			if !deny || !allowDNS {
				t.Errorf("namespace %s: default deny %v, DNS egress %v", ns, deny, allowDNS)
			}
			if !g.dependsOn(firstPolicyIn(g, ns), g.namespace(ns)) {
				t.Errorf("namespace %s: its policies do not wait for it", ns)
			}
		}
	})
}

func firstPolicyIn(g *graph, ns string) *mockengine.Resource {
	for _, p := range policies(g) {
		if p.namespace == ns {
			return p.r
		}
	}
	return nil
}

// TestNoAllowAll: every rule names its peers and its ports; no peer is "every namespace" or
// an open CIDR without an exception list.
func TestNoAllowAll(t *testing.T) {
	forEachPolicyRun(t, func(t *testing.T, g *graph, _ *stacks.Config) {
		for _, p := range policies(g) {
			check := func(dir string, rules []any, peersKey string) {
				for _, r := range rules {
					rule := r.(map[string]any)
					peers, _ := rule[peersKey].([]any)
					ports, _ := rule["ports"].([]any)
					if len(peers) == 0 || len(ports) == 0 {
						t.Errorf("%s: %s rule %v allows every peer or every port", p.r.Name, dir, rule)
					}
					for _, pe := range peers {
						peer := pe.(map[string]any)
						if ns, ok := peer["namespaceSelector"].(map[string]any); ok && len(ns) == 0 {
							t.Errorf("%s: %s peer selects every namespace", p.r.Name, dir)
						}
						if block, ok := peer["ipBlock"].(map[string]any); ok && block["cidr"] == "0.0.0.0/0" && block["except"] == nil {
							t.Errorf("%s: %s peer is the whole internet", p.r.Name, dir)
						}
					}
				}
			}
			check("ingress", p.ingress, "from")
			check("egress", p.egress, "to")
		}
	})
}

// TestBackendsOnlyFromAmbassador: in a backend namespace, the only traffic allowed in comes from
// Ambassador's pods (in Ambassador's namespace: both selectors in one peer) on the backend port.
func TestBackendsOnlyFromAmbassador(t *testing.T) {
	forEachPolicyRun(t, func(t *testing.T, g *graph, cfg *stacks.Config) {
		name := "emissary-ingress"
		if cfg.Edge.Edition == "edge-stack" {
			name = "edge-stack"
		}
		fromAmbassador := map[string]any{
			"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": cfg.Edge.Namespace}},
			"podSelector":       map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}},
		}
		backendNamespaces := map[string]bool{}
		for _, b := range cfg.Edge.Backends {
			backendNamespaces[b.Namespace] = true
			found := false
			for _, p := range policies(g) {
				if p.namespace != b.Namespace || !reflect.DeepEqual(p.pods, toAny(b.Selector())) || p.ingress == nil {
					continue
				}
				found = true
				want := []any{map[string]any{"from": []any{fromAmbassador}, "ports": []any{map[string]any{"protocol": "TCP", "port": float64(b.Port)}}}}
				if !reflect.DeepEqual(p.ingress, want) {
					t.Errorf("backend %s ingress %v\nwant %v", b.Name, p.ingress, want)
				}
			}
			if !found {
				t.Errorf("backend %s: no policy admits Ambassador", b.Name)
			}
		}
		for _, p := range policies(g) {
			if !backendNamespaces[p.namespace] {
				continue
			}
			for _, r := range p.ingress {
				if from := r.(map[string]any)["from"]; !reflect.DeepEqual(from, []any{fromAmbassador}) {
					t.Errorf("%s admits %v into a backend namespace", p.r.Name, from)
				}
			}
			if p.egress != nil && !strings.HasSuffix(p.r.Name, "/allow-dns") {
				t.Errorf("%s: backends get no egress from ztedge but DNS", p.r.Name)
			}
		}
	})
}

func toAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestAmbassadorFlows pins Ambassador's own policies: the load balancer in, and out only to the
// backends, jwt-auth, the Kubernetes API and (Edge Stack) its Redis.
func TestAmbassadorFlows(t *testing.T) {
	forEachPolicyRun(t, func(t *testing.T, g *graph, cfg *stacks.Config) {
		vpc := str(g.one("aws:ec2/vpc:Vpc").Inputs.Mappable()["cidrBlock"])
		ns := cfg.Edge.Namespace
		byName := map[string]np{}
		for _, p := range policies(g) {
			byName[strings.TrimPrefix(p.r.Name, ns+"/")] = p
		}
		tcp := func(ports ...int) []any {
			var out []any
			for _, p := range ports {
				out = append(out, map[string]any{"protocol": "TCP", "port": float64(p)})
			}
			return out
		}
		cidr := map[string]any{"ipBlock": map[string]any{"cidr": vpc}}
		// The load balancer's (public) subnets only: TestOnlyTheLoadBalancerReachesEnvoy.
		public, _, err := components.SubnetCidrs(vpc, cfg.Network.AvailabilityZones)
		if err != nil {
			t.Fatal(err)
		}
		var lbPeers []any
		for _, c := range public {
			lbPeers = append(lbPeers, map[string]any{"ipBlock": map[string]any{"cidr": c}})
		}
		if got, want := byName["ambassador-ingress"].ingress, []any{map[string]any{"from": lbPeers, "ports": tcp(8443, 8877)}}; !reflect.DeepEqual(got, want) {
			t.Errorf("Ambassador ingress %v\nwant %v", got, want)
		}
		pods := func(labels map[string]any) map[string]any {
			return map[string]any{"podSelector": map[string]any{"matchLabels": labels}}
		}
		var want []any
		for _, b := range cfg.Edge.Backends {
			peer := pods(toAny(b.Selector()))
			peer["namespaceSelector"] = map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": b.Namespace}}
			want = append(want, map[string]any{"to": []any{peer}, "ports": tcp(b.Port)})
		}
		want = append(want, map[string]any{"to": []any{pods(map[string]any{"app.kubernetes.io/name": "jwt-auth"})}, "ports": tcp(3000)})
		if _, ok := byName["ratelimit-from-ambassador"]; ok {
			want = append(want, map[string]any{"to": []any{pods(byName["ratelimit-from-ambassador"].pods)}, "ports": tcp(8081)})
		}
		if cfg.Edge.Edition == "edge-stack" {
			want = append(want, map[string]any{"to": []any{pods(map[string]any{"app.kubernetes.io/name": "edge-stack-redis", "app.kubernetes.io/instance": "edge-stack"})}, "ports": tcp(6379)})
		}
		want = append(want, map[string]any{"to": []any{cidr}, "ports": tcp(443)})
		if got := byName["ambassador-egress"].egress; !reflect.DeepEqual(got, want) {
			t.Errorf("Ambassador egress\n got %v\nwant %v", got, want)
		}
		if got := byName["jwt-auth-from-ambassador"].ingress; len(got) != 1 || !reflect.DeepEqual(got[0].(map[string]any)["ports"], tcp(3000)) {
			t.Errorf("jwt-auth ingress %v", got)
		}
	})
}

// TestEveryEdgeWorkloadIsAdmitted: each Deployment the program runs in Ambassador's namespace is
// selected by a policy that admits traffic; otherwise default deny cuts it off (a label that
// does not match the policies is caught here).
func TestEveryEdgeWorkloadIsAdmitted(t *testing.T) {
	forEachPolicyRun(t, func(t *testing.T, g *graph, cfg *stacks.Config) {
		for _, d := range g.ofType(typeDeployment) {
			if input(d, "metadata", "namespace") != cfg.Edge.Namespace {
				continue
			}
			labels, _ := input(d, "spec", "template", "metadata", "labels").(map[string]any)
			admitted := false
			for _, p := range policies(g) {
				if p.namespace == cfg.Edge.Namespace && p.ingress != nil && len(p.pods) > 0 && subset(p.pods, labels) {
					admitted = true
				}
			}
			if !admitted {
				t.Errorf("Deployment %s (pods %v): no NetworkPolicy admits traffic to it", d.Name, labels)
			}
		}
	})
}

func subset(sel, labels map[string]any) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestOidcEgressOnlyWithOidc(t *testing.T) {
	g := mustRun(t, "dev")
	for _, p := range policies(g) {
		if strings.HasSuffix(p.r.Name, "/jwt-auth-to-oidc") {
			t.Errorf("jwt-auth may reach the internet although no OIDC issuer is configured")
		}
	}
	src := stackConfig(t, "dev", map[string]string{
		"ztedge:oidcIssuer": "https://login.example.com", "ztedge:oidcAudience": "ztedge", "ztedge:oidcJwksUrl": "https://login.example.com/jwks",
		// OIDC exchange maps an ID token's sub to a configured user.
		"ztedge:authUsers": `[{"username":"alice","oidcSubject":"00u1","permissions":["orders:read"],"services":["/api/orders/"]}]`,
	})
	src.Secrets["ztedge:authUsers"] = true
	g = mustRunSource(t, src)
	vpc := str(g.one("aws:ec2/vpc:Vpc").Inputs.Mappable()["cidrBlock"])
	for _, p := range policies(g) {
		if strings.HasSuffix(p.r.Name, "/jwt-auth-to-oidc") {
			want := []any{map[string]any{
				"to":    []any{map[string]any{"ipBlock": map[string]any{"cidr": "0.0.0.0/0", "except": []any{vpc}}}},
				"ports": []any{map[string]any{"protocol": "TCP", "port": float64(443)}},
			}}
			if !reflect.DeepEqual(p.egress, want) {
				t.Errorf("OIDC egress %v\nwant %v", p.egress, want)
			}
			return
		}
	}
	t.Errorf("with an OIDC issuer, jwt-auth gets no HTTPS egress to fetch its JWKS")
}
