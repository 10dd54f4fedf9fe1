package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/components"
)

const (
	egChartDir    = "tests/testdata/charts/gateway-helm-" + components.EnvoyGatewayVersion
	egCRDChartDir = "tests/testdata/charts/gateway-crds-helm-" + components.EnvoyGatewayVersion
)

// TestEnvoyGatewayChartValues: on every envoy-gateway configuration, both releases name the
// pinned charts, set only keys the v1.9.1 charts define, and switch the CRDs on in the CRD chart
// (both switches are off by default) and off in the controller chart (installed first, apart).
func TestEnvoyGatewayChartValues(t *testing.T) {
	app, crds := loadChart(t, egChartDir+"/values.yaml"), loadChart(t, egCRDChartDir+"/values.yaml")
	for name, edit := range egSources(t) {
		t.Run(name, func(t *testing.T) {
			g, _ := egRender(t, name, edit)
			for rel, chart := range map[string]struct {
				typ, chart string
				values     interface {
					UnknownKeys(map[string]any) []string
				}
			}{
				"envoy-gateway": {typeRelease, "gateway-helm", app},
				// The CRDs (5 MB) cannot be a Helm release: its Secret holds 1 MiB at most.
				"envoy-gateway-crds": {typeChartV4, "gateway-crds-helm", crds},
			} {
				r := g.one(chart.typ, rel)
				if got := str(input(r, "chart")); !strings.HasSuffix(got, chart.chart) {
					t.Errorf("release %s: chart %q, want %s", rel, got, chart.chart)
				}
				if got := str(input(r, "version")); got != components.EnvoyGatewayVersion {
					t.Errorf("release %s: version %q, want %s", rel, got, components.EnvoyGatewayVersion)
				}
				values, _ := input(r, "values").(map[string]any)
				if unknown := chart.values.UnknownKeys(values); len(unknown) > 0 {
					t.Errorf("release %s sets keys %s %s does not define: %v", rel, chart.chart, components.EnvoyGatewayVersion, unknown)
				}
			}
			crdValues := input(g.one(typeChartV4, "envoy-gateway-crds"), "values")
			for _, path := range [][]string{{"crds", "gatewayAPI", "enabled"}, {"crds", "envoyGateway", "enabled"}} {
				if dig(crdValues, path...) != true {
					t.Errorf("gateway-crds-helm %s is not true: that CRD set would not be installed", strings.Join(path, "."))
				}
			}
			if v := dig(input(g.one(typeRelease, "envoy-gateway"), "values"), "crds", "enabled"); v != false {
				t.Errorf("gateway-helm crds.enabled = %v: the controller chart would install the CRDs a second time", v)
			}
		})
	}
}

// The controller chart's values.yaml is the repository's template with the release's two
// substitutions, and nothing else (the repository has no values.yaml for it).
func TestEnvoyGatewayChartValuesAreTheReleased(t *testing.T) {
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), egChartDir, f))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tmpl := strings.NewReplacer(
		"${GatewayImage}", "docker.io/envoyproxy/gateway:"+components.EnvoyGatewayVersion,
		"${GatewayImagePullPolicy}", "IfNotPresent",
	).Replace(read("values.tmpl.yaml"))
	if tmpl != read("values.yaml") {
		t.Errorf("%s/values.yaml is not values.tmpl.yaml with the image and pull policy substituted", egChartDir)
	}
}
