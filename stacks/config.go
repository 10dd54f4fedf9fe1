package stacks

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/components"
)

// Config is the whole stack configuration, loaded and validated once before any resource exists.
type Config struct {
	Stack          string
	Region         string
	Hostname       string
	HostedZoneID   string
	CertificateArn string
	Tags           map[string]string

	Network       NetworkConfig
	Cluster       ClusterConfig
	AlbController AlbControllerConfig
	Edge          EdgeConfig
	Auth          AuthConfig
	Mesh          MeshConfig // upstream mTLS (stacks/mesh.go)
	Monitoring    MonitoringConfig

	// Platform is PlatformEKS or PlatformLocal; Local is read for PlatformLocal only.
	Platform string
	Local    LocalConfig
}

// BehindALB reports whether an AWS ALB terminates the client's TLS in front of Envoy (the alb-*
// and off modes on EKS); otherwise the client's TLS ends at Envoy (NLB passthrough, a local cluster).
func (c *Config) BehindALB() bool {
	return c.Platform != PlatformLocal && !components.EnvoyTerminatesTLS(c.Edge.ClientAuth)
}

// ProxyProtocol reports whether connections reach Envoy with a PROXY v2 header carrying the
// client's address: the NLB of nlb-passthrough on EKS. (Not on a local cluster: its Service
// forwards the client's own connection.)
func (c *Config) ProxyProtocol() bool {
	return c.Platform != PlatformLocal && components.EnvoyTerminatesTLS(c.Edge.ClientAuth)
}

// EdgeConfig describes Ambassador, the load balancer in front of it and what it routes to.
type EdgeConfig struct {
	Edition string // "emissary" or "edge-stack"
	// Engine is the proxy (stacks/engine.go): EngineEmissary or EngineEnvoyGateway.
	Engine                      string
	EnvoyGatewayChartRepository string
	EmissaryChartRepository     string
	EmissaryVersion             string
	EdgeStackChartRepository    string
	EdgeStackChartVersion       string
	EdgeStackCrdsURL            string
	EdgeStackLicenseKey         string // secret
	Namespace                   string
	Replicas                    int
	Resources                   map[string]map[string]string

	ClientAuth              string
	SslPolicy               string
	LoadBalancerScheme      string
	LoadBalancerSourceCidrs []string
	// Waf is off, count or block; WafRateLimit and WafCountRules shape the web ACL.
	Waf             string
	WafRateLimit    int
	WafCountRules   []string
	CreateDNSRecord bool
	TrustedClients  []components.TrustedClient
	Backends        []components.Backend

	CaValidityHours       int
	CertValidityHours     int
	CertEarlyRenewalHours int
	RateLimitImage        string
	RedisImage            string
}

// AuthConfig describes the jwt-auth service.
type AuthConfig struct {
	Image        string
	Replicas     int
	TokenTTL     string
	Users        string // secret document
	OidcIssuer   string
	OidcAudience string
	OidcJwksURL  string
	// SigningKeys are the signing keys and their phases (authSigningKeys).
	SigningKeys []components.SigningKey
}

// NetworkConfig describes a new VPC, or an existing one when ExistingVpcID is set.
type NetworkConfig struct {
	VpcCidr                  string
	AvailabilityZones        int
	NatGateways              string // "single" or "perAz"
	ExistingVpcID            string
	ExistingVpcCidr          string
	ExistingPublicSubnetIDs  []string
	ExistingPrivateSubnetIDs []string
	// The existing VPC's load balancer subnets and node subnet ranges (see components.NetworkArgs).
	ExistingNodeSubnetCidrs         []string
	ExistingLoadBalancerSubnetIDs   []string
	ExistingLoadBalancerSubnetCidrs []string
}

// ClusterConfig describes the EKS cluster and its managed node group.
type ClusterConfig = components.ClusterSpec

// AlbControllerConfig pins the AWS Load Balancer Controller chart.
type AlbControllerConfig struct {
	ChartVersion    string
	ChartRepository string
	Replicas        int
}

// Source is where configuration values come from: the engine (a *pulumi.Context), a stack file, or a test.
type Source interface {
	// Get returns the raw value of a full key ("ztedge:hostname") as the CLI passes it (JSON for lists and objects).
	Get(fullKey string) (string, bool)
	// IsSecret reports whether the key was set with --secret.
	IsSecret(fullKey string) bool
}

// ContextSource reads configuration from a running Pulumi program.
type ContextSource struct{ Ctx *pulumi.Context }

