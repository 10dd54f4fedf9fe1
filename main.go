// Command ztedge is the Pulumi program of the ztedge zero-trust edge: `pulumi up` runs it.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/stacks"
)

func main() { pulumi.Run(stacks.Program) }
