package tests

import (
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

// The edge's trust boundary (README "Security"): no way to a backend around the auth check.

// exposures are the objects that open a way to Envoy from outside the cluster: the ALB Ingress,
// and any LoadBalancer or NodePort Service (the NLB, the local stack's Service).
func (g *graph) exposures() []*mockengine.Resource {
	out := append([]*mockengine.Resource(nil), g.ofType(typeIngress)...)
	for _, s := range g.ofType(typeService) {
		switch input(s, "spec", "type") {
		case "LoadBalancer", "NodePort":
			out = append(out, s)
		}
	}
	return out
}

// TestNoRouteBeforeAuth: every Mapping that does not bypass auth, and everything that exposes
// Envoy, waits for the AuthService and for the jwt-auth Deployment (which the provider awaits
// until Available). So on the first `up` no backend route exists without ext_authz, and destroy
// (or a replacement of the AuthService) removes the routes and the exposure first.
func TestNoRouteBeforeAuth(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		g := r.g
		authService := g.object("AuthService", components.AuthName)
		authPods := g.one(typeDeployment, components.AuthName)
		gate := func(what string, o *mockengine.Resource) {
			t.Helper()
			if !g.dependsOn(o, authService) {
				t.Errorf("%s %s does not wait for the AuthService: Emissary would serve it without ext_authz", what, o.Name)
			}
			if !g.dependsOn(o, authPods) {
				t.Errorf("%s %s does not wait for the jwt-auth Deployment: checks would have nobody to answer", what, o.Name)
			}
		}
		checked := 0
		for _, m := range g.kind("Mapping") {
			if spec(m, "bypass_auth") == true {
				continue
			}
			checked++
			gate("Mapping", m)
			// A DependsOn edge does not make the engine replace the Mapping with the AuthService;
			// an input taken from it does (AuthService.RouteNamespace).
			if !slices.Contains(m.PropertyDependencies["metadata"], authService.URN) {
				t.Errorf("Mapping %s: no input comes from the AuthService (metadata deps %v): replacing the AuthService would leave the route up without it", m.Name, m.PropertyDependencies["metadata"])
			}
		}
		if checked < len(r.cfg.Edge.Backends) || checked == 0 {
			t.Fatalf("%d checked Mappings for %d backends", checked, len(r.cfg.Edge.Backends))
		}
		exposed := g.exposures()
		if len(exposed) != 1 {
			t.Fatalf("%d objects expose Envoy, want exactly one (Ingress, NLB Service or local Service)", len(exposed))
		}
		for _, e := range exposed {
			gate(e.Type, e)
		}
		// The gate must not be circular: the auth layer itself waits for none of the routes.
		for _, m := range g.kind("Mapping") {
			if spec(m, "bypass_auth") != true && g.dependsOn(authService, m) {
				t.Errorf("the AuthService waits for Mapping %s", m.Name)
			}
		}
	})
}

// ambassadorModule is the `ambassador` Module config the chart renders (both editions).
func ambassadorModule(t *testing.T, r edgeRun) map[string]any {
	t.Helper()
	values := releaseValues(t, r.g.one(typeRelease, "ambassador"))
	module := values["module"]
	if r.cfg.Edge.Edition == components.EditionEdgeStack {
		module = values["emissary-ingress"].(map[string]any)["module"]
	}
	m, _ := module.(map[string]any)
	return m
}

// TestEnvoyNormalises: in every mode Envoy rejects header names with underscores and escaped
// slashes and merges repeated slashes, so jwt-auth checks the path and headers the backend gets.
// (Emissary 4.1.0 always sets normalize_path itself; it is not a Module key.) The keys are checked
// against the ones Emissary reads (checkModule).
func TestEnvoyNormalises(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		m := ambassadorModule(t, r)
		checkModule(t, m)
		for k, want := range map[string]any{
			"headers_with_underscores_action":      "REJECT_REQUEST",
			"merge_slashes":                        true,
			"reject_requests_with_escaped_slashes": true,
		} {
			if m[k] != want {
				t.Errorf("ambassador Module %s = %v, want %v", k, m[k], want)
			}
		}
		if _, ok := m["normalize_path"]; ok {
			t.Errorf("normalize_path is not an Emissary 4.1.0 Module key (Emissary always normalises); drop it")
		}
	})
}