func (s ContextSource) Get(k string) (string, bool) { return s.Ctx.GetConfig(k) }
func (s ContextSource) IsSecret(k string) bool      { return s.Ctx.IsConfigSecret(k) }

// MapSource is configuration in memory (tests, `ztedge render`).
type MapSource struct {
	Values  map[string]string
	Secrets map[string]bool
}

func (s MapSource) Get(k string) (string, bool) { v, ok := s.Values[k]; return v, ok }
func (s MapSource) IsSecret(k string) bool      { return s.Secrets[k] }

// reader decodes keys of the registry and collects every problem, so a user sees all of them at once.
type reader struct {
	src      Source
	problems []error
	read     map[string]bool
}

func (r *reader) key(name string) Key {
	for _, k := range Keys {
		if k.Name == name {
			r.read[name] = true
			return k
		}
	}
	// A programming error: every key the code reads must be in the registry (and so in Pulumi.yaml).
	panic(fmt.Sprintf("stacks: config key %q is not in the registry (stacks/keys.go)", name))
}

func (r *reader) fail(k Key, format string, args ...any) {
	r.problems = append(r.problems, fmt.Errorf("%s: %s", k.FullName(), fmt.Sprintf(format, args...)))
}

// raw returns the value as set, or the registry default re-encoded as the CLI would pass it.
func (r *reader) raw(name string) (Key, string, bool) {
	k := r.key(name)
	if v, ok := r.src.Get(k.FullName()); ok {
		if k.Secret && v != "" && !r.src.IsSecret(k.FullName()) {
			r.fail(k, "is a secret and must be set with `pulumi config set --secret %s <value>`", k.Name)
		}
		return k, v, true
	}
	if k.Default == nil {
		return k, "", false
	}
	if s, ok := k.Default.(string); ok {
		return k, s, false
	}
	b, _ := json.Marshal(k.Default)
	return k, string(b), false
}

func (r *reader) str(name string) string {
	_, v, _ := r.raw(name)
	return strings.TrimSpace(v)
}

func (r *reader) integer(name string) int {
	k, v, _ := r.raw(name)
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		r.fail(k, "%q is not a whole number", v)
	}
	return n
}

func (r *reader) boolean(name string) bool {
	k, v, _ := r.raw(name)
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		r.fail(k, "%q is not true or false", v)
	}
	return b
}

// json decodes a list or object value; unknown fields in objects are errors naming the nearest
// known field, not silently dropped.
func (r *reader) json(name string, out any) {
	k, v, _ := r.raw(name)
	if v == "" || !r.checkFields(k, v, out) {
		return
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		r.fail(k, "cannot be read as a JSON %s: %v", k.Type, err)
	}
}

func (r *reader) strings(name string) []string {
	var out []string
	r.json(name, &out)
	return out
}

