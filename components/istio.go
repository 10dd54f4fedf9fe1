package components

import (
	"fmt"
	"strconv"

	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Istio integration, as Emissary 4.1.0 and Istio 1.30.3 do it (README "Backends in a service mesh"
// has the sources). Ambassador's pods get an istio-proxy sidecar only to obtain the pod's workload
// certificate: the proxy writes it to a shared in-memory volume (OUTPUT_CERTS), Emissary watches
// that directory (AMBASSADOR_ISTIO_SECRET_DIR) and serves it as the Secret "istio-certs", and the
// istio-upstream TLSContext presents it to the backends' sidecars, which require it (STRICT).
const (
	// IstioVersion is the Istio release whose charts (base, istiod) and CRDs ztedge checks.
	IstioVersion = "1.30.3"
	// IstioTLSContext is the TLSContext every backend Mapping names with upstreamMtls istio.
	IstioTLSContext = "istio-upstream"
	// IstioCertsSecret is the Secret Emissary makes of the certificate files; the name is fixed
	// by Emissary (cmd/entrypoint/istiocert.go: NewIstioCert(secretDir, "istio-certs", …)).
	IstioCertsSecret = "istio-certs"
	// IstioCertsDir is where the sidecar writes key.pem, cert-chain.pem and root-cert.pem.
	IstioCertsDir    = "/etc/istio-certs"
	istioCertsVolume = "istio-certs"
	// IstioALPN is what a mesh client advertises to an in-mesh server (Istio 1.30.3
	// pilot/pkg/networking/util/util.go: ALPNInMesh = []string{"istio"}); the inbound listener
	// matches mesh mTLS on it.
	IstioALPN = "istio"
	// IstiodXDSPort is istiod's xDS and certificate-signing port (sidecars dial it).
	IstiodXDSPort = 15012
	// IstioInjectionLabel on a namespace makes istiod's webhook inject sidecars into its pods.
	IstioInjectionLabel = "istio-injection"
	// IstioSecurityAPI is the API version of PeerAuthentication and AuthorizationPolicy (v1 is
	// served and stored in 1.30.3's CRDs; Sidecar is networking.istio.io/v1 likewise).
	IstioSecurityAPI   = "security.istio.io/v1"
	IstioNetworkingAPI = "networking.istio.io/v1"
)

// IstiodPodLabels select istiod's pods (the istiod chart's Deployment labels).
var IstiodPodLabels = map[string]string{"app": "istiod"}

// IstioAmbassadorPodValues are the Ambassador chart values that add the certificate-only sidecar:
//   - label sidecar.istio.io/inject "true": istiod's object-selector webhook injects this pod even
//     though Ambassador's namespace (shared with jwt-auth and the rate-limit service) is not
//     labelled for injection;
//   - interceptionMode NONE: no iptables, so no istio-init container with NET_ADMIN (the
//     namespace stays Pod Security "restricted") and Envoy's listeners are never redirected;
//     includeInboundPorts/includeOutboundIPRanges "" say the same for older injectors;
//   - proxy.istio.io/config OUTPUT_CERTS and the userVolumeMount: the proxy writes its workload
//     certificate, key and the mesh root into the shared emptyDir (memory: keys never touch disk);
//   - AMBASSADOR_ISTIO_SECRET_DIR: Emissary watches that directory and re-reads rotated files;
//   - AMBASSADOR_ENVOY_BASE_ID 1: Emissary's Envoy must not share base-id 0 with the sidecar's.
func IstioAmbassadorPodValues() map[string]any {
	return map[string]any{
		"podLabels": map[string]any{"sidecar.istio.io/inject": "true"},
		"podAnnotations": map[string]any{
			"sidecar.istio.io/interceptionMode":                "NONE",
			"traffic.sidecar.istio.io/includeInboundPorts":     "",
			"traffic.sidecar.istio.io/includeOutboundIPRanges": "",
			"proxy.istio.io/config":                            "proxyMetadata:\n  OUTPUT_CERTS: " + IstioCertsDir + "\n",
			"sidecar.istio.io/userVolumeMount":                 `[{"name": "` + istioCertsVolume + `", "mountPath": "` + IstioCertsDir + `"}]`,
		},
		"volumes":      []any{map[string]any{"name": istioCertsVolume, "emptyDir": map[string]any{"medium": "Memory"}}},
		"volumeMounts": []any{map[string]any{"name": istioCertsVolume, "mountPath": IstioCertsDir, "readOnly": true}},
		"env": map[string]any{
			"AMBASSADOR_ISTIO_SECRET_DIR": IstioCertsDir,
			"AMBASSADOR_ENVOY_BASE_ID":    "1",
		},
	}
}

// IstioTLSContextSpec originates mTLS to a backend's sidecar: Ambassador's workload certificate
// (the "istio-certs" Secret Emissary builds from the files; it carries only tls.crt and tls.key),
// the mesh root from the file the sidecar writes, so Envoy verifies the backend's certificate
// (without it Envoy would accept any server certificate), and ALPN "istio", which Istio's inbound
// listener requires of mesh mTLS.
func IstioTLSContextSpec() map[string]any {
	return map[string]any{
		"hosts":             []any{},
		"secret":            IstioCertsSecret,
		"cacert_chain_file": IstioCertsDir + "/root-cert.pem",
		"alpn_protocols":    IstioALPN,
		"min_tls_version":   "v1.3",
		"max_tls_version":   "v1.3",
	}
}

// IstioSidecarSpec limits the certificate sidecar to nothing: no ingress listeners, and egress
// hosts only from the namespace "~", which no namespace can be named (not a DNS label), so istiod
// sends it no outbound listener to bind next to Emissary's ports.
func IstioSidecarSpec(podLabels map[string]string) map[string]any {
	return map[string]any{
		"workloadSelector": map[string]any{"labels": toAnyMap(podLabels)},
		"egress":           []any{map[string]any{"hosts": []any{"~/*"}}},
	}
}

// IstioPeerAuthenticationSpec makes a backend's sidecar refuse anything but mesh mTLS.
func IstioPeerAuthenticationSpec(b Backend) map[string]any {
	return map[string]any{
		"selector": map[string]any{"matchLabels": toAnyMap(b.Selector())},
		"mtls":     map[string]any{"mode": "STRICT"},
	}
}

// IstioAmbassadorPrincipal is Ambassador's SPIFFE identity, with any trust domain: Istio matches
// a principal with a leading "*" as a suffix (an existing mesh may not use cluster.local).
func IstioAmbassadorPrincipal(namespace, serviceAccount string) string {
	return fmt.Sprintf("*/ns/%s/sa/%s", namespace, serviceAccount)
}

// IstioAuthorizationPolicySpec admits, on the backend's port, only Ambassador's service account.
// An ALLOW policy that selects a workload denies whatever it does not match.
func IstioAuthorizationPolicySpec(b Backend, principal string) map[string]any {
	return map[string]any{
		"selector": map[string]any{"matchLabels": toAnyMap(b.Selector())},
		"action":   "ALLOW",
		"rules": []any{map[string]any{
			"from": []any{map[string]any{"source": map[string]any{"principals": []any{principal}}}},
			"to":   []any{map[string]any{"operation": map[string]any{"ports": []any{strconv.Itoa(b.Port)}}}},
		}},
	}
}

// IstioBaseValues and IstiodValues are the values ztedge sets on the base and istiod charts
// (checked against the charts' values.yaml in tests).
func IstioBaseValues(namespace string) map[string]any {
	return map[string]any{"global": map[string]any{"istioNamespace": namespace}}
}

func IstiodValues(namespace string) map[string]any {
	return map[string]any{
		"global": map[string]any{"istioNamespace": namespace},
		// The injector webhook fails closed: with istiod down no injected pod starts, so keep two.
		"autoscaleMin": 2,
	}
}

// IstioInstallArgs installs Istio (base, then istiod) from pinned charts.
type IstioInstallArgs struct {
	Namespace       string
	Version         string
	ChartRepository string
	DependsOn       []pulumi.Resource
}

// IstioInstall is the installed control plane: Ambassador's release waits for Istiod (its
// injector webhook must exist before Ambassador's pods are created).
type IstioInstall struct {
	pulumi.ResourceState

	Base   *helmv3.Release
	Istiod *helmv3.Release
}

// NewIstioInstall creates Istio's namespace, the base chart (CRDs, cluster roles) and istiod.
func NewIstioInstall(ctx *pulumi.Context, name string, args *IstioInstallArgs, opts ...pulumi.ResourceOption) (*IstioInstall, error) {
	if args.Namespace == "" || args.Version == "" || args.ChartRepository == "" {
		return nil, fmt.Errorf("istio-install: Namespace, Version and ChartRepository are required")
	}
	c := &IstioInstall{}
	child, err := register(ctx, "ztedge:mesh:IstioInstall", name, c, opts)
	if err != nil {
		return nil, err
	}
	// istiod runs as non-root without privileges (its chart's securityContext), so "restricted".
	ns, err := newNamespace(ctx, args.Namespace, podSecurityLabels(PodSecurityRestricted), child)
	if err != nil {
		return nil, err
	}
	release := func(logical, releaseName, chart string, values map[string]any, deps ...pulumi.Resource) (*helmv3.Release, error) {
		return helmv3.NewRelease(ctx, logical, &helmv3.ReleaseArgs{
			Name:           pulumi.String(releaseName),
			Chart:          chartRef(args.ChartRepository, chart, args.Version),
			RepositoryOpts: helmRepository(args.ChartRepository),
			Version:        pulumi.String(args.Version),
			Namespace:      ns.Metadata.Name().Elem(),
			Values:         pulumi.ToMap(values),
			Atomic:         pulumi.Bool(true), CleanupOnFail: pulumi.Bool(true), Timeout: pulumi.Int(600), MaxHistory: pulumi.Int(10),
		}, child, pulumi.DependsOn(append(args.DependsOn, deps...)))
	}
	if c.Base, err = release(name+"-base", "istio-base", "base", IstioBaseValues(args.Namespace)); err != nil {
		return nil, err
	}
	if c.Istiod, err = release(name+"-istiod", "istiod", "istiod", IstiodValues(args.Namespace), c.Base); err != nil {
		return nil, err
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"base": c.Base.Name, "istiod": c.Istiod.Name})
}

// IstioPoliciesArgs describes the mesh objects around Ambassador and the backends.
type IstioPoliciesArgs struct {
	IstioNamespace          string
	AmbassadorNamespace     pulumi.StringInput
	AmbassadorNamespaceName string
	AmbassadorPodLabels     map[string]string
	AmbassadorAccount       string // Ambassador's ServiceAccount
	Backends                []Backend
	BackendNamespaces       map[string]pulumi.StringOutput
	// DependsOn: the Istio CRDs (the base release when ztedge installs Istio).
	DependsOn []pulumi.Resource
}

// IstioPolicies are the mesh's counterpart of the NetworkPolicies (which stay): per backend a
// STRICT PeerAuthentication and an AuthorizationPolicy admitting only Ambassador, the Sidecar
// that keeps Ambassador's proxy to certificates, and NetworkPolicies letting the sidecars reach
// istiod (the default-deny egress would cut them off from their certificates).
type IstioPolicies struct {
	pulumi.ResourceState

	// Sidecar must exist before Ambassador's pods start (AmbassadorArgs.BeforePods).
	Sidecar pulumi.Resource
	Objects []pulumi.Resource
}

// NewIstioPolicies creates the mesh objects.
func NewIstioPolicies(ctx *pulumi.Context, name string, args *IstioPoliciesArgs, opts ...pulumi.ResourceOption) (*IstioPolicies, error) {
	if args.IstioNamespace == "" || args.AmbassadorNamespace == nil || args.AmbassadorNamespaceName == "" || len(args.AmbassadorPodLabels) == 0 || args.AmbassadorAccount == "" {
		return nil, fmt.Errorf("istio-policies: IstioNamespace, AmbassadorNamespace(Name), AmbassadorPodLabels and AmbassadorAccount are required")
	}
	for _, b := range args.Backends {
		if _, ok := args.BackendNamespaces[b.Namespace]; !ok {
			return nil, fmt.Errorf("istio-policies: backend %q: namespace %q is not in BackendNamespaces", b.Name, b.Namespace)
		}
	}
	c := &IstioPolicies{}
	child, err := register(ctx, "ztedge:mesh:IstioPolicies", name, c, opts)
	if err != nil {
		return nil, err
	}
	after := pulumi.DependsOn(args.DependsOn)
	c.Sidecar, err = meshObject(ctx, name+"-sidecar-ambassador", IstioNetworkingAPI, "Sidecar", "ambassador-certificates-only",
		args.AmbassadorNamespace, IstioSidecarSpec(args.AmbassadorPodLabels), child, after)
	if err != nil {
		return nil, err
	}
	c.Objects = append(c.Objects, c.Sidecar)
	principal := IstioAmbassadorPrincipal(args.AmbassadorNamespaceName, args.AmbassadorAccount)
	for _, b := range args.Backends {
		ns := args.BackendNamespaces[b.Namespace]
		pa, err := meshObject(ctx, name+"-peerauthentication-"+b.Name, IstioSecurityAPI, "PeerAuthentication", b.Name+"-strict", ns, IstioPeerAuthenticationSpec(b), child, after)
		if err != nil {
			return nil, err
		}
		ap, err := meshObject(ctx, name+"-authorizationpolicy-"+b.Name, IstioSecurityAPI, "AuthorizationPolicy", b.Name+"-from-ambassador", ns, IstioAuthorizationPolicySpec(b, principal), child, after)
		if err != nil {
			return nil, err
		}
		c.Objects = append(c.Objects, pa, ap)
	}

	// Sidecars dial istiod for their configuration and certificates.
	istiod := peer{namespace: args.IstioNamespace, pods: IstiodPodLabels}
	toIstiod := []rule{{peers: []peer{istiod}, ports: tcp(IstiodXDSPort)}}
	policies := []policy{{
		name: "ambassador-to-istiod", nsName: args.AmbassadorNamespaceName, namespace: args.AmbassadorNamespace,
		pods: args.AmbassadorPodLabels, types: []string{"Egress"}, egress: toIstiod,
	}}
	for _, ns := range sortedNamespaces(args.BackendNamespaces) {
		policies = append(policies, policy{
			name: "sidecars-to-istiod", nsName: ns, namespace: args.BackendNamespaces[ns], types: []string{"Egress"}, egress: toIstiod,
		})
	}
	for _, p := range policies {
		np, err := networkingv1.NewNetworkPolicy(ctx, p.nsName+"/"+p.name, &networkingv1.NetworkPolicyArgs{
			Metadata: metaFor(p), Spec: p.spec(),
		}, child)
		if err != nil {
			return nil, err
		}
		c.Objects = append(c.Objects, np)
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"count": pulumi.Int(len(c.Objects))})
}
