package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Files maps a path relative to the output directory to its content.
type Files map[string][]byte

// Generated lists the top-level entries a render owns in its output directory; Write replaces
// them so a file of a resource that no longer exists cannot linger and mislead a policy check.
var Generated = []string{"kubernetes", "helm", "aws.json", "aws.md", "graph.mmd", "graph.dot", "resources.json"}

// YAMLFiles is the reviewer layout (`ztedge render`, --format yaml):
//
//	kubernetes/<namespace|_cluster>/<kind>-<name>.yaml  one object per file
//	helm/<namespace>-<release>.yaml                     chart, version, repository, values
//	aws.json, aws.md                                    AWS resources (IAM trust policies parsed)
//	graph.mmd, graph.dot                                the dependency graph
func (b *Bundle) YAMLFiles() (Files, error) {
	files := Files{}
	used := map[string]int{}
	unique := func(p string) string {
		used[p]++
		if n := used[p]; n > 1 {
			return strings.TrimSuffix(p, ".yaml") + fmt.Sprintf("-%d.yaml", n)
		}
		return p
	}
	for _, o := range b.Kubernetes {
		ns := o.Namespace
		if ns == "" {
			ns = "_cluster"
		}
		y, err := yaml.Marshal(o.Manifest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.URN, err)
		}
		p := filepath.Join("kubernetes", safe(ns), safe(strings.ToLower(o.Kind))+"-"+safe(o.Name)+".yaml")
		files[unique(p)] = append([]byte("# "+o.URN+"\n"), y...)
	}
	for _, h := range b.Helm {
		y, err := yaml.Marshal(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.URN, err)
		}
		ns := h.Namespace
		if ns == "" {
			ns = "default"
		}
		files[unique(filepath.Join("helm", safe(ns)+"-"+safe(h.Name)+".yaml"))] = y
	}
	aws, err := b.awsJSON()
	if err != nil {
		return nil, err
	}
	files["aws.json"] = aws
	files["aws.md"] = b.awsSummary()
	files["graph.mmd"] = []byte(b.Mermaid())
	files["graph.dot"] = []byte(b.DOT())
	return files, nil
}

// JSONFiles is the --format json layout: resources.json plus the graph.
func (b *Bundle) JSONFiles() (Files, error) {
	j, err := b.JSON()
	if err != nil {
		return nil, err
	}
	return Files{"resources.json": j, "graph.mmd": []byte(b.Mermaid()), "graph.dot": []byte(b.DOT())}, nil
}

// Write replaces the generated entries of dir with files.
func (f Files) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range Generated {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	for _, p := range f.Paths() {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f[p], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Paths returns the file paths, sorted.
func (f Files) Paths() []string {
	out := make([]string, 0, len(f))
	for p := range f {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// safe keeps a name usable as one path element.
func safe(s string) string {
	if s == "" {
		return "unnamed"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r == 0 {
			return '_'
		}
		return r
	}, s)
}

// IAMRole is an IAM role with its trust policy parsed, so a policy tool can check its conditions.
type IAMRole struct {
	URN              string `json:"urn"`
	Name             string `json:"name"`
	AssumeRolePolicy any    `json:"assumeRolePolicy"`
}

func (b *Bundle) awsJSON() ([]byte, error) {
	doc := struct {
		IAMRoles  []IAMRole  `json:"iamRoles"`
		Resources []Resource `json:"resources"`
	}{IAMRoles: []IAMRole{}, Resources: b.AWS}
	if doc.Resources == nil {
		doc.Resources = []Resource{}
	}
	for _, r := range b.AWS {
		if r.Type != "aws:iam/role:Role" {
			continue
		}
		role := IAMRole{URN: r.URN, Name: r.Name, AssumeRolePolicy: r.Inputs["assumeRolePolicy"]}
		if s, ok := role.AssumeRolePolicy.(string); ok {
			var parsed any
			if err := json.Unmarshal([]byte(s), &parsed); err == nil {
				role.AssumeRolePolicy = parsed
			}
		}
		doc.IAMRoles = append(doc.IAMRoles, role)
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	return append(out, '\n'), err
}

// awsSummary is a Markdown table of the AWS resources: how many of each type, and their names.
func (b *Bundle) awsSummary() []byte {
	names := map[string][]string{}
	remote := false
	for _, r := range b.AWS {
		name := r.Name
		if b.standIns[r.URN] {
			name += " (stand-in)"
		}
		remote = remote || strings.HasPrefix(r.Type, "eks:")
		names[r.Type] = append(names[r.Type], name)
	}
	types := make([]string, 0, len(names))
	for t := range names {
		types = append(types, t)
	}
	sort.Strings(types)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# AWS resources (%d)\n\n", len(b.AWS))
	if len(b.AWS) == 0 {
		buf.WriteString("None: this stack creates no AWS resources.\n")
		return buf.Bytes()
	}
	buf.WriteString("| type | count | names |\n|---|---:|---|\n")
	for _, t := range types {
		n := names[t]
		sort.Strings(n)
		fmt.Fprintf(&buf, "| `%s` | %d | %s |\n", t, len(n), strings.Join(n, ", "))
	}
	if remote {
		buf.WriteString("\n`eks:*` entries are pulumi-eks components: the provider creates their children (the EKS cluster, its\n" +
			"security groups, OIDC provider, node group) at deploy time, so they are not listed one by one here; the\n" +
			"entries marked (stand-in) are the offline engine's stand-ins for the children the program reads.\n")
	}
	return buf.Bytes()
}
