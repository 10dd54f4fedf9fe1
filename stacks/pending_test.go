package stacks_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ztedge/ztedge/stacks"
)

const (
	pendingProvider = "urn:pulumi:dev::ztedge::pulumi:providers:kubernetes::local"
	pendingService  = "urn:pulumi:dev::ztedge::ztedge:auth:AuthService$kubernetes:core/v1:Service::jwt-auth"
	pendingKey      = "urn:pulumi:dev::ztedge::tls:index/privateKey:PrivateKey::pki-ca"
)

// interruptedState is a state a killed run left: the provider exists, a Service and a key were
// being created.
func interruptedState() map[string]any {
	svc := map[string]any{"urn": pendingService, "type": "kubernetes:core/v1:Service", "custom": true,
		"provider": pendingProvider + "::p1",
		"inputs":   map[string]any{"metadata": map[string]any{"name": "jwt-auth", "namespace": "ambassador", "labels": map[string]any{"app.kubernetes.io/managed-by": "pulumi"}}}}
	key := map[string]any{"urn": pendingKey, "type": "tls:index/privateKey:PrivateKey", "custom": true, "inputs": map[string]any{"algorithm": "ECDSA"}}
	return map[string]any{
		"resources":          []any{map[string]any{"urn": pendingProvider, "id": "p1", "type": "pulumi:providers:kubernetes", "custom": true}},
		"pending_operations": []any{map[string]any{"type": "creating", "resource": svc}, map[string]any{"type": "creating", "resource": key}},
	}
}

// stateCLI is a fake CLI with a stack whose state export returns, and import replaces.
type stateCLI struct {
	mu    sync.Mutex
	state map[string]any
}

func (s *stateCLI) answer(args []string) (string, string, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case slices.Equal(args[:2], []string{"stack", "select"}):
		return "", "", 0, true
	case slices.Equal(args[:2], []string{"stack", "export"}):
		b, _ := json.Marshal(map[string]any{"version": 3, "deployment": s.state})
		return string(b), "", 0, true
	case slices.Equal(args[:2], []string{"stack", "import"}):
		b, err := os.ReadFile(args[slices.Index(args, "--file")+1])
		var doc struct {
			Deployment map[string]any `json:"deployment"`
		}
		if err != nil || json.Unmarshal(b, &doc) != nil {
			return "", "bad import file", 1, true
		}
		s.state = doc.Deployment
		return "", "", 0, true
	case args[0] == "refresh", args[0] == "up":
		return "", "", 0, true
	case slices.Equal(args[:2], []string{"stack", "output"}):
		return "{}", "", 0, true
	case slices.Equal(args[:2], []string{"stack", "history"}): // the SDK reads the result's summary
		return `[{"version":1,"kind":"refresh","result":"succeeded","resourceChanges":{}}]`, "", 0, true
	}
	return "", "", 0, false
}

