package stacks

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/components"
)

// buildAuth deploys jwt-auth and registers it as Ambassador's AuthService. It returns the auth
// gate (components.AuthService.Gate): what every checked route and the load balancer wait for.
func buildAuth(ctx *pulumi.Context, cfg *Config, p *Platform, e *Edge) ([]pulumi.Resource, error) {
	auth, err := components.NewAuthService(ctx, components.AuthName, &components.AuthServiceArgs{
		Namespace:      e.namespaceOutput(),
		NamespaceName:  e.Namespace,
		Hostname:       cfg.Hostname,
		Image:          cfg.Auth.Image,
		Replicas:       cfg.Auth.Replicas,
		TokenTTL:       cfg.Auth.TokenTTL,
		SigningKeys:    cfg.Auth.SigningKeys,
		Users:          cfg.Auth.Users,
		ClientAuth:     cfg.Edge.ClientAuth,
		BehindALB:      cfg.BehindALB(),
		TrustedClients: cfg.Edge.TrustedClients,
		CACertPem:      e.Pki.ClientCACertPem, // the trusted-client CA only
		ClientCerts:    e.Pki.ClientCerts,
		OidcIssuer:     cfg.Auth.OidcIssuer,
		OidcAudience:   cfg.Auth.OidcAudience,
		OidcJwksURL:    cfg.Auth.OidcJwksURL,
		CRDs:           e.ambassadorCRDs(),
		GatewayAPI:     e.EnvoyGateway != nil,
		DependsOn:      p.Nodes,
		MetricsPort:    cfg.authMetricsPort(),
	}, pulumi.Providers(p.Provider))
	if err != nil {
		return nil, err
	}
	// What clients and backends need: where to get a token, and how to verify one.
	ctx.Export("tokenEndpoint", auth.TokenEndpoint)
	ctx.Export("jwksUrl", auth.JwksURL)
	ctx.Export("tokenIssuer", auth.Issuer)
	ctx.Export("tokenAudience", auth.Audience)
	e.routeNamespace = auth.RouteNamespace()
	if e.certHeaderName = auth.CertHeaderName; e.certHeaderName != nil {
		// For `ztedge smoke --stack`, which forges it: a secret, as in the state.
		ctx.Export("clientCertHeaderName", e.certHeaderName.Name)
	}
	return auth.Gate(), nil
}
