package stacks

import (
	"regexp"
	"slices"
	"strings"

	"github.com/ztedge/ztedge/components"
)

// wafRuleNameRE is the shape of a managed rule's name (AWS refuses names that do not exist).
var wafRuleNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// validateWafAndDNS checks the web ACL and DNS record settings against the platform and the load
// balancer they attach to: a WAF needs an ALB, both need AWS.
func (c *Config) validateWafAndDNS(p *problems) {
	e := c.Edge
	if !slices.Contains(components.WafModes, e.Waf) {
		p.add("waf", "%q is not allowed: use %s", e.Waf, strings.Join(components.WafModes, ", "))
	} else if e.Waf != components.WafOff {
		switch {
		case c.Platform == PlatformLocal:
			p.add("waf", "is %s but the local platform has no AWS load balancer to attach a web ACL to: set waf off", e.Waf)
		case components.EnvoyTerminatesTLS(e.ClientAuth):
			p.add("waf", "is %s but clientAuth %s puts an NLB (TCP passthrough, no HTTP layer) in front, which AWS WAF cannot attach to: "+
				"set waf off, or use clientAuth alb-passthrough or alb-verify to have an ALB", e.Waf, e.ClientAuth)
		}
		if e.WafRateLimit < components.WafMinRateLimit || e.WafRateLimit > components.WafMaxRateLimit {
			p.add("wafRateLimit", "%d is out of range: AWS WAF rate rules take %d to %d requests per 5 minutes",
				e.WafRateLimit, components.WafMinRateLimit, components.WafMaxRateLimit)
		}
	}
	for _, rule := range e.WafCountRules {
		if !wafRuleNameRE.MatchString(rule) {
			p.add("wafCountRules", "%q is not a rule name of %s (letters, digits, _ and -), e.g. SizeRestrictions_BODY", rule, components.WafCommonRuleSet)
		}
	}
	if !e.CreateDNSRecord {
		return
	}
	switch {
	case c.Platform == PlatformLocal:
		p.add("createDnsRecord", "is true but the local platform has no Route53 zone or AWS load balancer: set it false and point the name at your cluster yourself")
	case c.HostedZoneID == "":
		p.add("createDnsRecord", "is true but hostedZoneId is empty: set hostedZoneId to the Route53 zone that holds %s", c.Hostname)
	}
}
