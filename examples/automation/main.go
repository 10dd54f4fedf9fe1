// Command automation is an example of another Go tool driving ztedge through its Automation API
// (package stacks): it previews a stack, deploys it when asked to, and prints the edge's address.
// A release pipeline or an internal platform portal would do the same.
//
// It needs the Pulumi CLI on PATH, cloud credentials for the stack's platform, and the passphrase
// of the stack's secrets:
//
//	export PULUMI_CONFIG_PASSPHRASE=...        # or PULUMI_CONFIG_PASSPHRASE_FILE
//	go run ./examples/automation -stack dev             # preview only
//	go run ./examples/automation -stack dev -apply      # preview, then up, then print outputs
//
// State goes to $PULUMI_BACKEND_URL, or to .pulumi-state/ in the repository when it is unset.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/ztedge/ztedge/stacks"
)

func main() {
	stack := flag.String("stack", "dev", "stack to operate on (Pulumi.<stack>.yaml)")
	apply := flag.Bool("apply", false, "deploy after the preview (default: preview only)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *stack, *apply); err != nil {
		fmt.Fprintln(os.Stderr, "automation example:", err)
		var cfgErr *stacks.ConfigError
		var setupErr *stacks.SetupError
		if errors.As(err, &cfgErr) || errors.As(err, &setupErr) || errors.Is(err, stacks.ErrNoPulumiCLI) {
			os.Exit(2) // fix the configuration or the environment; nothing was attempted
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, stack string, apply bool) error {
	// Dir is left empty: the project is found upward from the working directory. OnEvent sees each
	// engine event; this tool only reports failed steps (Progress could take Pulumi's own text).
	opts := stacks.AutoOptions{OnEvent: func(ev events.EngineEvent) {
		if f := ev.ResOpFailedEvent; f != nil {
			fmt.Printf("failed: %s %s\n", f.Metadata.Op, f.Metadata.URN)
		}
	}}

	preview, err := stacks.Preview(ctx, stack, opts)
	if err != nil {
		return err
	}
	fmt.Printf("preview of %s:\n", stack)
	ops := make([]string, 0, len(preview.ChangeSummary))
	for op := range preview.ChangeSummary {
		ops = append(ops, string(op))
	}
	sort.Strings(ops)
	for _, op := range ops {
		fmt.Printf("  %-8s %d\n", op, preview.ChangeSummary[apitype.OpType(op)])
	}
	if !apply {
		return nil
	}

	opts.Progress = os.Stdout
	if _, err := stacks.Up(ctx, stack, opts); err != nil {
		return err
	}
	out, err := stacks.Outputs(ctx, stack, stacks.AutoOptions{})
	if err != nil {
		return err
	}
	for _, key := range []string{"hostname", "loadBalancerHostname", "clusterName"} {
		if v, ok := out[key]; ok && !v.Secret {
			fmt.Printf("%s: %v\n", key, v.Value)
		}
	}
	return nil
}
