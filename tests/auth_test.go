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
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"sigs.k8s.io/yaml"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/jwtauth"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

const (
	typeServiceAccount = "kubernetes:core/v1:ServiceAccount"
	typeNodeGroup      = "eks:index:ManagedNodeGroup"
	authConfigDir      = "/etc/jwt-auth"
)

// authPod returns jwt-auth's Deployment, its pod spec and its one container.
func authPod(t *testing.T, g *graph) (*mockengine.Resource, map[string]any, map[string]any) {
	t.Helper()
	d := g.one(typeDeployment, components.AuthName)
	pod, _ := input(d, "spec", "template", "spec").(map[string]any)
	containers, _ := pod["containers"].([]any)
	if len(containers) != 1 {
		t.Fatalf("jwt-auth pod has %d containers, want 1", len(containers))
	}
	return d, pod, containers[0].(map[string]any)
}

// authFlags parses the container's --name=value arguments, failing on anything else or a repeat.
func authFlags(t *testing.T, c map[string]any) map[string]string {
	t.Helper()
	flags := map[string]string{}
	for _, a := range c["args"].([]any) {
		name, value, ok := strings.Cut(str(a), "=")
		if !ok || !strings.HasPrefix(name, "--") {
			t.Fatalf("jwt-auth argument %q is not --flag=value", a)
		}
		if _, dup := flags[name]; dup {
			t.Fatalf("jwt-auth flag %s given twice", name)
		}
		flags[name] = value
	}
	return flags
}

// authBehindALB: an ALB terminates the client's TLS (ALB modes on EKS).
func authBehindALB(cfg *stacks.Config) bool {
	return cfg.Platform != stacks.PlatformLocal && cfg.Edge.ClientAuth != components.ClientAuthNLBPassthrough
}

// authCertHeaders is the one client-certificate header jwt-auth may believe, or "" when nothing in
// front of it verifies a certificate and overwrites the header: Envoy's XFCC when Envoy terminates
// the client's TLS (nlb-passthrough), behind an ALB the one header its mTLS mode sets: the chain in
// passthrough, the leaf in verify (believing both let a client add the one the ALB did not set).
func authCertHeaders(cfg *stacks.Config) string {
	switch {
	case len(cfg.Edge.TrustedClients) == 0:
		return ""
	case cfg.Edge.ClientAuth == components.ClientAuthNLBPassthrough:
		return "xfcc"
	case authBehindALB(cfg) && cfg.Edge.ClientAuth == components.ClientAuthALBPassthrough:
		return "alb-passthrough"
	case authBehindALB(cfg) && cfg.Edge.ClientAuth == components.ClientAuthALBVerify:
		return "alb-verify"
	}
	return ""
}