// loadBalancerSubnets are the subnets the new VPC gives the load balancer, by ID and CIDR: the
// public ones for an internet-facing load balancer, its own "-lb-" ones for an internal one.
func loadBalancerSubnets(g *graph, cfg *stacks.Config) (ids, cidrs []string) {
	marker := "-public-"
	if cfg.Edge.LoadBalancerScheme == "internal" {
		marker = "-lb-"
	}
	for _, s := range g.ofType("aws:ec2/subnet:Subnet") {
		if strings.Contains(s.Name, marker) {
			ids = append(ids, s.ID)
			cidrs = append(cidrs, str(input(s, "cidrBlock")))
		}
	}
	sort.Strings(ids)
	sort.Strings(cidrs)
	return ids, cidrs
}

// nodeSubnetCidrs are the node subnets' ranges (every pod's address is in one).
func nodeSubnetCidrs(g *graph) []string {
	var out []string
	for _, s := range g.ofType("aws:ec2/subnet:Subnet") {
		if strings.Contains(s.Name, "-private-") {
			out = append(out, str(input(s, "cidrBlock")))
		}
	}
	return out
}

// checkSubnetsAnnotation: the load balancer is pinned to exactly the load balancer subnets. The
// key is removed from a, so callers can compare the rest.
func checkSubnetsAnnotation(t *testing.T, g *graph, cfg *stacks.Config, a map[string]any, key string) {
	t.Helper()
	want, _ := loadBalancerSubnets(g, cfg)
	got := strings.Split(str(a[key]), ",")
	sort.Strings(got)
	if len(want) < 2 || !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want the load balancer subnets %v", key, a[key], want)
	}
	delete(a, key)
}

func overlaps(a, b string) bool {
	pa, errA := netip.ParsePrefix(a)
	pb, errB := netip.ParsePrefix(b)
	return errA == nil && errB == nil && pa.Overlaps(pb)
}

// ambassadorIngressCidrs are the ipBlock CIDRs the NetworkPolicies admit to Ambassador's pods, by
// port, from every policy that selects them (a second, looser policy would add to the first).
func ambassadorIngressCidrs(t *testing.T, g *graph, cfg *stacks.Config) map[float64][]string {
	t.Helper()
	amb := components.AmbassadorNamesFor(cfg.Edge.Edition).PodLabels
	out := map[float64][]string{}
	for _, p := range policies(g) {
		if input(p.r, "metadata", "namespace") != cfg.Edge.Namespace || !selectsAll(p.pods, amb) {
			continue
		}
		if strings.Contains(p.r.Parent, "ztedge:monitoring:Monitoring") {
			continue // Prometheus on the relay port only: TestPrometheusNeverReachesTheAdminPort
		}
		for _, rule := range p.ingress {
			rm, _ := rule.(map[string]any)
			from, _ := rm["from"].([]any)
			ports, _ := rm["ports"].([]any)
			if len(from) == 0 || len(ports) == 0 {
				t.Errorf("policy %s admits everyone or every port to Ambassador: %v", p.r.Name, rm)
				continue
			}
			for _, f := range from {
				fm, _ := f.(map[string]any)
				block, _ := fm["ipBlock"].(map[string]any)
				for _, port := range ports {
					n, _ := port.(map[string]any)["port"].(float64)
					if block == nil {
						t.Errorf("policy %s admits pods (%v) to Ambassador's port %v", p.r.Name, fm, n)
						continue
					}
					out[n] = append(out[n], str(block["cidr"]))
				}
			}
		}
	}
	return out
}

