package tests

import (
	"strings"
	"testing"

	"github.com/ztedge/ztedge/stacks"
)

// existingVpc is a valid existing-VPC network configuration (node subnets 10.1.64.0/18 and
// 10.1.128.0/18, load balancer subnets 10.1.0.0/24 and 10.1.1.0/24), changed by edit.
func existingVpc(edit map[string]string) map[string]string {
	out := map[string]string{
		"ztedge:existingVpcId":                   "vpc-0123456789abcdef0",
		"ztedge:existingVpcCidr":                 "10.1.0.0/16",
		"ztedge:existingPublicSubnetIds":         `["subnet-0123456789abcdef0","subnet-0123456789abcdef1"]`,
		"ztedge:existingPrivateSubnetIds":        `["subnet-0123456789abcdef2","subnet-0123456789abcdef3"]`,
		"ztedge:existingNodeSubnetCidrs":         `["10.1.64.0/18","10.1.128.0/18"]`,
		"ztedge:existingLoadBalancerSubnetIds":   `["subnet-0123456789abcdef0","subnet-0123456789abcdef1"]`,
		"ztedge:existingLoadBalancerSubnetCidrs": `["10.1.0.0/24","10.1.1.0/24"]`,
	}
	for k, v := range edit {
		out[k] = v
	}
	return out
}

