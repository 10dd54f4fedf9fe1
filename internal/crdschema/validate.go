package crdschema

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// Reason classifies an Error.
type Reason string

const (
	// ReasonUnknownField: the API server would silently prune the field.
	ReasonUnknownField Reason = "UnknownField"
	// ReasonUnknownKind: no loaded CRD defines the object's group and kind,
	// or the CRD has no such version.
	ReasonUnknownKind Reason = "UnknownKind"
	// ReasonNotServed: the CRD has the version but with served: false.
	ReasonNotServed Reason = "VersionNotServed"
	// ReasonInvalid: the API server would reject the object (schema, CEL,
	// metadata or list-type validation). Error.Type has the detail.
	ReasonInvalid Reason = "Invalid"
	// ReasonIgnored: the field is well-formed but dropped on create (status
	// of a kind with the status subresource).
	ReasonIgnored Reason = "Ignored"
	// ReasonMalformed: the object is not a JSON-like object with apiVersion
	// and kind strings, or its metadata cannot be decoded.
	ReasonMalformed Reason = "Malformed"
)

// Error is one problem found by Validate.
type Error struct {
	APIVersion, Kind string
	Namespace, Name  string
	Reason           Reason
	// Field is the path of the offending field ("spec.tls.min_tls_version",
	// "spec.routes[0].name"); "" for object-level problems.
	Field string
	// Type is the apimachinery field error type for ReasonInvalid
	// (e.g. "Unsupported value", "Required value"); "" otherwise.
	Type field.ErrorType
	// Detail is a human-readable explanation.
	Detail string
}

// Object names the object: `Host "ns/name"`, `Host "name"` or `Host`.
func (e *Error) Object() string {
	switch {
	case e.Name != "" && e.Namespace != "":
		return fmt.Sprintf("%s %q", e.Kind, e.Namespace+"/"+e.Name)
	case e.Name != "":
		return fmt.Sprintf("%s %q", e.Kind, e.Name)
	case e.Kind != "":
		return e.Kind
	}
	return "object"
}

func (e *Error) Error() string {
	obj := e.Object()
	if e.APIVersion != "" {
		obj = e.APIVersion + " " + obj
	}
	if e.Reason == ReasonUnknownField {
		return fmt.Sprintf("%s: unknown field %q (the API server would silently drop it)", obj, e.Field)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", obj, e.Field, e.Detail)
	}
	return fmt.Sprintf("%s: %s", obj, e.Detail)
}

// Validate checks one object (apiVersion, kind, metadata, spec, ...) the way
// the API server would on create, and returns every problem found: unknown
// (pruned) fields, schema and CEL violations, invalid metadata, an unknown
// kind or version, a version that is not served. All returned errors are
// *Error. obj is not modified; it may hold any values that encoding/json
// marshals (ints, []string, map[string]string, ...).
func (v *Validator) Validate(obj map[string]any) []error {
	u, err := normalize(obj)
	if err != nil {
		return []error{&Error{Reason: ReasonMalformed, Detail: err.Error()}}
	}
	e := objectErrors{}
	e.apiVersion, _ = u["apiVersion"].(string)
	e.kind, _ = u["kind"].(string)
	if md, ok := u["metadata"].(map[string]any); ok {
		e.name, _ = md["name"].(string)
		e.namespace, _ = md["namespace"].(string)
	}
	if e.apiVersion == "" || e.kind == "" {
		e.add(ReasonMalformed, "", "", "apiVersion and kind must be non-empty strings")
		return e.errs
	}
	gv, err := schema.ParseGroupVersion(e.apiVersion)
	if err != nil {
		e.add(ReasonMalformed, "apiVersion", "", err.Error())
		return e.errs
	}
	info, ok := v.crds[schema.GroupKind{Group: gv.Group, Kind: e.kind}]
	if !ok {
		e.add(ReasonUnknownKind, "", "", fmt.Sprintf("no CRD serves %s %s (known kinds: %s)", e.apiVersion, e.kind, strings.Join(v.Kinds(), ", ")))
		return e.errs
	}
	ver, ok := info.versions[gv.Version]
	if !ok {
		e.add(ReasonUnknownKind, "", "", fmt.Sprintf("no CRD serves %s %s: CRD %s has versions %s", e.apiVersion, e.kind, info.name, strings.Join(info.order, ", ")))
		return e.errs
	}
	if !ver.served {
		e.add(ReasonNotServed, "", "", fmt.Sprintf("CRD %s does not serve version %s (served: false); served: %s", info.name, gv.Version, strings.Join(v.ServedVersions(e.kind), ", ")))
		return e.errs
	}
	v.validateVersion(&e, info, ver, u)
	return e.errs
}

