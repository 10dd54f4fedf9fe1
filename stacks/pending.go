package stacks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// A run that dies mid-step (a hard stop, SIGKILL, a lost machine) leaves pending operations in
// the state: Pulumi does not know whether those creates happened. The CLI's own ways out do not
// work for this stack: `refresh --clear-pending-creates` forgets objects that exist (the next up
// fails "already exists"), and `--import-pending-creates` turns them into pending imports that
// the refresh then drops (same failure). ztedge resolves them itself (Repair): a Kubernetes
// object is put back in the state under its real ID and a refresh of exactly those resources
// keeps it if it exists and was created by Pulumi, or drops it if it does not; other pending
// creates (keys, certificates: nothing outside the state) are cleared. Nothing is deleted.

// PendingOperation is one operation an earlier run started and did not record as finished.
type PendingOperation struct {
	Type string // creating, updating, deleting, reading, importing
	URN  string
}

func (p PendingOperation) String() string { return p.Type + " " + describeURN(p.URN) }

// describeURN is "Type name (type token)", e.g. "Service jwt-auth (kubernetes:core/v1:Service)".
func describeURN(urn string) string {
	u := resource.URN(urn)
	if !u.IsValid() {
		return urn
	}
	return fmt.Sprintf("%s %s (%s)", u.Type().Name(), u.Name(), u.Type())
}

// PendingError is returned by Up when the stack has pending operations and Repair is not set.
type PendingError struct {
	Stack string
	Ops   []PendingOperation
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("stack %s has %d pending operation(s) from an interrupted run (Pulumi does not know whether they finished):\n%s\n"+
		"Run `ztedge up --stack %s --repair`: it puts the objects that exist back in the state, clears the rest, then runs up (nothing is deleted).",
		e.Stack, len(e.Ops), listOps(e.Ops), e.Stack)
}

func listOps(ops []PendingOperation) string {
	lines := make([]string, len(ops))
	for i, op := range ops {
		lines[i] = "  - " + op.String()
	}
	return strings.Join(lines, "\n")
}

// deployment is a stack's exported state, kept as generic JSON so that a round trip through
// Export and Import changes only what Repair means to change.
type deployment struct {
	raw       map[string]any
	resources []any
	pending   []any
}

func exportDeployment(ctx context.Context, s auto.Stack) (*deployment, apitype.UntypedDeployment, error) {
	u, err := s.Export(ctx)
	if err != nil {
		return nil, u, fmt.Errorf("reading the state: %w", err)
	}
	d := &deployment{raw: map[string]any{}}
	if len(u.Deployment) == 0 {
		return d, u, nil
	}
	dec := json.NewDecoder(bytes.NewReader(u.Deployment))
	dec.UseNumber() // numbers go back exactly as they were
	if err := dec.Decode(&d.raw); err != nil {
		return nil, u, fmt.Errorf("reading the state: %w", err)
	}
	d.resources, _ = d.raw["resources"].([]any)
	d.pending, _ = d.raw["pending_operations"].([]any)
	return d, u, nil
}

func (d *deployment) pendingOps() []PendingOperation {
	var out []PendingOperation
	for _, p := range d.pending {
		m, _ := p.(map[string]any)
		r, _ := m["resource"].(map[string]any)
		t, _ := m["type"].(string)
		urn, _ := r["urn"].(string)
		out = append(out, PendingOperation{Type: t, URN: urn})
	}
	return out
}

// PendingOperations lists the stack's pending operations (none for a new stack).
func PendingOperations(ctx context.Context, stack string, o AutoOptions) ([]PendingOperation, error) {
	s, err := o.stack(ctx, stack, readsState)
	if err != nil {
		return nil, err
	}
	d, _, err := exportDeployment(ctx, s)
	if err != nil {
		return nil, err
	}
	return d.pendingOps(), nil
}

// clusterScoped are the kinds the program creates without a namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true, "CustomResourceDefinition": true,
	"ValidatingWebhookConfiguration": true, "MutatingWebhookConfiguration": true, "PriorityClass": true,
	"IngressClass": true, "StorageClass": true,
}

// kubernetesID is the ID pulumi-kubernetes gives the object a pending create was making
// ("namespace/name", or "name" when cluster-scoped); "" when it cannot be known for sure.
func kubernetesID(r map[string]any) string {
	typ, _ := r["type"].(string)
	if !strings.HasPrefix(typ, "kubernetes:") {
		return ""
	}
	inputs, _ := r["inputs"].(map[string]any)
	meta, _ := inputs["metadata"].(map[string]any)
	if strings.HasPrefix(typ, "kubernetes:helm.sh/") {
		meta = inputs // a Release names itself at the top level
	}
	name, _ := meta["name"].(string)
	ns, _ := meta["namespace"].(string)
	kind := typ[strings.LastIndex(typ, ":")+1:]
	switch {
	case name == "":
		return ""
	case ns != "":
		return ns + "/" + name
	case clusterScoped[strings.TrimSuffix(kind, "Patch")]:
		return name
	}
	return ""
}

