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
	out["local"] = map[string]string{"ztedge:engine": "envoy-gateway"}
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
	g, err := run(t, stack, stackConfig(t, stack, edit))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	objs := append(gatewayObjects(t, g, edit), backendServices(t, stackConfig(t, stack, edit))...)
	return g, objs
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

// TestEnvoyGatewayTranslates renders each configuration, translates it with egctl and checks
// that every object is Accepted and the guarantees hold on the xDS.
func TestEnvoyGatewayTranslates(t *testing.T) {
	egctl := egctlPath(t)
	for name, edit := range egSources(t) {
		t.Run(name, func(t *testing.T) {
			_, objs := egRender(t, name, edit)
			res := translate(t, egctl, objs)
			checkAccepted(t, res)
			checkGuarantees(t, res)
		})
	}
}

// checkAccepted fails on any object egctl did not accept: every condition of type Accepted,
// ResolvedRefs or Programmed must be True (a policy it cannot apply says so only there).
func checkAccepted(t *testing.T, res map[string]any) {
	t.Helper()
	seen := 0
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

// readinessListener is Envoy Gateway's own /ready endpoint (plain HTTP on 19003, load balancer
// health checks only; the NetworkPolicy admits only the load balancer to it).
const readinessListener = "envoy-gateway-proxy-ready-0.0.0.0-19003"

// checkGuarantees asserts the edge's guarantees on the xDS Envoy Gateway would send.
func checkGuarantees(t *testing.T, res map[string]any) {
	t.Helper()
	xds, _ := res["xds"].(map[string]any)
	var configs []any
	for _, v := range xds {
		c, _ := dig(v, "configs").([]any)
		configs = append(configs, c...)
	}
	listeners, routes, clusters := 0, 0, 0
	for _, c := range configs {
		switch typ := str(dig(c, "@type")); {
		case strings.HasSuffix(typ, "ListenersConfigDump"):
			for _, l := range asList(dig(c, "dynamicListeners")) {
				L := dig(l, "activeState", "listener")
				name := str(dig(L, "name"))
				if name == readinessListener {
					continue
				}
				listeners++
				if dig(L, "defaultFilterChain") != nil {
					t.Errorf("listener %s has a default filter chain", name)
				}
				for _, fc := range asList(dig(L, "filterChains")) {
					ts := dig(fc, "transportSocket", "typedConfig")
					if ts == nil {
						t.Errorf("listener %s: a plaintext filter chain", name)
						continue
					}
					if v := str(dig(ts, "commonTlsContext", "tlsParams", "tlsMinimumProtocolVersion")); v != "TLSv1_3" {
						t.Errorf("listener %s: TLS minimum %q, want TLSv1_3", name, v)
					}
					if b, _ := json.Marshal(fc); !strings.Contains(string(b), `{"remove":"x-user-id"}`) {
						t.Errorf("listener %s: x-user-id from the client is not removed before the filters", name)
					}
				}
			}
		case strings.HasSuffix(typ, "RoutesConfigDump"):
			for _, rc := range asList(dig(c, "dynamicRouteConfigs")) {
				for _, vh := range asList(dig(rc, "routeConfig", "virtualHosts")) {
					for _, rt := range asList(dig(vh, "routes")) {
						routes++
						checked := false
						for k := range asMap(dig(rt, "typedPerFilterConfig")) {
							checked = checked || strings.HasPrefix(k, "envoy.filters.http.ext_authz")
						}
						path := str(dig(rt, "match", "path"))
						public := path == components.TokenPath || path == components.JWKSPath
						switch {
						case public && checked:
							t.Errorf("route %s is checked by ext_authz: /token callers have no token yet", path)
						case !public && !checked:
							t.Errorf("route %v has no ext_authz", dig(rt, "match"))
						}
					}
				}
			}
		case strings.HasSuffix(typ, "ClustersConfigDump"):
			for _, cl := range asList(dig(c, "dynamicActiveClusters")) {
				name := str(dig(cl, "cluster", "name"))
				if strings.Contains(name, "/"+components.AuthName+"-") || strings.Contains(name, "/extauth/") || !strings.HasPrefix(name, "httproute/") {
					continue // jwt-auth: plain HTTP inside the edge namespace, as with Emissary
				}
				clusters++
				b, _ := json.Marshal(dig(cl, "cluster"))
				for _, want := range []string{"UpstreamTlsContext", "validationContextSdsSecretConfig", "tlsCertificateSdsSecretConfigs", "matchTypedSubjectAltNames", `"tlsMinimumProtocolVersion":"TLSv1_3"`} {
					if !strings.Contains(string(b), want) {
						t.Errorf("backend cluster %s: no %s (upstream mTLS with validation)", name, want)
					}
				}
			}
		}
	}
	if listeners == 0 || routes == 0 || clusters == 0 {
		t.Errorf("xDS has %d listeners, %d routes, %d backend clusters", listeners, routes, clusters)
	}
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