func (v *Validator) validateVersion(e *objectErrors, info *crdInfo, ver *versionInfo, u map[string]any) {
	s := ver.structural

	// Decoding, as unstructuredSchemaCoercer does: metadata strictly into
	// ObjectMeta, then pruning with the version's structural schema.
	meta, foundMeta, unknownMeta, err := schemaobjectmeta.GetObjectMetaWithOptions(u, schemaobjectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		e.add(ReasonMalformed, "metadata", "", err.Error())
		return
	}
	for _, p := range unknownMeta {
		e.add(ReasonUnknownField, p, "", "")
	}
	pruned := structuralpruning.PruneWithOptions(u, s, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, p := range pruned {
		e.add(ReasonUnknownField, p, "", "")
	}
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u, s)
	ferr, embeddedUnknown := schemaobjectmeta.CoerceWithOptions(nil, u, s, false, schemaobjectmeta.CoerceOptions{ReturnUnknownFieldPaths: true})
	if ferr != nil {
		e.addField(ferr)
	}
	for _, p := range embeddedUnknown {
		e.add(ReasonUnknownField, p, "", "")
	}
	if foundMeta {
		if err := schemaobjectmeta.SetObjectMeta(u, meta); err != nil {
			e.add(ReasonMalformed, "metadata", "", err.Error())
			return
		}
		// The Pulumi provider fills in a missing name and namespace, so
		// validate the metadata as it will be sent.
		m := meta.DeepCopy()
		if m.Name == "" && m.GenerateName == "" {
			m.Name = "pulumi-auto-named"
		}
		if info.namespaced && m.Namespace == "" {
			m.Namespace = "default"
		}
		for _, fe := range apimachineryvalidation.ValidateObjectMeta(m, info.namespaced, apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata")) {
			e.addField(fe)
		}
	}

	// Defaulting, as the API server does after decoding.
	structuraldefaulting.Default(u, s)

	// Create strategy: status is reset when the status subresource is on.
	if ver.statusSubresource {
		if _, has := u["status"]; has {
			e.add(ReasonIgnored, "status", "", "ignored on create: the CRD has the status subresource, so the API server drops status written with the object")
			delete(u, "status")
		}
	}

	var errs field.ErrorList
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, u, ver.validator)...)
	errs = append(errs, schemaobjectmeta.Validate(nil, u, s, false)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, s, u)...)
	if ver.cel != nil {
		if hasBlocking(errs) {
			errs = append(errs, field.Invalid(nil, nil, "x-kubernetes-validations rules were not checked because the object was invalid; correct the existing errors to complete validation"))
		} else {
			celErrs, _ := ver.cel.Validate(context.Background(), nil, s, u, nil, celconfig.RuntimeCELCostBudget)
			errs = append(errs, celErrs...)
		}
	}
	for _, fe := range errs {
		e.addField(fe)
	}
	sort.SliceStable(e.errs, func(i, j int) bool {
		a, b := e.errs[i].(*Error), e.errs[j].(*Error)
		return a.Field < b.Field
	})
}

// hasBlocking mirrors the API server's hasBlockingErr: after these errors
// CEL rules are not evaluated.
func hasBlocking(errs field.ErrorList) bool {
	for _, e := range errs {
		switch e.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return true
		}
	}
	return false
}

// normalize deep-copies obj into the JSON-compatible form the API server
// works on (map[string]any, []any, string, int64, float64, bool, nil).
func normalize(obj map[string]any) (map[string]any, error) {
	if obj == nil {
		return nil, fmt.Errorf("nil object")
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("object is not JSON-serialisable: %w", err)
	}
	var u map[string]any
	if err := utiljson.Unmarshal(data, &u); err != nil {
		return nil, err
	}
	return u, nil
}

type objectErrors struct {
	apiVersion, kind, namespace, name string
	errs                              []error
}

func (o *objectErrors) add(r Reason, path string, t field.ErrorType, detail string) {
	o.errs = append(o.errs, &Error{
		APIVersion: o.apiVersion, Kind: o.kind, Namespace: o.namespace, Name: o.name,
		Reason: r, Field: path, Type: t, Detail: detail,
	})
}

func (o *objectErrors) addField(fe *field.Error) {
	// field.Error.Error() is "path: Type: detail" with the bad value; keep
	// the path separately and the rest as Detail.
	detail := fe.ErrorBody()
	o.add(ReasonInvalid, fe.Field, fe.Type, detail)
}
