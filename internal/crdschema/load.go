package crdschema

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// Validator validates custom resources against a set of CRDs. It is
// immutable and safe for concurrent use.
type Validator struct {
	crds map[schema.GroupKind]*crdInfo
}

type crdInfo struct {
	name       string // metadata.name of the CRD, e.g. hosts.getambassador.io
	source     string // file it was loaded from
	gk         schema.GroupKind
	namespaced bool
	storage    string
	versions   map[string]*versionInfo
	order      []string // version names in CRD order
}

type versionInfo struct {
	name              string
	served            bool
	structural        *structuralschema.Structural
	validator         apiservervalidation.SchemaValidator
	cel               *cel.Validator // nil when the schema has no x-kubernetes-validations
	statusSubresource bool
}

var (
	cacheMu sync.Mutex
	cache   = map[string]*Validator{}
)

// Load returns a Validator for every apiextensions.k8s.io/v1
// CustomResourceDefinition in the given YAML files (multi-document YAML or
// JSON; documents of other kinds are skipped). Each CRD must be one the API
// server would accept in the ways that matter here: structural schemas for
// every version, exactly one storage version, at least one served version.
// Two files defining the same group and kind are an error. The result is
// cached per set of absolute paths for the life of the process.
func Load(files ...string) (*Validator, error) {
	if len(files) == 0 {
		return nil, errors.New("crdschema.Load: no files given")
	}
	return loadCached("", nil, files...)
}

// loadCached builds a Validator from base (if not nil, under the cache key
// baseKey) and the files, or returns the one built before.
func loadCached(baseKey string, base func(*Validator) error, files ...string) (*Validator, error) {
	abs := make([]string, len(files))
	for i, f := range files {
		a, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		abs[i] = a
	}
	key := strings.Join(append([]string{baseKey}, abs...), "\x00")

	cacheMu.Lock()
	defer cacheMu.Unlock()
	if v, ok := cache[key]; ok {
		return v, nil
	}
	v := &Validator{crds: map[schema.GroupKind]*crdInfo{}}
	if base != nil {
		if err := base(v); err != nil {
			return nil, err
		}
	}
	for _, f := range abs {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		n, err := v.add(f, data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no apiextensions.k8s.io/v1 CustomResourceDefinition found", f)
		}
	}
	cache[key] = v
	return v, nil
}

var conversionScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := apiextensions.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// add parses the CRDs in one file and adds them to v.
func (v *Validator) add(source string, data []byte) (int, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	n := 0
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("document %d: %w", doc, err)
		}
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(raw, &tm); err != nil {
			return n, fmt.Errorf("document %d: %w", doc, err)
		}
		if tm.Kind != "CustomResourceDefinition" {
			continue // empty documents, or other objects in the same file
		}
		if tm.APIVersion != apiextensionsv1.SchemeGroupVersion.String() {
			return n, fmt.Errorf("document %d: %s CustomResourceDefinition is not supported, only %s", doc, tm.APIVersion, apiextensionsv1.SchemeGroupVersion)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
			return n, fmt.Errorf("document %d: %w", doc, err)
		}
		info, err := compile(&crd)
		if err != nil {
			return n, fmt.Errorf("CRD %s: %w", crd.Name, err)
		}
		info.source = source
		if prev, ok := v.crds[info.gk]; ok {
			return n, fmt.Errorf("CRD %s: %s is already defined by %s in %s", crd.Name, info.gk, prev.name, prev.source)
		}
		v.crds[info.gk] = info
		n++
	}
}

