package tests

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// TestProvidersUpdateConfigInPlace: every kubernetes provider of every stack updates ConfigMaps
// and Secrets in place. The provider's default replaces them, and with ztedge's fixed names the
// replacement is delete-then-create: jwt-auth without its clients, keys or users until it is
// back, every request refused (issue 19, day-2 changes without downtime).
func TestProvidersUpdateConfigInPlace(t *testing.T) {
	for _, stack := range []string{"dev", "prod", "local"} {
		g := mustRun(t, stack)
		providers := g.ofType("pulumi:providers:kubernetes")
		if len(providers) == 0 {
			t.Fatalf("%s: no kubernetes provider", stack)
		}
		for _, p := range providers {
			for _, key := range []string{"enableConfigMapMutable", "enableSecretMutable"} {
				v, ok := p.Inputs[resource.PropertyKey(key)]
				if !ok || !v.IsBool() || !v.BoolValue() {
					t.Errorf("%s: provider %s: %s = %v, want true", stack, p.Name, key, v)
				}
			}
		}
	}
}
