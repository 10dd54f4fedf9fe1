//go:build linux

package stacks

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ownProcessGroup puts the CLI in a process group of its own, so a terminal's Ctrl-C reaches
// ztedge only; should ztedge die, the CLI gets the interrupt ztedge can no longer send.
func ownProcessGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT}
}

// processRunning reports whether pid is a live process. A killed process whose parent died too
// stays a zombie until init reaps it, and some containers' init never does: it answers
// signal 0 like a live one but holds no lock, so its state in /proc decides.
func processRunning(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, so read after the last ')'.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}
