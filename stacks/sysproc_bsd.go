//go:build unix && !linux

package stacks

import "syscall"

// ownProcessGroup puts the CLI in a process group of its own, so a terminal's Ctrl-C reaches
// ztedge only. (Should ztedge die, the CLI loses the program's connection and stops.)
func ownProcessGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
