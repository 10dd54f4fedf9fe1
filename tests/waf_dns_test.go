package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

const (
	typeWebACL = "aws:wafv2/webAcl:WebAcl"
	typeRecord = "aws:route53/record:Record"
)

// withClientAuth adds clientAuth mode to a stack edit; nlb-passthrough also turns the WAF off (a
// stack file may set one, and an NLB cannot have it: TestConfigErrors checks that refusal).
func withClientAuth(mode string, edit map[string]string) map[string]string {
	out := map[string]string{"ztedge:clientAuth": mode}
	if components.EnvoyTerminatesTLS(mode) {
		out["ztedge:waf"] = components.WafOff
	}
	for k, v := range edit {
		out[k] = v
	}
	return out
}

// albModes are the client-auth modes with an ALB in front (a WAF can attach only there).
func albModes() []string {
	return slices.DeleteFunc(slices.Clone(components.ClientAuthModes), components.EnvoyTerminatesTLS)
}

// wafSources are dev and prod (and Edge Stack on dev) in every ALB mode with the WAF in mode waf.
func wafSources(t *testing.T, waf string, edit map[string]string) map[string]stacks.MapSource {
	out := map[string]stacks.MapSource{}
	for _, mode := range albModes() {
		for _, stack := range stackFiles {
			e := map[string]string{"ztedge:clientAuth": mode, "ztedge:waf": waf}
			for k, v := range edit {
				e[k] = v
			}
			out[stack+"/emissary/"+mode] = stackConfig(t, stack, e)
		}
		src := edgeStackConfig(t)
		src.Values["ztedge:clientAuth"], src.Values["ztedge:waf"] = mode, waf
		for k, v := range edit {
			src.Values[k] = v
		}
		out["dev/edge-stack/"+mode] = src
	}
	return out
}

// TestWebACL: with waf count or block, the ALB Ingress names a regional web ACL (rate rule per
// client IP first, then the three AWS managed groups, all counting in count mode) and waits for it,
// so destroy removes the ALB (and its association) before the web ACL.
func TestWebACL(t *testing.T) {
	for _, waf := range []string{components.WafCount, components.WafBlock} {
		for name, src := range wafSources(t, waf, map[string]string{"ztedge:wafRateLimit": "750", "ztedge:wafCountRules": `["SizeRestrictions_BODY","NoUserAgent_HEADER"]`}) {
			t.Run(waf+"/"+name, func(t *testing.T) {
				g, err := run(t, strings.SplitN(name, "/", 2)[0], src)
				if err != nil {
					t.Fatal(err)
				}
				acl, ingress := g.one(typeWebACL), g.one(typeIngress)
				arn := str(acl.Outputs.Mappable()["arn"])
				if got := annotations(ingress)[alb+"wafv2-acl-arn"]; got != arn {
					t.Errorf("Ingress wafv2-acl-arn = %v, want the web ACL %s", got, arn)
				}
				if !g.dependsOn(ingress, acl) {
					t.Error("the Ingress does not wait for the web ACL")
				}
				if input(acl, "scope") != "REGIONAL" || input(acl, "defaultAction", "allow") == nil {
					t.Errorf("web ACL scope %v, default action %v; want REGIONAL, allow", input(acl, "scope"), input(acl, "defaultAction"))
				}
				checkWebACLRules(t, input(acl, "rules").([]any), waf)
			})
		}
	}
}