// repairPlan splits the pending operations: Kubernetes creates go back into the resources with
// their IDs (to be checked by a refresh); every pending operation leaves the list.
func (d *deployment) repairPlan() (imported, cleared, others []string) {
	providers := map[string]bool{}
	for _, r := range d.resources {
		m, _ := r.(map[string]any)
		urn, _ := m["urn"].(string)
		id, _ := m["id"].(string)
		providers[urn+"::"+id] = true
	}
	for _, p := range d.pending {
		op, _ := p.(map[string]any)
		r, _ := op["resource"].(map[string]any)
		urn, _ := r["urn"].(string)
		kind, _ := op["type"].(string)
		provider, _ := r["provider"].(string)
		switch id := kubernetesID(r); {
		case kind != "creating":
			others = append(others, urn) // the resource is in the state; the refresh reads it
		case id != "" && providers[provider]:
			r["id"] = id
			r["outputs"] = r["inputs"]
			d.resources = append(d.resources, r) // after everything it depends on
			imported = append(imported, urn)
		default:
			cleared = append(cleared, urn)
		}
	}
	d.raw["resources"] = d.resources
	d.raw["pending_operations"] = []any{}
	return imported, cleared, others
}

func (d *deployment) importInto(ctx context.Context, s auto.Stack, u apitype.UntypedDeployment) error {
	b, err := json.Marshal(d.raw)
	if err != nil {
		return err
	}
	u.Deployment = b
	if err := s.Import(ctx, u); err != nil {
		return fmt.Errorf("writing the repaired state: %w", err)
	}
	return nil
}

// repair resolves the stack's pending operations (see the top of this file) and reports each
// one to w. It does nothing when there are none.
func repair(ctx context.Context, s auto.Stack, w io.Writer) error {
	d, u, err := exportDeployment(ctx, s)
	if err != nil || len(d.pending) == 0 {
		return err
	}
	fmt.Fprintf(w, "repairing %d pending operation(s):\n", len(d.pending))
	imported, cleared, others := d.repairPlan()
	if err := d.importInto(ctx, s, u); err != nil {
		return err
	}
	if targets := append(append([]string{}, imported...), others...); len(targets) > 0 {
		if _, err := s.Refresh(ctx, optrefresh.Target(targets)); err != nil {
			return fmt.Errorf("refreshing the repaired resources: %w", summarize(err))
		}
	}
	kept, err := dropForeign(ctx, s, imported)
	if err != nil {
		return err
	}
	for _, urn := range imported {
		switch kept[urn] {
		case "pulumi":
			fmt.Fprintf(w, "  - %s: exists, back in the state\n", describeURN(urn))
		case "foreign":
			fmt.Fprintf(w, "  - %s: exists but was not created by Pulumi: left alone and not in the state (rename or remove it, then up)\n", describeURN(urn))
		default:
			fmt.Fprintf(w, "  - %s: was not created: cleared (up creates it)\n", describeURN(urn))
		}
	}
	for _, urn := range cleared {
		fmt.Fprintf(w, "  - %s: cleared (up creates it%s)\n", describeURN(urn), orphanHint(urn))
	}
	for _, urn := range others {
		fmt.Fprintf(w, "  - %s: re-read from the cluster or cloud\n", describeURN(urn))
	}
	return nil
}

// orphanHint warns where a cleared create may have made a cloud object that the state forgot.
func orphanHint(urn string) string {
	if t := string(resource.URN(urn).Type()); strings.HasPrefix(t, "aws:") || strings.HasPrefix(t, "eks:") {
		return "; if AWS had made it already, find it by the stack's tags and delete or import it"
	}
	return ""
}

// dropForeign takes out of the state every imported resource whose live object Pulumi did not
// write (no pulumi-kubernetes field manager, no managed-by label): a user's object of the same
// name, which a later destroy must not delete. Patch resources only own the fields they set and stay. It returns, per imported
// URN still or formerly in the state, "pulumi" or "foreign".
func dropForeign(ctx context.Context, s auto.Stack, imported []string) (map[string]string, error) {
	out := map[string]string{}
	if len(imported) == 0 {
		return out, nil
	}
	want := map[string]bool{}
	for _, u := range imported {
		want[u] = true
	}
	d, u, err := exportDeployment(ctx, s)
	if err != nil {
		return nil, err
	}
	kept := d.resources[:0:0]
	for _, r := range d.resources {
		m, _ := r.(map[string]any)
		urn, _ := m["urn"].(string)
		typ, _ := m["type"].(string)
		if want[urn] {
			out[urn] = "pulumi"
			if !ownsOnlyItsFields(typ) && !managedByPulumi(m) {
				out[urn] = "foreign"
				continue
			}
		}
		kept = append(kept, r)
	}
	if len(kept) == len(d.resources) {
		return out, nil
	}
	d.raw["resources"] = kept
	return out, d.importInto(ctx, s, u)
}

// ownsOnlyItsFields: a Patch owns the fields it sets; a Helm release is refused by Helm when a
// release of its name exists that it does not own.
func ownsOnlyItsFields(typ string) bool {
	return strings.HasSuffix(typ, "Patch") || strings.HasPrefix(typ, "kubernetes:helm.sh/")
}

func managedByPulumi(r map[string]any) bool {
	outputs, _ := r["outputs"].(map[string]any)
	meta, _ := outputs["metadata"].(map[string]any)
	labels, _ := meta["labels"].(map[string]any)
	if labels["app.kubernetes.io/managed-by"] == "pulumi" { // client-side apply
		return true
	}
	// Server-side apply: the provider's field manager is pulumi-kubernetes-<id>.
	fields, _ := meta["managedFields"].([]any)
	for _, f := range fields {
		entry, _ := f.(map[string]any)
		if m, _ := entry["manager"].(string); strings.HasPrefix(m, "pulumi-kubernetes") {
			return true
		}
	}
	return false
}
