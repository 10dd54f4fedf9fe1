package components

import (
	"fmt"
	"sort"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Pod Security Standards levels, enforced per namespace by the built-in admission controller.
const (
	PodSecurityRestricted = "restricted"
	PodSecurityBaseline   = "baseline"
)

// BackendNamespaceLabel marks the namespaces ztedge creates for backends.
const BackendNamespaceLabel = "ztedge.io/backend"

// podSecurityLabels enforces level; warn and audit are always restricted, so a baseline namespace
// still reports what would break under restricted.
func podSecurityLabels(level string) map[string]string {
	return map[string]string{
		"pod-security.kubernetes.io/enforce": level,
		"pod-security.kubernetes.io/warn":    PodSecurityRestricted,
		"pod-security.kubernetes.io/audit":   PodSecurityRestricted,
	}
}

// newNamespace creates a namespace with a fixed name (other objects refer to it by name).
func newNamespace(ctx *pulumi.Context, name string, labels map[string]string, opts ...pulumi.ResourceOption) (*corev1.Namespace, error) {
	return corev1.NewNamespace(ctx, name, &corev1.NamespaceArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(name), Labels: pulumi.ToStringMap(labels)},
	}, opts...)
}

// BackendNamespacesArgs lists the backends whose namespaces ztedge manages.
type BackendNamespacesArgs struct {
	Backends []Backend
	// Labels are added to ztedge's (a service mesh's injection label).
	Labels map[string]string
}

// BackendNamespaces are the namespaces of the backends, labelled for Pod Security (restricted) and
// for the NetworkPolicies. They hold the backends themselves, which ztedge does not own, so each is
// a NamespacePatch (server-side apply of ztedge's labels): `up` creates the namespace or adopts an
// existing one (a namespace kept by an earlier destroy, or the team's own), and destroy removes
// only ztedge's labels and leaves the namespace and everything in it.
type BackendNamespaces struct {
	pulumi.ResourceState

	// Names maps each namespace name to an output that resolves once the namespace exists; use it
	// as metadata.namespace so what goes into the namespace waits for it.
	Names map[string]pulumi.StringOutput
}

// BackendNamespaceNames returns the distinct namespaces of the backends, sorted.
func BackendNamespaceNames(backends []Backend) []string {
	seen := map[string]bool{}
	var out []string
	for _, b := range backends {
		if !seen[b.Namespace] {
			seen[b.Namespace] = true
			out = append(out, b.Namespace)
		}
	}
	sort.Strings(out)
	return out
}

// NewBackendNamespaces creates one namespace per distinct backend namespace.
func NewBackendNamespaces(ctx *pulumi.Context, name string, args *BackendNamespacesArgs, opts ...pulumi.ResourceOption) (*BackendNamespaces, error) {
	for _, b := range args.Backends {
		if b.Namespace == "" {
			return nil, fmt.Errorf("backend-namespaces: backend %q has no namespace", b.Name)
		}
	}
	c := &BackendNamespaces{Names: map[string]pulumi.StringOutput{}}
	child, err := register(ctx, "ztedge:edge:BackendNamespaces", name, c, opts)
	if err != nil {
		return nil, err
	}
	labels := podSecurityLabels(PodSecurityRestricted)
	labels[BackendNamespaceLabel] = "true"
	for k, v := range args.Labels {
		labels[k] = v
	}
	outputs := pulumi.Map{}
	for _, ns := range BackendNamespaceNames(args.Backends) {
		n, err := corev1.NewNamespacePatch(ctx, ns, &corev1.NamespacePatchArgs{
			Metadata: metav1.ObjectMetaPatchArgs{Name: pulumi.String(ns), Labels: pulumi.ToStringMap(labels)},
		}, child)
		if err != nil {
			return nil, err
		}
		c.Names[ns] = n.Metadata.Name().Elem()
		outputs[ns] = c.Names[ns]
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"names": outputs})
}
