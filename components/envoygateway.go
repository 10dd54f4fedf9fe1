package components

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	helmv4 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v4"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Envoy Gateway, the second engine (ztedge:engine envoy-gateway): its two charts, the GatewayClass
// and the EnvoyProxy that shapes the data plane. The edge's routes and policies are in
// gatewayapi_edge.go. Every name and number here is from Envoy Gateway v1.9.1 (the chart in
// ../shared/charts, the CRDs it bundles, and the module's internal/ packages where noted).
const (
	// EnvoyGatewayVersion is the pinned release of both charts (and of egctl, e2e/tools/egctl).
	EnvoyGatewayVersion = "v1.9.1"
	// EnvoyGatewayControllerName is the chart's config.envoyGateway.gateway.controllerName.
	EnvoyGatewayControllerName = "gateway.envoyproxy.io/gatewayclass-controller"
	// EnvoyGatewayClassName, GatewayName and EnvoyProxyName name ztedge's objects.
	EnvoyGatewayClassName = "ztedge"
	GatewayName           = "edge"
	EnvoyProxyName        = "edge"
	// EnvoyGatewayProxyService is the data plane's Service (EnvoyProxy envoyService.name): fixed,
	// so the load balancer and the server certificate can name it.
	EnvoyGatewayProxyService = "envoy-edge"
	// GatewayHTTPSPort is the Gateway listener's port; Envoy Gateway shifts ports below 1024 by
	// 10000 for the container (internal/gatewayapi/translator.go wellKnownPortShift), so the
	// pods listen on EnvoyGatewayContainerPort.
	GatewayHTTPSPort          = 443
	EnvoyGatewayContainerPort = GatewayHTTPSPort + 10000
	// EnvoyGatewayReadyPort and EnvoyGatewayReadyPath are the proxy's readiness endpoint
	// (internal/xds/bootstrap/bootstrap.go EnvoyReadinessPort, EnvoyReadinessPath).
	EnvoyGatewayReadyPort = 19003
	EnvoyGatewayReadyPath = "/ready"
	// EnvoyGatewayXDSPort is the controller's xDS server the proxies connect to (chart deployment.ports grpc).
	EnvoyGatewayXDSPort = 18000

	GatewayAPIGroup   = "gateway.networking.k8s.io"
	EnvoyGatewayGroup = "gateway.envoyproxy.io"
)

// EnvoyGatewayProxyLabels select the edge's Envoy pods: the labels Envoy Gateway puts on every
// proxy (internal/infrastructure/kubernetes/proxy/resource.go EnvoyAppLabel) and the owning
// Gateway's (internal/gatewayapi/translator.go OwningGateway*Label).
func EnvoyGatewayProxyLabels(namespace string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":                         "envoy",
		"app.kubernetes.io/component":                    "proxy",
		"app.kubernetes.io/managed-by":                   "envoy-gateway",
		"gateway.envoyproxy.io/owning-gateway-name":      GatewayName,
		"gateway.envoyproxy.io/owning-gateway-namespace": namespace,
	}
}

// EnvoyGatewayControllerLabels select the controller's pods (the chart's selector labels).
var EnvoyGatewayControllerLabels = map[string]string{"control-plane": "envoy-gateway", "app.kubernetes.io/instance": "envoy-gateway"}

// EnvoyGatewayCRDValues are the gateway-crds-helm values: the Gateway API standard channel
// (Gateway, HTTPRoute, ReferenceGrant, BackendTLSPolicy are all standard in v1.6.1) and Envoy
// Gateway's own CRDs. Both switches are off by default in the chart.
func EnvoyGatewayCRDValues() map[string]any {
	return map[string]any{"crds": map[string]any{
		"gatewayAPI":   map[string]any{"enabled": true, "channel": "standard"},
		"envoyGateway": map[string]any{"enabled": true},
	}}
}

// hookDeletePolicy makes Helm delete a hook's objects when the hook succeeded (and any left by a
// failed run before it runs again).
var hookDeletePolicy = map[string]any{"helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"}

