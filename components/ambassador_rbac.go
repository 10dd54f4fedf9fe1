package components

import (
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Ambassador's cluster-wide permissions are ztedge's, not the chart's (chart value rbac.create:
// false). The chart grants them through an *aggregated* ClusterRole, and that cannot be deleted
// reliably: when Helm deletes it together with the ClusterRoles it aggregates, the API server's
// clusterrole-aggregation controller re-applies the aggregate from its cache and so re-creates it
// (new uid, no aggregationRule, no Helm labels). `helm uninstall --wait` then waits for a NotFound
// that never comes, and the leftover role blocks the next install ("invalid ownership metadata").
// One flat ClusterRole has nothing to aggregate.

// AmbassadorRBACRules are the rules the emissary-ingress chart's ClusterRoles "<name>-crd" and
// "<name>-watch" aggregate (templates/rbac.yaml of the pinned chart, cluster-wide scope, no
// PodSecurityPolicies); a test compares them with the chart's template.
func AmbassadorRBACRules() []map[string][]string {
	return []map[string][]string{
		{"apiGroups": {"apiextensions.k8s.io"}, "resources": {"customresourcedefinitions"}, "verbs": {"get", "list", "watch", "delete"}},
		{"apiGroups": {""}, "resources": {"namespaces", "services", "secrets", "configmaps", "endpoints"}, "verbs": {"get", "list", "watch"}},
		{"apiGroups": {"getambassador.io", "gateway.getambassador.io"}, "resources": {"*"}, "verbs": {"get", "list", "watch", "update", "patch", "create", "delete"}},
		{"apiGroups": {"getambassador.io"}, "resources": {"mappings/status"}, "verbs": {"update"}},
		{"apiGroups": {"networking.internal.knative.dev"}, "resources": {"clusteringresses", "ingresses"}, "verbs": {"get", "list", "watch"}},
		{"apiGroups": {"networking.x-k8s.io"}, "resources": {"*"}, "verbs": {"get", "list", "watch"}},
		{"apiGroups": {"networking.internal.knative.dev"}, "resources": {"ingresses/status", "clusteringresses/status"}, "verbs": {"update"}},
		{"apiGroups": {"extensions", "networking.k8s.io"}, "resources": {"ingresses", "ingressclasses"}, "verbs": {"get", "list", "watch"}},
		{"apiGroups": {"extensions", "networking.k8s.io"}, "resources": {"ingresses/status"}, "verbs": {"update"}},
	}
}

// newAmbassadorRBAC binds AmbassadorRBACRules to the chart's ServiceAccount (named after the
// release). The release depends on the binding, so destroy removes Ambassador before its rights.
func newAmbassadorRBAC(ctx *pulumi.Context, name string, naming AmbassadorNaming, namespace pulumi.StringInput, opts ...pulumi.ResourceOption) (*rbacv1.ClusterRoleBinding, error) {
	var rules rbacv1.PolicyRuleArray
	for _, r := range AmbassadorRBACRules() {
		rules = append(rules, rbacv1.PolicyRuleArgs{
			ApiGroups: pulumi.ToStringArray(r["apiGroups"]),
			Resources: pulumi.ToStringArray(r["resources"]),
			Verbs:     pulumi.ToStringArray(r["verbs"]),
		})
	}
	labels := pulumi.ToStringMap(naming.PodLabels)
	role, err := rbacv1.NewClusterRole(ctx, name+"-rbac", &rbacv1.ClusterRoleArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(naming.Release), Labels: labels},
		Rules:    rules,
	}, opts...)
	if err != nil {
		return nil, err
	}
	return rbacv1.NewClusterRoleBinding(ctx, name+"-rbac", &rbacv1.ClusterRoleBindingArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(naming.Release), Labels: labels},
		RoleRef: rbacv1.RoleRefArgs{
			ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("ClusterRole"), Name: role.Metadata.Name().Elem(),
		},
		Subjects: rbacv1.SubjectArray{rbacv1.SubjectArgs{
			Kind: pulumi.String("ServiceAccount"), Name: pulumi.String(naming.Release), Namespace: namespace,
		}},
	}, opts...)
}
