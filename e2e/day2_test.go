//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

// beforeMutableConfig is the last ztedge commit whose kubernetes providers replaced ConfigMaps
// and Secrets on every data change (components/mutableconfig.go came after it).
const beforeMutableConfig = "b80adda"

// TestDay2ChangesWithoutDowntime: a stack deployed by that earlier ztedge moves to today's code,
// then gets a new trusted client and a new signing key, while a watch on the API server records
// every instant without a ready jwt-auth and every deletion of jwt-auth's Deployment, its
// ConfigMap and Secrets, or a backend's certificate Secret. There must be none (issue 19).
func TestDay2ChangesWithoutDowntime(t *testing.T) {
	ctx, work, cp, cluster := startTestCluster(t, 30*time.Minute)
	old := oldProject(t, filepath.Join(work, "old"), cp.Kubeconfig, beforeMutableConfig)
	oldZtedge := old.build(t, "./cmd/ztedge")
	old.run(t, upTimeout, oldZtedge, "up", "--stack", "local")

	p := newProject(t, filepath.Join(work, "new"), cp.Kubeconfig)
	p.env = old.env // the same stack: the old project's state
	ztedge := p.build(t, "./cmd/ztedge")
	run := func(timeout time.Duration, args ...string) string { return p.run(t, timeout, ztedge, args...) }

	w := watchAuth(ctx, t, cluster)
	steps := []struct {
		what string
		edit func(map[string]any)
	}{
		{"upgrade to today's ztedge", nil},
		{"add a trusted client", func(cfg map[string]any) {
			clients := cfg["ztedge:trustedClients"].([]any)
			c := map[string]any{}
			for k, v := range clients[0].(map[string]any) {
				c[k] = v
			}
			c["name"] = "web-app-2"
			cfg["ztedge:trustedClients"] = append(clients, c)
		}},
		{"publish a next signing key", func(cfg map[string]any) {
			cfg["ztedge:authSigningKeys"] = []any{map[string]any{"id": "k1", "phase": "active"}, map[string]any{"id": "k2", "phase": "next"}}
		}},
	}
	for _, s := range steps {
		if s.edit != nil {
			p.editStack(t, s.edit)
		}
		start := time.Now()
		out := run(upTimeout, "up", "--stack", "local")
		t.Logf("%s: up in %s", s.what, time.Since(start).Round(time.Second))
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "replaced") || strings.Contains(line, "deleted") {
				t.Errorf("%s: %s", s.what, strings.TrimSpace(line))
			}
		}
	}
	run(upTimeout, "preview", "--stack", "local", "--expect-no-changes")
	for _, v := range w.stop() {
		t.Error(v)
	}
	run(destroyTimeout, "destroy", "--stack", "local")
}

// oldProject is the repository at commit, set up like newProject.
func oldProject(t *testing.T, dir, kubeconfig, commit string) *project {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.Command("sh", "-c", fmt.Sprintf("git -C .. archive %s | tar -x -C %q", commit, dir))
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, out)
	}
	return setupProject(t, dir, kubeconfig)
}

// authWatch records what would be an outage of the token check or a backend's certificate.
type authWatch struct {
	mu         sync.Mutex
	violations []string
	cancel     context.CancelFunc
	done       sync.WaitGroup
}

var (
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	configMapsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	secretsGVR     = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

// watchAuth watches jwt-auth's Deployment, ConfigMaps and Secrets (namespace ambassador) and the
// backends' Secrets (namespace orders) from now on.
func watchAuth(ctx context.Context, t *testing.T, c *clusterView) *authWatch {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	w := &authWatch{cancel: cancel}
	for _, target := range []struct {
		gvr schema.GroupVersionResource
		ns  string
	}{{deploymentsGVR, "ambassador"}, {configMapsGVR, "ambassador"}, {secretsGVR, "ambassador"}, {secretsGVR, "orders"}} {
		list, err := c.dynamic.Resource(target.gvr).Namespace(target.ns).List(wctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wi, err := c.dynamic.Resource(target.gvr).Namespace(target.ns).Watch(wctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			t.Fatal(err)
		}
		w.done.Add(1)
		go func() {
			defer w.done.Done()
			defer wi.Stop()
			for ev := range wi.ResultChan() {
				if obj, ok := ev.Object.(*unstructured.Unstructured); ok {
					w.check(target.gvr.Resource, ev.Type, obj)
				}
			}
		}()
	}
	return w
}

func (w *authWatch) check(resource string, typ watch.EventType, obj *unstructured.Unstructured) {
	name := obj.GetNamespace() + "/" + obj.GetName()
	watched := strings.HasPrefix(obj.GetName(), "jwt-auth") || strings.HasPrefix(obj.GetName(), "pki-") || obj.GetNamespace() == "orders"
	var bad string
	switch {
	case !watched:
	case typ == watch.Deleted:
		bad = fmt.Sprintf("%s %s was deleted", resource, name)
	case resource == "deployments" && typ == watch.Modified:
		if ready, _, _ := unstructured.NestedInt64(obj.Object, "status", "readyReplicas"); ready < 1 {
			bad = fmt.Sprintf("deployment %s had no ready replica (generation %d)", name, obj.GetGeneration())
		}
	}
	if bad != "" {
		w.mu.Lock()
		w.violations = append(w.violations, time.Now().Format("15:04:05.000")+" "+bad)
		w.mu.Unlock()
	}
}

// stop ends the watch and returns what it saw.
func (w *authWatch) stop() []string {
	w.cancel()
	w.done.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.violations
}
