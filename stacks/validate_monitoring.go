package stacks

import (
	"regexp"
	"slices"
	"strings"

	"github.com/ztedge/ztedge/components"
)

var (
	// A label key (optional DNS prefix/name) and value; namespace names use dnsLabelRE (validate_edge.go).
	labelKeyRE   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
)

// validateMonitoring checks the monitoring settings (before anything is created).
func (c *Config) validateMonitoring(p *problems) {
	m := c.Monitoring
	if !slices.Contains(components.MonitoringModes, m.Mode) {
		p.add("monitoring", "%q is not one of %s", m.Mode, strings.Join(components.MonitoringModes, ", "))
		return
	}
	if !m.Enabled() {
		return
	}
	if !dnsLabelRE.MatchString(m.Namespace) {
		p.add("monitoringNamespace", "%q is not a namespace name (lower-case letters, digits and '-', at most 63)", m.Namespace)
	}
	if m.Namespace == c.Edge.Namespace {
		// The scrape NetworkPolicies admit the monitoring namespace: the edge's own would admit every edge pod.
		p.add("monitoringNamespace", "must differ from ambassadorNamespace (%q): the metrics ports are opened to that namespace", m.Namespace)
	}
	for _, key := range []string{"monitoringScraperLabels", "monitoringObjectLabels"} {
		labels := m.ScraperLabels
		if key == "monitoringObjectLabels" {
			labels = m.ObjectLabels
		}
		for k, v := range labels {
			if !labelKeyRE.MatchString(k) || !labelValueRE.MatchString(v) {
				p.add(key, "label %s=%q is not a valid Kubernetes label", k, v)
			}
		}
	}
	if m.Mode == components.MonitoringInstall {
		if m.ChartVersion == "" {
			p.add("monitoringChartVersion", "is required with monitoring install")
		}
		if m.ChartRepository == "" {
			p.add("monitoringChartRepository", "is required with monitoring install")
		}
	}
}
