package render

import (
	"fmt"
	"strings"

	"github.com/ztedge/ztedge/internal/mockengine"
)

// graph is the dependency graph of a run: resources nested in their parent components, and an
// edge from each dependency to the resource that waits for it.
type graph struct {
	ids      map[string]string // URN → node id
	nodes    []Resource        // sorted by URN
	children map[string][]int  // parent URN ("" = top level) → indexes into nodes
	edges    [][2]string       // [from id, to id]: "to" waits for "from"
}

const rootStackType = "pulumi:pulumi:Stack"

func (b *Bundle) graph() *graph {
	g := &graph{ids: map[string]string{}, children: map[string][]int{}}
	for _, r := range b.All {
		if r.Type == rootStackType {
			continue
		}
		g.ids[r.URN] = fmt.Sprintf("r%d", len(g.nodes))
		g.nodes = append(g.nodes, r)
	}
	for i, r := range g.nodes {
		parent := r.Parent
		if _, ok := g.ids[parent]; !ok {
			parent = ""
		}
		g.children[parent] = append(g.children[parent], i)
		for _, d := range r.Dependencies {
			if from, ok := g.ids[d]; ok {
				g.edges = append(g.edges, [2]string{from, g.ids[r.URN]})
			}
		}
	}
	return g
}

func label(r Resource) string {
	return mockengine.ShortType(r.Type) + " " + r.Name
}

// Mermaid renders the graph as a Mermaid flowchart (GitHub renders it in Markdown).
func (b *Bundle) Mermaid() string {
	g := b.graph()
	var s strings.Builder
	s.WriteString("%% Dependency graph rendered by `ztedge render`. A --> B: B waits for A (created after it, deleted before it).\n")
	s.WriteString("%% Boxes are component resources; their children are drawn inside them.\n")
	s.WriteString("flowchart LR\n")
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		indent := strings.Repeat("  ", depth)
		for _, i := range g.children[parent] {
			r := g.nodes[i]
			id := g.ids[r.URN]
			text := strings.ReplaceAll(label(r), `"`, "#quot;")
			if len(g.children[r.URN]) == 0 {
				fmt.Fprintf(&s, "%s%s[\"%s\"]\n", indent, id, text)
				continue
			}
			fmt.Fprintf(&s, "%ssubgraph %s[\"%s\"]\n", indent, id, text)
			walk(r.URN, depth+1)
			fmt.Fprintf(&s, "%send\n", indent)
		}
	}
	walk("", 1)
	for _, e := range g.edges {
		fmt.Fprintf(&s, "  %s --> %s\n", e[0], e[1])
	}
	return s.String()
}

// DOT renders the graph for Graphviz (`dot -Tsvg graph.dot`). A component is a cluster with a
// node of its own inside, so that edges to and from the component have somewhere to attach.
func (b *Bundle) DOT() string {
	g := b.graph()
	var s strings.Builder
	s.WriteString("// Dependency graph rendered by `ztedge render`. A -> B: B waits for A (created after it, deleted before it).\n")
	s.WriteString("digraph ztedge {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n")
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		indent := strings.Repeat("  ", depth)
		for _, i := range g.children[parent] {
			r := g.nodes[i]
			id := g.ids[r.URN]
			text := strings.ReplaceAll(label(r), `"`, `\"`)
			if len(g.children[r.URN]) == 0 {
				fmt.Fprintf(&s, "%s%s [label=\"%s\"];\n", indent, id, text)
				continue
			}
			fmt.Fprintf(&s, "%ssubgraph cluster_%s {\n%s  label=\"%s\";\n%s  %s [label=\"%s\", shape=component];\n",
				indent, id, indent, text, indent, id, text)
			walk(r.URN, depth+1)
			fmt.Fprintf(&s, "%s}\n", indent)
		}
	}
	walk("", 1)
	for _, e := range g.edges {
		fmt.Fprintf(&s, "  %s -> %s;\n", e[0], e[1])
	}
	s.WriteString("}\n")
	return s.String()
}
