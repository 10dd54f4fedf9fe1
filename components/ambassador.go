package components

import (
	"fmt"
	"path/filepath"
	"strings"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	yamlv2 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/yaml/v2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Ambassador editions.
const (
	EditionEmissary  = "emissary"   // Emissary-ingress 4.x, open source
	EditionEdgeStack = "edge-stack" // Ambassador Edge Stack (licensed)
)

// EdgeStackLicenseSecretName is the Secret Edge Stack reads its license from (data key
// "license-key"): Emissary's default for AMBASSADOR_AES_SECRET_NAME (cmd/entrypoint/env.go), in
// Ambassador's namespace. Using the default name means no chart env plumbing is needed.
const EdgeStackLicenseSecretName = "ambassador-edge-stack"

// albReadinessGateLabel makes the load balancer controller's pod webhook add a readiness gate to
// pods behind a target group: a new Ambassador pod counts as ready only once the load balancer
// sees it healthy, so rolling updates do not drop traffic.
const albReadinessGateLabel = "elbv2.k8s.aws/pod-readiness-gate-inject"

// AmbassadorNaming is how the chart names what it creates for an edition. Both charts name the
// Deployment and Service after the release when the release name contains the chart name
// (_helpers.tpl "ambassador.fullname"); ztedge also sets nameOverride and fullnameOverride, so
// the names do not depend on that rule.
type AmbassadorNaming struct {
	Release     string
	ServiceName string
	// PodLabels is the Deployment's selector: app.kubernetes.io/name and app.kubernetes.io/instance.
	PodLabels map[string]string
}

// AmbassadorNamesFor returns the release, Service and pod labels of an edition.
func AmbassadorNamesFor(edition string) AmbassadorNaming {
	name := "emissary-ingress"
	if edition == EditionEdgeStack {
		name = "edge-stack"
	}
	return AmbassadorNaming{
		Release:     name,
		ServiceName: name,
		PodLabels:   map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name},
	}
}

// AmbassadorArgs configures Emissary-ingress or Ambassador Edge Stack.
type AmbassadorArgs struct {
	Edition   string
	Namespace string

	EmissaryChartRepository string // oci://ghcr.io/emissary-ingress
	EmissaryVersion         string // chart version = app version (4.x)

	EdgeStackChartRepository string // https://app.getambassador.io or an oci:// registry
	EdgeStackChartVersion    string
	EdgeStackCrdsURL         string // aes-crds.yaml of the same version
	EdgeStackLicenseKey      string // stored only in a Secret, as a Pulumi secret

	Replicas  int
	Resources map[string]map[string]string // requests/limits → cpu/memory → quantity
	// Module is merged into the config of the `ambassador` Module. The chart renders that Module
	// (values key "module"); there may be only one per namespace, so create no other.
	Module map[string]any

	// DependsOn is what the releases wait for: the node group, and the load balancer controller
	// (its pod webhook injects the readiness gates, and fails closed while it is down).
	DependsOn []pulumi.Resource

	// PodValues are merged into the Ambassador pod values (the emissary-ingress chart's, or Edge
	// Stack's subchart's): a service mesh's sidecar annotations, volumes and environment.
	PodValues map[string]any
	// MetricsRelayImage, when set, adds the metrics relay sidecar (the jwt-auth image) that
	// Prometheus scrapes instead of Emissary's admin port (AmbassadorMetricsRelayValues).
	MetricsRelayImage string
	// BeforePods creates what Ambassador's pods need in their namespace before they start (a
	// mesh's Sidecar, a token Secret); the release waits for what it returns.
	BeforePods func(namespace pulumi.StringOutput) ([]pulumi.Resource, error)
}

// Ambassador is Ambassador's namespace, its CRDs and the release that runs it.
type Ambassador struct {
	pulumi.ResourceState

	Edition string
	// Namespace is the namespace's name; NamespaceName is the same, resolved once it exists: use
	// NamespaceName as metadata.namespace so objects wait for the namespace.
	Namespace     string
	NamespaceName pulumi.StringOutput `pulumi:"namespace"`
	// CRDs is what every getambassador.io object must depend on: the CRD release (Emissary), or
	// aes-crds.yaml with the emissary-apiext conversion webhook Available (Edge Stack).
	CRDs    pulumi.Resource
	Release *helmv3.Release
	// ServiceName is the Service in front of the Ambassador pods (ports 80→8080, 443→8443).
	ServiceName string
	// PodLabels selects the Ambassador pods (NetworkPolicies, load balancer Services).
	PodLabels map[string]string
	// EdgeStackRedis is Edge Stack's bundled Redis (its rate limiting needs it); nil on Emissary.
	EdgeStackRedis *PodPort
}

