package stacks

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/components"
)

// Edge is what the auth layer needs from the edge layer.
type Edge struct {
	// Ambassador: its namespace (NamespaceName to wait for it), CRDs (every getambassador.io
	// object depends on it), release, Service and pod labels.
	Ambassador *components.Ambassador
	// Pki: the CA certificate and the Secrets of Ambassador, its upstream client and the backends.
	Pki *components.Pki
	// Namespace is Ambassador's namespace, shared with jwt-auth and the rate-limit service.
	Namespace         string
	BackendNamespaces *components.BackendNamespaces
}

// buildEdge creates the zero-trust edge on the cluster: PKI and Secrets, Ambassador, its
// configuration, the load balancer and the NetworkPolicies.
func buildEdge(ctx *pulumi.Context, cfg *Config, p *Platform) (*Edge, error) {
	onCluster := pulumi.Providers(p.Provider)
	e := &Edge{Namespace: cfg.Edge.Namespace}

	// ---- Ambassador, backend namespaces, PKI -------------------------------------------------
	var err error
	e.Ambassador, err = components.NewAmbassador(ctx, "ambassador", &components.AmbassadorArgs{
		Edition:                  cfg.Edge.Edition,
		Namespace:                cfg.Edge.Namespace,
		EmissaryChartRepository:  cfg.Edge.EmissaryChartRepository,
		EmissaryVersion:          cfg.Edge.EmissaryVersion,
		EdgeStackChartRepository: cfg.Edge.EdgeStackChartRepository,
		EdgeStackChartVersion:    cfg.Edge.EdgeStackChartVersion,
		EdgeStackCrdsURL:         cfg.Edge.EdgeStackCrdsURL,
		EdgeStackLicenseKey:      cfg.Edge.EdgeStackLicenseKey,
		Replicas:                 cfg.Edge.Replicas,
		Resources:                cfg.Edge.Resources,
		DependsOn:                append([]pulumi.Resource{p.LoadBalancerController}, p.Nodes...),
	}, onCluster)
	if err != nil {
		return nil, err
	}
	e.BackendNamespaces, err = components.NewBackendNamespaces(ctx, "backends", &components.BackendNamespacesArgs{Backends: cfg.Edge.Backends}, onCluster)
	if err != nil {
		return nil, err
	}
	e.Pki, err = components.NewPki(ctx, "pki", &components.PkiArgs{
		CommonName:              fmt.Sprintf("ztedge %s edge CA", cfg.Stack),
		Hostname:                cfg.Hostname,
		AmbassadorNamespace:     e.Ambassador.NamespaceName,
		AmbassadorNamespaceName: e.Ambassador.Namespace,
		AmbassadorServiceName:   e.Ambassador.ServiceName,
		TrustedClients:          cfg.Edge.TrustedClients,
		Backends:                cfg.Edge.Backends,
		BackendNamespaces:       e.BackendNamespaces.Names,
		CaValidityHours:         cfg.Edge.CaValidityHours,
		ValidityPeriodHours:     cfg.Edge.CertValidityHours,
		EarlyRenewalHours:       cfg.Edge.CertEarlyRenewalHours,
	}, onCluster)
	if err != nil {
		return nil, err
	}
	ctx.Export("caCertificate", e.Pki.CACertPem)
	ctx.Export("clientCertificates", e.Pki.ClientBundles)

	// ---- NetworkPolicies ---------------------------------------------------------------------
	policies := &components.NetworkPoliciesArgs{
		AmbassadorNamespace:     e.Ambassador.NamespaceName,
		AmbassadorNamespaceName: e.Ambassador.Namespace,
		AmbassadorPodLabels:     e.Ambassador.PodLabels,
		LoadBalancerPorts:       []int{8443, 8877}, // Emissary's HTTPS listener and admin (health-check) port
		VpcCidr:                 p.VpcCidr,
		Backends:                cfg.Edge.Backends,
		BackendNamespaces:       e.BackendNamespaces.Names,
		EdgeStackRedis:          e.Ambassador.EdgeStackRedis,
		AuthEgressHTTPS:         cfg.Auth.OidcJwksURL != "",
	}
	if _, err := components.NewNetworkPolicies(ctx, "edge", policies, onCluster); err != nil {
		return nil, err
	}
	return e, nil
}