func TestUpRefusesPendingOperations(t *testing.T) {
	dir := project(t, "Pulumi.dev.yaml")
	st := &stateCLI{state: interruptedState()}
	cli := &fakeCLI{answer: newStackScript(st.answer)}
	_, err := stacks.Up(context.Background(), "dev", stacks.AutoOptions{Dir: dir, Command: cli, LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"})})
	var pending *stacks.PendingError
	if !errors.As(err, &pending) || len(pending.Ops) != 2 {
		t.Fatalf("want the two pending operations, got %v", err)
	}
	for _, want := range []string{"creating Service jwt-auth (kubernetes:core/v1:Service)", "creating PrivateKey pki-ca", "ztedge up --stack dev --repair"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if cli.ran("up") != nil {
		t.Error("up ran over pending operations (it would fail \"already exists\")")
	}
}

// --repair puts the Kubernetes create back under its real ID, refreshes exactly it, clears the
// key's create, leaves no pending operation, and then runs up.
func TestUpRepairResolvesPendingOperations(t *testing.T) {
	dir := project(t, "Pulumi.dev.yaml")
	st := &stateCLI{state: interruptedState()}
	cli := &fakeCLI{answer: newStackScript(st.answer)}
	var notes strings.Builder
	_, err := stacks.Up(context.Background(), "dev", stacks.AutoOptions{Dir: dir, Command: cli, Repair: true, Notices: &notes,
		LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"})})
	if err != nil {
		t.Fatal(err)
	}
	if ops, _ := st.state["pending_operations"].([]any); len(ops) != 0 {
		t.Errorf("pending operations left: %v", ops)
	}
	var svcID any
	for _, r := range st.state["resources"].([]any) {
		m := r.(map[string]any)
		if m["urn"] == pendingKey {
			t.Error("the key's pending create was put in the state (it never existed outside it)")
		}
		if m["urn"] == pendingService {
			svcID = m["id"]
		}
	}
	if svcID != "ambassador/jwt-auth" {
		t.Errorf("the Service is in the state with ID %v; want ambassador/jwt-auth", svcID)
	}
	refresh := cli.ran("refresh")
	if refresh == nil || !slices.Contains(refresh.args, "--target="+pendingService) || strings.Contains(strings.Join(refresh.args, " "), pendingKey) {
		t.Errorf("want a refresh targeting the Service only, got %v", refresh)
	}
	if cli.ran("up") == nil {
		t.Error("up did not run after the repair")
	}
	for _, want := range []string{"Service jwt-auth (kubernetes:core/v1:Service): exists, back in the state", "PrivateKey pki-ca (tls:index/privateKey:PrivateKey): cleared"} {
		if !strings.Contains(notes.String(), want) {
			t.Errorf("repair report lacks %q:\n%s", want, notes.String())
		}
	}
}

// A dead run's lock (file backend) is named before anything else, with what to do.
func TestUpNamesADeadRunsLock(t *testing.T) {
	dir := project(t, "Pulumi.dev.yaml")
	locks := filepath.Join(dir, stacks.DefaultStateDir, ".pulumi", "locks", "organization", "ztedge", "dev")
	if err := os.MkdirAll(locks, 0o700); err != nil {
		t.Fatal(err)
	}
	lock := `{"pid":4242,"username":"ops","hostname":"ci-7","timestamp":"2026-12-02T10:00:00Z"}`
	if err := os.WriteFile(filepath.Join(locks, "abc.json"), []byte(lock), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := &fakeCLI{answer: newStackScript((&stateCLI{state: map[string]any{}}).answer)}
	_, err := stacks.Up(context.Background(), "dev", stacks.AutoOptions{Dir: dir, Command: cli, LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"})})
	var locked *stacks.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("want a LockedError, got %v", err)
	}
	for _, want := range []string{"is locked by another run", "ops@ci-7 (pid 4242)", "ztedge cancel --stack dev", "--repair"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// A CLI failure is reported by its first line and stderr, not the CLI's whole stdout.
func TestUpErrorLeavesOutTheCLIOutput(t *testing.T) {
	dir := project(t, "Pulumi.dev.yaml")
	st := &stateCLI{state: map[string]any{}}
	cli := &fakeCLI{answer: newStackScript(func(args []string) (string, string, int, bool) {
		if args[0] == "up" {
			return strings.Repeat("Updating (dev):\n", 300), "error: update failed", 255, true
		}
		return st.answer(args)
	})}
	_, err := stacks.Up(context.Background(), "dev", stacks.AutoOptions{Dir: dir, Command: cli, LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"})})
	if err == nil || !strings.Contains(err.Error(), "error: update failed") || strings.Contains(err.Error(), "Updating (dev)") {
		t.Fatalf("want the stderr without the stdout, got %v", err)
	}
}

// --repair puts back the previous checkpoint when a killed run left the state file cut short.
func TestUpRepairRestoresACutShortCheckpoint(t *testing.T) {
	dir := project(t, "Pulumi.dev.yaml")
	stacksDir := filepath.Join(dir, stacks.DefaultStateDir, ".pulumi", "stacks", "ztedge")
	if err := os.MkdirAll(stacksDir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(stacksDir, "dev.json")
	previous := `{"version":3,"checkpoint":{"stack":"organization/ztedge/dev"}}`
	if os.WriteFile(file, []byte(`{"version":3,"checkp`), 0o600) != nil || os.WriteFile(file+".bak", []byte(previous), 0o600) != nil {
		t.Fatal("writing the checkpoints")
	}
	st := &stateCLI{state: map[string]any{}}
	cli := &fakeCLI{answer: newStackScript(st.answer)}
	var notes strings.Builder
	if _, err := stacks.Up(context.Background(), "dev", stacks.AutoOptions{Dir: dir, Command: cli, Repair: true, Notices: &notes,
		LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"})}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != previous {
		t.Errorf("the checkpoint is %q; want the previous one back", b)
	}
	if kept, _ := filepath.Glob(file + ".truncated-*"); len(kept) != 1 {
		t.Errorf("the cut-short checkpoint was not kept aside: %v", kept)
	}
	if !strings.Contains(notes.String(), "restored the previous checkpoint") {
		t.Errorf("the repair does not say it restored the checkpoint:\n%s", notes.String())
	}
}
