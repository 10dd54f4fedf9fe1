package components

import (
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"sigs.k8s.io/yaml"
)

// Monitoring modes (ztedge:monitoring).
const (
	MonitoringOff      = "off"
	MonitoringExisting = "existing" // an operator already runs: create only what it picks up
	MonitoringInstall  = "install"  // install kube-prometheus-stack first
)

// MonitoringModes are the accepted values of ztedge:monitoring.
var MonitoringModes = []string{MonitoringOff, MonitoringExisting, MonitoringInstall}

const (
	// MonitoringAPIVersion is the Prometheus Operator's API (ServiceMonitor, PodMonitor, PrometheusRule).
	MonitoringAPIVersion = "monitoring.coreos.com/v1"
	// MetricsPortName names the metrics container port of jwt-auth and the rate-limit server.
	MetricsPortName = "metrics"
	// AuthMetricsPort is jwt-auth's --metrics-listen port: /metrics and nothing else.
	AuthMetricsPort = 9102
	// RateLimitMetricsPort is envoyproxy/ratelimit's PROMETHEUS_ADDR port (its default, 9090).
	RateLimitMetricsPort = 9090
	// AmbassadorMetricsPort is the metrics relay's port in the Ambassador pod (named
	// AmbassadorMetricsPortName): Envoy's statistics, and nothing else, for Prometheus. Not
	// Emissary's admin port 8877, which is diagd's API too (internal/metricsrelay says why).
	AmbassadorMetricsPort     = 9103
	AmbassadorMetricsPortName = "envoy-metrics"
	// AmbassadorMetricsRelay is the relay's container name.
	AmbassadorMetricsRelay = "metrics-relay"
	// DashboardConfigMapName holds the Grafana dashboard, labelled for the Grafana sidecar.
	DashboardConfigMapName = "ztedge-dashboard"
	// MonitoringChart is the Helm chart of `install`.
	MonitoringChart = "kube-prometheus-stack"
	// monitoringRelease is its release name.
	monitoringRelease  = "ztedge-monitoring"
	grafanaAdminSecret = "ztedge-grafana-admin"
)

// The alert rules (a Prometheus rule file: the PrometheusRule's spec is the same document) and the
// Grafana dashboard. promtool tests the rules (components/monitoring/rules_test.yaml, .ci/promtool.sh);
// a Go test checks that both name only metrics the components export.
var (
	//go:embed monitoring/rules.yaml
	MonitoringRules []byte
	//go:embed monitoring/dashboard.json
	MonitoringDashboard []byte
)

// MonitoringArgs configures what Prometheus scrapes and alerts on at the edge.
type MonitoringArgs struct {
	Mode string // existing or install
	// Namespace is where Prometheus (and Grafana) run: created by `install`, named for `existing`.
	// The NetworkPolicies admit scrapes from it only; the dashboard ConfigMap goes there.
	Namespace string
	// ScraperLabels select the Prometheus pods in Namespace that may scrape (empty: every pod of
	// Namespace). The operator labels its Prometheus pods app.kubernetes.io/name=prometheus.
	ScraperLabels map[string]string
	// ObjectLabels go on the PodMonitors, the PrometheusRule and the dashboard, for an existing
	// operator's selectors (kube-prometheus-stack selects release=<its release> by default).
	ObjectLabels map[string]string
	// ChartVersion and ChartRepository pin kube-prometheus-stack (install).
	ChartVersion, ChartRepository string

	// EdgeNamespace (an output: objects wait for it) and EdgeNamespaceName: Ambassador's,
	// jwt-auth's and the rate-limit server's namespace.
	EdgeNamespace     pulumi.StringInput
	EdgeNamespaceName string
	// Targets are the pods scraped, by PodMonitor: Ambassador (Envoy's stats from the metrics
	// relay: AmbassadorMetricsRelayValues),
	// jwt-auth and the rate-limit server (nil when no backend is rate-limited).
	AmbassadorPodLabels map[string]string
	AuthPodLabels       map[string]string
	RateLimitPodLabels  map[string]string
	// DependsOn: the workloads' namespace and whatever else must come first.
	DependsOn []pulumi.Resource
}

