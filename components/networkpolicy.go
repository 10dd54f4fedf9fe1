package components

import (
	"fmt"
	"sort"

	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// PodPort is a set of pods (by labels) and the TCP port they serve on.
type PodPort struct {
	Labels map[string]string
	Port   int
}

// JwtAuth is jwt-auth's pods and port. The auth layer is built after the edge's NetworkPolicies,
// so both take them from here: its pods must carry these labels and listen on this port.
var JwtAuth = PodPort{Labels: map[string]string{"app.kubernetes.io/name": "jwt-auth"}, Port: 3000}

// kubeDNS selects CoreDNS on EKS (kube-system pods labelled k8s-app=kube-dns).
var kubeDNSPeer = peer{namespace: "kube-system", pods: map[string]string{"k8s-app": "kube-dns"}}

// NetworkPoliciesArgs describes who may talk to whom at the edge.
type NetworkPoliciesArgs struct {
	// AmbassadorNamespace and BackendNamespaces are outputs of the namespaces (policies wait for
	// them); AmbassadorNamespaceName is the plain name the backends' policies select.
	AmbassadorNamespace     pulumi.StringInput
	AmbassadorNamespaceName string
	AmbassadorPodLabels     map[string]string
	// LoadBalancerPorts are the Ambassador ports the load balancer connects to: the HTTPS
	// listener and the health-check (admin) port.
	LoadBalancerPorts []int
	// LoadBalancerCidrs are the load balancer's subnets, where its traffic and health checks come
	// from: the only sources admitted to LoadBalancerPorts. Not the VPC: with the VPC CNI every pod
	// has a VPC address, and a pod reaching Envoy directly could forge the ALB's client-certificate
	// headers or read the admin port.
	LoadBalancerCidrs []string
	// VpcCidr is where the Kubernetes API's private endpoint lives.
	VpcCidr           pulumi.StringInput
	Backends          []Backend
	BackendNamespaces map[string]pulumi.StringOutput
	// RateLimitServer (gRPC) and RateLimitRedis are ztedge's rate-limit server and its Redis
	// (Emissary with rate-limited backends; nil otherwise). EdgeStackRedis is Edge Stack's bundled
	// Redis, which Ambassador itself talks to (nil on Emissary).
	RateLimitServer *PodPort
	RateLimitRedis  *PodPort
	EdgeStackRedis  *PodPort
	// AuthEgressHTTPS lets jwt-auth fetch an OIDC issuer's JWKS over HTTPS (outside the VPC only).
	AuthEgressHTTPS bool
}

// NetworkPolicies default-deny every edge namespace and then allow exactly the edge's flows.
type NetworkPolicies struct {
	pulumi.ResourceState

	Policies []*networkingv1.NetworkPolicy
}

// peer is one NetworkPolicy peer: pods (in namespace, or in the policy's own namespace when
// namespace is ""), or a CIDR.
type peer struct {
	namespace string
	pods      map[string]string
	cidr      pulumi.StringInput
	except    []pulumi.StringInput
}

type port struct {
	protocol string
	number   int
}

// rule admits traffic from (or to) any of peers on any of ports. Both are always non-empty:
// an empty list would mean "everyone" or "every port".
type rule struct {
	peers []peer
	ports []port
}

// policy selects pods (nil: every pod in the namespace) and lists the allowed flows. A
// direction in types with no rules denies all of it.
type policy struct {
	name      string
	nsName    string             // the namespace, by name: the Pulumi resource is "<namespace>/<name>"
	namespace pulumi.StringInput // the same, resolved once the namespace exists
	pods      map[string]string
	types     []string
	ingress   []rule
	egress    []rule
}

func tcp(ports ...int) []port {
	out := make([]port, len(ports))
	for i, p := range ports {
		out[i] = port{"TCP", p}
	}
	return out
}

var dnsPorts = []port{{"UDP", 53}, {"TCP", 53}}

func (a *NetworkPoliciesArgs) validate() error {
	if a.AmbassadorNamespace == nil || a.AmbassadorNamespaceName == "" || len(a.AmbassadorPodLabels) == 0 || a.VpcCidr == nil || len(a.LoadBalancerPorts) == 0 || len(a.LoadBalancerCidrs) == 0 {
		return fmt.Errorf("network-policies: AmbassadorNamespace(Name), AmbassadorPodLabels, LoadBalancerPorts, LoadBalancerCidrs and VpcCidr are required")
	}
	if (a.RateLimitServer == nil) != (a.RateLimitRedis == nil) {
		return fmt.Errorf("network-policies: RateLimitServer and RateLimitRedis go together")
	}
	for _, b := range a.Backends {
		if _, ok := a.BackendNamespaces[b.Namespace]; !ok {
			return fmt.Errorf("network-policies: backend %q: namespace %q is not in BackendNamespaces", b.Name, b.Namespace)
		}
	}
	return nil
}

// edgePolicies is the whole policy set, as data.
func (a *NetworkPoliciesArgs) edgePolicies() []policy {
	ambassadorPods := peer{namespace: a.AmbassadorNamespaceName, pods: a.AmbassadorPodLabels}
	both := []string{"Ingress", "Egress"}
	var out []policy
	// Every namespace: deny everything, then allow DNS to CoreDNS only.
	baseline := func(nsName string, ns pulumi.StringInput) {
		out = append(out,
			policy{name: "default-deny", nsName: nsName, namespace: ns, types: both},
			policy{name: "allow-dns", nsName: nsName, namespace: ns, types: []string{"Egress"}, egress: []rule{{peers: []peer{kubeDNSPeer}, ports: dnsPorts}}})
	}

	for _, ns := range sortedNamespaces(a.BackendNamespaces) {
		baseline(ns, a.BackendNamespaces[ns])
	}
	// Backends: only Ambassador's pods, only on the backend's port.
	for _, b := range a.Backends {
		out = append(out, policy{
			name: b.Name + "-from-ambassador", nsName: b.Namespace, namespace: a.BackendNamespaces[b.Namespace], pods: b.Selector(), types: []string{"Ingress"},
			ingress: []rule{{peers: []peer{ambassadorPods}, ports: tcp(b.Port)}},
		})
	}

	ns, nsName := a.AmbassadorNamespace, a.AmbassadorNamespaceName
	baseline(nsName, ns)
	self := func(labels map[string]string) peer { return peer{pods: labels} }
	// from admits Ambassador's pods on a port.
	from := func(port int) rule { return rule{peers: []peer{self(a.AmbassadorPodLabels)}, ports: tcp(port)} }
	// Ambassador: the load balancer only (its network interfaces are in the load balancer subnets,
	// where no node or pod lives) on its ports.
	var lbPeers []peer
	for _, cidr := range a.LoadBalancerCidrs {
		lbPeers = append(lbPeers, peer{cidr: pulumi.String(cidr)})
	}
	out = append(out, policy{
		name: "ambassador-ingress", nsName: nsName, namespace: ns, pods: a.AmbassadorPodLabels, types: []string{"Ingress"},
		ingress: []rule{{peers: lbPeers, ports: tcp(a.LoadBalancerPorts...)}},
	})
	// Ambassador's egress: each backend on its port, jwt-auth, rate limiting, and the Kubernetes
	// API (Emissary watches its CRDs, Secrets and Services). On EKS the API's private endpoint is
	// a set of ENIs in the VPC, not pods, so no selector can name it: 443 to the VPC CIDR.
	egress := []rule{}
	for _, b := range a.Backends {
		egress = append(egress, rule{peers: []peer{{namespace: b.Namespace, pods: b.Selector()}}, ports: tcp(b.Port)})
	}
	to := func(p PodPort) rule { return rule{peers: []peer{self(p.Labels)}, ports: tcp(p.Port)} }
	egress = append(egress, to(JwtAuth))
	if a.RateLimitServer != nil {
		egress = append(egress, to(*a.RateLimitServer))
	}
	if a.EdgeStackRedis != nil {
		egress = append(egress, to(*a.EdgeStackRedis))
	}
	egress = append(egress, rule{peers: []peer{{cidr: a.VpcCidr}}, ports: tcp(443)})
	out = append(out, policy{name: "ambassador-egress", nsName: nsName, namespace: ns, pods: a.AmbassadorPodLabels, types: []string{"Egress"}, egress: egress})

	// jwt-auth: called by Ambassador only (ext_authz).
	out = append(out, policy{
		name: "jwt-auth-from-ambassador", nsName: nsName, namespace: ns, pods: JwtAuth.Labels, types: []string{"Ingress"},
		ingress: []rule{from(JwtAuth.Port)},
	})
	if a.AuthEgressHTTPS {
		// The OIDC issuer's JWKS is on the internet; nothing inside the VPC is reachable this way.
		out = append(out, policy{
			name: "jwt-auth-to-oidc", nsName: nsName, namespace: ns, pods: JwtAuth.Labels, types: []string{"Egress"},
			egress: []rule{{peers: []peer{{cidr: pulumi.String("0.0.0.0/0"), except: []pulumi.StringInput{a.VpcCidr}}}, ports: tcp(443)}},
		})
	}
	if a.RateLimitServer != nil {
		out = append(out,
			policy{
				name: "ratelimit-from-ambassador", nsName: nsName, namespace: ns, pods: a.RateLimitServer.Labels, types: []string{"Ingress", "Egress"},
				ingress: []rule{from(a.RateLimitServer.Port)},
				egress:  []rule{to(*a.RateLimitRedis)},
			},
			policy{
				name: "ratelimit-redis-from-ratelimit", nsName: nsName, namespace: ns, pods: a.RateLimitRedis.Labels, types: []string{"Ingress"},
				ingress: []rule{{peers: []peer{self(a.RateLimitServer.Labels)}, ports: tcp(a.RateLimitRedis.Port)}},
			})
	}
	if a.EdgeStackRedis != nil {
		out = append(out, policy{
			name: "edge-stack-redis-from-ambassador", nsName: nsName, namespace: ns, pods: a.EdgeStackRedis.Labels, types: []string{"Ingress"},
			ingress: []rule{from(a.EdgeStackRedis.Port)},
		})
	}
	return out
}

func sortedNamespaces(m map[string]pulumi.StringOutput) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// NewNetworkPolicies creates the policies. They only take effect where the CNI enforces
// NetworkPolicy (on EKS: the VPC CNI with network policy enabled).
func NewNetworkPolicies(ctx *pulumi.Context, name string, args *NetworkPoliciesArgs, opts ...pulumi.ResourceOption) (*NetworkPolicies, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	return newPolicySet(ctx, "ztedge:edge:NetworkPolicies", name, args.edgePolicies(), opts)
}

// newPolicySet registers a component of type typ whose children are the given policies.
func newPolicySet(ctx *pulumi.Context, typ, name string, policies []policy, opts []pulumi.ResourceOption) (*NetworkPolicies, error) {
	c := &NetworkPolicies{}
	child, err := register(ctx, typ, name, c, opts)
	if err != nil {
		return nil, err
	}
	for _, p := range policies {
		np, err := networkingv1.NewNetworkPolicy(ctx, p.nsName+"/"+p.name, &networkingv1.NetworkPolicyArgs{
			Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(p.name), Namespace: p.namespace},
			Spec:     p.spec(),
		}, child)
		if err != nil {
			return nil, err
		}
		c.Policies = append(c.Policies, np)
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"count": pulumi.Int(len(c.Policies))})
}

