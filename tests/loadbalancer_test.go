package tests

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

const (
	typeIngress    = "kubernetes:networking.k8s.io/v1:Ingress"
	typeTrustStore = "aws:lb/trustStore:TrustStore"
	typeBucket     = "aws:s3/bucketV2:BucketV2"
	typeObject     = "aws:s3/bucketObjectv2:BucketObjectv2"
	alb            = "alb.ingress.kubernetes.io/"
	nlb            = "service.beta.kubernetes.io/aws-load-balancer-"
)

// loadBalancerServices are the Services of type LoadBalancer (each one becomes an AWS load balancer).
func loadBalancerServices(g *graph) []*mockengine.Resource {
	var out []*mockengine.Resource
	for _, s := range g.ofType(typeService) {
		if input(s, "spec", "type") == "LoadBalancer" {
			out = append(out, s)
		}
	}
	return out
}

func annotations(r *mockengine.Resource) map[string]any {
	a, _ := input(r, "metadata", "annotations").(map[string]any)
	return a
}

// validatedArn is the certificate ARN as the CertificateValidation reports it.
func validatedArn(g *graph) string {
	return str(g.one(typeValidation).Outputs.Mappable()["certificateArn"])
}

// TestLoadBalancerPerMode: each client-auth mode gets exactly one load balancer of the right kind,
// created after (and so deleted before) the ALB controller and Ambassador.
func TestLoadBalancerPerMode(t *testing.T) {
	forEachEdgeRun(t, func(t *testing.T, r edgeRun) {
		g, mode := r.g, r.cfg.Edge.ClientAuth
		ingresses, services := g.ofType(typeIngress), loadBalancerServices(g)
		var lb *mockengine.Resource
		if mode == components.ClientAuthNLBPassthrough {
			if len(ingresses) != 0 || len(services) != 1 {
				t.Fatalf("nlb-passthrough: %d Ingresses and %d LoadBalancer Services, want 0 and 1", len(ingresses), len(services))
			}
			lb = services[0]
		} else {
			if len(ingresses) != 1 || len(services) != 0 {
				t.Fatalf("%s: %d Ingresses and %d LoadBalancer Services, want 1 and 0", mode, len(ingresses), len(services))
			}
			lb = ingresses[0]
		}
		controller := g.one(typeRelease, "alb-controller")
		if !g.dependsOn(lb, controller) {
			t.Errorf("%s does not depend on the ALB controller: destroy would delete the controller first and leak the load balancer", lb.Type)
		}
		if !g.dependsOn(lb, g.one(typeRelease, "ambassador")) {
			t.Errorf("%s does not wait for Ambassador's release", lb.Type)
		}
		if _, skip := annotations(lb)["pulumi.com/skipAwait"]; skip {
			t.Errorf("skipAwait would also skip waiting for the controller's finalizer on delete")
		}
		if input(lb, "metadata", "namespace") != r.cfg.Edge.Namespace {
			t.Errorf("load balancer object in namespace %v", input(lb, "metadata", "namespace"))
		}
		if n := len(g.ofType(typeTrustStore)); (n == 1) != (mode == components.ClientAuthALBVerify) || n > 1 {
			t.Errorf("%s: %d trust stores", mode, n)
		}
	})
}

