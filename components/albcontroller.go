package components

import (
	"embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The controller's official IAM policy (docs/install/iam_policy.json of
// kubernetes-sigs/aws-load-balancer-controller), one file per supported chart version, so the
// permissions always match the controller that runs. See assets/SOURCE.md.
//
//go:embed assets/aws-load-balancer-controller-iam-policy-v*.json
var albPolicies embed.FS

// albChartAppVersions maps a supported chart version to the policy file of its app version.
var albChartAppVersions = map[string]string{"3.5.0": "v3.5.0"}

// The controller's service account; the IRSA trust policy names it exactly.
const (
	AlbControllerNamespace      = "kube-system"
	AlbControllerServiceAccount = "aws-load-balancer-controller"
)

// AlbControllerPolicy returns the embedded IAM policy document for a chart version.
func AlbControllerPolicy(chartVersion string) (string, error) {
	app, ok := albChartAppVersions[chartVersion]
	if !ok {
		supported := make([]string, 0, len(albChartAppVersions))
		for v := range albChartAppVersions {
			supported = append(supported, v)
		}
		sort.Strings(supported)
		return "", fmt.Errorf("chart version %q has no embedded IAM policy; supported: %s", chartVersion, strings.Join(supported, ", "))
	}
	b, err := albPolicies.ReadFile("assets/aws-load-balancer-controller-iam-policy-" + app + ".json")
	return string(b), err
}

// IrsaTrustPolicy lets exactly one Kubernetes service account assume a role through the cluster's
// OIDC provider: both the subject and the audience are pinned, so no other pod and no token
// minted for another audience can use it.
func IrsaTrustPolicy(oidcProviderArn, oidcProviderURL, namespace, serviceAccount string) (string, error) {
	issuer := strings.TrimPrefix(oidcProviderURL, "https://")
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Federated": oidcProviderArn},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": map[string]any{"StringEquals": map[string]any{
				issuer + ":sub": "system:serviceaccount:" + namespace + ":" + serviceAccount,
				issuer + ":aud": "sts.amazonaws.com",
			}},
		}},
	}
	b, err := json.Marshal(doc)
	return string(b), err
}

// AlbControllerArgs configures the AWS Load Balancer Controller.
type AlbControllerArgs struct {
	ClusterName     pulumi.StringInput
	Region          string
	VpcID           pulumi.StringInput
	OidcProviderArn pulumi.StringInput
	OidcProviderURL pulumi.StringInput
	ChartVersion    string
	ChartRepository string
	Replicas        int
	Tags            map[string]string
	// DependsOn is what the release must wait for (the node group it runs on).
	DependsOn []pulumi.Resource
}

// AlbController is the controller that turns Ingresses and Services into ALBs and NLBs.
type AlbController struct {
	pulumi.ResourceState

	RoleArn   pulumi.StringOutput `pulumi:"roleArn"`
	PolicyArn pulumi.StringOutput `pulumi:"policyArn"`
	// Release is what every Ingress and LoadBalancer Service depends on, so that destroy deletes
	// them first and the controller's finalizer removes the load balancer it made.
	Release *helmv3.Release
}

func (a *AlbControllerArgs) validate() error {
	if a.ClusterName == nil || a.VpcID == nil || a.OidcProviderArn == nil || a.OidcProviderURL == nil || a.Region == "" {
		return fmt.Errorf("alb-controller: ClusterName, Region, VpcID and the OIDC provider are required")
	}
	if a.Replicas < 1 {
		return fmt.Errorf("alb-controller: Replicas must be at least 1")
	}
	_, err := AlbControllerPolicy(a.ChartVersion)
	return err
}

// AlbControllerValues are the chart values ztedge sets (checked against the chart's values.yaml in tests).
func AlbControllerValues(clusterName, region, vpcID, roleArn string, replicas int) map[string]any {
	return map[string]any{
		"clusterName":  clusterName,
		"region":       region, // pods cannot reach IMDS (hop limit 1), so region and VPC are given
		"vpcId":        vpcID,
		"replicaCount": replicas,
		"serviceAccount": map[string]any{
			"create":      true,
			"name":        AlbControllerServiceAccount,
			"annotations": map[string]any{"eks.amazonaws.com/role-arn": roleArn},
		},
		// Only Services that ask for it (loadBalancerClass / annotations) get an NLB; do not take over
		// every LoadBalancer Service in the cluster.
		"enableServiceMutatorWebhook": false,
		"podDisruptionBudget":         map[string]any{"maxUnavailable": 1},
	}
}

// NewAlbController creates the IAM policy (independent of the cluster), the IRSA role and the release.
func NewAlbController(ctx *pulumi.Context, name string, args *AlbControllerArgs, opts ...pulumi.ResourceOption) (*AlbController, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	policyDoc, _ := AlbControllerPolicy(args.ChartVersion)
	c := &AlbController{}
	child, err := register(ctx, "ztedge:alb:AlbController", name, c, opts)
	if err != nil {
		return nil, err
	}
	tags := mergeTags(args.Tags, nil)
	policy, err := iam.NewPolicy(ctx, name, &iam.PolicyArgs{
		Description: pulumi.Sprintf("AWS Load Balancer Controller (chart %s)", args.ChartVersion),
		Policy:      pulumi.String(policyDoc),
		Tags:        tags,
	}, child)
	if err != nil {
		return nil, err
	}
	trust := pulumi.All(args.OidcProviderArn, args.OidcProviderURL).ApplyT(func(v []any) (string, error) {
		return IrsaTrustPolicy(v[0].(string), v[1].(string), AlbControllerNamespace, AlbControllerServiceAccount)
	}).(pulumi.StringOutput)
	role, err := iam.NewRole(ctx, name, &iam.RoleArgs{
		Description:      pulumi.String("IRSA role of the AWS Load Balancer Controller"),
		AssumeRolePolicy: trust,
		Tags:             tags,
	}, child)
	if err != nil {
		return nil, err
	}
	attachment, err := iam.NewRolePolicyAttachment(ctx, name, &iam.RolePolicyAttachmentArgs{Role: role.Name, PolicyArn: policy.Arn}, child)
	if err != nil {
		return nil, err
	}
	values := pulumi.All(args.ClusterName, args.VpcID, role.Arn).ApplyT(func(v []any) map[string]any {
		return AlbControllerValues(v[0].(string), args.Region, v[1].(string), v[2].(string), args.Replicas)
	}).(pulumi.MapOutput)
	release, err := helmv3.NewRelease(ctx, name, &helmv3.ReleaseArgs{
		Name:           pulumi.String("aws-load-balancer-controller"),
		Chart:          chartRef(args.ChartRepository, "aws-load-balancer-controller", args.ChartVersion),
		Version:        pulumi.String(args.ChartVersion),
		RepositoryOpts: helmRepository(args.ChartRepository),
		Namespace:      pulumi.String(AlbControllerNamespace),
		Values:         values,
		// The controller must be running (webhooks served) before any Ingress is created.
		Atomic:        pulumi.Bool(true),
		CleanupOnFail: pulumi.Bool(true),
		Timeout:       pulumi.Int(600),
		MaxHistory:    pulumi.Int(10),
	}, child, pulumi.DependsOn(append([]pulumi.Resource{attachment}, args.DependsOn...)))
	if err != nil {
		return nil, err
	}
	c.RoleArn = role.Arn
	c.PolicyArn = policy.Arn
	c.Release = release
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"roleArn": c.RoleArn, "policyArn": c.PolicyArn})
}
