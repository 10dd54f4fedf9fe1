package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/chartvalues"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/internal/upstream"
)

var stackFiles = []string{"dev", "prod"}

// TestInventory pins what each stack creates on the AWS side.
func TestInventory(t *testing.T) {
	want := map[string]map[string]int{
		"dev": {
			"aws:ec2/vpc:Vpc": 1, "aws:ec2/subnet:Subnet": 4, "aws:ec2/natGateway:NatGateway": 1, "aws:ec2/eip:Eip": 1,
			"aws:ec2/internetGateway:InternetGateway": 1, "aws:ec2/routeTable:RouteTable": 3,
			"aws:ec2/routeTableAssociation:RouteTableAssociation": 4,
		},
		"prod": {
			"aws:ec2/vpc:Vpc": 1, "aws:ec2/subnet:Subnet": 6, "aws:ec2/natGateway:NatGateway": 3, "aws:ec2/eip:Eip": 3,
			"aws:ec2/internetGateway:InternetGateway": 1, "aws:ec2/routeTable:RouteTable": 4,
			"aws:ec2/routeTableAssociation:RouteTableAssociation": 6,
		},
	}
	common := map[string]int{
		"ztedge:network:Network": 1, "ztedge:cluster:Cluster": 1, "ztedge:certificate:Certificate": 1, "ztedge:alb:AlbController": 1,
		"eks:index:Cluster": 1, "eks:index:ManagedNodeGroup": 1, "aws:ec2/launchTemplate:LaunchTemplate": 1,
		"aws:kms/key:Key": 1, "aws:iam/policy:Policy": 1,
		"aws:iam/role:Role": 2, "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 4,
		"aws:acm/certificate:Certificate": 1, "aws:route53/record:Record": 1, "aws:acm/certificateValidation:CertificateValidation": 1,
		// Releases: the load balancer controller, the Emissary CRD chart and Emissary.
		"pulumi:providers:kubernetes": 1, "kubernetes:helm.sh/v3:Release": 3,
	}
	for _, stack := range stackFiles {
		t.Run(stack, func(t *testing.T) {
			g := mustRun(t, stack)
			got := typeCounts(g.all)
			for typ, n := range common {
				want[stack][typ] = n
			}
			if stack == "prod" {
				// waf block and createDnsRecord: a web ACL and the hostname's alias record;
				// monitoring install: kube-prometheus-stack.
				want[stack]["aws:wafv2/webAcl:WebAcl"], want[stack]["aws:route53/record:Record"] = 1, 2
				want[stack]["kubernetes:helm.sh/v3:Release"]++
			}
			for typ, n := range want[stack] {
				if got[typ] != n {
					t.Errorf("%s: %d registered, want %d", typ, got[typ], n)
				}
			}
			// The remote eks:index:Cluster arrives once; nothing of pulumi-eks' default node group.
			if c := g.one("eks:index:Cluster"); !c.Remote {
				t.Errorf("eks:index:Cluster should be a remote component")
			}
		})
	}
}

func TestSubnetTags(t *testing.T) {
	for _, stack := range stackFiles {
		t.Run(stack, func(t *testing.T) {
			g := mustRun(t, stack)
			clusterTag := "kubernetes.io/cluster/ztedge-" + stack
			publics, privates := 0, 0
			for _, s := range g.ofType("aws:ec2/subnet:Subnet") {
				tags, _ := input(s, "tags").(map[string]any)
				if tags[clusterTag] != "shared" {
					t.Errorf("%s: %s = %v, want shared", s.Name, clusterTag, tags[clusterTag])
				}
				_, elb := tags["kubernetes.io/role/elb"]
				_, internal := tags["kubernetes.io/role/internal-elb"]
				// Node subnets carry no load balancer role (the stack files' load balancers are
				// internet-facing: they go to the public subnets).
				switch {
				case elb && !internal && tags["kubernetes.io/role/elb"] == "1":
					publics++
					if input(s, "mapPublicIpOnLaunch") != false {
						t.Errorf("%s: public subnet must not give instances public IPs by default", s.Name)
					}
				case !internal && !elb && strings.Contains(s.Name, "-private-"):
					privates++
				default:
					t.Errorf("%s: tags %v: want the elb role on public subnets and no role on node subnets", s.Name, tags)
				}
			}
			if publics != privates || publics < 2 {
				t.Errorf("%d public and %d private subnets; want equal and ≥2", publics, privates)
			}
			// Every AZ has one of each.
			azs := map[string]int{}
			for _, s := range g.ofType("aws:ec2/subnet:Subnet") {
				azs[str(input(s, "availabilityZone"))]++
			}
			for az, n := range azs {
				if n != 2 {
					t.Errorf("AZ %s has %d subnets, want 2", az, n)
				}
			}
		})
	}
}