// selectsAll reports whether a policy's pod selector (nil: every pod) matches pods with labels.
func selectsAll(selector map[string]any, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestOnlyTheLoadBalancerReachesEnvoy: Envoy's ports (8443, and the admin port 8877 its health
// checks need) admit only the load balancer subnets, none of which overlaps a node subnet, where
// every pod has its address with the VPC CNI; the load balancer is pinned to those subnets. On the
// local stack the node CIDR is admitted (kube-proxy forwards Service traffic from the nodes).
func TestOnlyTheLoadBalancerReachesEnvoy(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		admitted := ambassadorIngressCidrs(t, r.g, r.cfg)
		if len(admitted) != 2 || admitted[components.AmbassadorHTTPSPort] == nil || admitted[components.AmbassadorAdminPort] == nil {
			t.Fatalf("Ambassador admits ports %v, want exactly %d and %d (health checks)", sortedPorts(admitted), components.AmbassadorHTTPSPort, components.AmbassadorAdminPort)
		}
		if r.cfg.Platform == stacks.PlatformLocal {
			for port, cidrs := range admitted {
				if !reflect.DeepEqual(cidrs, []string{r.cfg.Local.NodeCidr}) {
					t.Errorf("local: port %v admits %v, want the node CIDR %s only", port, cidrs, r.cfg.Local.NodeCidr)
				}
			}
			return
		}
		_, lbCidrs := loadBalancerSubnets(r.g, r.cfg)
		for port, cidrs := range admitted {
			sorted := append([]string(nil), cidrs...)
			sort.Strings(sorted)
			if !reflect.DeepEqual(sorted, lbCidrs) {
				t.Errorf("port %v admits %v, want exactly the load balancer subnets %v", port, sorted, lbCidrs)
			}
			for _, c := range cidrs {
				for _, node := range nodeSubnetCidrs(r.g) {
					if overlaps(c, node) {
						t.Errorf("port %v admits %s, which overlaps node subnet %s: any pod there reaches Envoy without the load balancer", port, c, node)
					}
				}
			}
		}
	})
}

func sortedPorts(m map[float64][]string) []float64 {
	var out []float64
	for p := range m {
		out = append(out, p)
	}
	sort.Float64s(out)
	return out
}

// proxyProtocol: the NLB of nlb-passthrough on EKS sends PROXY v2 (the local Service does not).
func proxyProtocol(cfg *stacks.Config) bool {
	return cfg.Platform != stacks.PlatformLocal && cfg.Edge.ClientAuth == components.ClientAuthNLBPassthrough
}

// TestRealClientAddressThroughTheNLB: in nlb-passthrough on EKS the NLB's target group sends PROXY
// protocol v2 and does not preserve client IPs (packets come from the NLB's subnets, which the
// NetworkPolicy admits), and the Listener reads the PROXY header before TLS, so Envoy — and
// jwt-auth, rate limits and logs after it — see the client's address. Nowhere else does a
// Listener accept a PROXY header: a client could then claim any address.
func TestRealClientAddressThroughTheNLB(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		l := r.g.one("kubernetes:" + components.AmbassadorAPIVersion + ":Listener")
		stack, _ := spec(l, "protocolStack").([]any)
		want := proxyProtocol(r.cfg)
		if want != (len(stack) > 0) {
			t.Fatalf("Listener protocolStack %v, protocol %v: PROXY wanted %v", stack, spec(l, "protocol"), want)
		}
		if want {
			if !reflect.DeepEqual(stack, []any{"PROXY", "TLS", "HTTP", "TCP"}) || spec(l, "protocol") != nil {
				t.Errorf("Listener protocolStack %v (protocol %v): PROXY must come before TLS (Emissary's HTTPSPROXY puts TLS first, emissary#4153)", stack, spec(l, "protocol"))
			}
			if spec(l, "securityModel") != "XFP" || spec(l, "l7Depth") != float64(0) {
				t.Errorf("Listener %v/%v: clients connect through the NLB at layer 4, no forwarding header is trusted", spec(l, "securityModel"), spec(l, "l7Depth"))
			}
			a := annotations(loadBalancerServices(r.g)[0])
			if a[nlb+"proxy-protocol"] != "*" || a[nlb+"target-group-attributes"] != "preserve_client_ip.enabled=false" {
				t.Errorf("NLB proxy-protocol %v, target-group-attributes %v", a[nlb+"proxy-protocol"], a[nlb+"target-group-attributes"])
			}
		}
		for _, s := range r.g.exposures() {
			if _, ok := annotations(s)[nlb+"proxy-protocol"]; ok && !want {
				t.Errorf("%s %s asks for PROXY protocol but the Listener does not read it", s.Type, s.Name)
			}
		}
	})
}