// TestAuthDeployment: jwt-auth runs hardened, probed, spread and sized, with the command line the
// edge's mode needs, in every configuration of the edge.
func TestAuthDeployment(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		g, cfg := r.g, r.cfg
		d, pod, c := authPod(t, g)
		checkHardened(t, d)
		if ns := input(d, "metadata", "namespace"); ns != cfg.Edge.Namespace {
			t.Errorf("jwt-auth runs in %v, want Ambassador's namespace %s", ns, cfg.Edge.Namespace)
		}
		if got := input(d, "spec", "replicas"); got != float64(cfg.Auth.Replicas) {
			t.Errorf("replicas %v, want %d", got, cfg.Auth.Replicas)
		}
		// The NetworkPolicies admit Ambassador to exactly these pods on exactly this port.
		selector := input(d, "spec", "selector", "matchLabels")
		if !reflect.DeepEqual(selector, map[string]any{"app.kubernetes.io/name": "jwt-auth"}) ||
			!subset(selector.(map[string]any), input(d, "spec", "template", "metadata", "labels").(map[string]any)) {
			t.Errorf("selector %v must be app.kubernetes.io/name=jwt-auth and match the pod labels", selector)
		}
		wantPorts := []any{map[string]any{"name": "http", "containerPort": float64(3000), "protocol": "TCP"}}
		if cfg.Monitoring.Enabled() { // and /metrics alone on its own port (tests/monitoring_test.go)
			wantPorts = append(wantPorts, map[string]any{"name": "metrics", "containerPort": float64(components.AuthMetricsPort), "protocol": "TCP"})
		}
		if !reflect.DeepEqual(c["ports"], wantPorts) {
			t.Errorf("ports %v, want %v", c["ports"], wantPorts)
		}

		// Pod and container security beyond checkHardened: a fixed non-root UID, no privilege.
		psc, _ := pod["securityContext"].(map[string]any)
		if psc["runAsNonRoot"] != true || psc["runAsUser"] != float64(65532) || psc["fsGroup"] != float64(65532) ||
			!reflect.DeepEqual(psc["seccompProfile"], map[string]any{"type": "RuntimeDefault"}) {
			t.Errorf("pod securityContext %v", psc)
		}
		csc, _ := c["securityContext"].(map[string]any)
		if csc["runAsUser"] != float64(65532) || csc["privileged"] != false {
			t.Errorf("container securityContext %v", csc)
		}
		sa := g.one(typeServiceAccount, components.AuthName)
		if pod["serviceAccountName"] != components.AuthName || input(sa, "automountServiceAccountToken") != false {
			t.Errorf("jwt-auth must run as its own ServiceAccount without a token (serviceAccountName %v)", pod["serviceAccountName"])
		}
		resources, _ := c["resources"].(map[string]any)
		for _, kind := range []string{"requests", "limits"} {
			for _, res := range []string{"cpu", "memory", "ephemeral-storage"} {
				if q, _ := resources[kind].(map[string]any); q[res] == nil {
					t.Errorf("resources.%s.%s is not set", kind, res)
				}
			}
		}

		// Probes: liveness only says the process serves; readiness needs a signing key.
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
			get, _ := c[probe].(map[string]any)["httpGet"].(map[string]any)
			if get["path"] != path || get["port"] != "http" {
				t.Errorf("%s %v, want GET %s on the http port", probe, get, path)
			}
		}

		// Shutdown: the grace period covers the preStop pause and jwt-auth's own shutdown timeout.
		flags := authFlags(t, c)
		shutdown, err := time.ParseDuration(flags["--shutdown-timeout"])
		if err != nil {
			t.Fatalf("--shutdown-timeout: %v", err)
		}
		pause, _ := c["lifecycle"].(map[string]any)["preStop"].(map[string]any)["sleep"].(map[string]any)["seconds"].(float64)
		if grace := pod["terminationGracePeriodSeconds"].(float64); pause < 1 || time.Duration(grace)*time.Second <= time.Duration(pause)*time.Second+shutdown {
			t.Errorf("terminationGracePeriodSeconds %v does not cover preStop %vs + --shutdown-timeout %s", grace, pause, shutdown)
		}
		if input(d, "spec", "strategy", "rollingUpdate", "maxUnavailable") != float64(0) {
			t.Errorf("a rollout must not take a serving replica away first")
		}

		// Spread: over zones when possible, over nodes always (one node failure leaves a replica).
		spread := map[string]string{}
		for _, s := range pod["topologySpreadConstraints"].([]any) {
			s := s.(map[string]any)
			if !reflect.DeepEqual(s["labelSelector"], map[string]any{"matchLabels": selector}) || s["maxSkew"] != float64(1) {
				t.Errorf("topology spread %v does not select jwt-auth's pods with maxSkew 1", s)
			}
			spread[str(s["topologyKey"])] = str(s["whenUnsatisfiable"])
		}
		if !reflect.DeepEqual(spread, map[string]string{"topology.kubernetes.io/zone": "ScheduleAnyway", "kubernetes.io/hostname": "DoNotSchedule"}) {
			t.Errorf("topology spread %v", spread)
		}

		// The command line for this edge.
		want := map[string]string{
			"--listen":           ":3000",
			"--signing-keys":     authConfigDir + "/keys",
			"--issuer":           "https://" + cfg.Hostname,
			"--audience":         cfg.Hostname,
			"--token-ttl":        cfg.Auth.TokenTTL,
			"--shutdown-timeout": flags["--shutdown-timeout"],
			// jwt-auth's connection and request limits are sized to the pod's memory limit.
			"--memory-limit": str(resources["limits"].(map[string]any)["memory"]),
			// An ALB and Envoy each append one X-Forwarded-For entry; without an ALB only Envoy does.
			"--trusted-hops": "1",
		}
		if authBehindALB(cfg) {
			want["--trusted-hops"] = "2"
		}
		if cfg.Monitoring.Enabled() {
			want["--metrics-listen"] = ":" + strconv.Itoa(components.AuthMetricsPort)
		}
		if headers := authCertHeaders(cfg); headers != "" {
			want["--clients"] = authConfigDir + "/clients/clients.yaml"
			want["--client-ca"] = authConfigDir + "/clients/ca.pem"
			want["--client-cert-headers"] = headers
		}
		if !reflect.DeepEqual(flags, want) {
			t.Errorf("jwt-auth flags\n got %v\nwant %v", flags, want)
		}
		checkAuthFiles(t, g, pod, c, flags)

		// Ordering: the pods start once their nodes and every Secret/ConfigMap they mount exist.
		if cfg.Platform != stacks.PlatformLocal && !g.dependsOn(d, g.one(typeNodeGroup)) {
			t.Errorf("jwt-auth does not wait for the node group")
		}
		for _, v := range pod["volumes"].([]any) {
			if obj := authVolumeSource(t, g, cfg.Edge.Namespace, v.(map[string]any)); !g.dependsOn(d, obj) {
				t.Errorf("jwt-auth does not wait for %s %s it mounts", obj.Type, obj.Name)
			}
		}
	})
}

// authVolumeSource is the Secret or ConfigMap behind a pod volume.
func authVolumeSource(t *testing.T, g *graph, ns string, v map[string]any) *mockengine.Resource {
	t.Helper()
	if s, ok := v["secret"].(map[string]any); ok {
		return g.secretNamed(ns, str(s["secretName"]))
	}
	if cm, ok := v["configMap"].(map[string]any); ok {
		for _, r := range g.ofType(typeConfigMap) {
			if input(r, "metadata", "name") == cm["name"] && input(r, "metadata", "namespace") == ns {
				return r
			}
		}
	}
	t.Fatalf("volume %v is neither a Secret nor a ConfigMap of namespace %s", v, ns)
	return nil
}

