package stacks

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/components"
)

// MeshConfig is how Ambassador → backend traffic is secured (ztedge:upstreamMtls) and the
// settings of the mesh that does it.
type MeshConfig struct {
	UpstreamMtls string // pki, istio or consul

	IstioInstall         bool
	IstioVersion         string
	IstioChartRepository string
	IstioNamespace       string

	ConsulAddress     string
	ConsulDatacenter  string
	ConsulToken       string // secret
	ConsulServerCidrs []string
}

func (r *reader) mesh() MeshConfig {
	return MeshConfig{
		UpstreamMtls:         r.str("upstreamMtls"),
		IstioInstall:         r.boolean("istioInstall"),
		IstioVersion:         r.str("istioVersion"),
		IstioChartRepository: r.str("istioChartRepository"),
		IstioNamespace:       r.str("istioNamespace"),
		ConsulAddress:        r.str("consulAddress"),
		ConsulDatacenter:     r.str("consulDatacenter"),
		ConsulToken:          r.str("consulToken"),
		ConsulServerCidrs:    r.strings("consulServerCidrs"),
	}
}

// reservedMeshNamespaces may not hold backends in istio mode: injecting every pod there would
// break the cluster (kube-system) or the control plane itself.
var reservedMeshNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// validateMesh checks the mesh settings: what a mode needs, and combinations that cannot work.
func (c *Config) validateMesh(p *problems) {
	m := c.Mesh
	switch m.UpstreamMtls {
	case components.UpstreamMtlsPKI:
		// Settings of a mesh that is not used are almost always a forgotten upstreamMtls.
		if m.ConsulAddress != "" || m.ConsulDatacenter != "" || m.ConsulToken != "" || len(m.ConsulServerCidrs) > 0 {
			p.add("upstreamMtls", "is pki but consul* keys are set; set upstreamMtls consul to use them, or remove them")
		}
		if m.IstioInstall {
			p.add("istioInstall", "installs Istio only with upstreamMtls istio")
		}
	case components.UpstreamMtlsIstio:
		c.validateIstio(p)
	case components.UpstreamMtlsConsul:
		c.validateConsul(p)
	default:
		p.add("upstreamMtls", "%q is not allowed: use pki (ztedge's CA), istio or consul", m.UpstreamMtls)
	}
}

func (c *Config) validateIstio(p *problems) {
	m := c.Mesh
	if !dnsLabelRE.MatchString(m.IstioNamespace) {
		p.add("istioNamespace", "%q is not a Kubernetes namespace name", m.IstioNamespace)
	}
	if m.IstioInstall {
		if m.IstioVersion != components.IstioVersion {
			p.add("istioVersion", "%q is not supported: ztedge installs Istio %s, whose chart values and CRDs it checks", m.IstioVersion, components.IstioVersion)
		}
		if !validChartSource(m.IstioChartRepository) {
			p.add("istioChartRepository", "%q must be an https:// or oci:// chart repository, or a local directory of chart archives", m.IstioChartRepository)
		}
	}
	if m.ConsulAddress != "" || m.ConsulToken != "" {
		p.add("upstreamMtls", "is istio but consul* keys are set: one mesh secures the backends, not both")
	}
	for _, b := range c.Edge.Backends {
		switch {
		case b.Namespace == c.Edge.Namespace:
			// Labelling it for injection would give jwt-auth and the rate-limit service
			// intercepting sidecars (istio-init needs NET_ADMIN, refused by Pod Security
			// "restricted") and put them behind STRICT mTLS that Ambassador does not speak to them.
			p.add("backends", "backend %q is in ambassadorNamespace %q; with upstreamMtls istio backends need a namespace of their own (it is labelled for sidecar injection)", b.Name, b.Namespace)
		case b.Namespace == m.IstioNamespace || slices.Contains(reservedMeshNamespaces, b.Namespace):
			p.add("backends", "backend %q is in namespace %q, which must not be labelled for sidecar injection; move the backend", b.Name, b.Namespace)
		}
	}
}

