// Package components holds ztedge's Pulumi component resources, one file per concern.
//
// Every component follows one shape: NewX(ctx, name, *XArgs, ...opts) validates its arguments in a
// pure function first, registers itself as `ztedge:<area>:<Kind>`, parents its children to itself,
// and exports its outputs as `pulumi:"…"` fields registered with RegisterResourceOutputs.
package components

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// register creates the component resource and returns the option that parents children to it.
func register(ctx *pulumi.Context, typ, name string, c pulumi.ComponentResource, opts []pulumi.ResourceOption) (pulumi.ResourceOption, error) {
	if err := ctx.RegisterComponentResource(typ, name, c, opts...); err != nil {
		return nil, fmt.Errorf("registering %s %q: %w", typ, name, err)
	}
	return pulumi.Parent(c), nil
}

// mergeTags returns base plus extra (extra wins), as a Pulumi map.
func mergeTags(base map[string]string, extra map[string]string) pulumi.StringMap {
	out := pulumi.StringMap{}
	for k, v := range base {
		out[k] = pulumi.String(v)
	}
	for k, v := range extra {
		out[k] = pulumi.String(v)
	}
	return out
}
