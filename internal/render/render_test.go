package render

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"sigs.k8s.io/yaml"

	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

func repoRoot(t testing.TB) string {
	// go test runs in the package's directory; runtime.Caller would not do under -trimpath (CI).
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return dir
}

func secret(v any) resource.PropertyValue { return resource.MakeSecret(resource.NewPropertyValue(v)) }

// fixture is a small hand-made record with every kind of value the renderer must handle.
func fixture() []*mockengine.Resource {
	stack := "urn:pulumi:t::ztedge::pulumi:pulumi:Stack::ztedge-t"
	comp := "urn:pulumi:t::ztedge::ztedge:edge:Pki::pki"
	return []*mockengine.Resource{
		{URN: stack, Type: "pulumi:pulumi:Stack", Name: "ztedge-t"},
		{URN: comp, Type: "ztedge:edge:Pki", Name: "pki", Parent: stack},
		{
			URN: "urn:pulumi:t::ztedge::ztedge:edge:Pki$kubernetes:core/v1:Secret::server-tls", Type: "kubernetes:core/v1:Secret",
			Name: "server-tls", Parent: comp, Custom: true,
			Inputs: resource.PropertyMap{
				"metadata":   resource.NewObjectProperty(resource.PropertyMap{"name": resource.NewProperty("server-tls"), "namespace": resource.NewProperty("ambassador")}),
				"type":       resource.NewProperty("kubernetes.io/tls"),
				"stringData": resource.NewObjectProperty(resource.PropertyMap{"tls.key": secret("KEY-BODY-1"), "tls.crt": resource.NewProperty("PUBLIC-CERT-BODY")}),
				"data":       resource.NewObjectProperty(resource.PropertyMap{"ca.crt": resource.NewProperty("Q0EtQk9EWQ==")}),
			},
			Dependencies: []string{"urn:pulumi:t::ztedge::ztedge:edge:Pki$tls:index/privateKey:PrivateKey::server"},
		},
		{
			URN: "urn:pulumi:t::ztedge::ztedge:edge:Pki$tls:index/privateKey:PrivateKey::server", Type: "tls:index/privateKey:PrivateKey",
			Name: "server", Parent: comp, Custom: true,
			Inputs: resource.PropertyMap{"algorithm": resource.NewProperty("ECDSA")},
		},
		{
			URN: "urn:pulumi:t::ztedge::kubernetes:getambassador.io/v3alpha1:Host::edge", Type: "kubernetes:getambassador.io/v3alpha1:Host",
			Name: "edge", Parent: stack, Custom: true,
			Inputs: resource.PropertyMap{
				"apiVersion": resource.NewProperty("getambassador.io/v3alpha1"), "kind": resource.NewProperty("Host"),
				"metadata": resource.NewObjectProperty(resource.PropertyMap{"namespace": resource.NewProperty("ambassador")}),
				"spec": resource.NewObjectProperty(resource.PropertyMap{
					"hostname": resource.NewProperty("edge.example.com"), "port": resource.NewProperty(8443.0),
					// A secret nested in an output: must be redacted too.
					"token": resource.NewProperty(resource.Output{Element: resource.NewProperty("NESTED-SECRET"), Known: true, Secret: true}),
				}),
			},
			Outputs:      resource.PropertyMap{"metadata": resource.NewObjectProperty(resource.PropertyMap{"name": resource.NewProperty("edge-a1b2c")})},
			Dependencies: []string{"urn:pulumi:t::ztedge::ztedge:edge:Pki$kubernetes:core/v1:Secret::server-tls"},
		},
		{
			URN: "urn:pulumi:t::ztedge::kubernetes:helm.sh/v3:Release::emissary", Type: "kubernetes:helm.sh/v3:Release",
			Name: "emissary", Parent: stack, Custom: true,
			Inputs: resource.PropertyMap{
				"name": resource.NewProperty("emissary-ingress"), "namespace": resource.NewProperty("ambassador"),
				"chart": resource.NewProperty("emissary-ingress"), "version": resource.NewProperty("4.1.0"),
				"repositoryOpts": resource.NewObjectProperty(resource.PropertyMap{"repo": resource.NewProperty("oci://ghcr.io/emissary-ingress")}),
				"values":         resource.NewObjectProperty(resource.PropertyMap{"licenseKey": secret("LICENSE-XYZ"), "replicaCount": resource.NewProperty(2.0)}),
			},
		},
		{
			URN: "urn:pulumi:t::ztedge::aws:iam/role:Role::irsa", Type: "aws:iam/role:Role", Name: "irsa", Parent: stack, Custom: true,
			Inputs: resource.PropertyMap{"assumeRolePolicy": resource.NewProperty(`{"Version":"2012-10-17","Statement":[]}`)},
		},
	}
}

