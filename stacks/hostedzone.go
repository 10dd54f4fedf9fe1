package stacks

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/route53"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// checkHostedZone reads hostedZoneId (a Route53 read at preview, before anything is created) and
// refuses the two mistakes that otherwise surface late: a hostname outside the zone (ACM's
// validation record and the alias record land in a zone nobody resolves the name from: ACM waits
// 75 minutes and times out) and a private zone for ACM validation (ACM validates through public DNS).
func checkHostedZone(ctx *pulumi.Context, cfg *Config) error {
	if cfg.HostedZoneID == "" || (cfg.CertificateArn != "" && !cfg.Edge.CreateDNSRecord) {
		return nil // the zone is not used
	}
	zone, err := route53.LookupZone(ctx, &route53.LookupZoneArgs{ZoneId: pulumi.StringRef(cfg.HostedZoneID)})
	if err != nil {
		return fmt.Errorf("ztedge:hostedZoneId: reading Route53 zone %s: %w", cfg.HostedZoneID, err)
	}
	return hostedZoneProblem(cfg, zone.Name, zone.PrivateZone != nil && *zone.PrivateZone)
}

// hostedZoneProblem is checkHostedZone's verdict on a zone's name and visibility.
func hostedZoneProblem(cfg *Config, zoneName string, private bool) error {
	zoneName = strings.ToLower(strings.TrimSuffix(zoneName, "."))
	host := strings.ToLower(cfg.Hostname)
	if host != zoneName && !strings.HasSuffix(host, "."+zoneName) {
		return fmt.Errorf("ztedge:hostname: %s is not inside hosted zone %s (%s): set hostedZoneId to the zone that holds it", cfg.Hostname, cfg.HostedZoneID, zoneName)
	}
	if private && cfg.CertificateArn == "" {
		return fmt.Errorf("ztedge:hostedZoneId: %s (%s) is a private zone, and ACM validates a certificate through public DNS: "+
			"use the public zone of %s, or set certificateArn to an issued certificate", cfg.HostedZoneID, zoneName, cfg.Hostname)
	}
	return nil
}
