package crdschema

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ztedge/ztedge/internal/upstream"
)

func emissary(t *testing.T) *Validator {
	t.Helper()
	v, err := LoadEmissary()
	if err != nil {
		t.Fatalf("LoadEmissary: %v", err)
	}
	return v
}

func host(spec map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": "getambassador.io/v3alpha1",
		"kind":       "Host",
		"metadata":   map[string]any{"name": "edge", "namespace": "emissary"},
		"spec":       spec,
	}
}

func mapping(spec map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": "getambassador.io/v3alpha1",
		"kind":       "Mapping",
		"metadata":   map[string]any{"name": "api"},
		"spec":       spec,
	}
}

func goodHostSpec() map[string]any {
	return map[string]any{
		"hostname":  "edge.example.com",
		"tlsSecret": map[string]any{"name": "edge-cert"},
		"requestPolicy": map[string]any{
			"insecure": map[string]any{"action": "Reject"},
		},
		"tls": map[string]any{
			"min_tls_version": "v1.3",
			"ca_secret":       "client-ca",
			"cert_required":   false,
		},
	}
}

// expect fails unless errs holds exactly one *Error with the given reason
// and field, and returns it.
func expect(t *testing.T, errs []error, reason Reason, fieldPath string) *Error {
	t.Helper()
	var found *Error
	for _, err := range errs {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v is %T, want *Error", err, err)
		}
		if e.Reason == reason && e.Field == fieldPath {
			if found != nil {
				t.Errorf("%s %q reported twice", reason, fieldPath)
			}
			found = e
		}
	}
	if found == nil {
		t.Fatalf("want %s at %q, got %d errors:\n%s", reason, fieldPath, len(errs), join(errs))
	}
	return found
}

func join(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("  " + e.Error() + "\n")
	}
	return b.String()
}

func TestLoadEmissary(t *testing.T) {
	v := emissary(t)
	kinds := v.Kinds()
	if len(kinds) != 14 {
		t.Errorf("Kinds() = %d kinds %v, want the 14 Emissary CRDs", len(kinds), kinds)
	}
	for _, k := range []string{"AuthService", "Host", "Listener", "Mapping", "Module", "RateLimitService", "TLSContext", "TCPMapping"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("Kinds() lacks %s: %v", k, kinds)
		}
		if !slices.Contains(v.ServedVersions(k), "getambassador.io/v3alpha1") {
			t.Errorf("ServedVersions(%s) = %v, want it to include getambassador.io/v3alpha1", k, v.ServedVersions(k))
		}
	}
	// The 4.x CRD chart, by default, installs only v3alpha1 and stores it.
	if got := v.StorageVersion("Host"); got != "getambassador.io/v3alpha1" {
		t.Errorf("StorageVersion(Host) = %q", got)
	}
	if got := v.ServedVersions("Listener"); !slices.Equal(got, []string{"getambassador.io/v3alpha1"}) {
		t.Errorf("ServedVersions(Listener) = %v", got)
	}
	if got := v.ServedVersions("Nope"); got != nil {
		t.Errorf("ServedVersions(Nope) = %v, want nil", got)
	}

	// Cached: a second load is the same validator and takes no time.
	start := time.Now()
	v2 := emissary(t)
	if v2 != v {
		t.Error("LoadEmissary did not return the cached validator")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("cached LoadEmissary took %v", d)
	}
}

func TestCorrectHostPasses(t *testing.T) {
	if errs := emissary(t).Validate(host(goodHostSpec())); len(errs) > 0 {
		t.Fatalf("valid Host rejected:\n%s", join(errs))
	}
}