// TestAmbassadorsIdentityIsItsOwn: the upstream certificate Ambassador presents to backends comes
// from a CA of its own, which is all a backend trusts (its Secret's ca.crt); trusted clients'
// certificates come from another CA, which is all the edge's client-certificate checks trust
// (Host ca_secret, jwt-auth --client-ca, the ALB trust store). A trusted client that reaches a
// backend cannot pose as Ambassador, and Ambassador's upstream certificate is no trusted client.
func TestAmbassadorsIdentityIsItsOwn(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		g, ns := r.g, r.cfg.Edge.Namespace
		pem := func(ca string) string { return output(g.one(typeSelfSigned, ca), "certPem") }
		edgeCA, clientCA, upstreamCA := pem("pki-ca"), pem("pki-client-ca"), pem("pki-upstream-ca")
		if edgeCA == clientCA || clientCA == upstreamCA || edgeCA == upstreamCA {
			t.Fatalf("the PKI's CAs are not distinct")
		}
		signedBy := func(cert string) string {
			return str(input(g.one(typeSigned, cert), "caCertPem"))
		}
		if signedBy("pki-upstream") != upstreamCA {
			t.Errorf("Ambassador's upstream certificate is not issued by the upstream CA")
		}
		for _, tc := range r.cfg.Edge.TrustedClients {
			if signedBy("pki-client-"+tc.Name) != clientCA {
				t.Errorf("trusted client %s's certificate is not issued by the client CA", tc.Name)
			}
		}
		for _, b := range r.cfg.Edge.Backends {
			data, _ := plain(g.secretNamed(b.Namespace, components.BackendSecretName(b)), "stringData").(map[string]any)
			if data["ca.crt"] != upstreamCA {
				t.Errorf("backend %s trusts %.40q…, want the upstream CA only", b.Name, data["ca.crt"])
			}
			if signedBy("pki-backend-"+b.Name) != edgeCA {
				t.Errorf("backend %s's server certificate is not from the edge CA the TLSContext verifies", b.Name)
			}
		}
		// Where the edge checks client certificates, it trusts the client CA and nothing else.
		if components.EnvoyTerminatesTLS(r.cfg.Edge.ClientAuth) {
			secretName := spec(g.object("Host", components.EdgeHostName), "tls", "ca_secret")
			data, _ := plain(g.secretNamed(ns, str(secretName)), "stringData").(map[string]any)
			if data["tls.crt"] != clientCA {
				t.Errorf("Host ca_secret %v does not hold the client CA", secretName)
			}
		}
		for _, cm := range g.ofType(typeConfigMap) {
			if ca, ok := input(cm, "data", "ca.pem").(string); ok && ca != clientCA {
				t.Errorf("jwt-auth's --client-ca (%s) is not the client CA", cm.Name)
			}
		}
		for _, o := range g.ofType("aws:s3/bucketObjectv2:BucketObjectv2") {
			if input(o, "content") != clientCA {
				t.Errorf("the ALB trust store bundle %s is not the client CA", o.Name)
			}
		}
		if r.cfg.Edge.ClientAuth == components.ClientAuthALBVerify && len(g.ofType("aws:s3/bucketObjectv2:BucketObjectv2")) != 1 {
			t.Errorf("alb-verify without a trust store bundle")
		}
	})
}