func checkWebACLRules(t *testing.T, rules []any, waf string) {
	t.Helper()
	want := append([]string{"rate-per-client-ip"}, components.WafManagedRuleGroups...)
	if len(rules) != len(want) {
		t.Fatalf("%d rules, want %v", len(rules), want)
	}
	action := "block"
	if waf == components.WafCount {
		action = "count"
	}
	for i, r := range rules {
		rule := r.(map[string]any)
		if rule["name"] != want[i] || rule["priority"] != float64(i) {
			t.Errorf("rule %d is %v (priority %v), want %s", i, rule["name"], rule["priority"], want[i])
		}
		vis := rule["visibilityConfig"].(map[string]any)
		if vis["cloudwatchMetricsEnabled"] != true || vis["sampledRequestsEnabled"] != true {
			t.Errorf("rule %s: metrics or sampled requests off: %v", want[i], vis)
		}
		statement := rule["statement"].(map[string]any)
		if i == 0 {
			rate := statement["rateBasedStatement"].(map[string]any)
			if rate["limit"] != float64(750) || rate["aggregateKeyType"] != "IP" {
				t.Errorf("rate rule %v; want limit 750 per IP", rate)
			}
			if _, ok := rule["action"].(map[string]any)[action]; !ok {
				t.Errorf("rate rule action %v; want %s", rule["action"], action)
			}
			continue
		}
		group := statement["managedRuleGroupStatement"].(map[string]any)
		if group["vendorName"] != "AWS" || group["name"] != want[i] {
			t.Errorf("rule %s runs %v/%v", want[i], group["vendorName"], group["name"])
		}
		override := "none"
		if waf == components.WafCount {
			override = "count"
		}
		if _, ok := rule["overrideAction"].(map[string]any)[override]; !ok {
			t.Errorf("rule %s override %v; want %s", want[i], rule["overrideAction"], override)
		}
		var counted []string
		overrides, _ := group["ruleActionOverrides"].([]any)
		for _, o := range overrides {
			o := o.(map[string]any)
			if _, ok := o["actionToUse"].(map[string]any)["count"]; ok {
				counted = append(counted, str(o["name"]))
			}
		}
		wantCounted := []string(nil)
		if want[i] == components.WafCommonRuleSet {
			wantCounted = []string{"NoUserAgent_HEADER", "SizeRestrictions_BODY"}
		}
		if !slices.Equal(counted, wantCounted) {
			t.Errorf("rule %s counts %v, want %v", want[i], counted, wantCounted)
		}
	}
}

// TestNoWebACLDetachesAny: with waf off (every stack file as it is, every mode) no web ACL exists,
// and an ALB Ingress says wafv2-acl-arn none: the controller otherwise keeps whatever web ACL the
// ALB had (a deleted one's association, or one attached by hand).
func TestNoWebACLDetachesAny(t *testing.T) {
	forEachEdgeRun(t, func(t *testing.T, r edgeRun) {
		if r.cfg.Edge.Waf != components.WafOff {
			t.Skipf("the stack file sets waf %s (TestWebACL covers it)", r.cfg.Edge.Waf)
		}
		if n := len(r.g.ofType(typeWebACL)); n != 0 {
			t.Errorf("%d web ACLs with waf off", n)
		}
		for _, ing := range r.g.ofType(typeIngress) {
			if got := annotations(ing)[alb+"wafv2-acl-arn"]; got != components.WafNone {
				t.Errorf("Ingress wafv2-acl-arn = %v, want %q", got, components.WafNone)
			}
		}
	})
}

// TestControllerCanAttachTheWebACL: the controller's IAM policy (the upstream file ztedge sends)
// allows the association calls, and ztedge does not turn the controller's WAFv2 support off.
func TestControllerCanAttachTheWebACL(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "components", "assets", "aws-load-balancer-controller-iam-policy-v3.5.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	var policy struct {
		Statement []struct {
			Effect   string
			Action   any
			Resource any
		}
	}
	if err := json.Unmarshal(data, &policy); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, s := range policy.Statement {
		if s.Effect != "Allow" || s.Resource != "*" {
			continue
		}
		actions, _ := s.Action.([]any)
		for _, a := range actions {
			allowed[str(a)] = true
		}
	}
	for _, a := range []string{"wafv2:GetWebACL", "wafv2:GetWebACLForResource", "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL"} {
		if !allowed[a] {
			t.Errorf("the controller's IAM policy does not allow %s on every resource", a)
		}
	}
	g := mustRun(t, "prod")
	for _, rel := range g.ofType("kubernetes:helm.sh/v3:Release") {
		values, _ := input(rel, "values").(map[string]any)
		for _, k := range []string{"enableWafv2", "enableWaf"} {
			if v, ok := values[k]; ok && v != true {
				t.Errorf("release %s sets %s = %v: the controller would ignore the web ACL annotation", rel.Name, k, v)
			}
		}
	}
}

