package components

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The AWS load balancer in front of Ambassador, made by the AWS Load Balancer Controller from an
// Ingress (ALB) or a LoadBalancer Service (NLB). Only port 443 is ever opened.
const (
	albAnnotation = "alb.ingress.kubernetes.io/"
	nlbAnnotation = "service.beta.kubernetes.io/aws-load-balancer-"
	// The ALB drops requests with header names that are not valid HTTP tokens (request smuggling
	// material) and closes idle connections after a minute.
	albAttributes = "routing.http.drop_invalid_header_fields.enabled=true,idle_timeout.timeout_seconds=60"
	// trustStoreKey is the CA bundle's object key in the trust-store bucket.
	trustStoreKey = "ca-bundle.pem"
)

// LoadBalancerArgs configures the load balancer for one client-auth mode.
type LoadBalancerArgs struct {
	// Namespace is an output of Ambassador's namespace (the Ingress or Service lives next to it).
	Namespace  pulumi.StringInput
	Hostname   string
	ClientAuth string
	// Scheme is internet-facing or internal; SslPolicy a TLS-1.3-only ELB policy (ALB modes).
	Scheme    string
	SslPolicy string
	// SourceCidrs may connect to the load balancer.
	SourceCidrs []string
	// Subnets are the load balancer subnets (no nodes, no pods): named explicitly so the
	// controller's subnet discovery cannot put the load balancer among the pods, where the
	// NetworkPolicy would (rightly) not admit it.
	Subnets pulumi.StringArrayInput
	// CertificateArn is the validated ACM certificate (ALB modes): taking it from the
	// CertificateValidation makes the listener wait until the certificate is issued.
	CertificateArn pulumi.StringInput
	// AmbassadorService and AmbassadorServicePort are the ALB's backend (ALB modes): Ambassador's
	// Service and its port that targets Envoy's HTTPS port 8443.
	AmbassadorService     string
	AmbassadorServicePort int
	// AmbassadorPodLabels select Ambassador's pods, the NLB's targets (nlb-passthrough).
	AmbassadorPodLabels map[string]string
	// Target is Envoy's port and readiness check when Envoy is not Emissary's (engine envoy-gateway).
	Target *EnvoyTarget
	// CaCertPem is the trusted-client CA (alb-verify: the ALB trust store).
	CaCertPem pulumi.StringInput
	// CertHeaderName is the stack's secret name for the header in which the ALB forwards the client
	// certificate (AuthService.CertHeaderName; nil: the ALB's default name, nobody reads it).
	CertHeaderName pulumi.StringInput
	// WebACLArn is the WAF web ACL the controller attaches to the ALB (ALB modes); nil detaches any.
	WebACLArn pulumi.StringInput
	// Controller is the AWS Load Balancer Controller release. Everything here depends on it, so that
	// destroy deletes the Ingress/Service first and the controller's finalizer removes the load
	// balancer and its security groups (which otherwise leak and block VPC deletion).
	Controller pulumi.Resource
	// DependsOn is what must exist first (Ambassador's release, whose Service is the backend).
	DependsOn []pulumi.Resource
	Tags      map[string]string
}

// LoadBalancer is the ALB Ingress or NLB Service, plus the trust store in alb-verify mode.
type LoadBalancer struct {
	pulumi.ResourceState

	// Hostname is the load balancer's DNS name (point the edge hostname at it).
	Hostname pulumi.StringOutput `pulumi:"hostname"`
	// TrustStoreArn is set in alb-verify mode.
	TrustStoreArn pulumi.StringOutput `pulumi:"trustStoreArn"`
}

