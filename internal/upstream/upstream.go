// Package upstream checks files that were copied byte for byte from an upstream release against
// the record kept beside them.
//
// A directory holding such copies has a SOURCE.md with a table of one row per file:
//
//	| file | repo | tag | path | sha256 |
//	|------|------|-----|------|--------|
//	| `iam_policy.json` | `kubernetes-sigs/aws-load-balancer-controller` | `v3.5.0` | `docs/install/iam_policy.json` | `16f2…` |
//
// file is the name in the directory, repo/tag/path where it was taken from (for a file taken
// from a released archive, path starts with the archive's name, e.g.
// `emissary-ingress-4.1.0.tgz:emissary-ingress/values.yaml`) and sha256 the hex digest of its
// bytes. [Verify] fails when a file no longer has the recorded digest, so an edit of a copy
// (or a replacement without updating SOURCE.md) is caught by the tests. The rest of SOURCE.md is
// prose for people: how the file was obtained and how to update it.
package upstream

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SourceFile is the name of the record in each directory of upstream copies.
const SourceFile = "SOURCE.md"

// header is the first row of the pin table, compared without spaces and case.
var header = []string{"file", "repo", "tag", "path", "sha256"}

// Pin is one row of a SOURCE.md table.
type Pin struct {
	File   string // name inside the directory
	Repo   string // owner/name on GitHub
	Tag    string // the release tag the file was taken from
	Path   string // path inside the repository (or archive:path)
	SHA256 string // lower-case hex
}

// Pins reads the pin table of dir/SOURCE.md. It is an error when there is no table.
func Pins(dir string) ([]Pin, error) {
	b, err := os.ReadFile(filepath.Join(dir, SourceFile))
	if err != nil {
		return nil, err
	}
	var pins []Pin
	inTable := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		cells, ok := row(sc.Text())
		switch {
		case !ok:
			inTable = false
		case !inTable:
			inTable = isHeader(cells)
		case strings.Trim(strings.Join(cells, ""), "-: ") == "":
			// the |---|---| separator
		case len(cells) != len(header):
			return nil, fmt.Errorf("%s: row %q has %d cells, want %d (%s)", filepath.Join(dir, SourceFile), sc.Text(), len(cells), len(header), strings.Join(header, ", "))
		default:
			p := Pin{File: cells[0], Repo: cells[1], Tag: cells[2], Path: cells[3], SHA256: strings.ToLower(cells[4])}
			if len(p.SHA256) != 64 || strings.Trim(p.SHA256, "0123456789abcdef") != "" {
				return nil, fmt.Errorf("%s: %s: sha256 %q is not 64 hex digits", filepath.Join(dir, SourceFile), p.File, p.SHA256)
			}
			pins = append(pins, p)
		}
	}
	if len(pins) == 0 {
		return nil, fmt.Errorf("%s: no pin table (| %s |)", filepath.Join(dir, SourceFile), strings.Join(header, " | "))
	}
	return pins, nil
}

// HasPins reports whether dir/SOURCE.md has a pin table header.
func HasPins(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, SourceFile))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if cells, ok := row(line); ok && isHeader(cells) {
			return true
		}
	}
	return false
}

// Pinned returns the pin of one file of dir.
func Pinned(dir, file string) (Pin, error) {
	pins, err := Pins(dir)
	if err != nil {
		return Pin{}, err
	}
	for _, p := range pins {
		if p.File == file {
			return p, nil
		}
	}
	return Pin{}, fmt.Errorf("%s: %s is not in the pin table", filepath.Join(dir, SourceFile), file)
}

// Verify checks the sha256 of every file in dir's pin table and returns one error per mismatch
// or missing file.
func Verify(dir string) error {
	pins, err := Pins(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pins {
		got, err := FileSHA256(filepath.Join(dir, p.File))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if got != p.SHA256 {
			errs = append(errs, fmt.Errorf("%s: sha256 %s, but %s records %s (%s %s:%s): the copy is not the upstream file; restore it byte for byte or update the record",
				filepath.Join(dir, p.File), got, SourceFile, p.SHA256, p.Repo, p.Tag, p.Path))
		}
	}
	return errors.Join(errs...)
}

// FileSHA256 returns the hex sha256 of a file's bytes.
func FileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// row splits a Markdown table row into trimmed cells without their backticks.
func row(line string) ([]string, bool) {
	line = strings.TrimSpace(line)
	if len(line) < 2 || line[0] != '|' || line[len(line)-1] != '|' {
		return nil, false
	}
	cells := strings.Split(line[1:len(line)-1], "|")
	for i, c := range cells {
		cells[i] = strings.Trim(strings.TrimSpace(c), "`")
	}
	return cells, true
}

func isHeader(cells []string) bool {
	if len(cells) != len(header) {
		return false
	}
	for i, c := range cells {
		if !strings.EqualFold(c, header[i]) {
			return false
		}
	}
	return true
}
