package crdschema

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
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
	// Emissary 3.10 stores Host in v2 and serves v3alpha1 through its
	// conversion webhook; Listener exists only as v3alpha1.
	if got := v.StorageVersion("Host"); got != "getambassador.io/v2" {
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

	// The cluster's v2 schemas preserve unknown fields under spec, so a v2
	// object is not pruned (and cannot be checked for typos): emit v3alpha1.
	obj := host(map[string]any{"hostname": "edge.example.com", "authentication": map[string]any{}})
	obj["apiVersion"] = "getambassador.io/v2"
	if errs := emissary(t).Validate(obj); len(errs) > 0 {
		t.Errorf("v2 Host:\n%s", join(errs))
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

func TestExplicitPathFromEnv(t *testing.T) {
	p := writeFile(t, "crds.yaml", testCRD)
	t.Setenv(EnvEmissaryCRDs, p)
	got, err := EmissaryCRDPath()
	if err != nil || got != p {
		t.Fatalf("EmissaryCRDPath() = %q, %v; want %q", got, err, p)
	}
	t.Setenv(EnvEmissaryCRDs, filepath.Join(t.TempDir(), "missing.yaml"))
	if _, err := EmissaryCRDPath(); err == nil {
		t.Error("a missing $ZTEDGE_EMISSARY_CRDS was accepted")
	}
}

// Emissary ships two CRD files. LoadEmissary uses the manifest applied to
// clusters; the internal-validator crds.yaml must have the same v3alpha1
// schemas (what ztedge emits), and its v1/v2 schemas are not structural.
func TestEmissaryCRDFilesAgreeOnV3alpha1(t *testing.T) {
	if os.Getenv(EnvEmissaryCRDs) != "" {
		t.Skipf("%s is set; the module's files are not used", EnvEmissaryCRDs)
	}
	manifest, err := EmissaryCRDPath()
	if err != nil {
		t.Fatal(err)
	}
	dir := strings.TrimSuffix(filepath.ToSlash(manifest), EmissaryCRDsFile)
	internal := filepath.FromSlash(dir + EmissaryInternalCRDsFile)

	v3 := func(path string) map[string]any {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]any{}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			var crd struct {
				Kind     string
				Metadata struct{ Name string }
				Spec     struct {
					Versions []struct {
						Name   string
						Schema any
					}
				}
			}
			if err := yaml.Unmarshal([]byte(doc), &crd); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for _, ver := range crd.Spec.Versions {
				if crd.Kind == "CustomResourceDefinition" && ver.Name == "v3alpha1" {
					out[crd.Metadata.Name] = ver.Schema
				}
			}
		}
		return out
	}
	a, b := v3(manifest), v3(internal)
	if len(a) != 14 || !reflect.DeepEqual(a, b) {
		t.Errorf("v3alpha1 schemas differ between %s (%d CRDs) and %s (%d CRDs)", manifest, len(a), internal, len(b))
	}
	if _, err := Load(internal); err == nil || !strings.Contains(err.Error(), "not structural") {
		t.Errorf("Load(%s) = %v, want a non-structural schema error", internal, err)
	}
}

func TestMissingModuleIsExplained(t *testing.T) {
	t.Setenv(EnvEmissaryCRDs, "")
	t.Setenv("GOMODCACHE", t.TempDir()) // empty: forces go mod download
	t.Setenv("GOPROXY", "off")          // which then cannot download
	_, err := EmissaryCRDPath()
	if err == nil {
		t.Fatal("EmissaryCRDPath succeeded without a module cache or proxy")
	}
	t.Log(err)
	for _, want := range []string{EnvEmissaryCRDs, "go mod download", EmissaryModule} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