// scrapeTarget is one PodMonitor and the NetworkPolicy that admits Prometheus to its port.
type scrapeTarget struct {
	name     string // ztedge-<name>: PodMonitor and NetworkPolicy; the job label is <namespace>/ztedge-<name>
	pods     map[string]string
	portName string
	port     int
}

func (a *MonitoringArgs) targets() []scrapeTarget {
	t := []scrapeTarget{
		{name: "ambassador", pods: a.AmbassadorPodLabels, portName: AmbassadorMetricsPortName, port: AmbassadorMetricsPort},
		{name: "jwt-auth", pods: a.AuthPodLabels, portName: MetricsPortName, port: AuthMetricsPort},
	}
	if a.RateLimitPodLabels != nil {
		t = append(t, scrapeTarget{name: "ratelimit", pods: a.RateLimitPodLabels, portName: MetricsPortName, port: RateLimitMetricsPort})
	}
	return t
}

func (a *MonitoringArgs) validate() error {
	if !slices.Contains([]string{MonitoringExisting, MonitoringInstall}, a.Mode) {
		return fmt.Errorf("monitoring: mode %q, want existing or install", a.Mode)
	}
	if a.Namespace == "" || a.EdgeNamespace == nil || a.EdgeNamespaceName == "" || len(a.AmbassadorPodLabels) == 0 || len(a.AuthPodLabels) == 0 {
		return fmt.Errorf("monitoring: Namespace, EdgeNamespace(Name), AmbassadorPodLabels and AuthPodLabels are required")
	}
	if a.Mode == MonitoringInstall && (a.ChartVersion == "" || a.ChartRepository == "") {
		return fmt.Errorf("monitoring: install needs ChartVersion and ChartRepository")
	}
	return nil
}

// Monitoring is the edge's metrics, alerts and dashboard.
type Monitoring struct {
	pulumi.ResourceState

	Namespace pulumi.StringOutput `pulumi:"namespace"`

	// Release is kube-prometheus-stack (install only).
	Release *helmv3.Release
	// Monitors are the PodMonitors, Rule the PrometheusRule, Policies the scrape NetworkPolicies.
	Monitors []*apiextensions.CustomResource
	Rule     *apiextensions.CustomResource
	Policies []*networkingv1.NetworkPolicy
}

// MonitoringChartValues are the kube-prometheus-stack values of `install` (every key checked
// against the chart's values.yaml in tests).
func MonitoringChartValues() map[string]any {
	return map[string]any{
		// Select the PodMonitors and PrometheusRules ztedge creates (in the edge namespace) without
		// a release label: by default the chart's Prometheus picks only its own release's objects.
		"prometheus": map[string]any{"prometheusSpec": map[string]any{
			"podMonitorSelectorNilUsesHelmValues":     false,
			"serviceMonitorSelectorNilUsesHelmValues": false,
			"ruleSelectorNilUsesHelmValues":           false,
		}},
		// The node exporter needs the host's network and PID namespaces (a privileged namespace);
		// the edge's alerts do not use it. A cluster that wants node metrics runs its own stack
		// (monitoring: existing).
		"nodeExporter":      map[string]any{"enabled": false},
		"windowsMonitoring": map[string]any{"enabled": false},
		"grafana": map[string]any{
			// No default admin password ("prom-operator" in the Grafana chart): a generated one.
			"admin": map[string]any{"existingSecret": grafanaAdminSecret, "userKey": "admin-user", "passwordKey": "admin-password"},
			"sidecar": map[string]any{"dashboards": map[string]any{
				"enabled": true, "label": "grafana_dashboard", "labelValue": "1",
			}},
		},
	}
}

