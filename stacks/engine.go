package stacks

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/components"
)

// Engines (ztedge:engine): the proxy that enforces the edge's contract. The contract itself —
// backends, trusted clients, client-auth mode, TLS policy, the PKI and jwt-auth — is the same
// configuration for both; only these two build functions differ.
const (
	EngineEmissary     = "emissary"
	EngineEnvoyGateway = "envoy-gateway"
)

// validateEngine refuses, before anything is created, what envoy-gateway does not map.
func (c *Config) validateEngine(p *problems) {
	e := c.Edge
	switch e.Engine {
	case EngineEmissary:
		return
	case EngineEnvoyGateway:
	default:
		p.add("engine", "%q is not allowed: use %s or %s", e.Engine, EngineEmissary, EngineEnvoyGateway)
		return
	}
	if e.Edition != components.EditionEmissary {
		p.add("engine", "envoy-gateway does not run Ambassador Edge Stack: set edition emissary (the default) or engine emissary")
	}
	if c.Mesh.UpstreamMtls != components.UpstreamMtlsPKI {
		p.add("engine", "envoy-gateway supports upstreamMtls pki only (Envoy presents ztedge's upstream certificate, BackendTLSPolicy verifies the backend); %q needs engine emissary", c.Mesh.UpstreamMtls)
	}
	if c.Monitoring.Enabled() {
		p.add("engine", "envoy-gateway has no monitoring yet (the dashboards and alerts read Emissary's metrics): set monitoring off or engine emissary")
	}
	if !validChartSource(e.EnvoyGatewayChartRepository) {
		p.add("envoyGatewayChartRepository", "%q must be an oci:// or https:// chart repository, or a local directory of chart archives", e.EnvoyGatewayChartRepository)
	}
}

// buildEnvoyGatewayEdge is buildEdge for engine envoy-gateway: the backends' namespaces, Envoy
// Gateway (CRDs, controller, GatewayClass, EnvoyProxy), the PKI and the NetworkPolicies, with
// Envoy Gateway's proxies in the place of Ambassador's pods.
func buildEnvoyGatewayEdge(ctx *pulumi.Context, cfg *Config, p *Platform) (*Edge, error) {
	onCluster := pulumi.Providers(p.Provider)
	e := &Edge{Namespace: cfg.Edge.Namespace, mesh: &meshPlan{cfg: cfg}}
	var err error
	e.BackendNamespaces, err = components.NewBackendNamespaces(ctx, "backends", &components.BackendNamespacesArgs{Backends: cfg.Edge.Backends}, onCluster)
	if err != nil {
		return nil, err
	}
	// The namespace first (the PKI's Secrets go there), then the PKI, then the install that
	// names the upstream Secret.
	e.EnvoyGateway, err = components.NewEnvoyGateway(ctx, "envoy-gateway", &components.EnvoyGatewayArgs{
		Namespace:       cfg.Edge.Namespace,
		ChartRepository: cfg.Edge.EnvoyGatewayChartRepository,
		Replicas:        cfg.Edge.Replicas,
		Resources:       cfg.Edge.Resources,
		UpstreamSecret:  components.SecretRef{Name: components.UpstreamSecretName},
		DependsOn:       append(p.LoadBalancerDependencies(), p.Nodes...),
	}, onCluster)
	if err != nil {
		return nil, err
	}
	ns := e.EnvoyGateway.NamespaceName
	if e.Pki, err = newEdgePki(ctx, cfg, e, ns, components.EnvoyGatewayProxyService, onCluster); err != nil {
		return nil, err
	}
	policies := &components.NetworkPoliciesArgs{
		AmbassadorNamespace:     ns,
		AmbassadorNamespaceName: cfg.Edge.Namespace,
		AmbassadorPodLabels:     components.EnvoyGatewayProxyLabels(cfg.Edge.Namespace),
		LoadBalancerPorts:       []int{components.EnvoyGatewayContainerPort, components.EnvoyGatewayReadyPort},
		VpcCidr:                 p.VpcCidr,
		LoadBalancerCidrs:       p.LoadBalancerCidrs,
		Backends:                cfg.Edge.Backends,
		BackendNamespaces:       e.BackendNamespaces.Names,
		AuthEgressHTTPS:         cfg.Auth.OidcJwksURL != "",
	}
	if _, err := components.NewNetworkPolicies(ctx, "edge", policies, onCluster); err != nil {
		return nil, err
	}
	_, err = components.NewEnvoyGatewayPolicies(ctx, "envoy-gateway", &components.EnvoyGatewayPoliciesArgs{
		Namespace: ns, NamespaceName: cfg.Edge.Namespace, APICidr: p.VpcCidr,
	}, onCluster)
	return e, err
}

