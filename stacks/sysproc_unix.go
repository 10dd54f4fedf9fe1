//go:build unix

package stacks

import (
	"os"
	"syscall"
)

// interruptCLI sends the CLI (not its group: the CLI stops its plugins itself) one SIGINT.
func interruptCLI(p *os.Process) error { return p.Signal(os.Interrupt) }

// killGroup kills the CLI and every plugin it started (they share its process group).
func killGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
