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
// [LoadEmissary] reads the CRDs shipped in the Go module
// github.com/emissary-ingress/emissary/v3 at EmissaryVersion (v3.10.0). It
// uses manifests/emissary/emissary-crds.yaml.in, the manifest Emissary's
// release applies to clusters (14 CRDs, apiextensions.k8s.io/v1, plus the
// apiext Deployment and RBAC, which are skipped), because that is what the
// API server prunes with. The module also has
// pkg/api/getambassador.io/crds.yaml: its v3alpha1 schemas are identical
// (a test checks this), but it is the "internal-validator" variant whose
// v1/v2 schemas use oneOf type unions, are not structural, and would be
// refused by an API server (Load refuses them too). In the cluster manifest
// those union fields are left out and their v1/v2 specs preserve unknown
// fields, so only v3alpha1 objects get unknown-field checking: emit
// v3alpha1.
//
// That module is deliberately not a dependency in go.mod (its dependency
// graph would disturb ours); it is found at run time, in this order:
//
//  1. the file named by the environment variable ZTEDGE_EMISSARY_CRDS, if set;
//  2. $(go env GOMODCACHE)/github.com/emissary-ingress/emissary/v3@v3.10.0/manifests/emissary/emissary-crds.yaml.in;
//  3. otherwise `go mod download -json github.com/emissary-ingress/emissary/v3@v3.10.0`
//     is run (in the temp dir with GOWORK=off, so go.mod and go.sum are not
//     touched; the download is checked against the checksum database as
//     usual) and the file is read from the Dir it reports.
//
// A fresh machine therefore needs the go command and the Go module proxy
// (about 8 MB, once); no other setup. [Load] reads any CRD YAML files (for
// example a reviewed schema file for AES-only kinds such as Filter), and
// several files can be combined in one Validator.
//
// Parsed validators are cached per process, keyed by the files' absolute
// paths, so calling LoadEmissary from many tests is cheap.
package crdschema