func (a *LoadBalancerArgs) validate() error {
	if a.Namespace == nil || a.Hostname == "" || a.Controller == nil || a.Subnets == nil {
		return fmt.Errorf("load-balancer: Namespace, Hostname, Controller and Subnets are required")
	}
	if !slices.Contains(ClientAuthModes, a.ClientAuth) {
		return fmt.Errorf("load-balancer: client auth %q is not one of %s", a.ClientAuth, strings.Join(ClientAuthModes, ", "))
	}
	if a.Scheme != "internet-facing" && a.Scheme != "internal" {
		return fmt.Errorf("load-balancer: scheme %q is not internet-facing or internal", a.Scheme)
	}
	if len(a.SourceCidrs) == 0 {
		return fmt.Errorf("load-balancer: at least one source CIDR is required")
	}
	if a.WebACLArn != nil && EnvoyTerminatesTLS(a.ClientAuth) {
		return fmt.Errorf("load-balancer: a web ACL needs an ALB; nlb-passthrough has no HTTP layer at the load balancer")
	}
	if EnvoyTerminatesTLS(a.ClientAuth) {
		if len(a.AmbassadorPodLabels) == 0 {
			return fmt.Errorf("load-balancer: nlb-passthrough needs AmbassadorPodLabels")
		}
		return nil
	}
	if a.CertificateArn == nil || a.SslPolicy == "" || a.AmbassadorService == "" || a.AmbassadorServicePort == 0 {
		return fmt.Errorf("load-balancer: %s needs CertificateArn, SslPolicy, AmbassadorService and AmbassadorServicePort", a.ClientAuth)
	}
	if a.ClientAuth == ClientAuthALBVerify && a.CaCertPem == nil {
		return fmt.Errorf("load-balancer: alb-verify needs CaCertPem for the trust store")
	}
	return nil
}

// mutualAuthentication is one element of the controller's mutual-authentication annotation.
type mutualAuthentication struct {
	Port                          int    `json:"port"`
	Mode                          string `json:"mode"`
	TrustStore                    string `json:"trustStore,omitempty"`
	IgnoreClientCertificateExpiry *bool  `json:"ignoreClientCertificateExpiry,omitempty"`
}

// MutualAuthentication is the ALB's mutual-TLS setting for port 443. Mode off is written out:
// the controller only turns mutual TLS off on an existing listener when told so explicitly.
func MutualAuthentication(clientAuth, trustStoreArn string) string {
	m := mutualAuthentication{Port: 443, Mode: "off"}
	switch clientAuth {
	case ClientAuthALBPassthrough:
		m.Mode = "passthrough"
	case ClientAuthALBVerify:
		never := false
		m.Mode, m.TrustStore, m.IgnoreClientCertificateExpiry = "verify", trustStoreArn, &never
	}
	b, _ := json.Marshal([]mutualAuthentication{m})
	return string(b)
}

// AlbAnnotations are the Ingress annotations: an HTTPS-only ALB with IP targets that talks HTTPS to
// Envoy and health-checks Emissary's readiness endpoint on the admin port (Envoy's listener serves
// nothing before its Host exists). The WAF annotation is always written: without it the controller
// leaves whatever web ACL the ALB has ("" means none). albAnnotationInputs adds the secret one.
func AlbAnnotations(a *LoadBalancerArgs, certificateArn, trustStoreArn, webACLArn string, subnets []string) map[string]string {
	if webACLArn == "" {
		webACLArn = WafNone
	}
	return map[string]string{
		albAnnotation + "wafv2-acl-arn":            webACLArn,
		albAnnotation + "scheme":                   a.Scheme,
		albAnnotation + "subnets":                  strings.Join(subnets, ","),
		albAnnotation + "target-type":              "ip",
		albAnnotation + "backend-protocol":         "HTTPS",
		albAnnotation + "listen-ports":             `[{"HTTPS":443}]`,
		albAnnotation + "ssl-policy":               a.SslPolicy,
		albAnnotation + "certificate-arn":          certificateArn,
		albAnnotation + "healthcheck-protocol":     "HTTP",
		albAnnotation + "healthcheck-port":         fmt.Sprint(AmbassadorAdminPort),
		albAnnotation + "healthcheck-path":         AmbassadorReadyPath,
		albAnnotation + "success-codes":            "200",
		albAnnotation + "inbound-cidrs":            strings.Join(a.SourceCidrs, ","),
		albAnnotation + "load-balancer-attributes": albAttributes,
		albAnnotation + "mutual-authentication":    MutualAuthentication(a.ClientAuth, trustStoreArn),
	}
}