func TestBundleSortsAndFillsKubernetesObjects(t *testing.T) {
	b := NewBundle(fixture())
	if len(b.Kubernetes) != 2 || len(b.Helm) != 1 || len(b.AWS) != 1 || len(b.All) != 7 {
		t.Fatalf("kubernetes %d, helm %d, aws %d, all %d", len(b.Kubernetes), len(b.Helm), len(b.AWS), len(b.All))
	}
	host := b.Kubernetes[0]
	if host.Kind != "Host" || host.Name != "edge-a1b2c" || host.Namespace != "ambassador" {
		t.Errorf("host: %+v (the auto-name comes from the engine's outputs)", host)
	}
	sec := b.Kubernetes[1].Manifest
	if sec["apiVersion"] != "v1" || sec["kind"] != "Secret" {
		t.Errorf("apiVersion/kind from the type token: %v %v", sec["apiVersion"], sec["kind"])
	}
	for _, field := range []string{"stringData", "data"} {
		for k, v := range sec[field].(map[string]any) {
			if v != Redacted {
				t.Errorf("Secret %s.%s = %v, want %s", field, k, v, Redacted)
			}
		}
	}
	if b.Helm[0].Name != "emissary-ingress" || b.Helm[0].Repository != "oci://ghcr.io/emissary-ingress" || b.Helm[0].Version != "4.1.0" {
		t.Errorf("helm: %+v", b.Helm[0])
	}
	if v := b.Helm[0].Values.(map[string]any); v["licenseKey"] != Secret || v["replicaCount"] != int64(2) {
		t.Errorf("helm values: %v", v)
	}
}

func TestFilesLeakNoSecretAndAreDeterministic(t *testing.T) {
	rs := fixture()
	first := allFiles(t, NewBundle(rs))
	// Registration order must not matter.
	reversed := make([]*mockengine.Resource, len(rs))
	for i, r := range rs {
		reversed[len(rs)-1-i] = r
	}
	second := allFiles(t, NewBundle(reversed))
	for p, c := range first {
		if !bytes.Equal(c, second[p]) {
			t.Errorf("%s differs between two renders of the same record", p)
		}
		for _, leak := range []string{"KEY-BODY-1", "PUBLIC-CERT-BODY", "Q0EtQk9EWQ==", "NESTED-SECRET", "LICENSE-XYZ"} {
			if bytes.Contains(c, []byte(leak)) {
				t.Errorf("%s contains %q", p, leak)
			}
		}
	}
	var aws struct {
		IAMRoles []IAMRole `json:"iamRoles"`
	}
	if err := json.Unmarshal(first["aws.json"], &aws); err != nil || len(aws.IAMRoles) != 1 {
		t.Fatalf("aws.json: %v %s", err, first["aws.json"])
	}
	if _, ok := aws.IAMRoles[0].AssumeRolePolicy.(map[string]any); !ok {
		t.Errorf("the trust policy should be parsed JSON, got %T", aws.IAMRoles[0].AssumeRolePolicy)
	}
	for _, want := range []string{"kubernetes/ambassador/host-edge-a1b2c.yaml", "kubernetes/ambassador/secret-server-tls.yaml", "helm/ambassador-emissary-ingress.yaml"} {
		if _, ok := first[want]; !ok {
			t.Errorf("no %s among %v", want, Files(first).Paths())
		}
	}
}

func allFiles(t *testing.T, b *Bundle) map[string][]byte {
	t.Helper()
	y, err := b.YAMLFiles()
	if err != nil {
		t.Fatal(err)
	}
	j, err := b.JSONFiles()
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range j {
		y[p] = c
	}
	return y
}

func TestJSONForm(t *testing.T) {
	j, err := NewBundle(fixture()).JSON()
	if err != nil {
		t.Fatal(err)
	}
	var rs []map[string]any
	if err := json.Unmarshal(j, &rs); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		for _, k := range []string{"urn", "type", "name", "dependencies", "inputs"} {
			if _, ok := r[k]; !ok {
				t.Errorf("resource %d has no %q: %v", i, k, r)
			}
		}
		if i > 0 && rs[i-1]["urn"].(string) >= r["urn"].(string) {
			t.Errorf("not sorted by URN at %d", i)
		}
	}
}

