package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// progress is the default display of a long operation: one line per resource as it finishes (or,
// in a preview, as it is planned), a line every 30 s while something is still in flight (an EKS
// cluster takes ~10 minutes and would otherwise look like a hang), and a summary.
type progress struct {
	w     io.Writer
	op    string
	now   func() time.Time
	start time.Time

	mu       sync.Mutex
	inFlight map[string]time.Time // URN → when its step started
	changed  int
	failed   int
	failures []string // the failed steps, "create Service jwt-auth"
	summary  *apitype.SummaryEvent
}

func newProgress(w io.Writer, op string, now func() time.Time) *progress {
	return &progress{w: w, op: op, now: now, start: now(), inFlight: map[string]time.Time{}}
}

var pastTense = map[apitype.OpType]string{
	apitype.OpCreate: "created", apitype.OpUpdate: "updated", apitype.OpDelete: "deleted",
	apitype.OpReplace: "replaced", apitype.OpCreateReplacement: "created replacement", apitype.OpDeleteReplaced: "deleted old",
	apitype.OpRead: "read", apitype.OpRefresh: "refreshed", apitype.OpImport: "imported", apitype.OpDiscardReplaced: "discarded",
}

// describe turns a URN into "Type name", e.g. "Vpc ztedge-dev".
// doneVerb says what a finished step did to the object in the cluster or cloud. Deleting a
// resource that is retained on delete, or a Kubernetes Patch resource, leaves the object in place.
func doneVerb(m apitype.StepEventMetadata) string {
	if m.Op == apitype.OpDelete {
		switch {
		case m.Old != nil && m.Old.RetainOnDelete:
			return "retained (not deleted)"
		case strings.HasPrefix(m.Type, "kubernetes:") && strings.HasSuffix(m.Type, "Patch"):
			return "released (kept)"
		}
	}
	if verb := pastTense[m.Op]; verb != "" {
		return verb
	}
	return string(m.Op)
}

func describe(urn string) string {
	u := resource.URN(urn)
	if !u.IsValid() {
		return urn
	}
	return string(u.Type().Name()) + " " + u.Name()
}

func (p *progress) elapsed() string {
	return fmt.Sprintf("%6s", p.now().Sub(p.start).Round(time.Second))
}

func (p *progress) event(ev events.EngineEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case ev.Error != nil:
		fmt.Fprintf(p.w, "[%s] event stream: %v\n", p.elapsed(), ev.Error)
	case ev.ResourcePreEvent != nil:
		m := ev.ResourcePreEvent.Metadata
		// Refresh steps (--refresh) read every resource; what they find shows as the steps after.
		if m.Op == apitype.OpSame || m.Op == apitype.OpRefresh || m.Type == "pulumi:pulumi:Stack" {
			return
		}
		if p.op == "preview" {
			p.changed++
			fmt.Fprintf(p.w, "  would %-20s %s\n", m.Op, describe(m.URN))
			return
		}
		p.inFlight[m.URN] = p.now()
	case ev.ResOutputsEvent != nil:
		m := ev.ResOutputsEvent.Metadata
		started, ok := p.inFlight[m.URN]
		if !ok || p.op == "preview" {
			return
		}
		delete(p.inFlight, m.URN)
		p.changed++
		verb := doneVerb(m)
		fmt.Fprintf(p.w, "[%s] %-19s %s (%s)\n", p.elapsed(), verb, describe(m.URN), p.now().Sub(started).Round(time.Second))
	case ev.ResOpFailedEvent != nil:
		m := ev.ResOpFailedEvent.Metadata
		delete(p.inFlight, m.URN)
		p.failed++
		p.failures = append(p.failures, fmt.Sprintf("%s %s", m.Op, describe(m.URN)))
		fmt.Fprintf(p.w, "[%s] FAILED to %s %s\n", p.elapsed(), m.Op, describe(m.URN))
	case ev.DiagnosticEvent != nil:
		d := ev.DiagnosticEvent
		if d.Severity != "error" && d.Severity != "warning" {
			return
		}
		where := ""
		if d.URN != "" {
			where = " " + describe(d.URN) + ":"
		}
		fmt.Fprintf(p.w, "[%s] %s%s %s\n", p.elapsed(), d.Severity, where, strings.TrimSpace(d.Message))
	case ev.SummaryEvent != nil:
		s := *ev.SummaryEvent
		p.summary = &s
	}
}

// tick prints what is still in flight every interval; the returned func stops it.
func (p *progress) tick(interval time.Duration) func() {
	t := time.NewTicker(interval)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				p.still()
			case <-stop:
				return
			}
		}
	}()
	return func() { t.Stop(); close(stop) }
}

// still reports the operation's pending steps, longest first.
func (p *progress) still() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.inFlight) == 0 {
		return
	}
	urns := make([]string, 0, len(p.inFlight))
	for u := range p.inFlight {
		urns = append(urns, u)
	}
	sort.Slice(urns, func(i, j int) bool {
		if a, b := p.inFlight[urns[i]], p.inFlight[urns[j]]; !a.Equal(b) {
			return a.Before(b)
		}
		return urns[i] < urns[j]
	})
	names := []string{}
	for i, u := range urns {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(urns)-3))
			break
		}
		names = append(names, fmt.Sprintf("%s (%s)", describe(u), p.now().Sub(p.inFlight[u]).Round(time.Second)))
	}
	fmt.Fprintf(p.w, "[%s] still working on %s\n", p.elapsed(), strings.Join(names, ", "))
}

// finish prints the summary line.
func (p *progress) finish(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	took := p.now().Sub(p.start).Round(time.Second)
	counts := ""
	if p.summary != nil {
		ops := make([]string, 0, len(p.summary.ResourceChanges))
		for op, n := range p.summary.ResourceChanges {
			ops = append(ops, fmt.Sprintf("%d %s", n, op))
		}
		sort.Strings(ops)
		counts = " (" + strings.Join(ops, ", ") + ")"
	}
	if err != nil {
		fmt.Fprintf(p.w, "%s failed after %s%s\n", p.op, took, counts)
		if len(p.failures) > 0 {
			fmt.Fprintf(p.w, "failed step(s): %s\n", strings.Join(p.failures, ", "))
		}
		return
	}
	fmt.Fprintf(p.w, "%s finished in %s%s\n", p.op, took, counts)
}
