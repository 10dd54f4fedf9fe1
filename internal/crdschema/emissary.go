package crdschema

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

const (
	// EmissaryVersion is the emissary-crds-chart version (= Emissary release) whose CRDs
	// LoadEmissary uses. Keep it equal to the ztedge:emissaryVersion default.
	EmissaryVersion = "4.1.0"
	// EmissaryCRDChart is the chart's name, as packaged (the helm.sh/chart label uses it).
	EmissaryCRDChart = "emissary-crds-chart"
)

// The emissary-crds-chart sources at the v4.1.0 tag of emissary-ingress/emissary
// (charts/emissary-crds: values.yaml and templates/, NOTES.txt left out), byte for byte; see
// emissary/SOURCE.md. The chart's CRDs are Helm templates, so they are rendered, see
// RenderEmissaryCRDs.
//
//go:embed emissary/values.yaml emissary/templates/*.yaml
var emissaryChart embed.FS

// RenderEmissaryCRDs renders the embedded emissary-crds-chart with its default values, like
// `helm template emissary-crds oci://ghcr.io/emissary-ingress/emissary-crds-chart --version
// 4.1.0 --namespace <namespace>` (minus NOTES.txt): the CRDs a cluster gets from the chart.
//
// Helm renders charts with Go's text/template plus its own and sprig's functions. The chart's
// templates use only `include` (Helm), `replace` and `default` (sprig; `default` only in
// apiext.yaml, inside enableLegacyVersions), which are provided here with the same semantics; any other function makes parsing fail, so a chart upgrade that starts
// using one cannot be rendered wrongly in silence. Templates whose names start with "_" only
// define partials, as in Helm. Documents are separated with "---" in template-name order.
func RenderEmissaryCRDs(namespace string) ([]byte, error) {
	var values map[string]any
	vb, err := emissaryChart.ReadFile("emissary/values.yaml")
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(vb, &values); err != nil {
		return nil, fmt.Errorf("emissary-crds-chart values.yaml: %w", err)
	}
	data := map[string]any{
		"Values":  values,
		"Release": map[string]any{"Name": "emissary-crds", "Namespace": namespace},
		"Chart":   map[string]any{"Name": EmissaryCRDChart, "Version": EmissaryVersion, "AppVersion": EmissaryVersion},
	}
	names, err := fs.Glob(emissaryChart, "emissary/templates/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	root := template.New(EmissaryCRDChart).Option("missingkey=error")
	root.Funcs(template.FuncMap{
		// Helm's include: execute a named template into a string.
		"include": func(name string, data any) (string, error) {
			var b strings.Builder
			err := root.ExecuteTemplate(&b, name, data)
			return b.String(), err
		},
		// sprig's replace: replace OLD NEW SRC, every occurrence.
		"replace": func(old, new, src string) string { return strings.ReplaceAll(src, old, new) },
		// sprig's default: GIVEN | default DEF is DEF when GIVEN is empty.
		"default": func(def any, given ...any) any {
			if len(given) == 0 || empty(given[0]) {
				return def
			}
			return given[0]
		},
	})
	for _, n := range names {
		b, err := emissaryChart.ReadFile(n)
		if err != nil {
			return nil, err
		}
		if _, err := root.New(path.Base(n)).Parse(string(b)); err != nil {
			return nil, fmt.Errorf("emissary-crds-chart %s: %w", path.Base(n), err)
		}
	}
	var out bytes.Buffer
	for _, n := range names {
		base := path.Base(n)
		if strings.HasPrefix(base, "_") {
			continue
		}
		var b bytes.Buffer
		if err := root.ExecuteTemplate(&b, base, data); err != nil {
			return nil, fmt.Errorf("emissary-crds-chart %s: %w", base, err)
		}
		if strings.TrimSpace(b.String()) == "" {
			continue // e.g. apiext.yaml without enableLegacyVersions
		}
		fmt.Fprintf(&out, "---\n# Source: %s/templates/%s\n", EmissaryCRDChart, base)
		out.Write(b.Bytes())
		if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}

// LoadEmissary returns a Validator for the CRDs of the emissary-crds-chart EmissaryVersion as
// the chart installs them by default (v3alpha1 only, stored as v3alpha1, no conversion webhook),
// plus the CRDs in the given extra files (for example a reviewed file for Edge Stack-only kinds).
// The result is cached per set of extra files for the life of the process.
func LoadEmissary(extra ...string) (*Validator, error) {
	return loadCached("emissary-crds-chart@"+EmissaryVersion, func(v *Validator) error {
		crds, err := RenderEmissaryCRDs("emissary")
		if err != nil {
			return err
		}
		n, err := v.add(EmissaryCRDChart+"-"+EmissaryVersion, crds)
		if err != nil {
			return fmt.Errorf("emissary-crds-chart %s: %w", EmissaryVersion, err)
		}
		if n == 0 {
			return fmt.Errorf("emissary-crds-chart %s rendered no CRDs", EmissaryVersion)
		}
		return nil
	}, extra...)
}

// empty is sprig's notion of an empty value for default: nil, false, 0, "" and empty
// collections.
func empty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return rv.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	default:
		return rv.IsZero()
	}
}
