package render

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/ztedge/ztedge/internal/mockengine"
)

// Bundle is a program run sorted into what reviewers look at.
type Bundle struct {
	// Kubernetes holds every Kubernetes object the program declares (CustomResources included),
	// as it would be sent to the API server, Secret payloads redacted.
	Kubernetes []Object
	// Helm holds each Helm release (chart, version, repository, values).
	Helm []HelmRelease
	// AWS holds every AWS (and pulumi-eks) resource with its inputs.
	AWS []Resource
	// All is every registration, for the JSON form and the graph.
	All []Resource
	// standIns are the URNs the mock engine registered itself for children of remote components
	// (the EKS cluster, its OIDC provider), so the summary can say they are not the real list.
	standIns map[string]bool
}

// Object is one Kubernetes manifest.
type Object struct {
	APIVersion, Kind, Namespace, Name string
	URN                               string
	Manifest                          map[string]any
}

// HelmRelease is a Helm release as the program asks for it (the chart itself is not fetched offline).
type HelmRelease struct {
	URN        string `json:"urn"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace,omitempty"`
	Chart      string `json:"chart"`
	Version    string `json:"version,omitempty"`
	Repository string `json:"repository,omitempty"`
	Values     any    `json:"values,omitempty"` // Secret when the program passed all values as one secret
}

// Resource is one registration in the JSON form: `ztedge render --format json` prints a list of these.
type Resource struct {
	URN          string         `json:"urn"`
	Type         string         `json:"type"`
	Name         string         `json:"name"`
	Parent       string         `json:"parent,omitempty"`
	Dependencies []string       `json:"dependencies"`
	Inputs       map[string]any `json:"inputs"`
}

// NewBundle sorts a run's registrations (by URN, so the output does not depend on registration order).
func NewBundle(rs []*mockengine.Resource) *Bundle {
	b := &Bundle{standIns: map[string]bool{}}
	for _, r := range mockengine.Sorted(rs) {
		if r.Synthetic {
			b.standIns[r.URN] = true
		}
		res := Resource{
			URN: r.URN, Type: r.Type, Name: r.Name, Parent: r.Parent,
			Dependencies: append([]string{}, r.Dependencies...),
			Inputs:       PlainMap(r.Inputs),
		}
		sort.Strings(res.Dependencies)
		b.All = append(b.All, res)
		switch {
		case strings.HasPrefix(r.Type, "kubernetes:helm.sh/"):
			b.Helm = append(b.Helm, helmRelease(r.URN, r.Type, r.Name, res.Inputs))
		case isKubernetesObject(r):
			b.Kubernetes = append(b.Kubernetes, kubernetesObject(r, res.Inputs))
		case strings.HasPrefix(r.Type, "aws:") || strings.HasPrefix(r.Type, "eks:"):
			b.AWS = append(b.AWS, res)
		}
	}
	sort.SliceStable(b.Kubernetes, func(i, j int) bool { return b.Kubernetes[i].key() < b.Kubernetes[j].key() })
	return b
}

// isKubernetesObject: a custom resource of the Kubernetes provider that is an API object (not the
// provider itself, not a Helm release, not a component such as yaml/v2:ConfigGroup).
func isKubernetesObject(r *mockengine.Resource) bool {
	return r.Custom && strings.HasPrefix(r.Type, "kubernetes:") && !strings.HasPrefix(r.Type, "kubernetes:helm.sh/")
}

func (o Object) key() string {
	return strings.Join([]string{o.Namespace, o.Kind, o.Name, o.APIVersion, o.URN}, "\x00")
}

// kubernetesObject fills in what the provider would: apiVersion and kind from the type token when
// the inputs lack them, metadata.name from the engine's auto-name, and redacts Secret payloads.
func kubernetesObject(r *mockengine.Resource, inputs map[string]any) Object {
	m := inputs
	parts := strings.Split(r.Type, ":") // kubernetes:<group>/<version>:<Kind>
	if _, ok := m["apiVersion"]; !ok && len(parts) == 3 {
		m["apiVersion"] = strings.TrimPrefix(parts[1], "core/")
	}
	if _, ok := m["kind"]; !ok && len(parts) == 3 {
		m["kind"] = parts[2]
	}
	md, _ := m["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		m["metadata"] = md
	}
	if _, ok := md["name"]; !ok {
		if out, ok := r.Outputs["metadata"]; ok && out.IsObject() {
			if n, ok := out.ObjectValue()["name"]; ok && n.IsString() {
				md["name"] = n.StringValue()
			}
		}
	}
	o := Object{URN: r.URN, Manifest: m}
	o.APIVersion, _ = m["apiVersion"].(string)
	o.Kind, _ = m["kind"].(string)
	o.Name, _ = md["name"].(string)
	o.Namespace, _ = md["namespace"].(string)
	if o.Kind == "Secret" && o.APIVersion == "v1" {
		for _, field := range []string{"data", "stringData"} {
			if payload, ok := m[field].(map[string]any); ok {
				for k := range payload {
					payload[k] = Redacted
				}
			} else if m[field] != nil {
				m[field] = Redacted
			}
		}
	}
	return o
}

func helmRelease(urn, typ, name string, in map[string]any) HelmRelease {
	h := HelmRelease{URN: urn, Type: typ, Name: name}
	h.Chart, _ = in["chart"].(string)
	h.Version, _ = in["version"].(string)
	h.Namespace, _ = in["namespace"].(string)
	if n, ok := in["name"].(string); ok && n != "" {
		h.Name = n
	}
	if opts, ok := in["repositoryOpts"].(map[string]any); ok {
		h.Repository, _ = opts["repo"].(string)
	}
	h.Values = in["values"]
	return h
}

// JSON is the `--format json` document: one object per resource, sorted by URN.
func (b *Bundle) JSON() ([]byte, error) {
	out, err := json.MarshalIndent(b.All, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
