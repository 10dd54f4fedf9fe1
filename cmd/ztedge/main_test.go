package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/ztedge/ztedge/internal/smoke"
	"github.com/ztedge/ztedge/internal/smoke/smoketest"
)

func repoRoot() string {
	// go test runs in the package's directory; runtime.Caller would not do under -trimpath (CI).
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return dir
}

// ztedge runs a command line and returns its exit status, stdout and stderr.
func ztedge(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpListsEveryCommandAndEachHasHelp(t *testing.T) {
	code, out, _ := ztedge(t, "help")
	if code != exitOK {
		t.Errorf("help exited %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("help does not list %s:\n%s", c.name, out)
		}
		code, _, errOut := ztedge(t, c.name, "--help")
		if code != exitOK || !strings.Contains(errOut, "Usage: ztedge "+c.name) || !strings.Contains(errOut, "Examples:") || !strings.Contains(errOut, "-stack") {
			t.Errorf("%s --help: exit %d\n%s", c.name, code, errOut)
		}
	}
	if code, _, _ := ztedge(t); code != exitUsage {
		t.Errorf("no arguments exited %d, want %d", code, exitUsage)
	}
	if code, _, errOut := ztedge(t, "deploy"); code != exitUsage || !strings.Contains(errOut, `unknown command "deploy"`) {
		t.Errorf("unknown command: %d %s", code, errOut)
	}
	if code, _, errOut := ztedge(t, "render", "--stack", "dev", "extra"); code != exitUsage || !strings.Contains(errOut, `unexpected argument "extra"`) {
		t.Errorf("stray argument: %d %s", code, errOut)
	}
	if code, _, errOut := ztedge(t, "render"); code != exitUsage || !strings.Contains(errOut, "--stack is required") {
		t.Errorf("render without --stack: %d %s", code, errOut)
	}
}

func TestRenderDevAndProd(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			dir := t.TempDir()
			code, out, errOut := ztedge(t, "render", "--stack", stack, "--dir", repoRoot(), "--out", dir)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "rendered stack "+stack) {
				t.Errorf("stdout: %s", out)
			}
			for _, f := range []string{"aws.json", "aws.md", "graph.mmd", "graph.dot"} {
				if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
					t.Errorf("%s: %v", f, err)
				}
			}
			helm, _ := filepath.Glob(filepath.Join(dir, "helm", "*.yaml"))
			if len(helm) == 0 {
				t.Error("no Helm release rendered (the ALB controller at least)")
			}

			// Same configuration, same bytes: a second render into another directory is identical.
			again := t.TempDir()
			if code, _, errOut := ztedge(t, "render", "--stack", stack, "--dir", repoRoot(), "--out", again); code != exitOK {
				t.Fatalf("second render: %s", errOut)
			}
			if a, b := tree(t, dir), tree(t, again); !equalTrees(a, b) {
				t.Error("two renders of one configuration differ")
			}

			code, out, errOut = ztedge(t, "render", "--stack", stack, "--dir", repoRoot(), "--format", "json", "--out", "-")
			if code != exitOK {
				t.Fatalf("json: %s", errOut)
			}
			var rs []struct {
				URN          string         `json:"urn"`
				Type         string         `json:"type"`
				Dependencies []string       `json:"dependencies"`
				Inputs       map[string]any `json:"inputs"`
			}
			if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) < 10 {
				t.Fatalf("json: %v (%d resources)", err, len(rs))
			}
			// prod sets waf block and createDnsRecord: the render shows the web ACL and the alias record.
			aws, _ := os.ReadFile(filepath.Join(dir, "aws.md"))
			for _, want := range []string{"`aws:wafv2/webAcl:WebAcl` | 1 | edge", "`aws:route53/record:Record` | 2 | edge, edge-validation"} {
				if got := strings.Contains(string(aws), want); got != (stack == "prod") {
					t.Errorf("aws.md shows %q: %v, want %v", want, got, stack == "prod")
				}
			}
		})
	}
}

