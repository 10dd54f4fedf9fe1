package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/ztedge/ztedge/stacks"
)

type operation struct {
	name, help, examples string
	run                  func(ctx context.Context, stack string, o stacks.AutoOptions) error
}

const deployEnv = `
Needs the Pulumi CLI (on PATH, or installed by ztedge: it offers to install the version it is
built with into the Pulumi home when it is missing) and, for the eks platform, AWS
credentials (AWS_PROFILE, or the usual AWS_* variables). The program runs inside this process
with the configuration of Pulumi.<stack>.yaml.

State goes to $PULUMI_BACKEND_URL, or to the file backend in <project>/.pulumi-state when it is not
set. Stack secrets are encrypted with $PULUMI_CONFIG_PASSPHRASE (or the file named by
$PULUMI_CONFIG_PASSPHRASE_FILE): one of them must be set unless the stack uses Pulumi Cloud or a
KMS secrets provider.`

var (
	opPreview = operation{"preview", "Shows what `ztedge up` would create, change or delete, without changing anything.\n" + deployEnv,
		"  ztedge preview --stack dev\n  ztedge preview --stack prod --verbose --diff", discard(stacks.Preview)}
	opUp = operation{"up", "Creates or updates every resource of the stack (the first run of an EKS stack takes about 20 minutes).\n" + deployEnv,
		"  ztedge up --stack dev\n  ztedge up --stack local    # the Kubernetes half only, on your current kubeconfig context", discard(stacks.Up)}
	opDestroy = operation{"destroy", "Deletes every resource of the stack: the load balancer first (through its controller), then the\ncluster and the network. The stack's state and history stay; its configuration file too.\n" + deployEnv,
		"  ztedge destroy --stack dev", discard(stacks.Destroy)}
	opRefresh = operation{"refresh", "Reads the real state of the stack's resources (drift made outside Pulumi) into its state.\n" + deployEnv,
		"  ztedge refresh --stack dev", discard(stacks.Refresh)}
)

// discard adapts an Automation API call to operation.run: the CLI reports through the progress
// display, not the result.
func discard[R any](f func(context.Context, string, stacks.AutoOptions) (R, error)) func(context.Context, string, stacks.AutoOptions) error {
	return func(ctx context.Context, stack string, o stacks.AutoOptions) error {
		_, err := f(ctx, stack, o)
		return err
	}
}

// deployCommand is preview, up, destroy or refresh: the same flags, one Automation API call.
func deployCommand(op operation) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlags(op.name, op.help, op.examples, stderr)
		stack := fs.String("stack", "", "stack to operate on; its configuration is Pulumi.<stack>.yaml (required)")
		dir := fs.String("dir", "", "project directory with Pulumi.yaml (default: found upward from the working directory)")
		verbose := fs.Bool("verbose", false, "print Pulumi's own progress output instead of ztedge's one-line-per-resource display")
		diff := fs.Bool("diff", false, "with --verbose: show property-level diffs (preview, up)")
		install := installFlag(fs, stderr)
		var expectNoChanges, refresh, repair *bool
		var replace urnList
		if op.name == opPreview.name || op.name == opUp.name {
			fs.Var(&replace, "replace", "replace the resource with this `URN` even if nothing changed (repeatable; pulumi stack --show-urns lists the URNs)")
			expectNoChanges = fs.Bool("expect-no-changes", false, "fail if there is anything to change (a drift check, e.g. right after up)")
			refresh = fs.Bool("refresh", false, "read the real state of every resource first, so changes made outside Pulumi show (preview) or are undone (up)")
		}
		if op.name == opUp.name {
			repair = fs.Bool("repair", false, "first resolve the pending operations an interrupted run left: objects that exist go back into the state, the rest are cleared (nothing is deleted)")
		}
		if err := parse(fs, args); err != nil {
			return err
		}
		if err := requireStack(*stack); err != nil {
			return err
		}
		o := stacks.AutoOptions{Dir: *dir, Diff: *diff, ExpectNoChanges: isSet(expectNoChanges), Refresh: isSet(refresh), Repair: isSet(repair), Replace: replace,
			InstallCLI: install(), Notices: stdout, Interrupts: interrupts}
		display := newProgress(stdout, op.name, time.Now)
		if *verbose {
			o.Progress = stdout
		} else {
			o.OnEvent = display.event
			stopTicker := display.tick(30 * time.Second)
			defer stopTicker()
		}
		err := op.run(ctx, *stack, o)
		display.finish(err)
		if interrupts.Interrupted() {
			return afterInterrupt(ctx, *stack, o, stdout)
		}
		return classify(err)
	}
}

