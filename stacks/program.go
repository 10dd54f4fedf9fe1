// Package stacks turns a stack's configuration into the whole ztedge graph (Program) and drives it
// through the Pulumi Automation API.
package stacks

import (
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
	return Build(ctx, cfg)
}

// Build registers every resource for a validated configuration. Read it top to bottom: each layer
// takes only what it needs from the layers above, so Pulumi runs independent work in parallel.
func Build(ctx *pulumi.Context, cfg *Config) error {
	// AWS side, independent of the cluster: the certificate is requested while the VPC and cluster come up.
	certificate, err := components.NewCertificate(ctx, "edge", &components.CertificateArgs{
		Hostname: cfg.Hostname, HostedZoneID: cfg.HostedZoneID, ExistingArn: cfg.CertificateArn, Tags: cfg.Tags,
	})
	if err != nil {
		return err
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
	})
	if err != nil {
		return err
	}

	cluster, err := components.NewCluster(ctx, cfg.Cluster.Name, &components.ClusterArgs{
		ClusterName:               cfg.Cluster.Name,
		KubernetesVersion:         cfg.Cluster.KubernetesVersion,
		VpcID:                     network.VpcID,
		PublicSubnetIDs:           network.PublicSubnetIDs,
		PrivateSubnetIDs:          network.PrivateSubnetIDs,
		NodeInstanceTypes:         cfg.Cluster.NodeInstanceTypes,
		NodeCapacityType:          cfg.Cluster.NodeCapacityType,
		NodeMinSize:               cfg.Cluster.NodeMinSize,
		NodeDesiredSize:           cfg.Cluster.NodeDesiredSize,
		NodeMaxSize:               cfg.Cluster.NodeMaxSize,
		NodeDiskSizeGiB:           cfg.Cluster.NodeDiskSizeGiB,
		EndpointPublicAccess:      cfg.Cluster.EndpointPublicAccess,
		EndpointPublicAccessCidrs: cfg.Cluster.EndpointPublicAccessCidrs,
		AdminArns:                 cfg.Cluster.AdminArns,
		LogTypes:                  cfg.Cluster.LogTypes,
		Tags:                      cfg.Tags,
	})
	if err != nil {
		return err
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
		return err
	}

	ctx.Export("vpcId", network.VpcID)
	ctx.Export("clusterName", cluster.ClusterName)
	ctx.Export("kubeconfig", cluster.Kubeconfig)
	ctx.Export("oidcProviderArn", cluster.OidcProviderArn)
	ctx.Export("certificateArn", certificate.Arn)
	ctx.Export("albControllerRoleArn", albController.RoleArn)
	return nil
}
