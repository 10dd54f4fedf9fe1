package stacks

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// buildAuth deploys jwt-auth and registers it as Ambassador's AuthService.
func buildAuth(ctx *pulumi.Context, cfg *Config, p *Platform, e *Edge) error {
	return nil
}