func TestUnknownFieldIsReported(t *testing.T) {
	spec := goodHostSpec()
	// The seeds' Host put the client CA under an invented block; Emissary has
	// spec.tls.ca_secret instead, and the API server drops this silently.
	spec["authentication"] = map[string]any{"mTLS": map[string]any{"caSecret": "client-ca"}}
	errs := emissary(t).Validate(host(spec))
	e := expect(t, errs, ReasonUnknownField, "spec.authentication")
	if len(errs) != 1 {
		t.Errorf("want only the unknown field, got:\n%s", join(errs))
	}
	msg := e.Error()
	for _, want := range []string{`Host "emissary/edge"`, `unknown field "spec.authentication"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}

	// A known block with an unknown field inside is reported at full depth.
	spec = goodHostSpec()
	spec["tls"].(map[string]any)["caSecret"] = "client-ca"
	expect(t, emissary(t).Validate(host(spec)), ReasonUnknownField, "spec.tls.caSecret")

	// The 4.x CRD chart does not serve v2 by default (enableLegacyVersions:
	// false): a v2 object is refused outright, whatever its fields.
	obj := host(map[string]any{"hostname": "edge.example.com", "authentication": map[string]any{}})
	obj["apiVersion"] = "getambassador.io/v2"
	if errs := emissary(t).Validate(obj); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no CRD serves getambassador.io/v2 Host") {
		t.Errorf("v2 Host: want it refused as not served, got:\n%s", join(errs))
	}
}

func TestMappingJWTIsUnknown(t *testing.T) {
	errs := emissary(t).Validate(mapping(map[string]any{
		"hostname": "*",
		"prefix":   "/api/",
		"service":  "api.default:8080",
		"jwt":      map[string]any{"requireToken": true},
	}))
	e := expect(t, errs, ReasonUnknownField, "spec.jwt")
	if !strings.Contains(e.Error(), `Mapping "api"`) {
		t.Errorf("message %q does not name the Mapping", e.Error())
	}
}

func TestMappingRequiredFields(t *testing.T) {
	v := emissary(t)
	// The v3alpha1 Mapping schema has required: [prefix, service].
	for _, missing := range []string{"prefix", "service"} {
		spec := map[string]any{"hostname": "*", "prefix": "/api/", "service": "api:8080"}
		delete(spec, missing)
		e := expect(t, v.Validate(mapping(spec)), ReasonInvalid, "spec."+missing)
		if !strings.Contains(e.Error(), "Required value") {
			t.Errorf("missing %s: %v", missing, e)
		}
	}
	if errs := v.Validate(mapping(map[string]any{"hostname": "*", "prefix": "/api/", "service": "api:8080", "timeout_ms": 3000})); len(errs) > 0 {
		t.Errorf("valid Mapping rejected:\n%s", join(errs))
	}
}

func TestWrongTypeIsReported(t *testing.T) {
	errs := emissary(t).Validate(mapping(map[string]any{
		"prefix": "/api/", "service": "api:8080", "timeout_ms": "abc",
	}))
	e := expect(t, errs, ReasonInvalid, "spec.timeout_ms")
	if !strings.Contains(e.Detail, "integer") {
		t.Errorf("detail %q does not say integer", e.Detail)
	}
}

func TestEnumIsEnforced(t *testing.T) {
	// spec.requestPolicy.insecure.action has enum [Redirect, Reject, Route].
	spec := goodHostSpec()
	spec["requestPolicy"] = map[string]any{"insecure": map[string]any{"action": "Drop"}}
	e := expect(t, emissary(t).Validate(host(spec)), ReasonInvalid, "spec.requestPolicy.insecure.action")
	if !strings.Contains(e.Detail, "Unsupported value") || !strings.Contains(e.Detail, "Reject") {
		t.Errorf("detail %q", e.Detail)
	}
}

func TestModuleConfigIsFreeForm(t *testing.T) {
	v := emissary(t)
	mod := map[string]any{
		"apiVersion": "getambassador.io/v3alpha1",
		"kind":       "Module",
		"metadata":   map[string]any{"name": "ambassador", "namespace": "emissary"},
		"spec": map[string]any{
			"config": map[string]any{
				"use_remote_address": true,
				"anything_at_all":    map[string]any{"nested": []any{1, "two"}},
				"diagnostics":        map[string]any{"enabled": false},
			},
		},
	}
	if errs := v.Validate(mod); len(errs) > 0 {
		t.Fatalf("Module with free-form config rejected:\n%s", join(errs))
	}
	// Outside config the Module schema is closed, and config is required.
	mod["spec"] = map[string]any{"configs": map[string]any{}}
	errs := v.Validate(mod)
	expect(t, errs, ReasonUnknownField, "spec.configs")
	expect(t, errs, ReasonInvalid, "spec.config")
}

func TestUnknownKindAndVersion(t *testing.T) {
	v := emissary(t)
	obj := host(goodHostSpec())
	obj["kind"] = "Hots"
	e := expect(t, v.Validate(obj), ReasonUnknownKind, "")
	if !strings.Contains(e.Error(), "no CRD serves getambassador.io/v3alpha1 Hots") {
		t.Errorf("message %q", e.Error())
	}
	obj = host(goodHostSpec())
	obj["apiVersion"] = "getambassador.io/v4"
	expect(t, v.Validate(obj), ReasonUnknownKind, "")
	obj = host(goodHostSpec())
	obj["apiVersion"] = "example.com/v3alpha1"
	expect(t, v.Validate(obj), ReasonUnknownKind, "")
	expect(t, v.Validate(map[string]any{"spec": map[string]any{}}), ReasonMalformed, "")
}

func TestMetadataAndStatus(t *testing.T) {
	v := emissary(t)
	obj := host(goodHostSpec())
	obj["metadata"] = map[string]any{
		"name":   "Not_A_DNS_Name",
		"labelz": map[string]any{"a": "b"},
		"labels": map[string]string{"app": "edge"},
	}
	obj["status"] = map[string]any{"state": "Ready"}
	errs := v.Validate(obj)
	expect(t, errs, ReasonUnknownField, "metadata.labelz")
	expect(t, errs, ReasonInvalid, "metadata.name")
	expect(t, errs, ReasonIgnored, "status")

	// No name or namespace: the Pulumi provider fills them in.
	obj = host(goodHostSpec())
	obj["metadata"] = map[string]any{}
	if errs := v.Validate(obj); len(errs) > 0 {
		t.Errorf("Host without name rejected:\n%s", join(errs))
	}
}

func TestValidateDoesNotModifyInput(t *testing.T) {
	spec := goodHostSpec()
	spec["bogus"] = 1
	obj := host(spec)
	emissary(t).Validate(obj)
	if _, ok := obj["spec"].(map[string]any)["bogus"]; !ok {
		t.Error("Validate pruned the caller's object")
	}
}

const testCRD = `
# a non-CRD document in the same file is skipped
apiVersion: v1
kind: Namespace
metadata:
  name: ignored
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Cluster
  versions:
  - name: v1alpha1
    served: false
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: integer
                default: 1
              min: {type: integer}
              max: {type: integer}
              name:
                type: string
                pattern: '^[a-z]+$'
              ports:
                type: array
                x-kubernetes-list-type: set
                items: {type: integer}
            x-kubernetes-validations:
            - rule: "!has(self.min) || !has(self.max) || self.min <= self.max"
              message: min must not exceed max
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadGenericCRDFile(t *testing.T) {
	v, err := Load(writeFile(t, "widgets.yaml", testCRD))
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Kinds(); !slices.Equal(got, []string{"Widget"}) {
		t.Fatalf("Kinds() = %v", got)
	}
	if got := v.ServedVersions("Widget"); !slices.Equal(got, []string{"example.com/v1"}) {
		t.Errorf("ServedVersions = %v", got)
	}
	widget := func(apiVersion string, spec map[string]any) map[string]any {
		return map[string]any{"apiVersion": apiVersion, "kind": "Widget", "metadata": map[string]any{"name": "w"}, "spec": spec}
	}
	if errs := v.Validate(widget("example.com/v1", map[string]any{"min": 1, "max": 2, "name": "ok", "ports": []int{80, 443}})); len(errs) > 0 {
		t.Errorf("valid Widget rejected:\n%s", join(errs))
	}
	expect(t, v.Validate(widget("example.com/v1alpha1", map[string]any{})), ReasonNotServed, "")
	expect(t, v.Validate(widget("example.com/v1", map[string]any{"name": "UPPER"})), ReasonInvalid, "spec.name")
	expect(t, v.Validate(widget("example.com/v1", map[string]any{"ports": []int{80, 80}})), ReasonInvalid, "spec.ports[1]")
	e := expect(t, v.Validate(widget("example.com/v1", map[string]any{"min": 3, "max": 2})), ReasonInvalid, "spec")
	if !strings.Contains(e.Detail, "min must not exceed max") {
		t.Errorf("CEL detail %q", e.Detail)
	}
	// Cluster-scoped: a namespace is refused.
	obj := widget("example.com/v1", map[string]any{})
	obj["metadata"] = map[string]any{"name": "w", "namespace": "default"}
	expect(t, v.Validate(obj), ReasonInvalid, "metadata.namespace")

	// Combining files; the same kind twice is an error.
	both, err := Load(writeFile(t, "a.yaml", testCRD), writeFile(t, "b.yaml", testCRD))
	if err == nil || !strings.Contains(err.Error(), "already defined") {
		t.Errorf("duplicate CRD: Load = %v, %v", both, err)
	}
}

func TestLoadRejectsBadCRDs(t *testing.T) {
	cases := map[string]struct{ from, to, want string }{
		"no storage version":   {"storage: true", "storage: false", "storage version"},
		"two storage versions": {"served: false\n    storage: false", "served: false\n    storage: true", "exactly one storage version"},
		"nothing served":       {"served: true", "served: false", "served"},
		"not structural":       {"min: {type: integer}", "min: {}", "not structural"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			src := strings.Replace(testCRD, c.from, c.to, 1)
			if src == testCRD {
				t.Fatalf("replacement %q not found", c.from)
			}
			_, err := Load(writeFile(t, "bad.yaml", src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Load = %v, want error containing %q", err, c.want)
			}
		})
	}
	if _, err := Load(writeFile(t, "empty.yaml", "apiVersion: v1\nkind: ConfigMap\n")); err == nil {
		t.Error("a file without CRDs loaded")
	}
}

// The chart sources are the upstream files, byte for byte (emissary/SOURCE.md).
func TestEmissaryChartIsPinned(t *testing.T) {
	if err := upstream.Verify("emissary"); err != nil {
		t.Fatal(err)
	}
	pins, err := upstream.Pins("emissary")
	if err != nil {
		t.Fatal(err)
	}
	embedded, _ := fs.Glob(emissaryChart, "emissary/templates/*.yaml")
	embedded = append(embedded, "emissary/values.yaml")
	pinned := map[string]bool{}
	for _, p := range pins {
		pinned["emissary/"+p.File] = true
		if p.Repo != "emissary-ingress/emissary" || p.Tag != "v"+EmissaryVersion || p.Path != "charts/emissary-crds/"+p.File {
			t.Errorf("%s is pinned to %s %s:%s, want emissary-ingress/emissary v%s:charts/emissary-crds/%s", p.File, p.Repo, p.Tag, p.Path, EmissaryVersion, p.File)
		}
	}
	for _, f := range embedded {
		if !pinned[f] {
			t.Errorf("%s is embedded but not pinned in emissary/SOURCE.md", f)
		}
	}
}

// What the chart installs by default: the 14 CRDs, v3alpha1 only (served and stored), no
// conversion webhook and no apiext Deployment; nothing left unrendered.
func TestRenderEmissaryCRDs(t *testing.T) {
	out, err := RenderEmissaryCRDs("emissary")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "{{") {
		t.Error("rendered CRDs still hold template actions")
	}
	docs := 0
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var crd struct {
			Kind     string
			Metadata struct {
				Name   string
				Labels map[string]string
			}
			Spec struct {
				Conversion any
				Versions   []struct {
					Name            string
					Served, Storage bool
				}
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &crd); err != nil {
			t.Fatal(err)
		}
		if crd.Kind == "" {
			continue
		}
		docs++
		if crd.Kind != "CustomResourceDefinition" {
			t.Errorf("rendered a %s", crd.Kind)
			continue
		}
		if got := crd.Metadata.Labels["helm.sh/chart"]; got != "emissary-crds-chart-"+EmissaryVersion {
			t.Errorf("%s: helm.sh/chart label %q", crd.Metadata.Name, got)
		}
		if crd.Spec.Conversion != nil || len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v3alpha1" || !crd.Spec.Versions[0].Served || !crd.Spec.Versions[0].Storage {
			t.Errorf("%s: conversion %v, versions %+v; want v3alpha1 only, served and stored", crd.Metadata.Name, crd.Spec.Conversion, crd.Spec.Versions)
		}
	}
	if docs != 14 {
		t.Errorf("rendered %d documents, want the 14 CRDs", docs)
	}
	again, _ := RenderEmissaryCRDs("emissary")
	if string(again) != string(out) {
		t.Error("rendering is not deterministic")
	}
}

// A template function the renderer does not provide fails loudly instead of rendering wrongly
// (text/template refuses undefined functions at parse time).
func TestRenderRefusesUnknownFunctions(t *testing.T) {
	_, err := template.New("x").Funcs(template.FuncMap{"include": func(string, any) string { return "" }}).Parse(`{{ .Values.x | quote }}`)
	if err == nil || !strings.Contains(err.Error(), "quote") {
		t.Errorf("parse with an unknown function: %v", err)
	}
}
