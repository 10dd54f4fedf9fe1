// Package testsummary turns `go test -json` into the usual verbose output and, at the end, repeats
// the last lines of every test that failed. A long tier's failure reasons are otherwise far above
// the end of its log (the control plane's logs follow them), and a CI record keeps only the tail.
package testsummary

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// Filter copies the output of the test events read from in to out as it comes, then writes the
// last tail lines of each failed test that has no failed subtest (where the reason is), and
// returns the failed tests' names.
func Filter(in io.Reader, out io.Writer, tail int) ([]string, error) {
	lines := map[string][]string{} // test -> its output so far, at most tail lines
	var failed []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			fmt.Fprintln(out, sc.Text()) // a build error: not an event
			continue
		}
		switch ev.Action {
		case "output":
			io.WriteString(out, ev.Output)
			if ev.Test != "" {
				kept := append(lines[ev.Test], strings.TrimRight(ev.Output, "\n"))
				if len(kept) > tail {
					kept = kept[len(kept)-tail:]
				}
				lines[ev.Test] = kept
			}
		case "fail":
			if ev.Test != "" {
				failed = append(failed, ev.Test)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return failed, err
	}
	leaves := failedLeaves(failed)
	if len(leaves) > 0 {
		fmt.Fprintf(out, "\n==== %d failed test(s); the last %d lines of each:\n", len(leaves), tail)
	}
	for _, name := range leaves {
		fmt.Fprintf(out, "\n---- %s\n%s\n", name, strings.Join(lines[name], "\n"))
	}
	return failed, nil
}

// failedLeaves are the failed tests none of whose subtests failed, sorted.
func failedLeaves(failed []string) []string {
	var leaves []string
	for _, name := range failed {
		leaf := true
		for _, other := range failed {
			if strings.HasPrefix(other, name+"/") {
				leaf = false
				break
			}
		}
		if leaf {
			leaves = append(leaves, name)
		}
	}
	sort.Strings(leaves)
	return leaves
}