// checkAuthFiles: every file a path flag names is a key of the Secret or ConfigMap mounted
// there, whole (no subPath, or the kubelet never updates it), read-only, and Secrets are
// readable by the pod's group only.
func checkAuthFiles(t *testing.T, g *graph, pod, c map[string]any, flags map[string]string) {
	t.Helper()
	ns := str(input(g.one(typeDeployment, components.AuthName), "metadata", "namespace"))
	volumes := map[string]map[string]any{}
	for _, v := range pod["volumes"].([]any) {
		volumes[str(v.(map[string]any)["name"])] = v.(map[string]any)
	}
	for _, flag := range []string{"--signing-keys", "--users", "--clients", "--client-ca"} {
		path, ok := flags[flag]
		if !ok {
			continue
		}
		var found bool
		for _, m := range c["volumeMounts"].([]any) {
			m := m.(map[string]any)
			dir := str(m["mountPath"])
			if path != dir && !strings.HasPrefix(path, dir+"/") {
				continue
			}
			found = true
			if m["subPath"] != nil || m["readOnly"] != true {
				t.Errorf("%s: mount %v must be read-only and without subPath", flag, m)
			}
			v := volumes[str(m["name"])]
			src := authVolumeSource(t, g, ns, v)
			data, _ := plain(src, "data").(map[string]any)
			if src.Type == typeSecret {
				data, _ = plain(src, "stringData").(map[string]any)
				if mode := v["secret"].(map[string]any)["defaultMode"]; mode != float64(0o440) {
					t.Errorf("%s: Secret volume mode %v, want 0440 (group-readable, fsGroup)", flag, mode)
				}
			}
			if file := strings.TrimPrefix(strings.TrimPrefix(path, dir), "/"); file != "" && data[file] == nil {
				t.Errorf("%s=%s: %s %s has no key %q", flag, path, src.Type, src.Name, file)
			} else if file == "" && len(data) == 0 {
				t.Errorf("%s=%s: %s %s is empty", flag, path, src.Type, src.Name)
			}
		}
		if !found {
			t.Errorf("%s=%s is not under any volume mount", flag, path)
		}
	}
}

// TestAuthReplicasPerStack: prod runs a replica per availability zone; a PodDisruptionBudget
// keeps all but one up during drains, and there is none with one replica (it could only block
// drains forever).
func TestAuthReplicasPerStack(t *testing.T) {
	for stack, want := range map[string]float64{"dev": 2, "prod": 3} {
		t.Run(stack, func(t *testing.T) {
			g := mustRun(t, stack)
			d := g.one(typeDeployment, components.AuthName)
			if got := input(d, "spec", "replicas"); got != want {
				t.Errorf("replicas %v, want %v", got, want)
			}
			pdb := g.one(typePDB, components.AuthName)
			wantSpec := map[string]any{
				"maxUnavailable": float64(1), "selector": input(d, "spec", "selector"), "unhealthyPodEvictionPolicy": "AlwaysAllow",
			}
			if got := input(pdb, "spec"); !reflect.DeepEqual(got, wantSpec) {
				t.Errorf("PodDisruptionBudget %v, want %v", got, wantSpec)
			}
		})
	}
	g := mustRunSource(t, stackConfig(t, "dev", map[string]string{"ztedge:authReplicas": "1"}))
	for _, pdb := range g.ofType(typePDB) {
		if pdb.Name == components.AuthName {
			t.Errorf("one replica: no PodDisruptionBudget expected, found %v", input(pdb, "spec"))
		}
	}
}

