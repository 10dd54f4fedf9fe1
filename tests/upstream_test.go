package tests

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/crdschema"
	"github.com/ztedge/ztedge/internal/upstream"
	"github.com/ztedge/ztedge/stacks"
)

// TestUpstreamCopies checks every byte-for-byte copy of an upstream file in the repository: each
// directory whose SOURCE.md has a pin table (| file | repo | tag | path | sha256 |) must hold files
// with exactly the recorded sha256. See internal/upstream.
func TestUpstreamCopies(t *testing.T) {
	root := repoRoot(t)
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == upstream.SourceFile && upstream.HasPins(filepath.Dir(path)) {
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The directories that must have a pin table (the copies issue 12 pinned).
	for _, want := range []string{
		"components/assets",
		"tests/testdata/charts/aws-load-balancer-controller-3.5.0",
		"tests/testdata/charts/emissary-ingress-4.1.0",
		"internal/crdschema/emissary",
		"tests/testdata/charts/gateway-helm-" + components.EnvoyGatewayVersion,
		"tests/testdata/charts/gateway-crds-helm-" + components.EnvoyGatewayVersion,
	} {
		found := false
		for _, d := range dirs {
			found = found || d == filepath.Join(root, want)
		}
		if !found {
			t.Errorf("%s/SOURCE.md has no pin table", want)
		}
	}
	for _, d := range dirs {
		rel, _ := filepath.Rel(root, d)
		t.Run(rel, func(t *testing.T) {
			if err := upstream.Verify(d); err != nil {
				t.Error(err)
			}
		})
	}
}

// The pinned copies are those of the versions the program installs by default: the CRDs the
// schema check uses are the emissary-crds-chart of the emissaryVersion default, and the controller
// chart values those of the albControllerChartVersion default.
func TestPinnedCopiesMatchTheDefaults(t *testing.T) {
	defaults := map[string]any{}
	for _, k := range stacks.Keys {
		defaults[k.Name] = k.Default
	}
	if defaults["emissaryVersion"] != crdschema.EmissaryVersion {
		t.Errorf("emissaryVersion defaults to %v but the schema check uses the %s CRDs (internal/crdschema)", defaults["emissaryVersion"], crdschema.EmissaryVersion)
	}
	root := repoRoot(t)
	for dir, want := range map[string]upstream.Pin{
		"tests/testdata/charts/emissary-ingress-" + crdschema.EmissaryVersion:                              {Repo: "emissary-ingress/emissary", Tag: "v" + crdschema.EmissaryVersion},
		"tests/testdata/charts/aws-load-balancer-controller-" + str(defaults["albControllerChartVersion"]): {Repo: "kubernetes-sigs/aws-load-balancer-controller", Tag: "v" + str(defaults["albControllerChartVersion"])},
	} {
		pin, err := upstream.Pinned(filepath.Join(root, dir), "values.yaml")
		if err != nil {
			t.Error(err)
			continue
		}
		if pin.Repo != want.Repo || pin.Tag != want.Tag {
			t.Errorf("%s/values.yaml is pinned to %s %s, want %s %s", dir, pin.Repo, pin.Tag, want.Repo, want.Tag)
		}
	}
}
