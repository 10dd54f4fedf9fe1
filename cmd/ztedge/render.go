package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ztedge/ztedge/internal/render"
	"github.com/ztedge/ztedge/stacks"
)

const renderHelp = `
Runs the ztedge program for a stack offline — no cloud account, no Pulumi CLI — under a mock
engine, with the stack's real configuration (Pulumi.<stack>.yaml), and writes what it would create:

  kubernetes/<namespace>/<kind>-<name>.yaml   every Kubernetes object (custom resources too)
  helm/<namespace>-<release>.yaml             each Helm release: chart, version, repository, values
  aws.md, aws.json                            the AWS resources (IAM trust policies parsed)
  graph.mmd, graph.dot                        the dependency graph (Mermaid, Graphviz)

With --format json it writes resources.json instead: one object per resource with urn, type, name,
parent, dependencies and inputs. Output is sorted, so two renders of one configuration are
identical and a diff between renders is a review of a change.

Secrets never appear: every value the program passes as a Pulumi secret is written as "[secret]",
and a Kubernetes Secret's data/stringData values as "[redacted]". Encrypted values of the stack file
are not decrypted (no passphrase is needed). Values the cloud would compute (ARNs, IDs) are the
mock engine's stand-ins. Charts are not fetched, so objects a Helm chart creates are not listed.

An invalid configuration exits with status 2 and names each wrong key.`

const renderExamples = `  ztedge render --stack dev                      # writes out/dev/
  ztedge render --stack prod --out /tmp/prod
  ztedge render --stack dev --format json --out - | jq '.[] | select(.type | startswith("kubernetes:"))'`

func runRender(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("render", renderHelp, renderExamples, stderr)
	stack := fs.String("stack", "", "stack to render; reads Pulumi.<stack>.yaml (required)")
	out := fs.String("out", "", "output directory (default out/<stack>); with --format json, - prints resources.json to stdout")
	format := fs.String("format", "yaml", "yaml (files per object, Helm, AWS, graph) or json (resources.json and the graph)")
	dir := fs.String("dir", "", "project directory with Pulumi.yaml (default: found upward from the working directory)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up if the program has not finished by then")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireStack(*stack); err != nil {
		return err
	}
	if *format != "yaml" && *format != "json" {
		return usageError{fmt.Errorf("--format %q: use yaml or json", *format)}
	}
	if *out == "-" && *format != "json" {
		return usageError{errors.New("--out - (stdout) needs --format json")}
	}
	root, err := projectDir(*dir)
	if err != nil {
		return usageError{err}
	}

	started := time.Now()
	rs, err := render.Offline(root, *stack, *timeout)
	var cfgErr *stacks.ConfigError
	if errors.As(err, &cfgErr) {
		return usageError{fmt.Errorf("stack %s: %w", *stack, err)}
	}
	if errors.Is(err, os.ErrNotExist) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	b := render.NewBundle(rs)

	if *out == "-" {
		j, err := b.JSON()
		if err != nil {
			return err
		}
		_, err = stdout.Write(j)
		return err
	}
	files, err := b.YAMLFiles()
	if *format == "json" {
		files, err = b.JSONFiles()
	}
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join("out", *stack)
	}
	if err := files.Write(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rendered stack %s in %s: %d resources (%d Kubernetes objects, %d Helm releases, %d AWS resources) → %s\n",
		*stack, time.Since(started).Round(10*time.Millisecond), len(b.All), len(b.Kubernetes), len(b.Helm), len(b.AWS), *out)
	return nil
}

// projectDir is --dir, or the nearest directory upward with a Pulumi.yaml.
func projectDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return stacks.FindProjectDir(wd)
}
