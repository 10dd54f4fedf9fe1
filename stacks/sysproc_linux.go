//go:build linux

package stacks

import "syscall"

// ownProcessGroup puts the CLI in a process group of its own, so a terminal's Ctrl-C reaches
// ztedge only; should ztedge die, the CLI gets the interrupt ztedge can no longer send.
func ownProcessGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT}
}