func (p policy) spec() networkingv1.NetworkPolicySpecArgs {
	spec := networkingv1.NetworkPolicySpecArgs{
		PodSelector: selector(p.pods), // empty: every pod in the namespace
		PolicyTypes: pulumi.ToStringArray(p.types),
	}
	var ingress networkingv1.NetworkPolicyIngressRuleArray
	for _, r := range p.ingress {
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRuleArgs{From: r.peerArgs(), Ports: r.portArgs()})
	}
	var egress networkingv1.NetworkPolicyEgressRuleArray
	for _, r := range p.egress {
		egress = append(egress, networkingv1.NetworkPolicyEgressRuleArgs{To: r.peerArgs(), Ports: r.portArgs()})
	}
	if len(ingress) > 0 {
		spec.Ingress = ingress
	}
	if len(egress) > 0 {
		spec.Egress = egress
	}
	return spec
}

func selector(labels map[string]string) metav1.LabelSelectorArgs {
	if len(labels) == 0 {
		return metav1.LabelSelectorArgs{}
	}
	return metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(labels)}
}

func (r rule) peerArgs() networkingv1.NetworkPolicyPeerArray {
	var out networkingv1.NetworkPolicyPeerArray
	for _, p := range r.peers {
		if p.cidr != nil {
			block := networkingv1.IPBlockArgs{Cidr: p.cidr}
			if len(p.except) > 0 {
				block.Except = pulumi.StringArray(p.except)
			}
			out = append(out, networkingv1.NetworkPolicyPeerArgs{IpBlock: block})
			continue
		}
		a := networkingv1.NetworkPolicyPeerArgs{PodSelector: selector(p.pods)}
		if p.namespace != "" {
			// In one peer, namespace AND pods; the namespace by its immutable name label.
			a.NamespaceSelector = selector(map[string]string{"kubernetes.io/metadata.name": p.namespace})
		}
		out = append(out, a)
	}
	return out
}

func (r rule) portArgs() networkingv1.NetworkPolicyPortArray {
	var out networkingv1.NetworkPolicyPortArray
	for _, p := range r.ports {
		out = append(out, networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String(p.protocol), Port: pulumi.Int(p.number)})
	}
	return out
}
