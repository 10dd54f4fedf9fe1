package stacks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"

	"github.com/ztedge/ztedge/stacks"
)

// project copies Pulumi.yaml and the given stack files of the repository into a temporary
// directory (the Automation API creates .pulumi-state there, not in the repository).
func project(t *testing.T, stackFiles ...string) string {
	t.Helper()
	root := repoDir()
	dir := t.TempDir()
	for _, name := range append([]string{"Pulumi.yaml", "go.mod"}, stackFiles...) {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func repoDir() string {
	// go test runs in the package's directory; runtime.Caller would not do under -trimpath (CI).
	dir, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return dir
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestResolveDefaultsToAFileBackendInTheProject(t *testing.T) {
	dir := project(t, "Pulumi.dev.yaml")
	st, err := stacks.AutoOptions{Dir: dir, LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"})}.Resolve("dev", true)
	if err != nil {
		t.Fatal(err)
	}
	want := "file://" + filepath.ToSlash(filepath.Join(dir, stacks.DefaultStateDir))
	if st.BackendURL != want || st.Env[stacks.EnvBackendURL] != want {
		t.Errorf("backend %q, env %v; want %q", st.BackendURL, st.Env, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, stacks.DefaultStateDir)); err != nil || !fi.IsDir() {
		t.Errorf("the file backend's directory was not created: %v", err)
	}
	if st.StackFile != filepath.Join(dir, "Pulumi.dev.yaml") || st.Dir != dir {
		t.Errorf("settings: %+v", st)
	}
}

func TestResolveHonoursPulumiBackendURL(t *testing.T) {
	dir := project(t, "Pulumi.dev.yaml")
	st, err := stacks.AutoOptions{Dir: dir, LookupEnv: env(map[string]string{
		stacks.EnvBackendURL: "s3://ztedge-state?region=us-east-1", stacks.EnvPassphrase: "p",
	})}.Resolve("dev", false)
	if err != nil {
		t.Fatal(err)
	}
	if st.BackendURL != "s3://ztedge-state?region=us-east-1" {
		t.Errorf("backend %q", st.BackendURL)
	}
	if _, err := os.Stat(filepath.Join(dir, stacks.DefaultStateDir)); !os.IsNotExist(err) {
		t.Error("no local state directory should be made for a remote backend")
	}
}

func TestResolvePassphrase(t *testing.T) {
	dir := project(t, "Pulumi.dev.yaml")
	passFile := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(passFile, []byte("p"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"missing", map[string]string{}, "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE must be set"},
		{"empty but set", map[string]string{stacks.EnvPassphrase: ""}, ""},
		{"file", map[string]string{stacks.EnvPassphraseFile: passFile}, ""},
		{"missing file", map[string]string{stacks.EnvPassphraseFile: passFile + ".nope"}, "PULUMI_CONFIG_PASSPHRASE_FILE=" + passFile + ".nope"},
		{"Pulumi Cloud", map[string]string{stacks.EnvBackendURL: "https://api.pulumi.com"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stacks.AutoOptions{Dir: dir, LookupEnv: env(tc.env)}.Resolve("dev", false)
			checkErr(t, err, tc.wantErr)
			var setup *stacks.SetupError
			if err != nil && !errors.As(err, &setup) {
				t.Errorf("%T is not a SetupError", err)
			}
		})
	}

	// A stack whose secrets are encrypted with a KMS key needs no passphrase.
	kms := filepath.Join(dir, "Pulumi.kms.yaml")
	if err := os.WriteFile(kms, []byte("secretsprovider: awskms://alias/ztedge?region=us-east-1\nconfig: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := stacks.AutoOptions{Dir: dir, LookupEnv: env(nil)}.Resolve("kms", false)
	checkErr(t, err, "")
}

func TestResolveErrorsNameWhatToFix(t *testing.T) {
	dir := project(t, "Pulumi.dev.yaml")
	pass := env(map[string]string{stacks.EnvPassphrase: "p"})
	_, err := stacks.AutoOptions{Dir: t.TempDir(), LookupEnv: pass}.Resolve("dev", false)
	checkErr(t, err, "has no Pulumi.yaml")
	_, err = stacks.AutoOptions{Dir: dir, LookupEnv: pass}.Resolve("staging", false)
	checkErr(t, err, "Pulumi.staging.yaml does not exist")
	_, err = stacks.AutoOptions{Dir: dir, LookupEnv: pass}.Resolve("../dev", false)
	checkErr(t, err, `stack name "../dev"`)

	// preview and up validate the configuration first, and report every key at fault.
	b, _ := os.ReadFile(filepath.Join(dir, "Pulumi.dev.yaml"))
	bad := strings.Replace(string(b), "ztedge:hostname: edge.dev.example.com", "ztedge:hostname: not_a_host", 1)
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = stacks.AutoOptions{Dir: dir, LookupEnv: pass}.Resolve("bad", true)
	var cfgErr *stacks.ConfigError
	if !errors.As(err, &cfgErr) || !strings.Contains(err.Error(), "ztedge:hostname") {
		t.Errorf("want a ConfigError naming ztedge:hostname, got %v", err)
	}
	// destroy, refresh and outputs do not run the program, so they do not refuse a broken file.
	_, err = stacks.AutoOptions{Dir: dir, LookupEnv: pass}.Resolve("bad", false)
	checkErr(t, err, "")
}

func TestFindProjectDir(t *testing.T) {
	dir := project(t)
	sub := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := stacks.FindProjectDir(sub); err != nil || got != dir {
		t.Errorf("FindProjectDir = %q, %v; want %q", got, err, dir)
	}
	if _, err := stacks.FindProjectDir(t.TempDir()); err == nil {
		t.Error("a directory outside any project was accepted")
	}
}

// The providers to install are the SDKs linked into the binary, at their go.mod versions.
func TestRequiredPlugins(t *testing.T) {
	plugins, err := stacks.RequiredPlugins(repoDir())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range plugins {
		got[p.Name] = p.Version
	}
	for _, name := range []string{"aws", "eks", "kubernetes", "tls"} {
		if !regexp.MustCompile(`^v\d+\.\d+\.\d+`).MatchString(got[name]) {
			t.Errorf("plugin %s: version %q (all: %v)", name, got[name], got)
		}
	}
	if _, ok := got["pulumi"]; ok {
		t.Error("the Pulumi SDK itself is not a provider")
	}
}

// fakeCLI stands in for the Pulumi CLI: it records every invocation and answers from a script.
type fakeCLI struct {
	mu     sync.Mutex
	calls  []call
	answer func(args []string) (stdout, stderr string, code int)
}

type call struct {
	dir  string
	env  []string
	args []string
}

func (f *fakeCLI) Run(_ context.Context, dir string, _ io.Reader, _, _ []io.Writer, env []string, args ...string) (string, string, int, error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{dir, env, args})
	f.mu.Unlock()
	stdout, stderr, code := f.answer(args)
	if code != 0 {
		return stdout, stderr, code, fmt.Errorf("exit status %d", code)
	}
	return stdout, stderr, code, nil
}

func (f *fakeCLI) Version() semver.Version { return semver.MustParse("3.200.0") }

func (f *fakeCLI) ran(sub ...string) *call {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.calls {
		if len(f.calls[i].args) >= len(sub) && slices.Equal(f.calls[i].args[:len(sub)], sub) {
			return &f.calls[i]
		}
	}
	return nil
}

// newStackScript answers like a CLI on which the stack does not exist yet.
func newStackScript(extra func(args []string) (string, string, int, bool)) func([]string) (string, string, int) {
	return func(args []string) (string, string, int) {
		if out, errOut, code, ok := extra(args); ok {
			return out, errOut, code
		}
		switch {
		case slices.Equal(args[:2], []string{"stack", "select"}):
			return "", "error: no stack named 'dev' found", 255
		case slices.Equal(args[:2], []string{"stack", "init"}), slices.Equal(args[:2], []string{"plugin", "install"}):
			return "", "", 0
		case slices.Equal(args[:2], []string{"plugin", "ls"}):
			return "[]", "", 0 // nothing installed
		case slices.Equal(args[:2], []string{"stack", "export"}):
			return `{"version":3,"deployment":{}}`, "", 0 // a new stack: no resources
		}
		return "", "error: unexpected command " + strings.Join(args, " "), 1
	}
}

func TestOutputsThroughTheCLI(t *testing.T) {
	dir := project(t, "Pulumi.dev.yaml")
	cli := &fakeCLI{answer: newStackScript(func(args []string) (string, string, int, bool) {
		if slices.Equal(args[:2], []string{"stack", "output"}) {
			if slices.Contains(args, "--show-secrets") {
				return `{"hostname":"edge.dev.example.com","clientCertificates":{"web-app":"PEM"}}`, "", 0, true
			}
			return `{"hostname":"edge.dev.example.com","clientCertificates":"[secret]"}`, "", 0, true
		}
		return "", "", 0, false
	})}
	out, err := stacks.Outputs(context.Background(), "dev", stacks.AutoOptions{
		Dir: dir, Command: cli, LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if out["hostname"].Value != "edge.dev.example.com" || out["hostname"].Secret {
		t.Errorf("hostname: %+v", out["hostname"])
	}
	if certs, ok := out["clientCertificates"].Value.(map[string]any); !ok || certs["web-app"] != "PEM" || !out["clientCertificates"].Secret {
		t.Errorf("clientCertificates: %+v", out["clientCertificates"])
	}
	if cli.ran("stack", "init", "dev") == nil {
		t.Error("the stack was not created on first use")
	}
	if cli.ran("plugin", "install") != nil {
		t.Error("reading outputs needs no provider plugins")
	}
	wantEnv := stacks.EnvBackendURL + "=file://" + filepath.ToSlash(filepath.Join(dir, stacks.DefaultStateDir))
	for _, c := range cli.calls {
		if c.dir != dir || !slices.Contains(c.env, wantEnv) {
			t.Errorf("%v ran in %q with env %v; want the project directory and %s", c.args, c.dir, c.env, wantEnv)
		}
	}
}

// Up runs the program inline, in the project directory (so the CLI reads Pulumi.<stack>.yaml),
// after installing the providers; a CLI failure comes back naming the operation and the stack.
func TestUpRunsInlineAndReportsFailure(t *testing.T) {
	dir := project(t, "Pulumi.dev.yaml")
	cli := &fakeCLI{answer: newStackScript(func(args []string) (string, string, int, bool) {
		if args[0] == "up" {
			return "", "error: no credentials", 1, true
		}
		return "", "", 0, false
	})}
	var seen int
	_, err := stacks.Up(context.Background(), "dev", stacks.AutoOptions{
		Dir: dir, Command: cli, LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"}),
		OnEvent: func(events.EngineEvent) { seen++ },
	})
	checkErr(t, err, "up stack dev")
	checkErr(t, err, "no credentials")
	up := cli.ran("up")
	if up == nil {
		t.Fatal("no `pulumi up`")
	}
	joined := strings.Join(up.args, " ")
	for _, want := range []string{"--stack dev", "--exec-kind=auto.inline", "--client=", "--event-log"} {
		if !strings.Contains(joined, want) {
			t.Errorf("pulumi %s: lacks %q", joined, want)
		}
	}
	plugins, err := stacks.RequiredPlugins(repoDir())
	if err != nil || len(plugins) == 0 {
		t.Fatalf("plugins %v: %v", plugins, err)
	}
	for _, p := range plugins {
		if cli.ran("plugin", "install", "resource", p.Name, p.Version) == nil {
			t.Errorf("provider %s %s was not installed before up", p.Name, p.Version)
		}
	}
}

// A local stack needs the kubernetes and tls providers only (offline, no AWS plugin), and a
// provider already installed at the program's version is not installed again.
func TestLocalStackInstallsOnlyMissingProviders(t *testing.T) {
	dir := project(t, "Pulumi.local.yaml")
	plugins, err := stacks.RequiredPlugins(repoDir())
	if err != nil {
		t.Fatal(err)
	}
	var kubernetesVersion string
	for _, p := range plugins {
		if p.Name == "kubernetes" {
			kubernetesVersion = strings.TrimPrefix(p.Version, "v")
		}
	}
	cli := &fakeCLI{answer: newStackScript(func(args []string) (string, string, int, bool) {
		switch {
		case slices.Equal(args[:2], []string{"plugin", "ls"}):
			return `[{"name":"kubernetes","kind":"resource","version":"` + kubernetesVersion + `"}]`, "", 0, true
		case args[0] == "preview":
			return "", "error: stop here", 1, true
		}
		return "", "", 0, false
	})}
	_, _ = stacks.Preview(context.Background(), "local", stacks.AutoOptions{
		Dir: dir, Command: cli, LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"}),
	})
	var installed []string
	for _, c := range cli.calls {
		if len(c.args) > 3 && c.args[0] == "plugin" && c.args[1] == "install" {
			installed = append(installed, c.args[3])
		}
	}
	if !slices.Equal(installed, []string{"tls"}) {
		t.Errorf("local stack installed %v; want only the missing tls provider", installed)
	}
}

// Without the Pulumi CLI the error says so, and what works without it.
func TestNoPulumiCLI(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := stacks.Preview(context.Background(), "dev", stacks.AutoOptions{
		Dir: project(t, "Pulumi.dev.yaml"), LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"}),
	})
	if !errors.Is(err, stacks.ErrNoPulumiCLI) || !strings.Contains(err.Error(), "ztedge render") {
		t.Errorf("got %v", err)
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("error %v; want one containing %q", err, want)
	}
}