// TestLoadBalancerAnnotationsAreUpstream: every annotation ztedge puts on the ALB Ingress or the
// NLB Service is one the pinned controller documents (a misspelt one is silently ignored).
func TestLoadBalancerAnnotationsAreUpstream(t *testing.T) {
	docs := map[string]string{}
	for prefix, file := range map[string]string{alb: "ingress-annotations.md", nlb: "service-annotations.md"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), "tests", "testdata", "albcontroller-docs-v3.5.0", file))
		if err != nil {
			t.Fatal(err)
		}
		docs[prefix] = string(b)
	}
	// The reference table links each annotation: | [<key>](#anchor) | (one has a stray space); a
	// key may hold placeholders, as listener-attributes.${Protocol}-${Port} does. Each documented
	// key becomes one pattern, compiled once.
	tableKey := regexp.MustCompile(`\|\s*\[([^\]\s]+)\s*\]\(#`)
	placeholder := regexp.MustCompile(`\\\$\\\{[A-Za-z]+\\\}`)
	patterns := map[string][]*regexp.Regexp{}
	for prefix, doc := range docs {
		for _, m := range tableKey.FindAllStringSubmatch(doc, -1) {
			pattern := placeholder.ReplaceAllString(regexp.QuoteMeta(m[1]), `[A-Za-z0-9]+`)
			patterns[prefix] = append(patterns[prefix], regexp.MustCompile(`^`+pattern+`$`))
		}
	}
	documented := func(prefix, key string) bool {
		return slices.ContainsFunc(patterns[prefix], func(p *regexp.Regexp) bool { return p.MatchString(key) })
	}
	check := func(t *testing.T, r *mockengine.Resource) {
		for key := range annotations(r) {
			for prefix := range docs {
				if strings.HasPrefix(key, prefix) && !documented(prefix, key) {
					t.Errorf("%s %s: annotation %s is not in the controller v3.5.0 reference", r.Type, r.Name, key)
				}
			}
		}
	}
	forEachEdgeRun(t, func(t *testing.T, r edgeRun) {
		for _, ing := range r.g.ofType(typeIngress) {
			check(t, ing)
		}
		for _, svc := range loadBalancerServices(r.g) {
			check(t, svc)
		}
	})
}

// TestDNSRecord: with createDnsRecord the edge hostname is an alias A record, in the configured
// zone, of the load balancer the controller made (its status hostname, the ALB or NLB alias zone of
// the region), created after the Ingress/Service and so deleted before it; never overwriting.
func TestDNSRecord(t *testing.T) {
	for _, stack := range stackFiles {
		for _, mode := range components.ClientAuthModes {
			t.Run(stack+"/"+mode, func(t *testing.T) {
				src := stackConfig(t, stack, withClientAuth(mode, map[string]string{"ztedge:createDnsRecord": "true"}))
				cfg, g := loadAndRun(t, stack, src)
				var record *mockengine.Resource
				for _, r := range g.ofType(typeRecord) {
					if input(r, "name") == cfg.Hostname && input(r, "type") == "A" {
						if record != nil {
							t.Fatal("two A records for the hostname")
						}
						record = r
					}
				}
				if record == nil {
					t.Fatalf("no A record for %s", cfg.Hostname)
				}
				var lb *mockengine.Resource
				lbType := "application"
				if components.EnvoyTerminatesTLS(mode) {
					lb, lbType = loadBalancerServices(g)[0], "network"
				} else {
					lb = g.one(typeIngress)
				}
				status := lb.Outputs.Mappable()["status"].(map[string]any)
				lbHost := status["loadBalancer"].(map[string]any)["ingress"].([]any)[0].(map[string]any)["hostname"]
				aliases, _ := input(record, "aliases").([]any)
				if len(aliases) != 1 {
					t.Fatalf("aliases %v", aliases)
				}
				alias := aliases[0].(map[string]any)
				if alias["name"] != lbHost || alias["zoneId"] != mockengine.MockELBZoneID(cfg.Region, lbType) || alias["evaluateTargetHealth"] != true {
					t.Errorf("alias %v; want %v in the %s zone of %s, evaluating target health", alias, lbHost, lbType, cfg.Region)
				}
				if input(record, "zoneId") != cfg.HostedZoneID || input(record, "allowOverwrite") != false {
					t.Errorf("record in zone %v (allowOverwrite %v); want %s, false", input(record, "zoneId"), input(record, "allowOverwrite"), cfg.HostedZoneID)
				}
				if !g.dependsOn(record, lb) {
					t.Error("the record does not wait for the load balancer (and would outlive it on destroy)")
				}
			})
		}
	}
}