// TestAlbIngress checks the ALB Ingress: HTTPS only, TLS 1.3 policy, the validated certificate,
// health checks on Emissary's readiness endpoint and the mode's mutual TLS.
func TestAlbIngress(t *testing.T) {
	forEachEdgeRun(t, func(t *testing.T, r edgeRun) {
		g, mode := r.g, r.cfg.Edge.ClientAuth
		if mode == components.ClientAuthNLBPassthrough {
			return
		}
		ing := g.one(typeIngress)
		a := annotations(ing)
		want := map[string]any{
			alb + "scheme": "internet-facing", alb + "target-type": "ip", alb + "backend-protocol": "HTTPS",
			alb + "listen-ports": `[{"HTTPS":443}]`, alb + "ssl-policy": "ELBSecurityPolicy-TLS13-1-3-2021-06",
			alb + "certificate-arn": validatedArn(g), alb + "healthcheck-protocol": "HTTP", alb + "healthcheck-port": "8877",
			alb + "healthcheck-path": "/ambassador/v0/check_ready", alb + "success-codes": "200",
			alb + "inbound-cidrs":            strings.Join(r.cfg.Edge.LoadBalancerSourceCidrs, ","),
			alb + "load-balancer-attributes": "routing.http.drop_invalid_header_fields.enabled=true,idle_timeout.timeout_seconds=60",
			alb + "wafv2-acl-arn":            components.WafNone,
		}
		if r.cfg.Edge.Waf != components.WafOff {
			want[alb+"wafv2-acl-arn"] = str(g.one(typeWebACL).Outputs.Mappable()["arn"])
		}
		mtls := map[string]string{
			components.ClientAuthALBPassthrough: `[{"port":443,"mode":"passthrough"}]`,
			components.ClientAuthOff:            `[{"port":443,"mode":"off"}]`,
		}[mode]
		if mode == components.ClientAuthALBVerify {
			mtls = `[{"port":443,"mode":"verify","trustStore":"` + str(g.one(typeTrustStore).Outputs.Mappable()["arn"]) + `","ignoreClientCertificateExpiry":false}]`
		}
		jsonEqual(t, "mutual-authentication", str(a[alb+"mutual-authentication"]), mtls)
		delete(a, alb+"mutual-authentication")
		delete(a, alb+"listener-attributes.HTTPS-443") // TestCertHeaderNameIsSecretAndShared
		checkSubnetsAnnotation(t, g, r.cfg, a, alb+"subnets")
		if !reflect.DeepEqual(a, want) {
			t.Errorf("Ingress annotations\n got %v\nwant %v", a, want)
		}
		// No cleartext listener on the load balancer.
		var ports []map[string]int
		if err := json.Unmarshal([]byte(str(want[alb+"listen-ports"])), &ports); err != nil || len(ports) != 1 || ports[0]["HTTPS"] != 443 || len(ports[0]) != 1 {
			t.Errorf("listen-ports %v: want HTTPS 443 only", want[alb+"listen-ports"])
		}
		if !slices.Contains(stacks.TLS13Policies, str(a[alb+"ssl-policy"])) {
			t.Errorf("ssl-policy %v allows TLS below 1.3", a[alb+"ssl-policy"])
		}
		// The listener uses the certificate only once ACM has issued it.
		if !g.dependsOn(ing, g.one(typeValidation)) {
			t.Errorf("Ingress does not wait for the certificate's validation")
		}
		wantSpec := map[string]any{
			"ingressClassName": "alb",
			"rules": []any{map[string]any{"host": r.cfg.Hostname, "http": map[string]any{"paths": []any{map[string]any{
				"path": "/", "pathType": "Prefix",
				"backend": map[string]any{"service": map[string]any{"name": ambassadorService(r.cfg), "port": map[string]any{"number": float64(443)}}},
			}}}}},
		}
		if got := input(ing, "spec"); !reflect.DeepEqual(got, wantSpec) {
			t.Errorf("Ingress spec\n got %v\nwant %v", got, wantSpec)
		}
	})
}

// ambassadorService is the chart's Service in front of Ambassador (https 443 → 8443).
func ambassadorService(cfg *stacks.Config) string {
	return components.AmbassadorNamesFor(cfg.Edge.Edition).ServiceName
}