func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalTrees(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// An invalid stack file exits 2 and names the key, before anything is rendered.
func TestRenderInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"Pulumi.yaml", "Pulumi.dev.yaml"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(), f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "Pulumi.dev.yaml" {
			f = "Pulumi.broken.yaml"
			b = []byte(strings.Replace(string(b), "ztedge:availabilityZones: 2", "ztedge:availabilityZones: 7", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	code, _, errOut := ztedge(t, "render", "--stack", "broken", "--dir", dir, "--out", out)
	if code != exitUsage || !strings.Contains(errOut, "ztedge:availabilityZones") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("an invalid configuration still wrote output")
	}
	// A misspelt key is refused too (it would be ignored and its default deployed).
	dev, _ := os.ReadFile(filepath.Join(repoRoot(), "Pulumi.dev.yaml"))
	writeFile(t, dir, "Pulumi.typo.yaml", []byte(strings.Replace(string(dev), "\nconfig:\n", "\nconfig:\n  ztedge:clientAuht: alb-verify\n", 1)))
	if code, _, errOut := ztedge(t, "render", "--stack", "typo", "--dir", dir, "--out", out); code != exitUsage || !strings.Contains(errOut, "ztedge:clientAuht: is not a ztedge setting") || !strings.Contains(errOut, "did you mean clientAuth?") {
		t.Errorf("misspelt key: exit %d, stderr:\n%s", code, errOut)
	}
	if code, _, errOut := ztedge(t, "render", "--stack", "nosuch", "--dir", dir); code != exitUsage || !strings.Contains(errOut, "Pulumi.nosuch.yaml") {
		t.Errorf("missing stack file: exit %d, %s", code, errOut)
	}
	if code, _, errOut := ztedge(t, "render", "--stack", "dev", "--dir", dir, "--format", "xml"); code != exitUsage || !strings.Contains(errOut, `--format "xml"`) {
		t.Errorf("bad format: exit %d, %s", code, errOut)
	}
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// smoke with explicit files: exit 0 against an edge that behaves, 1 against one that does not.
func TestSmokeCommand(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edge     smoketest.Behaviour
		wantCode int
		wantOut  string
	}{
		{"good edge", smoketest.Good, exitOK, "smoke: 9 of 9 checks passed"},
		{"edge believing a client's certificate header", smoketest.Behaviour{MinTLS: 0x0304, VerifyClientCerts: true, RequireAuth: true, TrustsCertHeader: true}, exitFail, "forged-x-amzn-mtls-clientcert-leaf"},
		{"edge accepting TLS 1.2", smoketest.Behaviour{MinTLS: 0x0303, VerifyClientCerts: true, RequireAuth: true}, exitFail, "TLS 1.2 handshake succeeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := smoketest.Start(t, tc.edge)
			dir := t.TempDir()
			code, out, errOut := ztedge(t, "smoke",
				"--endpoint", e.Target.Address, "--server-name", smoketest.ServerName, "--http-endpoint", e.Target.HTTPAddress,
				"--ca", writeFile(t, dir, "ca.pem", e.CAPEM),
				"--client-cert", writeFile(t, dir, "client.pem", e.ClientCertPEM),
				"--client-key", writeFile(t, dir, "client.key", e.ClientKeyPEM),
				"--path", smoketest.Path, "--timeout", "5s", "--cert-headers", "X-Ztedge-Secret-Name-0123")
			if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
				t.Errorf("exit %d (want %d)\n%s%s", code, tc.wantCode, out, errOut)
			}
		})
	}
	if code, _, errOut := ztedge(t, "smoke", "--endpoint", "127.0.0.1:1"); code != exitUsage || !strings.Contains(errOut, "--client-cert") {
		t.Errorf("smoke without a client: %d %s", code, errOut)
	}
}

