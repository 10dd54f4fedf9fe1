package mockengine

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// MockOIDCID is the issuer ID of the mocked cluster's OIDC provider.
const MockOIDCID = "EXAMPLED539D4633E53DE1B71EXAMPLE"

// shortHash gives a stable, name-derived suffix so IDs do not change between runs.
func shortHash(s string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return fmt.Sprintf("%08x", h.Sum32())
}

func (e *Engine) arn(service, kind, name string, global bool) string {
	region := e.Region
	if global {
		region = ""
	}
	return fmt.Sprintf("arn:aws:%s:%s:%s:%s/%s", service, region, MockAccountID, kind, name)
}

// customOutputs returns an ID and the outputs a real provider would report for a custom resource:
// the inputs, plus the computed attributes that this program reads.
func (e *Engine) customOutputs(r *Resource, _ int) (string, resource.PropertyMap) {
	out := r.Inputs.Copy()
	set := func(k string, v any) { out[resource.PropertyKey(k)] = resource.NewPropertyValue(v) }
	has := func(k string) bool { _, ok := out[resource.PropertyKey(k)]; return ok }
	id := r.Name + "-" + shortHash(r.URN)
	name := r.Name
	if v, ok := out["name"]; ok && v.IsString() {
		name = v.StringValue()
	}

	switch r.Type {
	case "aws:ec2/vpc:Vpc":
		id = "vpc-" + shortHash(r.URN)
		set("arn", e.arn("ec2", "vpc", id, false))
	case "aws:ec2/subnet:Subnet":
		id = "subnet-" + shortHash(r.URN)
		set("arn", e.arn("ec2", "subnet", id, false))
	case "aws:ec2/natGateway:NatGateway":
		id = "nat-" + shortHash(r.URN)
	case "aws:ec2/eip:Eip":
		id = "eipalloc-" + shortHash(r.URN)
		set("publicIp", "198.51.100.10")
	case "aws:ec2/internetGateway:InternetGateway":
		id = "igw-" + shortHash(r.URN)
	case "aws:ec2/routeTable:RouteTable":
		id = "rtb-" + shortHash(r.URN)
	case "aws:ec2/securityGroup:SecurityGroup":
		id = "sg-" + shortHash(r.URN)
	case "aws:iam/role:Role":
		set("arn", e.arn("iam", "role", name, true))
		set("name", name)
		id = name
	case "aws:iam/policy:Policy":
		set("arn", e.arn("iam", "policy", name, true))
		set("name", name)
		id = e.arn("iam", "policy", name, true)
	case "aws:kms/key:Key":
		id = "mrk-" + shortHash(r.URN)
		set("arn", e.arn("kms", "key", id, false))
		set("keyId", id)
	case "aws:acm/certificate:Certificate":
		id = e.arn("acm", "certificate", shortHash(r.URN), false)
		set("notAfter", MockIssueTime.Add(395*24*time.Hour).Format(time.RFC3339)) // ACM issues for 395 days
		set("arn", id)
		set("domainValidationOptions", e.validationOptions(r.Inputs))
	case "aws:acm/certificateValidation:CertificateValidation":
		id = fmt.Sprint(out["certificateArn"].V)
	case "aws:route53/record:Record":
		set("fqdn", strings.TrimSuffix(fmt.Sprint(out["name"].V), "."))
	case "aws:s3/bucketV2:BucketV2", "aws:s3/bucket:Bucket":
		bucket := name
		if v, ok := out["bucket"]; ok && v.IsString() {
			bucket = v.StringValue()
		}
		id = bucket
		set("bucket", bucket)
		set("arn", "arn:aws:s3:::"+bucket)
	case "aws:wafv2/webAcl:WebAcl":
		set("arn", e.arn("wafv2", "regional/webacl", name+"/"+shortHash(r.URN), false))
	case "aws:lb/trustStore:TrustStore":
		id = e.arn("elasticloadbalancing", "truststore", name+"/"+shortHash(r.URN), false)
		set("arn", id)
	case "tls:index/privateKey:PrivateKey":
		pem := "-----BEGIN EC PRIVATE KEY-----\nMOCK-" + shortHash(r.URN) + "\n-----END EC PRIVATE KEY-----\n"
		out["privateKeyPem"] = resource.MakeSecret(resource.NewProperty(pem))
		out["privateKeyPemPkcs8"] = resource.MakeSecret(resource.NewProperty(strings.ReplaceAll(pem, "EC PRIVATE", "PRIVATE")))
		set("publicKeyPem", "-----BEGIN PUBLIC KEY-----\nMOCK-"+shortHash(r.URN)+"\n-----END PUBLIC KEY-----\n")
	case "tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert":
		// A decodable PEM body (not a real certificate): consumers hash the DER (jwt-auth's pins).
		set("certPem", "-----BEGIN CERTIFICATE-----\n"+base64.StdEncoding.EncodeToString([]byte("MOCK-"+shortHash(r.URN)))+"\n-----END CERTIFICATE-----\n")
		set("readyForRenewal", false)
		// A fixed issue time keeps renders reproducible.
		hours, _ := out["validityPeriodHours"].V.(float64)
		set("validityEndTime", MockIssueTime.Add(time.Duration(hours)*time.Hour).Format(time.RFC3339))
	case "tls:index/certRequest:CertRequest":
		set("certRequestPem", "-----BEGIN CERTIFICATE REQUEST-----\nMOCK-"+shortHash(r.URN)+"\n-----END CERTIFICATE REQUEST-----\n")
	case "kubernetes:helm.sh/v3:Release":
		releaseName := r.Name
		if has("name") {
			releaseName = name
		}
		set("name", releaseName)
		set("status", map[string]any{
			"name": releaseName, "namespace": fmt.Sprint(out["namespace"].V), "chart": fmt.Sprint(out["chart"].V),
			"version": fmt.Sprint(out["version"].V), "status": "deployed", "revision": 1,
		})
	case "aws:s3/bucketObjectv2:BucketObjectv2":
		set("versionId", "v-"+shortHash(r.URN))
	case "kubernetes:networking.k8s.io/v1:Ingress":
		// What the load balancer controller writes once the ALB exists.
		set("status", map[string]any{"loadBalancer": map[string]any{"ingress": []any{
			map[string]any{"hostname": "k8s-" + shortHash(r.URN) + ".alb." + e.Region + ".elb.amazonaws.com"},
		}}})
	case "kubernetes:core/v1:Service":
		if spec, ok := out["spec"]; ok && spec.IsObject() && spec.ObjectValue()["type"].V == "LoadBalancer" {
			set("status", map[string]any{"loadBalancer": map[string]any{"ingress": []any{
				map[string]any{"hostname": "k8s-" + shortHash(r.URN) + ".elb." + e.Region + ".amazonaws.com"},
			}}})
		}
	case "pulumi:providers:kubernetes", "pulumi:providers:aws":
		id = r.Name + "-provider"
	}
	if !has("arn") && strings.HasPrefix(r.Type, "aws:") {
		set("arn", e.arn(strings.SplitN(strings.TrimPrefix(r.Type, "aws:"), "/", 2)[0], ShortType(r.Type), id, false))
	}
	if strings.HasPrefix(r.Type, "kubernetes:") && has("metadata") && out["metadata"].IsObject() {
		md := out["metadata"].ObjectValue().Copy()
		if _, ok := md["name"]; !ok {
			md["name"] = resource.NewProperty(r.Name + "-" + shortHash(r.URN)[:5])
		}
		md["uid"] = resource.NewProperty(shortHash(r.URN))
		out["metadata"] = resource.NewObjectProperty(md)
	}
	return id, out
}

