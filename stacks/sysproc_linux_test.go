//go:build linux

package stacks

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// A run killed with its parent leaves a zombie that answers signal 0: its lock is not live.
func TestProcessRunningSeesThroughZombies(t *testing.T) {
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	pid := sleeper.Process.Pid
	if !processRunning(pid) {
		t.Fatalf("a running sleep (pid %d) is not seen as running", pid)
	}
	_ = sleeper.Process.Kill()
	// Not reaped yet: the process is a zombie until Wait.
	deadline := time.Now().Add(10 * time.Second)
	for processRunning(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p, _ := os.FindProcess(pid); p.Signal(syscall.Signal(0)) != nil {
		t.Fatalf("pid %d was reaped early; the test needs its zombie", pid)
	}
	if processRunning(pid) {
		t.Errorf("the zombie pid %d is seen as a live lock holder", pid)
	}
	_ = sleeper.Wait()
	if processRunning(pid) {
		t.Errorf("a reaped pid %d is seen as running", pid)
	}
}
