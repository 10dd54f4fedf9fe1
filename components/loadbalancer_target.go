package components

import "fmt"

// EnvoyTarget is where the load balancer reaches Envoy and checks it is ready, when Envoy is not
// Emissary's (nil: AmbassadorHTTPSPort, AmbassadorAdminPort, AmbassadorReadyPath).
type EnvoyTarget struct {
	HTTPSPort int
	ReadyPort int
	ReadyPath string
}

// EnvoyGatewayTarget is Envoy Gateway's proxy: the shifted listener port and its readiness endpoint.
var EnvoyGatewayTarget = &EnvoyTarget{HTTPSPort: EnvoyGatewayContainerPort, ReadyPort: EnvoyGatewayReadyPort, ReadyPath: EnvoyGatewayReadyPath}

func (t *EnvoyTarget) httpsPort() int {
	if t == nil {
		return AmbassadorHTTPSPort
	}
	return t.HTTPSPort
}

// healthCheck replaces the health-check port and path in a load balancer's annotations.
func (t *EnvoyTarget) healthCheck(prefix string, annotations map[string]string) map[string]string {
	if t != nil {
		annotations[prefix+"healthcheck-port"] = fmt.Sprint(t.ReadyPort)
		annotations[prefix+"healthcheck-path"] = t.ReadyPath
	}
	return annotations
}
