package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/chartvalues"
	"github.com/ztedge/ztedge/internal/crdschema"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

const (
	typeRelease    = "kubernetes:helm.sh/v3:Release"
	typeChartV4    = "kubernetes:helm.sh/v4:Chart"
	typeConfigFile = "kubernetes:yaml/v2:ConfigFile"
)

// The chart values files the tests check keys against: the values.yaml of each pinned chart,
// byte for byte (each directory's SOURCE.md names the repository, tag and path, and its sha256,
// which TestUpstreamCopies checks).
//   - emissary-ingress 4.1.0 and emissary-crds-chart 4.1.0: charts/*/values.yaml at
//     emissary-ingress/emissary v4.1.0 (the CRD chart is kept whole in internal/crdschema).
//   - edge-stack: 8.10.1-rc.1, the newest found offline (not the exact version a stack pins);
//     its emissary-ingress subchart is checked against the emissary chart above.
const (
	emissaryValuesFile  = "tests/testdata/charts/emissary-ingress-4.1.0/values.yaml"
	crdsValuesFile      = "internal/crdschema/emissary/values.yaml" // the CRD chart crdschema renders
	edgeStackValuesFile = "tests/testdata/charts/edge-stack-8.10.1-rc.1/values.yaml"
)

func loadChart(t *testing.T, file string) *chartvalues.Chart {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	c, err := chartvalues.ParseChart(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// edgeStackConfig is the dev stack switched to Ambassador Edge Stack, with a secret license.
func edgeStackConfig(t *testing.T) stacks.MapSource {
	src := stackConfig(t, "dev", map[string]string{
		"ztedge:edition":               "edge-stack",
		"ztedge:edgeStackChartVersion": "8.10.1-rc.1",
		"ztedge:edgeStackCrdsUrl":      "https://app.getambassador.io/yaml/edge-stack/3.10.1-rc.1/aes-crds.yaml",
		"ztedge:edgeStackLicenseKey":   "test-license-jwt",
	})
	src.Secrets["ztedge:edgeStackLicenseKey"] = true
	return src
}

func mustRunSource(t *testing.T, src stacks.MapSource) *graph {
	t.Helper()
	g, err := run(t, "dev", src)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// releaseValues returns a release's values, failing if any key is unknown to the chart.
func releaseValues(t *testing.T, rel *mockengine.Resource) map[string]any {
	t.Helper()
	v, ok := input(rel, "values").(map[string]any)
	if !ok {
		t.Fatalf("release %s has no values", rel.Name)
	}
	return v
}

var emissaryPodLabels = map[string]any{"app.kubernetes.io/name": "emissary-ingress", "app.kubernetes.io/instance": "emissary-ingress"}

// wantAmbassadorPodValues is what both editions set for the Ambassador pods (module aside).
func wantAmbassadorPodValues(name string, replicas float64) map[string]any {
	selector := map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}}
	v := map[string]any{
		"nameOverride": name, "fullnameOverride": name, "replicaCount": replicas,
		"resources": map[string]any{"requests": map[string]any{"cpu": "200m", "memory": "300Mi"}, "limits": map[string]any{"memory": "600Mi"}},
		"affinity": map[string]any{"podAntiAffinity": map[string]any{"preferredDuringSchedulingIgnoredDuringExecution": []any{
			map[string]any{"weight": float64(100), "podAffinityTerm": map[string]any{"topologyKey": "kubernetes.io/hostname", "labelSelector": selector}},
		}}},
		"topologySpreadConstraints": []any{map[string]any{
			"maxSkew": float64(1), "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector,
		}},
		"service":                map[string]any{"type": "ClusterIP"},
		"adminService":           map[string]any{"create": true},
		"createDefaultListeners": false,
		"ingressClassResource":   map[string]any{"enabled": false},
		"scope":                  map[string]any{"singleNamespace": true},
		"env":                    map[string]any{"SCOUT_DISABLE": "1"},
		"security": map[string]any{
			"podSecurityContext":       map[string]any{"runAsNonRoot": true, "runAsUser": float64(8888), "seccompProfile": map[string]any{"type": "RuntimeDefault"}},
			"containerSecurityContext": map[string]any{"allowPrivilegeEscalation": false, "capabilities": map[string]any{"drop": []any{"ALL"}}},
		},
	}
	if replicas >= 2 {
		v["podDisruptionBudget"] = map[string]any{"minAvailable": float64(1)}
	}
	return v
}

// checkModule: diagnostics stay off, and the Module the chart renders from the values is valid
// against the Module CRD.
func checkModule(t *testing.T, module any) {
	t.Helper()
	m, _ := module.(map[string]any)
	if !reflect.DeepEqual(m["diagnostics"], map[string]any{"enabled": false, "allow_non_local": false}) {
		t.Errorf("module diagnostics %v: want disabled and local only", m["diagnostics"])
	}
	// The Module CRD leaves config untyped: a misspelt key would be ignored silently, so each key
	// must be one Emissary 4.1.0 reads.
	known := emissaryModuleKeys(t)
	for k := range m {
		if !known[k] {
			t.Errorf("module config key %q is not one Emissary 4.1.0 reads (tests/testdata/emissary/module-keys-4.1.0.txt)", k)
		}
	}
	v, err := crdschema.LoadEmissary()
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range v.Validate(map[string]any{
		"apiVersion": "getambassador.io/v3alpha1", "kind": "Module",
		"metadata": map[string]any{"name": "ambassador", "namespace": "ambassador"},
		"spec":     map[string]any{"config": m},
	}) {
		t.Errorf("Module rendered from the values: %v", err)
	}
}

// emissaryModuleKeys are the `ambassador` Module config keys Emissary 4.1.0 reads.
func emissaryModuleKeys(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "tests/testdata/emissary/module-keys-4.1.0.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out[line] = true
		}
	}
	return out
}