// compile converts a v1 CRD to the internal apiextensions types, as the API
// server does, and builds the structural schema and validators of each
// version.
func compile(v1crd *apiextensionsv1.CustomResourceDefinition) (*crdInfo, error) {
	var crd apiextensions.CustomResourceDefinition
	if err := conversionScheme.Convert(v1crd, &crd, nil); err != nil {
		return nil, fmt.Errorf("converting to internal version: %w", err)
	}
	info := &crdInfo{
		name:       crd.Name,
		gk:         schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind},
		namespaced: crd.Spec.Scope == apiextensions.NamespaceScoped,
		versions:   map[string]*versionInfo{},
	}
	if info.gk.Group == "" || info.gk.Kind == "" {
		return nil, errors.New("spec.group and spec.names.kind are required")
	}
	if p := crd.Spec.PreserveUnknownFields; p != nil && *p {
		return nil, errors.New("spec.preserveUnknownFields: true is not allowed in apiextensions.k8s.io/v1")
	}
	served := 0
	for _, ver := range crd.Spec.Versions {
		if _, dup := info.versions[ver.Name]; dup {
			return nil, fmt.Errorf("version %s is listed twice", ver.Name)
		}
		if ver.Storage {
			if info.storage != "" {
				return nil, fmt.Errorf("versions %s and %s both have storage: true; exactly one storage version is allowed", info.storage, ver.Name)
			}
			info.storage = ver.Name
		}
		if ver.Served {
			served++
		}
		vi, err := compileVersion(&crd, ver.Name)
		if err != nil {
			return nil, fmt.Errorf("version %s: %w", ver.Name, err)
		}
		vi.served = ver.Served
		info.versions[ver.Name] = vi
		info.order = append(info.order, ver.Name)
	}
	if info.storage == "" {
		return nil, errors.New("no version has storage: true; exactly one storage version is required")
	}
	if served == 0 {
		return nil, errors.New("no version has served: true")
	}
	return info, nil
}

func compileVersion(crd *apiextensions.CustomResourceDefinition, version string) (*versionInfo, error) {
	validation, err := apiextensions.GetSchemaForVersion(crd, version)
	if err != nil {
		return nil, err
	}
	if validation == nil || validation.OpenAPIV3Schema == nil {
		return nil, errors.New("schema.openAPIV3Schema is required")
	}
	props := validation.OpenAPIV3Schema
	s, err := structuralschema.NewStructural(props)
	if err != nil {
		return nil, fmt.Errorf("schema is not structural: %w", err)
	}
	if errs := structuralschema.ValidateStructural(nil, s); len(errs) > 0 {
		return nil, fmt.Errorf("schema is not structural: %w", errs.ToAggregate())
	}
	// As the API server does: keep only defaults that survive pruning.
	s = s.DeepCopy()
	if err := structuraldefaulting.PruneDefaults(s); err != nil {
		return nil, fmt.Errorf("pruning defaults: %w", err)
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(props)
	if err != nil {
		return nil, fmt.Errorf("building schema validator: %w", err)
	}
	sub, err := apiextensions.GetSubresourcesForVersion(crd, version)
	if err != nil {
		return nil, err
	}
	return &versionInfo{
		name:              version,
		structural:        s,
		validator:         validator,
		cel:               cel.NewValidator(s, true, celconfig.PerCallLimit),
		statusSubresource: sub != nil && sub.Status != nil,
	}, nil
}

// Kinds returns the kinds the Validator knows, sorted. A kind defined in
// more than one API group is listed once.
func (v *Validator) Kinds() []string {
	seen := map[string]bool{}
	var out []string
	for gk := range v.crds {
		if !seen[gk.Kind] {
			seen[gk.Kind] = true
			out = append(out, gk.Kind)
		}
	}
	sort.Strings(out)
	return out
}

// ServedVersions returns the apiVersions ("group/version") that serve kind,
// in the CRD's order; nil for an unknown kind.
func (v *Validator) ServedVersions(kind string) []string {
	var out []string
	for _, info := range v.sortedCRDs() {
		if info.gk.Kind != kind {
			continue
		}
		for _, name := range info.order {
			if info.versions[name].served {
				out = append(out, info.gk.Group+"/"+name)
			}
		}
	}
	return out
}

// StorageVersion returns the apiVersion ("group/version") in which the API
// server stores kind; "" for an unknown kind. If several groups define kind,
// the first group in sorted order is used.
func (v *Validator) StorageVersion(kind string) string {
	for _, info := range v.sortedCRDs() {
		if info.gk.Kind == kind {
			return info.gk.Group + "/" + info.storage
		}
	}
	return ""
}

func (v *Validator) sortedCRDs() []*crdInfo {
	out := make([]*crdInfo, 0, len(v.crds))
	for _, info := range v.crds {
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].gk.String() < out[j].gk.String() })
	return out
}
