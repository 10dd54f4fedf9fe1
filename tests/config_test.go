package tests

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/esc"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"

	"github.com/ztedge/ztedge/stacks"
)

var update = flag.Bool("update", false, "rewrite Pulumi.yaml's config block and the README reference from stacks/keys.go")

const (
	readmeBegin = "<!-- config-reference:begin (generated from stacks/keys.go: go test ./tests -run TestConfigDocs -update) -->\n"
	readmeEnd   = "<!-- config-reference:end -->"
)

// TestConfigDocs keeps Pulumi.yaml and the README in step with the keys the program reads.
func TestConfigDocs(t *testing.T) {
	root := repoRoot(t)
	block, err := stacks.ProjectConfigYAML()
	if err != nil {
		t.Fatal(err)
	}
	projectPath := filepath.Join(root, "Pulumi.yaml")
	readmePath := filepath.Join(root, "README.md")
	project, _ := os.ReadFile(projectPath)
	readme, _ := os.ReadFile(readmePath)
	wantProject := replaceFrom(string(project), "config:\n", block)
	wantReadme := replaceBetween(string(readme), readmeBegin, readmeEnd, stacks.ConfigReferenceMarkdown())
	if *update {
		must(t, os.WriteFile(projectPath, []byte(wantProject), 0o644))
		must(t, os.WriteFile(readmePath, []byte(wantReadme), 0o644))
		return
	}
	if string(project) != wantProject {
		t.Errorf("Pulumi.yaml's config block is out of date with stacks/keys.go; run: go test ./tests -run TestConfigDocs -update")
	}
	if string(readme) != wantReadme {
		t.Errorf("README.md's configuration reference is out of date with stacks/keys.go; run: go test ./tests -run TestConfigDocs -update")
	}

	// Pulumi itself accepts the project file (its schema and rules: types, defaults of the declared type).
	proj, err := workspace.LoadProject(projectPath)
	if err != nil {
		t.Fatalf("Pulumi rejects Pulumi.yaml: %v", err)
	}
	declared := map[string]workspace.ProjectConfigType{}
	for k, v := range proj.Config {
		declared[stacks.Namespace+":"+strings.TrimPrefix(k, stacks.Namespace+":")] = v
	}
	for _, k := range stacks.Keys {
		if k.Name == "aws:region" {
			continue
		}
		d, ok := declared[k.FullName()]
		if !ok {
			t.Errorf("%s is read by the program but not declared in Pulumi.yaml", k.FullName())
			continue
		}
		if d.TypeName() != k.Type || !reflect.DeepEqual(normalise(d.Default), normalise(k.Default)) || d.Secret != k.DeclaredSecret() {
			t.Errorf("%s: Pulumi.yaml declares %s default %v secret %v; the code has %s default %v secret %v",
				k.FullName(), d.TypeName(), d.Default, d.Secret, k.Type, k.Default, k.DeclaredSecret())
		}
		delete(declared, k.FullName())
	}
	for k := range declared {
		t.Errorf("Pulumi.yaml declares %s, which the program never reads (stale)", k)
	}
}

// TestEveryKeyIsRead: Load reads each registry key, so a key cannot stay documented after its code is gone.
func TestEveryKeyIsRead(t *testing.T) {
	read := stacks.KeysRead(stackConfig(t, "dev", nil), "dev")
	var want []string
	for _, k := range stacks.Keys {
		want = append(want, k.Name)
	}
	sort.Strings(want)
	if !reflect.DeepEqual(read, want) {
		t.Errorf("keys read %v\nregistry   %v", read, want)
	}
}

// TestStackFilesUseKnownKeys catches a typo in Pulumi.<stack>.yaml, which Pulumi would pass on silently.
func TestStackFilesUseKnownKeys(t *testing.T) {
	known := map[string]bool{}
	for _, k := range stacks.Keys {
		known[k.FullName()] = true
	}
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "Pulumi.*.yaml"))
	for _, f := range files {
		stack := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "Pulumi."), ".yaml")
		src := stackConfig(t, stack, nil)
		for k := range src.Values {
			if !known[k] {
				t.Errorf("%s sets %s, which the program does not read", filepath.Base(f), k)
			}
		}
		if _, err := stacks.Load(src, stack); err != nil {
			t.Errorf("%s does not validate: %v", filepath.Base(f), err)
		}
	}
}

func normalise(v any) any {
	if v == nil {
		return nil
	}
	b, _ := yamlJSON(v)
	return b
}

func replaceFrom(s, marker, block string) string {
	i := strings.Index(s, marker)
	if i < 0 {
		return s + "\n" + block
	}
	return s[:i] + block
}

func replaceBetween(s, begin, end, body string) string {
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return s + "\n" + begin + body + end + "\n"
	}
	return s[:i+len(begin)] + body + s[j:]
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPulumiCLIAcceptsEveryStack runs the Pulumi CLI's own config validation (the check `pulumi up`
// and the Automation API run before the program starts) on Pulumi.yaml and every stack file, as
// committed and with every secret key set the way users set it (`--secret`): the CLI must accept
// both. The mock engine never runs this check.
func TestPulumiCLIAcceptsEveryStack(t *testing.T) {
	root := repoRoot(t)
	project, err := workspace.LoadProject(filepath.Join(root, "Pulumi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "Pulumi.*.yaml"))
	for _, f := range files {
		stack := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "Pulumi."), ".yaml")
		for _, withSecrets := range []bool{false, true} {
			ps, err := workspace.LoadProjectStack(nil, project, f)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if withSecrets {
				for _, k := range stacks.Keys {
					if k.Secret {
						key := config.MustMakeKey(stacks.Namespace, k.Name)
						must(t, ps.Config.Set(key, config.NewSecureValue("c2VjcmV0"), false))
					}
				}
			}
			err = workspace.ValidateStackConfigAndApplyProjectConfig(context.Background(), stack, project,
				esc.Value{}, ps.Config, config.NopEncrypter, config.NopDecrypter)
			if err != nil {
				t.Errorf("the Pulumi CLI rejects stack %s (secrets set: %v): %v", stack, withSecrets, err)
			}
		}
	}
}
