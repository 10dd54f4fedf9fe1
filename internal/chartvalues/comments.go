package chartvalues

import (
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// CommentedKeys returns the keys that values.yaml documents as
// commented-out YAML, as a tree shaped like values: a documented map is a
// map[string]any, a documented leaf holds its commented value (nil when it
// has none). For example
//
//	service:
//	  type: ClusterIP
//	  # loadBalancerIP: 10.0.0.1
//	metrics:
//	  serviceMonitor:
//	    enabled: false
//	    # interval: 30s
//	# securityContext:
//	#   runAsUser: 8888
//
// documents service.loadBalancerIP, metrics.serviceMonitor.interval,
// securityContext and securityContext.runAsUser.
//
// Detection reads full-line comments the way YAML reads code, with the
// real keys' positions from the parser, and keeps only what it can place
// unambiguously:
//
//   - the comment's text is the line after "#" and one space; its column
//     is that of the text, counting the spaces before "#" (so "  # key:"
//     and "#   key:" are both at column 2);
//   - a commented key is `name:` optionally followed by a value, where
//     name starts with a lower-case letter and holds only letters, digits,
//     "_" and "-" (so "Note: ...", "Example: ...", "STATSD_HOST: ..." and
//     prose with spaces are not keys);
//   - its parent is the nearest line above with a smaller column, real or
//     commented. It counts only if that parent is the document root, a
//     real key whose value is a map or null, or an accepted commented key
//     without a value;
//   - anything else (prose, list items, "## ..." lines) occupies its
//     column too, so keys nested under prose ("# Example:\n#   address: x")
//     are rejected, as is everything below a rejected line, a list item, a
//     key with a scalar value or a block scalar ("|", ">");
//   - a key at the same column as a real "key: {}" directly above it (only
//     comment lines between) is taken as an example of what goes inside the
//     {}, not as a sibling: "startupProbe: {}\n# periodSeconds: 10"
//     documents nothing (the {} is free-form anyway);
//   - lines inside real block scalars are not comments;
//   - a real key resets the context to its own ancestors.
//
// Otherwise indentation is taken literally. Precision is preferred over
// recall: a key taken for documented hides a typo, a missed one is reported
// and can be checked by hand.
func CommentedKeys(valuesYAML []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(valuesYAML, &doc); err != nil {
		return nil, err
	}
	lines := strings.Split(string(valuesYAML), "\n")
	s := scan{
		keysAt:     map[int]*item{},
		inScalar:   map[int]bool{},
		lines:      lines,
		documented: map[string]any{},
	}
	if len(doc.Content) > 0 {
		s.collect(doc.Content[0], nil, false)
	}
	for i, line := range lines {
		lineNo := i + 1
		if k, ok := s.keysAt[lineNo]; ok {
			s.stack = k.chain()
			s.lastReal, s.adjacent = k, true
			continue
		}
		if s.inScalar[lineNo] {
			continue
		}
		col, text, ok := commentText(line)
		if !ok {
			s.adjacent = false
			continue
		}
		if text == "" {
			continue
		}
		s.comment(col, text)
	}
	return s.documented, nil
}

// item is a line in the indentation stack: a real key, an accepted
// commented key, or something opaque (prose, a rejected line).
type item struct {
	col    int
	path   []string // nil for opaque items
	real   bool
	parent *item // real keys only
	// canNest: keys below this item count (real map/null values, commented
	// keys without a value).
	canNest bool
	// emptyFlowMap: a real key whose value is written "{}".
	emptyFlowMap bool
}

func (it *item) chain() []*item {
	var out []*item
	for p := it; p != nil; p = p.parent {
		out = append([]*item{p}, out...)
	}
	return out
}

type scan struct {
	keysAt     map[int]*item // line -> real block-mapping key starting there
	inScalar   map[int]bool  // lines inside real multi-line block scalars
	lines      []string
	stack      []*item
	documented map[string]any
	// lastReal is the last real key seen, and adjacent is true while only
	// comment lines have followed it.
	lastReal *item
	adjacent bool
}

// collect records the real keys of block mappings with their positions.
func (s *scan) collect(n *yaml.Node, parent *item, inSeq bool) {
	switch n.Kind {
	case yaml.MappingNode:
		if n.Style&yaml.FlowStyle != 0 {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var path []string
			if parent != nil {
				path = append(path, parent.path...)
			}
			path = append(path, k.Value)
			it := &item{col: k.Column - 1, path: path, real: true, parent: parent}
			isMap := v.Kind == yaml.MappingNode
			isNull := v.Kind == yaml.ScalarNode && v.Tag == "!!null"
			it.canNest = !inSeq && (isMap || isNull)
			it.emptyFlowMap = isMap && len(v.Content) == 0 && v.Style&yaml.FlowStyle != 0
			s.keysAt[k.Line] = it
			if v.Kind == yaml.ScalarNode && (v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0) {
				s.markBlockScalar(v.Line, k.Column-1)
			}
			s.collect(v, it, inSeq)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			s.collect(c, parent, true)
		}
	case yaml.DocumentNode:
		for _, c := range n.Content {
			s.collect(c, parent, inSeq)
		}
	}
}

// markBlockScalar marks the lines after a "|" or ">" indicator on line
// that belong to the scalar: blank lines and lines indented deeper than
// the owning key's column.
func (s *scan) markBlockScalar(line, keyCol int) {
	for l := line + 1; l <= len(s.lines); l++ {
		text := s.lines[l-1]
		trimmed := strings.TrimLeft(text, " \t")
		if trimmed == "" || len(text)-len(trimmed) > keyCol {
			s.inScalar[l] = true
			continue
		}
		return
	}
}

// commentText splits a full-line comment into the column of its text and
// the text; ok is false for lines that are not full-line comments.
func commentText(line string) (col int, text string, ok bool) {
	line = strings.TrimRight(line, " \t\r")
	indent := len(line) - len(strings.TrimLeft(line, " \t"))
	rest := line[indent:]
	if !strings.HasPrefix(rest, "#") {
		return 0, "", false
	}
	rest = rest[1:]
	spaces := len(rest) - len(strings.TrimLeft(rest, " \t"))
	col = indent
	if spaces > 1 {
		col += spaces - 1
	}
	return col, rest[spaces:], true
}

var commentedKeyRE = regexp.MustCompile(`^([a-z][A-Za-z0-9_-]*):(?:\s+(.*))?$`)

// comment places one comment line at col in the stack and records it if
// it is an acceptable commented key.
func (s *scan) comment(col int, text string) {
	for len(s.stack) > 0 && s.stack[len(s.stack)-1].col >= col {
		s.stack = s.stack[:len(s.stack)-1]
	}
	var parent *item
	if len(s.stack) > 0 {
		parent = s.stack[len(s.stack)-1]
	}
	m := commentedKeyRE.FindStringSubmatch(text)
	// "probe: {}" directly followed by "# periodSeconds: 10" at the same
	// column shows what goes inside the {}, not a sibling key.
	example := s.adjacent && s.lastReal != nil && s.lastReal.emptyFlowMap && s.lastReal.col == col
	if m == nil || example || (parent != nil && !parent.canNest) {
		s.stack = append(s.stack, &item{col: col})
		return
	}
	var path []string
	if parent != nil {
		path = append(path, parent.path...)
	}
	path = append(path, m[1])
	value, hasValue := strings.TrimSpace(m[2]), strings.TrimSpace(m[2]) != ""
	if i := strings.Index(value, " #"); i >= 0 {
		value = strings.TrimSpace(value[:i])
		hasValue = value != ""
	}
	var leaf any
	if hasValue {
		if err := yaml.Unmarshal([]byte(value), &leaf); err != nil {
			leaf = value
		}
	}
	s.stack = append(s.stack, &item{col: col, path: path, canNest: !hasValue})
	record(s.documented, path, leaf, hasValue)
}

// record adds a path to a tree of keys. A key without a value becomes a map
// when something is recorded below it, else nil.
func record(tree map[string]any, path []string, leaf any, hasValue bool) {
	m := tree
	for _, k := range path[:len(path)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[k] = sub
		}
		m = sub
	}
	last := path[len(path)-1]
	if _, exists := m[last]; exists && !hasValue {
		return
	}
	if hasValue {
		m[last] = leaf
	} else {
		m[last] = nil
	}
}
