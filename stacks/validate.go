package stacks

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/ztedge/ztedge/components"
)

// SupportedKubernetesVersions are the EKS minor versions in standard support, the only ones ztedge
// accepts: a version past its end of standard support costs extended-support fees per cluster
// hour, and past its end of extended support it can no longer be created.
//
// Source: the Amazon EKS Kubernetes release calendar,
// https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html#kubernetes-release-calendar
// and the release notes, https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions-standard.html
// ("Kubernetes 1.36 is now available in Amazon EKS"). As of 2026-12-02: 1.33 left standard support
// on 2026-07-29 and 1.34 on 2026-12-02; 1.35 and 1.36 are in standard support.
// Revisit whenever EKS releases a new minor version or one leaves standard support (about every
// four months). Every version here must have AL2023 EKS-optimized AMIs (the node group names an
// AL2023 AMI type and EKS picks the AMI release for the cluster version; AL2 has none after 1.32).
var SupportedKubernetesVersions = []string{"1.35", "1.36"}

var (
	// RFC 1123 hostname: labels of letters, digits and hyphens, at least two labels.
	hostnameRE     = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	regionRE       = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-\d$`)
	hostedZoneRE   = regexp.MustCompile(`^Z[A-Z0-9]{4,31}$`)
	acmArnRE       = regexp.MustCompile(`^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$`)
	iamPrincipalRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$`)
	vpcIDRE        = regexp.MustCompile(`^vpc-[0-9a-f]{8,17}$`)
	subnetIDRE     = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	instanceTypeRE = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	logTypes       = []string{"api", "audit", "authenticator", "controllerManager", "scheduler"}
)

type problems []error

func (p *problems) add(key, format string, args ...any) {
	k := Key{Name: key}
	*p = append(*p, fmt.Errorf("%s: %s", k.FullName(), fmt.Sprintf(format, args...)))
}

// Validate checks every setting and returns one error per problem.
func (c *Config) Validate() []error {
	var p problems
	c.validateCore(&p)
	if c.Platform == PlatformLocal {
		c.validateLocal(&p) // no VPC, cluster or ALB controller to check
	} else {
		c.validateNetwork(&p)
		c.validateCluster(&p)
		c.validateAlbController(&p)
	}
	c.validateEdge(&p)
	c.validateEngine(&p)
	c.validateAuth(&p)
	c.validateMesh(&p)
	c.validateMonitoring(&p)
	return p
}

func (c *Config) validateCore(p *problems) {
	c.validatePlatform(p)
	aws := c.Platform != PlatformLocal // a local stack has no region, certificate or hosted zone
	switch {
	case !aws:
	case c.Region == "":
		p.add("aws:region", "is required; set it with `pulumi config set aws:region us-east-1`")
	case !regionRE.MatchString(c.Region):
		p.add("aws:region", "%q is not an AWS region name such as us-east-1", c.Region)
	}
	switch {
	case c.Hostname == "":
		p.add("hostname", "is required: the edge's public DNS name, e.g. `pulumi config set hostname api.example.com`")
	case strings.HasPrefix(c.Hostname, "*."):
		p.add("hostname", "%q is a wildcard; the edge needs one concrete name (its Host and certificate match it exactly)", c.Hostname)
	case len(c.Hostname) > 253 || !hostnameRE.MatchString(c.Hostname):
		p.add("hostname", "%q is not a valid DNS name (letters, digits, hyphens; at least two labels), e.g. api.example.com", c.Hostname)
	}
	if !aws {
	} else if c.CertificateArn != "" && !acmArnRE.MatchString(c.CertificateArn) {
		p.add("certificateArn", "%q is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<uuid>)", c.CertificateArn)
	} else if c.CertificateArn != "" && c.Region != "" && strings.Split(c.CertificateArn, ":")[3] != c.Region {
		p.add("certificateArn", "is in region %s but the stack is in %s; a load balancer can only use a certificate of its own region",
			strings.Split(c.CertificateArn, ":")[3], c.Region)
	}
	switch {
	case !aws:
	case c.CertificateArn == "" && c.HostedZoneID == "":
		p.add("hostedZoneId", "is required to validate the ACM certificate by DNS (or set certificateArn to use an existing certificate)")
	case c.HostedZoneID != "" && !hostedZoneRE.MatchString(c.HostedZoneID):
		p.add("hostedZoneId", "%q is not a Route53 hosted zone ID (Z followed by letters and digits)", c.HostedZoneID)
	}
	for k, v := range c.Tags {
		if k == "" || len(k) > 128 || len(v) > 256 || strings.HasPrefix(strings.ToLower(k), "aws:") {
			p.add("tags", "tag %q=%q is not allowed: keys 1–128 characters, values ≤256, no aws: prefix", k, v)
		}
	}
}

