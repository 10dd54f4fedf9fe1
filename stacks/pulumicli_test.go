package stacks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// fakePulumi writes a `pulumi` that answers `pulumi version` with version into root/bin.
func fakePulumi(t *testing.T, root, version string) {
	t.Helper()
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho v" + version + "\n"
	if err := os.WriteFile(filepath.Join(bin, "pulumi"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// recorder is a CLIInstall whose offer and install are recorded; install fakes the download by
// writing the pinned version's CLI into the root it is given.
type recorder struct {
	answer            bool
	offered, installs []string
	installErr        error
}

func (r *recorder) cliInstall(t *testing.T) CLIInstall {
	return CLIInstall{
		Offer: func(root string) bool { r.offered = append(r.offered, root); return r.answer },
		Install: func(ctx context.Context, root string) (auto.PulumiCommand, error) {
			r.installs = append(r.installs, root)
			if r.installErr != nil {
				return nil, r.installErr
			}
			fakePulumi(t, root, PinnedPulumiVersion())
			return auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root})
		},
	}
}

func TestFindPulumiCLI(t *testing.T) {
	home := t.TempDir()
	root := filepath.Join(home, "versions", PinnedPulumiVersion())
	lookup := func(k string) (string, bool) {
		if k == "PULUMI_HOME" {
			return home, true
		}
		return "", false
	}
	cases := []struct {
		name      string
		installed string // version already in the Pulumi home ("": none)
		rec       *recorder
		wantErr   string
		wantOffer bool
		wantInst  bool
	}{
		{name: "pinned version in the Pulumi home is used, nothing asked", installed: PinnedPulumiVersion(), rec: &recorder{}},
		{name: "missing and nothing offered (no terminal, no flag)", wantErr: "--install-pulumi"},
		{name: "missing, offer declined", rec: &recorder{answer: false}, wantErr: "--install-pulumi", wantOffer: true},
		{name: "missing, offer accepted: installed into the Pulumi home", rec: &recorder{answer: true}, wantOffer: true, wantInst: true},
		{name: "an older CLI in the Pulumi home is not taken", installed: "3.100.0", rec: &recorder{answer: true}, wantOffer: true, wantInst: true},
		{name: "the install fails: the error names where and how to install by hand", rec: &recorder{answer: true, installErr: errors.New("no network")},
			wantErr: "installing the Pulumi CLI " + PinnedPulumiVersion() + " into " + root, wantOffer: true, wantInst: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir()) // no pulumi on PATH
			os.RemoveAll(filepath.Join(home, "versions"))
			if tc.installed != "" {
				fakePulumi(t, root, tc.installed)
			}
			var c CLIInstall
			if tc.rec != nil {
				c = tc.rec.cliInstall(t)
			}
			cmd, err := c.findPulumiCLI(context.Background(), lookup, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if got := cmd.Version().String(); got != PinnedPulumiVersion() {
				t.Errorf("CLI version %s; want the pinned %s", got, PinnedPulumiVersion())
			}
			if tc.rec == nil {
				return
			}
			if offered := len(tc.rec.offered) > 0; offered != tc.wantOffer {
				t.Errorf("offered to install: %v; want %v", offered, tc.wantOffer)
			}
			if installed := len(tc.rec.installs) > 0; installed != tc.wantInst {
				t.Errorf("installed: %v; want %v", installed, tc.wantInst)
			}
			for _, r := range append(tc.rec.offered, tc.rec.installs...) {
				if r != root {
					t.Errorf("offered/installed into %s; want the Pulumi home's %s", r, root)
				}
			}
		})
	}
}
