// Command testsummary reads `go test -json` on stdin, prints it as verbose test output and, at the
// end, the last lines of every failed test again (internal/testsummary). It exits 1 when a test
// failed, so `set -o pipefail` sees the failure even if go test's own status is lost.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ztedge/ztedge/internal/testsummary"
)

func main() {
	tail := flag.Int("tail", 40, "lines of each failed test to repeat at the end")
	flag.Parse()
	failed, err := testsummary.Filter(os.Stdin, os.Stdout, *tail)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if len(failed) > 0 {
		os.Exit(1)
	}
}
