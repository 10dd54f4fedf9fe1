//go:build e2e

// Package e2e is the real-engine tier: the `local` stack deployed by a real Pulumi CLI and real
// provider plugins to a real kube-apiserver (with etcd, the controller manager, the scheduler and
// kwok faking a node), through both entry points users have: `ztedge` (the Automation API) and
// `pulumi up` in the project. Run it with `make e2e` (e2e/run.sh builds and caches the tools).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// Bounds on each operation: a destroy that hangs on a finalizer or a Helm wait fails the test
// instead of timing out the whole run.
const (
	upTimeout      = 6 * time.Minute
	destroyTimeout = 4 * time.Minute
)

func TestLocalStackOnARealEngine(t *testing.T) {
	ctx, work, cp, cluster := startTestCluster(t, 40*time.Minute)
	before, err := cluster.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ztedge (Automation API)", func(t *testing.T) {
		p := newProject(t, filepath.Join(work, "ztedge"), cp.Kubeconfig)
		ztedge := p.build(t, "./cmd/ztedge")
		// No Pulumi CLI on PATH: ztedge takes the pinned one from the Pulumi home (where it
		// installs it on a fresh machine).
		cliDir := os.Getenv("E2E_PULUMI_BIN_DIR")
		if cliDir == "" {
			t.Fatal("E2E_PULUMI_BIN_DIR is not set: run the tier with `make e2e`")
		}
		p.env = withoutPathDir(p.env, cliDir)
		run := func(timeout time.Duration, args ...string) string { return p.run(t, timeout, ztedge, args...) }

		state := p.upAndReadBack(ctx, t, cluster, run, "empty state")
		cluster.checkDeploymentsAvailable(ctx, t, state)
		p.checkNoPlaintextKey(t)
		out := run(time.Minute, "outputs", "--stack", "local")
		for _, want := range []string{`"hostname"`, "edge.ztedge.localhost", "caCertificate"} {
			if !strings.Contains(out, want) {
				t.Errorf("ztedge outputs does not show %s:\n%s", want, out)
			}
		}

		checkCerts(t, run(time.Minute, "certs", "--stack", "local", "--json"), state)

		// Switching the running stack's engine is refused by preview and up, on the real state.
		p.editStack(t, func(cfg map[string]any) { cfg["ztedge:engine"] = "envoy-gateway" })
		for _, op := range []string{"preview", "up"} {
			if out := p.runFails(t, ztedge, op, "--stack", "local"); !strings.Contains(out, "stack local runs engine emissary, but Pulumi.local.yaml sets ztedge:engine: envoy-gateway") {
				t.Errorf("ztedge %s does not refuse the engine switch:\n%s", op, out)
			}
		}
		p.editStack(t, func(cfg map[string]any) { delete(cfg, "ztedge:engine") })

		// A config change (one more backend) updates in place: the CA and the signing keys stay.
		keep := longLived(state)
		p.addBackend(t, "inventory")
		start := time.Now()
		run(upTimeout, "up", "--stack", "local")
		t.Logf("ztedge up (add a backend): %s", time.Since(start).Round(time.Second))
		after := longLived(p.exportState(t))
		for urn, id := range keep {
			if after[urn] != id {
				t.Errorf("adding a backend replaced %s (%s → %s): clients and tokens would break", urn, id, after[urn])
			}
		}
		if len(keep) == 0 {
			t.Error("found no CA certificate or signing key in the state to compare")
		}

		start = time.Now()
		out = run(destroyTimeout, "destroy", "--stack", "local")
		t.Logf("ztedge destroy: %s", time.Since(start).Round(time.Second))
		if regexp.MustCompile(`(?m)\bdeleted\s+NamespacePatch|\bdeleted\s+Namespace (orders|inventory)\b`).MatchString(out) {
			t.Errorf("ztedge says it deleted a backend namespace, which it keeps:\n%s", out)
		}
		cluster.checkNothingLeft(ctx, t, before)

		// The backend namespaces stayed; a second up adopts them.
		start = time.Now()
		run(upTimeout, "up", "--stack", "local")
		t.Logf("ztedge up (after destroy): %s", time.Since(start).Round(time.Second))
		run(destroyTimeout, "destroy", "--stack", "local")
		cluster.checkNothingLeft(ctx, t, before)
	})

	t.Run("pulumi up (the CLI in the project)", func(t *testing.T) {
		p := newProject(t, filepath.Join(work, "cli"), cp.Kubeconfig)
		pulumi := func(timeout time.Duration, args ...string) string {
			return p.run(t, timeout, "pulumi", append(args, "--stack", "local", "--non-interactive")...)
		}
		p.run(t, time.Minute, "pulumi", "stack", "init", "local", "--non-interactive")
		// `pulumi up` of a `runtime: go` project compiles the program first (pulumi-language-go:
		// go build -trimpath): on a cold build cache that alone takes minutes, so it is timed apart
		// (.ci/run builds everything with -trimpath, so there it finds the cache warm).
		start := time.Now()
		p.run(t, 20*time.Minute, "go", "build", "-trimpath", "-o", os.DevNull, ".")
		t.Logf("compiling the program as pulumi-language-go does: %s", time.Since(start).Round(time.Second))
		start = time.Now()
		pulumi(upTimeout, "up", "--yes", "--skip-preview")
		t.Logf("pulumi up (empty state): %s", time.Since(start).Round(time.Second))
		start = time.Now()
		pulumi(upTimeout, "preview", "--expect-no-changes")
		t.Logf("pulumi preview (no changes): %s", time.Since(start).Round(time.Second))
		p.checkNoPlaintextKey(t)
		start = time.Now()
		pulumi(destroyTimeout, "destroy", "--yes", "--skip-preview")
		t.Logf("pulumi destroy: %s", time.Since(start).Round(time.Second))
		cluster.checkNothingLeft(ctx, t, before)
	})
}