// validationOptions answers ACM's DNS-validation records: one per distinct domain name.
func (e *Engine) validationOptions(in resource.PropertyMap) []any {
	var domains []string
	if v, ok := in["domainName"]; ok && v.IsString() {
		domains = append(domains, v.StringValue())
	}
	if v, ok := in["subjectAlternativeNames"]; ok && v.IsArray() {
		for _, s := range v.ArrayValue() {
			if s.IsString() {
				domains = append(domains, s.StringValue())
			}
		}
	}
	var opts []any
	for _, d := range domains {
		base := strings.TrimPrefix(d, "*.")
		opts = append(opts, map[string]any{
			"domainName":          d,
			"resourceRecordName":  "_" + shortHash(base) + "." + base + ".",
			"resourceRecordType":  "CNAME",
			"resourceRecordValue": "_" + shortHash("v"+base) + ".acm-validations.aws.",
		})
	}
	return opts
}

// remoteOutputs answers multi-language components. eks:index:Cluster returns resource references
// for the children that the program reads (the OIDC provider, the EKS cluster), registered first.
func (e *Engine) remoteOutputs(r *Resource) (resource.PropertyMap, error) {
	switch r.Type {
	case "eks:index:Cluster":
		return e.eksClusterOutputs(r)
	default:
		return r.Inputs.Copy(), nil
	}
}

