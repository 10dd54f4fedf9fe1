package stacks

import (
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// ProjectConfigYAML renders the `config:` block of Pulumi.yaml from the registry. Keys of other
// namespaces (aws:region) are left out: Pulumi only lets a project declare its own keys' types.
func ProjectConfigYAML() (string, error) {
	var b strings.Builder
	b.WriteString("config:\n")
	for _, k := range Keys {
		if k.FullName() != Namespace+":"+k.Name {
			continue
		}
		decl := map[string]any{"type": k.Type, "description": k.Description}
		switch k.Type {
		case "array":
			item := "string"
			if k.Name == "backends" || k.Name == "trustedClients" || k.Name == "authSigningKeys" {
				item = "object"
			}
			decl["items"] = map[string]any{"type": item}
		}
		if k.Default != nil {
			decl["default"] = k.Default
		}
		if k.DeclaredSecret() {
			decl["secret"] = true
		}
		out, err := yaml.Marshal(map[string]any{k.Name: decl})
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			b.WriteString("  " + line + "\n")
		}
	}
	return b.String(), nil
}

// ConfigReferenceMarkdown renders the README's configuration reference from the registry.
func ConfigReferenceMarkdown() string {
	var b strings.Builder
	b.WriteString("| key | type | default | description |\n|---|---|---|---|\n")
	for _, k := range Keys {
		def := "*required*"
		switch {
		case k.Default == "":
			def = ""
		case k.Default != nil:
			j, _ := json.Marshal(k.Default)
			def = "`" + string(j) + "`"
		}
		desc := k.Description
		if k.Secret {
			desc = "**secret** — " + desc
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k.FullName(), k.Type, def, strings.ReplaceAll(desc, "|", "\\|"))
	}
	return b.String()
}
