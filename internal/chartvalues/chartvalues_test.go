package chartvalues

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// values is a small chart values.yaml in the styles real charts use.
const values = `# Number of replicas
replicaCount: 1

image:
  repository: docker.io/emissaryingress/emissary
  tag: 3.10.0
  pullPolicy: IfNotPresent

# Additional annotations for pods
# Example:
# prometheus.io/scrape: "true"
podAnnotations: {}

nodeSelector:
  kubernetes.io/os: linux

service:
  type: LoadBalancer
  # loadBalancerIP: 10.0.0.1
  ports:
  - name: http
    port: 80
      # nodePort: 30080
  annotations: {}
  externalTrafficPolicy:

resources: {}
  # We usually recommend not to specify default resources.
  # limits:
  #   cpu: 100m

securityContext: ~

startupProbe: {}
# periodSeconds: 10

podLabels: {}

# hostAliases: []

extraArgs: []

metrics:
  serviceMonitor:
    enabled: false
    # interval: 30s
    # selector: {}

# Resolvers configure service discovery.
# Example:
#   address: consul.default.svc:8500
resolvers:
  consul:
    create: false

prometheusExporter:
  enabled: false
  # Uncomment to configure mappings:
  # configuration: |
  #   mappings:
  #   - match: foo
  config: |
    # not a comment: this is inside a block scalar
    # insideScalar: true
    plain: text

# DEPRECATED: use securityContext
# podSecurity:
#   runAsUser: 8888
#   capabilities:
#     drop: [ALL]
# Note: prose is not a key
# Ref: https://example.com
# STATSD_HOST: statsd
`

func TestUnknownKeysFromDefaults(t *testing.T) {
	defaults, err := parseDefaults([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]any{
		"replicaCount": 2,
		"image":        map[string]string{"tag": "3.10.1", "digest": "sha256:x"}, // digest unknown
		"podAnnotations": map[string]any{ // {} default: anything
			"prometheus.io/scrape": "true",
		},
		"nodeSelector": map[string]any{"pool": "edge"}, // free-form by name
		"service": map[string]any{
			"type":                  "NodePort",
			"annotations":           map[string]any{"a": map[string]any{"b": 1}},
			"externalTrafficPolicy": "Local",                                        // null default: known
			"ports":                 []any{map[string]any{"name": "x", "bogus": 1}}, // lists are leaves
			"loadBalancerIP":        "10.0.0.1",                                     // only commented: not known here
			"typo":                  map[string]any{"deep": 1},                      // reported once, at the top
		},
		"resources":       map[string]any{"requests": map[string]any{"cpu": "1"}},
		"securityContext": map[string]any{"runAsUser": 1000}, // null default
		"extraArgs":       map[string]any{"x": 1},            // list default: sub-keys unknown
		"metrics":         map[string]any{"serviceMonitor": map[string]any{"enabled": true, "interval": "30s"}},
		"imagePullSecret": "x",
	}
	got := UnknownKeys(defaults, set)
	want := []string{
		"extraArgs.x",
		"image.digest",
		"imagePullSecret",
		"metrics.serviceMonitor.interval",
		"service.loadBalancerIP",
		"service.typo",
	}
	checkKeys(t, "UnknownKeys", got, want)
	if got := UnknownKeys(defaults, nil); len(got) != 0 {
		t.Errorf("UnknownKeys(nil) = %q", got)
	}
}

func checkKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s =\n  %q\nwant\n  %q", what, got, want)
	}
}

