package components

import (
	"fmt"
	"net/netip"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// NetworkArgs describes the VPC: a new one (VpcCidr, AvailabilityZones, NatPerAz) or an existing one.
type NetworkArgs struct {
	ClusterName       string
	VpcCidr           string
	AvailabilityZones int
	// NatPerAz gives every private subnet its own NAT gateway (survives a zone outage); false: one shared NAT.
	NatPerAz bool
	Tags     map[string]string

	// InternalLoadBalancer (scheme internal): the load balancer gets private subnets of its own;
	// otherwise it lives in the public subnets. Either way no node (and so no pod) is in them.
	InternalLoadBalancer bool

	ExistingVpcID            string
	ExistingVpcCidr          string
	ExistingPublicSubnetIDs  []string
	ExistingPrivateSubnetIDs []string
	// The existing VPC's load balancer subnets (IDs and CIDRs, nothing else runs there) and the
	// CIDRs of its node subnets (ExistingPrivateSubnetIDs); the two must not overlap.
	ExistingLoadBalancerSubnetIDs   []string
	ExistingLoadBalancerSubnetCidrs []string
	ExistingNodeSubnetCidrs         []string
}

// Network is the VPC the cluster and the load balancer live in.
type Network struct {
	pulumi.ResourceState

	VpcID            pulumi.StringOutput      `pulumi:"vpcId"`
	VpcCidr          pulumi.StringOutput      `pulumi:"vpcCidr"`
	PublicSubnetIDs  pulumi.StringArrayOutput `pulumi:"publicSubnetIds"`
	PrivateSubnetIDs pulumi.StringArrayOutput `pulumi:"privateSubnetIds"`
	// LoadBalancerSubnetIDs are where the load balancer's network interfaces go (the controller is
	// told so explicitly), and LoadBalancerCidrs their ranges: the only sources the NetworkPolicy
	// admits to Envoy. NodeCidrs are the node subnets' ranges (every pod's address is in one).
	LoadBalancerSubnetIDs pulumi.StringArrayOutput `pulumi:"loadBalancerSubnetIds"`
	LoadBalancerCidrs     []string
	NodeCidrs             []string
}

// SubnetCidrs carves a VPC CIDR into one public and one private subnet per zone: the public /(n+4)
// subnets share the first quarter of the range (load balancers and NAT need few addresses), each
// private subnet gets a whole quarter (pods take VPC addresses with the VPC CNI).
func SubnetCidrs(vpcCidr string, zones int) (public, private []string, err error) {
	pfx, err := netip.ParsePrefix(vpcCidr)
	if err != nil {
		return nil, nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/16", vpcCidr)
	}
	if !pfx.Addr().Is4() || pfx.Masked() != pfx {
		return nil, nil, fmt.Errorf("%q must be an IPv4 network address with zero host bits, e.g. 10.0.0.0/16", vpcCidr)
	}
	if pfx.Bits() < 16 || pfx.Bits() > 22 {
		return nil, nil, fmt.Errorf("%q is /%d: use a prefix from /16 (AWS's largest VPC) to /22 (smallest that leaves room for pods)", vpcCidr, pfx.Bits())
	}
	if !pfx.Addr().IsPrivate() {
		return nil, nil, fmt.Errorf("%q is not a private (RFC 1918) range", vpcCidr)
	}
	if zones < 2 || zones > 3 {
		return nil, nil, fmt.Errorf("%d zones: use 2 or 3", zones)
	}
	for i := 0; i < zones; i++ {
		public = append(public, subnet(pfx, 4, i).String())
		private = append(private, subnet(pfx, 2, i+1).String())
	}
	return public, private, nil
}

// InternalLoadBalancerSubnetCidrs carves the internal load balancer's own private subnets, one per
// zone, from the block of the VPC's first quarter that the public subnets leave free (its 4th
// /(n+4)): /(n+6) each, e.g. 10.0.48.0/22, 10.0.52.0/22, 10.0.56.0/22 in 10.0.0.0/16. An ALB
// needs at least a /27, so the VPC must be /21 or larger.
func InternalLoadBalancerSubnetCidrs(vpcCidr string, zones int) ([]string, error) {
	if _, _, err := SubnetCidrs(vpcCidr, zones); err != nil {
		return nil, err
	}
	pfx := netip.MustParsePrefix(vpcCidr)
	if pfx.Bits()+6 > 27 {
		return nil, fmt.Errorf("%q is too small for an internal load balancer's own subnets (/%d each; an ALB needs /27): use /21 or larger", vpcCidr, pfx.Bits()+6)
	}
	block := subnet(pfx, 4, 3)
	var out []string
	for i := 0; i < zones; i++ {
		out = append(out, subnet(block, 2, i).String())
	}
	return out, nil
}

// OverlappingCidrs returns the first pair (a from as, b from bs) whose ranges overlap, or ok=false.
// Load balancer subnets that overlap node subnets would let pods there reach Envoy directly.
func OverlappingCidrs(as, bs []string) (a, b string, ok bool) {
	for _, x := range as {
		px, err := netip.ParsePrefix(x)
		if err != nil {
			continue
		}
		for _, y := range bs {
			if py, err := netip.ParsePrefix(y); err == nil && px.Overlaps(py) {
				return x, y, true
			}
		}
	}
	return "", "", false
}

// subnet returns the index-th subnet of pfx that is newBits longer.
func subnet(pfx netip.Prefix, newBits, index int) netip.Prefix {
	base := pfx.Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	bits := pfx.Bits() + newBits
	n += uint32(index) << (32 - bits)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), bits)
}

