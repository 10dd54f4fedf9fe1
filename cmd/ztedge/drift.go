package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/ztedge/ztedge/stacks"
)

const driftHelp = `
Reads the real state of every resource of the stack (a refresh that changes nothing) and
compares it with what the stack's program and configuration want. Exits 0 when they match, 1
naming every resource that differs (deleted, edited, or a configuration change not yet applied),
2 when the command or configuration is wrong. The scheduled workflow (.github/workflows/drift.yml)
runs it per stack. ` + "`ztedge up --stack <stack> --refresh`" + ` restores what drifted.

For this edge the dangerous drift is a deleted or edited AuthService or Mapping: Emissary then
serves routes without the token check, and nothing else says so.
` + deployEnv

func runDrift(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("drift", driftHelp, "  ztedge drift --stack prod", stderr)
	stack := fs.String("stack", "", "stack to check (required)")
	dir := fs.String("dir", "", "project directory with Pulumi.yaml (default: found upward from the working directory)")
	install := installFlag(fs, stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireStack(*stack); err != nil {
		return err
	}
	var d drifted
	o := stacks.AutoOptions{Dir: *dir, Refresh: true, InstallCLI: install(), Notices: stdout, Interrupts: interrupts, OnEvent: d.event}
	start := time.Now()
	if _, err := stacks.Preview(ctx, *stack, o); err != nil {
		return classify(err)
	}
	if len(d.list) == 0 {
		fmt.Fprintf(stdout, "no drift: every resource of stack %s matches (%s)\n", *stack, time.Since(start).Round(time.Second))
		return nil
	}
	sort.Strings(d.list)
	return fmt.Errorf("drift: %d resource(s) of stack %s differ from what it wants:\n  - %s\nRestore them with `ztedge up --stack %s --refresh` (review first: `ztedge preview --stack %s --refresh --verbose --diff`)",
		len(d.list), *stack, strings.Join(d.list, "\n  - "), *stack, *stack)
}

// drifted collects the steps a refreshing preview plans: each is a difference.
type drifted struct {
	mu   sync.Mutex
	list []string
}

func (d *drifted) event(ev events.EngineEvent) {
	if ev.ResourcePreEvent == nil {
		return
	}
	m := ev.ResourcePreEvent.Metadata
	if m.Op == apitype.OpSame || m.Op == apitype.OpRefresh || m.Op == apitype.OpRead || m.Type == "pulumi:pulumi:Stack" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.list = append(d.list, fmt.Sprintf("%s (would %s)", describe(m.URN), m.Op))
}
