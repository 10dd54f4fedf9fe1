package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ztedge/ztedge/stacks"
)

const cancelHelp = `
Releases the lock that a run holds on the stack while it changes it (` + "`pulumi cancel`" + `). A run
that was killed (SIGKILL, a closed laptop, a lost CI machine) leaves its lock behind and every
later operation fails naming it. Refused while the run that holds the lock is still alive on this
machine (stop it with Ctrl-C instead), unless --force.

After the lock is released, the dead run's steps in flight may still be pending in the state:
` + "`ztedge up --stack <stack> --repair`" + ` resolves them.
` + deployEnv

func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cancel", cancelHelp, "  ztedge cancel --stack dev\n  ztedge up --stack dev --repair", stderr)
	stack := fs.String("stack", "", "stack whose lock to release (required)")
	dir := fs.String("dir", "", "project directory with Pulumi.yaml (default: found upward from the working directory)")
	force := fs.Bool("force", false, "release the lock even though its process still runs on this machine")
	install := installFlag(fs, stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireStack(*stack); err != nil {
		return err
	}
	if err := stacks.Cancel(ctx, *stack, *force, stacks.AutoOptions{Dir: *dir, InstallCLI: install()}); err != nil {
		return classify(err)
	}
	fmt.Fprintf(stdout, "released the lock of stack %s; if the run was killed mid-step, run `ztedge up --stack %s --repair` next\n", *stack, *stack)
	return nil
}
