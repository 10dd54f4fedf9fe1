// Package tests exercises the whole ztedge program under Pulumi mocks: every stack file, every
// layer, the ordering rules of the graph and the security invariants.
package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

// repoRoot is the directory holding Pulumi.yaml.
func repoRoot(t testing.TB) string {
	// go test runs in the package's directory; runtime.Caller would not do under -trimpath (CI).
	dir, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return dir
}

// stackConfig returns a stack file's configuration, changed by edit (set a value to "" to delete it).
func stackConfig(t testing.TB, stack string, edit map[string]string) stacks.MapSource {
	t.Helper()
	src, err := stacks.ReadStackFile(repoRoot(t), stack)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range edit {
		if v == "" {
			delete(src.Values, k)
		} else {
			src.Values[k] = v
		}
	}
	return src
}

// graph is one program run: the registrations, with lookups that the assertions need.
type graph struct {
	t   testing.TB
	eng *mockengine.Engine
	all []*mockengine.Resource
}

// run executes stacks.Program for a stack under the mock engine, with a timeout: a resource
// reference the mock cannot resolve would otherwise hang the test.
func run(t testing.TB, stack string, src stacks.MapSource) (*graph, error) {
	t.Helper()
	eng := mockengine.New("ztedge", stack, src.Values["aws:region"])
	var secretKeys []string
	for k := range src.Secrets {
		secretKeys = append(secretKeys, k)
	}
	done := make(chan error, 1)
	go func() { done <- eng.Run(stacks.Program, src.Values, secretKeys) }()
	select {
	case err := <-done:
		return &graph{t: t, eng: eng, all: eng.Resources()}, err
	case <-time.After(2 * time.Minute):
		t.Fatalf("stack %s: the program did not finish under mocks in 2 minutes", stack)
		return nil, nil
	}
}

// loadAndRun loads a stack configuration and runs the program on it, failing the test on either
// error: the configuration as the program sees it, and the graph.
func loadAndRun(t testing.TB, stack string, src stacks.MapSource) (*stacks.Config, *graph) {
	t.Helper()
	cfg, err := stacks.Load(src, stack)
	if err != nil {
		t.Fatal(err)
	}
	g, err := run(t, stack, src)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, g
}

// mustRun runs a stack file as it is and fails the test on error.
func mustRun(t testing.TB, stack string) *graph {
	t.Helper()
	g, err := run(t, stack, stackConfig(t, stack, nil))
	if err != nil {
		t.Fatalf("stack %s: %v", stack, err)
	}
	return g
}

func (g *graph) ofType(typ string) []*mockengine.Resource {
	var out []*mockengine.Resource
	for _, r := range g.all {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// one returns the single resource of a type (and name, if given).
func (g *graph) one(typ string, name ...string) *mockengine.Resource {
	g.t.Helper()
	var found []*mockengine.Resource
	for _, r := range g.ofType(typ) {
		if len(name) == 0 || r.Name == name[0] {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		g.t.Fatalf("want exactly one %s %v, found %d", typ, name, len(found))
	}
	return found[0]
}

// namespace is the resource that creates (Namespace) or adopts (NamespacePatch, backend
// namespaces) the namespace named ns.
func (g *graph) namespace(ns string) *mockengine.Resource {
	g.t.Helper()
	for _, r := range append(g.ofType(typeNamespace), g.ofType(typeNamespacePatch)...) {
		if r.Name == ns {
			return r
		}
	}
	g.t.Fatalf("no Namespace or NamespacePatch %s", ns)
	return nil
}

// dependsOn reports whether a waits for b: directly or through other resources, where waiting
// for a component means waiting for everything inside it.
func (g *graph) dependsOn(a, b *mockengine.Resource) bool {
	target := map[string]bool{b.URN: true}
	for cur := b; cur != nil && cur.Parent != ""; cur = g.eng.ByURN(cur.Parent) {
		// Depending on an ancestor component of b counts too: Pulumi waits for all its children.
		target[cur.Parent] = true
	}
	seen := map[string]bool{}
	var visit func(urn string) bool
	visit = func(urn string) bool {
		if seen[urn] {
			return false
		}
		seen[urn] = true
		r := g.eng.ByURN(urn)
		if r == nil {
			return false
		}
		for _, d := range r.Dependencies {
			if target[d] || visit(d) {
				return true
			}
		}
		return false
	}
	return visit(a.URN)
}

// input returns an input as plain Go values (secrets unwrapped; isSecret tells whether it was one).
func input(r *mockengine.Resource, path ...string) any {
	v := any(r.Inputs.MapRepl(nil, unwrapSecret))
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any) string { return fmt.Sprint(v) }

// isSecret reports whether an input property was passed as a Pulumi secret.
func isSecret(r *mockengine.Resource, key string) bool {
	v, ok := r.Inputs[resource.PropertyKey(key)]
	return ok && v.ContainsSecrets()
}

func jsonEqual(t testing.TB, what, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("%s is not JSON: %v\n%s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("expected %s is not JSON: %v", what, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("%s differs:\n got: %s\nwant: %s", what, gb, wb)
	}
}

func typeCounts(rs []*mockengine.Resource) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		out[r.Type]++
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// yamlJSON compares values that went through YAML (ints as int, maps as map[string]any) with Go
// literals by their JSON form.
func yamlJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func unwrapSecret(v resource.PropertyValue) (any, bool) {
	if v.IsSecret() {
		return v.SecretValue().Element.MapRepl(nil, unwrapSecret), true
	}
	return nil, false
}