// TestAuthServiceObject: Envoy reaches jwt-auth at jwt-auth.<namespace>:3000.
func TestAuthServiceObject(t *testing.T) {
	g := mustRun(t, "dev")
	svc := g.one(typeService, components.AuthName)
	want := map[string]any{
		"type":     "ClusterIP",
		"selector": map[string]any{"app.kubernetes.io/name": "jwt-auth"},
		"ports":    []any{map[string]any{"name": "http", "port": float64(3000), "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}},
	}
	if got := input(svc, "spec"); !reflect.DeepEqual(got, want) {
		t.Errorf("Service %v, want %v", got, want)
	}
}

// TestSigningKeys: each key id is an ECDSA P-256 key from the tls provider that reaches the
// Secret only as a Pulumi secret, next to active-kid naming the one key that signs; the phases are
// the rotation.
func TestSigningKeys(t *testing.T) {
	check := func(t *testing.T, g *graph, active string, kids ...string) {
		t.Helper()
		secret := g.secretNamed("ambassador", components.AuthSigningKeysSecret)
		if input(secret, "data") != nil {
			t.Errorf("keys must go in stringData only, as secrets")
		}
		data := secret.Inputs["stringData"]
		if !data.IsSecret() && !data.IsObject() {
			t.Fatalf("stringData is %v", data)
		}
		entries, _ := plain(secret, "stringData").(map[string]any)
		want := sorted(append(fileNames(kids), jwtauth.ActiveKIDFile))
		if got := sortedKeys(entries); !reflect.DeepEqual(got, want) {
			t.Errorf("Secret keys %v, want %v", got, want)
		}
		if entries[jwtauth.ActiveKIDFile] != active {
			t.Errorf("active-kid %v, want %s", entries[jwtauth.ActiveKIDFile], active)
		}
		if !isSecret(secret, "stringData") {
			t.Errorf("the signing keys reach the Secret in plain text")
		}
		for _, kid := range kids {
			key := g.one(typePrivateKey, "jwt-auth-signing-"+kid)
			if input(key, "algorithm") != "ECDSA" || input(key, "ecdsaCurve") != "P256" {
				t.Errorf("key %s: %v %v, want ECDSA P256 (ES256)", kid, input(key, "algorithm"), input(key, "ecdsaCurve"))
			}
			if entries[kid+".pem"] != output(key, "privateKeyPem") {
				t.Errorf("%s.pem is not key %s's private key", kid, key.Name)
			}
			if !g.dependsOn(g.one(typeDeployment, components.AuthName), key) {
				t.Errorf("jwt-auth does not wait for key %s", kid)
			}
		}
	}
	g := mustRun(t, "dev")
	check(t, g, "k1", "k1")
	checksum := authChecksum(t, g)

	// Rotation: publish k2, then make it sign; jwt-auth reloads keys itself, so the pods do not
	// restart at any step.
	for _, step := range []struct{ keys, active string }{
		{`[{"id":"k1","phase":"active"},{"id":"k2","phase":"next"}]`, "k1"},
		{`[{"id":"k1","phase":"retiring"},{"id":"k2","phase":"active"}]`, "k2"},
	} {
		rotated := mustRunSource(t, stackConfig(t, "dev", map[string]string{"ztedge:authSigningKeys": step.keys}))
		check(t, rotated, step.active, "k1", "k2")
		if authChecksum(t, rotated) != checksum {
			t.Errorf("a signing-key step changed the pod template: keys hot-reload, no rollout is needed")
		}
	}
}

func fileNames(kids []string) []string {
	out := make([]string, len(kids))
	for i, k := range kids {
		out[i] = k + ".pem"
	}
	return out
}

func authChecksum(t *testing.T, g *graph) string {
	t.Helper()
	sum := str(input(g.one(typeDeployment, components.AuthName), "spec", "template", "metadata", "annotations", components.AuthChecksumAnnotation))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sum) {
		t.Fatalf("pod template checksum %q is not a SHA-256", sum)
	}
	return sum
}

// TestAuthConfigErrors: settings jwt-auth would refuse stop the program before anything exists.
func TestAuthConfigErrors(t *testing.T) {
	oidc := map[string]string{
		"ztedge:oidcIssuer": "https://idp.example.com", "ztedge:oidcAudience": "ztedge", "ztedge:oidcJwksUrl": "https://idp.example.com/keys",
	}
	for name, c := range map[string]struct {
		edit map[string]string
		key  string
		want string
	}{
		"two active keys":     {map[string]string{"ztedge:authSigningKeys": `[{"id":"k1","phase":"active"},{"id":"k2","phase":"active"}]`}, "authSigningKeys", "exactly one key with phase active"},
		"no active key":       {map[string]string{"ztedge:authSigningKeys": `[{"id":"k1","phase":"next"}]`}, "authSigningKeys", "exactly one key with phase active"},
		"no key":              {map[string]string{"ztedge:authSigningKeys": `[]`}, "authSigningKeys", "exactly one"},
		"unknown phase":       {map[string]string{"ztedge:authSigningKeys": `[{"id":"k1","phase":"on"}]`}, "authSigningKeys", "next, active or retiring"},
		"key id not a name":   {map[string]string{"ztedge:authSigningKeys": `[{"id":"a/b","phase":"active"}]`}, "authSigningKeys", "not a key id"},
		"oidc without users":  {oidc, "authUsers", "required with oidcIssuer"},
		"token ttl too long":  {map[string]string{"ztedge:tokenTtl": "1h"}, "tokenTtl", "5m to 15m"},
		"repeated key id":     {map[string]string{"ztedge:authSigningKeys": `[{"id":"k1","phase":"active"},{"id":"k1","phase":"retiring"}]`}, "authSigningKeys", "listed twice"},
		"zero replicas":       {map[string]string{"ztedge:authReplicas": "0"}, "authReplicas", "out of range"},
		"unpinned auth image": {map[string]string{"ztedge:authImage": "ghcr.io/ztedge/jwt-auth:latest"}, "authImage", "pinned"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := stacks.Load(stackConfig(t, "dev", c.edit), "dev")
			if err == nil || !strings.Contains(err.Error(), "ztedge:"+c.key+": ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error on ztedge:%s containing %q", err, c.key, c.want)
			}
		})
	}
}

// authUsersDoc is a users document as an operator sets ztedge:authUsers (bcrypt of "s3cret-pw").
const authUsersDoc = `- username: alice
  passwordHash: "$2a$10$MoMsQBROntTWb8KBPifWgu2i6laKT9JfI7Or9kJesaSO8Tv89TAA2"
  oidcSubject: "00u-alice"
  permissions: [orders:read]
  services: [/api/orders/]
  origins: [https://app.example.com]
`

// TestAuthUsersCheckedAtPreview: a users document jwt-auth would refuse at start-up (a crash loop
// after `pulumi up`) is refused while loading the configuration, by jwt-auth's own parser, with the
// key, the entry and what to fix.
func TestAuthUsersCheckedAtPreview(t *testing.T) {
	for name, c := range map[string]struct{ doc, want string }{
		"relative service":   {"- username: bob\n  services: [api/orders]\n", `user #1 ("bob"): service "api/orders" must be an absolute path prefix`},
		"plaintext password": {"- username: bob\n  passwordHash: hunter2\n  services: [/]\n", `user #1 ("bob"): password_hash is not a bcrypt hash`},
		"typo in a key":      {"- username: bob\n  service: [/]\n", `unknown field "service"`},
		"duplicate user":     {"- username: bob\n- username: bob\n", `user #2 ("bob"): duplicate username`},
		"not YAML":           {"- username: [\n", "entry"},
		"mixed bcrypt costs": {authUsersDoc + "- username: bob\n  passwordHash: \"$2a$04$Fes2ptzxjWnHWcEckP27aefjb9yqijO.O4OgiOySPA5G/dsrA.buG\"\n  services: [/]\n", `different bcrypt costs (cost 4: bob; cost 10: alice)`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := stacks.Load(withUsers(t, "dev", c.doc, nil), "dev")
			if err == nil || !strings.Contains(err.Error(), "ztedge:authUsers: ") || !strings.Contains(err.Error(), c.want) ||
				!strings.Contains(err.Error(), "pulumi config set --secret authUsers") {
				t.Errorf("got %v, want an error on ztedge:authUsers containing %q and the fix", err, c.want)
			}
		})
	}
	if _, err := stacks.Load(withUsers(t, "dev", authUsersDoc, nil), "dev"); err != nil {
		t.Fatalf("a good document: %v", err)
	}
}

