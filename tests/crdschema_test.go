package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/crdschema"
)

// aesRateLimitCRD is the reviewed Edge Stack RateLimit CRD; testdata/crds/SOURCE.md says where it
// comes from and pins its hash.
const (
	aesRateLimitCRD       = "tests/testdata/crds/aes-ratelimits.yaml"
	aesRateLimitCRDSha256 = "45160ef69b594352d6c4aec01ca9347cbc11a4b179164c5fc93c8694421b0233"
)

// ambassadorSchemas validates against Emissary's CRDs plus the Edge Stack RateLimit CRD.
func ambassadorSchemas(t *testing.T) *crdschema.Validator {
	t.Helper()
	v, err := crdschema.LoadEmissary(filepath.Join(repoRoot(t), aesRateLimitCRD))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEveryAmbassadorObjectMatchesItsCRD validates every getambassador.io object the whole
// program registers, whichever layer made it (edge config, rate limiting, auth), in every
// client-auth mode and both editions, the way the API server would: an unknown field (which
// the server would silently prune) is an error, and so is any version but v3alpha1.
func TestEveryAmbassadorObjectMatchesItsCRD(t *testing.T) {
	v := ambassadorSchemas(t)
	seen := map[string]bool{}
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		for _, o := range r.g.ambassadorObjects() {
			obj, _ := plain(o).(map[string]any)
			kind := str(obj["kind"])
			seen[kind] = true
			// v3alpha1 is what the 4.x CRD chart stores (no conversion webhook), and the only version
			// whose schema rejects unknown fields; v2 objects would slip through unchecked.
			if obj["apiVersion"] != components.AmbassadorAPIVersion {
				t.Errorf("%s %s is %v; emit %s", kind, o.Name, obj["apiVersion"], components.AmbassadorAPIVersion)
			}
			if "kubernetes:"+str(obj["apiVersion"])+":"+kind != o.Type {
				t.Errorf("%s: registered as %s but declares %v %s", o.Name, o.Type, obj["apiVersion"], kind)
			}
			for _, err := range v.Validate(obj) {
				t.Errorf("%s %s: %v", o.Type, o.Name, err)
			}
		}
	})
	var kinds []string
	for k := range seen {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	// What ztedge's own layers emit must all have been checked (other layers add to this list).
	for _, k := range []string{"Listener", "Host", "TLSContext", "Mapping", "RateLimitService", "RateLimit", "AuthService"} {
		if !seen[k] {
			t.Errorf("no %s was validated (kinds seen: %s)", k, strings.Join(kinds, ", "))
		}
	}
}

// TestSchemaCheckCatchesInventedFields proves the check above can fail: the fields the seed
// documents invented, and misspellings, are reported.
func TestSchemaCheckCatchesInventedFields(t *testing.T) {
	v := ambassadorSchemas(t)
	meta := map[string]any{"name": "x", "namespace": "ambassador"}
	cases := map[string]map[string]any{
		"Host spec.authentication.mTLS (seed)": {"kind": "Host", "spec": map[string]any{
			"hostname": "edge.example.com", "authentication": map[string]any{"mTLS": map[string]any{"caSecret": "ca", "certRequired": false}},
		}},
		"Mapping spec.jwt (seed)": {"kind": "Mapping", "spec": map[string]any{
			"prefix": "/a/", "service": "a", "jwt": map[string]any{"requireToken": true},
		}},
		"TLSContext min_tls_version spelled 1.3": {"kind": "TLSContext", "spec": map[string]any{"min_tls_version": "1.3"}},
		"Mapping retry_policy.per_try_timeout_ms": {"kind": "Mapping", "spec": map[string]any{
			"prefix": "/a/", "service": "a", "retry_policy": map[string]any{"retry_on": "5xx", "per_try_timeout_ms": 100},
		}},
		"Mapping label specifier with two keys": {"kind": "Mapping", "spec": map[string]any{
			"prefix": "/a/", "service": "a", "labels": map[string]any{components.RateLimitDomain: []any{map[string]any{"g": []any{
				map[string]any{"generic_key": map[string]any{"value": "a"}, "remote_address": map[string]any{"key": "remote_address"}},
			}}}},
		}},
		"RateLimitService protocol_version v4": {"kind": "RateLimitService", "spec": map[string]any{"service": "rl:8081", "protocol_version": "v4"}},
		"RateLimit unit fortnight":             {"kind": "RateLimit", "spec": map[string]any{"limits": []any{map[string]any{"rate": 1, "unit": "fortnight"}}}},
		"RateLimit limits[].requests_per_unit": {"kind": "RateLimit", "spec": map[string]any{"limits": []any{map[string]any{"requests_per_unit": 1, "unit": "minute"}}}},
	}
	for name, obj := range cases {
		t.Run(name, func(t *testing.T) {
			obj["apiVersion"], obj["metadata"] = components.AmbassadorAPIVersion, meta
			if errs := v.Validate(obj); len(errs) == 0 {
				t.Errorf("accepted %v", obj["spec"])
			}
		})
	}
}

// TestAesRateLimitCRDIsTheReviewedFile keeps testdata/crds/aes-ratelimits.yaml byte-identical to
// the upstream file SOURCE.md names.
func TestAesRateLimitCRDIsTheReviewedFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), aesRateLimitCRD))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != aesRateLimitCRDSha256 {
		t.Errorf("%s changed (sha256 %s); re-review it against datawire/edge-stack and update SOURCE.md", aesRateLimitCRD, got)
	}
	source, err := os.ReadFile(filepath.Join(repoRoot(t), "tests/testdata/crds/SOURCE.md"))
	if err != nil || !strings.Contains(string(source), aesRateLimitCRDSha256) {
		t.Errorf("SOURCE.md does not record the file's hash")
	}
}