// AmbassadorMetricsRelayValues add the metrics relay (`jwt-auth metrics-relay`, from image) to
// the Ambassador pod values: a sidecar, because Envoy's statistics are only on its loopback admin
// listener. It runs as restricted as jwt-auth and asks for little: it copies one answer at a time.
func AmbassadorMetricsRelayValues(image string) map[string]any {
	return map[string]any{"sidecarContainers": []any{map[string]any{
		"name":  AmbassadorMetricsRelay,
		"image": image,
		"args":  []any{"metrics-relay", fmt.Sprintf("--listen=:%d", AmbassadorMetricsPort)},
		"ports": []any{map[string]any{"name": AmbassadorMetricsPortName, "containerPort": AmbassadorMetricsPort, "protocol": "TCP"}},
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "10m", "memory": "16Mi"},
			"limits":   map[string]any{"memory": "64Mi"},
		},
		"securityContext": map[string]any{
			"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "privileged": false,
			"capabilities": map[string]any{"drop": []any{"ALL"}}, "seccompProfile": map[string]any{"type": "RuntimeDefault"},
		},
	}}}
}

// PodMonitorSpec scrapes /metrics on a named container port of the pods with these labels, in
// the PodMonitor's own namespace.
func PodMonitorSpec(pods map[string]string, portName string) map[string]any {
	return map[string]any{
		"selector": map[string]any{"matchLabels": stringMapAny(pods)},
		"podMetricsEndpoints": []any{map[string]any{
			"port": portName, "path": "/metrics", "interval": "30s", "scheme": "http",
		}},
	}
}

// PrometheusRuleSpec is the PrometheusRule's spec: the rule file as is.
func PrometheusRuleSpec() (map[string]any, error) {
	var spec map[string]any
	if err := yaml.Unmarshal(MonitoringRules, &spec); err != nil {
		return nil, fmt.Errorf("monitoring rules: %w", err)
	}
	return spec, nil
}

func stringMapAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// NewMonitoring creates the monitoring objects (and, with install, the operator stack first).
func NewMonitoring(ctx *pulumi.Context, name string, args *MonitoringArgs, opts ...pulumi.ResourceOption) (*Monitoring, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	ruleSpec, err := PrometheusRuleSpec()
	if err != nil {
		return nil, err
	}
	c := &Monitoring{}
	child, err := register(ctx, "ztedge:monitoring:Monitoring", name, c, opts)
	if err != nil {
		return nil, err
	}
	c.Namespace = pulumi.String(args.Namespace).ToStringOutput()
	after := pulumi.DependsOn(args.DependsOn)
	if args.Mode == MonitoringInstall {
		if err := c.install(ctx, name, args, child); err != nil {
			return nil, err
		}
		// Everything below needs the operator's CRDs (and the namespace), which the release brings.
		after = pulumi.DependsOn(append(slices.Clone(args.DependsOn), c.Release))
	}
	labels := map[string]string{"app.kubernetes.io/part-of": "ztedge"}
	maps.Copy(labels, args.ObjectLabels)

	for _, t := range args.targets() {
		pm, err := apiextensions.NewCustomResource(ctx, name+"-"+t.name, &apiextensions.CustomResourceArgs{
			ApiVersion:  pulumi.String(MonitoringAPIVersion),
			Kind:        pulumi.String("PodMonitor"),
			Metadata:    &metav1.ObjectMetaArgs{Name: pulumi.String("ztedge-" + t.name), Namespace: args.EdgeNamespace, Labels: pulumi.ToStringMap(labels)},
			OtherFields: kubernetes.UntypedArgs{"spec": PodMonitorSpec(t.pods, t.portName)},
		}, child, after)
		if err != nil {
			return nil, err
		}
		c.Monitors = append(c.Monitors, pm)
		// Scrapes from the monitoring namespace (its Prometheus pods), on the metrics port only.
		// NetworkPolicies add up: this one widens the edge namespace's default deny by exactly that.
		np, err := networkingv1.NewNetworkPolicy(ctx, args.EdgeNamespaceName+"/scrape-"+t.name, &networkingv1.NetworkPolicyArgs{
			Metadata: metav1.ObjectMetaArgs{Name: pulumi.String("scrape-" + t.name), Namespace: args.EdgeNamespace},
			Spec: policy{
				pods: t.pods, types: []string{"Ingress"},
				ingress: []rule{{peers: []peer{{namespace: args.Namespace, pods: args.ScraperLabels}}, ports: tcp(t.port)}},
			}.spec(),
		}, child, pulumi.DependsOn(args.DependsOn))
		if err != nil {
			return nil, err
		}
		c.Policies = append(c.Policies, np)
	}
	c.Rule, err = apiextensions.NewCustomResource(ctx, name+"-rules", &apiextensions.CustomResourceArgs{
		ApiVersion:  pulumi.String(MonitoringAPIVersion),
		Kind:        pulumi.String("PrometheusRule"),
		Metadata:    &metav1.ObjectMetaArgs{Name: pulumi.String("ztedge"), Namespace: args.EdgeNamespace, Labels: pulumi.ToStringMap(labels)},
		OtherFields: kubernetes.UntypedArgs{"spec": ruleSpec},
	}, child, after)
	if err != nil {
		return nil, err
	}
	// The dashboard: a ConfigMap the Grafana sidecar loads (label grafana_dashboard=1), in the
	// monitoring namespace (a sidecar watching only its own namespace finds it too).
	dashLabels := map[string]string{"grafana_dashboard": "1"}
	maps.Copy(dashLabels, labels)
	if _, err := corev1.NewConfigMap(ctx, name+"-dashboard", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(DashboardConfigMapName), Namespace: c.Namespace, Labels: pulumi.ToStringMap(dashLabels)},
		Data:     pulumi.StringMap{"ztedge.json": pulumi.String(string(MonitoringDashboard))},
	}, child, after); err != nil {
		return nil, err
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"namespace": c.Namespace})
}