func withUsers(t *testing.T, stack, doc string, edit map[string]string) stacks.MapSource {
	src := stackConfig(t, stack, edit)
	src.Values["ztedge:authUsers"] = doc
	src.Secrets["ztedge:authUsers"] = true
	return src
}

// TestAuthUsers: users reach jwt-auth only through a Secret, as a Pulumi secret; a change rolls
// the pods (jwt-auth reads users at start only); no users means no password grant at all.
func TestAuthUsers(t *testing.T) {
	g := mustRun(t, "dev")
	_, _, c := authPod(t, g)
	if _, ok := authFlags(t, c)["--users"]; ok {
		t.Errorf("--users without ztedge:authUsers")
	}
	for _, s := range g.ofType(typeSecret) {
		if input(s, "metadata", "name") == components.AuthUsersSecret {
			t.Errorf("users Secret without ztedge:authUsers")
		}
	}
	before := authChecksum(t, g)

	g = mustRunSource(t, withUsers(t, "dev", authUsersDoc, nil))
	d, _, c := authPod(t, g)
	users := g.secretNamed("ambassador", components.AuthUsersSecret)
	if !isSecret(users, "stringData") || plain(users, "stringData", "users.yaml") != strings.TrimSpace(authUsersDoc) {
		t.Errorf("users.yaml must be the ztedge:authUsers document, as a secret")
	}
	if authFlags(t, c)["--users"] != authConfigDir+"/users/users.yaml" {
		t.Errorf("--users %q", authFlags(t, c)["--users"])
	}
	if !g.dependsOn(d, users) {
		t.Errorf("jwt-auth does not wait for the users Secret")
	}
	withAlice := authChecksum(t, g)
	if withAlice == before {
		t.Errorf("adding users did not change the pod template: jwt-auth would keep the old users")
	}
	other := mustRunSource(t, withUsers(t, "dev", strings.Replace(authUsersDoc, "orders:read", "orders:write", 1), nil))
	if authChecksum(t, other) == withAlice {
		t.Errorf("changing a user did not change the pod template")
	}

	// OIDC token exchange: flags as configured.
	g = mustRunSource(t, withUsers(t, "dev", authUsersDoc, map[string]string{
		"ztedge:oidcIssuer": "https://idp.example.com", "ztedge:oidcAudience": "ztedge-edge", "ztedge:oidcJwksUrl": "https://idp.example.com/keys",
	}))
	_, _, c = authPod(t, g)
	flags := authFlags(t, c)
	if flags["--oidc-issuer"] != "https://idp.example.com" || flags["--oidc-audience"] != "ztedge-edge" || flags["--oidc-jwks-url"] != "https://idp.example.com/keys" {
		t.Errorf("OIDC flags %v", flags)
	}
}

// TestAuthClientCertificates: jwt-auth knows each trusted client by the CN its certificate from
// the stack CA carries, and trusts only that CA.
func TestAuthClientCertificates(t *testing.T) {
	forEachEdgeRunAndLocal(t, func(t *testing.T, r edgeRun) {
		g, cfg := r.g, r.cfg
		var cm *mockengine.Resource
		for _, m := range g.ofType(typeConfigMap) {
			if input(m, "metadata", "name") == components.AuthClientsConfigMap {
				cm = m
			}
		}
		if authCertHeaders(cfg) == "" {
			if cm != nil {
				t.Errorf("client certificates are off, yet jwt-auth gets a clients file")
			}
			return
		}
		if cm == nil {
			t.Fatalf("no ConfigMap %s", components.AuthClientsConfigMap)
		}
		var file struct {
			Clients []jwtauth.ClientEntry `json:"clients"`
		}
		if err := yaml.UnmarshalStrict([]byte(str(input(cm, "data", "clients.yaml"))), &file); err != nil {
			t.Fatalf("clients.yaml: %v", err)
		}
		var got []components.TrustedClient
		for _, c := range file.Clients {
			got = append(got, components.TrustedClient{Name: c.Name, Permissions: c.Permissions, Services: c.Services, Origins: c.Origins})
			// Pinned to the certificate the PKI holds now: re-issuing it revokes the old one.
			block, _ := pem.Decode([]byte(str(output(g.one(typeSigned, "pki-client-"+c.Name), "certPem"))))
			if block == nil || !reflect.DeepEqual(c.Fingerprints, []string{jwtauth.CertFingerprint(block.Bytes)}) {
				t.Errorf("client %s: fingerprints %v, want the SHA-256 of its current certificate", c.Name, c.Fingerprints)
			}
		}
		if !reflect.DeepEqual(got, cfg.Edge.TrustedClients) {
			t.Errorf("clients.yaml %+v, want ztedge:trustedClients %+v", got, cfg.Edge.TrustedClients)
		}
		// The CN jwt-auth matches is the one the PKI puts in each client's certificate.
		for _, tc := range cfg.Edge.TrustedClients {
			if cn := input(g.one(typeCertReq, "pki-client-"+tc.Name), "subject", "commonName"); cn != tc.Name {
				t.Errorf("client %s: certificate CN %v, but jwt-auth matches the name", tc.Name, cn)
			}
		}
		if ca := input(cm, "data", "ca.pem"); ca != output(g.one(typeSelfSigned, "pki-client-ca"), "certPem") {
			t.Errorf("ca.pem is not the trusted-client CA (and only it)")
		}
	})
}

