package components

import (
	"fmt"

	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// EnvoyGatewayPoliciesArgs are the flows Envoy Gateway adds to the edge namespace's default-deny
// (NewNetworkPolicies, with the proxies as "Ambassador's pods"): proxies → controller xDS, and
// the controller and its certgen Job → the Kubernetes API.
type EnvoyGatewayPoliciesArgs struct {
	Namespace     pulumi.StringInput
	NamespaceName string
	// APICidr is where the Kubernetes API is (the VPC CIDR on EKS: its private endpoint's ENIs).
	APICidr pulumi.StringInput
}

// envoyGatewayPolicies is the policy set, as data.
func (a *EnvoyGatewayPoliciesArgs) envoyGatewayPolicies() []policy {
	ns, nsName := a.Namespace, a.NamespaceName
	proxies := peer{pods: EnvoyGatewayProxyLabels(nsName)}
	api := rule{peers: []peer{{cidr: a.APICidr}}, ports: tcp(443)}
	return []policy{
		{name: "envoy-gateway-controller", nsName: nsName, namespace: ns, pods: EnvoyGatewayControllerLabels, types: []string{"Ingress", "Egress"},
			ingress: []rule{{peers: []peer{proxies}, ports: tcp(EnvoyGatewayXDSPort)}}, egress: []rule{api}},
		{name: "envoy-gateway-certgen", nsName: nsName, namespace: ns, pods: map[string]string{"app": "certgen"}, types: []string{"Egress"}, egress: []rule{api}},
		{name: "envoy-proxy-to-controller", nsName: nsName, namespace: ns, pods: EnvoyGatewayProxyLabels(nsName), types: []string{"Egress"},
			egress: []rule{{peers: []peer{{pods: EnvoyGatewayControllerLabels}}, ports: tcp(EnvoyGatewayXDSPort)}}},
	}
}

// NewEnvoyGatewayPolicies creates those policies.
func NewEnvoyGatewayPolicies(ctx *pulumi.Context, name string, args *EnvoyGatewayPoliciesArgs, opts ...pulumi.ResourceOption) (*NetworkPolicies, error) {
	if args.Namespace == nil || args.NamespaceName == "" || args.APICidr == nil {
		return nil, fmt.Errorf("envoy-gateway-policies: Namespace(Name) and APICidr are required")
	}
	c := &NetworkPolicies{}
	child, err := register(ctx, "ztedge:edge:EnvoyGatewayPolicies", name, c, opts)
	if err != nil {
		return nil, err
	}
	for _, p := range args.envoyGatewayPolicies() {
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