// EnvoyGatewayValues are the gateway-helm values: no CRDs (gateway-crds-helm installs them
// first), the controller's replicas and the chart's own hardened defaults otherwise.
func EnvoyGatewayValues(replicas int) map[string]any {
	return map[string]any{
		"crds": map[string]any{"enabled": false},
		// The topology injector is a mutating webhook the API server would call in the edge
		// namespace (default-deny); the proxies do not need zone labels.
		"topologyInjector": map[string]any{"enabled": false},
		"deployment":       map[string]any{"replicas": min(replicas, 2)},
		// The certgen hook's Role may get, create and update every Secret of the edge namespace
		// (jwt-auth's signing keys included), and Helm never deletes a hook object by itself:
		// delete the Job and its RBAC once they have done their work.
		"certgen": map[string]any{
			"job":  map[string]any{"annotations": hookDeletePolicy},
			"rbac": map[string]any{"annotations": hookDeletePolicy},
		},
		// Proxies find the controller in the release namespace: the edge namespace.
		"config": map[string]any{"envoyGateway": map[string]any{
			"gateway":  map[string]any{"controllerName": EnvoyGatewayControllerName},
			"provider": map[string]any{"type": "Kubernetes"},
			"logging":  map[string]any{"level": map[string]any{"default": "info"}},
		}},
	}
}

// EnvoyProxySpec is the data plane: its Deployment (replicas, resources, pod security), its
// Service (ClusterIP: the load balancer, or the local Service, reaches it; ztedge owns exposure),
// PROXY protocol is a ClientTrafficPolicy setting, and the client certificate Envoy presents to
// every backend (upstream mTLS, TLS 1.3 only).
func EnvoyProxySpec(namespace string, replicas int, resources map[string]map[string]string, upstreamSecret string) map[string]any {
	container := map[string]any{}
	if len(resources) > 0 {
		container["resources"] = resourcesValues(resources)
	}
	return map[string]any{
		"provider": map[string]any{
			"type": "Kubernetes",
			"kubernetes": map[string]any{
				"envoyDeployment": map[string]any{
					"replicas": replicas,
					"pod": map[string]any{"securityContext": map[string]any{
						"runAsNonRoot": true, "seccompProfile": map[string]any{"type": "RuntimeDefault"},
					}},
					"container": container,
				},
				"envoyService": map[string]any{"name": EnvoyGatewayProxyService, "type": "ClusterIP"},
			},
		},
		"backendTLS": map[string]any{
			"clientCertificateRef": map[string]any{"kind": "Secret", "name": upstreamSecret, "namespace": namespace},
			"minVersion":           "1.3",
			"maxVersion":           "1.3",
		},
	}
}

// GatewayClassSpec binds the class to Envoy Gateway's controller and to ztedge's EnvoyProxy.
func GatewayClassSpec(namespace string) map[string]any {
	return map[string]any{
		"controllerName": EnvoyGatewayControllerName,
		"parametersRef": map[string]any{
			"group": EnvoyGatewayGroup, "kind": "EnvoyProxy", "name": EnvoyProxyName, "namespace": namespace,
		},
	}
}

// EnvoyGatewayArgs configures the engine's install.
type EnvoyGatewayArgs struct {
	// Namespace is the edge namespace (Ambassador's for the Emissary engine): the controller,
	// the proxies, jwt-auth and every Gateway API object live there.
	Namespace string
	// ChartRepository holds gateway-crds-helm and gateway-helm (oci://, https:// or a directory).
	ChartRepository string
	Replicas        int
	Resources       map[string]map[string]string
	// UpstreamSecret is the client certificate Envoy presents to backends (Pki UpstreamSecretName).
	UpstreamSecret SecretRef
	DependsOn      []pulumi.Resource
}

// EnvoyGateway is the engine's install: CRDs, controller, GatewayClass, EnvoyProxy.
type EnvoyGateway struct {
	pulumi.ResourceState

	NamespaceName pulumi.StringOutput `pulumi:"namespace"`
	// CRDs is the gateway-crds-helm chart; every Gateway API object waits for it.
	CRDs pulumi.Resource
	// Release is the controller (gateway-helm); the Gateway waits for it.
	Release      *helmv3.Release
	GatewayClass *apiextensions.CustomResource
	EnvoyProxy   *apiextensions.CustomResource
}

func (a *EnvoyGatewayArgs) validate() error {
	if a.Namespace == "" || a.ChartRepository == "" || a.Replicas < 1 {
		return fmt.Errorf("envoy-gateway: Namespace, ChartRepository and Replicas (≥1) are required")
	}
	return nil
}

