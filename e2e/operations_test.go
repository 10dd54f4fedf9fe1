//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestInterruptsOnARealEngine: what an operator's Ctrl-C, a killed run and two runs at once do to
// the local stack, each followed by the documented recovery to a clean
// `preview --expect-no-changes` (issue 19).
func TestInterruptsOnARealEngine(t *testing.T) {
	ctx, work, cp, cluster := startTestCluster(t, 30*time.Minute)
	p := newProject(t, filepath.Join(work, "ops"), cp.Kubeconfig)
	ztedge := p.build(t, "./cmd/ztedge")
	// runner runs ztedge in the project, failing the (sub)test t.
	runner := func(t *testing.T) func(time.Duration, ...string) string {
		return func(timeout time.Duration, args ...string) string { return p.run(t, timeout, ztedge, args...) }
	}

	t.Run("Ctrl-C to the process group during the first up", func(t *testing.T) {
		run := runner(t)
		// A terminal's Ctrl-C is SIGINT to the foreground process group: ztedge and, unless
		// ztedge keeps it out, the Pulumi CLI with its plugins.
		out, err := p.interruptMidUp(t, ztedge, "local", 5, func(pid int) { _ = syscall.Kill(-pid, syscall.SIGINT) })
		if err == nil {
			t.Fatalf("an interrupted up exited 0:\n%s", out)
		}
		for _, want := range []string{"asking Pulumi to stop after the steps in flight", "no pending operations"} {
			if !strings.Contains(out, want) {
				t.Errorf("ztedge does not say %q:\n%s", want, out)
			}
		}
		if ops := p.pendingOps(t, "local"); len(ops) > 0 {
			t.Fatalf("one Ctrl-C left %d pending operations: %v\n%s", len(ops), ops, out)
		}
		p.upAndReadBack(ctx, t, cluster, run, "after Ctrl-C")
		run(destroyTimeout, "destroy", "--stack", "local")
	})

	t.Run("SIGKILL of ztedge and the CLI during the first up", func(t *testing.T) {
		run := runner(t)
		// A lost machine: every process of the run dies at once, lock and pending creates stay.
		// Twenty resources in, the Services and Deployments are being created (each waits for
		// its pods): the kill catches them mid-create.
		out, _ := p.interruptMidUp(t, ztedge, "local", 20, func(pid int) {
			for _, child := range childrenOf(pid) {
				_ = syscall.Kill(-child, syscall.SIGKILL) // the CLI's group: it and its plugins
			}
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		})
		// The kill can also land while the file backend rewrites the checkpoint (cut short).
		pending, truncated := p.pendingOrTruncated(t, "local")
		t.Logf("after SIGKILL: %d pending operation(s) %v, checkpoint cut short: %v", len(pending), pending, truncated)
		locked := p.runFails(t, ztedge, "up", "--stack", "local")
		for _, want := range []string{"is locked by another run", "(pid ", "ztedge cancel --stack local"} {
			if !strings.Contains(locked, want) {
				t.Errorf("up on the dead run's lock does not say %q:\n%s", want, locked)
			}
		}
		if n := strings.Count(locked, "\n"); n > 25 {
			t.Errorf("the lock error is %d lines (the CLI's whole output?):\n%s", n, locked)
		}
		run(time.Minute, "cancel", "--stack", "local")
		refused := p.runFails(t, ztedge, "up", "--stack", "local")
		wants := []string{"--repair"}
		switch {
		case truncated:
			wants = append(wants, "cut short")
		case len(pending) > 0:
			wants = append(wants, "pending operation(s)", describeOp(pending[0]))
		default:
			t.Errorf("the SIGKILL left no pending operation to repair (killed too late?):\n%s", out)
		}
		for _, want := range wants {
			if !strings.Contains(refused, want) {
				t.Errorf("up after the killed run does not say %q:\n%s", want, refused)
			}
		}
		repaired, err := p.runErr(upTimeout, ztedge, "up", "--stack", "local", "--repair")
		if err != nil {
			for _, r := range p.exportState(t) {
				if r.Type == "kubernetes:networking.k8s.io/v1:NetworkPolicy" {
					t.Logf("a NetworkPolicy's metadata in the state: %v", r.Outputs["metadata"])
					break
				}
			}
			t.Fatalf("ztedge up --repair: %v\n%s", err, repaired)
		}
		if (len(pending) > 0 || truncated) && !strings.Contains(repaired, "repairing") && !strings.Contains(repaired, "restored the previous checkpoint") {
			t.Errorf("up --repair does not report the repair:\n%s", repaired)
		}
		if ops := p.pendingOps(t, "local"); len(ops) > 0 {
			t.Errorf("up --repair left pending operations %v", ops)
		}
		run(upTimeout, "preview", "--stack", "local", "--expect-no-changes")
		cluster.checkEveryFieldSurvived(ctx, t, p.exportState(t))
		run(destroyTimeout, "destroy", "--stack", "local")
	})

	t.Run("two ups of a new stack at once", func(t *testing.T) {
		run := runner(t)
		stackFile, err := os.ReadFile(filepath.Join(p.dir, "Pulumi.local.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.dir, "Pulumi.twice.yaml"), stackFile, 0o644); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		outs, errs := make([]string, 2), make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = p.runErr(upTimeout, ztedge, "up", "--stack", "twice")
			}()
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("want one up to win and one to lose; errors %v, %v\n%s\n---\n%s", errs[0], errs[1], outs[0], outs[1])
		}
		loser := outs[0]
		if errs[1] != nil {
			loser = outs[1]
		}
		if !strings.Contains(loser, "is locked by another run") || strings.Contains(loser, "already exists") {
			t.Errorf("the losing up does not name the lock:\n%s", loser)
		}
		run(upTimeout, "preview", "--stack", "twice", "--expect-no-changes")
		run(destroyTimeout, "destroy", "--stack", "twice")
	})
}

