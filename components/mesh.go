package components

import (
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Upstream mTLS modes (ztedge:upstreamMtls): whose certificates secure Ambassador → backend traffic.
const (
	UpstreamMtlsPKI    = "pki"    // ztedge's own upstream CA (components/pki.go)
	UpstreamMtlsIstio  = "istio"  // Istio workload certificates (components/istio.go)
	UpstreamMtlsConsul = "consul" // Consul Connect leaf certificates (components/consul.go)
)

// UpstreamMtlsModes lists the modes in documentation order.
var UpstreamMtlsModes = []string{UpstreamMtlsPKI, UpstreamMtlsIstio, UpstreamMtlsConsul}

// UpstreamMesh is a mesh's side of the backend routes: the TLSContext every backend Mapping
// names in place of the PKI's "upstream" one, what that TLSContext waits for (the certificates it
// loads must exist first), and how a backend's Mapping addresses it inside the mesh.
type UpstreamMesh struct {
	TLSContext string
	Spec       map[string]any
	// After: the TLSContext is created once these exist (the certificates' source).
	After []pulumi.Resource
	// Route edits a backend Mapping spec (service address, resolver) for the mesh; nil keeps it.
	Route func(b Backend, spec map[string]any)
}

// meshObject registers one custom resource of a mesh (Istio, Consul) with a fixed name.
func meshObject(ctx *pulumi.Context, logical, apiVersion, kind, name string, namespace pulumi.StringInput, spec map[string]any, opts ...pulumi.ResourceOption) (*apiextensions.CustomResource, error) {
	return apiextensions.NewCustomResource(ctx, logical, &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String(apiVersion),
		Kind:       pulumi.String(kind),
		Metadata: &metav1.ObjectMetaArgs{
			Name:      pulumi.String(name),
			Namespace: namespace,
			Labels:    pulumi.StringMap{"app.kubernetes.io/part-of": pulumi.String("ztedge"), "app.kubernetes.io/managed-by": pulumi.String("pulumi")},
		},
		OtherFields: kubernetes.UntypedArgs{"spec": spec},
	}, opts...)
}

// metaFor is a NetworkPolicy's metadata from the policy data (networkpolicy.go).
func metaFor(p policy) metav1.ObjectMetaArgs {
	return metav1.ObjectMetaArgs{Name: pulumi.String(p.name), Namespace: p.namespace}
}
