package stacks

import (
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
	// RateLimit is ztedge's rate limiting when a backend sets one (nil otherwise); the
	// NetworkPolicies admit its server and Redis.
	RateLimit *components.RateLimiting
	// mesh is the service mesh securing the backend routes (upstreamMtls istio or consul).
	mesh *meshPlan
	// EnvoyGateway is the engine's install with engine envoy-gateway (Ambassador is nil then).
	EnvoyGateway *components.EnvoyGateway
	// routeNamespace is the edge namespace as the AuthService reports it (buildAuth sets it):
	// the backends' Mappings take their namespace from it (AuthService.RouteNamespace).
	routeNamespace pulumi.StringInput
	// certHeaderName is the stack's secret name of the ALB's client-certificate header (buildAuth
	// sets it; nil without one): the load balancer sends it, the engine's ext_authz passes it on.
	certHeaderName *components.CertHeaderName
}

// namespaceOutput is the edge namespace as an output of its creation, whichever engine made it.
func (e *Edge) namespaceOutput() pulumi.StringOutput {
	if e.EnvoyGateway != nil {
		return e.EnvoyGateway.NamespaceName
	}
	return e.Ambassador.NamespaceName
}

// buildEdge creates what the auth layer and the routes build on: Ambassador, the backends'
// namespaces, the PKI and its Secrets, rate limiting and the NetworkPolicies. Routes and the load
// balancer come after auth (buildEdgeRouting).
func buildEdge(ctx *pulumi.Context, cfg *Config, p *Platform) (*Edge, error) {
	if cfg.Edge.Engine == EngineEnvoyGateway {
		return buildEnvoyGatewayEdge(ctx, cfg, p)
	}
	onCluster := pulumi.Providers(p.Provider)
	e := &Edge{Namespace: cfg.Edge.Namespace}

	// ---- Mesh install, backend namespaces, Ambassador, PKI -------------------------------------
	var err error
	if e.mesh, err = newMeshPlan(ctx, cfg, p); err != nil {
		return nil, err
	}
	e.BackendNamespaces, err = components.NewBackendNamespaces(ctx, "backends", &components.BackendNamespacesArgs{Backends: cfg.Edge.Backends, Labels: e.mesh.namespaceLabels()}, onCluster)
	if err != nil {
		return nil, err
	}
	ambassadorArgs := &components.AmbassadorArgs{
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
		Module:                   components.AmbassadorModuleConfig(cfg.Edge.ClientAuth),
		DependsOn:                append(p.LoadBalancerDependencies(), p.Nodes...),
	}
	if cfg.Monitoring.Enabled() {
		ambassadorArgs.MetricsRelayImage = cfg.Auth.Image
	}
	e.mesh.ambassadorArgs(ctx, p, ambassadorArgs, e.BackendNamespaces)
	if e.Ambassador, err = components.NewAmbassador(ctx, "ambassador", ambassadorArgs, onCluster); err != nil {
		return nil, err
	}
	if err := e.mesh.afterAmbassador(ctx, p, e); err != nil {
		return nil, err
	}
	if e.Pki, err = newEdgePki(ctx, cfg, e, e.Ambassador.NamespaceName, e.Ambassador.ServiceName, onCluster); err != nil {
		return nil, err
	}

	// ---- Rate limiting (the routes that use it are created in buildEdgeRouting) --------------
	if components.HasRateLimits(cfg.Edge.Backends) {
		e.RateLimit, err = components.NewRateLimiting(ctx, "ratelimit", &components.RateLimitingArgs{
			Namespace:     e.Ambassador.NamespaceName,
			NamespaceName: e.Ambassador.Namespace,
			EdgeStack:     cfg.Edge.Edition == components.EditionEdgeStack,
			Backends:      cfg.Edge.Backends,
			Image:         cfg.Edge.RateLimitImage,
			RedisImage:    cfg.Edge.RedisImage,
			// As many limiters as Ambassador replicas, up to three: each answers every Envoy.
			Replicas:  min(cfg.Edge.Replicas, 3),
			CRDs:      e.Ambassador.CRDs,
			DependsOn: p.Nodes,
			// Prometheus endpoint when monitored (stacks/monitoring.go).
			MetricsPort: cfg.rateLimitMetricsPort(),
		}, onCluster)
		if err != nil {
			return nil, err
		}
	}

	// ---- NetworkPolicies ---------------------------------------------------------------------
	policies := &components.NetworkPoliciesArgs{
		AmbassadorNamespace:     e.Ambassador.NamespaceName,
		AmbassadorNamespaceName: e.Ambassador.Namespace,
		AmbassadorPodLabels:     e.Ambassador.PodLabels,
		LoadBalancerPorts:       []int{components.AmbassadorHTTPSPort, components.AmbassadorAdminPort},
		VpcCidr:                 p.VpcCidr,
		LoadBalancerCidrs:       p.LoadBalancerCidrs,
		Backends:                cfg.Edge.Backends,
		BackendNamespaces:       e.BackendNamespaces.Names,
		EdgeStackRedis:          e.Ambassador.EdgeStackRedis,
		AuthEgressHTTPS:         cfg.Auth.OidcJwksURL != "",
	}
	if e.RateLimit != nil && e.RateLimit.ServerLabels != nil {
		policies.RateLimitServer = &components.PodPort{Labels: e.RateLimit.ServerLabels, Port: components.RateLimitGRPCPort}
		policies.RateLimitRedis = &components.PodPort{Labels: e.RateLimit.RedisLabels, Port: components.RateLimitRedisPort}
	}
	if _, err := components.NewNetworkPolicies(ctx, "edge", policies, onCluster); err != nil {
		return nil, err
	}
	return e, nil
}

