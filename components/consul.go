package components

import (
	"fmt"
	"net/url"
	"strconv"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Consul Connect integration with an existing Consul (consul-k8s 1.9.11 for the ServiceIntentions
// CRD and the sidecars). Ambassador is the Connect service "ambassador": consul-cert-sync (a
// subcommand of the jwt-auth image, internal/consulsync) keeps its Connect leaf certificate and
// the Connect CA roots in two Secrets with blocking queries, so a rotation reaches them within
// seconds; Emissary watches Secrets and reloads. The consul-upstream TLSContext presents the leaf
// to the backends' Connect sidecars and verifies them against the roots; Mappings resolve
// "<service>-sidecar-proxy" through a ConsulResolver; ServiceIntentions admit only "ambassador".
const (
	ConsulTLSContext = "consul-upstream"
	// ConsulServiceName is Ambassador's Connect identity (spiffe://…/svc/ambassador).
	ConsulServiceName = "ambassador"
	// ConsulLeafSecret (kubernetes.io/tls) and ConsulRootsSecret (tls.crt = the CA roots) are
	// created empty by ztedge and filled by consul-cert-sync.
	ConsulLeafSecret  = "consul-connect-leaf"
	ConsulRootsSecret = "consul-connect-roots"
	ConsulTokenSecret = "consul-acl-token"
	ConsulSyncName    = "consul-cert-sync"
	// ConsulSidecarPort is the inbound port of a consul-k8s Envoy sidecar
	// (control-plane/connect-inject/constants ProxyDefaultInboundPort at v1.9.11).
	ConsulSidecarPort = 20000
	// ConsulSyncHealthPort serves /ready once both Secrets hold certificates.
	ConsulSyncHealthPort = 8080
	// ConsulIntentionsAPI is the API version of consul-k8s's ServiceIntentions.
	ConsulIntentionsAPI = "consul.hashicorp.com/v1alpha1"
)

// ConsulSyncLabels select consul-cert-sync's pods.
var ConsulSyncLabels = map[string]string{"app.kubernetes.io/name": ConsulSyncName}

// ConsulResolverName names the ConsulResolver of a datacenter.
func ConsulResolverName(datacenter string) string { return "consul-" + datacenter }

// ConsulResolverSpec points Emissary at the Consul catalog.
func ConsulResolverSpec(address, datacenter string) map[string]any {
	return map[string]any{"address": address, "datacenter": datacenter}
}

// ConsulTLSContextSpec presents Ambassador's Connect leaf and checks the backend's sidecar
// certificate against the Connect CA roots.
func ConsulTLSContextSpec() map[string]any {
	return map[string]any{
		"hosts":           []any{},
		"secret":          ConsulLeafSecret,
		"ca_secret":       ConsulRootsSecret,
		"min_tls_version": "v1.3",
		"max_tls_version": "v1.3",
	}
}

// ConsulRoute sends a backend's route to its Connect sidecar, found in the Consul catalog.
func ConsulRoute(datacenter string) func(b Backend, spec map[string]any) {
	return func(b Backend, spec map[string]any) {
		spec["service"] = b.ServiceName() + "-sidecar-proxy"
		spec["resolver"] = ConsulResolverName(datacenter)
	}
}

// ConsulIntentionsSpec admits only Ambassador to a backend; every other source is denied, whatever
// the datacenter's default intention policy.
func ConsulIntentionsSpec(b Backend) map[string]any {
	return map[string]any{
		"destination": map[string]any{"name": b.ServiceName()},
		"sources": []any{
			map[string]any{"name": ConsulServiceName, "action": "allow"},
			map[string]any{"name": "*", "action": "deny"},
		},
	}
}

// ConsulAmbassadorPodValues give Emissary the ACL token its ConsulResolver watches use (Emissary
// builds its Consul client with consulapi.DefaultConfig, which reads CONSUL_HTTP_TOKEN).
func ConsulAmbassadorPodValues() map[string]any {
	return map[string]any{
		"envRaw": "- name: CONSUL_HTTP_TOKEN\n  valueFrom:\n    secretKeyRef:\n      name: " + ConsulTokenSecret + "\n      key: token\n",
	}
}

// ConsulPort is the port of a Consul API address (defaults of http and https when none is given).
func ConsulPort(address string) (int, error) {
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return 0, fmt.Errorf("%q is not an http(s)://host[:port] address", address)
	}
	if p := u.Port(); p != "" {
		return strconv.Atoi(p)
	}
	if u.Scheme == "https" {
		return 443, nil
	}
	return 80, nil
}

// ConsulTokenArgs is the ACL token's Secret, which Ambassador's pods read from the start.
type ConsulTokenArgs struct {
	Namespace pulumi.StringInput
	Token     string
}

// NewConsulTokenSecret stores the ACL token (a Pulumi secret) in Ambassador's namespace.
func NewConsulTokenSecret(ctx *pulumi.Context, name string, args *ConsulTokenArgs, opts ...pulumi.ResourceOption) (*corev1.Secret, error) {
	return corev1.NewSecret(ctx, name, &corev1.SecretArgs{
		Metadata:   metav1.ObjectMetaArgs{Name: pulumi.String(ConsulTokenSecret), Namespace: args.Namespace},
		Type:       pulumi.String("Opaque"),
		StringData: pulumi.StringMap{"token": pulumi.ToSecret(pulumi.String(args.Token)).(pulumi.StringOutput)},
	}, opts...)
}

// ConsulConnectArgs configures the Consul side of the edge.
type ConsulConnectArgs struct {
	Address     string
	Datacenter  string
	ServerCidrs []string
	// Image runs `consul-cert-sync` (the jwt-auth image).
	Image                   string
	AmbassadorNamespace     pulumi.StringInput
	AmbassadorNamespaceName string
	AmbassadorPodLabels     map[string]string
	// TokenSecret is the ACL token's Secret (NewConsulTokenSecret).
	TokenSecret pulumi.Resource
	// VpcCidr is where the Kubernetes API is (consul-cert-sync writes the Secrets through it).
	VpcCidr           pulumi.StringInput
	Backends          []Backend
	BackendNamespaces map[string]pulumi.StringOutput
	// CRDs is the getambassador.io CRD install (the ConsulResolver waits for it).
	CRDs      pulumi.Resource
	DependsOn []pulumi.Resource
}

// ConsulConnect is the certificate sync and the Consul objects.
type ConsulConnect struct {
	pulumi.ResourceState

	// Sync is consul-cert-sync's Deployment: Available only once both Secrets hold certificates,
	// so the TLSContext (which waits for it) never names an empty Secret.
	Sync     *appsv1.Deployment
	Resolver pulumi.Resource
	Objects  []pulumi.Resource
}

func (a *ConsulConnectArgs) validate() error {
	if a.Address == "" || a.Datacenter == "" || a.Image == "" || len(a.ServerCidrs) == 0 || a.AmbassadorNamespace == nil ||
		a.AmbassadorNamespaceName == "" || len(a.AmbassadorPodLabels) == 0 || a.TokenSecret == nil || a.VpcCidr == nil || a.CRDs == nil {
		return fmt.Errorf("consul-connect: Address, Datacenter, Image, ServerCidrs, AmbassadorNamespace(Name), AmbassadorPodLabels, TokenSecret, VpcCidr and CRDs are required")
	}
	if _, err := ConsulPort(a.Address); err != nil {
		return fmt.Errorf("consul-connect: Address %w", err)
	}
	for _, b := range a.Backends {
		if _, ok := a.BackendNamespaces[b.Namespace]; !ok {
			return fmt.Errorf("consul-connect: backend %q: namespace %q is not in BackendNamespaces", b.Name, b.Namespace)
		}
	}
	return nil
}

// ConsulSyncArgs is consul-cert-sync's command line.
func ConsulSyncArgs(address, datacenter string) []string {
	return []string{"consul-cert-sync",
		"-consul-address", address, "-datacenter", datacenter, "-service", ConsulServiceName,
		"-leaf-secret", ConsulLeafSecret, "-roots-secret", ConsulRootsSecret,
		"-listen", ":" + strconv.Itoa(ConsulSyncHealthPort)}
}

// NewConsulConnect creates the Secrets, consul-cert-sync with its least-privilege RBAC, the
// ConsulResolver, the backends' ServiceIntentions and the NetworkPolicies Consul needs.
func NewConsulConnect(ctx *pulumi.Context, name string, args *ConsulConnectArgs, opts ...pulumi.ResourceOption) (*ConsulConnect, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	port, _ := ConsulPort(args.Address)
	c := &ConsulConnect{}
	child, err := register(ctx, "ztedge:mesh:ConsulConnect", name, c, opts)
	if err != nil {
		return nil, err
	}
	ns := args.AmbassadorNamespace
	labels := pulumi.StringMap{"app.kubernetes.io/part-of": pulumi.String("ztedge")}

	// Empty Secrets that consul-cert-sync fills: ztedge owns them (destroy deletes them) and never
	// overwrites what the sync wrote; the sync may only get and patch these two (no create).
	empty := func(logical, secretName, typ string, keys ...string) (*corev1.Secret, error) {
		data := pulumi.StringMap{}
		for _, k := range keys {
			data[k] = pulumi.String("")
		}
		return corev1.NewSecret(ctx, logical, &corev1.SecretArgs{
			Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(secretName), Namespace: ns, Labels: labels},
			Type:     pulumi.String(typ), Data: data,
		}, child, pulumi.IgnoreChanges([]string{"data", "stringData"}))
	}
	leaf, err := empty(name+"-leaf", ConsulLeafSecret, "kubernetes.io/tls", "tls.crt", "tls.key")
	if err != nil {
		return nil, err
	}
	roots, err := empty(name+"-roots", ConsulRootsSecret, "Opaque", "tls.crt")
	if err != nil {
		return nil, err
	}
	sa, err := corev1.NewServiceAccount(ctx, name+"-sync", &corev1.ServiceAccountArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(ConsulSyncName), Namespace: ns, Labels: labels},
	}, child)
	if err != nil {
		return nil, err
	}
	role, err := rbacv1.NewRole(ctx, name+"-sync", &rbacv1.RoleArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(ConsulSyncName), Namespace: ns, Labels: labels},
		Rules: rbacv1.PolicyRuleArray{rbacv1.PolicyRuleArgs{
			ApiGroups: pulumi.StringArray{pulumi.String("")}, Resources: pulumi.StringArray{pulumi.String("secrets")},
			ResourceNames: pulumi.StringArray{pulumi.String(ConsulLeafSecret), pulumi.String(ConsulRootsSecret)},
			Verbs:         pulumi.StringArray{pulumi.String("get"), pulumi.String("patch")},
		}},
	}, child)
	if err != nil {
		return nil, err
	}
	binding, err := rbacv1.NewRoleBinding(ctx, name+"-sync", &rbacv1.RoleBindingArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(ConsulSyncName), Namespace: ns, Labels: labels},
		RoleRef:  rbacv1.RoleRefArgs{ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("Role"), Name: pulumi.String(ConsulSyncName)},
		Subjects: rbacv1.SubjectArray{rbacv1.SubjectArgs{Kind: pulumi.String("ServiceAccount"), Name: pulumi.String(ConsulSyncName), Namespace: ns}},
	}, child, pulumi.DependsOn([]pulumi.Resource{role, sa}))
	if err != nil {
		return nil, err
	}
	podLabels := pulumi.ToStringMap(ConsulSyncLabels)
	c.Sync, err = appsv1.NewDeployment(ctx, name+"-sync", &appsv1.DeploymentArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(ConsulSyncName), Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(1),
			Selector: metav1.LabelSelectorArgs{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpecArgs{
				Metadata: metav1.ObjectMetaArgs{Labels: podLabels},
				Spec: corev1.PodSpecArgs{
					ServiceAccountName: pulumi.String(ConsulSyncName),
					// The sync writes the two Secrets, so it needs a token, but an explicit one:
					// audience-bound to the API server, valid one hour, refreshed by the kubelet.
					AutomountServiceAccountToken: pulumi.Bool(false),
					Volumes: corev1.VolumeArray{corev1.VolumeArgs{
						Name: pulumi.String("kube-api-access"),
						Projected: corev1.ProjectedVolumeSourceArgs{Sources: corev1.VolumeProjectionArray{
							corev1.VolumeProjectionArgs{ServiceAccountToken: corev1.ServiceAccountTokenProjectionArgs{
								Path: pulumi.String("token"), ExpirationSeconds: pulumi.Int(3600),
							}},
							corev1.VolumeProjectionArgs{ConfigMap: corev1.ConfigMapProjectionArgs{
								Name:  pulumi.String("kube-root-ca.crt"),
								Items: corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String("ca.crt"), Path: pulumi.String("ca.crt")}},
							}},
						}},
					}},
					SecurityContext: corev1.PodSecurityContextArgs{
						RunAsNonRoot: pulumi.Bool(true), RunAsUser: pulumi.Int(65532), RunAsGroup: pulumi.Int(65532),
						SeccompProfile: corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
					},
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:  pulumi.String(ConsulSyncName),
						Image: pulumi.String(args.Image),
						Args:  pulumi.ToStringArray(ConsulSyncArgs(args.Address, args.Datacenter)),
						Env: corev1.EnvVarArray{
							corev1.EnvVarArgs{Name: pulumi.String("CONSUL_HTTP_TOKEN"), ValueFrom: corev1.EnvVarSourceArgs{
								SecretKeyRef: corev1.SecretKeySelectorArgs{Name: pulumi.String(ConsulTokenSecret), Key: pulumi.String("token")},
							}},
							corev1.EnvVarArgs{Name: pulumi.String("POD_NAMESPACE"), ValueFrom: corev1.EnvVarSourceArgs{
								FieldRef: corev1.ObjectFieldSelectorArgs{FieldPath: pulumi.String("metadata.namespace")},
							}},
						},
						VolumeMounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{
							Name: pulumi.String("kube-api-access"), MountPath: pulumi.String("/var/run/secrets/kubernetes.io/serviceaccount"), ReadOnly: pulumi.Bool(true),
						}},
						Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{Name: pulumi.String("health"), ContainerPort: pulumi.Int(ConsulSyncHealthPort)}},
						// Ready only once both Secrets hold certificates; alive while it serves.
						ReadinessProbe: corev1.ProbeArgs{HttpGet: corev1.HTTPGetActionArgs{Path: pulumi.String("/ready"), Port: pulumi.String("health")}, PeriodSeconds: pulumi.Int(5)},
						LivenessProbe:  corev1.ProbeArgs{HttpGet: corev1.HTTPGetActionArgs{Path: pulumi.String("/healthz"), Port: pulumi.String("health")}, PeriodSeconds: pulumi.Int(20)},
						Resources: corev1.ResourceRequirementsArgs{
							Requests: pulumi.StringMap{"cpu": pulumi.String("10m"), "memory": pulumi.String("32Mi"), "ephemeral-storage": pulumi.String("1Mi")},
							Limits:   pulumi.StringMap{"memory": pulumi.String("64Mi"), "ephemeral-storage": pulumi.String("16Mi")},
						},
						SecurityContext: corev1.SecurityContextArgs{
							RunAsNonRoot: pulumi.Bool(true), RunAsUser: pulumi.Int(65532), RunAsGroup: pulumi.Int(65532),
							AllowPrivilegeEscalation: pulumi.Bool(false), ReadOnlyRootFilesystem: pulumi.Bool(true),
							Capabilities:   corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
							SeccompProfile: corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
						},
					}},
				},
			},
		},
	}, child, pulumi.DependsOn(append([]pulumi.Resource{binding, leaf, roots, args.TokenSecret}, args.DependsOn...)))
	if err != nil {
		return nil, err
	}
	c.Resolver, err = newAmbassadorObject(ctx, name+"-consulresolver", "ConsulResolver", ConsulResolverName(args.Datacenter), ns, nil,
		ConsulResolverSpec(args.Address, args.Datacenter), child, pulumi.DependsOn([]pulumi.Resource{args.CRDs}))
	if err != nil {
		return nil, err
	}
	c.Objects = append(c.Objects, leaf, roots, sa, role, binding, c.Sync, c.Resolver)
	for _, b := range args.Backends {
		si, err := meshObject(ctx, name+"-serviceintentions-"+b.Name, ConsulIntentionsAPI, "ServiceIntentions", b.ServiceName(),
			args.BackendNamespaces[b.Namespace], ConsulIntentionsSpec(b), child)
		if err != nil {
			return nil, err
		}
		c.Objects = append(c.Objects, si)
	}

	// Flows Consul adds to the default-deny policies: Ambassador and the sync to the Consul API
	// (and the sync to the Kubernetes API), Ambassador to each backend's sidecar, and the sidecar
	// admitting Ambassador.
	ambassador := peer{namespace: args.AmbassadorNamespaceName, pods: args.AmbassadorPodLabels}
	var consulPeers []peer
	for _, cidr := range args.ServerCidrs {
		consulPeers = append(consulPeers, peer{cidr: pulumi.String(cidr)})
	}
	toConsul := rule{peers: consulPeers, ports: tcp(port)}
	ambassadorEgress := []rule{toConsul}
	policies := []policy{{
		name: "consul-cert-sync-egress", nsName: args.AmbassadorNamespaceName, namespace: ns, pods: ConsulSyncLabels, types: []string{"Egress"},
		egress: []rule{toConsul, {peers: []peer{{cidr: args.VpcCidr}}, ports: tcp(443)}},
	}}
	for _, b := range args.Backends {
		ambassadorEgress = append(ambassadorEgress, rule{peers: []peer{{namespace: b.Namespace, pods: b.Selector()}}, ports: tcp(ConsulSidecarPort)})
		policies = append(policies, policy{
			name: b.Name + "-sidecar-from-ambassador", nsName: b.Namespace, namespace: args.BackendNamespaces[b.Namespace], pods: b.Selector(),
			types: []string{"Ingress"}, ingress: []rule{{peers: []peer{ambassador}, ports: tcp(ConsulSidecarPort)}},
		})
	}
	policies = append(policies, policy{
		name: "ambassador-to-consul", nsName: args.AmbassadorNamespaceName, namespace: ns, pods: args.AmbassadorPodLabels,
		types: []string{"Egress"}, egress: ambassadorEgress,
	})
	for _, p := range policies {
		np, err := networkingv1.NewNetworkPolicy(ctx, p.nsName+"/"+p.name, &networkingv1.NetworkPolicyArgs{Metadata: metaFor(p), Spec: p.spec()}, child)
		if err != nil {
			return nil, err
		}
		c.Objects = append(c.Objects, np)
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"count": pulumi.Int(len(c.Objects))})
}