// newEdgePki is the stack PKI; serviceName is the Envoy Service the server certificate names.
func newEdgePki(ctx *pulumi.Context, cfg *Config, e *Edge, ns pulumi.StringOutput, serviceName string, opts ...pulumi.ResourceOption) (*components.Pki, error) {
	pki, err := components.NewPki(ctx, "pki", &components.PkiArgs{
		CommonName:              fmt.Sprintf("ztedge %s edge CA", cfg.Stack),
		Hostname:                cfg.Hostname,
		AmbassadorNamespace:     ns,
		AmbassadorNamespaceName: cfg.Edge.Namespace,
		AmbassadorServiceName:   serviceName,
		TrustedClients:          cfg.Edge.TrustedClients,
		Backends:                cfg.Edge.Backends,
		BackendNamespaces:       e.BackendNamespaces.Names,
		CaValidityHours:         cfg.Edge.CaValidityHours,
		ValidityPeriodHours:     cfg.Edge.CertValidityHours,
		EarlyRenewalHours:       cfg.Edge.CertEarlyRenewalHours,
	}, opts...)
	if err != nil {
		return nil, err
	}
	ctx.Export("caCertificate", pki.CACertPem)
	ctx.Export("clientCertificates", pki.ClientBundles)
	return pki, nil
}

// buildEnvoyGatewayRouting is buildEdgeRouting for engine envoy-gateway: the Gateway, its
// policies and routes once auth answers, then the load balancer (or local Service) in front of
// Envoy Gateway's proxies, after the Gateway and its ext_authz exist.
func buildEnvoyGatewayRouting(ctx *pulumi.Context, cfg *Config, p *Platform, e *Edge, authGate []pulumi.Resource) error {
	onCluster := pulumi.Providers(p.Provider)
	eg := e.EnvoyGateway
	edge, err := components.NewGatewayEdge(ctx, "edge", &components.GatewayEdgeArgs{
		Namespace:         eg.NamespaceName,
		NamespaceName:     cfg.Edge.Namespace,
		Hostname:          cfg.Hostname,
		ClientAuth:        cfg.Edge.ClientAuth,
		BehindALB:         cfg.BehindALB(),
		ProxyProtocol:     cfg.ProxyProtocol(),
		Backends:          cfg.Edge.Backends,
		BackendNamespaces: e.BackendNamespaces.Names,
		CRDs:              eg.CRDs,
		Controller:        eg.Release,
		GatewayClass:      eg.GatewayClass,
		ServerCert:        components.SecretRef{Name: components.ServerSecretName, Resource: e.Pki.ServerSecret},
		ClientCACert:      components.SecretRef{Name: components.ClientCASecretName, Resource: e.Pki.ClientCASecret},
		CACertPem:         e.Pki.CACertPem,
		Auth:              authGate,
		CertHeader:        e.certHeaderName.ExtAuthHeader(),
	}, onCluster)
	if err != nil {
		return err
	}
	gate := append(append([]pulumi.Resource{}, authGate...), edge.Gate...)
	proxyLabels := components.EnvoyGatewayProxyLabels(cfg.Edge.Namespace)
	if cfg.Platform == PlatformLocal {
		port := corev1.ServicePortArgs{
			Name: pulumi.String("https"), Port: pulumi.Int(443), Protocol: pulumi.String("TCP"),
			TargetPort: pulumi.Int(components.EnvoyGatewayContainerPort),
		}
		if cfg.Local.ServiceType == "NodePort" {
			port.NodePort = pulumi.Int(cfg.Local.NodePort)
		}
		_, err := corev1.NewService(ctx, LocalServiceName, &corev1.ServiceArgs{
			Metadata: metav1.ObjectMetaArgs{
				Name: pulumi.String(LocalServiceName), Namespace: eg.NamespaceName,
				Labels: pulumi.StringMap{"app.kubernetes.io/part-of": pulumi.String("ztedge")},
			},
			Spec: corev1.ServiceSpecArgs{
				Type: pulumi.String(cfg.Local.ServiceType), Selector: pulumi.ToStringMap(proxyLabels),
				Ports: corev1.ServicePortArray{port}, ExternalTrafficPolicy: pulumi.String("Local"),
			},
		}, onCluster, pulumi.DependsOn(gate))
		return err
	}
	return exposeOnAWS(ctx, cfg, p, e, &edgeTarget{
		Namespace: eg.NamespaceName, Service: components.EnvoyGatewayProxyService, ServicePort: components.GatewayHTTPSPort,
		PodLabels: proxyLabels, Target: components.EnvoyGatewayTarget, DependsOn: append([]pulumi.Resource{eg.Release}, gate...),
	})
}

// ambassadorCRDs is the getambassador.io CRD install (nil with engine envoy-gateway).
func (e *Edge) ambassadorCRDs() pulumi.Resource {
	if e.Ambassador == nil {
		return nil
	}
	return e.Ambassador.CRDs
}