// TestAuthServiceSpec: every route is checked by jwt-auth, failing closed, with exactly the
// headers jwt-auth reads and returns. (TestEveryAmbassadorObjectMatchesItsCRD checks the schema.)
func TestAuthServiceSpec(t *testing.T) {
	forEachEdgeRun(t, func(t *testing.T, r edgeRun) {
		g, cfg := r.g, r.cfg
		services := g.kind("AuthService")
		if len(services) != 1 {
			t.Fatalf("%d AuthServices; Emissary honours one", len(services))
		}
		as := services[0]
		want := map[string]any{
			"auth_service":     "jwt-auth." + cfg.Edge.Namespace + ":3000",
			"proto":            "http",
			"protocol_version": "v3",
			"path_prefix":      "/auth",
			"timeout_ms":       float64(2000),
			"allowed_request_headers": []any{
				"authorization", "origin", "x-request-id", "x-forwarded-for",
				"x-forwarded-client-cert", "x-amzn-mtls-clientcert", "x-amzn-mtls-clientcert-leaf",
			},
			"allowed_authorization_headers": []any{"x-user-id", "x-user-permissions"},
			"failure_mode_allow":            false,
			"status_on_error":               map[string]any{"code": float64(503)},
		}
		if name := stackCertHeader(g); name != "" { // TestCertHeaderNameIsSecretAndShared
			want["allowed_request_headers"] = append(want["allowed_request_headers"].([]any), strings.ToLower(name))
		}
		if got := spec(as); !reflect.DeepEqual(got, want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Errorf("AuthService\n got %s\nwant %s", gj, wj)
		}
		if !g.dependsOn(as, crdInstall(g, cfg)) {
			t.Errorf("AuthService does not wait for the CRD install")
		}
	})
}

// TestAuthMappings: /token and the JWKS, and nothing else, bypass the AuthService; each is one
// exact path and method on the edge hostname, served by the edge Host.
func TestAuthMappings(t *testing.T) {
	forEachEdgeRun(t, func(t *testing.T, r edgeRun) {
		g, cfg := r.g, r.cfg
		svc := "jwt-auth." + cfg.Edge.Namespace + ":3000"
		want := map[string]map[string]any{
			"jwt-auth-token": {"prefix": "/token", "rewrite": "/token", "method": "POST", "timeout_ms": float64(10000)},
			"jwt-auth-jwks":  {"prefix": "/.well-known/jwks.json", "rewrite": "/.well-known/jwks.json", "method": "GET", "timeout_ms": float64(3000)},
		}
		hostSelector, _ := spec(g.object("Host", components.EdgeHostName), "mappingSelector", "matchLabels").(map[string]any)
		if len(hostSelector) == 0 {
			t.Fatalf("the edge Host has no mappingSelector")
		}
		for name, w := range want {
			m := g.object("Mapping", name)
			w["hostname"], w["service"], w["bypass_auth"], w["prefix_exact"] = cfg.Hostname, svc, true, true
			if got := spec(m); !reflect.DeepEqual(got, w) {
				t.Errorf("Mapping %s\n got %v\nwant %v", name, got, w)
			}
			if labels, _ := input(m, "metadata", "labels").(map[string]any); !subset(hostSelector, labels) {
				t.Errorf("Mapping %s labels %v do not match the Host's mappingSelector %v: it would not be served", name, labels, hostSelector)
			}
			if !g.dependsOn(m, crdInstall(g, cfg)) {
				t.Errorf("Mapping %s does not wait for the CRD install", name)
			}
		}
		var bypass []string
		for _, m := range g.kind("Mapping") {
			if spec(m, "bypass_auth") == true {
				bypass = append(bypass, str(input(m, "metadata", "name")))
			}
		}
		if slices.Sort(bypass); !reflect.DeepEqual(bypass, []string{"jwt-auth-jwks", "jwt-auth-token"}) {
			t.Errorf("Mappings bypassing the AuthService: %v; only /token and the JWKS may", bypass)
		}
	})
}