func (a *AmbassadorArgs) validate() error {
	var missing []string
	switch a.Edition {
	case EditionEmissary:
		if a.EmissaryChartRepository == "" || a.EmissaryVersion == "" {
			missing = append(missing, "EmissaryChartRepository and EmissaryVersion")
		}
	case EditionEdgeStack:
		if a.EdgeStackChartRepository == "" || a.EdgeStackChartVersion == "" || a.EdgeStackCrdsURL == "" || a.EdgeStackLicenseKey == "" {
			missing = append(missing, "EdgeStackChartRepository, EdgeStackChartVersion, EdgeStackCrdsURL and EdgeStackLicenseKey")
		}
	default:
		return fmt.Errorf("ambassador: edition %q is not %s or %s", a.Edition, EditionEmissary, EditionEdgeStack)
	}
	if a.Namespace == "" {
		missing = append(missing, "Namespace")
	}
	if a.Replicas < 1 {
		missing = append(missing, "Replicas ≥ 1")
	}
	if len(missing) > 0 {
		return fmt.Errorf("ambassador (%s): needs %s", a.Edition, strings.Join(missing, "; "))
	}
	return nil
}

// EmissaryCRDValues are the values of the emissary-crds-chart: no legacy getambassador.io
// versions, so no conversion webhook to run or wait for, and v3alpha1 is the stored version.
func EmissaryCRDValues() map[string]any {
	return map[string]any{"enableLegacyVersions": false}
}

// ambassadorPodValues are the emissary-ingress chart values ztedge sets, for both editions (Edge
// Stack passes them to its emissary-ingress subchart).
func ambassadorPodValues(n AmbassadorNaming, replicas int, resources map[string]map[string]string, module map[string]any) map[string]any {
	selector := map[string]any{"matchLabels": toAnyMap(n.PodLabels)}
	moduleConfig := MergeValues(map[string]any{
		// No diagnostics UI, and none reachable from outside the pod either.
		"diagnostics": map[string]any{"enabled": false, "allow_non_local": false},
	}, module)
	values := map[string]any{
		"nameOverride":     n.Release,
		"fullnameOverride": n.Release,
		"replicaCount":     replicas,
		"resources":        resourcesValues(resources),
		// Spread replicas over nodes (preferred, so a small cluster still schedules) and zones.
		"affinity": map[string]any{"podAntiAffinity": map[string]any{
			"preferredDuringSchedulingIgnoredDuringExecution": []any{map[string]any{
				"weight":          100,
				"podAffinityTerm": map[string]any{"topologyKey": "kubernetes.io/hostname", "labelSelector": selector},
			}},
		}},
		"topologySpreadConstraints": []any{map[string]any{
			"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector,
		}},
		// The load balancer reaches the pods by IP (ALB Ingress, or the load balancer layer's own
		// NLB Service), so the chart's Service stays internal.
		"service":      map[string]any{"type": "ClusterIP"},
		"adminService": map[string]any{"create": true},
		// ztedge creates the Listeners (ports, security model, l7Depth).
		"createDefaultListeners": false,
		// Emissary reads and watches its own namespace only (ambassador_rbac.go says why).
		"scope": map[string]any{"singleNamespace": true},
		// Routes come only from ztedge's Mappings, not from Kubernetes Ingress objects.
		"ingressClassResource": map[string]any{"enabled": false},
		"module":               moduleConfig,
		// No usage reports to metriton.datawire.io: the edge calls out only where ztedge says.
		"env": map[string]any{"SCOUT_DISABLE": "1"},
		// Pod Security "restricted": the chart already runs as UID 8888 without privilege escalation.
		"security": map[string]any{
			"podSecurityContext": map[string]any{
				"runAsNonRoot": true, "runAsUser": 8888, "seccompProfile": map[string]any{"type": "RuntimeDefault"},
			},
			"containerSecurityContext": map[string]any{
				"allowPrivilegeEscalation": false, "capabilities": map[string]any{"drop": []any{"ALL"}},
			},
		},
	}
	if replicas >= 2 {
		// Node drains keep one pod serving. (With one replica a PDB would block drains.)
		values["podDisruptionBudget"] = map[string]any{"minAvailable": 1}
	}
	return values
}