// install creates the monitoring namespace, Grafana's admin Secret and the chart.
func (c *Monitoring) install(ctx *pulumi.Context, name string, args *MonitoringArgs, child pulumi.ResourceOption) error {
	// baseline, not restricted: the chart's admission-webhook job and Grafana's init containers
	// are not all restricted-compliant; the node exporter (privileged) is off.
	ns, err := newNamespace(ctx, args.Namespace, podSecurityLabels(PodSecurityBaseline), child)
	if err != nil {
		return err
	}
	c.Namespace = ns.Metadata.Name().Elem()
	// Grafana's admin password: 256 random bits, a Pulumi secret, drawn on the first up and kept
	// (ignoreChanges), as the rate-limit Redis password is.
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("monitoring: generating Grafana's admin password: %w", err)
	}
	password := pulumi.ToSecret(pulumi.String(base64.RawURLEncoding.EncodeToString(buf))).(pulumi.StringOutput)
	admin, err := corev1.NewSecret(ctx, name+"-grafana-admin", &corev1.SecretArgs{
		Metadata:   &metav1.ObjectMetaArgs{Name: pulumi.String(grafanaAdminSecret), Namespace: c.Namespace},
		Type:       pulumi.String("Opaque"),
		StringData: pulumi.StringMap{"admin-user": pulumi.String("admin"), "admin-password": password},
	}, child, pulumi.IgnoreChanges([]string{"stringData", "data"}))
	if err != nil {
		return err
	}
	c.Release, err = helmv3.NewRelease(ctx, name, &helmv3.ReleaseArgs{
		Name:           pulumi.String(monitoringRelease),
		Chart:          chartRef(args.ChartRepository, MonitoringChart, args.ChartVersion),
		RepositoryOpts: helmRepository(args.ChartRepository),
		Version:        pulumi.String(args.ChartVersion),
		Namespace:      c.Namespace,
		Values:         pulumi.ToMap(MonitoringChartValues()),
		Atomic:         pulumi.Bool(true), CleanupOnFail: pulumi.Bool(true), Timeout: pulumi.Int(900), MaxHistory: pulumi.Int(10),
	}, child, pulumi.DependsOn(append(slices.Clone(args.DependsOn), admin)))
	return err
}
