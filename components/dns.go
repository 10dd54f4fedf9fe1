package components

import (
	"errors"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/route53"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// DNSRecordArgs points the edge hostname at the load balancer the controller created.
type DNSRecordArgs struct {
	ZoneID   string
	Hostname string
	// LoadBalancer is the ALB Ingress or NLB Service; the record is created once its hostname is in
	// the status (the load balancer exists), and so deleted before it.
	LoadBalancer *LoadBalancer
	// LoadBalancerType is application (ALB) or network (NLB): their alias zones differ.
	LoadBalancerType string
}

// DNSRecord is a Route53 alias A record hostname → load balancer.
type DNSRecord struct {
	pulumi.ResourceState

	Fqdn pulumi.StringOutput `pulumi:"fqdn"`
}

// errNoLoadBalancerHostname fails `up` when the controller wrote no DNS name: an alias to "" would
// be refused by Route53 with a less useful message.
var errNoLoadBalancerHostname = errors.New("dns-record: the load balancer has no DNS name in its Ingress/Service status; check the AWS Load Balancer Controller's logs")

// NewDNSRecord creates the alias record. It does not overwrite an existing record of that name
// (someone else's record is not silently taken over): Route53 refuses and `up` names it.
func NewDNSRecord(ctx *pulumi.Context, name string, args *DNSRecordArgs, opts ...pulumi.ResourceOption) (*DNSRecord, error) {
	if args.ZoneID == "" || args.Hostname == "" || args.LoadBalancer == nil {
		return nil, fmt.Errorf("dns-record: ZoneID, Hostname and LoadBalancer are required")
	}
	if args.LoadBalancerType != "application" && args.LoadBalancerType != "network" {
		return nil, fmt.Errorf("dns-record: load balancer type %q is not application or network", args.LoadBalancerType)
	}
	d := &DNSRecord{}
	child, err := register(ctx, "ztedge:edge:DNSRecord", name, d, opts)
	if err != nil {
		return nil, err
	}
	// The canonical hosted zone of ALBs or NLBs in the stack's region (a static table in the
	// provider, no API call).
	zone := lb.GetHostedZoneIdOutput(ctx, lb.GetHostedZoneIdOutputArgs{LoadBalancerType: pulumi.String(args.LoadBalancerType)}, pulumi.Parent(d))
	target := args.LoadBalancer.Hostname.ApplyT(func(h string) (string, error) {
		if h == "" {
			return "", errNoLoadBalancerHostname
		}
		return h, nil
	}).(pulumi.StringOutput)
	record, err := route53.NewRecord(ctx, name, &route53.RecordArgs{
		ZoneId: pulumi.String(args.ZoneID),
		Name:   pulumi.String(args.Hostname),
		Type:   pulumi.String("A"),
		Aliases: route53.RecordAliasArray{route53.RecordAliasArgs{
			Name:   target,
			ZoneId: zone.Id(),
			// Route53 answers with the healthy load balancer nodes only.
			EvaluateTargetHealth: pulumi.Bool(true),
		}},
		AllowOverwrite: pulumi.Bool(false),
	}, child, pulumi.DependsOn([]pulumi.Resource{args.LoadBalancer}))
	if err != nil {
		return nil, err
	}
	d.Fqdn = record.Fqdn
	return d, ctx.RegisterResourceOutputs(d, pulumi.Map{"fqdn": d.Fqdn})
}