func (c *Config) validateNetwork(p *problems) {
	n := c.Network
	if n.ExistingVpcID != "" {
		if !vpcIDRE.MatchString(n.ExistingVpcID) {
			p.add("existingVpcId", "%q is not a VPC ID (vpc-…)", n.ExistingVpcID)
		}
		if _, err := netip.ParsePrefix(n.ExistingVpcCidr); err != nil {
			p.add("existingVpcCidr", "is required with existingVpcId and must be a CIDR such as 10.0.0.0/16 (got %q)", n.ExistingVpcCidr)
		}
		c.validateExistingLoadBalancerSubnets(p)
		for _, s := range []struct {
			key string
			ids []string
		}{{"existingPublicSubnetIds", n.ExistingPublicSubnetIDs}, {"existingPrivateSubnetIds", n.ExistingPrivateSubnetIDs}, {"existingLoadBalancerSubnetIds", n.ExistingLoadBalancerSubnetIDs}} {
			if len(s.ids) < 2 {
				p.add(s.key, "needs at least 2 subnets in different availability zones when existingVpcId is set (EKS and the load balancer require two AZs)")
			}
			for _, id := range s.ids {
				if !subnetIDRE.MatchString(id) {
					p.add(s.key, "%q is not a subnet ID (subnet-…)", id)
				}
			}
		}
		return
	}
	if len(n.ExistingPublicSubnetIDs)+len(n.ExistingPrivateSubnetIDs)+len(n.ExistingLoadBalancerSubnetIDs)+len(n.ExistingLoadBalancerSubnetCidrs)+len(n.ExistingNodeSubnetCidrs) > 0 || n.ExistingVpcCidr != "" {
		p.add("existingVpcId", "is required when existing subnets or existingVpcCidr are set (or remove them to create a new VPC)")
	}
	if c.Edge.LoadBalancerScheme == "internal" {
		if _, err := components.InternalLoadBalancerSubnetCidrs(n.VpcCidr, max(2, min(3, n.AvailabilityZones))); err != nil {
			p.add("vpcCidr", "with loadBalancerScheme internal: %v", err)
		}
	}
	if n.AvailabilityZones < 2 || n.AvailabilityZones > 3 {
		p.add("availabilityZones", "%d is out of range: use 2 or 3", n.AvailabilityZones)
	}
	if n.NatGateways != "single" && n.NatGateways != "perAz" {
		p.add("natGateways", "%q is not allowed: use single or perAz", n.NatGateways)
	}
	if _, _, err := components.SubnetCidrs(n.VpcCidr, max(2, min(3, n.AvailabilityZones))); err != nil {
		p.add("vpcCidr", "%v", err)
	}
}