// albAnnotationInputs are the Ingress's annotations one input per key (the keys depend on no
// output), so that the secret certificate header name makes its own annotation secret in the state
// and no other: previews and `ztedge render` keep showing the rest.
func albAnnotationInputs(a *LoadBalancerArgs, values pulumi.StringMapOutput) pulumi.StringMap {
	out := pulumi.StringMap{}
	for key := range a.Target.healthCheck(albAnnotation, AlbAnnotations(a, "", "", "", nil)) {
		out[key] = values.MapIndex(pulumi.String(key))
	}
	if _, renames := albCertHeaderAttribute[a.ClientAuth]; renames && a.CertHeaderName != nil {
		out[albAnnotation+"listener-attributes.HTTPS-443"] = a.CertHeaderName.ToStringOutput().ApplyT(func(name string) string {
			return albListenerAttributes(a.ClientAuth, name)
		}).(pulumi.StringOutput)
	}
	return out
}

// NlbAnnotations make the controller build an NLB with IP targets that passes TCP through to
// Envoy, health-checked like the ALB, spreading load over every zone's Ambassador pods. The target
// group sends PROXY protocol v2 ("*": every port; the controller's annotation) so Envoy learns the
// client's address, and does not preserve the client IP: packets come from the NLB's own addresses
// in the load balancer subnets, the only source the NetworkPolicy admits. (Health checks carry no
// PROXY header; they go to the admin port, which does not expect one.)
func NlbAnnotations(scheme string, subnets []string) map[string]string {
	return map[string]string{
		nlbAnnotation + "subnets":                   strings.Join(subnets, ","),
		nlbAnnotation + "type":                      "external",
		nlbAnnotation + "nlb-target-type":           "ip",
		nlbAnnotation + "scheme":                    scheme,
		nlbAnnotation + "backend-protocol":          "tcp",
		nlbAnnotation + "healthcheck-protocol":      "http",
		nlbAnnotation + "healthcheck-port":          fmt.Sprint(AmbassadorAdminPort),
		nlbAnnotation + "healthcheck-path":          AmbassadorReadyPath,
		nlbAnnotation + "healthcheck-success-codes": "200",
		nlbAnnotation + "attributes":                "load_balancing.cross_zone.enabled=true",
		nlbAnnotation + "proxy-protocol":            "*",
		nlbAnnotation + "target-group-attributes":   "preserve_client_ip.enabled=false",
	}
}