func (e *Engine) eksClusterOutputs(r *Resource) (resource.PropertyMap, error) {
	clusterName := r.Name
	if v, ok := r.Inputs["name"]; ok && v.IsString() {
		clusterName = v.StringValue()
	}
	endpoint := fmt.Sprintf("https://%s.gr7.%s.eks.amazonaws.com", MockOIDCID, e.Region)
	issuer := fmt.Sprintf("https://oidc.eks.%s.amazonaws.com/id/%s", e.Region, MockOIDCID)
	version := "1.35"
	if v, ok := r.Inputs["version"]; ok && v.IsString() {
		version = v.StringValue()
	}

	oidcRef, err := e.registerSynthetic("aws:iam/openIdConnectProvider:OpenIdConnectProvider", r.Name+"-oidcProvider",
		resource.NewPropertyMapFromMap(map[string]any{
			"arn":             fmt.Sprintf("arn:aws:iam::%s:oidc-provider/%s", MockAccountID, strings.TrimPrefix(issuer, "https://")),
			"url":             issuer,
			"clientIdLists":   []any{"sts.amazonaws.com"},
			"thumbprintLists": []any{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"},
		}))
	if err != nil {
		return nil, err
	}
	clusterRef, err := e.registerSynthetic("aws:eks/cluster:Cluster", r.Name+"-eksCluster",
		resource.NewPropertyMapFromMap(map[string]any{
			"name": clusterName, "arn": e.arn("eks", "cluster", clusterName, false), "version": version,
			"endpoint":             endpoint,
			"identities":           []any{map[string]any{"oidcs": []any{map[string]any{"issuer": issuer}}}},
			"certificateAuthority": map[string]any{"data": "TU9DSy1DQQ=="},
			"vpcConfig":            map[string]any{"clusterSecurityGroupId": "sg-cluster" + shortHash(r.URN)},
		}))
	if err != nil {
		return nil, err
	}

	kubeconfig := map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": "aws",
		"clusters": []any{map[string]any{"name": "kubernetes", "cluster": map[string]any{
			"server": endpoint, "certificate-authority-data": "TU9DSy1DQQ=="}}},
		"contexts": []any{map[string]any{"name": "aws", "context": map[string]any{"cluster": "kubernetes", "user": "aws"}}},
		"users": []any{map[string]any{"name": "aws", "user": map[string]any{"exec": map[string]any{
			"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
			"args": []any{"eks", "get-token", "--cluster-name", clusterName}}}}},
	}
	kubeconfigJSON, err := json.Marshal(kubeconfig)
	if err != nil {
		return nil, err
	}
	out := resource.NewPropertyMapFromMap(map[string]any{
		"kubeconfig":     kubeconfig,
		"kubeconfigJson": string(kubeconfigJSON),
	})
	out["eksCluster"] = clusterRef
	core := resource.NewPropertyMapFromMap(map[string]any{
		"endpoint": endpoint,
	})
	core["oidcProvider"] = oidcRef
	core["cluster"] = clusterRef
	for _, k := range []resource.PropertyKey{"vpcId", "privateSubnetIds", "publicSubnetIds"} {
		if v, ok := r.Inputs[k]; ok {
			core[k] = v
		}
	}
	out["core"] = resource.NewObjectProperty(core)
	return out, nil
}
