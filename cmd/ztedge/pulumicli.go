package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/ztedge/ztedge/stacks"
)

// installFlag adds --install-pulumi to a command that runs the Pulumi CLI, and returns what to do
// when the CLI is missing: install without asking with the flag; otherwise ask on a terminal; with
// neither (CI, a pipe) fail with the error that names the flag, never install unasked.
func installFlag(fs *flag.FlagSet, stderr io.Writer) func() stacks.CLIInstall {
	always := fs.Bool("install-pulumi", false, "if the Pulumi CLI is missing, install Pulumi "+stacks.PinnedPulumiVersion()+" into the Pulumi home without asking")
	return func() stacks.CLIInstall {
		return stacks.CLIInstall{Offer: offerInstall(*always, os.Stdin, term.IsTerminal(int(os.Stdin.Fd())), stderr)}
	}
}

// offerInstall asks on stderr and reads the answer from in (only when interactive); yes is y or yes.
func offerInstall(always bool, in io.Reader, interactive bool, stderr io.Writer) func(root string) bool {
	return func(root string) bool {
		if always {
			fmt.Fprintf(stderr, "Installing the Pulumi CLI %s into %s\n", stacks.PinnedPulumiVersion(), root)
			return true
		}
		if !interactive {
			return false
		}
		fmt.Fprintf(stderr, "The Pulumi CLI is not on PATH. Install Pulumi %s into %s now? [y/N] ", stacks.PinnedPulumiVersion(), root)
		answer, _ := bufio.NewReader(in).ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(answer)) {
		case "y", "yes":
			return true
		}
		return false
	}
}
