package stacks

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// A terminal's Ctrl-C signals its whole foreground process group. The Automation API starts the
// Pulumi CLI in ztedge's group and interrupts it again when the context ends, so one Ctrl-C
// reached the CLI twice, and the CLI's second interrupt is its hard stop ("terminating"): the
// state kept pending creates of objects that existed. ztedge therefore runs the CLI in a process
// group of its own (the terminal's signals reach ztedge only) and relays interrupts itself:
// the first as one SIGINT (the CLI finishes the steps in flight, saves the state and exits), a
// cancelled context as the hard stop.

// ErrInterrupted is returned for a CLI run refused because the user interrupted ztedge before it
// started: nothing was changed by it.
var ErrInterrupted = errors.New("interrupted before Pulumi started; nothing was changed")

// Interrupts relays a user's interrupt to the Pulumi CLI runs of this process. The zero value
// is not usable; NewInterrupts makes one.
type Interrupts struct {
	mu          sync.Mutex
	running     map[*os.Process]bool
	interrupted bool
}

// NewInterrupts returns an Interrupts with nothing running.
func NewInterrupts() *Interrupts { return &Interrupts{running: map[*os.Process]bool{}} }

// Interrupt asks every running CLI to stop after the steps in flight, and refuses to start new
// runs until Resume. It reports whether a CLI was running.
func (i *Interrupts) Interrupt() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.interrupted = true
	for p := range i.running {
		_ = interruptCLI(p)
	}
	return len(i.running) > 0
}

// Interrupted reports whether Interrupt was called since the last Resume.
func (i *Interrupts) Interrupted() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.interrupted
}

// Resume allows CLI runs again (to read the state after an interrupted operation).
func (i *Interrupts) Resume() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.interrupted = false
}

func (i *Interrupts) start(cmd *exec.Cmd) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.interrupted {
		return ErrInterrupted
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	i.running[cmd.Process] = true
	return nil
}

func (i *Interrupts) finished(p *os.Process) {
	i.mu.Lock()
	defer i.mu.Unlock()
	delete(i.running, p)
}

// hardStopGrace is how long the CLI has to exit after its hard stop before its process group
// (the CLI and its provider plugins) is killed.
const hardStopGrace = 10 * time.Second

// cliCommand runs the Pulumi CLI at path like the SDK's own command does (non-interactive, the
// Automation API's environment), but in its own process group, with interrupts from intr; the
// context's end is the hard stop.
type cliCommand struct {
	path    string
	version semver.Version
	intr    *Interrupts
}

// newCLICommand wraps the CLI found by the SDK (cmd) at path.
func newCLICommand(cmd auto.PulumiCommand, path string, intr *Interrupts) auto.PulumiCommand {
	if intr == nil {
		intr = NewInterrupts()
	}
	return cliCommand{path: path, version: cmd.Version(), intr: intr}
}

func (c cliCommand) Version() semver.Version { return c.version }

func (c cliCommand) Run(ctx context.Context, workdir string, stdin io.Reader, additionalOutput, additionalErrorOutput []io.Writer,
	additionalEnv []string, args ...string,
) (string, string, int, error) {
	if !slices.Contains(args, "--non-interactive") {
		args = append([]string{"--non-interactive"}, args...)
	}
	cmd := exec.Command(c.path, args...) //nolint:gosec // the CLI the user has, with the SDK's arguments
	cmd.Dir, cmd.Stdin = workdir, stdin
	cmd.Env = append(append(os.Environ(), additionalEnv...), "PULUMI_AUTOMATION_API=true")
	// The SDK puts the CLI's own directory first on PATH (its language hosts live beside it).
	cmd.Env = append(cmd.Env, "PATH="+filepath.Dir(c.path)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout, stderr strings.Builder
	cmd.Stdout = io.MultiWriter(append(additionalOutput, &stdout)...)
	cmd.Stderr = io.MultiWriter(append(additionalErrorOutput, &stderr)...)
	cmd.SysProcAttr = ownProcessGroup()
	if err := c.intr.start(cmd); err != nil {
		return "", "", -2, err
	}
	defer c.intr.finished(cmd.Process)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// The hard stop: a second interrupt makes the CLI terminate at once; its group is
		// killed if it has not exited after hardStopGrace.
		_ = interruptCLI(cmd.Process)
		select {
		case err = <-done:
		case <-time.After(hardStopGrace):
			killGroup(cmd.Process)
			err = <-done
		}
	}
	code := -2
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err == nil {
		code = 0
	}
	return stdout.String(), stderr.String(), code, err
}
