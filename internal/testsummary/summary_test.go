package testsummary

import (
	"slices"
	"strings"
	"testing"
)

// The reason a subtest failed is repeated after everything else, its passing siblings' output is
// not, and the parent (failed only through its subtest) is not a separate entry.
func TestFilterRepeatsTheFailedSubtestLast(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Test":"TestTier"}`,
		`{"Action":"output","Test":"TestTier/ok","Output":"    tier_test.go:10: fine\n"}`,
		`{"Action":"pass","Test":"TestTier/ok"}`,
		`{"Action":"output","Test":"TestTier/broken","Output":"    tier_test.go:20: up created nothing to interrupt\n"}`,
		`{"Action":"fail","Test":"TestTier/broken"}`,
		`{"Action":"output","Test":"TestTier","Output":"---- kube-apiserver (last 40 lines)\n"}`,
		`{"Action":"fail","Test":"TestTier"}`,
		`FAIL	github.com/ztedge/ztedge/e2e [build failed]`,
	}, "\n")
	var out strings.Builder
	failed, err := Filter(strings.NewReader(in), &out, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(failed, []string{"TestTier/broken", "TestTier"}) {
		t.Errorf("failed %v", failed)
	}
	text := out.String()
	summary := text[strings.Index(text, "==== "):]
	if !strings.Contains(summary, "---- TestTier/broken\n    tier_test.go:20: up created nothing to interrupt") {
		t.Errorf("the summary lacks the failed subtest's reason:\n%s", text)
	}
	if strings.Contains(summary, "fine") || strings.Contains(summary, "---- TestTier\n") {
		t.Errorf("the summary repeats a passing test or the parent:\n%s", summary)
	}
	if !strings.Contains(text, "[build failed]") || strings.Index(text, "kube-apiserver") > strings.Index(text, "==== ") {
		t.Errorf("the live output is not passed through in order:\n%s", text)
	}
}

// Only the last lines are kept.
func TestFilterKeepsTheTail(t *testing.T) {
	var in strings.Builder
	for _, l := range []string{"one", "two", "three"} {
		in.WriteString(`{"Action":"output","Test":"TestX","Output":"` + l + `\n"}` + "\n")
	}
	in.WriteString(`{"Action":"fail","Test":"TestX"}` + "\n")
	var out strings.Builder
	if _, err := Filter(strings.NewReader(in.String()), &out, 2); err != nil {
		t.Fatal(err)
	}
	summary := out.String()[strings.Index(out.String(), "==== "):]
	if strings.Contains(summary, "one") || !strings.Contains(summary, "two\nthree") {
		t.Errorf("summary:\n%s", summary)
	}
}
