package stacks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// An operation holds the stack's lock while it runs; a run that is killed leaves it behind, and
// every later operation fails until someone releases it (Cancel).

// LockedError is an operation refused because another run holds the stack's lock.
type LockedError struct {
	Stack string
	Locks string // the CLI's description of each lock: where, by whom, pid, when
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("stack %s is locked by another run:\n%s\nWait for it to finish. If it is dead (killed, the machine lost), release the lock with "+
		"`ztedge cancel --stack %s`, then run `ztedge up --stack %s --repair`.", e.Stack, e.Locks, e.Stack, e.Stack)
}

// lockError turns the CLI's "currently locked" failure into a LockedError; other errors pass.
func lockError(stack string, err error) error {
	if err == nil || !auto.IsConcurrentUpdateError(err) {
		return err
	}
	var lines []string
	for _, l := range strings.Split(cliStderr(err), "\n") {
		if strings.Contains(l, "created by") || strings.Contains(l, "Another update") {
			lines = append(lines, "  "+strings.TrimSpace(l))
		}
	}
	return &LockedError{Stack: stack, Locks: strings.Join(lines, "\n")}
}

// cliStderr is the CLI's stderr from an Automation API error (whose text is the error, the exit
// code, the CLI's whole stdout, then its stderr), or the whole text when it has no such part.
func cliStderr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "\nstderr: "); i >= 0 {
		return strings.TrimSpace(msg[i+len("\nstderr: "):])
	}
	return msg
}

// summarize shortens an Automation API error to its first line and the CLI's stderr: the CLI's
// stdout (hundreds of lines) has already been shown as progress, the failing steps with it.
func summarize(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	i := strings.Index(msg, "\ncode: ")
	if i < 0 || !strings.Contains(msg, "\nstdout: ") {
		return err
	}
	head, stderr := msg[:i], cliStderr(err)
	lines := strings.Split(stderr, "\n")
	if len(lines) > 20 {
		lines = append([]string{"…"}, lines[len(lines)-20:]...)
	}
	if stderr == "" {
		return &cliError{msg: head, err: err}
	}
	return &cliError{msg: head + "\n" + strings.Join(lines, "\n"), err: err}
}

// cliError is a shortened Automation API error; errors.Is and As still see the original.
type cliError struct {
	msg string
	err error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// lockFile is what the file backend writes for a running operation.
type lockFile struct {
	Pid       int    `json:"pid"`
	Username  string `json:"username"`
	Hostname  string `json:"hostname"`
	Timestamp string `json:"timestamp"`
}

// fileLocks describes each lock file of the stack on a file backend ("" for other backends: the
// CLI reports their locks), as the CLI would: where, by whom, pid, when.
func fileLocks(backendURL, stack string) ([]string, error) {
	files, err := lockFiles(backendURL, stack)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var l lockFile
		_ = json.Unmarshal(b, &l)
		out = append(out, fmt.Sprintf("  %s: created by %s@%s (pid %d) at %s", f, l.Username, l.Hostname, l.Pid, l.Timestamp))
	}
	return out, err
}

func lockFiles(backendURL, stack string) ([]string, error) {
	dir, ok := strings.CutPrefix(backendURL, "file://")
	if !ok {
		return nil, nil
	}
	return filepath.Glob(filepath.Join(filepath.FromSlash(dir), ".pulumi", "locks", "*", "*", stack, "*.json"))
}

// liveLocalLocks names the stack's lock files (file backend) that belong to a process still
// running on this machine: releasing those would let two runs write one state.
func liveLocalLocks(backendURL, stack string) ([]string, error) {
	files, err := lockFiles(backendURL, stack) // none on other backends: their own cancel decides
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	var live []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var l lockFile
		if json.Unmarshal(b, &l) != nil || l.Hostname != host || l.Pid <= 0 {
			continue
		}
		if processRunning(l.Pid) {
			live = append(live, fmt.Sprintf("%s (pid %d of %s, still running)", f, l.Pid, l.Username))
		}
	}
	return live, nil
}

// ErrLiveLock is returned by Cancel when the lock belongs to a run still going on this machine.
var ErrLiveLock = errors.New("the lock belongs to a run that is still going")

// Cancel releases the stack's lock left by a dead run (`pulumi cancel`). It refuses when the
// lock belongs to a process still running on this machine, unless force.
func Cancel(ctx context.Context, stack string, force bool, o AutoOptions) error {
	st, err := o.Resolve(stack, false)
	if err != nil {
		return err
	}
	if live, err := liveLocalLocks(st.BackendURL, stack); err != nil {
		return err
	} else if len(live) > 0 && !force {
		return fmt.Errorf("%w: %s; stop it with Ctrl-C (or wait), or pass --force if it is not a ztedge or pulumi run", ErrLiveLock, strings.Join(live, ", "))
	}
	s, err := o.stack(ctx, stack, readsState)
	if err != nil {
		return err
	}
	return wrap("cancel the run of", stack, summarize(s.Cancel(ctx)))
}

// A run killed while the file backend rewrites the stack's checkpoint can leave it cut short
// ("failed to load checkpoint: EOF"): every later operation fails. The backend copies the
// previous checkpoint to <stack>.json.bak before each write, and the engine records an
// operation as pending before it calls a provider, so that copy is a state --repair can resolve.

// ErrTruncatedCheckpoint is the hint for a checkpoint that does not load.
var ErrTruncatedCheckpoint = errors.New("the stack's state file is cut short (a run was killed while writing it); " +
	"`ztedge up --repair` restores the previous checkpoint (<stack>.json.bak) and resolves its pending operations")

func truncatedCheckpoint(err error) bool {
	return err != nil && strings.Contains(err.Error(), "failed to load checkpoint")
}

// restoreCheckpoint puts <stack>.json.bak back on a file backend when <stack>.json does not parse,
// keeping the cut-short file beside it. It returns what it did ("" when nothing was needed).
func restoreCheckpoint(backendURL, stack string) (string, error) {
	dir, ok := strings.CutPrefix(backendURL, "file://")
	if !ok {
		return "", nil
	}
	files, err := filepath.Glob(filepath.Join(filepath.FromSlash(dir), ".pulumi", "stacks", "*", stack+".json"))
	if err != nil || len(files) != 1 {
		return "", err
	}
	file := files[0]
	if b, err := os.ReadFile(file); err != nil || json.Valid(b) {
		return "", err
	}
	bak, err := os.ReadFile(file + ".bak")
	if err != nil || !json.Valid(bak) {
		return "", fmt.Errorf("%s is cut short and %s.bak is not a readable checkpoint either: restore the state from a backup (.pulumi/backups)", file, file)
	}
	kept := fmt.Sprintf("%s.truncated-%d", file, time.Now().Unix())
	if err := os.Rename(file, kept); err != nil {
		return "", err
	}
	if err := os.WriteFile(file, bak, 0o600); err != nil {
		return "", err
	}
	return fmt.Sprintf("restored the previous checkpoint %s.bak (the cut-short file is kept as %s)", file, kept), nil
}