func TestIrsaTrustPolicy(t *testing.T) {
	for _, stack := range stackFiles {
		t.Run(stack, func(t *testing.T) {
			g := mustRun(t, stack)
			role := g.one("aws:iam/role:Role", "alb-controller")
			issuer := "oidc.eks.us-east-1.amazonaws.com/id/" + mockengine.MockOIDCID
			want := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
				"Principal":{"Federated":"arn:aws:iam::%s:oidc-provider/%s"},
				"Action":"sts:AssumeRoleWithWebIdentity",
				"Condition":{"StringEquals":{
					"%s:sub":"system:serviceaccount:kube-system:aws-load-balancer-controller",
					"%s:aud":"sts.amazonaws.com"}}}]}`, mockengine.MockAccountID, issuer, issuer, issuer)
			jsonEqual(t, "IRSA trust policy", str(input(role, "assumeRolePolicy")), want)
			// The role is attached to exactly the controller policy.
			policy := g.one("aws:iam/policy:Policy", "alb-controller")
			att := g.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "alb-controller")
			if str(input(att, "policyArn")) != str(policy.Outputs.Mappable()["arn"]) || str(input(att, "role")) != str(role.Outputs.Mappable()["name"]) {
				t.Errorf("attachment %v does not bind the controller policy to the controller role", att.Inputs.Mappable())
			}
		})
	}
}

func TestAlbControllerPolicyIsTheEmbeddedFile(t *testing.T) {
	file, err := os.ReadFile(filepath.Join(repoRoot(t), "components", "assets", "aws-load-balancer-controller-iam-policy-v3.5.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	g := mustRun(t, "dev")
	got := str(input(g.one("aws:iam/policy:Policy", "alb-controller"), "policy"))
	if got != string(file) {
		t.Errorf("the IAM policy sent is not byte-identical to the embedded file")
	}
	jsonEqual(t, "policy", got, string(file)) // and it is JSON
}

// The embedded policy is the one released with the controller the chart runs: the file is pinned
// in components/assets/SOURCE.md to kubernetes-sigs/aws-load-balancer-controller's
// docs/install/iam_policy.json at the app version's tag.
func TestAlbControllerPolicyIsUpstream(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "components", "assets")
	if err := upstream.Verify(dir); err != nil {
		t.Fatal(err)
	}
	for chart, app := range map[string]string{"3.5.0": "v3.5.0"} {
		pin, err := upstream.Pinned(dir, "aws-load-balancer-controller-iam-policy-"+app+".json")
		if err != nil {
			t.Fatal(err)
		}
		if pin.Repo != "kubernetes-sigs/aws-load-balancer-controller" || pin.Tag != app || pin.Path != "docs/install/iam_policy.json" {
			t.Errorf("chart %s: the policy is pinned to %s %s:%s, want the controller's docs/install/iam_policy.json at %s", chart, pin.Repo, pin.Tag, pin.Path, app)
		}
		if _, err := components.AlbControllerPolicy(chart); err != nil {
			t.Errorf("chart %s: %v", chart, err)
		}
	}
}

func TestAlbControllerRelease(t *testing.T) {
	defaults, err := chartvalues.LoadDefaults(filepath.Join(repoRoot(t), "tests/testdata/charts/aws-load-balancer-controller-3.5.0/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stack := range stackFiles {
		t.Run(stack, func(t *testing.T) {
			g := mustRun(t, stack)
			rel := g.one("kubernetes:helm.sh/v3:Release", "alb-controller")
			role := g.one("aws:iam/role:Role", "alb-controller")
			vpc := g.one("aws:ec2/vpc:Vpc")
			replicas := map[string]int{"dev": 1, "prod": 2}[stack]
			want := map[string]any{
				"clusterName": "ztedge-" + stack, "region": "us-east-1", "vpcId": vpc.ID, "replicaCount": float64(replicas),
				"serviceAccount": map[string]any{"create": true, "name": "aws-load-balancer-controller",
					"annotations": map[string]any{"eks.amazonaws.com/role-arn": str(role.Outputs.Mappable()["arn"])}},
				"enableServiceMutatorWebhook": false,
				"podDisruptionBudget":         map[string]any{"maxUnavailable": float64(1)},
			}
			if got := input(rel, "values"); !reflect.DeepEqual(got, want) {
				t.Errorf("values:\n got %#v\nwant %#v", got, want)
			}
			for k, v := range map[string]string{"chart": "aws-load-balancer-controller", "version": "3.5.0", "namespace": "kube-system"} {
				if str(input(rel, k)) != v {
					t.Errorf("%s = %v, want %s", k, input(rel, k), v)
				}
			}
			if repo := str(input(rel, "repositoryOpts", "repo")); repo != "https://aws.github.io/eks-charts" {
				t.Errorf("repository %s", repo)
			}
			if unknown := chartvalues.UnknownKeys(defaults, input(rel, "values").(map[string]any)); len(unknown) > 0 {
				t.Errorf("values the chart does not define: %v", unknown)
			}
			// The release waits for the node group (pods need nodes) and for its IAM permissions.
			if !g.dependsOn(rel, g.one("eks:index:ManagedNodeGroup")) || !g.dependsOn(rel, g.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "alb-controller")) {
				t.Errorf("release does not wait for the node group and the role's policy attachment: %v", rel.Dependencies)
			}
			if rel.Provider == "" || !strings.Contains(rel.Provider, "pulumi:providers:kubernetes") {
				t.Errorf("release does not use the cluster's provider: %q", rel.Provider)
			}
		})
	}
}

func TestCertificateValidationWiring(t *testing.T) {
	g := mustRun(t, "dev")
	cert := g.one("aws:acm/certificate:Certificate")
	rec := g.one("aws:route53/record:Record")
	val := g.one("aws:acm/certificateValidation:CertificateValidation")
	if input(cert, "domainName") != "edge.dev.example.com" || input(cert, "validationMethod") != "DNS" {
		t.Errorf("certificate inputs %v", cert.Inputs.Mappable())
	}
	dvo := cert.Outputs.Mappable()["domainValidationOptions"].([]any)[0].(map[string]any)
	if input(rec, "name") != dvo["resourceRecordName"] || input(rec, "type") != dvo["resourceRecordType"] ||
		!reflect.DeepEqual(input(rec, "records"), []any{dvo["resourceRecordValue"]}) || input(rec, "zoneId") != "Z0123456789EXAMPLEDEV" {
		t.Errorf("validation record %v does not carry ACM's record %v", rec.Inputs.Mappable(), dvo)
	}
	if input(val, "certificateArn") != cert.Outputs.Mappable()["arn"] {
		t.Errorf("validation is for %v, not the certificate", input(val, "certificateArn"))
	}
	if !reflect.DeepEqual(input(val, "validationRecordFqdns"), []any{rec.Outputs.Mappable()["fqdn"]}) {
		t.Errorf("validation waits for %v, not the record", input(val, "validationRecordFqdns"))
	}
	if !g.dependsOn(val, rec) || !g.dependsOn(rec, cert) {
		t.Errorf("validation → record → certificate ordering missing")
	}

	// With an existing certificate nothing is created.
	arn := "arn:aws:acm:us-east-1:123456789012:certificate/0f8fad5b-d9cb-469f-a165-70867728950e"
	g2, err := run(t, "dev", stackConfig(t, "dev", map[string]string{"ztedge:certificateArn": arn, "ztedge:hostedZoneId": ""}))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"aws:acm/certificate:Certificate", "aws:route53/record:Record", "aws:acm/certificateValidation:CertificateValidation"} {
		if n := len(g2.ofType(typ)); n != 0 {
			t.Errorf("with certificateArn set, %d %s were created", n, typ)
		}
	}
}

// TestAwsWorkDoesNotWaitForTheCluster keeps the graph parallel: ACM and the cluster-independent IAM
// resources must not depend on the EKS cluster, or `pulumi up` serialises 15 minutes of work.
func TestAwsWorkDoesNotWaitForTheCluster(t *testing.T) {
	for _, stack := range stackFiles {
		t.Run(stack, func(t *testing.T) {
			g := mustRun(t, stack)
			cluster := g.one("eks:index:Cluster")
			independent := append(g.ofType("aws:acm/certificate:Certificate"), g.ofType("aws:route53/record:Record")...)
			independent = append(independent, g.ofType("aws:acm/certificateValidation:CertificateValidation")...)
			independent = append(independent, g.one("aws:iam/policy:Policy", "alb-controller"), g.one("aws:kms/key:Key"), g.one("aws:iam/role:Role", "ztedge-"+stack+"-node"))
			independent = append(independent, g.ofType(typeWebACL)...)
			for _, r := range independent {
				if r.Type == typeRecord && r.Name == "edge" {
					continue // the hostname's alias of the load balancer: it needs the cluster's controller
				}
				if g.dependsOn(r, cluster) {
					t.Errorf("%s %s depends on the cluster", r.Type, r.Name)
				}
			}
			// …while what needs the cluster does wait for it.
			if !g.dependsOn(g.one("aws:iam/role:Role", "alb-controller"), cluster) {
				t.Errorf("the IRSA role must wait for the cluster's OIDC provider")
			}
		})
	}
}

func TestClusterHardening(t *testing.T) {
	for _, stack := range stackFiles {
		t.Run(stack, func(t *testing.T) {
			g := mustRun(t, stack)
			c := g.one("eks:index:Cluster")
			for k, want := range map[string]any{
				"skipDefaultNodeGroup": true, "authenticationMode": "API", "createOidcProvider": true,
				"endpointPrivateAccess": true, "endpointPublicAccess": true, "version": "1.35",
			} {
				if got := input(c, k); got != want {
					t.Errorf("cluster %s = %v, want %v", k, got, want)
				}
			}
			if str(input(c, "encryptionConfigKeyArn")) != str(g.one("aws:kms/key:Key").Outputs.Mappable()["arn"]) {
				t.Errorf("Secrets are not envelope-encrypted with the stack's KMS key")
			}
			if input(g.one("aws:kms/key:Key"), "enableKeyRotation") != true {
				t.Errorf("KMS key rotation is off")
			}
			cidrs := input(c, "publicAccessCidrs").([]any)
			if len(cidrs) == 0 {
				t.Errorf("public endpoint open without CIDRs")
			}
			for _, cidr := range cidrs {
				if cidr == "0.0.0.0/0" {
					t.Errorf("stack file opens the API endpoint to the world")
				}
			}
			lt := g.one("aws:ec2/launchTemplate:LaunchTemplate")
			md := input(lt, "metadataOptions").(map[string]any)
			if md["httpTokens"] != "required" || md["httpPutResponseHopLimit"] != float64(1) {
				t.Errorf("nodes must require IMDSv2 with hop limit 1: %v", md)
			}
			ebs := input(lt, "blockDeviceMappings").([]any)[0].(map[string]any)["ebs"].(map[string]any)
			if ebs["encrypted"] != "true" {
				t.Errorf("root volume not encrypted: %v", ebs)
			}
			// NetworkPolicies are enforced: EKS's aws-node with the network policy agent on.
			if input(c, "useDefaultVpcCni") != true {
				t.Errorf("pulumi-eks' self-managed CNI cannot enforce NetworkPolicies")
			}
			addon := g.one("aws:eks/addon:Addon")
			if input(addon, "addonName") != "vpc-cni" || input(addon, "configurationValues") != `{"enableNetworkPolicy":"true"}` {
				t.Errorf("vpc-cni add-on does not enable network policies: %v", addon.Inputs.Mappable())
			}
			ng := g.one("eks:index:ManagedNodeGroup")
			if input(ng, "amiType") != "AL2023_x86_64_STANDARD" {
				t.Errorf("node AMI %v", input(ng, "amiType"))
			}
			if !reflectSubnets(g, ng) {
				t.Errorf("node group is not in the private subnets")
			}
		})
	}
}

// reflectSubnets checks the node group's subnets are exactly the private ones.
func reflectSubnets(g *graph, ng *mockengine.Resource) bool {
	var private []any
	for _, s := range g.ofType("aws:ec2/subnet:Subnet") {
		if strings.Contains(s.Name, "-private-") {
			private = append(private, s.ID)
		}
	}
	got, _ := input(ng, "subnetIds").([]any)
	sortAny(got)
	sortAny(private)
	return len(private) > 0 && reflect.DeepEqual(got, private)
}

func sortAny(v []any) { sort.Slice(v, func(i, j int) bool { return str(v[i]) < str(v[j]) }) }