// TestConfigErrors: each bad value fails with an error that names the key and says what is allowed.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		edit map[string]string
		want []string // substrings of one problem line
	}{
		{"missing hostname", map[string]string{"ztedge:hostname": ""}, []string{"ztedge:hostname", "is required"}},
		{"bad hostname", map[string]string{"ztedge:hostname": "bad_host!.com"}, []string{"ztedge:hostname", "not a valid DNS name"}},
		{"single-label hostname", map[string]string{"ztedge:hostname": "localhost"}, []string{"ztedge:hostname", "at least two labels"}},
		{"wildcard hostname", map[string]string{"ztedge:hostname": "*.example.com"}, []string{"ztedge:hostname", "wildcard"}},
		{"missing region", map[string]string{"aws:region": ""}, []string{"aws:region", "is required"}},
		{"bad region", map[string]string{"aws:region": "mars-1"}, []string{"aws:region", "not an AWS region"}},
		{"no zone, no certificate", map[string]string{"ztedge:hostedZoneId": ""}, []string{"ztedge:hostedZoneId", "certificateArn"}},
		{"bad zone", map[string]string{"ztedge:hostedZoneId": "example.com"}, []string{"ztedge:hostedZoneId", "not a Route53 hosted zone ID"}},
		{"bad certificate ARN", map[string]string{"ztedge:certificateArn": "arn:aws:iam::123456789012:role/x"}, []string{"ztedge:certificateArn", "not an ACM certificate ARN"}},
		{"certificate in another region", map[string]string{"ztedge:certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0f8fad5b-d9cb-469f-a165-70867728950e"}, []string{"ztedge:certificateArn", "region eu-west-1"}},
		{"unknown Kubernetes version", map[string]string{"ztedge:kubernetesVersion": "1.19"}, []string{"ztedge:kubernetesVersion", "not supported", "1.35"}},
		{"Kubernetes version in extended support", map[string]string{"ztedge:kubernetesVersion": "1.33"}, []string{"ztedge:kubernetesVersion", "not supported", "1.35, 1.36"}},
		{"Kubernetes 1.34, out of standard support on 2026-12-02", map[string]string{"ztedge:kubernetesVersion": "1.34"}, []string{"ztedge:kubernetesVersion", "not supported", "1.35, 1.36"}},
		{"min > max", map[string]string{"ztedge:nodeMinSize": "5", "ztedge:nodeMaxSize": "3", "ztedge:nodeDesiredSize": "4"}, []string{"ztedge:nodeMinSize", "greater than nodeMaxSize"}},
		{"desired outside", map[string]string{"ztedge:nodeDesiredSize": "9"}, []string{"ztedge:nodeDesiredSize", "between"}},
		{"zero nodes", map[string]string{"ztedge:nodeMinSize": "0", "ztedge:nodeDesiredSize": "0"}, []string{"ztedge:nodeMinSize", "at least 1"}},
		{"not a number", map[string]string{"ztedge:nodeMaxSize": "many"}, []string{"ztedge:nodeMaxSize", "not a whole number"}},
		{"not a boolean", map[string]string{"ztedge:endpointPublicAccess": "yes please"}, []string{"ztedge:endpointPublicAccess", "not true or false"}},
		{"CIDR does not parse", map[string]string{"ztedge:vpcCidr": "10.0.0.0/33"}, []string{"ztedge:vpcCidr", "not a CIDR"}},
		{"CIDR with host bits", map[string]string{"ztedge:vpcCidr": "10.0.0.1/16"}, []string{"ztedge:vpcCidr", "zero host bits"}},
		{"CIDR too small", map[string]string{"ztedge:vpcCidr": "10.0.0.0/24"}, []string{"ztedge:vpcCidr", "/16"}},
		{"public CIDR", map[string]string{"ztedge:vpcCidr": "8.8.0.0/16"}, []string{"ztedge:vpcCidr", "RFC 1918"}},
		{"one AZ", map[string]string{"ztedge:availabilityZones": "1"}, []string{"ztedge:availabilityZones", "2 or 3"}},
		{"internal load balancer in a small VPC", map[string]string{"ztedge:loadBalancerScheme": "internal", "ztedge:vpcCidr": "10.0.0.0/22"}, []string{"ztedge:vpcCidr", "loadBalancerScheme internal", "/21 or larger"}},
		{"unknown WAF mode", map[string]string{"ztedge:waf": "on"}, []string{"ztedge:waf", `"on" is not allowed`, "off, count, block"}},
		{"WAF behind an NLB", map[string]string{"ztedge:waf": "block", "ztedge:clientAuth": "nlb-passthrough"}, []string{"ztedge:waf", "nlb-passthrough", "no HTTP layer", "alb-passthrough or alb-verify"}},
		{"WAF rate limit too low", map[string]string{"ztedge:waf": "count", "ztedge:wafRateLimit": "5"}, []string{"ztedge:wafRateLimit", "5 is out of range", "10 to 2000000000"}},
		{"WAF count rule with a bad name", map[string]string{"ztedge:wafCountRules": `["SizeRestrictions BODY"]`}, []string{"ztedge:wafCountRules", "not a rule name of AWSManagedRulesCommonRuleSet"}},
		{"DNS record without a hosted zone", map[string]string{"ztedge:createDnsRecord": "true", "ztedge:hostedZoneId": "", "ztedge:certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0f8fad5b-d9cb-469f-a165-70867728950e"}, []string{"ztedge:createDnsRecord", "hostedZoneId is empty"}},
		{"load balancer subnets overlap the nodes'", existingVpc(map[string]string{"ztedge:existingLoadBalancerSubnetCidrs": `["10.1.0.0/24","10.1.64.0/20"]`}), []string{"ztedge:existingLoadBalancerSubnetCidrs", "10.1.64.0/20 overlaps node subnet 10.1.64.0/18", "existingNodeSubnetCidrs"}},
		{"load balancer subnet is a node subnet", existingVpc(map[string]string{"ztedge:existingLoadBalancerSubnetIds": `["subnet-0123456789abcdef0","subnet-0123456789abcdef2"]`}), []string{"ztedge:existingLoadBalancerSubnetIds", "subnet-0123456789abcdef2 is also in existingPrivateSubnetIds"}},
		{"load balancer subnets without CIDRs", existingVpc(map[string]string{"ztedge:existingLoadBalancerSubnetCidrs": ""}), []string{"ztedge:existingLoadBalancerSubnetCidrs", "lists 0 CIDRs for 2 existingLoadBalancerSubnetIds"}},
		{"no node subnet CIDRs", existingVpc(map[string]string{"ztedge:existingNodeSubnetCidrs": ""}), []string{"ztedge:existingNodeSubnetCidrs", "is required with existingVpcId"}},
		{"load balancer CIDR outside the VPC", existingVpc(map[string]string{"ztedge:existingLoadBalancerSubnetCidrs": `["10.1.0.0/24","10.9.1.0/24"]`}), []string{"ztedge:existingLoadBalancerSubnetCidrs", "10.9.1.0/24 is not inside existingVpcCidr"}},
		{"vulnerable Redis", map[string]string{"ztedge:redisImage": "redis:7.4.5-alpine"}, []string{"ztedge:redisImage", "7.4.5 has the 2025 Lua script CVEs", "7.4.6"}},
		{"moving Redis tag", map[string]string{"ztedge:redisImage": "redis:7.4-alpine"}, []string{"ztedge:redisImage", "not an exact Redis version"}},
		{"old Redis line", map[string]string{"ztedge:redisImage": "redis:7.0.15"}, []string{"ztedge:redisImage", "not a supported line"}},
		{"bad NAT mode", map[string]string{"ztedge:natGateways": "none"}, []string{"ztedge:natGateways", "single or perAz"}},
		{"existing VPC without subnets", map[string]string{"ztedge:existingVpcId": "vpc-0123456789abcdef0", "ztedge:existingVpcCidr": "10.1.0.0/16"}, []string{"ztedge:existingPublicSubnetIds", "at least 2 subnets"}},
		{"existing VPC without CIDR", map[string]string{"ztedge:existingVpcId": "vpc-0123456789abcdef0", "ztedge:existingPublicSubnetIds": `["subnet-0123456789abcdef0","subnet-0123456789abcdef1"]`, "ztedge:existingPrivateSubnetIds": `["subnet-0123456789abcdef2","subnet-0123456789abcdef3"]`}, []string{"ztedge:existingVpcCidr", "required with existingVpcId"}},
		{"bad subnet ID", map[string]string{"ztedge:existingVpcId": "vpc-0123456789abcdef0", "ztedge:existingVpcCidr": "10.1.0.0/16", "ztedge:existingPublicSubnetIds": `["subnet-0123456789abcdef0","sn-1"]`, "ztedge:existingPrivateSubnetIds": `["subnet-0123456789abcdef2","subnet-0123456789abcdef3"]`}, []string{"ztedge:existingPublicSubnetIds", `"sn-1" is not a subnet ID`}},
		{"subnets without VPC", map[string]string{"ztedge:existingPrivateSubnetIds": `["subnet-0123456789abcdef2"]`}, []string{"ztedge:existingVpcId", "required when existing subnets"}},
		{"list that is not JSON", map[string]string{"ztedge:nodeInstanceTypes": "t3.large"}, []string{"ztedge:nodeInstanceTypes", "cannot be read as a JSON array"}},
		{"mixed architectures", map[string]string{"ztedge:nodeInstanceTypes": `["m7g.large","m6i.large"]`}, []string{"ztedge:nodeInstanceTypes", "one architecture"}},
		{"bad instance type", map[string]string{"ztedge:nodeInstanceTypes": `["large"]`}, []string{"ztedge:nodeInstanceTypes", "not an EC2 instance type"}},
		{"public endpoint without CIDRs", map[string]string{"ztedge:endpointPublicAccessCidrs": "[]"}, []string{"ztedge:endpointPublicAccessCidrs", "required when endpointPublicAccess is true"}},
		{"bad endpoint CIDR", map[string]string{"ztedge:endpointPublicAccessCidrs": `["203.0.113.7"]`}, []string{"ztedge:endpointPublicAccessCidrs", "not a CIDR"}},
		{"bad admin ARN", map[string]string{"ztedge:clusterAdminArns": `["admin"]`}, []string{"ztedge:clusterAdminArns", "not an IAM role or user ARN"}},
		{"bad log type", map[string]string{"ztedge:clusterLogTypes": `["everything"]`}, []string{"ztedge:clusterLogTypes", "not a control-plane log type"}},
		{"unsupported controller chart", map[string]string{"ztedge:albControllerChartVersion": "1.4.0"}, []string{"ztedge:albControllerChartVersion", "no embedded IAM policy", "3.5.0"}},
		{"bad tags", map[string]string{"ztedge:tags": `{"aws:owner":"me"}`}, []string{"ztedge:tags", "no aws: prefix"}},
		{"unknown field in an object", map[string]string{"ztedge:backends": `[{"name":"a","namespace":"a","port":443,"prefix":"/a/","prefx":"/b/"}]`}, []string{"ztedge:backends", "unknown field"}},
		{"license key in plain text", map[string]string{"ztedge:edgeStackLicenseKey": "eyJ"}, []string{"ztedge:edgeStackLicenseKey", "--secret"}},
		{"bad edition", map[string]string{"ztedge:edition": "nginx"}, []string{"ztedge:edition", "emissary or edge-stack"}},
		{"edge stack without license", map[string]string{"ztedge:edition": "edge-stack", "ztedge:edgeStackChartVersion": "8.12.2", "ztedge:edgeStackCrdsUrl": "https://app.getambassador.io/yaml/edge-stack/3.12.2/aes-crds.yaml"}, []string{"ztedge:edgeStackLicenseKey", "required with edition edge-stack"}},
		{"TLS 1.2 policy", map[string]string{"ztedge:sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"}, []string{"ztedge:sslPolicy", "not a TLS-1.3-only policy"}},
		{"bad client auth", map[string]string{"ztedge:clientAuth": "maybe"}, []string{"ztedge:clientAuth", "alb-passthrough"}},
		{"token TTL too long", map[string]string{"ztedge:tokenTtl": "1h"}, []string{"ztedge:tokenTtl", "5m to 15m"}},
		{"unpinned image", map[string]string{"ztedge:authImage": "ghcr.io/ztedge/jwt-auth:latest"}, []string{"ztedge:authImage", "pinned"}},
		{"half OIDC", map[string]string{"ztedge:oidcIssuer": "https://issuer.example.com"}, []string{"ztedge:oidcIssuer", "go together"}},
		{"cert outlives CA", map[string]string{"ztedge:certValidityHours": "90000"}, []string{"ztedge:certValidityHours", "cannot outlive its CA"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stacks.Load(stackConfig(t, "dev", tc.edit), "dev")
			if err == nil {
				t.Fatalf("accepted %v", tc.edit)
			}
			var found bool
			for _, line := range strings.Split(err.Error(), "\n") {
				ok := true
				for _, w := range tc.want {
					ok = ok && strings.Contains(line, w)
				}
				found = found || ok
			}
			if !found {
				t.Errorf("no problem line contains all of %q:\n%v", tc.want, err)
			}
		})
	}
}

// TestBadConfigRegistersNothing: the program fails before creating anything.
func TestBadConfigRegistersNothing(t *testing.T) {
	g, err := run(t, "dev", stackConfig(t, "dev", map[string]string{"ztedge:nodeMinSize": "9", "ztedge:hostname": "nope"}))
	if err == nil || !strings.Contains(err.Error(), "ztedge:hostname") || !strings.Contains(err.Error(), "ztedge:nodeMinSize") {
		t.Fatalf("want both problems reported at once, got %v", err)
	}
	if len(g.all) != 0 {
		t.Errorf("%d resources registered before the configuration error", len(g.all))
	}
}

// TestAllProblemsAtOnce: a user sees every problem in one run, not one per `pulumi up`.
func TestAllProblemsAtOnce(t *testing.T) {
	_, err := stacks.Load(stackConfig(t, "dev", map[string]string{"ztedge:vpcCidr": "x", "ztedge:natGateways": "x", "ztedge:kubernetesVersion": "x"}), "dev")
	var cfgErr *stacks.ConfigError
	if !errorsAs(err, &cfgErr) || len(cfgErr.Problems) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
}
