package stacks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// The Automation API runs the Pulumi CLI for every operation. ztedge finds it on PATH, else in the
// user's Pulumi home at the version the program was built with (PinnedPulumiVersion); when neither
// is there it can install that version into the Pulumi home (auto.InstallPulumiCommand), after
// asking: a fresh machine's first `ztedge up` works without a separate install step.

// PinnedPulumiVersion is the CLI version ztedge installs: the version of the Pulumi SDK it is
// built with, the one the Automation API is tested against (and the e2e tier pins).
func PinnedPulumiVersion() string { return sdk.Version.String() }

// ErrNoPulumiCLI is returned when the Pulumi CLI is not on PATH nor in the Pulumi home, and
// installing it was declined (or not offered: no terminal and no --install-pulumi).
var ErrNoPulumiCLI = errors.New("the Pulumi CLI is not on PATH: preview, up, destroy, refresh and outputs run it " +
	"(install it: https://www.pulumi.com/docs/install/, or let ztedge install Pulumi " + PinnedPulumiVersion() +
	" into your Pulumi home with --install-pulumi); `ztedge render` works without it")

// CLIInstall says what to do when the Pulumi CLI is missing. The zero value installs nothing.
type CLIInstall struct {
	// Offer is asked, with the directory it would install into, whether to install the pinned
	// CLI there; nil means never (the command fails with ErrNoPulumiCLI).
	Offer func(root string) bool
	// Install installs the CLI into root; nil means auto.InstallPulumiCommand (which downloads
	// https://get.pulumi.com/install.sh and runs it for the pinned version). Tests replace it.
	Install func(ctx context.Context, root string) (auto.PulumiCommand, error)
}

// PulumiHomeInstallRoot is where ztedge installs, and looks for, the pinned CLI:
// $PULUMI_HOME/versions/<version>, or ~/.pulumi/versions/<version> (the Automation API's default).
func PulumiHomeInstallRoot(lookup func(string) (string, bool)) (string, error) {
	home, ok := lookup("PULUMI_HOME")
	if !ok || home == "" {
		userHome, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the Pulumi home (set PULUMI_HOME): %w", err)
		}
		home = filepath.Join(userHome, ".pulumi")
	}
	return filepath.Join(home, "versions", PinnedPulumiVersion()), nil
}

// findPulumiCLI returns the CLI from PATH, else the pinned version installed in the Pulumi home,
// else installs it there if c.Offer agrees.
// The command runs in a process group of its own, interrupted through intr (stacks/interrupt.go).
func (c CLIInstall) findPulumiCLI(ctx context.Context, lookup func(string) (string, bool), intr *Interrupts) (auto.PulumiCommand, error) {
	if path, err := exec.LookPath("pulumi"); err == nil {
		cmd, err := auto.NewPulumiCommand(nil)
		if err != nil {
			return nil, fmt.Errorf("the Pulumi CLI: %w", err)
		}
		return newCLICommand(cmd, path, intr), nil
	}
	root, err := PulumiHomeInstallRoot(lookup)
	if err != nil {
		return nil, err
	}
	inRoot := filepath.Join(root, "bin", "pulumi")
	if cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root, Version: sdk.Version}); err == nil {
		return newCLICommand(cmd, inRoot, intr), nil
	}
	if c.Offer == nil || !c.Offer(root) {
		return nil, ErrNoPulumiCLI
	}
	install := c.Install
	if install == nil {
		install = func(ctx context.Context, root string) (auto.PulumiCommand, error) {
			return auto.InstallPulumiCommand(ctx, &auto.PulumiCommandOptions{Root: root, Version: sdk.Version})
		}
	}
	cmd, err := install(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("installing the Pulumi CLI %s into %s: %w (install it by hand: https://www.pulumi.com/docs/install/)",
			PinnedPulumiVersion(), root, err)
	}
	if c.Install == nil { // a test's fake installer returns a fake command
		return newCLICommand(cmd, inRoot, intr), nil
	}
	return cmd, nil
}