func (a *NetworkArgs) validate() error {
	if a.ClusterName == "" {
		return fmt.Errorf("network: ClusterName is required (subnets are tagged with it for the load balancer controller)")
	}
	if a.ExistingVpcID != "" {
		if len(a.ExistingPublicSubnetIDs) < 2 || len(a.ExistingPrivateSubnetIDs) < 2 {
			return fmt.Errorf("network: an existing VPC needs ≥2 public and ≥2 private subnets")
		}
		if _, err := netip.ParsePrefix(a.ExistingVpcCidr); err != nil {
			return fmt.Errorf("network: ExistingVpcCidr %q is not a CIDR", a.ExistingVpcCidr)
		}
		if len(a.ExistingLoadBalancerSubnetIDs) < 2 || len(a.ExistingLoadBalancerSubnetIDs) != len(a.ExistingLoadBalancerSubnetCidrs) || len(a.ExistingNodeSubnetCidrs) == 0 {
			return fmt.Errorf("network: an existing VPC needs ≥2 load balancer subnets with their CIDRs, and the node subnets' CIDRs")
		}
		if lb, node, overlap := OverlappingCidrs(a.ExistingLoadBalancerSubnetCidrs, a.ExistingNodeSubnetCidrs); overlap {
			return fmt.Errorf("network: load balancer subnet %s overlaps node subnet %s", lb, node)
		}
		return nil
	}
	if a.InternalLoadBalancer {
		_, err := InternalLoadBalancerSubnetCidrs(a.VpcCidr, a.AvailabilityZones)
		return err
	}
	_, _, err := SubnetCidrs(a.VpcCidr, a.AvailabilityZones)
	return err
}