// EmissaryValues are the emissary-ingress chart values (checked against the chart in tests).
func EmissaryValues(replicas int, resources map[string]map[string]string, module map[string]any) map[string]any {
	values := ambassadorPodValues(AmbassadorNamesFor(EditionEmissary), replicas, resources, module)
	// 4.x has no apiext webhook unless the CRD chart enables legacy versions; nothing to wait for.
	values["waitForApiext"] = map[string]any{"enabled": false}
	// ztedge grants the chart's permissions itself, without an aggregated ClusterRole
	// (ambassador_rbac.go says why).
	values["rbac"] = map[string]any{"create": false}
	return values
}

// EdgeStackValues are the edge-stack chart values (checked against the chart in tests).
func EdgeStackValues(replicas int, resources map[string]map[string]string, module map[string]any) map[string]any {
	sub := ambassadorPodValues(AmbassadorNamesFor(EditionEdgeStack), replicas, resources, module)
	// No link to Ambassador Cloud: the edge sends nothing out that ztedge did not ask for.
	sub["agent"] = map[string]any{"enabled": false}
	return map[string]any{
		"emissary-ingress": sub,
		// ztedge creates the license Secret under the name Edge Stack looks for by default.
		"licenseKey": map[string]any{"createSecret": false},
		// ztedge's jwt-auth is the AuthService; only one may exist.
		"authService": map[string]any{"create": false},
		// Edge Stack's RateLimit resources are served by its built-in rate-limit service.
		"rateLimit": map[string]any{"create": true},
		// The developer portal's routes would publish API docs on the public hostname.
		"createDevPortalMappings": false,
	}
}

// NewAmbassador creates the namespace, the CRDs and then the Ambassador release.
func NewAmbassador(ctx *pulumi.Context, name string, args *AmbassadorArgs, opts ...pulumi.ResourceOption) (*Ambassador, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	naming := AmbassadorNamesFor(args.Edition)
	c := &Ambassador{Edition: args.Edition, Namespace: args.Namespace, ServiceName: naming.ServiceName, PodLabels: naming.PodLabels}
	child, err := register(ctx, "ztedge:ambassador:Ambassador", name, c, opts)
	if err != nil {
		return nil, err
	}

	// Emissary runs as non-root without privileges, so its namespace (shared with jwt-auth and the
	// rate-limit service) enforces "restricted". Edge Stack's chart also runs its bundled Redis,
	// which starts as root, and a kubectl init container without a seccomp profile: "baseline".
	level := PodSecurityRestricted
	if args.Edition == EditionEdgeStack {
		level = PodSecurityBaseline
	}
	labels := podSecurityLabels(level)
	labels[albReadinessGateLabel] = "enabled"
	ns, err := newNamespace(ctx, args.Namespace, labels, child)
	if err != nil {
		return nil, err
	}
	c.NamespaceName = ns.Metadata.Name().Elem()
	waitFor := pulumi.DependsOn(args.DependsOn)
	var releaseDeps []pulumi.Resource
	if args.BeforePods != nil {
		before, err := args.BeforePods(c.NamespaceName)
		if err != nil {
			return nil, err
		}
		releaseDeps = append(releaseDeps, before...)
	}

	podValues := args.PodValues
	if args.MetricsRelayImage != "" {
		podValues = MergeValues(podValues, AmbassadorMetricsRelayValues(args.MetricsRelayImage))
	}
	var values map[string]any
	var chart pulumi.StringInput
	var repo helmv3.RepositoryOptsPtrInput
	var version string
	switch args.Edition {
	case EditionEmissary:
		crds, err := helmv3.NewRelease(ctx, name+"-crds", &helmv3.ReleaseArgs{
			Name:      pulumi.String("emissary-crds"),
			Chart:     chartRef(args.EmissaryChartRepository, "emissary-crds-chart", args.EmissaryVersion),
			Version:   pulumi.String(args.EmissaryVersion),
			Namespace: c.NamespaceName,
			Values:    pulumi.ToMap(EmissaryCRDValues()),
			Atomic:    pulumi.Bool(true), CleanupOnFail: pulumi.Bool(true), Timeout: pulumi.Int(300), MaxHistory: pulumi.Int(10),
		}, child, waitFor)
		if err != nil {
			return nil, err
		}
		c.CRDs = crds
		rbac, err := newAmbassadorRBAC(ctx, name, naming, c.NamespaceName, child)
		if err != nil {
			return nil, err
		}
		releaseDeps = append(releaseDeps, rbac...)
		values = MergeValues(EmissaryValues(args.Replicas, args.Resources, args.Module), podValues)
		chart, version = chartRef(args.EmissaryChartRepository, "emissary-ingress", args.EmissaryVersion), args.EmissaryVersion
	case EditionEdgeStack:
		license, err := corev1.NewSecret(ctx, name+"-license", &corev1.SecretArgs{
			Metadata:   metav1.ObjectMetaArgs{Name: pulumi.String(EdgeStackLicenseSecretName), Namespace: c.NamespaceName},
			Type:       pulumi.String("Opaque"),
			StringData: pulumi.StringMap{"license-key": pulumi.ToSecret(pulumi.String(args.EdgeStackLicenseKey)).(pulumi.StringOutput)},
		}, child)
		if err != nil {
			return nil, err
		}
		// yaml/v2 (not v1): the provider fetches the URL and creates each object with its await
		// logic, so this resource is done only when the emissary-apiext Deployment is Available;
		// v1 would download the file inside the program.
		crds, err := yamlv2.NewConfigFile(ctx, name+"-crds", &yamlv2.ConfigFileArgs{File: pulumi.String(args.EdgeStackCrdsURL)}, child, waitFor)
		if err != nil {
			return nil, err
		}
		c.CRDs = crds
		// The chart's aes-redis.yaml: Deployment and Service "<fullname>-redis" on 6379.
		c.EdgeStackRedis = &PodPort{Labels: map[string]string{"app.kubernetes.io/name": naming.Release + "-redis", "app.kubernetes.io/instance": naming.Release}, Port: 6379}
		releaseDeps = append(releaseDeps, license)
		values = EdgeStackValues(args.Replicas, args.Resources, args.Module)
		values["emissary-ingress"] = MergeValues(values["emissary-ingress"].(map[string]any), podValues)
		version = args.EdgeStackChartVersion
		chart, repo = chartRef(args.EdgeStackChartRepository, "edge-stack", version), helmRepository(args.EdgeStackChartRepository)
	}

	release, err := helmv3.NewRelease(ctx, name, &helmv3.ReleaseArgs{
		Name:           pulumi.String(naming.Release),
		Chart:          chart,
		RepositoryOpts: repo,
		Version:        pulumi.String(version),
		Namespace:      c.NamespaceName,
		Values:         pulumi.ToMap(values),
		// Wait until Ambassador's pods are ready; roll back a failed upgrade.
		Atomic: pulumi.Bool(true), CleanupOnFail: pulumi.Bool(true), Timeout: pulumi.Int(600), MaxHistory: pulumi.Int(10),
	}, child, waitFor, pulumi.DependsOn(append(releaseDeps, c.CRDs)))
	if err != nil {
		return nil, err
	}
	c.Release = release
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"namespace": c.NamespaceName, "release": release.Name})
}

