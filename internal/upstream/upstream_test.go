package upstream

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sum = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae" // sha256("foo")

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.txt", "foo")
	write(t, dir, SourceFile, "# a\n\nprose\n\n| file | repo | tag | path | sha256 |\n|---|---|---|---|---|\n| `a.txt` | `o/r` | `v1` | `x/a.txt` | `"+sum+"` |\n\nmore prose | with a bar |\n")
	if err := Verify(dir); err != nil {
		t.Fatal(err)
	}
	p, err := Pinned(dir, "a.txt")
	if err != nil || (p != Pin{File: "a.txt", Repo: "o/r", Tag: "v1", Path: "x/a.txt", SHA256: sum}) {
		t.Fatalf("Pinned = %+v, %v", p, err)
	}
	if !HasPins(dir) {
		t.Error("HasPins = false")
	}
	// One changed byte is caught.
	write(t, dir, "a.txt", "fop")
	if err := Verify(dir); err == nil || !strings.Contains(err.Error(), "not the upstream file") {
		t.Errorf("Verify after an edit: %v", err)
	}
	if _, err := Pinned(dir, "b.txt"); err == nil {
		t.Error("Pinned found a file that is not in the table")
	}
}

func TestNoTable(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, SourceFile, "# only prose\n")
	if _, err := Pins(dir); err == nil {
		t.Error("Pins accepted a SOURCE.md without a table")
	}
	if HasPins(dir) {
		t.Error("HasPins = true")
	}
	write(t, dir, SourceFile, "| file | repo | tag | path | sha256 |\n|---|---|---|---|---|\n| a | o/r | v1 | p | nothex |\n")
	if _, err := Pins(dir); err == nil {
		t.Error("Pins accepted a bad sha256")
	}
}