// NewEnvoyGateway installs Envoy Gateway into the edge namespace. The namespace's CRDs come first,
// as their own release: the controller's release would otherwise race its own types.
func NewEnvoyGateway(ctx *pulumi.Context, name string, args *EnvoyGatewayArgs, opts ...pulumi.ResourceOption) (*EnvoyGateway, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	c := &EnvoyGateway{}
	child, err := register(ctx, "ztedge:edge:EnvoyGateway", name, c, opts)
	if err != nil {
		return nil, err
	}
	// The proxies and the controller run as 65532 with RuntimeDefault seccomp and no privileges
	// (the chart's securityContext values, the proxy's defaults): "restricted" holds.
	ns, err := newNamespace(ctx, args.Namespace, podSecurityLabels(PodSecurityRestricted), child)
	if err != nil {
		return nil, err
	}
	c.NamespaceName = ns.Metadata.Name().Elem()
	waitFor := pulumi.DependsOn(args.DependsOn)
	// Rendered here and applied object by object, server-side: as a Helm release the CRDs
	// (5 MB, envoyproxies alone 1.4 MB) would not fit the release's 1 MiB Secret.
	crds, err := helmv4.NewChart(ctx, name+"-crds", &helmv4.ChartArgs{
		Name:      pulumi.String("envoy-gateway-crds"),
		Chart:     chartRef(args.ChartRepository, "gateway-crds-helm", EnvoyGatewayVersion),
		Version:   pulumi.String(EnvoyGatewayVersion),
		Namespace: c.NamespaceName,
		Values:    pulumi.ToMap(EnvoyGatewayCRDValues()),
	}, child, waitFor)
	if err != nil {
		return nil, err
	}
	c.CRDs = crds
	c.Release, err = helmv3.NewRelease(ctx, name, &helmv3.ReleaseArgs{
		Name:      pulumi.String("envoy-gateway"),
		Chart:     chartRef(args.ChartRepository, "gateway-helm", EnvoyGatewayVersion),
		Version:   pulumi.String(EnvoyGatewayVersion),
		Namespace: c.NamespaceName,
		Values:    pulumi.ToMap(EnvoyGatewayValues(args.Replicas)),
		// The CRDs are the other release's; the certgen Job is a hook, waited for like the pods.
		SkipCrds: pulumi.Bool(true),
		Atomic:   pulumi.Bool(true), CleanupOnFail: pulumi.Bool(true), Timeout: pulumi.Int(600), MaxHistory: pulumi.Int(10),
	}, child, waitFor, pulumi.DependsOn([]pulumi.Resource{crds}))
	if err != nil {
		return nil, err
	}
	object := func(kind, group, version, objName string, namespaced bool, spec map[string]any, after ...pulumi.Resource) (*apiextensions.CustomResource, error) {
		after = slices.DeleteFunc(after, func(r pulumi.Resource) bool { return r == nil })
		return newGatewayObject(ctx, name+"-"+strings.ToLower(kind)+"-"+objName, group+"/"+version, kind, objName, namespaced, c.NamespaceName, spec,
			child, pulumi.DependsOn(append([]pulumi.Resource{crds}, after...)))
	}
	c.EnvoyProxy, err = object("EnvoyProxy", EnvoyGatewayGroup, "v1alpha1", EnvoyProxyName, true,
		EnvoyProxySpec(args.Namespace, args.Replicas, args.Resources, args.UpstreamSecret.Name), args.UpstreamSecret.Resource)
	if err != nil {
		return nil, err
	}
	c.GatewayClass, err = object("GatewayClass", GatewayAPIGroup, "v1", EnvoyGatewayClassName, false, GatewayClassSpec(args.Namespace), c.EnvoyProxy, c.Release)
	if err != nil {
		return nil, err
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"namespace": c.NamespaceName, "release": c.Release.Name})
}

// newGatewayObject registers one Gateway API or Envoy Gateway object with a fixed name (policies
// and routes refer to each other by name). namespaced false: a cluster-scoped object (GatewayClass).
func newGatewayObject(ctx *pulumi.Context, logical, apiVersion, kind, name string, namespaced bool, namespace pulumi.StringInput, spec map[string]any, opts ...pulumi.ResourceOption) (*apiextensions.CustomResource, error) {
	meta := &metav1.ObjectMetaArgs{
		Name:   pulumi.String(name),
		Labels: pulumi.StringMap{"app.kubernetes.io/part-of": pulumi.String("ztedge"), "app.kubernetes.io/managed-by": pulumi.String("pulumi")},
	}
	if namespaced {
		meta.Namespace = namespace
	}
	return apiextensions.NewCustomResource(ctx, logical, &apiextensions.CustomResourceArgs{
		ApiVersion:  pulumi.String(apiVersion),
		Kind:        pulumi.String(kind),
		Metadata:    meta,
		OtherFields: kubernetes.UntypedArgs{"spec": spec},
	}, opts...)
}