// chartRef addresses a chart: in an OCI registry directly (oci://…/<chart>), in a Helm repository
// by name (with helmRepository), or in a local directory as its archive <chart>-<version>.tgz.
func chartRef(source, chart, version string) pulumi.StringInput {
	switch {
	case strings.HasPrefix(source, "oci://"):
		return pulumi.String(strings.TrimSuffix(source, "/") + "/" + chart)
	case IsChartDir(source):
		return pulumi.String(filepath.Join(source, chart+"-"+version+".tgz"))
	}
	return pulumi.String(chart)
}

// helmRepository is the repositoryOpts of a chart in an https:// Helm repository (none otherwise).
func helmRepository(source string) helmv3.RepositoryOptsPtrInput {
	if strings.HasPrefix(source, "oci://") || IsChartDir(source) {
		return nil
	}
	return helmv3.RepositoryOptsArgs{Repo: pulumi.String(source)}
}

// IsChartDir reports whether a chart source is a local directory of chart archives (not an
// oci:// registry or an http(s):// repository).
func IsChartDir(source string) bool {
	return source != "" && !strings.Contains(source, "://")
}

// MergeValues returns base with over merged in, maps key by key (as Helm merges values).
func MergeValues(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		b, bok := out[k].(map[string]any)
		o, ook := v.(map[string]any)
		if bok && ook {
			v = MergeValues(b, o)
		}
		out[k] = v
	}
	return out
}

// resourcesValues turns requests/limits into chart values.
func resourcesValues(r map[string]map[string]string) map[string]any {
	out := map[string]any{}
	for kind, quantities := range r {
		out[kind] = toAnyMap(quantities)
	}
	return out
}

func toAnyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
