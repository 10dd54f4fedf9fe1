// Package chartvalues checks that every key a program sets in Helm values is
// one the chart defines. Helm passes unknown values keys to the templates,
// which never read them: a misspelt key installs "fine" and does nothing.
//
// # Rules
//
// A set key (reported as a dotted path, e.g. "service.loadBalancerIP"; a key
// that itself contains a dot is written as `podAnnotations["a.b/c"]`) is
// known when:
//
//  1. values.schema.json, when present, decides first (see below);
//  2. the path exists in the chart's default values.yaml;
//  3. it is below a default that accepts any sub-key: an empty map `{}`, a
//     null (`key:` or `key: ~`: the chart declares the key but not its
//     shape), or a map whose purpose is free-form by its name: a name that
//     (case-insensitively) is or ends in annotations, labels, nodeSelector,
//     env, resources, affinity, tolerations or securityContext
//     (podAnnotations, service.annotations, extraEnv,
//     containerSecurityContext, ...);
//  4. it is documented as a commented-out key in values.yaml (see
//     CommentedKeys), where the default does not exist. A default that is
//     `{}` or null stays free-form;
//  5. (LoadChart only) the chart's templates read it literally, as
//     .Values.service.loadBalancerIP (see TemplateKeys): charts often read
//     optional keys that values.yaml neither sets nor mentions. Like rule 4
//     it only adds keys the defaults lack.
//
// Lists are leaf values: a key whose value is a list is checked, the list's
// items are not. A map set where the default is a scalar or a list (image:
// "repo:tag" set as image.tag) makes each of its keys unknown.
//
// # Schema
//
// When the chart has values.schema.json, at each map level the schema is
// asked first: a key in properties, or matching patternProperties, is known
// (even with no default); with additionalProperties false any other key is
// unknown; with additionalProperties true or a schema any key is known. When
// the schema says nothing about the key (no properties entry and no
// additionalProperties; JSON Schema's implicit "additional properties are
// allowed" is not taken as a definition) the default-values rules apply. The
// keywords followed are properties, patternProperties,
// additionalProperties, local $ref (#/definitions/..., #/$defs/...), and
// allOf/anyOf/oneOf (a key known to any branch is known). A key the schema
// knows but whose subschema describes no keys is free-form below unless the
// defaults describe it.
package chartvalues

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadDefaults parses a chart's values.yaml. An empty file gives an empty
// map.
func LoadDefaults(valuesYAMLPath string) (map[string]any, error) {
	data, err := os.ReadFile(valuesYAMLPath)
	if err != nil {
		return nil, err
	}
	m, err := parseDefaults(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", valuesYAMLPath, err)
	}
	return m, nil
}

func parseDefaults(data []byte) (map[string]any, error) {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// UnknownKeys returns, sorted, the dotted paths of keys in set that defaults
// does not define, by rules 2 and 3 of the package documentation (no schema,
// no commented keys; see Chart.UnknownKeys for those). set may hold any maps
// with string keys (map[string]string, pulumi.Map, ...).
func UnknownKeys(defaults, set map[string]any) []string {
	c := checker{}
	c.walk("", normalizeMap(set), defaults, nil)
	sort.Strings(c.out)
	return c.out
}

// Chart is what a chart defines for its values.
type Chart struct {
	// Defaults is values.yaml.
	Defaults map[string]any
	// Documented holds the keys found commented out in values.yaml, in the
	// same shape as values (see CommentedKeys).
	Documented map[string]any
	// Referenced holds the keys the chart's templates read (see
	// TemplateKeys); nil from ParseChart.
	Referenced map[string]any
	// Schema is values.schema.json, or nil when the chart has none.
	Schema map[string]any
}

// LoadChart reads values.yaml, values.schema.json if present, and the
// templates from a chart directory.
func LoadChart(chartDir string) (*Chart, error) {
	values, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return nil, err
	}
	schema, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	c, err := ParseChart(values, schema)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", chartDir, err)
	}
	if c.Referenced, err = TemplateKeys(chartDir); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseChart builds a Chart from the contents of values.yaml and
