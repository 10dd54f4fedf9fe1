package components

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	awseks "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/eks"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/kms"
	"github.com/pulumi/pulumi-eks/sdk/v2/go/eks"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ClusterArgs describes the EKS cluster and its one managed node group.
type ClusterArgs struct {
	ClusterSpec
	VpcID            pulumi.StringInput
	PrivateSubnetIDs pulumi.StringArrayInput
	Tags             map[string]string
}

// ClusterSpec is the cluster's plain settings (the `ztedge:` cluster keys, validated by stacks).
type ClusterSpec struct {
	Name              string
	KubernetesVersion string
	NodeInstanceTypes []string
	NodeCapacityType  string
	NodeMinSize       int
	NodeDesiredSize   int
	NodeMaxSize       int
	NodeDiskSizeGiB   int
	// EndpointPublicAccess exposes the API server to EndpointPublicAccessCidrs; the private endpoint is always on.
	EndpointPublicAccess      bool
	EndpointPublicAccessCidrs []string
	AdminArns                 []string
	LogTypes                  []string
}

// Cluster is an EKS cluster with IRSA, envelope-encrypted Secrets and a private managed node group.
type Cluster struct {
	pulumi.ResourceState

	ClusterName pulumi.StringOutput `pulumi:"clusterName"`
	// Kubeconfig is a secret: it names the cluster endpoint and how to authenticate.
	Kubeconfig      pulumi.StringOutput `pulumi:"kubeconfig"`
	OidcProviderArn pulumi.StringOutput `pulumi:"oidcProviderArn"`
	// OidcProviderURL is the issuer without "https://", as IAM condition keys want it.
	OidcProviderURL pulumi.StringOutput `pulumi:"oidcProviderUrl"`

	// Provider talks to this cluster; every Kubernetes resource of the program uses it.
	Provider *kubernetes.Provider
	// NodeGroup is what workloads wait for: a Helm release with no node to run on never becomes ready.
	NodeGroup pulumi.Resource
}

// Worker nodes' AWS managed policies: join the cluster, pull images, run the VPC CNI.
var nodeRolePolicies = []string{
	"arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
	"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
	"arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
}

// VpcCniConfiguration turns on the VPC CNI's network policy agent (vpc-cni ≥ 1.14).
const VpcCniConfiguration = `{"enableNetworkPolicy":"true"}`

// Graviton families have a "g" right after the generation digit: m7g, c7gn, t4g, im4gn, g5g.
var gravitonRE = regexp.MustCompile(`^[a-z]+[0-9]+g[a-z]*\.`)

// AmiTypeFor picks the AL2023 AMI type for the instance types (AL2 reached end of life in June 2025).
func AmiTypeFor(instanceTypes []string) (string, error) {
	arm, x86 := 0, 0
	for _, t := range instanceTypes {
		if gravitonRE.MatchString(t) {
			arm++
		} else {
			x86++
		}
	}
	switch {
	case arm > 0 && x86 > 0:
		return "", fmt.Errorf("mixes Graviton (arm64) and x86_64 instance types; one node group runs one architecture")
	case arm > 0:
		return "AL2023_ARM_64_STANDARD", nil
	default:
		return "AL2023_x86_64_STANDARD", nil
	}
}

func (a *ClusterArgs) validate() error {
	var missing []string
	if a.Name == "" {
		missing = append(missing, "Name")
	}
	if a.KubernetesVersion == "" {
		missing = append(missing, "KubernetesVersion")
	}
	if a.VpcID == nil || a.PrivateSubnetIDs == nil {
		missing = append(missing, "VpcID/PrivateSubnetIDs")
	}
	if len(missing) > 0 {
		return fmt.Errorf("cluster: %s required", strings.Join(missing, ", "))
	}
	if a.NodeMinSize < 1 || a.NodeMinSize > a.NodeDesiredSize || a.NodeDesiredSize > a.NodeMaxSize {
		return fmt.Errorf("cluster: node sizes must satisfy 1 ≤ min (%d) ≤ desired (%d) ≤ max (%d)", a.NodeMinSize, a.NodeDesiredSize, a.NodeMaxSize)
	}
	if a.EndpointPublicAccess && len(a.EndpointPublicAccessCidrs) == 0 {
		return fmt.Errorf("cluster: a public endpoint needs EndpointPublicAccessCidrs")
	}
	_, err := AmiTypeFor(a.NodeInstanceTypes)
	return err
}