func (c *Config) validateCluster(p *problems) {
	cl := c.Cluster
	if len(cl.Name) > 100 || !regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`).MatchString(cl.Name) {
		p.add("clusterName", "%q is not a valid EKS cluster name (letters, digits, - and _, at most 100 characters)", cl.Name)
	}
	if !slices.Contains(SupportedKubernetesVersions, cl.KubernetesVersion) {
		p.add("kubernetesVersion", "%q is not supported: use one of %s", cl.KubernetesVersion, strings.Join(SupportedKubernetesVersions, ", "))
	}
	if len(cl.NodeInstanceTypes) == 0 {
		p.add("nodeInstanceTypes", "needs at least one instance type, e.g. [\"t3.large\"]")
	}
	for _, t := range cl.NodeInstanceTypes {
		if !instanceTypeRE.MatchString(t) {
			p.add("nodeInstanceTypes", "%q is not an EC2 instance type such as t3.large", t)
		}
	}
	if _, err := components.AmiTypeFor(cl.NodeInstanceTypes); err != nil && len(cl.NodeInstanceTypes) > 0 {
		p.add("nodeInstanceTypes", "%v", err)
	}
	if cl.NodeCapacityType != "ON_DEMAND" && cl.NodeCapacityType != "SPOT" {
		p.add("nodeCapacityType", "%q is not allowed: use ON_DEMAND or SPOT", cl.NodeCapacityType)
	}
	if cl.NodeMinSize < 1 {
		p.add("nodeMinSize", "%d is too small: at least 1 node is needed to run the edge", cl.NodeMinSize)
	}
	if cl.NodeMaxSize > 100 {
		p.add("nodeMaxSize", "%d is more than this tool supports (100)", cl.NodeMaxSize)
	}
	if cl.NodeMinSize > cl.NodeMaxSize {
		p.add("nodeMinSize", "%d is greater than nodeMaxSize %d", cl.NodeMinSize, cl.NodeMaxSize)
	} else if cl.NodeDesiredSize < cl.NodeMinSize || cl.NodeDesiredSize > cl.NodeMaxSize {
		p.add("nodeDesiredSize", "%d must be between nodeMinSize %d and nodeMaxSize %d", cl.NodeDesiredSize, cl.NodeMinSize, cl.NodeMaxSize)
	}
	if cl.NodeDiskSizeGiB < 20 || cl.NodeDiskSizeGiB > 1000 {
		p.add("nodeDiskSizeGiB", "%d is out of range: use 20 to 1000", cl.NodeDiskSizeGiB)
	}
	if cl.EndpointPublicAccess && len(cl.EndpointPublicAccessCidrs) == 0 {
		p.add("endpointPublicAccessCidrs", "is required when endpointPublicAccess is true: list the CIDRs of your operators and CI (or set endpointPublicAccess false for a private endpoint)")
	}
	for _, cidr := range cl.EndpointPublicAccessCidrs {
		if pfx, err := netip.ParsePrefix(cidr); err != nil || pfx.Masked() != pfx {
			p.add("endpointPublicAccessCidrs", "%q is not a CIDR such as 203.0.113.0/24 (host bits must be zero)", cidr)
		}
	}
	for _, arn := range cl.AdminArns {
		if !iamPrincipalRE.MatchString(arn) {
			p.add("clusterAdminArns", "%q is not an IAM role or user ARN", arn)
		}
	}
	for _, t := range cl.LogTypes {
		if !slices.Contains(logTypes, t) {
			p.add("clusterLogTypes", "%q is not a control-plane log type: use %s", t, strings.Join(logTypes, ", "))
		}
	}
}

func (c *Config) validateAlbController(p *problems) {
	a := c.AlbController
	if _, err := components.AlbControllerPolicy(a.ChartVersion); err != nil {
		p.add("albControllerChartVersion", "%v", err)
	}
	if !validChartSource(a.ChartRepository) {
		p.add("albControllerChartRepository", "%q must be an https:// or oci:// chart repository, or a local directory of chart archives", a.ChartRepository)
	}
	if a.Replicas < 1 || a.Replicas > 3 {
		p.add("albControllerReplicas", "%d is out of range: use 1 to 3", a.Replicas)
	}
}

// validateExistingLoadBalancerSubnets: in an existing VPC, the load balancer's subnets must be
// named with their CIDRs (the NetworkPolicies admit exactly those to Envoy) and must not overlap
// the node subnets, where every pod has its address: a pod there could skip the load balancer,
// forge its headers and reach Envoy's admin port.
func (c *Config) validateExistingLoadBalancerSubnets(p *problems) {
	n := c.Network
	cidrs := func(key string, list []string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range list {
			pfx, err := netip.ParsePrefix(s)
			if err != nil || pfx.Masked() != pfx {
				p.add(key, "%q is not a CIDR such as 10.1.64.0/24 (host bits must be zero)", s)
				continue
			}
			if vpc, err := netip.ParsePrefix(n.ExistingVpcCidr); err == nil && !(vpc.Contains(pfx.Addr()) && pfx.Bits() >= vpc.Bits()) {
				p.add(key, "%s is not inside existingVpcCidr %s", s, n.ExistingVpcCidr)
			}
			out = append(out, pfx)
		}
		return out
	}
	cidrs("existingNodeSubnetCidrs", n.ExistingNodeSubnetCidrs)
	cidrs("existingLoadBalancerSubnetCidrs", n.ExistingLoadBalancerSubnetCidrs)
	if len(n.ExistingNodeSubnetCidrs) == 0 {
		p.add("existingNodeSubnetCidrs", "is required with existingVpcId: the CIDRs of existingPrivateSubnetIds, which no load balancer subnet may overlap")
	}
	if len(n.ExistingLoadBalancerSubnetCidrs) != len(n.ExistingLoadBalancerSubnetIDs) {
		p.add("existingLoadBalancerSubnetCidrs", "lists %d CIDRs for %d existingLoadBalancerSubnetIds: give each load balancer subnet's CIDR, in the same order", len(n.ExistingLoadBalancerSubnetCidrs), len(n.ExistingLoadBalancerSubnetIDs))
	}
	if lb, node, overlap := components.OverlappingCidrs(n.ExistingLoadBalancerSubnetCidrs, n.ExistingNodeSubnetCidrs); overlap {
		p.add("existingLoadBalancerSubnetCidrs", "%s overlaps node subnet %s (existingNodeSubnetCidrs): pods there could reach Envoy without the load balancer; give the load balancer subnets of its own (public ones for internet-facing, dedicated private ones for internal)", lb, node)
	}
	for _, id := range n.ExistingLoadBalancerSubnetIDs {
		if slices.Contains(n.ExistingPrivateSubnetIDs, id) {
			p.add("existingLoadBalancerSubnetIds", "%s is also in existingPrivateSubnetIds (the node subnets): the load balancer needs subnets without nodes or pods", id)
		}
	}
}
