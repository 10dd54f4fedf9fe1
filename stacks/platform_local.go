package stacks

import (
	"net/netip"
	"slices"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/components"
)

// Platforms: where the edge runs.
const (
	PlatformEKS   = "eks"
	PlatformLocal = "local"
)

// LocalConfig is the platform of the local stack: an existing cluster (kind, k3d, minikube) reached
// through a kubeconfig, the edge exposed by a NodePort or LoadBalancer Service, no AWS at all.
type LocalConfig struct {
	Kubeconfig  string // path; "" = $KUBECONFIG or ~/.kube/config
	Context     string // "" = the current context
	NodeCidr    string // where Service traffic arrives from (NetworkPolicies admit it)
	ServiceType string // NodePort or LoadBalancer
	NodePort    int    // with NodePort
}

// localClientAuth are the client-auth modes in which Envoy itself terminates TLS: without an AWS
// load balancer in front, the others have nothing to terminate TLS for them.
var localClientAuth = []string{"nlb-passthrough", "off"}

func (r *reader) local() LocalConfig {
	return LocalConfig{
		Kubeconfig:  r.str("kubeconfig"),
		Context:     r.str("kubeContext"),
		NodeCidr:    r.str("localNodeCidr"),
		ServiceType: r.str("localServiceType"),
		NodePort:    r.integer("localNodePort"),
	}
}

func (c *Config) validatePlatform(p *problems) {
	if c.Platform != PlatformEKS && c.Platform != PlatformLocal {
		p.add("platform", "%q is not allowed: use eks (AWS) or local (an existing cluster from a kubeconfig)", c.Platform)
	}
}

// validateLocal checks the settings only the local platform reads.
func (c *Config) validateLocal(p *problems) {
	l := c.Local
	if pfx, err := netip.ParsePrefix(l.NodeCidr); err != nil || pfx.Masked() != pfx {
		p.add("localNodeCidr", "%q is not a CIDR such as 172.18.0.0/16 (host bits must be zero)", l.NodeCidr)
	}
	switch l.ServiceType {
	case "NodePort":
		if l.NodePort < 30000 || l.NodePort > 32767 {
			p.add("localNodePort", "%d is outside the default node port range 30000–32767", l.NodePort)
		}
	case "LoadBalancer":
	default:
		p.add("localServiceType", "%q is not allowed: use NodePort or LoadBalancer", l.ServiceType)
	}
	if !slices.Contains(localClientAuth, c.Edge.ClientAuth) {
		p.add("clientAuth", "%q needs an AWS load balancer; with platform local Envoy terminates TLS itself: use nlb-passthrough (client certificates checked by Envoy, tokens as the fallback) or off", c.Edge.ClientAuth)
	}
}

// buildLocalPlatform is the platform of the local stack: a Kubernetes provider for the configured
// kubeconfig and context, no certificate ARN (Envoy serves the PKI's server certificate), the node
// CIDR in place of the VPC's, no load balancer controller and no node group to wait for.
//
// The node CIDR is also where NodePort/LoadBalancer traffic reaches Envoy from (kube-proxy
// forwards from the node), so the NetworkPolicy admits it: on a local cluster Envoy's ports are
// open to the nodes (and to host-network pods). There is no separate load balancer subnet to
// confine it to; a local cluster is for development, not a trust boundary (README "Security").
func buildLocalPlatform(ctx *pulumi.Context, cfg *Config) (*Platform, error) {
	args := &kubernetes.ProviderArgs{
		// Update jwt-auth's ConfigMap and Secrets in place (components.MutableConfig).
		EnableConfigMapMutable: pulumi.Bool(components.MutableConfig),
		EnableSecretMutable:    pulumi.Bool(components.MutableConfig),
	}
	if cfg.Local.Kubeconfig != "" {
		args.Kubeconfig = pulumi.String(cfg.Local.Kubeconfig)
	}
	if cfg.Local.Context != "" {
		args.Context = pulumi.String(cfg.Local.Context)
	}
	provider, err := kubernetes.NewProvider(ctx, "local", args)
	if err != nil {
		return nil, err
	}
	return &Platform{
		Provider:       provider,
		CertificateArn: pulumi.String("").ToStringOutput(),
		VpcCidr:        pulumi.String(cfg.Local.NodeCidr).ToStringOutput(),
		// Service traffic arrives from the nodes themselves (kube-proxy).
		LoadBalancerCidrs: []string{cfg.Local.NodeCidr},
	}, nil
}

// LoadBalancerDependencies is what an Ingress or LoadBalancer Service must wait for: the AWS Load
// Balancer Controller on EKS (so destroy deletes them before it), nothing on a local cluster.
func (p *Platform) LoadBalancerDependencies() []pulumi.Resource {
	if p.LoadBalancerController == nil {
		return nil
	}
	return []pulumi.Resource{p.LoadBalancerController}
}

// LocalServiceName is the Service that exposes the edge on a local cluster.
const LocalServiceName = "ztedge-edge"

// exposeLocally publishes Envoy's HTTPS listener on a local cluster, in place of the AWS load
// balancer: a NodePort (or LoadBalancer) Service on port 443 → 8443 selecting Ambassador's pods.
// Only the TLS port is exposed; Envoy terminates TLS with the PKI's server certificate. It waits for
// the auth gate, like the AWS load balancer: nothing reaches Envoy before auth can answer.
func exposeLocally(ctx *pulumi.Context, cfg *Config, amb *components.Ambassador, authGate []pulumi.Resource, opts ...pulumi.ResourceOption) (*corev1.Service, error) {
	port := corev1.ServicePortArgs{
		Name: pulumi.String("https"), Port: pulumi.Int(443), Protocol: pulumi.String("TCP"),
		TargetPort: pulumi.Int(components.AmbassadorHTTPSPort),
	}
	if cfg.Local.ServiceType == "NodePort" {
		port.NodePort = pulumi.Int(cfg.Local.NodePort)
	}
	return corev1.NewService(ctx, LocalServiceName, &corev1.ServiceArgs{
		Metadata: metav1.ObjectMetaArgs{
			Name: pulumi.String(LocalServiceName), Namespace: amb.NamespaceName,
			Labels: pulumi.StringMap{"app.kubernetes.io/part-of": pulumi.String("ztedge")},
		},
		Spec: corev1.ServiceSpecArgs{
			Type:     pulumi.String(cfg.Local.ServiceType),
			Selector: pulumi.ToStringMap(amb.PodLabels),
			Ports:    corev1.ServicePortArray{port},
			// Keep the client's address (rate limits and audit logs see it) and send traffic only to
			// nodes that run an Ambassador pod.
			ExternalTrafficPolicy: pulumi.String("Local"),
		},
	}, append(opts, pulumi.DependsOn(append([]pulumi.Resource{amb.Release}, authGate...)))...)
}
