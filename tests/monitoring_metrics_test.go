package tests

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/jwtauth"
)

// exportedMetrics is every metric name a rule or panel may use, with its type, from the sources
// tests/testdata/metrics/SOURCE.md lists: jwt-auth's registry (in code), the rate-limit server's
// statsd-to-Prometheus mapping (its upstream file), the Envoy statistics (with their docs), and
// Prometheus' own `up`.
func exportedMetrics(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{"up": "gauge"}
	jwt, err := jwtauth.MetricNames()
	if err != nil {
		t.Fatal(err)
	}
	for n, typ := range jwt {
		out[n] = string(typ)
	}
	dir := filepath.Join(repoRoot(t), "tests/testdata/metrics")
	f, err := os.Open(filepath.Join(dir, "envoy-stats.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 5 || !strings.HasPrefix(fields[0], "envoy_") || !strings.Contains(fields[3], "@") {
			t.Fatalf("envoy-stats.txt: %q is not <name> <type> <envoy stat> <doc@commit> <table>", sc.Text())
		}
		out[fields[0]] = fields[1]
	}
	b, err := os.ReadFile(filepath.Join(dir, "ratelimit-default_mapper.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var mapper struct {
		Mappings []struct {
			Name      string `json:"name"`
			TimerType string `json:"timer_type"`
		} `json:"mappings"`
	}
	if err := yaml.Unmarshal(b, &mapper); err != nil {
		t.Fatal(err)
	}
	for _, m := range mapper.Mappings {
		out[m.Name] = "counter" // gostats counters; timers (response_time) are histograms
		if m.TimerType == "histogram" && strings.HasSuffix(m.Name, "_seconds") {
			out[m.Name] = "histogram"
		}
	}
	return out
}

var (
	promIdent   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeyword = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"and": true, "or": true, "unless": true, "offset": true, "bool": true, "le": true, "inf": true, "nan": true,
	}
	// Aggregation operators may take their by/without clause before the parenthesis.
	promAggregation = map[string]bool{
		"sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true, "stdvar": true, "topk": true,
		"bottomk": true, "quantile": true, "count_values": true, "group": true, "limitk": true, "limit_ratio": true,
	}
)

// metricNames returns the metric names a PromQL expression selects: identifiers that are not
// functions (followed by "("), keywords, label names inside {...} or by/without (...), strings,
// or durations inside [...].
func metricNames(expr string) []string {
	var out []string
	depthBrace, depthBracket := 0, 0
	groupParen := -1 // paren depth of a by/without/on/ignoring label list
	depthParen := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
			continue
		case c == '{':
			depthBrace++
		case c == '}':
			depthBrace--
		case c == '[':
			depthBracket++
		case c == ']':
			depthBracket--
		case c == '(':
			depthParen++
		case c == ')':
			if depthParen == groupParen {
				groupParen = -1
			}
			depthParen--
		}
		loc := promIdent.FindStringIndex(expr[i:])
		if loc == nil || loc[0] != 0 || (i > 0 && (isIdentByte(expr[i-1]) || expr[i-1] == '.')) {
			i++
			continue
		}
		word := expr[i : i+loc[1]]
		i += loc[1]
		rest := strings.TrimLeft(expr[i:], " \t\n")
		switch {
		case depthBrace > 0 || depthBracket > 0 || groupParen >= 0:
		case promKeyword[strings.ToLower(word)]:
			if w := strings.ToLower(word); (w == "by" || w == "without" || w == "on" || w == "ignoring" || w == "group_left" || w == "group_right") && strings.HasPrefix(rest, "(") {
				groupParen = depthParen + 1
			}
		case strings.HasPrefix(rest, "(") || promAggregation[word]:
			// a function or aggregation
		case word[0] >= '0' && word[0] <= '9':
		default:
			out = append(out, word)
		}
	}
	return out
}

