package tests

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/stacks"
)

// The local stack is the Kubernetes half of the graph on an existing cluster: no AWS resource of
// any kind, no ALB controller, and Envoy's TLS port exposed by a NodePort Service.
func TestLocalStackCreatesNoAWSResources(t *testing.T) {
	g := mustRun(t, "local")
	for _, r := range g.all {
		if strings.HasPrefix(r.Type, "aws:") || strings.HasPrefix(r.Type, "eks:") || r.Type == "pulumi:providers:aws" {
			t.Errorf("local stack registers %s %s", r.Type, r.Name)
		}
		if r.Type == "kubernetes:networking.k8s.io/v1:Ingress" {
			t.Errorf("local stack registers an Ingress (%s): there is no ALB controller to serve it", r.Name)
		}
	}
	for _, rel := range g.ofType("kubernetes:helm.sh/v3:Release") {
		if strings.Contains(str(input(rel, "chart")), "aws-load-balancer-controller") {
			t.Error("local stack installs the AWS Load Balancer Controller")
		}
	}
	if n := len(g.ofType("ztedge:ambassador:Ambassador")) + len(g.ofType("kubernetes:getambassador.io/v3alpha1:Host")); n < 2 {
		t.Errorf("the edge itself is missing from the local graph (%d of Ambassador and Host)", n)
	}

	svc := g.one("kubernetes:core/v1:Service", "ztedge-edge")
	if input(svc, "spec", "type") != "NodePort" {
		t.Errorf("service type %v", input(svc, "spec", "type"))
	}
	ports, _ := input(svc, "spec", "ports").([]any)
	if len(ports) != 1 {
		t.Fatalf("the local Service must expose exactly the TLS port, got %v", ports)
	}
	p := ports[0].(map[string]any)
	if p["port"] != 443.0 || p["targetPort"] != 8443.0 || p["nodePort"] != 30443.0 {
		t.Errorf("port %v: want 443 → 8443 on node port 30443", p)
	}
	if !g.dependsOn(svc, g.one("kubernetes:helm.sh/v3:Release", "ambassador")) {
		t.Error("the local Service does not wait for the Ambassador release")
	}

	// The NetworkPolicies admit the edge's traffic from the node CIDR, in place of the VPC's.
	admitted := false
	for _, np := range g.ofType("kubernetes:networking.k8s.io/v1:NetworkPolicy") {
		admitted = admitted || strings.Contains(str(input(np, "spec")), "172.16.0.0/12")
	}
	if !admitted {
		t.Error("no NetworkPolicy admits localNodeCidr 172.16.0.0/12")
	}
}

func TestLocalProviderUsesTheConfiguredKubeconfig(t *testing.T) {
	g, err := run(t, "local", stackConfig(t, "local", map[string]string{
		"ztedge:kubeconfig": "/home/me/.kube/kind.yaml", "ztedge:kubeContext": "kind-ztedge",
	}))
	if err != nil {
		t.Fatal(err)
	}
	p := g.one("pulumi:providers:kubernetes", "local")
	if input(p, "kubeconfig") != "/home/me/.kube/kind.yaml" || input(p, "context") != "kind-ztedge" {
		t.Errorf("provider inputs %v", p.Inputs.Mappable())
	}
	// Empty settings leave the provider to the ambient kubeconfig and its current context.
	g = mustRun(t, "local")
	p = g.one("pulumi:providers:kubernetes", "local")
	if _, set := p.Inputs["kubeconfig"]; set {
		t.Errorf("kubeconfig set to %v; empty should mean the ambient kubeconfig", input(p, "kubeconfig"))
	}
}

// AWS-only keys are neither required nor checked on the local platform.
func TestLocalIgnoresAWSKeys(t *testing.T) {
	src := stackConfig(t, "local", map[string]string{"aws:region": "not-a-region", "ztedge:hostedZoneId": "", "ztedge:natGateways": "many"})
	if _, err := run(t, "local", src); err != nil {
		t.Errorf("AWS keys should be ignored on platform local: %v", err)
	}
}

func TestLocalConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		edit map[string]string
		key  string
	}{
		{map[string]string{"ztedge:platform": "gke"}, "ztedge:platform"},
		{map[string]string{"ztedge:clientAuth": "alb-passthrough"}, "ztedge:clientAuth"},
		{map[string]string{"ztedge:localServiceType": "ClusterIP"}, "ztedge:localServiceType"},
		{map[string]string{"ztedge:localNodePort": "443"}, "ztedge:localNodePort"},
		{map[string]string{"ztedge:localNodeCidr": "172.18.0.1/16"}, "ztedge:localNodeCidr"},
	} {
		_, err := run(t, "local", stackConfig(t, "local", tc.edit))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%v: want an error naming %s, got %v", tc.edit, tc.key, err)
		}
	}
	// eks stays the default, and still requires its AWS settings.
	_, err := run(t, "dev", stackConfig(t, "dev", map[string]string{"aws:region": ""}))
	if err == nil || !strings.Contains(err.Error(), "aws:region") {
		t.Errorf("dev without aws:region: %v", err)
	}
}

// TestProvidersForMatchesWhatEachStackRegisters: `ztedge` installs the provider plugins that
// stacks.ProvidersFor names for a stack's platform (no AWS provider for the local stack, so it runs
// offline); the list must be exactly the packages whose resources the program registers.
func TestProvidersForMatchesWhatEachStackRegisters(t *testing.T) {
	for _, stack := range []string{"dev", "prod", "local"} {
		g := mustRun(t, stack)
		used := map[string]bool{}
		for _, r := range g.all {
			pkg, _, _ := strings.Cut(strings.TrimPrefix(r.Type, "pulumi:providers:"), ":")
			if pkg != stacks.Namespace && pkg != "pulumi" {
				used[pkg] = true
			}
		}
		var got []string
		for p := range used {
			got = append(got, p)
		}
		sort.Strings(got)
		src, err := stacks.ReadStackFile(repoRoot(t), stack)
		if err != nil {
			t.Fatal(err)
		}
		if want := stacks.ProvidersFor(stacks.PlatformOf(src)); !reflect.DeepEqual(got, want) {
			t.Errorf("stack %s registers resources of %v; stacks.ProvidersFor says %v", stack, got, want)
		}
	}
}