func TestCommentedKeys(t *testing.T) {
	got, err := CommentedKeys([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"service": map[string]any{"loadBalancerIP": "10.0.0.1"},
		"metrics": map[string]any{"serviceMonitor": map[string]any{
			"interval": "30s",
			"selector": map[string]any{},
		}},
		// A block scalar documents the key, not what the scalar holds.
		"prometheusExporter": map[string]any{"configuration": ""},
		// Prose at the keys' own column does not hide them.
		"resources":   map[string]any{"limits": map[string]any{"cpu": "100m"}},
		"hostAliases": []any{},
		"podSecurity": map[string]any{
			"runAsUser":    8888,
			"capabilities": map[string]any{"drop": []any{"ALL"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CommentedKeys =\n  %#v\nwant\n  %#v", got, want)
	}
	// What must not be taken for keys: prose ("Note:", "Ref:", "Example:"),
	// upper-case env names, keys nested under prose (resolvers' "address"),
	// under a list item (nodePort), inside a block scalar (insideScalar), or
	// inside a commented block scalar (mappings), or an example of what goes
	// into a "{}" right above it (periodSeconds).
}

func TestChartUnknownKeysUsesCommentedKeys(t *testing.T) {
	c, err := ParseChart([]byte(values), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.UnknownKeys(map[string]any{
		"service":       map[string]any{"loadBalancerIP": "10.0.0.2", "loadBalancerIp": "typo"},
		"metrics":       map[string]any{"serviceMonitor": map[string]any{"interval": "1m", "selector": map[string]any{"any": "thing"}}},
		"podSecurity":   map[string]any{"runAsUser": 1, "capabilities": map[string]any{"add": []string{"NET_ADMIN"}}},
		"resolvers":     map[string]any{"address": "consul:8500"},
		"resources":     map[string]any{"limits": map[string]any{"memory": "1Gi"}}, // {} stays free-form
		"note":          "x",
		"periodSeconds": 10,
		"hostAliases":   []string{"x"},
	})
	want := []string{
		"note",
		"periodSeconds",
		"podSecurity.capabilities.add",
		"resolvers.address",
		"service.loadBalancerIp",
	}
	checkKeys(t, "Chart.UnknownKeys", got, want)
}

const schema = `{
  "$schema": "https://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "image": {"$ref": "#/definitions/image"},
    "tolerateAll": {"type": "boolean"},
    "service": {
      "type": "object",
      "allOf": [{"properties": {"type": {"type": "string"}}}],
      "properties": {"nodePorts": {"type": "object", "additionalProperties": {"type": "integer"}}}
    },
    "extra": {"type": "object"},
    "labelsByTeam": {"type": "object", "patternProperties": {"^team-": {"type": "string"}}, "additionalProperties": false}
  },
  "definitions": {
    "image": {
      "type": "object",
      "properties": {"repository": {"type": "string"}, "tag": {"type": "string"}},
      "additionalProperties": false
    }
  }
}`

func TestSchemaTakesPrecedence(t *testing.T) {
	c, err := ParseChart([]byte(values), []byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	got := c.UnknownKeys(map[string]any{
		// closed by $ref'd definition: pullPolicy is in values.yaml but the
		// schema forbids it, and the schema wins.
		"image":       map[string]any{"tag": "x", "pullPolicy": "Always"},
		"tolerateAll": true, // only in the schema
		"service": map[string]any{
			"type":        "NodePort",                    // allOf branch
			"nodePorts":   map[string]any{"http": 30080}, // additionalProperties schema
			"annotations": map[string]any{"x": "y"},      // schema silent: defaults decide
			"oops":        1,                             // schema silent, not in defaults
		},
		"extra":        map[string]any{"anything": map[string]any{"at": "all"}}, // declared, open
		"labelsByTeam": map[string]any{"team-a": "x", "other": "y"},
		"replicaCount": 3, // schema silent at root: defaults decide
		"bogus":        1,
	})
	want := []string{
		"bogus",
		"image.pullPolicy",
		"labelsByTeam.other",
		"service.oops",
	}
	checkKeys(t, "Chart.UnknownKeys with schema", got, want)
}

func TestLoadFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("values.yaml", "a:\n  b: 1\n  # c: 2\n")
	d, err := LoadDefaults(filepath.Join(dir, "values.yaml"))
	if err != nil || !reflect.DeepEqual(d, map[string]any{"a": map[string]any{"b": 1}}) {
		t.Fatalf("LoadDefaults = %v, %v", d, err)
	}
	c, err := LoadChart(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Schema != nil {
		t.Error("schema loaded from nowhere")
	}
	if got := c.UnknownKeys(map[string]any{"a": map[string]any{"c": 3, "d": 4}}); !reflect.DeepEqual(got, []string{"a.d"}) {
		t.Errorf("UnknownKeys = %q", got)
	}
	write("values.schema.json", `{"properties": {"a": {"properties": {"d": {}}, "additionalProperties": false}}}`)
	if c, err = LoadChart(dir); err != nil {
		t.Fatal(err)
	}
	if got := c.UnknownKeys(map[string]any{"a": map[string]any{"b": 1, "d": 4}}); !reflect.DeepEqual(got, []string{"a.b"}) {
		t.Errorf("UnknownKeys with schema = %q", got)
	}

	// Keys the templates read count (rule 5).
	if err := os.MkdirAll(filepath.Join(dir, "templates", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("templates/service.yaml", `spec:
  {{- if .Values.a.lbIP }}
  loadBalancerIP: {{ .Values.a.lbIP | quote }}
  {{- end }}
  {{- with $.Values.a.selector }}
  selector: {{- toYaml . | nindent 4 }}
  {{- end }}
  x: {{ index .Values "a" "weird-key" }}
`)
	write("templates/sub/_helpers.tpl", `{{ define "x" }}{{ .Values.top.level }}{{ end }}`)
	refs, err := TemplateKeys(dir)
	want := map[string]any{
		"a":   map[string]any{"lbIP": nil, "selector": nil, "weird-key": nil},
		"top": map[string]any{"level": nil},
	}
	if err != nil || !reflect.DeepEqual(refs, want) {
		t.Errorf("TemplateKeys = %#v, %v; want %#v", refs, err, want)
	}
	os.Remove(filepath.Join(dir, "values.schema.json"))
	if c, err = LoadChart(dir); err != nil {
		t.Fatal(err)
	}
	got := c.UnknownKeys(map[string]any{
		"a":   map[string]any{"lbIP": "10.0.0.1", "selector": map[string]any{"app": "x"}, "lbIp": "typo"},
		"top": map[string]any{"level": 1, "other": 2},
	})
	if want := []string{"a.lbIp", "top.other"}; !reflect.DeepEqual(got, want) {
		t.Errorf("UnknownKeys with templates = %q, want %q", got, want)
	}
	if refs, err := TemplateKeys(t.TempDir()); err != nil || len(refs) != 0 {
		t.Errorf("TemplateKeys without templates = %v, %v", refs, err)
	}

	write("values.yaml", "a: [unclosed\n")
	if _, err := LoadChart(dir); err == nil {
		t.Error("broken values.yaml loaded")
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := LoadDefaults(empty); err != nil || len(d) != 0 {
		t.Errorf("empty values.yaml: %v, %v", d, err)
	}
}

func TestKeysWithDotsArePrinted(t *testing.T) {
	got := UnknownKeys(map[string]any{"a": map[string]any{"x": 1}}, map[string]any{"a": map[string]any{"b.c": 1}})
	if want := []string{`a["b.c"]`}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