// TestRedisNeedsItsPassword: ztedge's rate-limit Redis (Emissary) is a fixed, CVE-free version and
// requires a generated password from a Secret that only Redis and the rate-limit server read; the
// password is a Pulumi secret and is kept across updates (ignoreChanges), never regenerated under
// running pods.
func TestRedisNeedsItsPassword(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		if r.cfg.Edge.Edition != components.EditionEmissary {
			return // Edge Stack runs its own rate-limit service and Redis
		}
		g := r.g
		secret := g.secretNamed(r.cfg.Edge.Namespace, components.RateLimitRedisAuthSecret)
		password := str(input(secret, "stringData", components.RateLimitRedisAuthKey))
		if !isSecret(secret, "stringData") || len(password) < 40 {
			t.Errorf("Redis password: secret %v, %d characters; want a Pulumi secret of ≥ 256 bits", isSecret(secret, "stringData"), len(password))
		}
		if !reflect.DeepEqual(secret.IgnoreChanges, []string{"stringData", "data"}) {
			t.Errorf("the password Secret ignores changes to %v: a new random value on every update would lock the running pods out", secret.IgnoreChanges)
		}
		fromSecret := func(c map[string]any, name string) bool {
			for _, e := range c["env"].([]any) {
				e := e.(map[string]any)
				from, _ := e["valueFrom"].(map[string]any)
				ref, _ := from["secretKeyRef"].(map[string]any)
				if e["name"] == name && ref["name"] == components.RateLimitRedisAuthSecret && ref["key"] == components.RateLimitRedisAuthKey {
					return true
				}
			}
			return false
		}
		container := func(name string) map[string]any {
			d := g.one(typeDeployment, name)
			if !g.dependsOn(d, secret) {
				t.Errorf("Deployment %s does not wait for the password Secret", name)
			}
			return input(d, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
		}
		redis := container(components.RateLimitRedisName)
		args := strings.Join(func() []string {
			var out []string
			for _, a := range redis["args"].([]any) {
				out = append(out, str(a))
			}
			return out
		}(), " ")
		if !strings.Contains(args, "--requirepass $(REDIS_PASSWORD)") || !fromSecret(redis, "REDIS_PASSWORD") || !fromSecret(redis, "REDISCLI_AUTH") {
			t.Errorf("Redis does not require the Secret's password: args %q", args)
		}
		if strings.Contains(str(input(g.one(typeDeployment, components.RateLimitRedisName))), password) || strings.Contains(str(input(g.one(typeDeployment, components.RateLimitServiceName))), password) {
			t.Errorf("the password itself is in a Deployment")
		}
		if !fromSecret(container(components.RateLimitServiceName), "REDIS_AUTH") {
			t.Errorf("the rate-limit server does not send the password (REDIS_AUTH from the Secret)")
		}
		if img := str(redis["image"]); img != "redis:7.4.6-alpine" {
			t.Errorf("Redis image %s, want the pinned redis:7.4.6-alpine", img)
		}
	})
}

// TestExistingVpcAdmitsItsLoadBalancerSubnetsOnly: with an existing VPC, the NetworkPolicy admits
// exactly the configured load balancer subnets' CIDRs, and the load balancer is pinned to those
// subnets, in every client-auth mode (overlapping configurations are refused: TestConfigErrors).
func TestExistingVpcAdmitsItsLoadBalancerSubnetsOnly(t *testing.T) {
	for _, mode := range components.ClientAuthModes {
		t.Run(mode, func(t *testing.T) {
			edit := existingVpc(withClientAuth(mode, nil))
			src := stackConfig(t, "dev", edit)
			g, err := run(t, "dev", src)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := stacks.Load(src, "dev")
			if err != nil {
				t.Fatal(err)
			}
			for port, cidrs := range ambassadorIngressCidrs(t, g, cfg) {
				if !reflect.DeepEqual(cidrs, []string{"10.1.0.0/24", "10.1.1.0/24"}) {
					t.Errorf("port %v admits %v, want the load balancer subnets 10.1.0.0/24, 10.1.1.0/24", port, cidrs)
				}
			}
			exposed := g.exposures()
			if len(exposed) != 1 {
				t.Fatalf("%d exposures", len(exposed))
			}
			key := alb + "subnets"
			if mode == components.ClientAuthNLBPassthrough {
				key = nlb + "subnets"
			}
			if got := annotations(exposed[0])[key]; got != "subnet-0123456789abcdef0,subnet-0123456789abcdef1" {
				t.Errorf("%s = %v, want the load balancer subnets", key, got)
			}
		})
	}
}