// TestAlbIngressFollowsConfig: scheme, TLS policy, source ranges and an existing certificate
// come from the stack configuration.
func TestAlbIngressFollowsConfig(t *testing.T) {
	arn := "arn:aws:acm:us-east-1:123456789012:certificate/0f8fad5b-d9cb-469f-a165-70867728950e"
	g, err := run(t, "prod", stackConfig(t, "prod", map[string]string{
		"ztedge:loadBalancerScheme":      "internal",
		"ztedge:sslPolicy":               "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
		"ztedge:loadBalancerSourceCidrs": `["10.0.0.0/8","192.0.2.0/24"]`,
		"ztedge:certificateArn":          arn,
		"ztedge:hostedZoneId":            "",
		"ztedge:createDnsRecord":         "false",
	}))
	if err != nil {
		t.Fatal(err)
	}
	a := annotations(g.one(typeIngress))
	for k, v := range map[string]string{
		"scheme": "internal", "ssl-policy": "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
		"inbound-cidrs": "10.0.0.0/8,192.0.2.0/24", "certificate-arn": arn,
	} {
		if a[alb+k] != v {
			t.Errorf("%s = %v, want %s", k, a[alb+k], v)
		}
	}
}

// TestNlbService: TCP passthrough on 443 to Envoy's 8443 only, IP targets, source ranges from the
// config, the controller's class (the in-tree provider must not build a Classic ELB).
func TestNlbService(t *testing.T) {
	forEachEdgeRun(t, func(t *testing.T, r edgeRun) {
		if r.cfg.Edge.ClientAuth != components.ClientAuthNLBPassthrough {
			return
		}
		svc := loadBalancerServices(r.g)[0]
		want := map[string]any{
			nlb + "type": "external", nlb + "nlb-target-type": "ip", nlb + "scheme": "internet-facing", nlb + "backend-protocol": "tcp",
			nlb + "healthcheck-protocol": "http", nlb + "healthcheck-port": "8877", nlb + "healthcheck-path": "/ambassador/v0/check_ready",
			nlb + "healthcheck-success-codes": "200", nlb + "attributes": "load_balancing.cross_zone.enabled=true",
			nlb + "proxy-protocol": "*", nlb + "target-group-attributes": "preserve_client_ip.enabled=false",
		}
		got := annotations(svc)
		checkSubnetsAnnotation(t, r.g, r.cfg, got, nlb+"subnets")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("NLB annotations\n got %v\nwant %v", got, want)
		}
		selector := map[string]any{}
		for k, v := range components.AmbassadorNamesFor(r.cfg.Edge.Edition).PodLabels {
			selector[k] = v
		}
		wantSpec := map[string]any{
			"type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb",
			"loadBalancerSourceRanges": toAnyList(r.cfg.Edge.LoadBalancerSourceCidrs),
			"selector":                 selector,
			"ports":                    []any{map[string]any{"name": "https", "protocol": "TCP", "port": float64(443), "targetPort": float64(8443)}},
		}
		if got := input(svc, "spec"); !reflect.DeepEqual(got, wantSpec) {
			t.Errorf("NLB Service spec\n got %v\nwant %v", got, wantSpec)
		}
	})
}

