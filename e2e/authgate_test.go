//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

var (
	mappingsGVR     = schema.GroupVersionResource{Group: "getambassador.io", Version: "v3alpha1", Resource: "mappings"}
	authServicesGVR = schema.GroupVersionResource{Group: "getambassador.io", Version: "v3alpha1", Resource: "authservices"}
)

// TestAuthServiceReplacementTakesTheRoutesDownFirst: `ztedge up --replace` of the AuthService
// (what a change that replaces it does) while a watch on the API server records every Mapping and
// AuthService event: Emissary serves a checked route with no ext_authz at any instant where such
// a Mapping exists and no AuthService does. There must be none, and the replacement must have
// happened (the AuthService deleted and re-created) — issue 16, item 6.
func TestAuthServiceReplacementTakesTheRoutesDownFirst(t *testing.T) {
	ctx, work, cp, cluster := startTestCluster(t, 20*time.Minute)
	p := newProject(t, filepath.Join(work, "gate"), cp.Kubeconfig)
	ztedge := p.build(t, "./cmd/ztedge")
	run := func(timeout time.Duration, args ...string) string { return p.run(t, timeout, ztedge, args...) }
	state := p.upAndReadBack(ctx, t, cluster, run, "empty state")
	var authURN string
	for _, r := range state {
		if r.Type == "kubernetes:getambassador.io/v3alpha1:AuthService" {
			authURN = r.URN
		}
	}
	if authURN == "" {
		t.Fatal("no AuthService in the state")
	}

	w := watchGate(ctx, t, cluster, "ambassador")
	out := run(upTimeout, "up", "--stack", "local", "--replace", authURN)
	t.Logf("up --replace %s:\n%s", authURN, out)
	events, violations := w.stop()
	t.Logf("events:\n  %s", strings.Join(events, "\n  "))
	for _, v := range violations {
		t.Error(v)
	}
	if !w.saw(watch.Deleted, "authservices") || !w.saw(watch.Added, "authservices") {
		t.Errorf("the AuthService was not replaced (no delete and add seen)")
	}
	run(upTimeout, "preview", "--stack", "local", "--expect-no-changes")
	run(destroyTimeout, "destroy", "--stack", "local")
}

// gateWatch follows the Mappings and AuthServices of one namespace and flags every instant with a
// checked Mapping (not bypass_auth) and no AuthService.
type gateWatch struct {
	mu          sync.Mutex
	checked     map[string]bool // checked Mappings present
	authService map[string]bool // AuthServices present
	events      []string
	seen        map[string]bool // "<type> <resource>"
	violations  []string
	cancel      context.CancelFunc
	done        sync.WaitGroup
}

func watchGate(ctx context.Context, t *testing.T, c *clusterView, ns string) *gateWatch {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	w := &gateWatch{checked: map[string]bool{}, authService: map[string]bool{}, seen: map[string]bool{}, cancel: cancel}
	for _, gvr := range []schema.GroupVersionResource{authServicesGVR, mappingsGVR} {
		list, err := c.dynamic.Resource(gvr).Namespace(ns).List(wctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			w.apply(gvr.Resource, watch.Added, &list.Items[i], false)
		}
		wi, err := c.dynamic.Resource(gvr).Namespace(ns).Watch(wctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			t.Fatal(err)
		}
		w.done.Add(1)
		go func() {
			defer w.done.Done()
			defer wi.Stop()
			for ev := range wi.ResultChan() {
				if obj, ok := ev.Object.(*unstructured.Unstructured); ok {
					w.apply(gvr.Resource, ev.Type, obj, true)
				}
			}
		}()
	}
	if len(w.checked) == 0 || len(w.authService) == 0 {
		t.Fatalf("before the change: checked Mappings %v, AuthServices %v", w.checked, w.authService)
	}
	return w
}

func (w *gateWatch) apply(resource string, typ watch.EventType, obj *unstructured.Unstructured, record bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	set := w.authService
	if resource == "mappings" {
		if bypass, _, _ := unstructured.NestedBool(obj.Object, "spec", "bypass_auth"); bypass {
			return
		}
		set = w.checked
	}
	if typ == watch.Deleted {
		delete(set, obj.GetName())
	} else {
		set[obj.GetName()] = true
	}
	if !record {
		return
	}
	at := time.Now().Format("15:04:05.000")
	w.events = append(w.events, fmt.Sprintf("%s %s %s/%s", at, typ, resource, obj.GetName()))
	w.seen[string(typ)+" "+resource] = true
	if len(w.checked) > 0 && len(w.authService) == 0 {
		names := make([]string, 0, len(w.checked))
		for n := range w.checked {
			names = append(names, n)
		}
		sort.Strings(names)
		w.violations = append(w.violations, fmt.Sprintf("%s: Mappings %v are served with no AuthService (after %s %s/%s)", at, names, typ, resource, obj.GetName()))
	}
}

func (w *gateWatch) saw(typ watch.EventType, resource string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[string(typ)+" "+resource]
}

// stop ends the watch and returns the events it recorded and the violations.
func (w *gateWatch) stop() (events, violations []string) {
	w.cancel()
	w.done.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events, w.violations
}