func TestGraph(t *testing.T) {
	b := NewBundle(fixture())
	mmd, dot := b.Mermaid(), b.DOT()
	// Node ids follow URN order: r0 Role, r1 Host, r2 Release, r3 Secret, r4 PrivateKey, r5 Pki.
	for _, want := range []string{
		`subgraph r5["Pki pki"]`,      // the component holds its children
		`    r3["Secret server-tls"]`, // a child, indented inside it
		"r4 --> r3",                   // the key before the Secret that holds it
		"r3 --> r1",                   // the Secret before the Host that names it
		`  r2["Release emissary"]`,    // a top-level resource
	} {
		if !strings.Contains(mmd, want) {
			t.Errorf("mermaid lacks %q:\n%s", want, mmd)
		}
	}
	for _, want := range []string{"subgraph cluster_r5 {", "r4 -> r3;", "r3 -> r1;"} {
		if !strings.Contains(dot, want) {
			t.Errorf("dot lacks %q:\n%s", want, dot)
		}
	}
	if strings.Contains(mmd, "pulumi:pulumi:Stack") || strings.Contains(mmd, "Stack ztedge-t") {
		t.Error("the root stack is not a node")
	}
}

// TestStacksRenderWithoutSecrets renders every stack file of the repository and checks that no
// secret value of the run (private keys, the offline placeholder, any secret-marked input or output)
// appears in any file, and that Kubernetes manifests parse back.
func TestStacksRenderWithoutSecrets(t *testing.T) {
	stackFiles, _ := filepath.Glob(filepath.Join(repoRoot(t), "Pulumi.*.yaml"))
	if len(stackFiles) < 2 {
		t.Fatalf("found %v", stackFiles)
	}
	for _, f := range stackFiles {
		stack := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "Pulumi."), ".yaml")
		t.Run(stack, func(t *testing.T) {
			rs, err := Offline(repoRoot(t), stack, 2*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			secrets := map[string]bool{stacks.SecretPlaceholder: true}
			for _, r := range rs {
				collectSecrets(resource.NewObjectProperty(r.Inputs), false, secrets)
				collectSecrets(resource.NewObjectProperty(r.Outputs), false, secrets)
			}
			files := allFiles(t, NewBundle(rs))
			for p, c := range files {
				for s := range secrets {
					if bytes.Contains(c, []byte(s)) {
						t.Errorf("%s contains the secret value %q", p, s)
					}
				}
				if strings.HasSuffix(p, ".yaml") && strings.HasPrefix(p, "kubernetes/") {
					var m map[string]any
					if err := yaml.Unmarshal(c, &m); err != nil || m["kind"] == nil || m["apiVersion"] == nil {
						t.Errorf("%s: not a Kubernetes object: %v", p, err)
					}
				}
			}
		})
	}
}

// collectSecrets adds every string inside a secret value, and for PEM private keys each body line
// (a key must not leak even re-wrapped), to out.
func collectSecrets(v resource.PropertyValue, inSecret bool, out map[string]bool) {
	switch {
	case v.IsSecret():
		collectSecrets(v.SecretValue().Element, true, out)
	case v.IsOutput():
		collectSecrets(v.OutputValue().Element, inSecret || v.OutputValue().Secret, out)
	case v.IsObject():
		for _, e := range v.ObjectValue() {
			collectSecrets(e, inSecret, out)
		}
	case v.IsArray():
		for _, e := range v.ArrayValue() {
			collectSecrets(e, inSecret, out)
		}
	case v.IsString() && inSecret && len(v.StringValue()) >= 6:
		s := v.StringValue()
		out[s] = true
		if strings.Contains(s, "PRIVATE KEY-----") {
			for _, line := range strings.Split(s, "\n") {
				if len(line) >= 6 && !strings.HasPrefix(line, "-----") {
					out[line] = true
				}
			}
		}
	}
}

func TestWriteReplacesStaleFiles(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "kubernetes", "gone", "service-old.yaml")
	keep := filepath.Join(dir, "notes.txt")
	for _, p := range []string{stale, keep} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := NewBundle(fixture()).YAMLFiles()
	if err != nil {
		t.Fatal(err)
	}
	if err := files.Write(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("a file of an earlier render survived")
	}
	if _, err := os.Stat(keep); err != nil {
		t.Error("a file render does not own was removed")
	}
}
