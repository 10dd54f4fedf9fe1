package components

import (
	"fmt"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/wafv2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// WAF modes (ztedge:waf). The web ACL is attached to the ALB by the AWS Load Balancer Controller
// (annotation wafv2-acl-arn); an NLB has no HTTP layer, so nlb-passthrough cannot have one.
const (
	WafOff   = "off"
	WafCount = "count" // every rule only counts: roll out and tune before blocking
	WafBlock = "block"
)

// WafModes are the allowed values of ztedge:waf.
var WafModes = []string{WafOff, WafCount, WafBlock}

// WafNone is the annotation value that makes the controller detach any web ACL. An absent
// annotation leaves the ALB's WAF setting as it is (controller docs, annotations.md
// "wafv2-acl-arn"), which would keep a deleted ACL's association after `waf: off`.
const WafNone = "none"

// The AWS managed rule groups of the web ACL, in evaluation order after the rate rule: drop
// known-bad sources first (cheap), then known exploit payloads, then the broad core rule set.
var WafManagedRuleGroups = []string{
	"AWSManagedRulesAmazonIpReputationList",
	"AWSManagedRulesKnownBadInputsRuleSet",
	"AWSManagedRulesCommonRuleSet",
}

// WafCommonRuleSet is the group whose rules wafCountRules may switch to count.
const WafCommonRuleSet = "AWSManagedRulesCommonRuleSet"

// Rate limit bounds of a rate-based rule (requests per client IP per evaluation window).
const (
	WafMinRateLimit = 10
	WafMaxRateLimit = 2_000_000_000
)

// WebACLArgs configures the edge's web ACL.
type WebACLArgs struct {
	Mode string // WafCount or WafBlock
	// RateLimit is the number of requests one client IP may send in 5 minutes.
	RateLimit int
	// CountRules are rules of AWSManagedRulesCommonRuleSet that only count (false positives, e.g.
	// SizeRestrictions_BODY for request bodies over 8 KB).
	CountRules []string
	Tags       map[string]string
}

// WebACL is a regional AWS WAFv2 web ACL for the ALB.
type WebACL struct {
	pulumi.ResourceState

	Arn pulumi.StringOutput `pulumi:"arn"`
}

func (a *WebACLArgs) validate() error {
	if a.Mode != WafCount && a.Mode != WafBlock {
		return fmt.Errorf("web-acl: mode %q is not %s or %s", a.Mode, WafCount, WafBlock)
	}
	if a.RateLimit < WafMinRateLimit || a.RateLimit > WafMaxRateLimit {
		return fmt.Errorf("web-acl: rate limit %d is outside %d–%d", a.RateLimit, WafMinRateLimit, WafMaxRateLimit)
	}
	return nil
}

// NewWebACL creates the web ACL: allow by default, then a per-IP rate rule and the managed groups.
func NewWebACL(ctx *pulumi.Context, name string, args *WebACLArgs, opts ...pulumi.ResourceOption) (*WebACL, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	w := &WebACL{}
	child, err := register(ctx, "ztedge:edge:WebACL", name, w, opts)
	if err != nil {
		return nil, err
	}
	acl, err := wafv2.NewWebAcl(ctx, name, &wafv2.WebAclArgs{
		Description:      pulumi.String("ztedge edge: rate limit per client IP and AWS managed rule groups"),
		Scope:            pulumi.String("REGIONAL"), // an ALB's web ACL is regional
		DefaultAction:    wafv2.WebAclDefaultActionArgs{Allow: &wafv2.WebAclDefaultActionAllowArgs{}},
		Rules:            webACLRules(name, args),
		VisibilityConfig: wafVisibility(name),
		Tags:             mergeTags(args.Tags, map[string]string{"ztedge:purpose": "edge-waf"}),
	}, child)
	if err != nil {
		return nil, err
	}
	w.Arn = acl.Arn
	return w, ctx.RegisterResourceOutputs(w, pulumi.Map{"arn": w.Arn})
}

// webACLRules: the rate rule first (a flood is cut before the managed groups inspect it), then the
// managed groups. In count mode every rule counts instead of blocking.
func webACLRules(name string, args *WebACLArgs) wafv2.WebAclRuleArray {
	rateAction := &wafv2.WebAclRuleActionArgs{Block: &wafv2.WebAclRuleActionBlockArgs{}}
	groupAction := &wafv2.WebAclRuleOverrideActionArgs{None: &wafv2.WebAclRuleOverrideActionNoneArgs{}}
	if args.Mode == WafCount {
		rateAction = &wafv2.WebAclRuleActionArgs{Count: &wafv2.WebAclRuleActionCountArgs{}}
		groupAction = &wafv2.WebAclRuleOverrideActionArgs{Count: &wafv2.WebAclRuleOverrideActionCountArgs{}}
	}
	rules := wafv2.WebAclRuleArray{wafv2.WebAclRuleArgs{
		Name:     pulumi.String("rate-per-client-ip"),
		Priority: pulumi.Int(0),
		Action:   rateAction,
		Statement: wafv2.WebAclRuleStatementArgs{RateBasedStatement: &wafv2.WebAclRuleStatementRateBasedStatementArgs{
			// The ALB terminates the client's connection, so the source address is the client's.
			AggregateKeyType:    pulumi.String("IP"),
			Limit:               pulumi.Int(args.RateLimit),
			EvaluationWindowSec: pulumi.Int(300),
		}},
		VisibilityConfig: wafRuleVisibility(name + "-rate-per-client-ip"),
	}}
	for i, group := range WafManagedRuleGroups {
		statement := &wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs{
			VendorName: pulumi.String("AWS"),
			Name:       pulumi.String(group),
		}
		if group == WafCommonRuleSet && len(args.CountRules) > 0 {
			var overrides wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArray
			for _, rule := range slices.Sorted(slices.Values(args.CountRules)) {
				overrides = append(overrides, wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs{
					Name: pulumi.String(rule),
					ActionToUse: wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseArgs{
						Count: &wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseCountArgs{},
					},
				})
			}
			statement.RuleActionOverrides = overrides
		}
		rules = append(rules, wafv2.WebAclRuleArgs{
			Name:             pulumi.String(group),
			Priority:         pulumi.Int(i + 1),
			OverrideAction:   groupAction,
			Statement:        wafv2.WebAclRuleStatementArgs{ManagedRuleGroupStatement: statement},
			VisibilityConfig: wafRuleVisibility(name + "-" + group),
		})
	}
	return rules
}

// Metrics and sampled requests on, so count mode shows what block mode would stop.
func wafVisibility(metric string) wafv2.WebAclVisibilityConfigArgs {
	return wafv2.WebAclVisibilityConfigArgs{
		CloudwatchMetricsEnabled: pulumi.Bool(true), SampledRequestsEnabled: pulumi.Bool(true), MetricName: pulumi.String(metric),
	}
}

func wafRuleVisibility(metric string) wafv2.WebAclRuleVisibilityConfigArgs {
	return wafv2.WebAclRuleVisibilityConfigArgs{
		CloudwatchMetricsEnabled: pulumi.Bool(true), SampledRequestsEnabled: pulumi.Bool(true), MetricName: pulumi.String(metric),
	}
}
