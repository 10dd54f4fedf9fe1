package stacks_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/stacks"
)

// runningState is the state of a deployed stack whose edge component is of type component.
func runningState(component string) map[string]any {
	return map[string]any{"resources": []any{
		map[string]any{"urn": "urn:pulumi:local::ztedge::pulumi:pulumi:Stack::ztedge-local", "type": "pulumi:pulumi:Stack"},
		map[string]any{"urn": "urn:pulumi:local::ztedge::" + component + "::edge", "type": component},
	}}
}

// localProject is a project with the local stack file, ztedge:engine set to engine ("": unset).
func localProject(t *testing.T, engine string) string {
	t.Helper()
	dir := project(t, "Pulumi.local.yaml")
	if engine == "" {
		return dir
	}
	file := filepath.Join(dir, "Pulumi.local.yaml")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "config:\n", "config:\n  ztedge:engine: "+engine+"\n", 1))
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A stack that runs one engine is not switched to the other by preview or up: both stop before
// the CLI runs, name the key, both engines and the way to move.
func TestEngineSwitchIsRefused(t *testing.T) {
	cases := []struct{ running, component, configured string }{
		{stacks.EngineEmissary, "ztedge:ambassador:Ambassador", stacks.EngineEnvoyGateway},
		{stacks.EngineEnvoyGateway, "ztedge:edge:EnvoyGateway", ""}, // unset: the default, emissary
	}
	for _, c := range cases {
		want := c.configured
		if want == "" {
			want = stacks.EngineEmissary
		}
		t.Run(c.running+" to "+want, func(t *testing.T) {
			dir := localProject(t, c.configured)
			for _, op := range []string{"preview", "up"} {
				cli := &fakeCLI{answer: newStackScript((&stateCLI{state: runningState(c.component)}).answer)}
				o := stacks.AutoOptions{Dir: dir, Command: cli, LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"})}
				var err error
				if op == "preview" {
					_, err = stacks.Preview(context.Background(), "local", o)
				} else {
					_, err = stacks.Up(context.Background(), "local", o)
				}
				var sw *stacks.EngineSwitchError
				if !errors.As(err, &sw) || sw.Running != c.running || sw.Configured != want {
					t.Fatalf("%s: want an EngineSwitchError from %s to %s, got %v", op, c.running, want, err)
				}
				for _, text := range []string{"stack local runs engine " + c.running, "ztedge:engine: " + want,
					"set ztedge:engine back to " + c.running, "ztedge smoke", "ztedge destroy --stack local", "README, Engines"} {
					if !strings.Contains(err.Error(), text) {
						t.Errorf("%s: the refusal lacks %q:\n%v", op, text, err)
					}
				}
				if cli.ran(op) != nil {
					t.Errorf("%s ran: the switch reached the engine", op)
				}
			}
		})
	}
}

// The same engine, and a new stack, go through.
func TestEngineUnchangedGoesThrough(t *testing.T) {
	for name, state := range map[string]map[string]any{
		"same engine": runningState("ztedge:edge:EnvoyGateway"),
		"new stack":   {},
	} {
		t.Run(name, func(t *testing.T) {
			cli := &fakeCLI{answer: newStackScript((&stateCLI{state: state}).answer)}
			o := stacks.AutoOptions{Dir: localProject(t, stacks.EngineEnvoyGateway), Command: cli, LookupEnv: env(map[string]string{stacks.EnvPassphrase: "p"})}
			if _, err := stacks.Up(context.Background(), "local", o); err != nil {
				t.Fatal(err)
			}
			if cli.ran("up") == nil {
				t.Error("up did not run")
			}
		})
	}
}