// values.schema.json (nil or empty when the chart has none).
func ParseChart(valuesYAML, schemaJSON []byte) (*Chart, error) {
	defaults, err := parseDefaults(valuesYAML)
	if err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	documented, err := CommentedKeys(valuesYAML)
	if err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	c := &Chart{Defaults: defaults, Documented: documented}
	if len(strings.TrimSpace(string(schemaJSON))) > 0 {
		if err := json.Unmarshal(schemaJSON, &c.Schema); err != nil {
			return nil, fmt.Errorf("values.schema.json: %w", err)
		}
	}
	return c, nil
}

// UnknownKeys returns, sorted, the dotted paths of keys in set that the
// chart does not define, by all the rules of the package documentation.
func (c *Chart) UnknownKeys(set map[string]any) []string {
	ch := checker{schemaRoot: c.Schema}
	known := mergeDocumented(mergeDocumented(c.Defaults, c.Documented), c.Referenced)
	ch.walk("", normalizeMap(set), known, c.Schema)
	sort.Strings(ch.out)
	return ch.out
}

// mergeDocumented adds documented keys where the defaults lack them. It
// does not descend into free-form defaults ({} or null), which must stay
// free-form.
func mergeDocumented(defaults, documented map[string]any) map[string]any {
	out := make(map[string]any, len(defaults)+len(documented))
	for k, v := range defaults {
		out[k] = v
	}
	for k, doc := range documented {
		def, ok := out[k]
		if !ok {
			out[k] = doc
			continue
		}
		dm, dIsMap := def.(map[string]any)
		docm, docIsMap := doc.(map[string]any)
		if dIsMap && len(dm) > 0 && docIsMap {
			out[k] = mergeDocumented(dm, docm)
		}
	}
	return out
}

type checker struct {
	schemaRoot map[string]any
	out        []string
}

// walk checks the keys of set against the default def (any type, nil when
// absent or null) and the schema sch (nil when none applies).
func (c *checker) walk(path string, set map[string]any, def any, sch map[string]any) {
	defMap, _ := def.(map[string]any)
	for _, k := range sortedKeys(set) {
		p := joinPath(path, k)
		sub, isMap := set[k].(map[string]any)
		d, hasDefault := defMap[k]

		if sch != nil {
			switch verdict, childSch := c.schemaLookup(sch, k); verdict {
			case schemaUnknown:
				c.out = append(c.out, p)
				continue
			case schemaKnown:
				if !isMap {
					continue
				}
				if childSch != nil && c.describesKeys(childSch) {
					c.walk(p, sub, d, childSch)
					continue
				}
				if !hasDefault {
					continue // the schema declares the key and leaves it open
				}
				c.descend(p, k, sub, d)
				continue
			}
		}
		if !hasDefault {
			c.out = append(c.out, p)
			continue
		}
		if isMap {
			c.descend(p, k, sub, d)
		}
	}
}

// descend checks a set map against its default d.
func (c *checker) descend(p, key string, sub map[string]any, d any) {
	if freeForm(key, d) {
		return
	}
	if _, ok := d.(map[string]any); ok {
		c.walk(p, sub, d, nil)
		return
	}
	// The default is a scalar or a list: the chart defines no sub-keys.
	for _, k := range sortedKeys(sub) {
		c.out = append(c.out, joinPath(p, k))
	}
}

var freeFormSuffixes = []string{"annotations", "labels", "nodeselector", "env", "resources", "affinity", "tolerations", "securitycontext"}

// freeForm reports whether any sub-key is allowed under key with default d.
func freeForm(key string, d any) bool {
	if d == nil {
		return true
	}
	if m, ok := d.(map[string]any); ok && len(m) == 0 {
		return true
	}
	lk := strings.ToLower(key)
	for _, s := range freeFormSuffixes {
		if strings.HasSuffix(lk, s) {
			return true
		}
	}
	return false
}

type schemaVerdict int