func (c *Config) validateConsul(p *problems) {
	m := c.Mesh
	if m.ConsulAddress == "" {
		p.add("consulAddress", "is required with upstreamMtls consul: the Consul servers' HTTP API, e.g. https://consul-server.consul.svc:8501")
	} else if u, err := url.Parse(m.ConsulAddress); err != nil || u.Hostname() == "" || u.Path != "" && u.Path != "/" || (u.Scheme != "https" && u.Scheme != "http") {
		p.add("consulAddress", "%q is not https://host[:port] (or http://host[:port] inside the cluster)", m.ConsulAddress)
	} else if _, err := components.ConsulPort(m.ConsulAddress); err != nil {
		p.add("consulAddress", "%v", err)
	} else if u.Scheme == "http" && !strings.HasSuffix(u.Hostname(), ".svc") && !strings.HasSuffix(u.Hostname(), ".svc.cluster.local") {
		// The ACL token travels with every request: in clear text only inside the cluster.
		p.add("consulAddress", "%q sends the ACL token in clear text outside the cluster; use https://, or an in-cluster Service name (….svc) with http://", m.ConsulAddress)
	}
	if !dnsLabelRE.MatchString(m.ConsulDatacenter) {
		p.add("consulDatacenter", "is required with upstreamMtls consul: the datacenter of the backends, e.g. dc1 (got %q)", m.ConsulDatacenter)
	}
	if m.ConsulToken == "" {
		p.add("consulToken", "is required with upstreamMtls consul: `pulumi config set --secret consulToken <ACL token>` (service:ambassador write, service:<backend> read)")
	}
	if len(m.ConsulServerCidrs) == 0 {
		p.add("consulServerCidrs", "is required with upstreamMtls consul: the CIDRs of the Consul servers (the NetworkPolicies admit only them)")
	}
	for _, cidr := range m.ConsulServerCidrs {
		if pfx, err := netip.ParsePrefix(cidr); err != nil || pfx.Masked() != pfx {
			p.add("consulServerCidrs", "%q is not a CIDR such as 10.0.12.0/24 (host bits must be zero)", cidr)
		} else if pfx.Bits() == 0 {
			p.add("consulServerCidrs", "%q admits every address; name the Consul servers' range", cidr)
		}
	}
	if m.IstioInstall {
		p.add("istioInstall", "is true but upstreamMtls is consul: one mesh secures the backends, not both")
	}
}

// meshPlan is the mesh's part of the graph, built in three steps around Ambassador.
type meshPlan struct {
	cfg     *Config
	install *components.IstioInstall
	token   pulumi.Resource
	istio   *components.IstioPolicies
	consul  *components.ConsulConnect
}