func withoutKey(m map[string]any, key string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func TestEmissaryReleases(t *testing.T) {
	appChart := loadChart(t, emissaryValuesFile)
	crdChart := loadChart(t, crdsValuesFile)
	for _, stack := range stackFiles {
		t.Run(stack, func(t *testing.T) {
			g := mustRun(t, stack)
			crds := g.one(typeRelease, "ambassador-crds")
			app := g.one(typeRelease, "ambassador")
			for rel, want := range map[*mockengine.Resource]map[string]any{
				crds: {"name": "emissary-crds", "chart": "oci://ghcr.io/emissary-ingress/emissary-crds-chart", "version": "4.1.0", "namespace": "ambassador", "atomic": true},
				app:  {"name": "emissary-ingress", "chart": "oci://ghcr.io/emissary-ingress/emissary-ingress", "version": "4.1.0", "namespace": "ambassador", "atomic": true},
			} {
				for k, v := range want {
					if got := input(rel, k); got != v {
						t.Errorf("%s: %s = %v, want %v", rel.Name, k, got, v)
					}
				}
				if !strings.Contains(rel.Provider, "pulumi:providers:kubernetes") {
					t.Errorf("%s does not use the cluster's provider", rel.Name)
				}
				// Pods need nodes; the pod webhook that injects readiness gates needs the controller.
				if !g.dependsOn(rel, g.one("eks:index:ManagedNodeGroup")) || !g.dependsOn(rel, g.one(typeRelease, "alb-controller")) {
					t.Errorf("%s does not wait for the node group and the load balancer controller", rel.Name)
				}
				if !g.dependsOn(rel, g.one(typeNamespace, "ambassador")) {
					t.Errorf("%s does not wait for its namespace", rel.Name)
				}
			}
			if !g.dependsOn(app, crds) || g.dependsOn(crds, app) {
				t.Errorf("the CRD release must come first: app→crds %v, crds→app %v", g.dependsOn(app, crds), g.dependsOn(crds, app))
			}
			if len(g.ofType(typeConfigFile)) != 0 {
				t.Errorf("Emissary needs no aes-crds.yaml")
			}

			crdValues := releaseValues(t, crds)
			if !reflect.DeepEqual(crdValues, map[string]any{"enableLegacyVersions": false}) {
				t.Errorf("CRD chart values %v", crdValues)
			}
			if unknown := crdChart.UnknownKeys(crdValues); len(unknown) > 0 {
				t.Errorf("CRD chart values the chart does not define: %v", unknown)
			}

			values := releaseValues(t, app)
			want := wantAmbassadorPodValues("emissary-ingress", 2)
			want["waitForApiext"] = map[string]any{"enabled": false}
			want["rbac"] = map[string]any{"create": false}
			// With monitoring on, Prometheus scrapes the metrics relay beside Envoy
			// (TestPrometheusNeverReachesTheAdminPort checks what it runs).
			cfg, err := stacks.Load(stackConfig(t, stack, nil), stack)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Monitoring.Enabled() {
				want = components.MergeValues(want, components.AmbassadorMetricsRelayValues(cfg.Auth.Image))
			}
			// JSON on both sides: the relay's values are typed Go, the release's came through the engine.
			gotJSON, _ := json.Marshal(withoutKey(values, "module"))
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("values:\n got %s\nwant %s", gotJSON, wantJSON)
			}
			checkModule(t, values["module"])
			// ztedge's flat ClusterRole (CRDs only; no aggregation to race with on delete) and its
			// Role in Ambassador's namespace are bound before Ambassador starts and unbound after
			// it stops.
			role := g.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "ambassador-rbac")
			binding := g.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "ambassador-rbac")
			if input(role, "aggregationRule") != nil || len(input(role, "rules").([]any)) != len(components.AmbassadorCRDRules()) {
				t.Errorf("Ambassador's ClusterRole: aggregationRule %v, rules %v", input(role, "aggregationRule"), input(role, "rules"))
			}
			watch := g.one("kubernetes:rbac.authorization.k8s.io/v1:Role", "ambassador-watch")
			watchBinding := g.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "ambassador-watch")
			if ns := input(watch, "metadata", "namespace"); ns != "ambassador" || len(input(watch, "rules").([]any)) != len(components.AmbassadorWatchRules()) {
				t.Errorf("Ambassador's Role: namespace %v, rules %v", ns, input(watch, "rules"))
			}
			if !g.dependsOn(app, binding) || !g.dependsOn(binding, role) || !g.dependsOn(app, watchBinding) || !g.dependsOn(watchBinding, watch) {
				t.Errorf("the Emissary release must wait for its bindings (and those for their roles)")
			}
			if unknown := appChart.UnknownKeys(withoutKey(values, "module")); len(unknown) > 0 {
				t.Errorf("values the chart does not define: %v", unknown)
			}
		})
	}
}