// TestNoDNSRecordByDefault: without createDnsRecord the only Route53 records are the ACM
// validation records.
func TestNoDNSRecordByDefault(t *testing.T) {
	for _, stack := range stackFiles {
		g := mustRun(t, stack)
		cfg, err := stacks.Load(stackConfig(t, stack, nil), stack)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Edge.CreateDNSRecord {
			continue
		}
		for _, r := range g.ofType(typeRecord) {
			if input(r, "type") == "A" {
				t.Errorf("%s: an A record %v without createDnsRecord", stack, input(r, "name"))
			}
		}
	}
}

// TestWafAndDNSRefusedOnLocal: a local cluster has no AWS load balancer or zone; asking for either
// fails before anything is created, naming the key.
func TestWafAndDNSRefusedOnLocal(t *testing.T) {
	for key, value := range map[string]string{"ztedge:waf": "block", "ztedge:createDnsRecord": "true"} {
		_, err := stacks.Load(stackConfig(t, "local", map[string]string{key: value}), "local")
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "local platform") {
			t.Errorf("%s=%s on local: %v", key, value, err)
		}
	}
}

// TestHostedZoneMustHoldTheHostname: preview reads hostedZoneId and refuses, before any resource
// is registered, a hostname outside the zone and a private zone for ACM's DNS validation.
func TestHostedZoneMustHoldTheHostname(t *testing.T) {
	const arn = "arn:aws:acm:us-east-1:123456789012:certificate/0f8fad5b-d9cb-469f-a165-70867728950e"
	cases := []struct {
		name string
		zone mockengine.Zone
		edit map[string]string
		want string // "" = accepted
	}{
		{"hostname inside the zone", mockengine.Zone{Name: "example.com."}, nil, ""},
		{"hostname is the zone apex", mockengine.Zone{Name: "edge.dev.example.com."}, nil, ""},
		{"hostname outside the zone", mockengine.Zone{Name: "example.org."}, nil, "ztedge:hostname: edge.dev.example.com is not inside hosted zone"},
		{"suffix that is not a parent domain", mockengine.Zone{Name: "ample.com."}, nil, "is not inside hosted zone"},
		{"private zone for ACM validation", mockengine.Zone{Name: "example.com.", Private: true}, nil, "ztedge:hostedZoneId: Z0123456789EXAMPLEDEV (example.com) is a private zone"},
		{"private zone for the alias record only", mockengine.Zone{Name: "example.com.", Private: true},
			map[string]string{"ztedge:certificateArn": arn, "ztedge:createDnsRecord": "true", "ztedge:loadBalancerScheme": "internal"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := stackConfig(t, "dev", tc.edit)
			eng := mockengine.New("ztedge", "dev", "us-east-1")
			eng.Zones = map[string]mockengine.Zone{"Z0123456789EXAMPLEDEV": tc.zone}
			err := eng.Run(stacks.Program, src.Values, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want %q", err, tc.want)
			}
			for _, r := range eng.Resources() {
				if strings.HasPrefix(r.Type, "aws:") {
					t.Errorf("%s %s registered before the zone was checked", r.Type, r.Name)
				}
			}
		})
	}
}
