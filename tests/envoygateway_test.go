package tests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

// The Envoy-configuration tier for engine envoy-gateway: each stack × client-auth mode is
// rendered under mocks, its Gateway API and Envoy Gateway objects are translated offline by
// egctl v1.9.1 (e2e/egctl.sh builds it; .ci/run sets ZTEDGE_EGCTL), every policy must be
// Accepted, and the guarantees are asserted on the xDS Envoy Gateway would send.

// egSources are the configurations covered: every mode on dev and prod, and local.
func egSources(t *testing.T) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, stack := range []string{"dev", "prod"} {
		for _, mode := range components.ClientAuthModes {
			// prod monitors Emissary's metrics; envoy-gateway has no monitoring yet (refused).
			out[stack+"/"+mode] = map[string]string{"ztedge:engine": "envoy-gateway", "ztedge:clientAuth": mode, "ztedge:monitoring": "off"}
			if mode == components.ClientAuthNLBPassthrough {
				out[stack+"/"+mode]["ztedge:waf"] = "off" // no WAF on an NLB (refused otherwise)
			}
		}
	}
	for _, mode := range []string{components.ClientAuthNLBPassthrough, components.ClientAuthOff} {
		out["local/"+mode] = map[string]string{"ztedge:engine": "envoy-gateway", "ztedge:clientAuth": mode}
	}
	return out
}

// egctlPath finds egctl: $ZTEDGE_EGCTL, else the cache e2e/egctl.sh fills. Under CI it must be
// there; elsewhere the tier is skipped with the command that builds it.
func egctlPath(t *testing.T) string {
	if p := os.Getenv("ZTEDGE_EGCTL"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "ztedge-e2e", "egctl-"+components.EnvoyGatewayVersion, "egctl")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("egctl is missing under CI: .ci/run must build it first (bash e2e/egctl.sh)")
	}
	t.Skipf("egctl not built: run `bash e2e/egctl.sh` (about 10 minutes once) to run the Envoy Gateway tier")
	return ""
}

// gatewayObjects are the rendered objects egctl reads, with real PEMs in the Secrets (the mocks'
// certificates are placeholders Envoy Gateway would refuse) and the backends' Services, which
// the backend teams own.
func gatewayObjects(t *testing.T, g *graph, r map[string]string) []map[string]any {
	var out []map[string]any
	pemPair := selfSigned(t)
	for _, ro := range renderedObjects(g) {
		res, obj := ro.res, ro.obj
		api := str(obj["apiVersion"])
		switch {
		case strings.HasPrefix(api, components.GatewayAPIGroup), strings.HasPrefix(api, components.EnvoyGatewayGroup):
		case res.Type == "kubernetes:core/v1:Secret":
			delete(obj, "stringData")
			obj["data"] = map[string]any{"tls.crt": pemPair[0], "tls.key": pemPair[1], "ca.crt": pemPair[0]}
		case res.Type == "kubernetes:core/v1:ConfigMap":
			if d, ok := obj["data"].(map[string]any); ok && d["ca.crt"] != nil {
				d["ca.crt"] = string(mustB64Decode(pemPair[0]))
			}
		case res.Type == "kubernetes:core/v1:Service" && res.Name == components.AuthName:
		default:
			continue
		}
		obj["apiVersion"], obj["kind"] = api, obj["kind"]
		out = append(out, obj)
	}
	_ = r
	return out
}

func egRender(t *testing.T, name string, edit map[string]string) (*graph, []map[string]any) {
	stack := strings.Split(name, "/")[0]
	cfg := stackConfig(t, stack, edit)
	g, err := run(t, stack, cfg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	objs := append(gatewayObjects(t, g, edit), backendServices(t, cfg)...)
	return g, append(objs, hostileGatewayObjects(t, cfg)...)
}

// hostileRouteName is the HTTPRoute hostileGatewayObjects adds.
const hostileRouteName = "hostile-route"

// hostileGatewayObjects are what anyone who can write in a backend's namespace would add to
// publish a route of their own: an HTTPRoute attached to the edge Gateway, on the edge hostname,
// forging the identity headers (no SecurityPolicy of theirs can reach the Gateway's: policies
// target objects of their own namespace).
func hostileGatewayObjects(t *testing.T, cfg stacks.MapSource) []map[string]any {
	b, edgeNS := hostileTarget(t, cfg)
	return []map[string]any{{
		"apiVersion": components.GatewayAPIGroup + "/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": hostileRouteName, "namespace": b.Namespace},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": components.GatewayName, "namespace": edgeNS, "sectionName": components.GatewayListenerName}},
			"hostnames":  []any{strings.ToLower(cfg.Values["ztedge:hostname"])},
			"rules": []any{map[string]any{
				"matches": []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": hostilePrefix + "route/"}}},
				"filters": []any{map[string]any{"type": "RequestHeaderModifier", "requestHeaderModifier": map[string]any{
					"set": []any{map[string]any{"name": "x-user-id", "value": "admin"}, map[string]any{"name": "x-user-permissions", "value": "*"}},
				}}},
				"backendRefs": []any{map[string]any{"name": b.ServiceName(), "port": b.Port}},
			}},
		},
	}}
}

