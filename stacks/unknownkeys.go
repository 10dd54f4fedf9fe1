package stacks

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/agext/levenshtein"
)

// A misspelt key is worse than a wrong value: the program would never read it and would run the
// default instead (`clientAuht: alb-verify` deploys alb-passthrough and admits clients without a
// certificate). So every ztedge: key of the stack, and every field of an object-valued key, must
// be one the program reads; the error names the nearest known one.

// keyLister is a Source that can list the keys it holds (a stack file; the engine's context
// cannot, so the check runs where the stack file is read: preview, up, render, smoke).
type keyLister interface{ Keys() []string }

// Keys lists the keys set, sorted.
func (s MapSource) Keys() []string { return slices.Sorted(maps.Keys(s.Values)) }

// unknownKeys returns a problem for every key of the project's namespace that is not in the
// registry. Other namespaces (aws:, kubernetes:, pulumi:) belong to providers and the CLI.
func unknownKeys(src Source) []error {
	l, ok := src.(keyLister)
	if !ok {
		return nil
	}
	known := map[string]bool{}
	var names []string
	for _, k := range Keys {
		known[k.FullName()] = true
		if !strings.Contains(k.Name, ":") {
			names = append(names, k.Name)
		}
	}
	var out []error
	for _, full := range l.Keys() {
		name, ok := strings.CutPrefix(full, Namespace+":")
		if !ok || known[full] {
			continue
		}
		out = append(out, fmt.Errorf("%s: is not a ztedge setting, so it would be ignored and the default used%s (settings: README, Configuration reference)",
			full, didYouMean(name, names)))
	}
	return out
}

// didYouMean suggests the nearest of candidates, or says nothing when none is close.
func didYouMean(name string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := levenshtein.Distance(strings.ToLower(name), strings.ToLower(c), nil)
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > max(2, len(name)/3) {
		return ""
	}
	return fmt.Sprintf("; did you mean %s?", best)
}

// unknownFields walks a decoded JSON value along the Go type it is read into and returns a
// problem for every object field the type has no exact (case-sensitive) json name for; where
// is the path so far ("backends[0].rateLimit"). Maps take any key; their values are walked.
// encoding/json would match "Name" to "name" and, with DisallowUnknownFields, report only the
// first unknown field and not where it is.
func unknownFields(where string, v any, t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		list, _ := v.([]any)
		var out []string
		for i, e := range list {
			out = append(out, unknownFields(fmt.Sprintf("%s[%d]", where, i), e, t.Elem())...)
		}
		return out
	case reflect.Map:
		obj, _ := v.(map[string]any)
		var out []string
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			out = append(out, unknownFields(where+"."+k, obj[k], t.Elem())...)
		}
		return out
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // a type error: the strict decode reports it
		}
		fields := jsonFields(t)
		names := slices.Sorted(maps.Keys(fields))
		var out []string
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			ft, ok := fields[k]
			if !ok {
				out = append(out, fmt.Sprintf("unknown field %q in %s%s (fields: %s)", k, where, didYouMean(k, names), strings.Join(names, ", ")))
				continue
			}
			out = append(out, unknownFields(where+"."+k, obj[k], ft)...)
		}
		return out
	}
	return nil
}

// jsonFields maps a struct's json field names to their types (embedded structs flattened).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-" || !f.IsExported():
		case f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct:
			for n, ft := range jsonFields(f.Type) {
				out[n] = ft
			}
		case tag != "":
			out[tag] = f.Type
		default:
			out[f.Name] = f.Type
		}
	}
	return out
}

// checkFields reports unknown fields of value v (JSON) read into out; false if there were any.
func (r *reader) checkFields(k Key, v string, out any) bool {
	var doc any
	if err := json.Unmarshal([]byte(v), &doc); err != nil {
		return true // not JSON: the strict decode says so
	}
	bad := unknownFields(k.Name, doc, reflect.TypeOf(out))
	for _, b := range bad {
		r.fail(k, "%s", b)
	}
	return len(bad) == 0
}
