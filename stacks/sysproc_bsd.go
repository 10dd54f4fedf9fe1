//go:build unix && !linux

package stacks

import (
	"os"
	"syscall"
)

// ownProcessGroup puts the CLI in a process group of its own, so a terminal's Ctrl-C reaches
// ztedge only. (Should ztedge die, the CLI loses the program's connection and stops.)
func ownProcessGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// processRunning reports whether pid is a process this user can signal.
func processRunning(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}