// NewCluster creates the cluster. AWS-side prerequisites that do not need the cluster (the KMS key,
// the node role) are created first and in parallel with the network.
func NewCluster(ctx *pulumi.Context, name string, args *ClusterArgs, opts ...pulumi.ResourceOption) (*Cluster, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	amiType, _ := AmiTypeFor(args.NodeInstanceTypes)
	c := &Cluster{}
	child, err := register(ctx, "ztedge:cluster:Cluster", name, c, opts)
	if err != nil {
		return nil, err
	}
	tags := mergeTags(args.Tags, nil)

	secretsKey, err := kms.NewKey(ctx, name+"-secrets", &kms.KeyArgs{
		Description:          pulumi.Sprintf("Envelope encryption of Kubernetes Secrets in EKS cluster %s", args.Name),
		EnableKeyRotation:    pulumi.Bool(true),
		DeletionWindowInDays: pulumi.Int(30),
		Tags:                 tags,
	}, child)
	if err != nil {
		return nil, err
	}
	nodeRole, err := iam.NewRole(ctx, name+"-node", &iam.RoleArgs{
		Description:      pulumi.Sprintf("Worker nodes of EKS cluster %s", args.Name),
		AssumeRolePolicy: pulumi.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
		Tags:             tags,
	}, child)
	if err != nil {
		return nil, err
	}
	var attachments []pulumi.Resource
	for i, arn := range nodeRolePolicies {
		att, err := iam.NewRolePolicyAttachment(ctx, fmt.Sprintf("%s-node-%d", name, i), &iam.RolePolicyAttachmentArgs{
			Role: nodeRole.Name, PolicyArn: pulumi.String(arn),
		}, child)
		if err != nil {
			return nil, err
		}
		attachments = append(attachments, att)
	}

	accessEntries := map[string]eks.AccessEntryArgs{}
	for i, arn := range args.AdminArns {
		accessEntries[fmt.Sprintf("admin-%d", i)] = eks.AccessEntryArgs{
			PrincipalArn: pulumi.String(arn),
			AccessPolicies: map[string]eks.AccessPolicyAssociationInput{
				"admin": eks.AccessPolicyAssociationArgs{
					PolicyArn:   pulumi.String("arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"),
					AccessScope: awseks.AccessPolicyAssociationAccessScopeArgs{Type: pulumi.String("cluster")},
				},
			},
		}
	}
	mode := eks.AuthenticationModeApi
	skipDefault, useDefaultCni := true, true
	cluster, err := eks.NewCluster(ctx, name, &eks.ClusterArgs{
		Name:    pulumi.String(args.Name),
		Version: pulumi.String(args.KubernetesVersion),
		VpcId:   args.VpcID,
		// The node subnets only. EKS places its control-plane network interfaces in the cluster's
		// subnets, and the API server's traffic to pods (webhooks, pods/proxy) comes from them: in
		// the load-balancer subnets it would come from the CIDRs the NetworkPolicies admit to
		// Envoy's ports. The load balancers get their subnets from the Ingress/Service annotation.
		PrivateSubnetIds: args.PrivateSubnetIDs,
		// The default node group uses EC2 Launch Configurations, which accounts created after
		// 2024-10-01 cannot create; the managed node group below replaces it.
		SkipDefaultNodeGroup: &skipDefault,
		// Keep EKS's own aws-node instead of pulumi-eks' self-managed CNI, so the vpc-cni add-on below
		// can turn on NetworkPolicy enforcement (the self-managed one cannot).
		UseDefaultVpcCni:       &useDefaultCni,
		AuthenticationMode:     &mode,
		AccessEntries:          accessEntries,
		CreateOidcProvider:     pulumi.Bool(true),
		EncryptionConfigKeyArn: secretsKey.Arn,
		EnabledClusterLogTypes: pulumi.ToStringArray(args.LogTypes),
		EndpointPrivateAccess:  pulumi.Bool(true),
		EndpointPublicAccess:   pulumi.Bool(args.EndpointPublicAccess),
		PublicAccessCidrs:      pulumi.ToStringArray(args.EndpointPublicAccessCidrs),
		Tags:                   tags,
	}, child)
	if err != nil {
		return nil, err
	}

	// Without this, NetworkPolicies are accepted by the API server and enforced by nothing.
	if _, err := awseks.NewAddon(ctx, name+"-vpc-cni", &awseks.AddonArgs{
		ClusterName:              cluster.EksCluster.Name(),
		AddonName:                pulumi.String("vpc-cni"),
		ConfigurationValues:      pulumi.String(VpcCniConfiguration),
		ResolveConflictsOnCreate: pulumi.String("OVERWRITE"),
		ResolveConflictsOnUpdate: pulumi.String("OVERWRITE"),
		Tags:                     tags,
	}, child); err != nil {
		return nil, err
	}

	// Our own launch template: IMDSv2 only, with a hop limit of 1 so pods cannot borrow the node's
	// role through the metadata service (they use IRSA), and an encrypted gp3 root volume.
	launchTemplate, err := ec2.NewLaunchTemplate(ctx, name+"-nodes", &ec2.LaunchTemplateArgs{
		Description: pulumi.Sprintf("Nodes of EKS cluster %s", args.Name),
		MetadataOptions: &ec2.LaunchTemplateMetadataOptionsArgs{
			HttpEndpoint:            pulumi.String("enabled"),
			HttpTokens:              pulumi.String("required"),
			HttpPutResponseHopLimit: pulumi.Int(1),
		},
		BlockDeviceMappings: ec2.LaunchTemplateBlockDeviceMappingArray{ec2.LaunchTemplateBlockDeviceMappingArgs{
			DeviceName: pulumi.String("/dev/xvda"),
			Ebs: &ec2.LaunchTemplateBlockDeviceMappingEbsArgs{
				VolumeSize: pulumi.Int(args.NodeDiskSizeGiB), VolumeType: pulumi.String("gp3"),
				Encrypted: pulumi.String("true"), DeleteOnTermination: pulumi.String("true"),
			},
		}},
		TagSpecifications: ec2.LaunchTemplateTagSpecificationArray{ec2.LaunchTemplateTagSpecificationArgs{
			ResourceType: pulumi.String("instance"), Tags: mergeTags(args.Tags, map[string]string{"Name": args.Name + "-node"}),
		}},
		Tags: tags,
	}, child)
	if err != nil {
		return nil, err
	}
	nodeGroup, err := eks.NewManagedNodeGroup(ctx, name+"-nodes", &eks.ManagedNodeGroupArgs{
		Cluster:       cluster,
		NodeRole:      nodeRole,
		SubnetIds:     args.PrivateSubnetIDs,
		AmiType:       pulumi.String(amiType),
		CapacityType:  pulumi.String(args.NodeCapacityType),
		InstanceTypes: pulumi.ToStringArray(args.NodeInstanceTypes),
		ScalingConfig: awseks.NodeGroupScalingConfigArgs{
			MinSize: pulumi.Int(args.NodeMinSize), DesiredSize: pulumi.Int(args.NodeDesiredSize), MaxSize: pulumi.Int(args.NodeMaxSize),
		},
		LaunchTemplate: awseks.NodeGroupLaunchTemplateArgs{Id: launchTemplate.ID(), Version: pulumi.Sprintf("%d", launchTemplate.LatestVersion)},
		Labels:         pulumi.StringMap{"ztedge.io/pool": pulumi.String("system")},
		Tags:           tags,
	}, child, pulumi.DependsOn(attachments))
	if err != nil {
		return nil, err
	}

	provider, err := kubernetes.NewProvider(ctx, name, &kubernetes.ProviderArgs{
		Kubeconfig: cluster.KubeconfigJson,
		// Fail instead of silently skipping resources when the cluster is unreachable.
		DeleteUnreachable:      pulumi.Bool(false),
		EnableConfigMapMutable: pulumi.Bool(MutableConfig),
		EnableSecretMutable:    pulumi.Bool(MutableConfig),
	}, child)
	if err != nil {
		return nil, err
	}

	oidc := cluster.Core.OidcProvider()
	c.ClusterName = cluster.EksCluster.Name()
	c.Kubeconfig = pulumi.ToSecret(cluster.KubeconfigJson).(pulumi.StringOutput)
	c.OidcProviderArn = oidc.Arn()
	c.OidcProviderURL = oidc.Url().ApplyT(func(u string) string { return strings.TrimPrefix(u, "https://") }).(pulumi.StringOutput)
	c.Provider = provider
	c.NodeGroup = nodeGroup
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{
		"clusterName": c.ClusterName, "kubeconfig": c.Kubeconfig,
		"oidcProviderArn": c.OidcProviderArn, "oidcProviderUrl": c.OidcProviderURL,
	})
}