const (
	schemaSilent schemaVerdict = iota
	schemaKnown
	schemaUnknown
)

// schemaLookup asks the schema s about key. For schemaKnown it returns the
// key's subschema (nil when that is `true` or unknown).
func (c *checker) schemaLookup(s map[string]any, key string) (schemaVerdict, map[string]any) {
	verdict, child := schemaSilent, map[string]any(nil)
	closed := false
	c.eachBranch(s, 0, func(b map[string]any) bool {
		if props, ok := b["properties"].(map[string]any); ok {
			if p, ok := props[key]; ok {
				verdict, child = schemaKnown, c.resolve(p)
				return false
			}
		}
		if pats, ok := b["patternProperties"].(map[string]any); ok {
			for pat, p := range pats {
				if re, err := regexp.Compile(pat); err == nil && re.MatchString(key) {
					verdict, child = schemaKnown, c.resolve(p)
					return false
				}
			}
		}
		switch ap := b["additionalProperties"].(type) {
		case bool:
			if ap {
				verdict, child = schemaKnown, nil
				return false
			}
			closed = true
		case map[string]any:
			verdict, child = schemaKnown, c.resolve(ap)
			return false
		}
		return true
	})
	if verdict == schemaSilent && closed {
		verdict = schemaUnknown
	}
	return verdict, child
}

// describesKeys reports whether the schema says anything about keys.
func (c *checker) describesKeys(s map[string]any) bool {
	found := false
	c.eachBranch(s, 0, func(b map[string]any) bool {
		for _, kw := range []string{"properties", "patternProperties", "additionalProperties"} {
			if _, ok := b[kw]; ok {
				found = true
				return false
			}
		}
		return true
	})
	return found
}

// eachBranch calls f with s (after resolving $ref) and, recursively, each
// allOf/anyOf/oneOf branch, until f returns false.
func (c *checker) eachBranch(s map[string]any, depth int, f func(map[string]any) bool) bool {
	if s == nil || depth > 32 {
		return true
	}
	if _, ok := s["$ref"]; ok {
		if r := c.resolve(s); r != nil && reflect.ValueOf(r).Pointer() != reflect.ValueOf(s).Pointer() {
			if !c.eachBranch(r, depth+1, f) {
				return false
			}
		}
	}
	if !f(s) {
		return false
	}
	for _, kw := range []string{"allOf", "anyOf", "oneOf"} {
		branches, _ := s[kw].([]any)
		for _, b := range branches {
			if bm, ok := b.(map[string]any); ok {
				if !c.eachBranch(bm, depth+1, f) {
					return false
				}
			}
		}
	}
	return true
}

// resolve returns the schema object for v, following a local $ref
// ("#/definitions/x", "#/$defs/x"); nil for boolean schemas and anything
// unresolvable.
func (c *checker) resolve(v any) map[string]any {
	s, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	for i := 0; i < 32; i++ {
		ref, ok := s["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/") || c.schemaRoot == nil {
			return s
		}
		var cur any = c.schemaRoot
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			m, ok := cur.(map[string]any)
			if !ok {
				return s
			}
			cur = m[part]
		}
		next, ok := cur.(map[string]any)
		if !ok {
			return s
		}
		s = next
	}
	return s
}

func normalizeMap(m map[string]any) map[string]any {
	out, _ := normalize(m).(map[string]any)
	return out
}

// normalize turns every map with string keys (map[string]string,
// pulumi.Map, ...) into map[string]any, recursively; other values are kept.
func normalize(v any) any {
	if v == nil {
		return nil
	}
	if m, ok := v.(map[string]any); ok {
		out := make(map[string]any, len(m))
		for k, e := range m {
			out[k] = normalize(e)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Interface || rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return v
		}
		rv = rv.Elem()
	}
	if rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String {
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			out[iter.Key().String()] = normalize(iter.Value().Interface())
		}
		return out
	}
	return v
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinPath(path, key string) string {
	if key == "" || strings.ContainsAny(key, ".[]\"") {
		return path + "[" + fmt.Sprintf("%q", key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}
