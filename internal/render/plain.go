// Package render turns the mock engine's record of a program run into files a reviewer (and a
// policy tool) can read: Kubernetes manifests, Helm releases, an AWS summary, the dependency graph
// (Mermaid and DOT), or one JSON object per resource. Secrets never reach the output.
package render

import (
	"fmt"
	"math"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Placeholders written instead of values that must not (or cannot) be shown.
const (
	// Secret replaces every value the program passed as a Pulumi secret.
	Secret = "[secret]"
	// Redacted replaces the values of a Kubernetes Secret's data and stringData, secret-marked or not:
	// a Secret's payload is sensitive by kind (only its keys are shown).
	Redacted = "[redacted]"
	// Unknown stands for a value that was not resolved when the resource was registered.
	Unknown = "[unknown]"
)

// Plain converts a property value to plain Go values (maps, slices, strings, numbers, bools),
// writing Secret in place of every secret-marked value at any depth, so that nothing for which
// ContainsSecrets() is true survives. Resource references become their URN.
func Plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return Secret
	case v.IsOutput():
		o := v.OutputValue()
		if o.Secret {
			return Secret
		}
		if !o.Known {
			return Unknown
		}
		return Plain(o.Element)
	case v.IsComputed():
		return Unknown
	case v.IsNull():
		return nil
	case v.IsBool():
		return v.BoolValue()
	case v.IsNumber():
		n := v.NumberValue()
		// YAML and JSON readers expect integers where the program wrote integers (ports, replicas).
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n)
		}
		return n
	case v.IsString():
		return v.StringValue()
	case v.IsArray():
		out := make([]any, 0, len(v.ArrayValue()))
		for _, e := range v.ArrayValue() {
			out = append(out, Plain(e))
		}
		return out
	case v.IsObject():
		return PlainMap(v.ObjectValue())
	case v.IsResourceReference():
		return string(v.ResourceReferenceValue().URN)
	case v.IsAsset():
		a := v.AssetValue()
		return fmt.Sprintf("[asset %s%s]", a.Path, a.URI)
	case v.IsArchive():
		a := v.ArchiveValue()
		return fmt.Sprintf("[archive %s%s]", a.Path, a.URI)
	}
	return fmt.Sprint(v.V)
}

// PlainMap converts a property map with Plain.
func PlainMap(m resource.PropertyMap) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[string(k)] = Plain(v)
	}
	return out
}