func isIdentByte(b byte) bool {
	return b == '_' || b == ':' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// known reports whether name is an exported metric, or a histogram's _bucket/_sum/_count series.
func known(metrics map[string]string, name string) bool {
	if _, ok := metrics[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && metrics[base] == "histogram" {
			return true
		}
	}
	return false
}

// ruleAndPanelExprs are every PromQL expression of the alert rules and the dashboard.
func ruleAndPanelExprs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	spec, err := components.PrometheusRuleSpec()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range spec["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rm := r.(map[string]any)
			out["alert "+str(rm["alert"])] = str(rm["expr"])
		}
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(components.MonitoringDashboard, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		for i, tg := range p.Targets {
			out["panel "+p.Title+" #"+string(rune('A'+i))] = tg.Expr
		}
	}
	return out
}

// TestRulesAndDashboardUseExportedMetrics: the alerts and the dashboard read only metrics the
// components export; a misspelt metric would never fire / always be empty.
func TestRulesAndDashboardUseExportedMetrics(t *testing.T) {
	metrics := exportedMetrics(t)
	exprs := ruleAndPanelExprs(t)
	used := map[string]bool{}
	for _, where := range sortedKeys(exprs) {
		names := metricNames(exprs[where])
		if len(names) == 0 {
			t.Errorf("%s: no metric found in %q", where, exprs[where])
		}
		for _, n := range names {
			used[n] = true
			if !known(metrics, n) {
				t.Errorf("%s uses %s, which no component exports (tests/testdata/metrics/SOURCE.md)", where, n)
			}
		}
	}
	// The dashboard shows what the issue asks for.
	for _, m := range []string{"envoy_http_downstream_rq_xx", "jwt_auth_decisions_total", "jwt_auth_request_duration_seconds_bucket",
		"envoy_cluster_ratelimit_over_limit", "envoy_cluster_upstream_rq_xx", "envoy_server_days_until_first_cert_expiring"} {
		if !used[m] {
			t.Errorf("nothing graphs or alerts on %s", m)
		}
	}
	var all []string
	for n := range used {
		all = append(all, n)
	}
	sort.Strings(all)
	t.Logf("%d metrics used: %s", len(all), strings.Join(all, " "))
}

// TestMetricNameCheckCanFail: the extractor finds metric names (and only those), and an invented
// or misspelt one is reported as unknown.
func TestMetricNameCheckCanFail(t *testing.T) {
	got := metricNames(`histogram_quantile(0.99, sum by (le, job) (rate(jwt_auth_request_duration_seconds_bucket{endpoint="check", job=~"a/b"}[5m]))) / on (job) group_left up > 3 * 86400 and time() - foo_total offset 1h`)
	want := []string{"jwt_auth_request_duration_seconds_bucket", "up", "foo_total"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("metricNames = %v, want %v", got, want)
	}
	metrics := exportedMetrics(t)
	for _, bad := range []string{"envoy_cluster_ext_authz_deny", "jwt_auth_decisions", "jwt_auth_decisions_total_bucket", "ratelimit_service_rate_limit_over_limit_total"} {
		if known(metrics, bad) {
			t.Errorf("%s passes as exported", bad)
		}
	}
}

// TestEveryAlertHasARunbookAndBothTests: each alert carries summary and runbook annotations and
// a severity, and components/monitoring/rules_test.yaml has a case that fires it and one that does
// not (promtool runs them in .ci/promtool.sh).
func TestEveryAlertHasARunbookAndBothTests(t *testing.T) {
	spec, err := components.PrometheusRuleSpec()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "components/monitoring/rules_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]int{}, map[string]int{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname]++
			} else {
				quiet[a.Alertname]++
			}
		}
	}
	n := 0
	for _, g := range spec["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rm := r.(map[string]any)
			name := str(rm["alert"])
			n++
			ann, _ := rm["annotations"].(map[string]any)
			if str(ann["runbook"]) == "" || str(ann["summary"]) == "" {
				t.Errorf("%s has no runbook or summary annotation", name)
			}
			if labels, _ := rm["labels"].(map[string]any); labels["severity"] != "warning" && labels["severity"] != "critical" {
				t.Errorf("%s: severity %v", name, labels["severity"])
			}
			if fires[name] == 0 || quiet[name] == 0 {
				t.Errorf("%s: %d promtool cases that fire it, %d that do not; want at least one of each", name, fires[name], quiet[name])
			}
		}
	}
	if n < 12 {
		t.Errorf("%d alerts", n)
	}
}