func TestAmbassadorNamespace(t *testing.T) {
	for edition, level := range map[string]string{"emissary": "restricted", "edge-stack": "baseline"} {
		src := stackConfig(t, "dev", nil)
		if edition == "edge-stack" {
			src = edgeStackConfig(t)
		}
		g := mustRunSource(t, src)
		labels, _ := input(g.one(typeNamespace, "ambassador"), "metadata", "labels").(map[string]any)
		want := map[string]any{
			"pod-security.kubernetes.io/enforce":      level,
			"pod-security.kubernetes.io/warn":         "restricted",
			"pod-security.kubernetes.io/audit":        "restricted",
			"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
		}
		if !reflect.DeepEqual(labels, want) {
			t.Errorf("%s: namespace labels %v, want %v", edition, labels, want)
		}
	}
}

func TestEdgeStackRelease(t *testing.T) {
	g := mustRunSource(t, edgeStackConfig(t))
	if n := len(g.ofType(typeRelease)); n != 2 {
		t.Errorf("%d Helm releases, want 2 (controller, edge-stack): no emissary CRD chart", n)
	}
	crds := g.one(typeConfigFile)
	if !crds.Remote || input(crds, "file") != "https://app.getambassador.io/yaml/edge-stack/3.10.1-rc.1/aes-crds.yaml" {
		t.Errorf("aes-crds.yaml: remote %v, file %v", crds.Remote, input(crds, "file"))
	}
	license := g.secretNamed("ambassador", "ambassador-edge-stack")
	if input(license, "type") != "Opaque" || !reflect.DeepEqual(plain(license, "stringData"), map[string]any{"license-key": "test-license-jwt"}) || !isSecret(license, "stringData") {
		t.Errorf("license Secret: type %v, data %v, secret %v", input(license, "type"), plain(license, "stringData"), isSecret(license, "stringData"))
	}

	rel := g.one(typeRelease, "ambassador")
	for k, v := range map[string]any{"name": "edge-stack", "chart": "edge-stack", "version": "8.10.1-rc.1", "namespace": "ambassador"} {
		if got := input(rel, k); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if repo := input(rel, "repositoryOpts", "repo"); repo != "https://app.getambassador.io" {
		t.Errorf("repository %v", repo)
	}
	// The CRDs (and the apiext webhook they bring, awaited by the provider) and the license first.
	for _, dep := range []*mockengine.Resource{crds, license, g.one("eks:index:ManagedNodeGroup")} {
		if !g.dependsOn(rel, dep) {
			t.Errorf("edge-stack release does not wait for %s %s", dep.Type, dep.Name)
		}
	}
	if !g.dependsOn(crds, g.one("eks:index:ManagedNodeGroup")) {
		t.Errorf("aes-crds.yaml runs the apiext Deployment: it must wait for the nodes")
	}

	values := releaseValues(t, rel)
	sub, _ := values["emissary-ingress"].(map[string]any)
	wantSub := wantAmbassadorPodValues("edge-stack", 2)
	wantSub["agent"] = map[string]any{"enabled": false}
	if got := withoutKey(sub, "module"); !reflect.DeepEqual(got, wantSub) {
		t.Errorf("emissary-ingress values:\n got %#v\nwant %#v", got, wantSub)
	}
	checkModule(t, sub["module"])
	wantTop := map[string]any{
		"licenseKey": map[string]any{"createSecret": false}, "authService": map[string]any{"create": false},
		"rateLimit": map[string]any{"create": true}, "createDevPortalMappings": false,
	}
	if got := withoutKey(values, "emissary-ingress"); !reflect.DeepEqual(got, wantTop) {
		t.Errorf("edge-stack values:\n got %#v\nwant %#v", got, wantTop)
	}

	// Top-level keys against the edge-stack chart; subchart keys against the emissary chart or
	// the edge-stack chart's own emissary-ingress block.
	edgeStack, emissary := loadChart(t, edgeStackValuesFile), loadChart(t, emissaryValuesFile)
	if unknown := edgeStack.UnknownKeys(withoutKey(values, "emissary-ingress")); len(unknown) > 0 {
		t.Errorf("edge-stack values the chart does not define: %v", unknown)
	}
	inBlock := map[string]bool{}
	for _, k := range edgeStack.UnknownKeys(map[string]any{"emissary-ingress": withoutKey(sub, "module")}) {
		inBlock[strings.TrimPrefix(k, "emissary-ingress.")] = true
	}
	for _, k := range emissary.UnknownKeys(withoutKey(sub, "module")) {
		if inBlock[k] {
			t.Errorf("emissary-ingress.%s is defined by neither the subchart nor edge-stack's block", k)
		}
	}
}

// TestAmbassadorRBACMatchesTheChart: the ClusterRole ztedge grants Ambassador holds exactly the
// rules of the pinned chart's ClusterRole "<name>-crd", and its Role those of the chart's Role
// under scope.singleNamespace (no PodSecurityPolicies), read from the chart's templates/rbac.yaml.
func TestAmbassadorRBACMatchesTheChart(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "tests/testdata/charts/emissary-ingress-4.1.0/templates/rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The aggregate's own "rules: []" is not a "rules:" block; the next two are -crd and -watch.
	blocks := strings.Split(string(data), "\nrules:\n")
	if len(blocks) < 3 {
		t.Fatalf("templates/rbac.yaml has %d rules blocks; the chart changed shape", len(blocks)-1)
	}
	var chartRules [][]map[string][]string
	for _, b := range blocks[1:3] {
		if i := strings.Index(b, "{{"); i >= 0 {
			b = b[:i] // the PodSecurityPolicy rule and what follows are conditional
		}
		if i := strings.Index(b, "\n---"); i >= 0 {
			b = b[:i]
		}
		var rules []map[string][]string
		if err := yaml.Unmarshal([]byte(b), &rules); err != nil {
			t.Fatalf("rules block %q: %v", b, err)
		}
		chartRules = append(chartRules, rules)
	}
	if !strings.Contains(blocks[1], "{{- if .Values.scope.singleNamespace }}\nkind: Role\n") {
		t.Errorf("the chart's second rules block is no longer its single-namespace Role")
	}
	for i, got := range [][]map[string][]string{components.AmbassadorCRDRules(), components.AmbassadorWatchRules()} {
		if !reflect.DeepEqual(got, chartRules[i]) {
			t.Errorf("ztedge grants\n  %v\nthe chart grants\n  %v", got, chartRules[i])
		}
	}
}
