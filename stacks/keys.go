package stacks

import "github.com/ztedge/ztedge/internal/release"

// Key documents one configuration setting. The registry below is the single source of truth:
// Load reads only keys listed here, a test checks that Pulumi.yaml declares exactly these keys with
// the same type and default, and the README's configuration reference is generated from it.
type Key struct {
	// Name without the project namespace: "hostname" is set with `pulumi config set hostname …`
	// and read as "ztedge:hostname". Keys of other namespaces carry theirs ("aws:region").
	Name string
	Type string // string, integer, boolean, array (JSON list), object (JSON object)
	// Default is what the program uses when the stack does not set the key; Pulumi.yaml declares the
	// same default. nil makes the key required (the Pulumi CLI refuses to run without it); "" marks
	// an optional string.
	Default     any
	Description string
	Secret      bool // must be set with --secret
	Group       string
}

// DeclaredSecret reports whether Pulumi.yaml marks the key `secret: true`. Only required secrets
// can be: the CLI merges a declared default into the stack config as a plain value and then
// rejects it for not being encrypted, so an optional secret ("" by default) is declared without
// the flag, and Load refuses it in plain text instead (it names the key and `--secret`).
func (k Key) DeclaredSecret() bool { return k.Secret && k.Default == nil }

// Namespace is the project's configuration namespace (the project name in Pulumi.yaml).
const Namespace = "ztedge"

// FullName is the key as the engine passes it to the program.
func (k Key) FullName() string {
	for _, c := range k.Name {
		if c == ':' {
			return k.Name
		}
	}
	return Namespace + ":" + k.Name
}

