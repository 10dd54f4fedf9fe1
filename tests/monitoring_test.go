package tests

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/chartvalues"
	"github.com/ztedge/ztedge/internal/crdschema"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

// Issue 10, items 1 and 2: what Prometheus scrapes, who may scrape, the rules and the dashboard.

const (
	typePodMonitor     = "kubernetes:" + components.MonitoringAPIVersion + ":PodMonitor"
	typePrometheusRule = "kubernetes:" + components.MonitoringAPIVersion + ":PrometheusRule"
	monitoringChartDir = "tests/testdata/charts/kube-prometheus-stack-88.5.3"
)

var monitoringRunsCache = map[string]edgeRun{}

// forEachMonitoredRun runs f on every stack (dev, prod, local) × clientAuth mode × edition with
// monitoring on: existing everywhere, install where the stack file says so (prod) and on one dev
// run.
func forEachMonitoredRun(t *testing.T, f func(t *testing.T, r edgeRun)) {
	sources := edgeSources(t, true)
	for _, src := range sources {
		if src.Values["ztedge:monitoring"] == "" {
			src.Values["ztedge:monitoring"] = components.MonitoringExisting
		}
	}
	install := stackConfig(t, "dev", map[string]string{"ztedge:monitoring": components.MonitoringInstall})
	sources["dev/emissary/"+components.ClientAuthALBPassthrough+"/install"] = install
	runCached(t, sources, monitoringRunsCache, f)
}

// scrapeTargets are the pods each run must have scraped: PodMonitor name → the workload's pod
// labels and the metrics port (name, number).
type scrapeTarget struct {
	pods     map[string]string
	portName string
	port     int
}

func expectedTargets(g *graph, cfg *stacks.Config) map[string]scrapeTarget {
	out := map[string]scrapeTarget{
		"ztedge-ambassador": {components.AmbassadorNamesFor(cfg.Edge.Edition).PodLabels, components.AmbassadorMetricsPortName, components.AmbassadorMetricsPort},
		"ztedge-jwt-auth":   {components.JwtAuth.Labels, components.MetricsPortName, components.AuthMetricsPort},
	}
	if components.HasRateLimits(cfg.Edge.Backends) && cfg.Edge.Edition == components.EditionEmissary {
		// The rate-limit server's own Deployment selector (not Redis's).
		sel := map[string]string{}
		for k, v := range input(g.one(typeDeployment, components.RateLimitServiceName), "spec", "selector", "matchLabels").(map[string]any) {
			sel[k] = str(v)
		}
		out["ztedge-ratelimit"] = scrapeTarget{sel, components.MetricsPortName, components.RateLimitMetricsPort}
	}
	return out
}

// admitted is one (peer, port) a NetworkPolicy's ingress rule lets in.
type admitted struct {
	policy string
	peer   map[string]any
	port   float64
}

func ingressOf(p np) []admitted {
	var out []admitted
	for _, rule := range p.ingress {
		rm, _ := rule.(map[string]any)
		from, _ := rm["from"].([]any)
		ports, _ := rm["ports"].([]any)
		if len(from) == 0 {
			from = []any{map[string]any{"everyone": true}}
		}
		if len(ports) == 0 {
			ports = []any{map[string]any{"port": float64(-1)}}
		}
		for _, f := range from {
			for _, port := range ports {
				n, _ := port.(map[string]any)["port"].(float64)
				out = append(out, admitted{policy: p.r.Name, peer: f.(map[string]any), port: n})
			}
		}
	}
	return out
}

func fromMonitoring(peer map[string]any, ns string) bool {
	sel, _ := peer["namespaceSelector"].(map[string]any)
	ml, _ := sel["matchLabels"].(map[string]any)
	return ml["kubernetes.io/metadata.name"] == ns
}