// The stack outputs hostname, caCertificate and clientCertificates make a target.
func TestTargetFromOutputs(t *testing.T) {
	e := smoketest.Start(t, smoketest.Good)
	// As the PKI exports it: certificate, private key, then the CA certificate.
	bundle := string(e.ClientCertPEM) + string(e.ClientKeyPEM) + string(e.CAPEM)
	var target smoke.Target
	target.Roots = e.Target.Roots
	err := targetFromOutputs(&target, map[string]any{
		"hostname":           "edge.dev.example.com",
		"caCertificate":      string(e.CAPEM),
		"clientCertificates": map[string]any{"web-app": bundle},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	if target.Address != "edge.dev.example.com:443" || target.ServerName != "edge.dev.example.com" || target.Client.Leaf == nil || target.Client.Leaf.Subject.CommonName != "web-app" {
		t.Errorf("target: %s %s, client %v", target.Address, target.ServerName, target.Client.Leaf)
	}
	// Without --client the first name is used ("billing", broken here); --client picks another.
	both := map[string]any{"hostname": "h.example.com", "clientCertificates": map[string]any{"web-app": bundle, "billing": "x"}}
	target = smoke.Target{Roots: e.Target.Roots}
	if err := targetFromOutputs(&target, both, ""); err == nil || !strings.Contains(err.Error(), "clientCertificates[billing]") {
		t.Errorf("broken bundle: %v", err)
	}
	if err := targetFromOutputs(&target, both, "web-app"); err != nil {
		t.Errorf("--client web-app: %v", err)
	}
	if err := targetFromOutputs(&target, both, "nobody"); err == nil || !strings.Contains(err.Error(), `no client "nobody"`) {
		t.Errorf("unknown client: %v", err)
	}
	if err := targetFromOutputs(&target, map[string]any{"hostname": "h.example.com"}, ""); err == nil || !strings.Contains(err.Error(), "--client-cert") {
		t.Errorf("no client certificates: %v", err)
	}
	// Behind an ALB the stack's secret certificate header is forged too.
	withName := map[string]any{"hostname": "h.example.com", "clientCertificates": map[string]any{"web-app": bundle}, "clientCertHeaderName": "X-Ztedge-0123456789abcdef01234567"}
	target = smoke.Target{Roots: e.Target.Roots}
	if err := targetFromOutputs(&target, withName, ""); err != nil || target.SecretCertHeader != "X-Ztedge-0123456789abcdef01234567" {
		t.Errorf("the stack's certificate header is not forged: %q %v", target.SecretCertHeader, err)
	}
}

// Without the Pulumi CLI (and no terminal to ask on), deploy commands exit 2 and say what to do.
func TestDeployWithoutPulumiCLI(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("PULUMI_HOME", t.TempDir())
	t.Setenv("PULUMI_CONFIG_PASSPHRASE", "test")
	dir := t.TempDir()
	for _, f := range []string{"Pulumi.yaml", "Pulumi.dev.yaml"} {
		b, _ := os.ReadFile(filepath.Join(repoRoot(), f))
		writeFile(t, dir, f, b)
	}
	for _, cmd := range []string{"preview", "up", "destroy", "refresh", "outputs"} {
		code, out, errOut := ztedge(t, cmd, "--stack", "dev", "--dir", dir)
		if code != exitUsage || !strings.Contains(errOut, "Pulumi CLI is not on PATH") || !strings.Contains(errOut, "--install-pulumi") {
			t.Errorf("%s: exit %d\n%s%s", cmd, code, out, errOut)
		}
	}
}

// The offer to install the Pulumi CLI: asked only on a terminal, yes only when the user says so,
// and --install-pulumi installs without asking.
func TestOfferToInstallPulumi(t *testing.T) {
	cases := []struct {
		always, interactive bool
		answer              string
		want                bool
		wantPrompt          bool
	}{
		{interactive: false, answer: "y\n", want: false},
		{interactive: true, answer: "y\n", want: true, wantPrompt: true},
		{interactive: true, answer: " YES \n", want: true, wantPrompt: true},
		{interactive: true, answer: "\n", want: false, wantPrompt: true},
		{interactive: true, answer: "", want: false, wantPrompt: true}, // EOF
		{interactive: true, answer: "yess\n", want: false, wantPrompt: true},
		{always: true, want: true},
	}
	for _, tc := range cases {
		var stderr strings.Builder
		got := offerInstall(tc.always, strings.NewReader(tc.answer), tc.interactive, &stderr)("/home/u/.pulumi/versions/x")
		prompted := strings.Contains(stderr.String(), "[y/N]")
		if got != tc.want || prompted != tc.wantPrompt {
			t.Errorf("always=%v interactive=%v answer %q: install %v, prompted %v; want %v, %v (stderr %q)",
				tc.always, tc.interactive, tc.answer, got, prompted, tc.want, tc.wantPrompt, stderr.String())
		}
	}
}

func TestProgressDisplay(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var b bytes.Buffer
	p := newProgress(&b, "up", clock)
	vpc := "urn:pulumi:dev::ztedge::ztedge:network:Network$aws:ec2/vpc:Vpc::ztedge-dev"
	cluster := "urn:pulumi:dev::ztedge::ztedge:cluster:Cluster$eks:index:Cluster::ztedge-dev"
	ev := func(e apitype.EngineEvent) { p.event(events.EngineEvent{EngineEvent: e}) }
	meta := func(op apitype.OpType, urn string) apitype.StepEventMetadata {
		return apitype.StepEventMetadata{Op: op, URN: urn}
	}
	ev(apitype.EngineEvent{ResourcePreEvent: &apitype.ResourcePreEvent{Metadata: meta(apitype.OpCreate, vpc)}})
	ev(apitype.EngineEvent{ResourcePreEvent: &apitype.ResourcePreEvent{Metadata: meta(apitype.OpCreate, cluster)}})
	ev(apitype.EngineEvent{ResourcePreEvent: &apitype.ResourcePreEvent{Metadata: meta(apitype.OpSame, "urn:pulumi:dev::ztedge::aws:kms/key:Key::k")}})
	now = now.Add(12 * time.Second)
	ev(apitype.EngineEvent{ResOutputsEvent: &apitype.ResOutputsEvent{Metadata: meta(apitype.OpCreate, vpc)}})
	now = now.Add(10 * time.Minute)
	p.still()
	ev(apitype.EngineEvent{DiagnosticEvent: &apitype.DiagnosticEvent{URN: cluster, Severity: "error", Message: "AccessDenied\n"}})
	ev(apitype.EngineEvent{DiagnosticEvent: &apitype.DiagnosticEvent{Severity: "info", Message: "noise"}})
	ev(apitype.EngineEvent{ResOpFailedEvent: &apitype.ResOpFailedEvent{Metadata: meta(apitype.OpCreate, cluster)}})
	ev(apitype.EngineEvent{SummaryEvent: &apitype.SummaryEvent{ResourceChanges: map[apitype.OpType]int{"create": 1}}})
	p.still() // nothing in flight: prints nothing
	p.finish(os.ErrDeadlineExceeded)

	want := "[   12s] created             Vpc ztedge-dev (12s)\n" +
		"[10m12s] still working on Cluster ztedge-dev (10m12s)\n" +
		"[10m12s] error Cluster ztedge-dev: AccessDenied\n" +
		"[10m12s] FAILED to create Cluster ztedge-dev\n" +
		"up failed after 10m12s (1 create)\n" +
		"failed step(s): create Cluster ztedge-dev\n"
	if b.String() != want {
		t.Errorf("display:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	p = newProgress(&b, "preview", clock)
	ev(apitype.EngineEvent{ResourcePreEvent: &apitype.ResourcePreEvent{Metadata: meta(apitype.OpUpdate, vpc)}})
	p.finish(nil)
	if want := "  would update               Vpc ztedge-dev\npreview finished in 0s\n"; b.String() != want {
		t.Errorf("preview display:\n%q\nwant:\n%q", b.String(), want)
	}
}
