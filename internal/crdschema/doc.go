// Package crdschema checks custom resources against the OpenAPI schemas of
// their CustomResourceDefinitions, the way a Kubernetes API server does,
// before anything is deployed.
//
// # Why
//
// ztedge emits Emissary-ingress custom resources (getambassador.io Host,
// Listener, TLSContext, Mapping, AuthService, RateLimitService, Module, ...).
// Their CRDs have structural schemas, and for structural schemas the API
// server silently prunes every field it does not know: a misspelt or
// invented field (spec.authentication.mTLS.caSecret on a Host,
// spec.jwt.requireToken on a Mapping) is accepted, dropped, and does
// nothing. Nothing fails at deploy time; the edge is just configured
// differently from what the program says. This package makes such a field
// an error in unit tests.
//
// # How
//
// It uses the API server's own code from k8s.io/apiextensions-apiserver, not
// a hand-written checker. For an object it does, in the order the API server
// does on create:
//
//   - look up the CRD serving the object's group, version and kind
//     (unknown kind, unknown version and versions with served: false are
//     errors);
//   - decode metadata strictly (objectmeta), reporting unknown metadata fields;
//   - prune the object with the version's structural schema
//     (pruning.PruneWithOptions), reporting every pruned path as an unknown
//     field; x-kubernetes-preserve-unknown-fields subtrees (e.g. Module
//     spec.config) accept anything;
//   - apply schema defaults (defaulting.Default);
//   - validate with the OpenAPI schema validator
//     (validation.NewSchemaValidator / ValidateCustomResource: types, enums,
//     required, patterns, formats, bounds), validate metadata like the
//     server (name, labels, annotations), embedded resources,
//     x-kubernetes-list-type invariants and x-kubernetes-validations CEL
//     rules;
//   - report a status block on a kind with the status subresource (the
//     server drops it on create).
//
// Name and namespace may be absent: the Pulumi Kubernetes provider fills
// them in (auto-naming, provider namespace).
//
// # Where the schemas come from
//
// [LoadEmissary] uses the CRDs of the emissary-crds-chart at EmissaryVersion
// (4.1.0), the chart ztedge installs. The chart's values.yaml and templates
// are embedded byte for byte from the v4.1.0 tag of emissary-ingress/emissary
// (emissary/SOURCE.md pins each file's sha256) and rendered with the default
// values by [RenderEmissaryCRDs], as `helm template` would: 14 CRDs,
// apiextensions.k8s.io/v1, each with the single version v3alpha1 (served and
// stored; the legacy v2/v1 versions and their conversion webhook are off by
// default in 4.x). Every v3alpha1 schema is structural, so every object gets
// unknown-field checking. Nothing is downloaded: the tests run offline.
//
// [Load] reads any CRD YAML files (for example a reviewed schema file for
// AES-only kinds such as RateLimit), and LoadEmissary accepts such files to
// combine with Emissary's CRDs in one Validator.
//
// Parsed validators are cached per process, keyed by the files' absolute
// paths, so calling LoadEmissary from many tests is cheap.
package crdschema
