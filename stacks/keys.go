package stacks

// Key documents one configuration setting. The registry below is the single source of truth:
// Load reads only keys listed here, a test checks that Pulumi.yaml declares exactly these keys with
// the same type and default, and the README's configuration reference is generated from it.
type Key struct {
	// Name without the project namespace: "hostname" is set with `pulumi config set hostname …`
	// and read as "ztedge:hostname". Keys of other namespaces carry theirs ("aws:region").
	Name        string
	Type        string // string, integer, boolean, array (JSON list), object (JSON object)
	Default     any    // nil: no default
	Description string
	Secret      bool // must be set with --secret
	Group       string
}

// Namespace is the project's configuration namespace (the project name in Pulumi.yaml).
const Namespace = "ztedge"

// FullName is the key as the engine passes it to the program.
func (k Key) FullName() string {
	for _, c := range k.Name {
		if c == ':' {
			return k.Name
		}
	}
	return Namespace + ":" + k.Name
}

// Keys is every setting the program reads, in documentation order.
var Keys = []Key{
	// Where.
	{Name: "aws:region", Type: "string", Group: "aws", Description: "AWS region of every resource (required), e.g. us-east-1."},
	{Name: "hostname", Type: "string", Group: "edge", Description: "Public DNS name of the edge, e.g. api.example.com (required)."},
	{Name: "hostedZoneId", Type: "string", Group: "edge", Description: "Route53 hosted zone that holds hostname; used for ACM DNS validation. Required unless certificateArn is set."},
	{Name: "certificateArn", Type: "string", Group: "edge", Description: "Existing ACM certificate for hostname (issued, same region). When set, no certificate or DNS records are created."},
	{Name: "tags", Type: "object", Default: map[string]any{}, Group: "aws", Description: "Tags added to every AWS resource (JSON object of strings)."},

	// Network.
	{Name: "vpcCidr", Type: "string", Default: "10.0.0.0/16", Group: "network", Description: "CIDR of the new VPC, /16 to /22. Ignored with existingVpcId."},
	{Name: "availabilityZones", Type: "integer", Default: 2, Group: "network", Description: "Number of availability zones for the new VPC: 2 or 3."},
	{Name: "natGateways", Type: "string", Default: "single", Group: "network", Description: "NAT gateways of the new VPC: single (one, cheaper) or perAz (one per zone, survives a zone outage)."},
	{Name: "existingVpcId", Type: "string", Group: "network", Description: "Use this VPC instead of creating one (vpc-…). Requires existingPublicSubnetIds, existingPrivateSubnetIds and existingVpcCidr."},
	{Name: "existingVpcCidr", Type: "string", Group: "network", Description: "CIDR of existingVpcId (the NetworkPolicies admit the load balancer from it)."},
	{Name: "existingPublicSubnetIds", Type: "array", Default: []any{}, Group: "network", Description: "Public subnets of existingVpcId (≥2 AZs), tagged kubernetes.io/role/elb=1."},
	{Name: "existingPrivateSubnetIds", Type: "array", Default: []any{}, Group: "network", Description: "Private subnets of existingVpcId (≥2 AZs) for the nodes, tagged kubernetes.io/role/internal-elb=1."},

	// Cluster.
	{Name: "clusterName", Type: "string", Group: "cluster", Description: "EKS cluster name. Default: ztedge-<stack>."},
	{Name: "kubernetesVersion", Type: "string", Default: "1.33", Group: "cluster", Description: "Kubernetes minor version of the control plane and nodes (pinned; see README for the supported list)."},
	{Name: "nodeInstanceTypes", Type: "array", Default: []any{"t3.large"}, Group: "cluster", Description: "Instance types of the managed node group; all of one architecture (x86_64 or Graviton)."},
	{Name: "nodeCapacityType", Type: "string", Default: "ON_DEMAND", Group: "cluster", Description: "ON_DEMAND or SPOT."},
	{Name: "nodeMinSize", Type: "integer", Default: 2, Group: "cluster", Description: "Minimum node count."},
	{Name: "nodeDesiredSize", Type: "integer", Default: 2, Group: "cluster", Description: "Desired node count (between min and max)."},
	{Name: "nodeMaxSize", Type: "integer", Default: 4, Group: "cluster", Description: "Maximum node count."},
	{Name: "nodeDiskSizeGiB", Type: "integer", Default: 40, Group: "cluster", Description: "Root volume size of each node in GiB (20–1000)."},
	{Name: "endpointPublicAccess", Type: "boolean", Default: true, Group: "cluster", Description: "Expose the Kubernetes API endpoint publicly (restricted to endpointPublicAccessCidrs). false: private endpoint only."},
	{Name: "endpointPublicAccessCidrs", Type: "array", Default: []any{}, Group: "cluster", Description: "CIDRs allowed to reach the public API endpoint; required when endpointPublicAccess is true."},
	{Name: "clusterAdminArns", Type: "array", Default: []any{}, Group: "cluster", Description: "IAM role/user ARNs granted cluster-admin through EKS access entries (the creator is admin too)."},
	{Name: "clusterLogTypes", Type: "array", Default: []any{"api", "audit", "authenticator"}, Group: "cluster", Description: "Control-plane log types sent to CloudWatch: api, audit, authenticator, controllerManager, scheduler."},

	// AWS Load Balancer Controller.
	{Name: "albControllerChartVersion", Type: "string", Default: "3.5.0", Group: "alb-controller", Description: "aws-load-balancer-controller chart version; must be one whose IAM policy ztedge embeds."},
	{Name: "albControllerChartRepository", Type: "string", Default: "https://aws.github.io/eks-charts", Group: "alb-controller", Description: "Helm repository of the controller chart (a mirror for air-gapped installs)."},
	{Name: "albControllerReplicas", Type: "integer", Default: 2, Group: "alb-controller", Description: "Controller replicas (1–3)."},
}