// KeysRead reports which registry keys a Load call read (the Pulumi.yaml check uses it to find stale keys).
func KeysRead(src Source, stack string) []string {
	r := &reader{src: src, read: map[string]bool{}}
	r.load(stack)
	var out []string
	for k := range r.read {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Load reads and validates the stack configuration. The error lists every problem, one per line,
// each naming the key and what is allowed.
func Load(src Source, stack string) (*Config, error) {
	r := &reader{src: src, read: map[string]bool{}}
	cfg := r.load(stack)
	problems := append(unknownKeys(src), r.problems...)
	problems = append(problems, cfg.Validate()...)
	if len(problems) > 0 {
		return nil, &ConfigError{Problems: problems}
	}
	return cfg, nil
}

func (r *reader) load(stack string) *Config {
	c := &Config{Stack: stack}
	c.Region = r.str("aws:region")
	c.Hostname = strings.ToLower(r.str("hostname"))
	c.HostedZoneID = r.str("hostedZoneId")
	c.CertificateArn = r.str("certificateArn")
	r.json("tags", &c.Tags)

	c.Network = NetworkConfig{
		VpcCidr:                  r.str("vpcCidr"),
		AvailabilityZones:        r.integer("availabilityZones"),
		NatGateways:              r.str("natGateways"),
		ExistingVpcID:            r.str("existingVpcId"),
		ExistingVpcCidr:          r.str("existingVpcCidr"),
		ExistingPublicSubnetIDs:  r.strings("existingPublicSubnetIds"),
		ExistingPrivateSubnetIDs: r.strings("existingPrivateSubnetIds"),

		ExistingNodeSubnetCidrs:         r.strings("existingNodeSubnetCidrs"),
		ExistingLoadBalancerSubnetIDs:   r.strings("existingLoadBalancerSubnetIds"),
		ExistingLoadBalancerSubnetCidrs: r.strings("existingLoadBalancerSubnetCidrs"),
	}
	c.Cluster = ClusterConfig{
		Name:                      r.str("clusterName"),
		KubernetesVersion:         r.str("kubernetesVersion"),
		NodeInstanceTypes:         r.strings("nodeInstanceTypes"),
		NodeCapacityType:          r.str("nodeCapacityType"),
		NodeMinSize:               r.integer("nodeMinSize"),
		NodeDesiredSize:           r.integer("nodeDesiredSize"),
		NodeMaxSize:               r.integer("nodeMaxSize"),
		NodeDiskSizeGiB:           r.integer("nodeDiskSizeGiB"),
		EndpointPublicAccess:      r.boolean("endpointPublicAccess"),
		EndpointPublicAccessCidrs: r.strings("endpointPublicAccessCidrs"),
		AdminArns:                 r.strings("clusterAdminArns"),
		LogTypes:                  r.strings("clusterLogTypes"),
	}
	if c.Cluster.Name == "" {
		c.Cluster.Name = "ztedge-" + stack
	}
	c.Platform, c.Local = r.str("platform"), r.local()
	c.AlbController = AlbControllerConfig{
		ChartVersion:    r.str("albControllerChartVersion"),
		ChartRepository: r.str("albControllerChartRepository"),
		Replicas:        r.integer("albControllerReplicas"),
	}
	c.Edge = EdgeConfig{
		Edition:                     r.str("edition"),
		Engine:                      r.str("engine"),
		EnvoyGatewayChartRepository: r.str("envoyGatewayChartRepository"),
		EmissaryChartRepository:     r.str("emissaryChartRepository"),
		EmissaryVersion:             r.str("emissaryVersion"),
		EdgeStackChartRepository:    r.str("edgeStackChartRepository"),
		EdgeStackChartVersion:       r.str("edgeStackChartVersion"),
		EdgeStackCrdsURL:            r.str("edgeStackCrdsUrl"),
		EdgeStackLicenseKey:         r.str("edgeStackLicenseKey"),
		Namespace:                   r.str("ambassadorNamespace"),
		Replicas:                    r.integer("ambassadorReplicas"),
		ClientAuth:                  r.str("clientAuth"),
		SslPolicy:                   r.str("sslPolicy"),
		LoadBalancerScheme:          r.str("loadBalancerScheme"),
		LoadBalancerSourceCidrs:     r.strings("loadBalancerSourceCidrs"),
		Waf:                         r.str("waf"),
		WafRateLimit:                r.integer("wafRateLimit"),
		WafCountRules:               r.strings("wafCountRules"),
		CreateDNSRecord:             r.boolean("createDnsRecord"),
		CaValidityHours:             r.integer("caValidityHours"),
		CertValidityHours:           r.integer("certValidityHours"),
		CertEarlyRenewalHours:       r.integer("certEarlyRenewalHours"),
		RateLimitImage:              r.str("rateLimitImage"),
		RedisImage:                  r.str("redisImage"),
	}
	r.json("ambassadorResources", &c.Edge.Resources)
	r.json("trustedClients", &c.Edge.TrustedClients)
	r.json("backends", &c.Edge.Backends)
	c.Auth = AuthConfig{
		Image:        r.str("authImage"),
		Replicas:     r.integer("authReplicas"),
		TokenTTL:     r.str("tokenTtl"),
		Users:        r.str("authUsers"),
		OidcIssuer:   r.str("oidcIssuer"),
		OidcAudience: r.str("oidcAudience"),
		OidcJwksURL:  r.str("oidcJwksUrl"),
	}
	r.json("authSigningKeys", &c.Auth.SigningKeys)
	c.Mesh = r.mesh()
	c.Monitoring = r.monitoring()
	return c
}

// ConfigError is every configuration problem found, reported before any resource is registered.
type ConfigError struct{ Problems []error }

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  - " + p.Error()
	}
	return fmt.Sprintf("invalid stack configuration (%d problem(s)); fix with `pulumi config set <key> <value>`:\n%s",
		len(e.Problems), strings.Join(lines, "\n"))
}

// Unwrap lets errors.Is / errors.As see each problem.
func (e *ConfigError) Unwrap() []error { return e.Problems }