// refusedByTheGateway: the route's parent status says the Gateway did not accept it.
func refusedByTheGateway(conds []any) bool {
	for _, c := range conds {
		if text(dig(c, "type")) == "Accepted" && text(dig(c, "status")) == "False" {
			return true
		}
	}
	return false
}

// translate runs egctl over the objects and returns the updated Gateway API objects and the xDS.
func translate(t *testing.T, egctl string, objs []map[string]any) map[string]any {
	var docs []string
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	file := filepath.Join(t.TempDir(), "in.yaml")
	if err := os.WriteFile(file, []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(egctl, "x", "translate", "--from", "gateway-api", "--to", "gateway-api,xds", "-t", "all", "-o", "json", "--add-missing-resources", "-f", file)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("egctl: %v\n%s", err, errOutput(err))
	}
	var result map[string]any
	if err := json.Unmarshal(out, &result); err != nil {
		t.Fatalf("egctl output: %v", err)
	}
	if os.Getenv("ZTEDGE_EG_DUMP") != "" {
		_ = os.WriteFile(os.Getenv("ZTEDGE_EG_DUMP"), out, 0o600)
		_ = os.WriteFile(os.Getenv("ZTEDGE_EG_DUMP")+".in.yaml", []byte(strings.Join(docs, "---\n")), 0o600)
	}
	return result
}

func errOutput(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func selfSigned(t *testing.T) [2]string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ztedge test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, DNSNames: []string{"edge.example.com"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return [2]string{b64(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), b64(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))}
}

var _ = mockengine.Resource{}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func mustB64Decode(s string) []byte { b, _ := base64.StdEncoding.DecodeString(s); return b }

// TestEnvoyGatewayTranslates: egctl accepts every object ztedge renders, in every configuration,
// and refuses the hostile route (hostileGatewayObjects). The guarantees themselves are the
// table's (guarantees_test.go), run on the same translations.
func TestEnvoyGatewayTranslates(t *testing.T) {
	envoyGatewayViews(t)
	for _, name := range sortedKeys(egResults) {
		t.Run(name, func(t *testing.T) { checkAccepted(t, egResults[name]) })
	}
}

// checkAccepted fails on any object egctl did not accept: every condition of type Accepted,
// ResolvedRefs or Programmed must be True (a policy it cannot apply says so only there).
func checkAccepted(t *testing.T, res map[string]any) {
	t.Helper()
	seen, hostile := 0, 0
	for kind, v := range res {
		if kind == "xds" {
			continue
		}
		items, ok := v.([]any)
		if !ok {
			items = []any{v}
		}
		for _, it := range items {
			o, _ := it.(map[string]any)
			name := str(dig(o, "metadata", "name"))
			var conds []any
			st, _ := o["status"].(map[string]any)
			for _, key := range []string{"ancestors", "parents", "listeners"} {
				list, _ := st[key].([]any)
				for _, a := range list {
					c, _ := dig(a, "conditions").([]any)
					conds = append(conds, c...)
				}
			}
			c, _ := st["conditions"].([]any)
			conds = append(conds, c...)
			if name == hostileRouteName {
				hostile++
				if !refusedByTheGateway(conds) {
					t.Errorf("%s %s (a backend namespace's route on the edge Gateway) is accepted: %v", kind, name, conds)
				}
				continue
			}
			if len(conds) == 0 {
				t.Errorf("%s %s: no status conditions", kind, name)
			}
			for _, c := range conds {
				typ, status := str(dig(c, "type")), str(dig(c, "status"))
				if (typ == "Accepted" || typ == "ResolvedRefs" || typ == "Programmed") && status != "True" {
					t.Errorf("%s %s: %s=%s: %v", kind, name, typ, status, dig(c, "message"))
				}
			}
			seen++
		}
	}
	if seen == 0 {
		t.Error("egctl returned no objects")
	}
	if hostile != 1 {
		t.Errorf("egctl returned %d statuses for %s, want 1", hostile, hostileRouteName)
	}
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func asList(v any) []any         { l, _ := v.([]any); return l }
func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// TestEngineRefusesWhatItCannotMap: envoy-gateway with a mesh, Edge Stack or monitoring is a
// configuration error naming ztedge:engine, before anything is registered.
func TestEngineRefusesWhatItCannotMap(t *testing.T) {
	for name, edit := range map[string]map[string]string{
		"unknown engine": {"ztedge:engine": "nginx"},
		"mesh istio":     {"ztedge:engine": "envoy-gateway", "ztedge:upstreamMtls": "istio"},
		"edge-stack":     {"ztedge:engine": "envoy-gateway", "ztedge:edition": "edge-stack"},
		"monitoring":     {"ztedge:engine": "envoy-gateway", "ztedge:monitoring": "install"},
	} {
		t.Run(name, func(t *testing.T) {
			g, err := run(t, "dev", stackConfig(t, "dev", edit))
			if err == nil || !strings.Contains(err.Error(), "ztedge:engine") {
				t.Fatalf("want an error naming ztedge:engine, got %v", err)
			}
			if n := len(g.ofType(typeRelease)) + len(g.ofType(typeChartV4)); n != 0 {
				t.Errorf("%d Helm releases and charts registered before the refusal", n)
			}
		})
	}
}
