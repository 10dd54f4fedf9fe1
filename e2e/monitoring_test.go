//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// operatorCRDs are the Prometheus Operator CRDs the pinned kube-prometheus-stack installs (kept
// byte for byte, tests/testdata/charts/kube-prometheus-stack-88.5.3/SOURCE.md).
var operatorCRDs = []string{"crd-podmonitors.yaml", "crd-servicemonitors.yaml", "crd-prometheusrules.yaml"}

var (
	crdGVR            = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	nsGVR             = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	podMonitorGVR     = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "podmonitors"}
	prometheusRuleGVR = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheusrules"}
)

// TestMonitoringExistingOnARealEngine: `monitoring: existing` on a cluster where an operator
// already runs (its CRDs applied, its namespace present): ztedge up creates PodMonitors, the
// PrometheusRule, the dashboard and the scrape NetworkPolicies, the API server admits them and they
// read back with every field (nothing pruned by the operator's schemas); a preview right after has
// no changes; destroy leaves nothing of the stack (the operator's CRDs and namespace stay).
func TestMonitoringExistingOnARealEngine(t *testing.T) {
	ctx, work, cp, cluster := startTestCluster(t, 20*time.Minute)

	// The "existing" operator: its CRDs and its namespace.
	dir := filepath.Join("..", "tests", "testdata", "charts", "kube-prometheus-stack-88.5.3")
	for _, f := range operatorCRDs {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(strings.TrimPrefix(stripComments(string(data)), "---\n")), &obj); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := cluster.dynamic.Resource(crdGVR).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("applying %s: %v", f, err)
		}
	}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "monitoring"}}}
	if _, err := cluster.dynamic.Resource(nsGVR).Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitServed(ctx, t, cluster, podMonitorGVR, prometheusRuleGVR)
	before, err := cluster.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}

	p := newProject(t, filepath.Join(work, "ztedge"), cp.Kubeconfig)
	p.editStack(t, func(cfg map[string]any) { cfg["ztedge:monitoring"] = "existing" })
	ztedge := p.build(t, "./cmd/ztedge")
	run := func(timeout time.Duration, args ...string) string { return p.run(t, timeout, ztedge, args...) }
	p.upAndReadBack(ctx, t, cluster, run, "monitoring existing")
	pms, err := cluster.dynamic.Resource(podMonitorGVR).Namespace("ambassador").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pm := range pms.Items {
		names = append(names, pm.GetName())
	}
	if len(names) < 2 || !strings.Contains(strings.Join(names, ","), "ztedge-jwt-auth") || !strings.Contains(strings.Join(names, ","), "ztedge-ambassador") {
		t.Errorf("PodMonitors read back: %v, want ztedge-ambassador, ztedge-jwt-auth (and ztedge-ratelimit with rate limits)", names)
	}
	rule, err := cluster.dynamic.Resource(prometheusRuleGVR).Namespace("ambassador").Get(ctx, "ztedge", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the PrometheusRule does not read back: %v", err)
	}
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	rules := 0
	for _, g := range groups {
		rs, _ := g.(map[string]any)["rules"].([]any)
		rules += len(rs)
	}
	if rules < 12 {
		t.Errorf("the PrometheusRule reads back with %d rules", rules)
	}
	t.Logf("admitted and read back: PodMonitors %v, PrometheusRule with %d rules", names, rules)

	start := time.Now()
	run(destroyTimeout, "destroy", "--stack", "local")
	t.Logf("ztedge destroy: %s", time.Since(start).Round(time.Second))
	cluster.checkNothingLeft(ctx, t, before)
}

// stripComments drops whole-line YAML comments (the CRD files start with their upstream URL).
func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// waitServed waits until the API server serves the resources (the CRDs are Established).
func waitServed(ctx context.Context, t *testing.T, c *clusterView, gvrs ...schema.GroupVersionResource) {
	t.Helper()
	for _, gvr := range gvrs {
		for {
			if _, err := c.dynamic.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s is not served: %v", gvr, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}