// newMeshPlan installs Istio when asked (before Ambassador's pods, whose sidecar its webhook
// injects) and returns what Ambassador's release needs.
func newMeshPlan(ctx *pulumi.Context, cfg *Config, p *Platform) (*meshPlan, error) {
	m := &meshPlan{cfg: cfg}
	if cfg.Mesh.UpstreamMtls == components.UpstreamMtlsIstio && cfg.Mesh.IstioInstall {
		var err error
		m.install, err = components.NewIstioInstall(ctx, "istio", &components.IstioInstallArgs{
			Namespace: cfg.Mesh.IstioNamespace, Version: cfg.Mesh.IstioVersion, ChartRepository: cfg.Mesh.IstioChartRepository,
			DependsOn: p.Nodes,
		}, pulumi.Providers(p.Provider))
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ambassadorArgs adds the mesh's pod values, ordering and pre-start objects to Ambassador's.
func (m *meshPlan) ambassadorArgs(ctx *pulumi.Context, p *Platform, a *components.AmbassadorArgs, backendNamespaces *components.BackendNamespaces) {
	onCluster := pulumi.Providers(p.Provider)
	switch m.cfg.Mesh.UpstreamMtls {
	case components.UpstreamMtlsIstio:
		a.PodValues = components.IstioAmbassadorPodValues()
		var crds []pulumi.Resource
		if m.install != nil {
			a.DependsOn = append(a.DependsOn, m.install.Istiod)
			crds = []pulumi.Resource{m.install.Base}
		}
		naming := components.AmbassadorNamesFor(m.cfg.Edge.Edition)
		a.BeforePods = func(ns pulumi.StringOutput) ([]pulumi.Resource, error) {
			var err error
			m.istio, err = components.NewIstioPolicies(ctx, "istio", &components.IstioPoliciesArgs{
				IstioNamespace: m.cfg.Mesh.IstioNamespace, AmbassadorNamespace: ns, AmbassadorNamespaceName: m.cfg.Edge.Namespace,
				AmbassadorPodLabels: naming.PodLabels, AmbassadorAccount: naming.Release,
				Backends: m.cfg.Edge.Backends, BackendNamespaces: backendNamespaces.Names, DependsOn: crds,
			}, onCluster)
			if err != nil {
				return nil, err
			}
			return []pulumi.Resource{m.istio.Sidecar}, nil
		}
	case components.UpstreamMtlsConsul:
		a.PodValues = components.ConsulAmbassadorPodValues()
		a.BeforePods = func(ns pulumi.StringOutput) ([]pulumi.Resource, error) {
			token, err := components.NewConsulTokenSecret(ctx, "consul-token", &components.ConsulTokenArgs{Namespace: ns, Token: m.cfg.Mesh.ConsulToken}, onCluster)
			m.token = token
			return []pulumi.Resource{token}, err
		}
	}
}

// namespaceLabels are added to the backends' namespaces: Istio injects sidecars there.
func (m *meshPlan) namespaceLabels() map[string]string {
	if m.cfg.Mesh.UpstreamMtls == components.UpstreamMtlsIstio {
		return map[string]string{components.IstioInjectionLabel: "enabled"}
	}
	return nil
}

// afterAmbassador creates the Consul objects (the ConsulResolver needs the Emissary CRDs).
func (m *meshPlan) afterAmbassador(ctx *pulumi.Context, p *Platform, e *Edge) error {
	if m.cfg.Mesh.UpstreamMtls != components.UpstreamMtlsConsul {
		return nil
	}
	amb := e.Ambassador
	var err error
	m.consul, err = components.NewConsulConnect(ctx, "consul", &components.ConsulConnectArgs{
		Address: m.cfg.Mesh.ConsulAddress, Datacenter: m.cfg.Mesh.ConsulDatacenter, ServerCidrs: m.cfg.Mesh.ConsulServerCidrs,
		Image: m.cfg.Auth.Image, AmbassadorNamespace: amb.NamespaceName, AmbassadorNamespaceName: amb.Namespace,
		AmbassadorPodLabels: amb.PodLabels, TokenSecret: m.token, VpcCidr: p.VpcCidr,
		Backends: m.cfg.Edge.Backends, BackendNamespaces: e.BackendNamespaces.Names, CRDs: amb.CRDs, DependsOn: p.Nodes,
	}, pulumi.Providers(p.Provider))
	return err
}

// upstream is the mesh's TLSContext and routing for EdgeConfig (nil: the PKI's).
func (m *meshPlan) upstream(amb *components.Ambassador) *components.UpstreamMesh {
	switch m.cfg.Mesh.UpstreamMtls {
	case components.UpstreamMtlsIstio:
		// The certificate files exist once Ambassador's pods are ready: the release waits for
		// that (atomic), and the sidecar is ready only with its certificate.
		return &components.UpstreamMesh{TLSContext: components.IstioTLSContext, Spec: components.IstioTLSContextSpec(), After: []pulumi.Resource{amb.Release}}
	case components.UpstreamMtlsConsul:
		return &components.UpstreamMesh{
			TLSContext: components.ConsulTLSContext, Spec: components.ConsulTLSContextSpec(),
			After: []pulumi.Resource{m.consul.Sync, m.consul.Resolver}, Route: components.ConsulRoute(m.cfg.Mesh.ConsulDatacenter),
		}
	}
	return nil
}
