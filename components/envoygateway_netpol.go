package components

import (
	"fmt"

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
	return newPolicySet(ctx, "ztedge:edge:EnvoyGatewayPolicies", name, args.envoyGatewayPolicies(), opts)
}
