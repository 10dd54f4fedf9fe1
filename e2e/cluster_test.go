//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// clusterView reads what the API server holds, any kind, through discovery.
type clusterView struct {
	discovery discovery.DiscoveryInterface
	dynamic   dynamic.Interface
}

func newClusterView(kubeconfig string) (*clusterView, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	d, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	return &clusterView{discovery: d, dynamic: dyn}, err
}

// kindResource is a listable resource of the API server.
type kindResource struct {
	gvr        schema.GroupVersionResource
	kind       string
	namespaced bool
}

func (c *clusterView) resources() ([]kindResource, error) {
	lists, err := c.discovery.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil, err
	}
	var out []kindResource
	for _, l := range lists {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			out = append(out, kindResource{gvr: gv.WithResource(r.Name), kind: r.Kind, namespaced: r.Namespaced})
		}
	}
	return out, nil
}

// churn is what the control plane itself creates and removes all the time, and what Kubernetes
// puts into every namespace: not objects the stack owns.
func churn(kind, name string) bool {
	switch kind {
	case "Event", "Lease", "Endpoints", "EndpointSlice", "Pod", "ReplicaSet", "ControllerRevision",
		"ComponentStatus", "TokenReview", "SelfSubjectReview", "Node", "APIService":
		return true
	case "ServiceAccount":
		return name == "default"
	case "ConfigMap":
		return name == "kube-root-ca.crt"
	}
	return false
}

// snapshot is every object of every listable kind, as "Kind namespace/name".
func (c *clusterView) snapshot(ctx context.Context) (map[string]bool, error) {
	kinds, err := c.resources()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, k := range kinds {
		list, err := c.dynamic.Resource(k.gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue // not listable for real (e.g. a review API)
		}
		for _, o := range list.Items {
			if !churn(k.kind, o.GetName()) {
				out[fmt.Sprintf("%s %s/%s", k.kind, o.GetNamespace(), o.GetName())] = true
			}
		}
	}
	return out, nil
}

// retainedNamespaces are documented as kept by destroy: the backends' namespaces hold the
// backends themselves (components.BackendNamespaces).
var retainedNamespaces = map[string]bool{"orders": true, "inventory": true}

// checkNothingLeft: after destroy, the cluster holds what it held before the first up, plus only
// the retained backend namespaces. Namespaces being deleted still count as left.
func (c *clusterView) checkNothingLeft(ctx context.Context, t *testing.T, before map[string]bool) {
	t.Helper()
	now, err := c.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for o := range now {
		if before[o] {
			continue
		}
		if ns, ok := strings.CutPrefix(o, "Namespace /"); ok && retainedNamespaces[ns] {
			continue
		}
		left = append(left, o)
	}
	sort.Strings(left)
	if len(left) > 0 {
		t.Errorf("destroy left %d object(s) the stack created:\n  %s", len(left), strings.Join(left, "\n  "))
	}
}

// checkEveryFieldSurvived: each Kubernetes object of the stack reads back from the API server
// with every field the program set (a field the schema does not know would be pruned).
func (c *clusterView) checkEveryFieldSurvived(ctx context.Context, t *testing.T, state []stateResource) {
	t.Helper()
	gvrs, err := c.kindsByGroupVersionKind()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range state {
		obj, gvk, ok := kubernetesInputs(r)
		if !ok {
			continue
		}
		res, found := gvrs[gvk]
		if !found {
			t.Errorf("%s: the API server does not serve %s", r.URN, gvk)
			continue
		}
		meta, _ := obj["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		ns, _ := meta["namespace"].(string)
		var live *unstructured.Unstructured
		if res.namespaced {
			live, err = c.dynamic.Resource(res.gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		} else {
			live, err = c.dynamic.Resource(res.gvr).Get(ctx, name, metav1.GetOptions{})
		}
		if err != nil {
			t.Errorf("%s: reading %s %s/%s back: %v", r.URN, gvk.Kind, ns, name, err)
			continue
		}
		checked++
		for _, d := range missingFields("", obj, live.Object) {
			t.Errorf("%s %s/%s: %s", gvk.Kind, ns, name, d)
		}
	}
	t.Logf("%d Kubernetes objects read back with every field the program set", checked)
	if checked == 0 {
		t.Error("no Kubernetes object found in the state")
	}
}

// kubernetesInputs is the object the program registered, for Kubernetes resources that map to
// one object (not Helm releases, not Patch resources, not the provider).
func kubernetesInputs(r stateResource) (map[string]any, schema.GroupVersionKind, bool) {
	if !strings.HasPrefix(r.Type, "kubernetes:") || strings.HasPrefix(r.Type, "kubernetes:helm.sh") ||
		strings.HasSuffix(r.Type, "Patch") || r.Type == "pulumi:providers:kubernetes" {
		return nil, schema.GroupVersionKind{}, false
	}
	apiVersion, _ := r.Outputs["apiVersion"].(string)
	kind, _ := r.Outputs["kind"].(string)
	if apiVersion == "" || kind == "" {
		return nil, schema.GroupVersionKind{}, false
	}
	return r.Inputs, schema.FromAPIVersionAndKind(apiVersion, kind), true
}

func (c *clusterView) kindsByGroupVersionKind() (map[schema.GroupVersionKind]kindResource, error) {
	_, lists, err := c.discovery.ServerGroupsAndResources()
	if err != nil && len(lists) == 0 {
		return nil, err
	}
	out := map[schema.GroupVersionKind]kindResource{}
	for _, l := range lists {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			if !strings.Contains(r.Name, "/") {
				out[gv.WithKind(r.Kind)] = kindResource{gvr: gv.WithResource(r.Name), kind: r.Kind, namespaced: r.Namespaced}
			}
		}
	}
	return out, nil
}

// missingFields lists each leaf of want that live lacks or holds with another value. Secret
// values (ciphertext in the state) and stringData (stored as data) are checked by key only.
func missingFields(path string, want, live any) []string {
	switch w := want.(type) {
	case map[string]any:
		if isSecretValue(w) {
			if live == nil {
				return []string{path + ": missing"}
			}
			return nil
		}
		l, ok := live.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, the API server has %v", path, live)}
		}
		var out []string
		for k, v := range w {
			if strings.HasPrefix(k, "__") {
				continue // Pulumi's own bookkeeping (__defaults)
			}
			lk := k
			if path == "" && k == "stringData" {
				lk = "data"
			}
			if path == ".metadata" && k == "annotations" {
				continue // Pulumi adds its own; ztedge sets none it relies on
			}
			out = append(out, missingFields(path+"."+k, v, l[lk])...)
		}
		return out
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(w) {
			return []string{fmt.Sprintf("%s: want %d items, the API server has %v", path, len(w), live)}
		}
		var out []string
		for i := range w {
			out = append(out, missingFields(fmt.Sprintf("%s[%d]", path, i), w[i], l[i])...)
		}
		return out
	default:
		if strings.Contains(path, ".stringData.") {
			if live == nil {
				return []string{path + ": missing"}
			}
			return nil
		}
		if !sameScalar(w, live) {
			return []string{fmt.Sprintf("%s: set %v, the API server has %v", path, w, live)}
		}
		return nil
	}
}