// Keys is every setting the program reads, in documentation order.
var Keys = []Key{
	// Where.
	{Name: "platform", Type: "string", Default: "eks", Group: "platform", Description: "Where the edge runs: eks (AWS: VPC, EKS, ACM certificate, ALB controller) or local (an existing cluster from a kubeconfig, e.g. kind or k3d; no AWS resources, keys of the aws, network, cluster and alb-controller groups are ignored)."},
	{Name: "kubeconfig", Type: "string", Default: "", Group: "platform", Description: "platform local: path to the kubeconfig (default: $KUBECONFIG, else ~/.kube/config)."},
	{Name: "kubeContext", Type: "string", Default: "", Group: "platform", Description: "platform local: kubeconfig context to deploy to (default: the current context)."},
	{Name: "localNodeCidr", Type: "string", Default: "172.16.0.0/12", Group: "platform", Description: "platform local: CIDR that traffic through the NodePort/LoadBalancer Service arrives from (the nodes; kind and k3d use Docker networks in 172.16.0.0/12). The NetworkPolicies admit it to Envoy's ports, so the nodes can reach Envoy directly: a local cluster is no trust boundary (README, Security)."},
	{Name: "localServiceType", Type: "string", Default: "NodePort", Group: "platform", Description: "platform local: Service type exposing Ambassador's TLS port: NodePort, or LoadBalancer (k3d, minikube tunnel, cloud-provider-kind)."},
	{Name: "localNodePort", Type: "integer", Default: 30443, Group: "platform", Description: "platform local: node port of the TLS listener (30000–32767) with localServiceType NodePort."},
	{Name: "aws:region", Type: "string", Group: "aws", Description: "AWS region of every resource (required), e.g. us-east-1."},
	{Name: "hostname", Type: "string", Group: "edge", Description: "Public DNS name of the edge, e.g. api.example.com (required)."},
	{Name: "hostedZoneId", Type: "string", Default: "", Group: "edge", Description: "Route53 hosted zone that holds hostname; used for ACM DNS validation. Required unless certificateArn is set."},
	{Name: "certificateArn", Type: "string", Default: "", Group: "edge", Description: "Existing ACM certificate for hostname (issued, same region). When set, no certificate or DNS records are created."},
	{Name: "tags", Type: "object", Default: map[string]any{}, Group: "aws", Description: "Tags added to every AWS resource (JSON object of strings)."},

	// Network.
	{Name: "vpcCidr", Type: "string", Default: "10.0.0.0/16", Group: "network", Description: "CIDR of the new VPC, /16 to /22 (/21 at most with loadBalancerScheme internal: the load balancer gets subnets of its own). Ignored with existingVpcId."},
	{Name: "availabilityZones", Type: "integer", Default: 2, Group: "network", Description: "Number of availability zones for the new VPC: 2 or 3."},
	{Name: "natGateways", Type: "string", Default: "single", Group: "network", Description: "NAT gateways of the new VPC: single (one, cheaper) or perAz (one per zone, survives a zone outage)."},
	{Name: "existingVpcId", Type: "string", Default: "", Group: "network", Description: "Use this VPC instead of creating one (vpc-…). Requires existingVpcCidr, existingPublicSubnetIds, existingPrivateSubnetIds, existingNodeSubnetCidrs, existingLoadBalancerSubnetIds and existingLoadBalancerSubnetCidrs."},
	{Name: "existingVpcCidr", Type: "string", Default: "", Group: "network", Description: "CIDR of existingVpcId (Ambassador reaches the Kubernetes API's private endpoint in it)."},
	{Name: "existingPublicSubnetIds", Type: "array", Default: []any{}, Group: "network", Description: "Public subnets of existingVpcId (≥2 AZs), tagged kubernetes.io/role/elb=1."},
	{Name: "existingPrivateSubnetIds", Type: "array", Default: []any{}, Group: "network", Description: "Private subnets of existingVpcId (≥2 AZs) for the nodes (and so every pod's address)."},
	{Name: "existingNodeSubnetCidrs", Type: "array", Default: []any{}, Group: "network", Description: "CIDRs of existingPrivateSubnetIds (required with existingVpcId): no load balancer subnet may overlap them."},
	{Name: "existingLoadBalancerSubnetIds", Type: "array", Default: []any{}, Group: "network", Description: "Subnets of existingVpcId (≥2 AZs) the load balancer is placed in, holding no nodes or pods: public ones for an internet-facing load balancer, dedicated private ones for an internal one. Required with existingVpcId."},
	{Name: "existingLoadBalancerSubnetCidrs", Type: "array", Default: []any{}, Group: "network", Description: "CIDRs of existingLoadBalancerSubnetIds, in the same order: the only sources the NetworkPolicies admit to Envoy's ports. Must not overlap existingNodeSubnetCidrs."},

	// Cluster.
	{Name: "clusterName", Type: "string", Default: "", Group: "cluster", Description: "EKS cluster name. Default: ztedge-<stack>."},
	{Name: "kubernetesVersion", Type: "string", Default: "1.35", Group: "cluster", Description: "Kubernetes minor version of the control plane and nodes: 1.35 or 1.36, the EKS versions in standard support (see README, Kubernetes versions)."},
	{Name: "nodeInstanceTypes", Type: "array", Default: []any{"t3.large"}, Group: "cluster", Description: "Instance types of the managed node group; all of one architecture (x86_64 or Graviton)."},
	{Name: "nodeCapacityType", Type: "string", Default: "ON_DEMAND", Group: "cluster", Description: "ON_DEMAND or SPOT."},
	{Name: "nodeMinSize", Type: "integer", Default: 2, Group: "cluster", Description: "Minimum node count."},
	{Name: "nodeDesiredSize", Type: "integer", Default: 2, Group: "cluster", Description: "Desired node count (between min and max)."},
	{Name: "nodeMaxSize", Type: "integer", Default: 4, Group: "cluster", Description: "Maximum node count."},
	{Name: "nodeDiskSizeGiB", Type: "integer", Default: 40, Group: "cluster", Description: "Root volume size of each node in GiB (20–1000)."},
	{Name: "endpointPublicAccess", Type: "boolean", Default: true, Group: "cluster", Description: "Expose the Kubernetes API endpoint publicly (restricted to endpointPublicAccessCidrs). false: private endpoint only."},
	{Name: "endpointPublicAccessCidrs", Type: "array", Default: []any{}, Group: "cluster", Description: "CIDRs allowed to reach the public API endpoint; required when endpointPublicAccess is true."},
	{Name: "clusterAdminArns", Type: "array", Default: []any{}, Group: "cluster", Description: "IAM role/user ARNs granted cluster-admin through EKS access entries (the creator is admin too)."},
	{Name: "clusterLogTypes", Type: "array", Default: []any{"api", "audit", "authenticator"}, Group: "cluster", Description: "Control-plane log types sent to CloudWatch: api, audit, authenticator, controllerManager, scheduler."},

	// AWS Load Balancer Controller.
	{Name: "albControllerChartVersion", Type: "string", Default: "3.5.0", Group: "alb-controller", Description: "aws-load-balancer-controller chart version; must be one whose IAM policy ztedge embeds."},
	{Name: "albControllerChartRepository", Type: "string", Default: "https://aws.github.io/eks-charts", Group: "alb-controller", Description: "Helm repository of the controller chart (a mirror for air-gapped installs)."},
	{Name: "albControllerReplicas", Type: "integer", Default: 2, Group: "alb-controller", Description: "Controller replicas (1–3)."},

	// Ambassador (Emissary-ingress or Edge Stack).
	{Name: "edition", Type: "string", Default: "emissary", Group: "ambassador", Description: "emissary (open source, default) or edge-stack (Ambassador Edge Stack; needs edgeStackLicenseKey)."},
	{Name: "engine", Type: "string", Default: "emissary", Group: "ambassador", Description: "The edge's proxy: emissary (Emissary-ingress 4.x, Envoy 1.37; default) or envoy-gateway (Envoy Gateway v1.9.1, Envoy 1.39, Gateway API). envoy-gateway supports every clientAuth mode and upstreamMtls pki only; not edition edge-stack, not monitoring (README, Engines)."},
	{Name: "envoyGatewayChartRepository", Type: "string", Default: "oci://docker.io/envoyproxy", Group: "ambassador", Description: "engine envoy-gateway: OCI registry of the gateway-crds-helm and gateway-helm v1.9.1 charts, or a local directory of chart archives."},
	{Name: "emissaryChartRepository", Type: "string", Default: "oci://ghcr.io/emissary-ingress", Group: "ambassador", Description: "OCI registry of the emissary-crds-chart and emissary-ingress charts (a mirror for air-gapped installs)."},
	{Name: "emissaryVersion", Type: "string", Default: "4.1.0", Group: "ambassador", Description: "Emissary chart version (4.x: chart version = app version)."},
	{Name: "edgeStackChartRepository", Type: "string", Default: "https://app.getambassador.io", Group: "ambassador", Description: "Helm repository of the edge-stack chart."},
	{Name: "edgeStackChartVersion", Type: "string", Default: "", Group: "ambassador", Description: "edge-stack chart version (8.x); required with edition edge-stack."},
	{Name: "edgeStackCrdsUrl", Type: "string", Default: "", Group: "ambassador", Description: "URL of aes-crds.yaml for that version, e.g. https://app.getambassador.io/yaml/edge-stack/3.12.2/aes-crds.yaml; required with edition edge-stack."},
	{Name: "edgeStackLicenseKey", Type: "string", Default: "", Secret: true, Group: "ambassador", Description: "Ambassador Edge Stack license key (secret); required with edition edge-stack."},
	{Name: "ambassadorNamespace", Type: "string", Default: "ambassador", Group: "ambassador", Description: "Namespace of Ambassador, the auth service and the rate-limit service."},
	{Name: "ambassadorReplicas", Type: "integer", Default: 2, Group: "ambassador", Description: "Ambassador replicas (≥2 keeps the edge up through a node drain)."},
	{Name: "ambassadorResources", Type: "object", Default: map[string]any{"requests": map[string]any{"cpu": "200m", "memory": "300Mi"}, "limits": map[string]any{"memory": "600Mi"}}, Group: "ambassador", Description: "Kubernetes resources of each Ambassador pod (requests/limits)."},

	// Load balancer and client certificates.
	{Name: "clientAuth", Type: "string", Default: "alb-passthrough", Group: "edge", Description: "Client-certificate mode: alb-passthrough (ALB forwards the cert, jwt-auth verifies it), alb-verify (ALB trust store rejects clients without a valid cert), nlb-passthrough (NLB TCP; Envoy terminates TLS and checks the cert), off."},
	{Name: "sslPolicy", Type: "string", Default: "ELBSecurityPolicy-TLS13-1-3-2021-06", Group: "edge", Description: "Load balancer TLS policy; TLS 1.3 only: ELBSecurityPolicy-TLS13-1-3-2021-06, -FIPS-2023-04 or -PQ-2025-09."},
	{Name: "loadBalancerScheme", Type: "string", Default: "internet-facing", Group: "edge", Description: "internet-facing or internal."},
	{Name: "loadBalancerSourceCidrs", Type: "array", Default: []any{"0.0.0.0/0"}, Group: "edge", Description: "CIDRs allowed to connect to the load balancer."},
	{Name: "waf", Type: "string", Default: "off", Group: "edge", Description: "AWS WAF on the ALB (eks platform, clientAuth alb-passthrough, alb-verify or off; nlb-passthrough has no HTTP layer at the load balancer): off (no web ACL; any attached one is detached), count (every rule only counts: roll out and tune first), block. The web ACL holds a rate rule per client IP (wafRateLimit) and AWS's IP-reputation, known-bad-inputs and core rule groups."},
	{Name: "wafRateLimit", Type: "integer", Default: 2000, Group: "edge", Description: "WAF rate rule: requests one client IP may send in 5 minutes before it is blocked (counted with waf count), 10–2000000000."},
	{Name: "wafCountRules", Type: "array", Default: []any{}, Group: "edge", Description: "Rules of AWSManagedRulesCommonRuleSet that only count instead of block (false positives), e.g. [\"SizeRestrictions_BODY\"] for request bodies over 8 KB. AWS refuses unknown rule names at up."},
	{Name: "createDnsRecord", Type: "boolean", Default: false, Group: "edge", Description: "eks platform: create a Route53 alias record hostname → the load balancer in hostedZoneId, after the load balancer exists (and delete it before). An existing record of that name is not overwritten: up fails and names it."},
	{Name: "trustedClients", Type: "array", Default: []any{}, Group: "edge", Description: "Applications that get a client certificate: [{name, permissions[], services[], origins[]}]."},
	{Name: "backends", Type: "array", Default: []any{}, Group: "edge", Description: "Services behind the edge: [{name, namespace, service?, port, prefix, podSelector?, origins[], methods[], headers[], credentials, timeoutMs, rateLimit{requestsPerUnit,unit}, circuitBreaker{maxConnections,maxPendingRequests,maxRequests,maxRetries}, retries{retryOn,numRetries,perTryTimeoutMs}}]."},
	{Name: "caValidityHours", Type: "integer", Default: 26280, Group: "pki", Description: "Validity of the generated CA (hours; default 3 years)."},
	{Name: "certValidityHours", Type: "integer", Default: 2160, Group: "pki", Description: "Validity of server and client certificates (hours; default 90 days)."},
	{Name: "certEarlyRenewalHours", Type: "integer", Default: 360, Group: "pki", Description: "Renew a certificate on `pulumi up` this many hours before it expires."},
	{Name: "rateLimitImage", Type: "string", Default: "envoyproxy/ratelimit:49af5cca", Group: "ambassador", Description: "envoyproxy/ratelimit image (Emissary's rate-limit server), pinned."},
	{Name: "redisImage", Type: "string", Default: "redis:7.4.6-alpine", Group: "ambassador", Description: "Redis image backing the rate-limit server, pinned by an exact version tag or a digest; versions with the 2025 Lua CVEs (CVE-2025-49844, -46817, -46818, -46819: before 6.2.20, 7.2.11, 7.4.6, 8.0.4, 8.2.2) are refused."},

	// Upstream mTLS through a service mesh (stacks/mesh.go; README "Backends in a service mesh").
	{Name: "upstreamMtls", Type: "string", Default: "pki", Group: "mesh", Description: "Whose certificates secure Ambassador → backend traffic: pki (ztedge's own upstream CA, default), istio (Istio workload certificates; backends in the mesh with STRICT mTLS) or consul (Consul Connect leaf certificates; backends are Connect services)."},
	{Name: "istioInstall", Type: "boolean", Default: false, Group: "mesh", Description: "upstreamMtls istio: install Istio (base and istiod charts at istioVersion) in istioNamespace; false uses an existing installation (its injector webhook must serve the default revision)."},
	{Name: "istioVersion", Type: "string", Default: "1.30.3", Group: "mesh", Description: "upstreamMtls istio with istioInstall: version of the base and istiod charts (only 1.30.3, whose values and CRDs ztedge checks)."},
	{Name: "istioChartRepository", Type: "string", Default: "https://istio-release.storage.googleapis.com/charts", Group: "mesh", Description: "upstreamMtls istio with istioInstall: Helm repository of the base and istiod charts (or a local directory of chart archives)."},
	{Name: "istioNamespace", Type: "string", Default: "istio-system", Group: "mesh", Description: "upstreamMtls istio: namespace of istiod (the NetworkPolicies let sidecars reach it on 15012)."},
	{Name: "consulAddress", Type: "string", Default: "", Group: "mesh", Description: "upstreamMtls consul (required): HTTP API of the existing Consul servers, https://host:port (or http:// inside the cluster), e.g. https://consul-server.consul.svc:8501."},
	{Name: "consulDatacenter", Type: "string", Default: "", Group: "mesh", Description: "upstreamMtls consul (required): Consul datacenter of the backends, e.g. dc1."},
	{Name: "consulToken", Type: "string", Default: "", Secret: true, Group: "mesh", Description: "upstreamMtls consul (required, secret): Consul ACL token with service:ambassador write and service:<backend> read; kept in a Secret."},
	{Name: "consulServerCidrs", Type: "array", Default: []any{}, Group: "mesh", Description: "upstreamMtls consul (required): CIDRs of the Consul servers' API addresses; the NetworkPolicies let Ambassador and the certificate sync reach consulAddress's port there only."},

	// jwt-auth.
	{Name: "authImage", Type: "string", Default: release.AuthImage, Group: "auth", Description: "jwt-auth container image. Default: the image this ztedge release published (.github/workflows/release.yml; signed with cosign, SBOM attached). For a local build: `make jwt-auth-oci` (docs/operate.md)."},
	{Name: "authReplicas", Type: "integer", Default: 2, Group: "auth", Description: "jwt-auth replicas."},
	{Name: "tokenTtl", Type: "string", Default: "10m", Group: "auth", Description: "Lifetime of minted JWTs: 5m to 15m."},
	{Name: "authSigningKeys", Type: "array", Default: []any{map[string]any{"id": "k1", "phase": "active"}}, Group: "auth", Description: "jwt-auth's signing keys (ECDSA P-256, generated): [{id, phase}], phase next (published, verifies), active (exactly one: signs) or retiring (verifies until its tokens expire). Rotate: add {id: k2, phase: next}, pulumi up, wait 2 minutes; set k2 active and k1 retiring, pulumi up; after tokenTtl plus 2 minutes remove k1, pulumi up. Never reuse an ID (docs/jwt-auth.md)."},
	{Name: "authUsers", Type: "string", Default: "", Secret: true, Group: "auth", Description: "Users for the password grant (secret): YAML/JSON list of {username, passwordHash (bcrypt: `jwt-auth hash-password`), oidcSubject?, permissions[], services[], origins[]}."},
	{Name: "oidcIssuer", Type: "string", Default: "", Group: "auth", Description: "Upstream OIDC issuer whose ID tokens can be exchanged for edge tokens (optional)."},
	{Name: "oidcAudience", Type: "string", Default: "", Group: "auth", Description: "Audience the upstream ID tokens must carry (with oidcIssuer)."},
	{Name: "oidcJwksUrl", Type: "string", Default: "", Group: "auth", Description: "JWKS URL of the upstream issuer (with oidcIssuer)."},

	// Monitoring (issue 10; stacks/monitoring.go).
	{Name: "monitoring", Type: "string", Default: "off", Group: "monitoring", Description: "Metrics, alerts and the Grafana dashboard: off; existing (a Prometheus Operator already runs: only PodMonitors, the PrometheusRule, the dashboard ConfigMap and the scrape NetworkPolicies are created); install (kube-prometheus-stack first, pinned by monitoringChartVersion)."},
	{Name: "monitoringNamespace", Type: "string", Default: "monitoring", Group: "monitoring", Description: "Namespace of Prometheus and Grafana (created by install); the only namespace admitted to the edge's metrics ports, and where the dashboard ConfigMap goes."},
	{Name: "monitoringScraperLabels", Type: "object", Default: map[string]any{"app.kubernetes.io/name": "prometheus"}, Group: "monitoring", Description: "Pod labels of the Prometheus pods in monitoringNamespace that may scrape (the operator sets app.kubernetes.io/name=prometheus); {} admits every pod of that namespace."},
	{Name: "monitoringObjectLabels", Type: "object", Default: map[string]any{}, Group: "monitoring", Description: "Labels added to the PodMonitors, PrometheusRule and dashboard ConfigMap, for an existing operator's selectors (kube-prometheus-stack selects release: <its release name> unless told otherwise)."},
	{Name: "monitoringChartVersion", Type: "string", Default: "88.5.3", Group: "monitoring", Description: "kube-prometheus-stack chart version for install (its values are checked against this version's values.yaml)."},
	{Name: "monitoringChartRepository", Type: "string", Default: "https://prometheus-community.github.io/helm-charts", Group: "monitoring", Description: "Helm repository of kube-prometheus-stack (a mirror, or a local directory of chart archives)."},
}
