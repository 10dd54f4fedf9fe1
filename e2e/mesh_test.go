//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
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

// istioCRDs are Istio 1.30.3's CRDs, byte for byte (tests/testdata/istio-1.30.3/SOURCE.md).
const istioCRDs = "../tests/testdata/istio-1.30.3/crd-all.gen.yaml"

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// TestIstioMeshOnARealEngine deploys the local stack with upstreamMtls istio against an
// "existing Istio installation": Istio's own CRDs applied to a real kube-apiserver (no istiod: kwok
// runs no containers, so no sidecar is injected and no certificate issued; this proves the objects,
// the graph and the lifecycle, not the traffic). Through `ztedge` (the Automation API): up from an
// empty state, every object (the Istio Sidecar, PeerAuthentication and AuthorizationPolicy too)
// admitted and read back with every field, preview without changes, destroy leaving nothing.
func TestIstioMeshOnARealEngine(t *testing.T) {
	ctx, work, cp, cluster := startTestCluster(t, 25*time.Minute)
	start := time.Now()
	n, err := cluster.applyCRDs(ctx, istioCRDs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("applied %d Istio 1.30.3 CRDs (the existing installation), Established in %s", n, time.Since(start).Round(time.Second))
	before, err := cluster.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}

	p := newProject(t, filepath.Join(work, "ztedge"), cp.Kubeconfig)
	p.editStack(t, func(cfg map[string]any) { cfg["ztedge:upstreamMtls"] = "istio" })
	ztedge := p.build(t, "./cmd/ztedge")
	run := func(timeout time.Duration, args ...string) string { return p.run(t, timeout, ztedge, args...) }

	state := p.upAndReadBack(ctx, t, cluster, run, "upstreamMtls istio, empty state")
	cluster.checkDeploymentsAvailable(ctx, t, state)
	p.checkNoPlaintextKey(t)

	// The mesh objects are there, as the API server stores them.
	for _, o := range []struct {
		gvr       schema.GroupVersionResource
		namespace string
		name      string
		field     []string
		want      any
	}{
		{schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "peerauthentications"}, "orders", "orders-strict", []string{"spec", "mtls", "mode"}, "STRICT"},
		{schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}, "orders", "orders-from-ambassador", []string{"spec", "action"}, "ALLOW"},
		{schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "sidecars"}, "ambassador", "ambassador-certificates-only", nil, nil},
		{schema.GroupVersionResource{Group: "getambassador.io", Version: "v3alpha1", Resource: "tlscontexts"}, "ambassador", "istio-upstream", []string{"spec", "alpn_protocols"}, "istio"},
		{schema.GroupVersionResource{Group: "getambassador.io", Version: "v3alpha1", Resource: "mappings"}, "ambassador", "orders", []string{"spec", "tls"}, "istio-upstream"},
		{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "", "orders", []string{"metadata", "labels", "istio-injection"}, "enabled"},
	} {
		var live *unstructured.Unstructured
		if o.namespace != "" {
			live, err = cluster.dynamic.Resource(o.gvr).Namespace(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
		} else {
			live, err = cluster.dynamic.Resource(o.gvr).Get(ctx, o.name, metav1.GetOptions{})
		}
		if err != nil {
			t.Errorf("%s %s/%s: %v", o.gvr.Resource, o.namespace, o.name, err)
			continue
		}
		if o.field != nil {
			if got, _, _ := unstructured.NestedFieldNoCopy(live.Object, o.field...); got != o.want {
				t.Errorf("%s %s/%s: %s = %v, want %v", o.gvr.Resource, o.namespace, o.name, strings.Join(o.field, "."), got, o.want)
			}
		}
	}
	// Ambassador's pods carry the certificate-only sidecar's settings (the chart rendered them).
	pods, err := cluster.dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace("ambassador").
		List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=emissary-ingress"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("Ambassador's pods: %v (%d)", err, len(pods.Items))
	}
	for _, pod := range pods.Items {
		ann := pod.GetAnnotations()
		if pod.GetLabels()["sidecar.istio.io/inject"] != "true" || ann["sidecar.istio.io/interceptionMode"] != "NONE" || !strings.Contains(ann["proxy.istio.io/config"], "OUTPUT_CERTS: /etc/istio-certs") {
			t.Errorf("pod %s: labels %v annotations %v", pod.GetName(), pod.GetLabels(), ann)
		}
	}

	start = time.Now()
	run(destroyTimeout, "destroy", "--stack", "local")
	t.Logf("ztedge destroy: %s", time.Since(start).Round(time.Second))
	cluster.checkNothingLeft(ctx, t, before)
	ns, err := cluster.dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, "orders", metav1.GetOptions{})
	if err == nil && ns.GetLabels()["istio-injection"] != "" {
		t.Errorf("destroy left the injection label on the kept namespace orders: %v", ns.GetLabels())
	}
}

// applyCRDs creates every CustomResourceDefinition of a multi-document YAML file and waits until
// each is Established.
func (c *clusterView) applyCRDs(ctx context.Context, file string) (int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	var names []string
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return 0, err
		}
		if obj == nil || obj["kind"] != "CustomResourceDefinition" {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if _, err := c.dynamic.Resource(crdResource).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			return 0, fmt.Errorf("creating CRD %s: %w", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	for _, name := range names {
		err := waitFor(ctx, time.Minute, "CRD "+name+" Established", func() error {
			crd, err := c.dynamic.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, cond := range conditions {
				if m, _ := cond.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
			return fmt.Errorf("not Established yet")
		})
		if err != nil {
			return 0, err
		}
	}
	return len(names), nil
}
