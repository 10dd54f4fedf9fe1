// Package stacks turns a stack's configuration into the whole ztedge graph (Program) and drives it
// through the Pulumi Automation API.
package stacks

import (
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/components"
)

// Program is the ztedge Pulumi program: it loads and validates the configuration (failing before
// any resource is registered), then builds the graph.
func Program(ctx *pulumi.Context) error {
	cfg, err := Load(ContextSource{Ctx: ctx}, ctx.Stack())
	if err != nil {
		return err
	}
	if err := cfg.ResolveChartDirs(ctx.RootDirectory()); err != nil {
		return err
	}
	return Build(ctx, cfg)
}

// Platform is what the edge needs from the layer below it (EKS on AWS).
type Platform struct {
	// Provider talks to the cluster; every Kubernetes resource uses it.
	Provider *kubernetes.Provider
	// CertificateArn is the validated ACM certificate of the load balancer.
	CertificateArn pulumi.StringOutput
	// VpcCidr is the VPC's range: Ambassador reaches the Kubernetes API's private endpoint in it,
	// and jwt-auth's internet egress excludes it.
	VpcCidr pulumi.StringOutput
	// LoadBalancerCidrs are the ranges the load balancer's traffic (and health checks) come from:
	// subnets with no node and no pod in them. The NetworkPolicy admits only these to Envoy.
	LoadBalancerCidrs []string
	// LoadBalancerSubnetIDs pin the load balancer to those subnets (nil on a local cluster).
	LoadBalancerSubnetIDs pulumi.StringArrayOutput
	// LoadBalancerController is the ALB controller release: every Ingress and LoadBalancer Service
	// depends on it, so destroy removes them (and the AWS load balancers) before the controller.
	LoadBalancerController pulumi.Resource
	// Nodes is what a workload must wait for to be schedulable.
	Nodes []pulumi.Resource
	// Certificates are the platform's entries of the `certificates` output (the ACM certificate).
	Certificates []pulumi.Output
}

// Build registers every resource for a validated configuration. Read it top to bottom: each layer
// takes only what it needs from the layers below, so Pulumi runs independent work in parallel.
func Build(ctx *pulumi.Context, cfg *Config) error {
	build := buildPlatform
	if cfg.Platform == PlatformLocal {
		build = buildLocalPlatform // an existing cluster from a kubeconfig: no AWS resources
	}
	platform, err := build(ctx, cfg)
	if err != nil {
		return err
	}
	// The edge's name, for clients and `ztedge smoke` (with caCertificate and clientCertificates).
	ctx.Export("hostname", pulumi.String(cfg.Hostname))
	edge, err := buildEdge(ctx, cfg, platform)
	if err != nil {
		return err
	}
	// No route before auth: the backends' Mappings and whatever exposes Envoy are created only once
	// jwt-auth answers and the AuthService exists (and destroy removes them first).
	authGate, err := buildAuth(ctx, cfg, platform, edge)
	if err != nil {
		return err
	}
	if err := buildMonitoring(ctx, cfg, platform, edge); err != nil {
		return err
	}
	if err := buildEdgeRouting(ctx, cfg, platform, edge, authGate); err != nil {
		return err
	}
	// Every certificate and signing key with its expiry and renewal (no PEM, no key): ztedge certs.
	inventory := append(append(platform.Certificates, edge.Pki.Inventory...), components.SigningKeyEntries(cfg.Auth.SigningKeys)...)
	ctx.Export("certificates", components.Inventory(inventory))
	return nil
}

// buildPlatform creates the AWS half: certificate, network, cluster, load balancer controller.
func buildPlatform(ctx *pulumi.Context, cfg *Config) (*Platform, error) {
	if err := checkHostedZone(ctx, cfg); err != nil {
		return nil, err
	}
	// AWS side, independent of the cluster: the certificate is requested while the VPC and cluster come up.
	certificate, err := components.NewCertificate(ctx, "edge", &components.CertificateArgs{
		Hostname: cfg.Hostname, HostedZoneID: cfg.HostedZoneID, ExistingArn: cfg.CertificateArn, Tags: cfg.Tags,
	})
	if err != nil {
		return nil, err
	}

	network, err := components.NewNetwork(ctx, cfg.Cluster.Name, &components.NetworkArgs{
		ClusterName:              cfg.Cluster.Name,
		VpcCidr:                  cfg.Network.VpcCidr,
		AvailabilityZones:        cfg.Network.AvailabilityZones,
		NatPerAz:                 cfg.Network.NatGateways == "perAz",
		Tags:                     cfg.Tags,
		ExistingVpcID:            cfg.Network.ExistingVpcID,
		ExistingVpcCidr:          cfg.Network.ExistingVpcCidr,
		ExistingPublicSubnetIDs:  cfg.Network.ExistingPublicSubnetIDs,
		ExistingPrivateSubnetIDs: cfg.Network.ExistingPrivateSubnetIDs,
		InternalLoadBalancer:     cfg.Edge.LoadBalancerScheme == "internal",

		ExistingLoadBalancerSubnetIDs:   cfg.Network.ExistingLoadBalancerSubnetIDs,
		ExistingLoadBalancerSubnetCidrs: cfg.Network.ExistingLoadBalancerSubnetCidrs,
		ExistingNodeSubnetCidrs:         cfg.Network.ExistingNodeSubnetCidrs,
	})
	if err != nil {
		return nil, err
	}

	cluster, err := components.NewCluster(ctx, cfg.Cluster.Name, &components.ClusterArgs{
		ClusterSpec:      cfg.Cluster,
		VpcID:            network.VpcID,
		PrivateSubnetIDs: network.PrivateSubnetIDs,
		Tags:             cfg.Tags,
	})
	if err != nil {
		return nil, err
	}
	onCluster := pulumi.Providers(cluster.Provider)

	albController, err := components.NewAlbController(ctx, "alb-controller", &components.AlbControllerArgs{
		ClusterName:     cluster.ClusterName,
		Region:          cfg.Region,
		VpcID:           network.VpcID,
		OidcProviderArn: cluster.OidcProviderArn,
		OidcProviderURL: cluster.OidcProviderURL,
		ChartVersion:    cfg.AlbController.ChartVersion,
		ChartRepository: cfg.AlbController.ChartRepository,
		Replicas:        cfg.AlbController.Replicas,
		Tags:            cfg.Tags,
		DependsOn:       []pulumi.Resource{cluster.NodeGroup},
	}, onCluster)
	if err != nil {
		return nil, err
	}

	ctx.Export("vpcId", network.VpcID)
	ctx.Export("clusterName", cluster.ClusterName)
	ctx.Export("kubeconfig", cluster.Kubeconfig)
	ctx.Export("oidcProviderArn", cluster.OidcProviderArn)
	ctx.Export("certificateArn", certificate.Arn)
	ctx.Export("albControllerRoleArn", albController.RoleArn)
	return &Platform{
		Provider:               cluster.Provider,
		CertificateArn:         certificate.Arn,
		VpcCidr:                network.VpcCidr,
		LoadBalancerCidrs:      network.LoadBalancerCidrs,
		LoadBalancerSubnetIDs:  network.LoadBalancerSubnetIDs,
		LoadBalancerController: albController.Release,
		Nodes:                  []pulumi.Resource{cluster.NodeGroup},
		Certificates:           certificate.Inventory,
	}, nil
}