// TestJwtAuthRunsWithTheRenderedConfig runs the real jwt-auth binary with the Deployment's
// command line, environment and mounted files (the mock engine's placeholder PEMs swapped for a
// real signing key and CA), then calls it the way the edge does: the contract between the
// component and the service, end to end.
func TestJwtAuthRunsWithTheRenderedConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/jwt-auth")
	}
	cfg, err := stacks.Load(withUsers(t, "dev", authUsersDoc, nil), "dev")
	if err != nil {
		t.Fatal(err)
	}
	g := mustRunSource(t, withUsers(t, "dev", authUsersDoc, nil))
	_, pod, c := authPod(t, g)
	root := t.TempDir()

	// Real key material in place of the mock's placeholders.
	signing, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(signing)
	ca, caKey, caPEM := newTestCert(t, "ztedge dev client CA", nil, nil)
	_, _, clientPEM := newTestCert(t, cfg.Edge.TrustedClients[0].Name, ca, caKey)
	real := map[string]string{
		output(g.one(typePrivateKey, "jwt-auth-signing-k1"), "privateKeyPem"): string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})),
		output(g.one(typeSelfSigned, "pki-client-ca"), "certPem"):             caPEM,
	}
	// The clients file pins the PKI's certificate: pin the real one in its place.
	fingerprint := func(p string) string {
		block, _ := pem.Decode([]byte(p))
		if block == nil {
			t.Fatalf("not PEM: %q", p)
		}
		return jwtauth.CertFingerprint(block.Bytes)
	}
	mockPin := fingerprint(str(output(g.one(typeSigned, "pki-client-"+cfg.Edge.TrustedClients[0].Name), "certPem")))
	realPin := fingerprint(clientPEM)
	volumes := map[string]map[string]any{}
	for _, v := range pod["volumes"].([]any) {
		volumes[str(v.(map[string]any)["name"])] = v.(map[string]any)
	}
	for _, m := range c["volumeMounts"].([]any) {
		m := m.(map[string]any)
		src := authVolumeSource(t, g, cfg.Edge.Namespace, volumes[str(m["name"])])
		data, _ := plain(src, "data").(map[string]any)
		if src.Type == typeSecret {
			data, _ = plain(src, "stringData").(map[string]any)
		}
		dir := filepath.Join(root, str(m["mountPath"]))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for file, content := range data {
			if r, ok := real[str(content)]; ok {
				content = r
			}
			content = strings.ReplaceAll(str(content), mockPin, realPin)
			if err := os.WriteFile(filepath.Join(dir, file), []byte(str(content)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	var args []string
	for _, a := range c["args"].([]any) {
		switch a := str(a); {
		case strings.HasPrefix(a, "--listen="):
			args = append(args, "--listen=127.0.0.1:0") // the address is read back from the log
		default:
			args = append(args, strings.ReplaceAll(a, "="+authConfigDir, "="+filepath.Join(root, authConfigDir)))
		}
	}
	env := []string{}
	certHeaderName := ""
	for _, e := range c["env"].([]any) {
		e := e.(map[string]any)
		value := str(e["value"])
		from, _ := e["valueFrom"].(map[string]any)
		if ref, ok := from["secretKeyRef"].(map[string]any); ok {
			data, _ := plain(g.secretNamed(cfg.Edge.Namespace, str(ref["name"])), "stringData").(map[string]any)
			value = str(data[str(ref["key"])])
		}
		if str(e["name"]) == "JWT_AUTH_CLIENT_CERT_HEADER_NAME" {
			certHeaderName = value
		}
		env = append(env, str(e["name"])+"="+value)
	}
	if certHeaderName == "" {
		t.Fatalf("dev (alb-passthrough, trusted clients) gives jwt-auth no secret certificate header name: env %v", c["env"])
	}

	bin := filepath.Join(root, "jwt-auth")
	build := exec.Command("go", "build", "-o", bin, "./cmd/jwt-auth")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/jwt-auth: %v\n%s", err, out)
	}
	logs := &lockedBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	listening := regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
	if !logs.waitFor(`"msg":"listening"`, 20*time.Second) {
		t.Fatalf("jwt-auth %v did not start:\n%s", args, logs.String())
	}
	base := "http://" + listening.FindStringSubmatch(logs.String())[1]
	ready := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !ready; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		}
	}
	if !ready {
		t.Fatalf("jwt-auth %v never became ready:\n%s", args, logs.String())
	}

	call := func(method, path string, body url.Values, headers map[string]string) *http.Response {
		t.Helper()
		var rd io.Reader
		if body != nil {
			rd = strings.NewReader(body.Encode())
		}
		req, _ := http.NewRequest(method, base+path, rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	// The JWKS publishes the key under its id.
	var jwks struct {
		Keys []struct{ Kid, Alg string } `json:"keys"`
	}
	if err := json.NewDecoder(call("GET", components.JWKSPath, nil, nil).Body).Decode(&jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0].Kid != "k1" || jwks.Keys[0].Alg != "ES256" {
		t.Errorf("JWKS %+v (%v), want one ES256 key k1", jwks, err)
	}

	// A password grant through the edge: client, ALB and Envoy addresses in X-Forwarded-For.
	resp := call("POST", components.TokenPath, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"s3cret-pw"}},
		map[string]string{"X-Forwarded-For": "198.51.100.7, 10.0.1.5"})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("POST /token: %d %v\n%s", resp.StatusCode, err, logs.String())
	}
	parts := strings.Split(tok.AccessToken, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Iss string   `json:"iss"`
		Aud []string `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Iss != "https://"+cfg.Hostname || !reflect.DeepEqual(claims.Aud, []string{cfg.Hostname}) {
		t.Errorf("token claims %s: want iss https://%s, aud [%s]", payload, cfg.Hostname, cfg.Hostname)
	}
	if !logs.waitFor(`"source":"198.51.100.7"`, 5*time.Second) {
		t.Errorf("--trusted-hops does not pick the client address the ALB saw:\n%s", logs.String())
	}

	// The check, as Envoy calls it: with the token, then with the client's certificate in the
	// header the stack's ALB sends it in; the same certificate under the ALB's default name (which
	// only a client can have sent) or in XFCC is refused behind an ALB.
	check := "/auth" + cfg.Edge.TrustedClients[0].Services[0] + "1"
	if resp := call("GET", check, nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken}); resp.StatusCode != http.StatusOK || resp.Header.Get("X-User-Id") != "alice" {
		t.Errorf("check with the token: %d, X-User-Id %q", resp.StatusCode, resp.Header.Get("X-User-Id"))
	}
	escaped := url.PathEscape(clientPEM)
	if resp := call("GET", check, nil, map[string]string{certHeaderName: escaped}); resp.StatusCode != http.StatusOK || resp.Header.Get("X-User-Id") != cfg.Edge.TrustedClients[0].Name {
		t.Errorf("check with the stack's ALB client-certificate header: %d, X-User-Id %q\n%s", resp.StatusCode, resp.Header.Get("X-User-Id"), logs.String())
	}
	if resp := call("GET", check, nil, map[string]string{"X-Amzn-Mtls-Clientcert": escaped}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("check with the ALB's default client-certificate header: %d, want 401", resp.StatusCode)
	}
	if resp := call("GET", check, nil, map[string]string{"X-Forwarded-Client-Cert": `Cert="` + escaped + `"`}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("check with XFCC behind an ALB: %d, want 401", resp.StatusCode)
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor reports whether s shows up in the output within d (the process writes asynchronously).
func (b *lockedBuffer) waitFor(s string, d time.Duration) bool {
	for deadline := time.Now().Add(d); !strings.Contains(b.String(), s); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// newTestCert issues a CA (parent nil) or a client certificate CN=<cn>,O=ztedge the way the PKI does.
func newTestCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"ztedge"}},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// newAuthAlone runs NewAuthService by itself under the mock engine, with stand-ins for the
// namespace, the CRD install and the CA, and returns its outputs (or its error).
func newAuthAlone(t *testing.T, edit func(*components.AuthServiceArgs)) (map[string]string, error) {
	t.Helper()
	eng := mockengine.New("ztedge", "dev", "us-east-1")
	got := make(chan map[string]string, 1)
	err := eng.Run(func(ctx *pulumi.Context) error {
		crds, err := corev1.NewConfigMap(ctx, "crds", &corev1.ConfigMapArgs{})
		if err != nil {
			return err
		}
		args := &components.AuthServiceArgs{
			Namespace: pulumi.String("ambassador"), NamespaceName: "ambassador", Hostname: "edge.example.com",
			Image: "ghcr.io/ztedge/jwt-auth:0.1.0", Replicas: 2, TokenTTL: "10m",
			SigningKeys: []components.SigningKey{{ID: "k1", Phase: components.KeyPhaseActive}},
			ClientAuth:  components.ClientAuthALBPassthrough, BehindALB: true,
			TrustedClients: []components.TrustedClient{{Name: "web-app", Services: []string{"/api/"}}},
			CACertPem:      pulumi.String("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
			ClientCerts:    pulumi.StringMap{"web-app": pulumi.String("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
			CRDs:           crds,
		}
		edit(args)
		auth, err := components.NewAuthService(ctx, "jwt-auth", args)
		if err != nil {
			return err
		}
		pulumi.All(auth.TokenEndpoint, auth.JwksURL, auth.Issuer, auth.Audience).ApplyT(func(v []any) int {
			got <- map[string]string{"tokenEndpoint": v[0].(string), "jwksUrl": v[1].(string), "issuer": v[2].(string), "audience": v[3].(string)}
			return 0
		})
		return nil
	}, map[string]string{}, nil)
	if err != nil {
		return nil, err
	}
	return <-got, nil
}

// TestAuthOutputs: what clients and backends are told (the stack exports these) is where the
// Mappings route and what jwt-auth puts in its tokens.
func TestAuthOutputs(t *testing.T) {
	got, err := newAuthAlone(t, func(*components.AuthServiceArgs) {})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"tokenEndpoint": "https://edge.example.com/token", "jwksUrl": "https://edge.example.com/.well-known/jwks.json",
		"issuer": "https://edge.example.com", "audience": "edge.example.com",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("outputs %v, want %v", got, want)
	}
}

// TestAuthArgsValidation: the component refuses arguments jwt-auth could not run with, before
// registering anything.
func TestAuthArgsValidation(t *testing.T) {
	for name, c := range map[string]struct {
		edit func(*components.AuthServiceArgs)
		want string
	}{
		"no namespace":   {func(a *components.AuthServiceArgs) { a.NamespaceName = "" }, "NamespaceName"},
		"no CRD install": {func(a *components.AuthServiceArgs) { a.CRDs = nil }, "CRDs"},
		"no replica":     {func(a *components.AuthServiceArgs) { a.Replicas = 0 }, "Replicas"},
		"ttl too long":   {func(a *components.AuthServiceArgs) { a.TokenTTL = "1h" }, "TokenTTL"},
		"no active key": {func(a *components.AuthServiceArgs) {
			a.SigningKeys = []components.SigningKey{{ID: "k1", Phase: components.KeyPhaseNext}}
		}, "exactly one key with phase active"},
		"half the OIDC trio":   {func(a *components.AuthServiceArgs) { a.OidcIssuer = "https://idp.example.com" }, "go together"},
		"clients without a CA": {func(a *components.AuthServiceArgs) { a.CACertPem = nil }, "CACertPem"},
		"OIDC without any user": {func(a *components.AuthServiceArgs) {
			a.OidcIssuer, a.OidcAudience, a.OidcJwksURL = "https://i", "a", "https://i/k"
		}, "needs Users"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := newAuthAlone(t, c.edit); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}
