package stacks

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/jwtauth"
)

// TLS13Policies are the load balancer policies that allow TLS 1.3 and nothing older.
var TLS13Policies = []string{
	"ELBSecurityPolicy-TLS13-1-3-2021-06",
	"ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
	"ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
}

// ClientAuthModes are the ways a client certificate reaches the edge (see README).
var ClientAuthModes = components.ClientAuthModes

var (
	dnsLabelRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	semverRE    = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	quantityRE  = regexp.MustCompile(`^\d+(\.\d+)?(m|Ki|Mi|Gi|k|M|G)?$`)
	imageRefRE  = regexp.MustCompile(`^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$`)
	prefixRE    = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$`)
	httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	rateUnits   = []string{"second", "minute", "hour"}
	// retryOnValues are the retry conditions Emissary accepts in a Mapping's retry_policy
	// (python/ambassador/ir/irretrypolicy.py) minus retriable-status-codes, which needs a list of
	// codes that retry_policy cannot carry.
	retryOnValues = []string{"5xx", "gateway-error", "connect-failure", "retriable-4xx", "refused-stream"}
	// headerNameRE is an HTTP field name (RFC 9110 token).
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

func (c *Config) validateEdge(p *problems) {
	e := c.Edge
	switch e.Edition {
	case "emissary":
		if !semverRE.MatchString(e.EmissaryVersion) || !strings.HasPrefix(e.EmissaryVersion, "4.") {
			p.add("emissaryVersion", "%q is not supported: ztedge installs Emissary 4.x from its OCI charts (e.g. 4.1.0)", e.EmissaryVersion)
		}
		if strings.HasPrefix(e.EmissaryChartRepository, "http://") || strings.HasPrefix(e.EmissaryChartRepository, "https://") || e.EmissaryChartRepository == "" {
			p.add("emissaryChartRepository", "%q must be an oci:// registry (Emissary 4.x charts are published only as OCI) or a local directory of chart archives", e.EmissaryChartRepository)
		}
	case "edge-stack":
		if !semverRE.MatchString(e.EdgeStackChartVersion) {
			p.add("edgeStackChartVersion", "is required with edition edge-stack: the edge-stack chart version, e.g. 8.12.2")
		}
		if u, err := url.Parse(e.EdgeStackCrdsURL); err != nil || u.Scheme != "https" || !strings.HasSuffix(u.Path, ".yaml") {
			p.add("edgeStackCrdsUrl", "is required with edition edge-stack: the https:// URL of aes-crds.yaml for that version")
		}
		if e.EdgeStackLicenseKey == "" {
			p.add("edgeStackLicenseKey", "is required with edition edge-stack: `pulumi config set --secret edgeStackLicenseKey <key>`")
		}
		if !validChartSource(e.EdgeStackChartRepository) {
			p.add("edgeStackChartRepository", "%q must be an https:// or oci:// chart repository, or a local directory of chart archives", e.EdgeStackChartRepository)
		}
	default:
		p.add("edition", "%q is not allowed: use emissary or edge-stack", e.Edition)
	}
	if !dnsLabelRE.MatchString(e.Namespace) {
		p.add("ambassadorNamespace", "%q is not a Kubernetes namespace name", e.Namespace)
	}
	if e.Replicas < 1 || e.Replicas > 20 {
		p.add("ambassadorReplicas", "%d is out of range: use 1 to 20", e.Replicas)
	}
	for kind, rs := range e.Resources {
		if kind != "requests" && kind != "limits" {
			p.add("ambassadorResources", "%q is not requests or limits", kind)
		}
		for res, q := range rs {
			if (res != "cpu" && res != "memory") || !quantityRE.MatchString(q) {
				p.add("ambassadorResources", "%s.%s=%q: use cpu/memory with a Kubernetes quantity such as 200m or 512Mi", kind, res, q)
			}
		}
	}
	if e.Resources["limits"]["memory"] == "" {
		p.add("ambassadorResources", "needs limits.memory, so one Envoy cannot starve its node")
	}
	if !slices.Contains(ClientAuthModes, e.ClientAuth) {
		p.add("clientAuth", "%q is not allowed: use one of %s", e.ClientAuth, strings.Join(ClientAuthModes, ", "))
	}
	if !slices.Contains(TLS13Policies, e.SslPolicy) {
		p.add("sslPolicy", "%q is not a TLS-1.3-only policy: use one of %s", e.SslPolicy, strings.Join(TLS13Policies, ", "))
	}
	if e.LoadBalancerScheme != "internet-facing" && e.LoadBalancerScheme != "internal" {
		p.add("loadBalancerScheme", "%q is not allowed: use internet-facing or internal", e.LoadBalancerScheme)
	}
	if len(e.LoadBalancerSourceCidrs) == 0 {
		p.add("loadBalancerSourceCidrs", "needs at least one CIDR (0.0.0.0/0 for a public edge)")
	}
	for _, cidr := range e.LoadBalancerSourceCidrs {
		if pfx, err := netip.ParsePrefix(cidr); err != nil || pfx.Masked() != pfx {
			p.add("loadBalancerSourceCidrs", "%q is not a CIDR such as 203.0.113.0/24", cidr)
		}
	}
	if e.CaValidityHours < 24 || e.CertValidityHours < 24 {
		p.add("certValidityHours", "validities must be at least 24 hours")
	}
	if e.CertValidityHours > e.CaValidityHours {
		p.add("certValidityHours", "%d is longer than caValidityHours %d: a certificate cannot outlive its CA", e.CertValidityHours, e.CaValidityHours)
	}
	if e.CertEarlyRenewalHours < 0 || e.CertEarlyRenewalHours >= e.CertValidityHours {
		p.add("certEarlyRenewalHours", "%d must be between 0 and certValidityHours (%d)", e.CertEarlyRenewalHours, e.CertValidityHours)
	}
	for key, img := range map[string]string{"rateLimitImage": e.RateLimitImage, "redisImage": e.RedisImage, "authImage": c.Auth.Image} {
		if !imageRefRE.MatchString(img) || !(strings.Contains(img[strings.LastIndex(img, "/")+1:], ":") || strings.Contains(img, "@sha256:")) || strings.HasSuffix(img, ":latest") {
			p.add(key, "%q must be an image reference pinned to a tag or digest (not :latest)", img)
		}
	}
	if err := checkRedisImage(e.RedisImage); err != nil {
		p.add("redisImage", "%v", err)
	}
	before := len(*p)
	c.validateTrustedClients(p)
	if len(*p) == before {
		c.validateClientsFile(p) // jwt-auth's own parser, unless the mistake was already named
	}
	c.validateBackends(p)
	c.validateWafAndDNS(p)
}

// validateClientsFile runs jwt-auth's clients parser on the file the auth component will write,
// so anything jwt-auth would refuse at start-up fails here. The certificates do not exist yet:
// each client gets a well-formed placeholder pin.
func (c *Config) validateClientsFile(p *problems) {
	pins := map[string][]string{}
	for _, tc := range c.Edge.TrustedClients {
		pins[tc.Name] = []string{strings.Repeat("0", 64)}
	}
	doc, err := components.AuthClientsFile(c.Edge.TrustedClients, pins)
	if err == nil {
		err = jwtauth.ValidateClients([]byte(doc), "entry")
	}
	if err != nil {
		p.add("trustedClients", "%v", err)
	}
}

func (c *Config) validateTrustedClients(p *problems) {
	seen := map[string]bool{}
	for i, tc := range c.Edge.TrustedClients {
		key := fmt.Sprintf("trustedClients[%d]", i)
		if !dnsLabelRE.MatchString(tc.Name) {
			p.add("trustedClients", "%s.name %q must be a DNS label (it is the certificate's CN and a Secret name)", key, tc.Name)
		}
		if seen[tc.Name] {
			p.add("trustedClients", "%s.name %q is used twice", key, tc.Name)
		}
		seen[tc.Name] = true
		if len(tc.Services) == 0 {
			p.add("trustedClients", "%s.services is empty: list the path prefixes %q may call", key, tc.Name)
		}
		for _, s := range tc.Services {
			if !prefixRE.MatchString(s) {
				p.add("trustedClients", "%s.services: %q is not a path prefix such as /api/orders/", key, s)
			}
		}
		validateOrigins(p, "trustedClients", key, tc.Origins)
	}
}

// validateOrigins accepts exact origins only, spelled as browsers send them in the Origin header
// (lower-case scheme://host[:port], nothing after): the edge compares them as exact strings, so
// "https://app.example.com/" or a wildcard host would never match, or match too much.
func validateOrigins(p *problems, setting, key string, origins []string) {
	for _, o := range origins {
		u, err := url.Parse(o)
		if o == "*" || strings.Contains(o, "*") {
			p.add(setting, "%s.origins: %q: wildcards are not allowed; list the exact origins (https://app.example.com)", key, o)
		} else if err != nil || u.Scheme != "https" || u.Host == "" || o != "https://"+u.Host || o != strings.ToLower(o) {
			p.add(setting, "%s.origins: %q must be an exact lower-case https origin such as https://app.example.com (no path or trailing slash)", key, o)
		}
	}
}

func (c *Config) validateBackends(p *problems) {
	names, prefixes := map[string]bool{}, map[string]string{}
	for i, b := range c.Edge.Backends {
		key := fmt.Sprintf("backends[%d]", i)
		bad := func(format string, args ...any) { p.add("backends", key+"."+format, args...) }
		if !dnsLabelRE.MatchString(b.Name) {
			bad("name %q must be a DNS label (lower-case letters, digits, -)", b.Name)
		} else if names[b.Name] {
			bad("name %q is used twice", b.Name)
		}
		names[b.Name] = true
		if !dnsLabelRE.MatchString(b.Namespace) {
			bad("namespace %q is not a Kubernetes namespace name", b.Namespace)
		} else if b.Namespace == c.Edge.Namespace || b.Namespace == "kube-system" {
			bad("namespace %q is reserved for the edge itself; put backends in their own namespaces", b.Namespace)
		}
		if b.Service != "" && !dnsLabelRE.MatchString(b.Service) {
			bad("service %q is not a Service name", b.Service)
		}
		if b.Port < 1 || b.Port > 65535 {
			bad("port %d is out of range (1–65535)", b.Port)
		}
		if !prefixRE.MatchString(b.Prefix) || !strings.HasSuffix(b.Prefix, "/") || b.Prefix == "/" {
			bad("prefix %q must be a path such as /api/orders/ (leading and trailing slash, not / alone)", b.Prefix)
		} else if other, dup := prefixes[b.Prefix]; dup {
			bad("prefix %q is also used by backend %s", b.Prefix, other)
		} else if b.Prefix == "/token/" || b.Prefix == "/auth/" || strings.HasPrefix(b.Prefix, "/.well-known/") || strings.HasPrefix(b.Prefix, "/ambassador/") {
			bad("prefix %q is reserved for the edge (token endpoint, auth check, JWKS, Ambassador)", b.Prefix)
		}
		prefixes[b.Prefix] = b.Name
		validateOrigins(p, "backends", key, b.Origins)
		if b.Credentials && len(b.Origins) == 0 {
			bad("credentials is true but origins is empty: credentialed CORS needs explicit origins")
		}
		for _, m := range b.Methods {
			if !slices.Contains(httpMethods, m) {
				bad("methods: %q is not one of %s", m, strings.Join(httpMethods, ", "))
			}
		}
		for _, h := range b.Headers {
			if h == "*" || !headerNameRE.MatchString(h) {
				bad("headers: %q is not an HTTP header name (wildcards are not allowed)", h)
			}
		}
		if b.TimeoutMs < 0 || b.TimeoutMs > 300000 {
			bad("timeoutMs %d is out of range (0–300000; 0 = default 15000)", b.TimeoutMs)
		}
		if rl := b.RateLimit; rl != nil && (rl.RequestsPerUnit < 1 || !slices.Contains(rateUnits, rl.Unit)) {
			bad("rateLimit needs requestsPerUnit ≥ 1 and unit second, minute or hour (got %d per %q)", rl.RequestsPerUnit, rl.Unit)
		}
		if cb := b.CircuitBreaker; cb != nil && (cb.MaxConnections < 0 || cb.MaxPendingRequests < 0 || cb.MaxRequests < 0 || cb.MaxRetries < 0) {
			bad("circuitBreaker limits must not be negative")
		}
		if r := b.Retries; r != nil {
			timeout := b.TimeoutMs
			if timeout == 0 {
				timeout = components.DefaultTimeoutMs
			}
			switch {
			case !slices.Contains(retryOnValues, r.RetryOn):
				bad("retries.retryOn %q is not one of %s", r.RetryOn, strings.Join(retryOnValues, ", "))
			case r.NumRetries < 1 || r.NumRetries > 10:
				bad("retries.numRetries %d is out of range (1–10)", r.NumRetries)
			case r.PerTryTimeoutMs < 0 || r.PerTryTimeoutMs > timeout:
				bad("retries.perTryTimeoutMs %d must be between 0 and the route timeout (%d ms)", r.PerTryTimeoutMs, timeout)
			}
		}
	}
}

func (c *Config) validateAuth(p *problems) {
	a := c.Auth
	ttl, err := time.ParseDuration(a.TokenTTL)
	if err != nil || ttl < 5*time.Minute || ttl > 15*time.Minute {
		p.add("tokenTtl", "%q must be a duration from 5m to 15m (short-lived tokens)", a.TokenTTL)
	}
	if a.Replicas < 1 || a.Replicas > 20 {
		p.add("authReplicas", "%d is out of range: use 1 to 20", a.Replicas)
	}
	oidc := []string{a.OidcIssuer, a.OidcAudience, a.OidcJwksURL}
	set := 0
	for _, v := range oidc {
		if v != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		p.add("oidcIssuer", "oidcIssuer, oidcAudience and oidcJwksUrl go together: set all three or none")
	}
	if set == 3 && a.Users == "" {
		p.add("authUsers", "is required with oidcIssuer: jwt-auth maps an upstream ID token's sub to a user by oidcSubject")
	}
	if err := components.ValidateSigningKeys(a.SigningKeys); err != nil {
		p.add("authSigningKeys", "%v", err)
	}
	// jwt-auth's own parser: a document it would refuse at start-up (a crash loop) is refused here.
	if a.Users != "" {
		if err := jwtauth.ValidateUsers([]byte(a.Users), "entry"); err != nil {
			p.add("authUsers", "%v; fix it and set it again with `pulumi config set --secret authUsers \"$(cat users.yaml)\"`", err)
		}
	}
	for key, v := range map[string]string{"oidcIssuer": a.OidcIssuer, "oidcJwksUrl": a.OidcJwksURL} {
		if u, err := url.Parse(v); v != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
			p.add(key, "%q must be an https:// URL", v)
		}
	}
}