// NewNetwork creates the VPC (or adopts an existing one by ID; its subnets must already carry the tags).
func NewNetwork(ctx *pulumi.Context, name string, args *NetworkArgs, opts ...pulumi.ResourceOption) (*Network, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	n := &Network{}
	child, err := register(ctx, "ztedge:network:Network", name, n, opts)
	if err != nil {
		return nil, err
	}
	if args.ExistingVpcID != "" {
		n.VpcID = pulumi.String(args.ExistingVpcID).ToStringOutput()
		n.VpcCidr = pulumi.String(args.ExistingVpcCidr).ToStringOutput()
		n.PublicSubnetIDs = pulumi.ToStringArray(args.ExistingPublicSubnetIDs).ToStringArrayOutput()
		n.PrivateSubnetIDs = pulumi.ToStringArray(args.ExistingPrivateSubnetIDs).ToStringArrayOutput()
		n.LoadBalancerSubnetIDs = pulumi.ToStringArray(args.ExistingLoadBalancerSubnetIDs).ToStringArrayOutput()
		n.LoadBalancerCidrs, n.NodeCidrs = args.ExistingLoadBalancerSubnetCidrs, args.ExistingNodeSubnetCidrs
		return n, n.registerOutputs(ctx)
	}

	public, private, _ := SubnetCidrs(args.VpcCidr, args.AvailabilityZones)
	n.LoadBalancerCidrs, n.NodeCidrs = public, private
	var internalLB []string
	if args.InternalLoadBalancer {
		internalLB, _ = InternalLoadBalancerSubnetCidrs(args.VpcCidr, args.AvailabilityZones)
		n.LoadBalancerCidrs = internalLB
	}
	zones, err := aws.GetAvailabilityZones(ctx, &aws.GetAvailabilityZonesArgs{State: pulumi.StringRef("available")}, pulumi.Parent(n))
	if err != nil {
		return nil, fmt.Errorf("network: listing availability zones: %w", err)
	}
	if len(zones.Names) < args.AvailabilityZones {
		return nil, fmt.Errorf("network: the region has %d available zones, %d requested", len(zones.Names), args.AvailabilityZones)
	}

	clusterTag := "kubernetes.io/cluster/" + args.ClusterName
	vpc, err := ec2.NewVpc(ctx, name, &ec2.VpcArgs{
		CidrBlock:          pulumi.String(args.VpcCidr),
		EnableDnsHostnames: pulumi.Bool(true), // EKS private endpoints and IRSA need DNS hostnames
		EnableDnsSupport:   pulumi.Bool(true),
		Tags:               mergeTags(args.Tags, map[string]string{"Name": name}),
	}, child)
	if err != nil {
		return nil, err
	}
	igw, err := ec2.NewInternetGateway(ctx, name, &ec2.InternetGatewayArgs{
		VpcId: vpc.ID(), Tags: mergeTags(args.Tags, map[string]string{"Name": name}),
	}, child)
	if err != nil {
		return nil, err
	}
	publicRoutes, err := ec2.NewRouteTable(ctx, name+"-public", &ec2.RouteTableArgs{
		VpcId:  vpc.ID(),
		Routes: ec2.RouteTableRouteArray{ec2.RouteTableRouteArgs{CidrBlock: pulumi.String("0.0.0.0/0"), GatewayId: igw.ID()}},
		Tags:   mergeTags(args.Tags, map[string]string{"Name": name + "-public"}),
	}, child)
	if err != nil {
		return nil, err
	}

	var lbRoutes *ec2.RouteTable
	if args.InternalLoadBalancer {
		// The internal load balancer's subnets route inside the VPC only: it answers clients in the
		// VPC and talks to pods, nothing else.
		lbRoutes, err = ec2.NewRouteTable(ctx, name+"-lb", &ec2.RouteTableArgs{
			VpcId: vpc.ID(), Tags: mergeTags(args.Tags, map[string]string{"Name": name + "-lb"}),
		}, child)
		if err != nil {
			return nil, err
		}
	}

	var publicIDs, privateIDs, lbIDs pulumi.StringArray
	var natIDs []pulumi.IDOutput
	for i := 0; i < args.AvailabilityZones; i++ {
		az := zones.Names[i]
		pub, err := newRoutedSubnet(ctx, fmt.Sprintf("%s-public-%d", name, i), &ec2.SubnetArgs{
			VpcId: vpc.ID(), CidrBlock: pulumi.String(public[i]), AvailabilityZone: pulumi.String(az),
			// Nothing launched here needs a public IP by default; the load balancer and NAT get theirs explicitly.
			MapPublicIpOnLaunch: pulumi.Bool(false),
			Tags: mergeTags(args.Tags, map[string]string{
				"Name": fmt.Sprintf("%s-public-%s", name, az), "kubernetes.io/role/elb": "1", clusterTag: "shared",
			}),
		}, publicRoutes.ID(), child)
		if err != nil {
			return nil, err
		}
		if i == 0 || args.NatPerAz {
			eip, err := ec2.NewEip(ctx, fmt.Sprintf("%s-nat-%d", name, i), &ec2.EipArgs{
				Domain: pulumi.String("vpc"), Tags: mergeTags(args.Tags, map[string]string{"Name": fmt.Sprintf("%s-nat-%s", name, az)}),
			}, child)
			if err != nil {
				return nil, err
			}
			nat, err := ec2.NewNatGateway(ctx, fmt.Sprintf("%s-%d", name, i), &ec2.NatGatewayArgs{
				AllocationId: eip.ID(), SubnetId: pub.ID(),
				Tags: mergeTags(args.Tags, map[string]string{"Name": fmt.Sprintf("%s-%s", name, az)}),
			}, child, pulumi.DependsOn([]pulumi.Resource{igw}))
			if err != nil {
				return nil, err
			}
			natIDs = append(natIDs, nat.ID())
		}
		privateRoutes, err := ec2.NewRouteTable(ctx, fmt.Sprintf("%s-private-%d", name, i), &ec2.RouteTableArgs{
			VpcId: vpc.ID(),
			Routes: ec2.RouteTableRouteArray{ec2.RouteTableRouteArgs{
				CidrBlock: pulumi.String("0.0.0.0/0"), NatGatewayId: natIDs[len(natIDs)-1],
			}},
			Tags: mergeTags(args.Tags, map[string]string{"Name": fmt.Sprintf("%s-private-%s", name, az)}),
		}, child)
		if err != nil {
			return nil, err
		}
		// Node subnets carry no load balancer role: no load balancer may be placed among the pods.
		priv, err := newRoutedSubnet(ctx, fmt.Sprintf("%s-private-%d", name, i), &ec2.SubnetArgs{
			VpcId: vpc.ID(), CidrBlock: pulumi.String(private[i]), AvailabilityZone: pulumi.String(az),
			Tags: mergeTags(args.Tags, map[string]string{
				"Name": fmt.Sprintf("%s-private-%s", name, az), clusterTag: "shared",
			}),
		}, privateRoutes.ID(), child)
		if err != nil {
			return nil, err
		}
		publicIDs = append(publicIDs, pub.ID().ToStringOutput())
		privateIDs = append(privateIDs, priv.ID().ToStringOutput())
		if !args.InternalLoadBalancer {
			continue
		}
		lbSubnet, err := newRoutedSubnet(ctx, fmt.Sprintf("%s-lb-%d", name, i), &ec2.SubnetArgs{
			VpcId: vpc.ID(), CidrBlock: pulumi.String(internalLB[i]), AvailabilityZone: pulumi.String(az),
			Tags: mergeTags(args.Tags, map[string]string{
				"Name": fmt.Sprintf("%s-lb-%s", name, az), "kubernetes.io/role/internal-elb": "1", clusterTag: "shared",
			}),
		}, lbRoutes.ID(), child)
		if err != nil {
			return nil, err
		}
		lbIDs = append(lbIDs, lbSubnet.ID().ToStringOutput())
	}
	n.VpcID = vpc.ID().ToStringOutput()
	n.VpcCidr = vpc.CidrBlock
	n.PublicSubnetIDs = publicIDs.ToStringArrayOutput()
	n.PrivateSubnetIDs = privateIDs.ToStringArrayOutput()
	n.LoadBalancerSubnetIDs = publicIDs.ToStringArrayOutput()
	if args.InternalLoadBalancer {
		n.LoadBalancerSubnetIDs = lbIDs.ToStringArrayOutput()
	}
	return n, n.registerOutputs(ctx)
}

// newRoutedSubnet creates a subnet and associates it with a route table (both named id).
func newRoutedSubnet(ctx *pulumi.Context, id string, args *ec2.SubnetArgs, routes pulumi.IDOutput, opts ...pulumi.ResourceOption) (*ec2.Subnet, error) {
	s, err := ec2.NewSubnet(ctx, id, args, opts...)
	if err != nil {
		return nil, err
	}
	_, err = ec2.NewRouteTableAssociation(ctx, id, &ec2.RouteTableAssociationArgs{SubnetId: s.ID(), RouteTableId: routes}, opts...)
	return s, err
}

func (n *Network) registerOutputs(ctx *pulumi.Context) error {
	return ctx.RegisterResourceOutputs(n, pulumi.Map{
		"vpcId": n.VpcID, "vpcCidr": n.VpcCidr, "publicSubnetIds": n.PublicSubnetIDs, "privateSubnetIds": n.PrivateSubnetIDs,
		"loadBalancerSubnetIds": n.LoadBalancerSubnetIDs,
	})
}
