package stacks

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/ztedge/ztedge/components"
)

// A chart setting (emissaryChartRepository, edgeStackChartRepository, albControllerChartRepository)
// names an oci:// registry, an https:// Helm repository, or a local directory of chart archives
// (<chart>-<version>.tgz, as `helm pull` or `helm package` writes them): the last one serves
// air-gapped clusters, and the real-engine tests. A relative directory is relative to the project
// (the directory of Pulumi.yaml).

// chartDirSetting is one chart setting that may name a local directory.
type chartDirSetting struct {
	key     string
	dir     *string
	charts  []string // archive names expected in the directory
	enabled bool
}

func (c *Config) chartDirSettings() []chartDirSetting {
	e := &c.Edge
	return []chartDirSetting{
		{"emissaryChartRepository", &e.EmissaryChartRepository, []string{
			"emissary-crds-chart-" + e.EmissaryVersion, "emissary-ingress-" + e.EmissaryVersion,
		}, e.Edition == components.EditionEmissary},
		{"edgeStackChartRepository", &e.EdgeStackChartRepository, []string{"edge-stack-" + e.EdgeStackChartVersion}, e.Edition == components.EditionEdgeStack},
		{"envoyGatewayChartRepository", &e.EnvoyGatewayChartRepository, []string{
			"gateway-crds-helm-" + components.EnvoyGatewayVersion, "gateway-helm-" + components.EnvoyGatewayVersion,
		}, e.Engine == EngineEnvoyGateway},
		{"albControllerChartRepository", &c.AlbController.ChartRepository, []string{
			"aws-load-balancer-controller-" + c.AlbController.ChartVersion,
		}, c.Platform != PlatformLocal},
	}
}

// ResolveChartDirs makes every local chart directory absolute (relative to root, the project
// directory) and checks that it holds the archives the stack installs, so a missing chart is a
// configuration error naming the key before anything is created, not a failed Helm release.
func (c *Config) ResolveChartDirs(root string) error {
	var p problems
	for _, s := range c.chartDirSettings() {
		if !s.enabled || !components.IsChartDir(*s.dir) {
			continue
		}
		dir := *s.dir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
		for _, chart := range s.charts {
			archive := filepath.Join(dir, chart+".tgz")
			if _, err := os.Stat(archive); err != nil {
				p.add(s.key, "%q is read as a local chart directory, but %s is not there (%v): put the chart archive there (helm pull), or use an oci:// or https:// repository", *s.dir, filepath.Base(archive), err)
			}
		}
		*s.dir = dir
	}
	if len(p) > 0 {
		return &ConfigError{Problems: p}
	}
	return nil
}

// validChartSource: an https:// or oci:// repository, or a directory; plain http:// is refused
// (charts are code that runs with cluster-admin rights).
func validChartSource(s string) bool {
	return s != "" && !strings.HasPrefix(s, "http://")
}