// TestScrapesComeOnlyFromTheMonitoringNamespace: each scraped workload admits the monitoring
// namespace's Prometheus pods, on its metrics port and on nothing else: not jwt-auth's /auth and
// /token port, not Envoy's 8443, not the rate-limit server's gRPC port, not Redis. No policy
// admits the monitoring namespace anywhere else. jwt-auth and the rate-limit server listen on that
// port (the flag, the environment) and name it as the PodMonitor does.
func TestScrapesComeOnlyFromTheMonitoringNamespace(t *testing.T) {
	forEachMonitoredRun(t, func(t *testing.T, r edgeRun) {
		g, cfg := r.g, r.cfg
		mon := cfg.Monitoring
		targets := expectedTargets(g, cfg)
		seen := map[string]bool{}
		for _, p := range policies(g) {
			for _, a := range ingressOf(p) {
				if !fromMonitoring(a.peer, mon.Namespace) {
					continue
				}
				ok := false
				for name, tg := range targets {
					if p.namespace == cfg.Edge.Namespace && reflect.DeepEqual(p.pods, anyMap(tg.pods)) && a.port == float64(tg.port) {
						ok, seen[name] = true, true
					}
				}
				if !ok {
					t.Errorf("policy %s admits the monitoring namespace to pods %v port %v: not a metrics port", a.policy, p.pods, a.port)
				}
				pods, _ := a.peer["podSelector"].(map[string]any)
				if want := anyMap(mon.ScraperLabels); !reflect.DeepEqual(pods["matchLabels"], want) && !(len(want) == 0 && len(pods) == 0) {
					t.Errorf("policy %s admits pods %v of the monitoring namespace, want %v", a.policy, pods, want)
				}
			}
		}
		for name := range targets {
			if !seen[name] {
				t.Errorf("no NetworkPolicy admits Prometheus to %s's metrics port: the scrape would be dropped", name)
			}
		}
		// The PodMonitors: one per target, selecting the workload's pods and its metrics port.
		monitors := map[string]*mockengine.Resource{}
		for _, m := range g.ofType(typePodMonitor) {
			monitors[str(input(m, "metadata", "name"))] = m
		}
		if got, want := sortedKeys(monitors), sortedKeys(targets); !reflect.DeepEqual(got, want) {
			t.Fatalf("PodMonitors %v, want %v", got, want)
		}
		for name, tg := range targets {
			m := monitors[name]
			if ns := input(m, "metadata", "namespace"); ns != cfg.Edge.Namespace {
				t.Errorf("%s in namespace %v, want %s", name, ns, cfg.Edge.Namespace)
			}
			if sel := input(m, "spec", "selector", "matchLabels"); !reflect.DeepEqual(sel, anyMap(tg.pods)) {
				t.Errorf("%s selects %v, want %v", name, sel, tg.pods)
			}
			eps, _ := input(m, "spec", "podMetricsEndpoints").([]any)
			if len(eps) != 1 || eps[0].(map[string]any)["port"] != tg.portName || eps[0].(map[string]any)["path"] != "/metrics" {
				t.Errorf("%s endpoints %v, want port %s path /metrics", name, eps, tg.portName)
			}
		}
		// The workloads serve that port.
		_, _, c := authPod(t, g)
		if flags := authFlags(t, c); flags["--metrics-listen"] != fmt.Sprintf(":%d", components.AuthMetricsPort) {
			t.Errorf("jwt-auth --metrics-listen=%q, want :%d", flags["--metrics-listen"], components.AuthMetricsPort)
		}
		if !hasPort(c, components.MetricsPortName, components.AuthMetricsPort) {
			t.Errorf("jwt-auth has no container port %s/%d: %v", components.MetricsPortName, components.AuthMetricsPort, c["ports"])
		}
		if _, ok := targets["ztedge-ratelimit"]; ok {
			d := g.one(typeDeployment, components.RateLimitServiceName)
			rc := input(d, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
			env := map[string]any{}
			for _, e := range rc["env"].([]any) {
				env[str(e.(map[string]any)["name"])] = e.(map[string]any)["value"]
			}
			if env["USE_PROMETHEUS"] != "true" || env["PROMETHEUS_ADDR"] != fmt.Sprintf(":%d", components.RateLimitMetricsPort) || !hasPort(rc, components.MetricsPortName, components.RateLimitMetricsPort) {
				t.Errorf("ratelimit does not serve Prometheus on %d: env %v ports %v", components.RateLimitMetricsPort, env, rc["ports"])
			}
		}
	})
}

// TestPrometheusNeverReachesTheAdminPort (issue 16, item 4): with monitoring on, Prometheus
// scrapes the metrics relay beside Envoy, and Emissary's admin port 8877 — diagd's API behind a
// header any caller can send, pprof with no check — still admits the load balancer's health
// checks alone: no NetworkPolicy lets a pod (Prometheus's or any other) reach it. The relay is
// the jwt-auth image's `metrics-relay` on the port the PodMonitor names.
func TestPrometheusNeverReachesTheAdminPort(t *testing.T) {
	forEachMonitoredRun(t, func(t *testing.T, r edgeRun) {
		g, cfg := r.g, r.cfg
		amb := components.AmbassadorNamesFor(cfg.Edge.Edition).PodLabels
		_, lbCidrs := loadBalancerSubnets(g, cfg)
		if cfg.Platform == stacks.PlatformLocal {
			lbCidrs = []string{cfg.Local.NodeCidr}
		}
		for _, p := range policies(g) {
			if p.namespace != cfg.Edge.Namespace || !selectsAll(p.pods, amb) {
				continue
			}
			for _, a := range ingressOf(p) {
				if a.port != components.AmbassadorAdminPort && a.port != -1 {
					continue
				}
				block, _ := a.peer["ipBlock"].(map[string]any)
				if block == nil || !slices.Contains(lbCidrs, str(block["cidr"])) {
					t.Errorf("policy %s admits %v to Ambassador's admin port %d (diagd, pprof): want the load balancer subnets %v only", a.policy, a.peer, components.AmbassadorAdminPort, lbCidrs)
				}
			}
		}
		values := releaseValues(t, g.one(typeRelease, "ambassador"))
		if cfg.Edge.Edition == components.EditionEdgeStack {
			values, _ = values["emissary-ingress"].(map[string]any)
		}
		sidecars, _ := values["sidecarContainers"].([]any)
		var relay map[string]any
		for _, c := range sidecars {
			if c.(map[string]any)["name"] == components.AmbassadorMetricsRelay {
				relay = c.(map[string]any)
			}
		}
		if relay == nil {
			t.Fatalf("the Ambassador pod has no %s sidecar: %v", components.AmbassadorMetricsRelay, sidecars)
		}
		wantArgs := []any{"metrics-relay", fmt.Sprintf("--listen=:%d", components.AmbassadorMetricsPort)}
		if relay["image"] != cfg.Auth.Image || !reflect.DeepEqual(relay["args"], wantArgs) {
			t.Errorf("relay runs %v %v, want %s %v", relay["image"], relay["args"], cfg.Auth.Image, wantArgs)
		}
		if !hasPort(relay, components.AmbassadorMetricsPortName, components.AmbassadorMetricsPort) {
			t.Errorf("relay has no port %s/%d: %v", components.AmbassadorMetricsPortName, components.AmbassadorMetricsPort, relay["ports"])
		}
	})
}

func anyMap(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func hasPort(container map[string]any, name string, port int) bool {
	ports, _ := container["ports"].([]any)
	for _, p := range ports {
		pm := p.(map[string]any)
		if pm["name"] == name && pm["containerPort"] == float64(port) {
			return true
		}
	}
	return false
}

// TestMonitoringObjectsMatchTheCRDs: every PodMonitor and PrometheusRule, in every run, passes the
// schema of the Prometheus Operator CRDs the pinned chart installs (unknown fields are errors).
func TestMonitoringObjectsMatchTheCRDs(t *testing.T) {
	dir := filepath.Join(repoRoot(t), monitoringChartDir)
	v, err := crdschema.Load(filepath.Join(dir, "crd-podmonitors.yaml"), filepath.Join(dir, "crd-servicemonitors.yaml"), filepath.Join(dir, "crd-prometheusrules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	forEachMonitoredRun(t, func(t *testing.T, r edgeRun) {
		objs := append(r.g.ofType(typePodMonitor), r.g.ofType(typePrometheusRule)...)
		if len(r.g.ofType(typePrometheusRule)) != 1 || len(objs) < 3 {
			t.Fatalf("%d monitoring objects, want the PrometheusRule and a PodMonitor per target", len(objs))
		}
		for _, o := range objs {
			obj, _ := plain(o).(map[string]any)
			for _, err := range v.Validate(obj) {
				t.Errorf("%s %s: %v", o.Type, o.Name, err)
			}
			// What install and existing both wait for: the workloads' namespace (and with install
			// the chart, which brings the CRDs).
			if r.cfg.Monitoring.Mode == components.MonitoringInstall && !r.g.dependsOn(o, r.g.one(typeRelease, "monitoring")) {
				t.Errorf("%s %s does not wait for kube-prometheus-stack (its CRDs)", o.Type, o.Name)
			}
		}
	})
}

// TestMonitoringSchemaCheckCatchesInventedFields: the check above can fail.
func TestMonitoringSchemaCheckCatchesInventedFields(t *testing.T) {
	dir := filepath.Join(repoRoot(t), monitoringChartDir)
	v, err := crdschema.Load(filepath.Join(dir, "crd-podmonitors.yaml"), filepath.Join(dir, "crd-prometheusrules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pm := map[string]any{
		"apiVersion": components.MonitoringAPIVersion, "kind": "PodMonitor", "metadata": map[string]any{"name": "x"},
		"spec": components.PodMonitorSpec(map[string]string{"a": "b"}, "metrics"),
	}
	if errs := v.Validate(pm); len(errs) != 0 {
		t.Fatalf("the real spec fails: %v", errs)
	}
	pm["spec"].(map[string]any)["endpoints"] = []any{} // ServiceMonitor's field name
	if errs := v.Validate(pm); len(errs) == 0 {
		t.Error("a PodMonitor with spec.endpoints (a ServiceMonitor field) passed the schema check")
	}
	rule, err := components.PrometheusRuleSpec()
	if err != nil {
		t.Fatal(err)
	}
	rule["groups"].([]any)[0].(map[string]any)["rules"].([]any)[0].(map[string]any)["runbook"] = "top-level runbook"
	pr := map[string]any{"apiVersion": components.MonitoringAPIVersion, "kind": "PrometheusRule", "metadata": map[string]any{"name": "x"}, "spec": rule}
	if errs := v.Validate(pr); len(errs) == 0 {
		t.Error("a rule with a top-level runbook field passed the schema check")
	}
}

// TestMonitoringChartValues: every kube-prometheus-stack value ztedge sets is a key of the pinned
// chart's values.yaml, and the pinned copy is the chart version the program installs by default.
func TestMonitoringChartValues(t *testing.T) {
	defaults, err := chartvalues.LoadDefaults(filepath.Join(repoRoot(t), monitoringChartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	g := mustRun(t, "prod")
	rel := g.one(typeRelease, "monitoring")
	if unknown := chartvalues.UnknownKeys(defaults, input(rel, "values").(map[string]any)); len(unknown) > 0 {
		t.Errorf("values not in kube-prometheus-stack's values.yaml: %v", unknown)
	}
	// The controlled switch: an invented key is reported.
	if unknown := chartvalues.UnknownKeys(defaults, map[string]any{"grafana": map[string]any{"adminPasswordd": "x"}}); len(unknown) != 1 {
		t.Errorf("an invented key was not reported: %v", unknown)
	}
	for _, k := range stacks.Keys {
		if k.Name == "monitoringChartVersion" && !strings.HasSuffix(monitoringChartDir, "-"+str(k.Default)) {
			t.Errorf("monitoringChartVersion defaults to %v but the values checked are %s", k.Default, monitoringChartDir)
		}
	}
	if v := input(rel, "version"); !strings.HasSuffix(monitoringChartDir, "-"+str(v)) {
		t.Errorf("the release installs %v, the values checked are %s", v, monitoringChartDir)
	}
	// Grafana's admin password is generated, a secret, and the chart reads it from the Secret.
	s := g.one(typeSecret, "monitoring-grafana-admin")
	if !isSecret(s, "stringData") {
		t.Error("Grafana's admin Secret data is not a Pulumi secret")
	}
}

// TestMonitoringOffCreatesNothing: with monitoring off (dev and local files) no monitoring object
// exists, and jwt-auth opens no metrics port.
func TestMonitoringOffCreatesNothing(t *testing.T) {
	for _, stack := range []string{"dev", "local"} {
		t.Run(stack, func(t *testing.T) {
			g := mustRun(t, stack)
			if n := len(g.ofType(typePodMonitor)) + len(g.ofType(typePrometheusRule)); n != 0 {
				t.Errorf("%d monitoring objects with monitoring off", n)
			}
			for _, p := range policies(g) {
				if strings.HasPrefix(str(input(p.r, "metadata", "name")), "scrape-") {
					t.Errorf("scrape policy %s with monitoring off", p.r.Name)
				}
			}
			_, _, c := authPod(t, g)
			if _, ok := authFlags(t, c)["--metrics-listen"]; ok {
				t.Error("jwt-auth opens a metrics port with monitoring off")
			}
		})
	}
}

// TestMonitoringConfigErrors: bad settings are refused before anything is created, naming the key.
func TestMonitoringConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		edit map[string]string
		want string
	}{
		"mode":           {map[string]string{"ztedge:monitoring": "prometheus"}, `ztedge:monitoring: "prometheus" is not one of off, existing, install`},
		"namespace":      {map[string]string{"ztedge:monitoring": "existing", "ztedge:monitoringNamespace": "Monitoring_NS"}, "ztedge:monitoringNamespace"},
		"same namespace": {map[string]string{"ztedge:monitoring": "existing", "ztedge:monitoringNamespace": "ambassador"}, "ztedge:monitoringNamespace: must differ from ambassadorNamespace"},
		"scraper label":  {map[string]string{"ztedge:monitoring": "existing", "ztedge:monitoringScraperLabels": `{"app":"a b"}`}, "ztedge:monitoringScraperLabels"},
		"object label":   {map[string]string{"ztedge:monitoring": "existing", "ztedge:monitoringObjectLabels": `{"-bad":"x"}`}, "ztedge:monitoringObjectLabels"},
		"chart version":  {map[string]string{"ztedge:monitoring": "install", "ztedge:monitoringChartVersion": " "}, "ztedge:monitoringChartVersion: is required"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := run(t, "dev", stackConfig(t, "dev", tc.edit))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