// isSecretValue: Pulumi writes a secret as {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ...}.
func isSecretValue(m map[string]any) bool {
	return m["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
}

// sameScalar compares JSON scalars (the state's numbers are float64, the API server's int64).
func sameScalar(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) == string(jb) {
		return true
	}
	var fa, fb any
	_ = json.Unmarshal(ja, &fa)
	_ = json.Unmarshal(jb, &fb)
	return reflect.DeepEqual(fa, fb)
}

// checkDeploymentsAvailable: every Deployment in the stack's namespaces reports Available.
func (c *clusterView) checkDeploymentsAvailable(ctx context.Context, t *testing.T, state []stateResource) {
	t.Helper()
	namespaces := map[string]bool{}
	for _, r := range state {
		if r.Type == "kubernetes:core/v1:Namespace" {
			if meta, ok := r.Outputs["metadata"].(map[string]any); ok {
				namespaces[fmt.Sprint(meta["name"])] = true
			}
		}
	}
	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	seen := 0
	for ns := range namespaces {
		list, err := c.dynamic.Resource(deployments).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list.Items {
			seen++
			conditions, _, _ := unstructured.NestedSlice(d.Object, "status", "conditions")
			available := false
			for _, c := range conditions {
				m, _ := c.(map[string]any)
				if m["type"] == "Available" && m["status"] == "True" {
					available = true
				}
			}
			if !available {
				t.Errorf("Deployment %s/%s is not Available: %v", ns, d.GetName(), conditions)
			}
		}
	}
	t.Logf("%d Deployments Available", seen)
	if seen == 0 {
		t.Error("the stack runs no Deployment")
	}
}

// allowed asks the API server whether user may verb resource (group/resource) in namespace ns
// ("" for every namespace), with a SubjectAccessReview: RBAC's answer, not our reading of roles.
func (c *clusterView) allowed(ctx context.Context, t *testing.T, user, verb, group, resource, ns string) bool {
	t.Helper()
	sar := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
		"spec": map[string]any{"user": user, "resourceAttributes": map[string]any{
			"verb": verb, "group": group, "resource": resource, "namespace": ns,
		}},
	}}
	gvr := schema.GroupVersionResource{Group: "authorization.k8s.io", Version: "v1", Resource: "subjectaccessreviews"}
	out, err := c.dynamic.Resource(gvr).Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview %s %s %s in %q: %v", user, verb, resource, ns, err)
	}
	ok, _, _ := unstructured.NestedBool(out.Object, "status", "allowed")
	return ok
}

// checkEmissaryReadsItsNamespaceOnly: Emissary's service account reads what it needs in its own
// namespace and nothing in any other (issue 16: Secrets and Services elsewhere configured the
// edge or leaked jwt-auth's keys).
func (c *clusterView) checkEmissaryReadsItsNamespaceOnly(ctx context.Context, t *testing.T, ns, account, otherNS string) {
	t.Helper()
	user := "system:serviceaccount:" + ns + ":" + account
	for _, want := range []struct {
		verb, group, resource, ns string
		allowed                   bool
	}{
		{"list", "", "secrets", ns, true},
		{"watch", "getambassador.io", "mappings", ns, true},
		{"list", "apiextensions.k8s.io", "customresourcedefinitions", "", true},
		{"get", "", "secrets", otherNS, false},
		{"list", "", "secrets", "", false},
		{"list", "", "services", otherNS, false},
		{"list", "getambassador.io", "mappings", otherNS, false},
		{"list", "getambassador.io", "mappings", "", false},
	} {
		if got := c.allowed(ctx, t, user, want.verb, want.group, want.resource, want.ns); got != want.allowed {
			t.Errorf("%s may %s %s/%s in %q: %v, want %v", account, want.verb, want.group, want.resource, want.ns, got, want.allowed)
		}
	}
}
