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

// tree visits the resources depth first from the top level (depth 1): node for each one (container
// when it has children, which are visited next), then end once a container's children are done.
func (g *graph) tree(node func(id string, r Resource, depth int, container bool), end func(depth int)) {
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		for _, i := range g.children[parent] {
			r := g.nodes[i]
			container := len(g.children[r.URN]) > 0
			node(g.ids[r.URN], r, depth, container)
			if container {
				walk(r.URN, depth+1)
				end(depth)
			}
		}
	}
	walk("", 1)
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
	g.tree(func(id string, r Resource, depth int, container bool) {
		indent, text := strings.Repeat("  ", depth), strings.ReplaceAll(label(r), `"`, "#quot;")
		if container {
			fmt.Fprintf(&s, "%ssubgraph %s[\"%s\"]\n", indent, id, text)
		} else {
			fmt.Fprintf(&s, "%s%s[\"%s\"]\n", indent, id, text)
		}
	}, func(depth int) { fmt.Fprintf(&s, "%send\n", strings.Repeat("  ", depth)) })
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
	g.tree(func(id string, r Resource, depth int, container bool) {
		indent, text := strings.Repeat("  ", depth), strings.ReplaceAll(label(r), `"`, `\"`)
		if container {
			fmt.Fprintf(&s, "%ssubgraph cluster_%s {\n%s  label=\"%s\";\n%s  %s [label=\"%s\", shape=component];\n",
				indent, id, indent, text, indent, id, text)
		} else {
			fmt.Fprintf(&s, "%s%s [label=\"%s\"];\n", indent, id, text)
		}
	}, func(depth int) { fmt.Fprintf(&s, "%s}\n", strings.Repeat("  ", depth)) })
	for _, e := range g.edges {
		fmt.Fprintf(&s, "  %s -> %s;\n", e[0], e[1])
	}
	s.WriteString("}\n")
	return s.String()
}