// buildEdgeRouting configures Ambassador (Listener, Host, upstream TLSContext, a Mapping per
// backend) and the load balancer (or local Service) in front of it. authGate is what the backends'
// Mappings and the exposure wait for (AuthService.Gate): no route and no way in before auth.
func buildEdgeRouting(ctx *pulumi.Context, cfg *Config, p *Platform, e *Edge, authGate []pulumi.Resource) error {
	if e.EnvoyGateway != nil {
		return buildEnvoyGatewayRouting(ctx, cfg, p, e, authGate)
	}
	onCluster := pulumi.Providers(p.Provider)
	amb := e.Ambassador
	var limits []pulumi.Resource
	if e.RateLimit != nil {
		limits = e.RateLimit.Enforcers
	}
	if _, err := components.NewEdgeConfig(ctx, "edge", &components.EdgeConfigArgs{
		Namespace:      amb.NamespaceName,
		Hostname:       cfg.Hostname,
		ClientAuth:     cfg.Edge.ClientAuth,
		BehindALB:      cfg.BehindALB(),
		ProxyProtocol:  cfg.ProxyProtocol(),
		Backends:       cfg.Edge.Backends,
		CRDs:           amb.CRDs,
		ServerCert:     components.SecretRef{Name: components.ServerSecretName, Resource: e.Pki.ServerSecret},
		CACert:         components.SecretRef{Name: components.CASecretName, Resource: e.Pki.CASecret},
		ClientCACert:   components.SecretRef{Name: components.ClientCASecretName, Resource: e.Pki.ClientCASecret},
		UpstreamCert:   components.SecretRef{Name: components.UpstreamSecretName, Resource: e.Pki.UpstreamSecret},
		RateLimits:     limits,
		Auth:           authGate,
		RouteNamespace: e.routeNamespace,
		Mesh:           e.mesh.upstream(amb),
		CertHeader:     e.certHeaderName.ExtAuthHeader(),
	}, onCluster); err != nil {
		return err
	}

	if cfg.Platform == PlatformLocal {
		// No AWS load balancer: a NodePort/LoadBalancer Service exposes Envoy's TLS port.
		_, err := exposeLocally(ctx, cfg, amb, authGate, onCluster)
		return err
	}
	return exposeOnAWS(ctx, cfg, p, e, &edgeTarget{
		Namespace: amb.NamespaceName, Service: amb.ServiceName,
		ServicePort: 443, // the chart's https port, → Envoy 8443
		PodLabels:   amb.PodLabels, DependsOn: append([]pulumi.Resource{amb.Release}, authGate...),
	})
}

// edgeTarget is what the AWS load balancer sends to: the engine's Envoy Service (ALB) or pods
// (NLB), and what it waits for (the engine's release and the auth gate).
type edgeTarget struct {
	Namespace   pulumi.StringOutput
	Service     string
	ServicePort int
	PodLabels   map[string]string
	Target      *components.EnvoyTarget // nil: Emissary's ports
	DependsOn   []pulumi.Resource
}

// exposeOnAWS creates the WAF web ACL, the load balancer and the DNS record in front of Envoy.
func exposeOnAWS(ctx *pulumi.Context, cfg *Config, p *Platform, e *Edge, t *edgeTarget) error {
	onCluster := pulumi.Providers(p.Provider)
	var webACLArn pulumi.StringInput
	if cfg.Edge.Waf != components.WafOff {
		acl, err := components.NewWebACL(ctx, "edge", &components.WebACLArgs{
			Mode: cfg.Edge.Waf, RateLimit: cfg.Edge.WafRateLimit, CountRules: cfg.Edge.WafCountRules, Tags: cfg.Tags,
		})
		if err != nil {
			return err
		}
		webACLArn = acl.Arn
		ctx.Export("webAclArn", acl.Arn)
	}
	lb, err := components.NewLoadBalancer(ctx, "edge", &components.LoadBalancerArgs{
		Namespace:   t.Namespace,
		Hostname:    cfg.Hostname,
		ClientAuth:  cfg.Edge.ClientAuth,
		Scheme:      cfg.Edge.LoadBalancerScheme,
		SslPolicy:   cfg.Edge.SslPolicy,
		SourceCidrs: cfg.Edge.LoadBalancerSourceCidrs,
		// The ARN comes out of the CertificateValidation: the listener waits for an issued certificate.
		CertificateArn:        p.CertificateArn,
		Subnets:               p.LoadBalancerSubnetIDs,
		AmbassadorService:     t.Service,
		AmbassadorServicePort: t.ServicePort,
		AmbassadorPodLabels:   t.PodLabels,
		Target:                t.Target,
		CaCertPem:             e.Pki.ClientCACertPem, // alb-verify trusts the trusted-client CA only
		CertHeaderName:        e.certHeaderName.ALBHeader(),
		WebACLArn:             webACLArn,
		Controller:            p.LoadBalancerController,
		DependsOn:             t.DependsOn,
		Tags:                  cfg.Tags,
	}, onCluster)
	if err != nil {
		return err
	}
	ctx.Export("loadBalancerHostname", lb.Hostname)
	if !cfg.Edge.CreateDNSRecord {
		return nil
	}
	lbType := "application"
	if !cfg.BehindALB() {
		lbType = "network"
	}
	record, err := components.NewDNSRecord(ctx, "edge", &components.DNSRecordArgs{
		ZoneID: cfg.HostedZoneID, Hostname: cfg.Hostname, LoadBalancer: lb, LoadBalancerType: lbType,
	})
	if err != nil {
		return err
	}
	ctx.Export("dnsRecord", record.Fqdn)
	return nil
}