// project is a copy of the repository (the files git knows) with Pulumi.local.yaml pointed at the
// test cluster and the local chart directory, and its own state backend.
type project struct {
	dir string
	env []string
}

func newProject(t *testing.T, dir, kubeconfig string) *project {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := exec.Command("git", "-C", root, "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("listing the repository's files: %v", err)
	}
	for _, f := range strings.Split(strings.TrimSpace(string(files)), "\n") {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue // deleted in the work tree
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return setupProject(t, dir, kubeconfig)
}

// setupProject points the project in dir (a copy of some version of the repository) at the test
// cluster and the local chart directory, with its own state backend.
func setupProject(t *testing.T, dir, kubeconfig string) *project {
	t.Helper()
	p := &project{dir: dir}
	p.editStack(t, func(cfg map[string]any) {
		cfg["ztedge:kubeconfig"] = kubeconfig
		cfg["ztedge:emissaryChartRepository"] = os.Getenv("E2E_CHARTS")
	})
	state := filepath.Join(dir, ".pulumi-state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	p.env = append(os.Environ(), "PULUMI_BACKEND_URL=file://"+state, "PULUMI_CONFIG_PASSPHRASE=e2e-passphrase",
		"PULUMI_SKIP_UPDATE_CHECK=true", "NO_COLOR=1", "KUBECONFIG="+kubeconfig)
	return p
}

// upAndReadBack runs `up` from an empty state and `preview --expect-no-changes` right after (timing
// both, labelled what), then reads every Kubernetes object of the state back from the API server
// with every field the program set. It returns the state.
func (p *project) upAndReadBack(ctx context.Context, t *testing.T, cluster *clusterView, run func(time.Duration, ...string) string, what string) []stateResource {
	t.Helper()
	start := time.Now()
	run(upTimeout, "up", "--stack", "local")
	t.Logf("ztedge up (%s): %s", what, time.Since(start).Round(time.Second))
	start = time.Now()
	run(upTimeout, "preview", "--stack", "local", "--expect-no-changes")
	t.Logf("ztedge preview (no changes): %s", time.Since(start).Round(time.Second))
	state := p.exportState(t)
	cluster.checkEveryFieldSurvived(ctx, t, state)
	cluster.checkEmissaryReadsItsNamespaceOnly(ctx, t, "ambassador", "emissary-ingress", "orders")
	return state
}

// withoutPathDir returns env with dir removed from PATH.
func withoutPathDir(env []string, dir string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if path, ok := strings.CutPrefix(kv, "PATH="); ok {
			kv = "PATH=" + strings.Join(slices.DeleteFunc(filepath.SplitList(path), func(d string) bool { return d == dir }), string(filepath.ListSeparator))
		}
		out = append(out, kv)
	}
	return out
}

