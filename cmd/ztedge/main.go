// Command ztedge operates the ztedge edge: render a stack offline, preview/deploy/destroy it
// through the Pulumi Automation API, and run the acceptance checks against a deployed edge.
//
// Run `ztedge help` (or `go run ./cmd/ztedge help`) for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ztedge/ztedge/stacks"
)

// Exit statuses: 0 success, 1 the operation or a check failed, 2 the command line or the stack
// configuration is wrong (nothing was attempted).
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError marks an error the user can fix by changing the command line or the configuration.
type usageError struct{ error }

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"render", "write a stack's Kubernetes objects, Helm releases, AWS summary and graph (offline)", runRender},
		{"preview", "show what `up` would change (Pulumi CLI + cloud credentials)", deployCommand(opPreview)},
		{"up", "create or update a stack's resources", deployCommand(opUp)},
		{"destroy", "delete every resource of a stack", deployCommand(opDestroy)},
		{"refresh", "read the real state of a stack's resources into its state", deployCommand(opRefresh)},
		{"drift", "exit 1 naming every resource that differs from the stack (a scheduled check)", runDrift},
		{"cancel", "release the lock a killed or lost run left on a stack", runCancel},
		{"outputs", "print a stack's outputs (secrets hidden unless --show-secrets)", runOutputs},
		{"certs", "list the stack's certificates and signing keys with expiry and next renewal", runCerts},
		{"smoke", "run the acceptance checks against a deployed edge", runSmoke},
	}
}

const intro = `ztedge — operate the zero-trust edge.

Usage:
  ztedge <command> [flags]
  ztedge <command> --help     flags of one command

Commands:
%s
Start here:
  ztedge render --stack dev                 # no cloud, no Pulumi CLI: see what dev would create in out/dev/
  export PULUMI_CONFIG_PASSPHRASE=...       # encrypts the stack's secrets (state: ./.pulumi-state unless PULUMI_BACKEND_URL)
  ztedge preview --stack dev                # needs the Pulumi CLI and AWS credentials
  ztedge up --stack dev
  ztedge smoke --stack dev                  # mTLS, token, HTTP and TLS 1.2 rejection checks

More: docs/operate.md.
`

func usage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, intro, b.String())
}

// interrupts relays Ctrl-C to the Pulumi CLI runs of the deploy commands (stacks/interrupt.go).
var interrupts = stacks.NewInterrupts()

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go relaySignals(sigs, interrupts, cancel, os.Stderr)
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// relaySignals handles SIGINT and SIGTERM (from a terminal's Ctrl-C, to the process or its
// group): the first lets a running Pulumi operation stop after the steps in flight with its state
// saved (or, with none running, stops the command); the second is the hard stop.
func relaySignals(sigs <-chan os.Signal, intr *stacks.Interrupts, cancel func(), w io.Writer) {
	first := true
	for sig := range sigs {
		switch {
		case first && intr.Interrupt():
			fmt.Fprintf(w, "\nztedge: %v: asking Pulumi to stop after the steps in flight and save the state; waiting for it "+
				"(seconds for Kubernetes objects, minutes for an EKS cluster).\n"+
				"ztedge: press Ctrl-C again to stop at once (steps in flight then stay pending: `ztedge up --repair` resolves them).\n", sig)
		case first:
			cancel()
		default:
			fmt.Fprintf(w, "\nztedge: second %v: stopping at once.\n", sig)
			cancel()
		}
		first = false
	}
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			return run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "ztedge %s: %v\n", c.name, err)
			return exitUsage
		default:
			fmt.Fprintf(stderr, "ztedge %s: %v\n", c.name, err)
			return exitFail
		}
	}
	fmt.Fprintf(stderr, "ztedge: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// newFlags makes a command's flag set; its --help prints the description, the flags and examples.
func newFlags(name, description, examples string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ztedge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ztedge %s [flags]\n\n%s\n\nFlags:\n", name, strings.TrimSpace(description))
		fs.PrintDefaults()
		if examples != "" {
			fmt.Fprintf(stderr, "\nExamples:\n%s\n", strings.TrimRight(examples, "\n"))
		}
	}
	return fs
}

// parse parses flags, turning mistakes into usage errors and refusing stray arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (flags only; see --help)", fs.Arg(0))}
	}
	return nil
}

func requireStack(stack string) error {
	if stack == "" {
		return usageError{errors.New("--stack is required (dev, prod, local, or any Pulumi.<stack>.yaml)")}
	}
	return nil
}
