package tests

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/jwtauth"
	"github.com/ztedge/ztedge/stacks"
)

// certHeaderAttribute is the ELB listener attribute that renames the ALB's certificate header,
// by mode (the ELB API's ListenerAttribute reference).
var certHeaderAttribute = map[string]string{
	components.ClientAuthALBPassthrough: "routing.http.request.x_amzn_mtls_clientcert.header_name",
	components.ClientAuthALBVerify:      "routing.http.request.x_amzn_mtls_clientcert_leaf.header_name",
}

// certHeaderNameForm is the form of a stack's secret certificate header name (96 bits in hex).
var certHeaderNameForm = regexp.MustCompile(`^X-Ztedge-[0-9a-f]{24}$`)

// TestCertHeaderNameIsSecretAndShared: where an ALB forwards client certificates, the stack has a
// certificate header name of its own, kept as a secret everywhere it is written (the jwt-auth
// Secret, the Ingress's annotation, and only that one), which jwt-auth takes from that Secret (never from its
// command line, which any pod reader sees) and the ALB is told to use; on every stack, mode and
// engine. Without such an ALB there is none. (TestEnvoyPassesOnlyTheStackCertHeader checks
// that Envoy passes it on; TestJwtAuthRunsWithTheRenderedConfig that jwt-auth then believes it
// and refuses the default name.)
func TestCertHeaderNameIsSecretAndShared(t *testing.T) {
	check := func(t *testing.T, g *graph, cfg *stacks.Config) {
		ns, mode := cfg.Edge.Namespace, cfg.Edge.ClientAuth
		name := stackCertHeader(g)
		attribute, albForwardsCerts := certHeaderAttribute[mode]
		albForwardsCerts = albForwardsCerts && len(cfg.Edge.TrustedClients) > 0 // else no certificate is believed at all
		ingresses := g.ofType(typeIngress)
		if !albForwardsCerts {
			if name != "" {
				t.Errorf("%s: a certificate header name %q, but no ALB forwards certificates", mode, name)
			}
			for _, ing := range ingresses {
				if a, ok := annotations(ing)[alb+"listener-attributes.HTTPS-443"]; ok {
					t.Errorf("%s: the ALB renames a header: %v", mode, a)
				}
			}
			return
		}
		if !certHeaderNameForm.MatchString(name) {
			t.Fatalf("%s: certificate header name %q", mode, name)
		}
		if err := jwtauth.ValidCertHeaderName(name, components.AuthClientCertHeaders(mode, true)); err != nil {
			t.Errorf("jwt-auth would refuse the name: %v", err)
		}
		secret := g.secretNamed(ns, components.AuthCertHeaderSecret)
		if !isSecret(secret, "stringData") {
			t.Errorf("the Secret %s holds the name in plain text in the state", components.AuthCertHeaderSecret)
		}
		_, _, c := authPod(t, g)
		fromSecret := false
		for _, e := range c["env"].([]any) {
			e := e.(map[string]any)
			ref, _ := dig(e, "valueFrom", "secretKeyRef").(map[string]any)
			if e["name"] == "JWT_AUTH_CLIENT_CERT_HEADER_NAME" {
				fromSecret = e["value"] == nil && ref["name"] == components.AuthCertHeaderSecret && ref["key"] == "name"
			}
		}
		if !fromSecret {
			t.Errorf("jwt-auth does not read JWT_AUTH_CLIENT_CERT_HEADER_NAME from the Secret: env %v", c["env"])
		}
		for _, a := range c["args"].([]any) {
			if strings.Contains(str(a), name) || strings.HasPrefix(str(a), "--client-cert-header-name") {
				t.Errorf("the name is on jwt-auth's command line: %v", a)
			}
		}
		if len(ingresses) != 1 {
			t.Fatalf("%d Ingresses, want the ALB's", len(ingresses))
		}
		if got, want := annotations(ingresses[0])[alb+"listener-attributes.HTTPS-443"], attribute+"="+name; got != want {
			t.Errorf("the ALB's listener attributes %v, want %s", got, want)
		}
		metadata := ingresses[0].Inputs["metadata"]
		if !metadata.IsObject() || !metadata.ObjectValue()["annotations"].IsObject() {
			t.Fatalf("the Ingress's metadata or annotations are secret as a whole: previews would hide them all")
		}
		annotationSecrecy := metadata.ObjectValue()["annotations"].ObjectValue()
		if !annotationSecrecy[resource.PropertyKey(alb+"listener-attributes.HTTPS-443")].ContainsSecrets() {
			t.Errorf("the Ingress's listener-attributes annotation (with the name) is not a secret in the state")
		}
		for key, v := range annotationSecrecy {
			if key != resource.PropertyKey(alb+"listener-attributes.HTTPS-443") && v.ContainsSecrets() {
				t.Errorf("the Ingress annotation %s is secret too: previews would hide it", key)
			}
		}
		// The engine's copy (lower-cased, for ext_authz and the routes' header removal) is secret too.
		copies := 0
		for _, r := range g.all {
			if !strings.Contains(strings.ToLower(fmt.Sprint(input(r, "spec"))), strings.ToLower(name)) {
				continue
			}
			copies++
			if !isSecret(r, "spec") {
				t.Errorf("%s %s holds the name in plain text in the state", r.Type, r.Name)
			}
		}
		if copies == 0 {
			t.Errorf("no engine object passes the name on")
		}
	}
	t.Run("emissary", func(t *testing.T) {
		forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
			check(t, r.g, r.cfg)
		})
	})
	t.Run("no trusted clients", func(t *testing.T) {
		for mode := range certHeaderAttribute {
			src := stackConfig(t, "dev", withClientAuth(mode, map[string]string{"ztedge:trustedClients": "[]"}))
			cfg, g := loadAndRun(t, "dev", src)
			check(t, g, cfg)
		}
	})
	t.Run("envoy-gateway", func(t *testing.T) {
		sources := egSources(t)
		for _, name := range sortedKeys(sources) {
			t.Run(name, func(t *testing.T) {
				stack := strings.Split(name, "/")[0]
				src := stackConfig(t, stack, sources[name])
				cfg, g := loadAndRun(t, stack, src)
				check(t, g, cfg)
			})
		}
	})
}

// TestCertHeaderNameChangesWithTheMode: switching between the ALB modes renames the header (same
// key, the mode in the derivation), so that during the change no certificate is believed from a
// listener that does not yet do what the new mode expects: it fails closed instead.
func TestCertHeaderNameChangesWithTheMode(t *testing.T) {
	for _, engine := range []string{"emissary", "envoy-gateway"} {
		names := map[string]string{}
		for mode := range certHeaderAttribute {
			edit := withClientAuth(mode, map[string]string{"ztedge:engine": engine, "ztedge:monitoring": "off"})
			_, g := loadAndRun(t, "dev", stackConfig(t, "dev", edit))
			names[mode] = stackCertHeader(g)
		}
		if a, b := names[components.ClientAuthALBPassthrough], names[components.ClientAuthALBVerify]; a == "" || a == b {
			t.Errorf("%s: alb-passthrough and alb-verify share the header name %q (%q)", engine, a, b)
		}
	}
}
