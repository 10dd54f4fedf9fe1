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

// Emissary runs in single-namespace mode (AMBASSADOR_SINGLE_NAMESPACE, chart value
// scope.singleNamespace): its watcher lists Services, Secrets, Ingresses and getambassador.io
// objects in its own namespace only (cmd/entrypoint/interesting_types.go at v4.1.0), so a Service
// annotation or a Mapping written anywhere else configures nothing (TestEnvoyIgnoresOtherNamespaces),
// and its rights say the same: a Role in its namespace, and a ClusterRole for the one
// cluster-scoped kind it reads, CustomResourceDefinitions. It cannot read another namespace's
// Secrets (jwt-auth's signing keys, the backends' certificates).

// AmbassadorCRDRules and AmbassadorWatchRules are the emissary-ingress chart's ClusterRole
// "<name>-crd" and its Role "<name>" under scope.singleNamespace (templates/rbac.yaml of the
// pinned chart, no PodSecurityPolicies); a test compares them with the chart's template.
func AmbassadorCRDRules() []map[string][]string {
	return []map[string][]string{
		{"apiGroups": {"apiextensions.k8s.io"}, "resources": {"customresourcedefinitions"}, "verbs": {"get", "list", "watch", "delete"}},
	}
}

func AmbassadorWatchRules() []map[string][]string {
	return []map[string][]string{
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

func policyRules(rules []map[string][]string) rbacv1.PolicyRuleArray {
	var out rbacv1.PolicyRuleArray
	for _, r := range rules {
		out = append(out, rbacv1.PolicyRuleArgs{
			ApiGroups: pulumi.ToStringArray(r["apiGroups"]),
			Resources: pulumi.ToStringArray(r["resources"]),
			Verbs:     pulumi.ToStringArray(r["verbs"]),
		})
	}
	return out
}

// newAmbassadorRBAC binds the CRD rules cluster-wide and the watch rules in Ambassador's namespace
// to the chart's ServiceAccount (named after the release). The release depends on both bindings,
// so destroy removes Ambassador before its rights.
func newAmbassadorRBAC(ctx *pulumi.Context, name string, naming AmbassadorNaming, namespace pulumi.StringInput, opts ...pulumi.ResourceOption) ([]pulumi.Resource, error) {
	labels := pulumi.ToStringMap(naming.PodLabels)
	account := rbacv1.SubjectArray{rbacv1.SubjectArgs{
		Kind: pulumi.String("ServiceAccount"), Name: pulumi.String(naming.Release), Namespace: namespace,
	}}
	clusterRole, err := rbacv1.NewClusterRole(ctx, name+"-rbac", &rbacv1.ClusterRoleArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(naming.Release), Labels: labels},
		Rules:    policyRules(AmbassadorCRDRules()),
	}, opts...)
	if err != nil {
		return nil, err
	}
	clusterBinding, err := rbacv1.NewClusterRoleBinding(ctx, name+"-rbac", &rbacv1.ClusterRoleBindingArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(naming.Release), Labels: labels},
		RoleRef: rbacv1.RoleRefArgs{
			ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("ClusterRole"), Name: clusterRole.Metadata.Name().Elem(),
		},
		Subjects: account,
	}, opts...)
	if err != nil {
		return nil, err
	}
	role, err := rbacv1.NewRole(ctx, name+"-watch", &rbacv1.RoleArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(naming.Release), Namespace: namespace, Labels: labels},
		Rules:    policyRules(AmbassadorWatchRules()),
	}, opts...)
	if err != nil {
		return nil, err
	}
	binding, err := rbacv1.NewRoleBinding(ctx, name+"-watch", &rbacv1.RoleBindingArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(naming.Release), Namespace: namespace, Labels: labels},
		RoleRef: rbacv1.RoleRefArgs{
			ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("Role"), Name: role.Metadata.Name().Elem(),
		},
		Subjects: account,
	}, opts...)
	if err != nil {
		return nil, err
	}
	return []pulumi.Resource{clusterBinding, binding}, nil
}
