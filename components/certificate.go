package components

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/acm"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/route53"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// CertificateArgs asks for an ACM certificate for Hostname validated through HostedZoneID,
// or adopts ExistingArn.
type CertificateArgs struct {
	Hostname     string
	HostedZoneID string
	ExistingArn  string
	Tags         map[string]string
}

// Certificate is the load balancer's public certificate.
type Certificate struct {
	pulumi.ResourceState

	// Arn is the *validated* certificate: it resolves only after ACM has issued it, so a listener
	// that uses it never points at a pending certificate.
	Arn pulumi.StringOutput `pulumi:"arn"`
	// Inventory is its entry of the `certificates` output (none for an existing certificate,
	// which ztedge does not manage).
	Inventory []pulumi.Output
}

func (a *CertificateArgs) validate() error {
	if a.Hostname == "" {
		return fmt.Errorf("certificate: Hostname is required")
	}
	if a.ExistingArn == "" && a.HostedZoneID == "" {
		return fmt.Errorf("certificate: HostedZoneID is required to validate a new certificate (or give ExistingArn)")
	}
	return nil
}

// NewCertificate requests the certificate and its DNS validation. It needs nothing from the
// cluster, so it runs in parallel with it.
func NewCertificate(ctx *pulumi.Context, name string, args *CertificateArgs, opts ...pulumi.ResourceOption) (*Certificate, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	c := &Certificate{}
	child, err := register(ctx, "ztedge:certificate:Certificate", name, c, opts)
	if err != nil {
		return nil, err
	}
	if args.ExistingArn != "" {
		c.Arn = pulumi.String(args.ExistingArn).ToStringOutput()
		return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"arn": c.Arn})
	}

	cert, err := acm.NewCertificate(ctx, name, &acm.CertificateArgs{
		DomainName:       pulumi.String(args.Hostname),
		ValidationMethod: pulumi.String("DNS"),
		KeyAlgorithm:     pulumi.String("EC_prime256v1"), // smaller, faster handshakes; every TLS 1.3 client supports ECDSA
		Tags:             mergeTags(args.Tags, map[string]string{"Name": args.Hostname}),
	}, child)
	if err != nil {
		return nil, err
	}
	// One domain, so exactly one validation record.
	option := cert.DomainValidationOptions.Index(pulumi.Int(0))
	record, err := route53.NewRecord(ctx, name+"-validation", &route53.RecordArgs{
		ZoneId:         pulumi.String(args.HostedZoneID),
		Name:           option.ResourceRecordName().Elem(),
		Type:           option.ResourceRecordType().Elem(),
		Records:        pulumi.StringArray{option.ResourceRecordValue().Elem()},
		Ttl:            pulumi.Int(60),
		AllowOverwrite: pulumi.Bool(true), // ACM reuses the same record when a certificate is replaced
	}, child)
	if err != nil {
		return nil, err
	}
	validation, err := acm.NewCertificateValidation(ctx, name, &acm.CertificateValidationArgs{
		CertificateArn:        cert.Arn,
		ValidationRecordFqdns: pulumi.StringArray{record.Fqdn},
	}, child)
	if err != nil {
		return nil, err
	}
	c.Arn = validation.CertificateArn
	c.Inventory = []pulumi.Output{ACMCertificate(args.Hostname, cert.NotAfter)}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"arn": c.Arn})
}