// TestDriftOnARealEngine: an AuthService deleted behind Pulumi's back is seen by `ztedge drift`
// (exit 1, naming it) and restored by `ztedge up --refresh` (issue 19).
func TestDriftOnARealEngine(t *testing.T) {
	ctx, work, cp, cluster := startTestCluster(t, 20*time.Minute)
	p := newProject(t, filepath.Join(work, "drift"), cp.Kubeconfig)
	ztedge := p.build(t, "./cmd/ztedge")
	run := func(timeout time.Duration, args ...string) string { return p.run(t, timeout, ztedge, args...) }
	p.upAndReadBack(ctx, t, cluster, run, "empty state")
	if out := run(upTimeout, "drift", "--stack", "local"); !strings.Contains(out, "no drift") {
		t.Errorf("drift right after up:\n%s", out)
	}

	authServices := schema.GroupVersionResource{Group: "getambassador.io", Version: "v3alpha1", Resource: "authservices"}
	list, err := cluster.dynamic.Resource(authServices).Namespace("").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("want the stack's one AuthService, got %v (%v)", list, err)
	}
	as := list.Items[0]
	if err := cluster.dynamic.Resource(authServices).Namespace(as.GetNamespace()).Delete(ctx, as.GetName(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	out := p.runFails(t, ztedge, "drift", "--stack", "local")
	if !strings.Contains(out, "AuthService "+as.GetName()) || !strings.Contains(out, "would create") {
		t.Errorf("drift does not name the deleted AuthService %s:\n%s", as.GetName(), out)
	}
	run(upTimeout, "up", "--stack", "local", "--refresh")
	if _, err := cluster.dynamic.Resource(authServices).Namespace(as.GetNamespace()).Get(ctx, as.GetName(), metav1.GetOptions{}); err != nil {
		t.Errorf("up --refresh did not restore the AuthService: %v", err)
	}
	run(upTimeout, "drift", "--stack", "local")
	run(destroyTimeout, "destroy", "--stack", "local")
}

// interruptMidUp starts `ztedge up` in a process group of its own (as a terminal runs a
// command), calls stop with its pid once after resources are created (others are in flight then), and returns its output and exit error.
func (p *project) interruptMidUp(t *testing.T, ztedge, stack string, after int, stop func(pid int)) (string, error) {
	t.Helper()
	cmd := exec.Command(ztedge, "up", "--stack", stack)
	cmd.Dir, cmd.Env = p.dir, p.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hung := time.AfterFunc(upTimeout, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer hung.Stop()
	var out bytes.Buffer
	stopped, created := false, 0
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "] created ") {
			created++
		}
		if !stopped && created == after {
			stop(cmd.Process.Pid)
			stopped = true
		}
	}
	err = cmd.Wait()
	if !hung.Stop() {
		t.Fatalf("the interrupted up did not exit in %s:\n%s", upTimeout, out.String())
	}
	if !stopped {
		t.Fatalf("up created nothing to interrupt:\n%s", out.String())
	}
	t.Logf("interrupted up:\n%s", out.String())
	return out.String(), err
}

// childrenOf lists the pids whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// pendingOp is one pending operation of the exported state.
type pendingOp struct {
	Type     string `json:"type"`
	Resource struct {
		URN string `json:"urn"`
	} `json:"resource"`
}

func describeOp(op pendingOp) string {
	urn := op.Resource.URN
	return urn[strings.LastIndex(urn, "::")+2:]
}

// pendingOrTruncated is pendingOps, or true when the checkpoint does not load (cut short).
func (p *project) pendingOrTruncated(t *testing.T, stack string) ([]pendingOp, bool) {
	t.Helper()
	out, err := p.runErr(time.Minute, "pulumi", "stack", "export", "--stack", stack)
	if err != nil && strings.Contains(out, "failed to load checkpoint") {
		return nil, true
	}
	return p.pendingOps(t, stack), false
}

func (p *project) pendingOps(t *testing.T, stack string) []pendingOp {
	t.Helper()
	out := p.run(t, time.Minute, "pulumi", "stack", "export", "--stack", stack)
	var doc struct {
		Deployment struct {
			Pending []pendingOp `json:"pending_operations"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("pulumi stack export: %v", err)
	}
	return doc.Deployment.Pending
}

// runErr runs a command in the project and returns its output and error.
func (p *project) runErr(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = p.dir, p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runFails runs a command that must fail (exit 1) and returns its output.
func (p *project) runFails(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := p.runErr(upTimeout, name, args...)
	var exit *exec.ExitError
	if !errorsAsExit(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("%s %s: want exit 1, got %v:\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func errorsAsExit(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*target = e
	return ok
}