func (p *project) editStack(t *testing.T, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(p.dir, "Pulumi.local.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	cfg := doc["config"].(map[string]any)
	edit(cfg)
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// addBackend adds a copy of the first backend under another name, namespace and prefix.
func (p *project) addBackend(t *testing.T, name string) {
	p.editStack(t, func(cfg map[string]any) {
		backends := cfg["ztedge:backends"].([]any)
		b := map[string]any{}
		for k, v := range backends[0].(map[string]any) {
			b[k] = v
		}
		b["name"], b["namespace"], b["prefix"] = name, name, "/api/"+name+"/"
		cfg["ztedge:backends"] = append(backends, b)
	})
}

func (p *project) build(t *testing.T, pkg string) string {
	t.Helper()
	out := filepath.Join(p.dir, "bin", filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = p.dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// run runs a command in the project and fails the test (with its output) if it fails or takes
// longer than timeout.
func (p *project) run(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = p.dir, p.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish in %s:\n%s", filepath.Base(name), strings.Join(args, " "), timeout, out.String())
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// stateResource is one resource of `pulumi stack export`.
type stateResource struct {
	URN     string         `json:"urn"`
	Type    string         `json:"type"`
	ID      string         `json:"id"`
	Inputs  map[string]any `json:"inputs"`
	Outputs map[string]any `json:"outputs"`
}

func (p *project) exportState(t *testing.T) []stateResource {
	t.Helper()
	out := p.run(t, time.Minute, "pulumi", "stack", "export", "--stack", "local")
	var doc struct {
		Deployment struct {
			Resources []stateResource `json:"resources"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("pulumi stack export: %v", err)
	}
	return doc.Deployment.Resources
}

// checkCerts: `ztedge certs` lists each certificate the real tls provider issued, with the expiry
// the provider recorded, every one fresh (status ok), each signing key, and no PEM.
func checkCerts(t *testing.T, out string, state []stateResource) {
	t.Helper()
	if strings.Contains(out, "BEGIN") {
		t.Errorf("ztedge certs prints PEM:\n%s", out)
	}
	var entries []struct {
		Name, Kind, NotAfter, Status, Phase string
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("ztedge certs --json: %v\n%s", err, out)
	}
	ends := map[string]bool{}
	certs, keys := 0, 0
	for _, r := range state {
		switch r.Type {
		case "tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert":
			certs++
			ends[fmt.Sprint(r.Outputs["validityEndTime"])] = true
		case "tls:index/privateKey:PrivateKey":
			if strings.Contains(r.URN, "-signing-") {
				keys++
			}
		}
	}
	gotCerts, gotKeys := 0, 0
	for _, e := range entries {
		if e.Status != "ok" {
			t.Errorf("%s: status %s right after up", e.Name, e.Status)
		}
		if e.Kind == "signing-key" {
			gotKeys++
			continue
		}
		gotCerts++
		end, err := time.Parse(time.RFC3339, e.NotAfter)
		if err != nil || !ends[e.NotAfter] || time.Until(end) < 24*time.Hour {
			t.Errorf("%s: notAfter %q is not a validityEndTime the provider recorded, or not in the future", e.Name, e.NotAfter)
		}
	}
	if gotCerts != certs || gotKeys != keys || certs == 0 {
		t.Errorf("ztedge certs lists %d certificates and %d signing keys; the state has %d and %d", gotCerts, gotKeys, certs, keys)
	}
	t.Logf("ztedge certs: %d certificates, %d signing keys", gotCerts, gotKeys)
}

// longLived maps the URN of each CA certificate and private key (signing keys included) to its ID:
// what must survive a configuration change.
func longLived(state []stateResource) map[string]string {
	out := map[string]string{}
	for _, r := range state {
		if r.Type == "tls:index/selfSignedCert:SelfSignedCert" || r.Type == "tls:index/privateKey:PrivateKey" {
			out[r.URN] = r.ID
		}
	}
	return out
}

// checkNoPlaintextKey: every private key in the state files is a Pulumi secret (ciphertext).
func (p *project) checkNoPlaintextKey(t *testing.T) {
	t.Helper()
	err := filepath.Walk(filepath.Join(p.dir, ".pulumi-state"), func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte("PRIVATE KEY")) {
			return fmt.Errorf("%s holds a private key in plain text", path)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