// TestInternalLoadBalancerHasSubnetsOfItsOwn: an internal load balancer cannot use the public
// subnets, and the node subnets are where the pods are; so the new VPC carves private subnets for
// it alone (internal-elb role, routes inside the VPC only), the NetworkPolicy admits exactly those
// and the load balancer is pinned to them, in every client-auth mode.
func TestInternalLoadBalancerHasSubnetsOfItsOwn(t *testing.T) {
	for _, mode := range components.ClientAuthModes {
		t.Run(mode, func(t *testing.T) {
			src := stackConfig(t, "prod", withClientAuth(mode, map[string]string{"ztedge:loadBalancerScheme": "internal"}))
			cfg, err := stacks.Load(src, "prod")
			if err != nil {
				t.Fatal(err)
			}
			g, err := run(t, "prod", src)
			if err != nil {
				t.Fatal(err)
			}
			ids, cidrs := loadBalancerSubnets(g, cfg)
			if want := []string{"10.20.48.0/22", "10.20.52.0/22", "10.20.56.0/22"}; !reflect.DeepEqual(cidrs, want) {
				t.Fatalf("internal load balancer subnets %v, want %v", cidrs, want)
			}
			for _, s := range g.ofType("aws:ec2/subnet:Subnet") {
				tags, _ := input(s, "tags").(map[string]any)
				if isLB := strings.Contains(s.Name, "-lb-"); isLB != (tags["kubernetes.io/role/internal-elb"] == "1") {
					t.Errorf("subnet %s: internal-elb role %v; only the load balancer's own subnets may carry it", s.Name, tags["kubernetes.io/role/internal-elb"])
				}
			}
			for _, rt := range g.ofType("aws:ec2/routeTable:RouteTable") {
				if strings.HasSuffix(rt.Name, "-lb") && input(rt, "routes") != nil {
					t.Errorf("the load balancer subnets' route table has routes %v; it needs the VPC's local route only", input(rt, "routes"))
				}
			}
			for port, admitted := range ambassadorIngressCidrs(t, g, cfg) {
				sorted := append([]string(nil), admitted...)
				sort.Strings(sorted)
				if !reflect.DeepEqual(sorted, cidrs) {
					t.Errorf("port %v admits %v, want %v", port, sorted, cidrs)
				}
				for _, c := range admitted {
					for _, node := range nodeSubnetCidrs(g) {
						if overlaps(c, node) {
							t.Errorf("port %v admits %s, which overlaps node subnet %s", port, c, node)
						}
					}
				}
			}
			key := alb + "subnets"
			if mode == components.ClientAuthNLBPassthrough {
				key = nlb + "subnets"
			}
			exposed := g.exposures()
			if len(exposed) != 1 || len(ids) != 3 {
				t.Fatalf("%d exposures, %d load balancer subnets", len(exposed), len(ids))
			}
			checkSubnetsAnnotation(t, g, cfg, annotations(exposed[0]), key)
		})
	}
}

// TestClusterSubnetsHoldNoLoadBalancer: EKS puts its control-plane network interfaces in the
// cluster's subnets, and the API server's traffic to pods comes from there; so the cluster gets
// the node subnets only, never a subnet the load balancer is pinned to (whose CIDRs the
// NetworkPolicies admit to Envoy's ports): new VPC, internal load balancer, existing VPC, every mode.
func TestClusterSubnetsHoldNoLoadBalancer(t *testing.T) {
	sources := map[string]struct {
		stack string
		edit  map[string]string
	}{}
	for _, mode := range components.ClientAuthModes {
		sources["dev/"+mode] = struct {
			stack string
			edit  map[string]string
		}{"dev", withClientAuth(mode, nil)}
		sources["prod-internal/"+mode] = struct {
			stack string
			edit  map[string]string
		}{"prod", withClientAuth(mode, map[string]string{"ztedge:loadBalancerScheme": "internal"})}
		sources["existing-vpc/"+mode] = struct {
			stack string
			edit  map[string]string
		}{"dev", existingVpc(withClientAuth(mode, nil))}
	}
	for name, s := range sources {
		t.Run(name, func(t *testing.T) {
			g, err := run(t, s.stack, stackConfig(t, s.stack, s.edit))
			if err != nil {
				t.Fatal(err)
			}
			cluster := g.one("eks:index:Cluster")
			if v := input(cluster, "publicSubnetIds"); v != nil {
				t.Errorf("the cluster is given public subnets %v", v)
			}
			clusterSubnets, _ := input(cluster, "privateSubnetIds").([]any)
			if len(clusterSubnets) < 2 {
				t.Fatalf("cluster subnets %v", clusterSubnets)
			}
			exposed := g.exposures()
			if len(exposed) != 1 {
				t.Fatalf("%d exposures", len(exposed))
			}
			var lbSubnets []string
			for k, v := range annotations(exposed[0]) {
				if strings.HasSuffix(k, "/subnets") || strings.HasSuffix(k, "-load-balancer-subnets") {
					lbSubnets = strings.Split(str(v), ",")
				}
			}
			if len(lbSubnets) < 2 {
				t.Fatalf("the load balancer is not pinned to subnets: %v", annotations(exposed[0]))
			}
			for _, id := range clusterSubnets {
				if slices.Contains(lbSubnets, str(id)) {
					t.Errorf("cluster subnet %v is a load balancer subnet (%v)", id, lbSubnets)
				}
			}
		})
	}
}
