package tests

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/internal/upstream"
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
