package stacks

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/components"
)

// MonitoringConfig is ztedge:monitoring and its settings (components.MonitoringArgs).
type MonitoringConfig struct {
	Mode            string // off, existing or install
	Namespace       string
	ScraperLabels   map[string]string
	ObjectLabels    map[string]string
	ChartVersion    string
	ChartRepository string
}

// Enabled reports whether the edge is monitored (existing or install).
func (m MonitoringConfig) Enabled() bool { return m.Mode != "" && m.Mode != components.MonitoringOff }

func (r *reader) monitoring() MonitoringConfig {
	m := MonitoringConfig{
		Mode:            r.str("monitoring"),
		Namespace:       r.str("monitoringNamespace"),
		ChartVersion:    r.str("monitoringChartVersion"),
		ChartRepository: r.str("monitoringChartRepository"),
	}
	r.json("monitoringScraperLabels", &m.ScraperLabels)
	r.json("monitoringObjectLabels", &m.ObjectLabels)
	return m
}

// authMetricsPort and rateLimitMetricsPort are the metrics ports the workloads open when the edge
// is monitored (0: none, nothing listens).
func (c *Config) authMetricsPort() int {
	if c.Monitoring.Enabled() {
		return components.AuthMetricsPort
	}
	return 0
}

func (c *Config) rateLimitMetricsPort() int {
	if c.Monitoring.Enabled() {
		return components.RateLimitMetricsPort
	}
	return 0
}

// buildMonitoring creates the monitoring objects (off: nothing). They wait for the workloads'
// namespace; with install, for kube-prometheus-stack (its CRDs) too.
func buildMonitoring(ctx *pulumi.Context, cfg *Config, p *Platform, e *Edge) error {
	if !cfg.Monitoring.Enabled() {
		return nil
	}
	m := cfg.Monitoring
	args := &components.MonitoringArgs{
		Mode:                m.Mode,
		Namespace:           m.Namespace,
		ScraperLabels:       m.ScraperLabels,
		ObjectLabels:        m.ObjectLabels,
		ChartVersion:        m.ChartVersion,
		ChartRepository:     m.ChartRepository,
		EdgeNamespace:       e.Ambassador.NamespaceName,
		EdgeNamespaceName:   e.Namespace,
		AmbassadorPodLabels: e.Ambassador.PodLabels,
		AuthPodLabels:       components.JwtAuth.Labels,
		DependsOn:           append([]pulumi.Resource{e.Ambassador.Release}, p.Nodes...),
	}
	if e.RateLimit != nil && e.RateLimit.ServerLabels != nil {
		args.RateLimitPodLabels = e.RateLimit.ServerLabels
	}
	mon, err := components.NewMonitoring(ctx, "monitoring", args, pulumi.Providers(p.Provider))
	if err != nil {
		return err
	}
	ctx.Export("monitoringNamespace", mon.Namespace)
	return nil
}