// TestTrustStore (alb-verify): the CA bundle sits in a private, versioned, encrypted, TLS-only
// bucket, and the trust store loads that exact object version.
func TestTrustStore(t *testing.T) {
	forEachEdgeRun(t, func(t *testing.T, r edgeRun) {
		g := r.g
		if r.cfg.Edge.ClientAuth != components.ClientAuthALBVerify {
			if n := len(g.ofType(typeBucket)); n != 0 {
				t.Errorf("%s: %d S3 buckets; only alb-verify needs one", r.cfg.Edge.ClientAuth, n)
			}
			return
		}
		bucket := g.one(typeBucket)
		id := bucket.ID
		block := g.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
		for _, k := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
			if input(block, k) != true || input(block, "bucket") != id {
				t.Errorf("public access block %s = %v on %v", k, input(block, k), input(block, "bucket"))
			}
		}
		if v := g.one("aws:s3/bucketVersioningV2:BucketVersioningV2"); input(v, "versioningConfiguration", "status") != "Enabled" || input(v, "bucket") != id {
			t.Errorf("versioning %v", v.Inputs.Mappable())
		}
		sse := g.one("aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
		if rules, _ := input(sse, "rules").([]any); len(rules) != 1 || rules[0].(map[string]any)["applyServerSideEncryptionByDefault"].(map[string]any)["sseAlgorithm"] != "AES256" {
			t.Errorf("encryption %v", sse.Inputs.Mappable())
		}
		if o := g.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls"); input(o, "rule", "objectOwnership") != "BucketOwnerEnforced" {
			t.Errorf("ownership %v: ACLs must be off", o.Inputs.Mappable())
		}
		policy := g.one("aws:s3/bucketPolicy:BucketPolicy")
		arn := str(bucket.Outputs.Mappable()["arn"])
		jsonEqual(t, "bucket policy", str(input(policy, "policy")), `{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecureTransport",
			"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["`+arn+`","`+arn+`/*"],
			"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`)

		obj := g.one(typeObject)
		ca := g.one(typeSelfSigned, "pki-client-ca")
		if input(obj, "content") != ca.Outputs.Mappable()["certPem"] || input(obj, "bucket") != id {
			t.Errorf("the bundle object does not hold the trusted-client CA certificate")
		}
		for _, dep := range []*mockengine.Resource{block, policy} {
			if !g.dependsOn(obj, dep) {
				t.Errorf("the CA bundle is uploaded before %s", dep.Type)
			}
		}
		store := g.one(typeTrustStore)
		if input(store, "caCertificatesBundleS3Bucket") != id || input(store, "caCertificatesBundleS3Key") != input(obj, "key") ||
			input(store, "caCertificatesBundleS3ObjectVersion") != obj.Outputs.Mappable()["versionId"] {
			t.Errorf("trust store %v does not load the uploaded object version", store.Inputs.Mappable())
		}
		if !g.dependsOn(g.one(typeIngress), store) {
			t.Errorf("Ingress does not wait for the trust store")
		}
	})
}

// TestLoadBalancerHostname: the stack output loadBalancerHostname is the DNS name the controller
// writes into the Ingress or Service status (the mock engine answers like the controller).
func TestLoadBalancerHostname(t *testing.T) {
	for _, mode := range components.ClientAuthModes {
		t.Run(mode, func(t *testing.T) {
			eng := mockengine.New("ztedge", "dev", "us-east-1")
			got := make(chan string, 1)
			err := eng.Run(func(ctx *pulumi.Context) error {
				// Stand-ins for the controller and Ambassador's release: any resource will do.
				controller, err := corev1.NewConfigMap(ctx, "controller", &corev1.ConfigMapArgs{})
				if err != nil {
					return err
				}
				lb, err := components.NewLoadBalancer(ctx, "edge", &components.LoadBalancerArgs{
					Namespace: pulumi.String("ambassador"), Hostname: "edge.example.com", ClientAuth: mode,
					Scheme: "internet-facing", SslPolicy: stacks.TLS13Policies[0], SourceCidrs: []string{"0.0.0.0/0"},
					CertificateArn:    pulumi.String("arn:aws:acm:us-east-1:123456789012:certificate/0f8fad5b-d9cb-469f-a165-70867728950e"),
					AmbassadorService: "emissary-ingress", AmbassadorServicePort: 443,
					AmbassadorPodLabels: map[string]string{"app.kubernetes.io/name": "emissary-ingress"},
					CaCertPem:           pulumi.String("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
					Controller:          controller,
					Subnets:             pulumi.ToStringArray([]string{"subnet-0123456789abcdef0", "subnet-0123456789abcdef1"}),
				})
				if err != nil {
					return err
				}
				ctx.Export("loadBalancerHostname", lb.Hostname.ApplyT(func(h string) string { got <- h; return h }))
				return nil
			}, map[string]string{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var status any
			for _, r := range eng.Resources() {
				if r.Type == typeIngress || (r.Type == typeService && input(r, "spec", "type") == "LoadBalancer") {
					status = r.Outputs.Mappable()["status"]
				}
			}
			want := status.(map[string]any)["loadBalancer"].(map[string]any)["ingress"].([]any)[0].(map[string]any)["hostname"]
			if h := <-got; h == "" || h != want {
				t.Errorf("loadBalancerHostname %q, want the status hostname %v", h, want)
			}
		})
	}
}
