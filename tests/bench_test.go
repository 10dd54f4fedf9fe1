package tests

import "testing"

// BenchmarkProgram measures a whole stacks.Program run under the mock engine (what a unit-test run,
// `ztedge render` and the program's own CPU share of `pulumi preview` cost).
func BenchmarkProgram(b *testing.B) {
	for _, stack := range stackFiles {
		b.Run(stack, func(b *testing.B) {
			src := stackConfig(b, stack, nil)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := run(b, stack, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
