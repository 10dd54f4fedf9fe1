//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var jobGVR = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}

// TestEnvoyGatewayOnARealEngine: the local stack with ztedge:engine envoy-gateway. Both v1.9.1
// charts install on the real kube-apiserver (the CRD chart first: its EnvoyProxy CRD is 1.4 MB),
// the certgen hook Job runs to completion, every object of the state reads back with every field
// (the Gateway API and Envoy Gateway objects against their real CRD schemas), the Deployments are
// Available, a preview right after has no changes, switching back to emissary is refused, and
// destroy leaves nothing: no hook object, no CRD, no namespace of ours.
func TestEnvoyGatewayOnARealEngine(t *testing.T) {
	ctx, work, cp, cluster := startTestCluster(t, 25*time.Minute)
	before, err := cluster.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := newProject(t, filepath.Join(work, "ztedge"), cp.Kubeconfig)
	p.editStack(t, func(cfg map[string]any) {
		cfg["ztedge:engine"] = "envoy-gateway"
		cfg["ztedge:envoyGatewayChartRepository"] = os.Getenv("E2E_CHARTS")
	})
	ztedge := p.build(t, "./cmd/ztedge")
	run := func(timeout time.Duration, args ...string) string { return p.run(t, timeout, ztedge, args...) }

	start := time.Now()
	run(upTimeout, "up", "--stack", "local")
	t.Logf("ztedge up (envoy-gateway): %s", time.Since(start).Round(time.Second))
	start = time.Now()
	run(upTimeout, "preview", "--stack", "local", "--expect-no-changes")
	t.Logf("ztedge preview (no changes): %s", time.Since(start).Round(time.Second))
	state := p.exportState(t)
	cluster.checkEveryFieldSurvived(ctx, t, state)
	cluster.checkDeploymentsAvailable(ctx, t, state)
	kinds := map[string]int{}
	for _, r := range state {
		if _, gvk, ok := kubernetesInputs(r); ok {
			kinds[gvk.Kind]++
		}
	}
	for _, kind := range []string{"GatewayClass", "EnvoyProxy", "Gateway", "HTTPRoute", "SecurityPolicy", "ClientTrafficPolicy", "BackendTLSPolicy"} {
		if kinds[kind] == 0 {
			t.Errorf("the state has no %s (kinds: %v)", kind, kinds)
		}
	}
	// The certgen hook ran and left nothing behind (its Role can write every Secret of the edge
	// namespace, jwt-auth's signing keys included).
	jobs, err := cluster.dynamic.Resource(jobGVR).Namespace("ambassador").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		t.Errorf("job %s is left after up", j.GetName())
	}
	for _, res := range []schema.GroupVersionResource{
		{Version: "v1", Resource: "serviceaccounts"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	} {
		list, err := cluster.dynamic.Resource(res).Namespace("ambassador").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			if strings.Contains(o.GetName(), "certgen") {
				t.Errorf("%s %s (a certgen hook object) is left after up", res.Resource, o.GetName())
			}
		}
	}

	p.editStack(t, func(cfg map[string]any) { delete(cfg, "ztedge:engine") })
	if out := p.runFails(t, ztedge, "up", "--stack", "local"); !strings.Contains(out, "stack local runs engine envoy-gateway, but Pulumi.local.yaml sets ztedge:engine: emissary") {
		t.Errorf("ztedge up does not refuse the switch to emissary:\n%s", out)
	}
	p.editStack(t, func(cfg map[string]any) { cfg["ztedge:engine"] = "envoy-gateway" })

	start = time.Now()
	run(destroyTimeout, "destroy", "--stack", "local")
	t.Logf("ztedge destroy: %s", time.Since(start).Round(time.Second))
	cluster.checkNothingLeft(ctx, t, before)
}