// NewLoadBalancer creates the load balancer for the configured client-auth mode.
func NewLoadBalancer(ctx *pulumi.Context, name string, args *LoadBalancerArgs, opts ...pulumi.ResourceOption) (*LoadBalancer, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	l := &LoadBalancer{TrustStoreArn: pulumi.String("").ToStringOutput()}
	child, err := register(ctx, "ztedge:edge:LoadBalancer", name, l, opts)
	if err != nil {
		return nil, err
	}
	after := pulumi.DependsOn(append([]pulumi.Resource{args.Controller}, args.DependsOn...))
	meta := func(objName string, annotations pulumi.StringMapInput) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{
			Name: pulumi.String(objName), Namespace: args.Namespace, Annotations: annotations,
			Labels: pulumi.ToStringMap(appLabels(objName)),
		}
	}

	if EnvoyTerminatesTLS(args.ClientAuth) {
		svc, err := corev1.NewService(ctx, name, &corev1.ServiceArgs{
			Metadata: meta(name+"-nlb", args.Subnets.ToStringArrayOutput().ApplyT(func(subnets []string) map[string]string {
				return args.Target.healthCheck(nlbAnnotation, NlbAnnotations(args.Scheme, subnets))
			}).(pulumi.StringMapOutput)),
			Spec: &corev1.ServiceSpecArgs{
				Type: pulumi.String("LoadBalancer"),
				// The controller's class: the in-tree cloud provider leaves the Service alone.
				LoadBalancerClass:        pulumi.String("service.k8s.aws/nlb"),
				LoadBalancerSourceRanges: pulumi.ToStringArray(args.SourceCidrs),
				Selector:                 pulumi.ToStringMap(args.AmbassadorPodLabels),
				Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
					Name: pulumi.String("https"), Protocol: pulumi.String("TCP"),
					Port: pulumi.Int(443), TargetPort: pulumi.Int(args.Target.httpsPort()),
				}},
			},
		}, child, after)
		if err != nil {
			return nil, err
		}
		l.Hostname = svc.Status.ApplyT(func(s *corev1.ServiceStatus) string {
			if s == nil || s.LoadBalancer == nil || len(s.LoadBalancer.Ingress) == 0 {
				return ""
			}
			return deref(s.LoadBalancer.Ingress[0].Hostname)
		}).(pulumi.StringOutput)
		return l, ctx.RegisterResourceOutputs(l, pulumi.Map{"hostname": l.Hostname})
	}

	trustStoreArn := pulumi.String("").ToStringOutput()
	if args.ClientAuth == ClientAuthALBVerify {
		store, err := newTrustStore(ctx, name, args, child)
		if err != nil {
			return nil, err
		}
		trustStoreArn, l.TrustStoreArn = store.Arn, store.Arn
	}
	webACLArn := pulumi.StringInput(pulumi.String(""))
	if args.WebACLArn != nil {
		webACLArn = args.WebACLArn
	}
	annotations := pulumi.All(args.CertificateArn, trustStoreArn, webACLArn, args.Subnets).ApplyT(func(v []any) map[string]string {
		return args.Target.healthCheck(albAnnotation, AlbAnnotations(args, v[0].(string), v[1].(string), v[2].(string), v[3].([]string)))
	}).(pulumi.StringMapOutput)
	ingress, err := networkingv1.NewIngress(ctx, name, &networkingv1.IngressArgs{
		Metadata: meta(name, albAnnotationInputs(args, annotations)),
		Spec: &networkingv1.IngressSpecArgs{
			IngressClassName: pulumi.String("alb"),
			// Only the edge hostname is forwarded; the ALB answers anything else with 404 itself.
			Rules: networkingv1.IngressRuleArray{networkingv1.IngressRuleArgs{
				Host: pulumi.String(args.Hostname),
				Http: &networkingv1.HTTPIngressRuleValueArgs{Paths: networkingv1.HTTPIngressPathArray{networkingv1.HTTPIngressPathArgs{
					Path: pulumi.String("/"), PathType: pulumi.String("Prefix"),
					Backend: networkingv1.IngressBackendArgs{Service: &networkingv1.IngressServiceBackendArgs{
						Name: pulumi.String(args.AmbassadorService),
						Port: &networkingv1.ServiceBackendPortArgs{Number: pulumi.Int(args.AmbassadorServicePort)},
					}},
				}}},
			}},
		},
	}, child, after)
	if err != nil {
		return nil, err
	}
	// The provider waits until the controller has written the ALB's name into the status.
	l.Hostname = ingress.Status.ApplyT(func(s *networkingv1.IngressStatus) string {
		if s == nil || s.LoadBalancer == nil || len(s.LoadBalancer.Ingress) == 0 {
			return ""
		}
		return deref(s.LoadBalancer.Ingress[0].Hostname)
	}).(pulumi.StringOutput)
	return l, ctx.RegisterResourceOutputs(l, pulumi.Map{"hostname": l.Hostname, "trustStoreArn": l.TrustStoreArn})
}