func isSet(b *bool) bool { return b != nil && *b }

// urnList is a repeatable flag of resource URNs.
type urnList []string

func (l *urnList) String() string { return strings.Join(*l, ",") }

func (l *urnList) Set(urn string) error {
	if !strings.HasPrefix(urn, "urn:pulumi:") {
		return fmt.Errorf("%q is not a URN (urn:pulumi:<stack>::<project>::<type>::<name>; `pulumi stack --show-urns` lists them)", urn)
	}
	*l = append(*l, urn)
	return nil
}

// afterInterrupt tells the user where an interrupted operation left the stack: clean (run the
// command again), or with pending operations (and how to resolve them).
func afterInterrupt(ctx context.Context, stack string, o stacks.AutoOptions, w io.Writer) error {
	repair := fmt.Sprintf("run `ztedge up --stack %s --repair`", stack)
	if ctx.Err() != nil {
		return fmt.Errorf("stopped at once: steps in flight may stay pending in the state; %s next", repair)
	}
	interrupts.Resume()
	check, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ops, err := stacks.PendingOperations(check, stack, o)
	switch {
	case err != nil:
		return fmt.Errorf("interrupted; reading the state afterwards failed (%v): %s if `ztedge preview` names pending operations", err, repair)
	case len(ops) > 0:
		return fmt.Errorf("interrupted; the state keeps %v", &stacks.PendingError{Stack: stack, Ops: ops})
	}
	fmt.Fprintf(w, "interrupted: Pulumi stopped after the steps in flight and saved the state (no pending operations); run the command again to finish.\n")
	return errors.New("interrupted")
}

// classify makes mistakes that need no cloud round trip (configuration, missing CLI, passphrase,
// stack file) usage errors, so they exit 2.
func classify(err error) error {
	var cfgErr *stacks.ConfigError
	var setupErr *stacks.SetupError
	if errors.As(err, &cfgErr) || errors.As(err, &setupErr) || errors.Is(err, stacks.ErrNoPulumiCLI) {
		return usageError{err}
	}
	return err
}

const outputsHelp = `
Prints the outputs of a deployed stack as JSON (the cluster name, the edge hostname, the CA
certificate, ...). Secret outputs (client certificate bundles) are printed as "[secret]" unless
--show-secrets is given.
` + deployEnv

func runOutputs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("outputs", outputsHelp, "  ztedge outputs --stack dev\n  ztedge outputs --stack dev --show-secrets | jq -r .clientCertificates", stderr)
	stack := fs.String("stack", "", "stack to read (required)")
	dir := fs.String("dir", "", "project directory with Pulumi.yaml (default: found upward from the working directory)")
	showSecrets := fs.Bool("show-secrets", false, "print secret outputs in clear text")
	install := installFlag(fs, stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireStack(*stack); err != nil {
		return err
	}
	out, err := stacks.Outputs(ctx, *stack, stacks.AutoOptions{Dir: *dir, InstallCLI: install()})
	if err != nil {
		return classify(err)
	}
	return writeOutputs(stdout, out, *showSecrets)
}

func writeOutputs(w io.Writer, out auto.OutputMap, showSecrets bool) error {
	plain := make(map[string]any, len(out))
	for k, v := range out {
		plain[k] = v.Value
		if v.Secret && !showSecrets {
			plain[k] = "[secret]"
		}
	}
	b, err := json.MarshalIndent(plain, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