// TLSOnlyBucketPolicy denies every S3 request to the bucket that does not use TLS.
func TLSOnlyBucketPolicy(bucketArn string) string {
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid":       "DenyInsecureTransport",
			"Effect":    "Deny",
			"Principal": "*",
			"Action":    "s3:*",
			"Resource":  []string{bucketArn, bucketArn + "/*"},
			"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
		}},
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

// newTrustStore puts the CA bundle in a private, versioned, encrypted, TLS-only bucket and creates
// the ALB trust store from it. The trust store names the object version, so a new CA (a new
// version) updates the trust store instead of being ignored.
func newTrustStore(ctx *pulumi.Context, name string, args *LoadBalancerArgs, opts ...pulumi.ResourceOption) (*lb.TrustStore, error) {
	tags := mergeTags(args.Tags, map[string]string{"ztedge:purpose": "alb-trust-store"})
	bucket, err := s3.NewBucketV2(ctx, name+"-truststore", &s3.BucketV2Args{
		// Only a public CA certificate lives here; let destroy remove it with its old versions.
		ForceDestroy: pulumi.Bool(true),
		Tags:         tags,
	}, opts...)
	if err != nil {
		return nil, err
	}
	ownership, err := s3.NewBucketOwnershipControls(ctx, name+"-truststore", &s3.BucketOwnershipControlsArgs{
		Bucket: bucket.ID(),
		Rule:   &s3.BucketOwnershipControlsRuleArgs{ObjectOwnership: pulumi.String("BucketOwnerEnforced")},
	}, opts...)
	if err != nil {
		return nil, err
	}
	block, err := s3.NewBucketPublicAccessBlock(ctx, name+"-truststore", &s3.BucketPublicAccessBlockArgs{
		Bucket:          bucket.ID(),
		BlockPublicAcls: pulumi.Bool(true), BlockPublicPolicy: pulumi.Bool(true),
		IgnorePublicAcls: pulumi.Bool(true), RestrictPublicBuckets: pulumi.Bool(true),
	}, opts...)
	if err != nil {
		return nil, err
	}
	versioning, err := s3.NewBucketVersioningV2(ctx, name+"-truststore", &s3.BucketVersioningV2Args{
		Bucket:                  bucket.ID(),
		VersioningConfiguration: &s3.BucketVersioningV2VersioningConfigurationArgs{Status: pulumi.String("Enabled")},
	}, opts...)
	if err != nil {
		return nil, err
	}
	encryption, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, name+"-truststore", &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			// SSE-S3: the load balancer service reads the bundle without needing a KMS grant.
			ApplyServerSideEncryptionByDefault: &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
				SseAlgorithm: pulumi.String("AES256"),
			},
		}},
	}, opts...)
	if err != nil {
		return nil, err
	}
	policy, err := s3.NewBucketPolicy(ctx, name+"-truststore", &s3.BucketPolicyArgs{
		Bucket: bucket.ID(),
		Policy: bucket.Arn.ApplyT(TLSOnlyBucketPolicy).(pulumi.StringOutput),
	}, append(opts, pulumi.DependsOn([]pulumi.Resource{block}))...)
	if err != nil {
		return nil, err
	}
	object, err := s3.NewBucketObjectv2(ctx, name+"-ca-bundle", &s3.BucketObjectv2Args{
		Bucket:               bucket.ID(),
		Key:                  pulumi.String(trustStoreKey),
		Content:              args.CaCertPem,
		ContentType:          pulumi.String("application/x-pem-file"),
		ServerSideEncryption: pulumi.String("AES256"),
		Tags:                 tags,
	}, append(opts, pulumi.DependsOn([]pulumi.Resource{ownership, block, versioning, encryption, policy}))...)
	if err != nil {
		return nil, err
	}
	return lb.NewTrustStore(ctx, name+"-ca", &lb.TrustStoreArgs{
		CaCertificatesBundleS3Bucket:        bucket.Bucket,
		CaCertificatesBundleS3Key:           object.Key,
		CaCertificatesBundleS3ObjectVersion: object.VersionId,
		Tags:                                tags,
	}, opts...)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
