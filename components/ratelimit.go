package components

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"sigs.k8s.io/yaml"
)

// Rate limiting, per backend and per authenticated user.
//
// Each rate-limited backend's Mapping labels its requests with two descriptor entries:
// generic_key=<backend name> and user_id=<X-User-ID>. X-User-ID is trustworthy there: Emissary
// runs the ext_authz filter (jwt-auth) before the rate-limit filter, every backend route goes
// through jwt-auth, and jwt-auth's answer overwrites any X-User-ID the client sent. The client
// address is not a usable key: behind an NLB in IP mode it is the NLB's own address (one bucket for
// everybody), and a per-address limit punishes everyone behind one NAT.
const (
	// RateLimitDomain is the label domain: it must equal the RateLimitService domain (ours, and the
	// Edge Stack chart's default), or Emissary silently ignores the labels.
	RateLimitDomain     = "ambassador"
	rateLimitUserKey    = "user_id"
	rateLimitUserHeader = "x-user-id"

	// RateLimitServiceName is the envoyproxy/ratelimit Service (gRPC on RateLimitGRPCPort).
	RateLimitServiceName = "ratelimit"
	RateLimitGRPCPort    = 8081
	rateLimitHTTPPort    = 8080 // /healthcheck
	// RateLimitRedisName is the Redis Deployment and Service behind it.
	RateLimitRedisName = "ratelimit-redis"
	RateLimitRedisPort = 6379
	// RateLimitRedisAuthSecret holds Redis's password under RateLimitRedisAuthKey: Redis starts
	// with it as requirepass, the rate-limit server sends it (REDIS_AUTH). Only these two pods
	// mount it; the NetworkPolicy is the first fence, the password the second.
	RateLimitRedisAuthSecret = "ratelimit-redis-auth"
	RateLimitRedisAuthKey    = "password"
	// redisPasswordBytes of randomness: 256 bits.
	redisPasswordBytes = 32

	// rateLimitTimeoutMs bounds each call from Envoy. Emissary's default is 20 ms; failing closed,
	// a hiccup longer than the timeout becomes a 500, so allow a little more.
	rateLimitTimeoutMs = 100
	// Where envoyproxy/ratelimit reads its config: $RUNTIME_ROOT/$RUNTIME_SUBDIRECTORY/config/.
	rateLimitRuntimeRoot = "/data"
	rateLimitConfigDir   = "/data/ratelimit/config"
)

// RateLimitLabels is the Mapping `labels` block for a backend, or nil when it has no rate limit.
func RateLimitLabels(b Backend) map[string]any {
	if b.RateLimit == nil {
		return nil
	}
	return map[string]any{RateLimitDomain: []any{
		map[string]any{"per_user": []any{
			map[string]any{"generic_key": map[string]any{"value": b.Name}},
			map[string]any{"request_headers": map[string]any{"key": rateLimitUserKey, "header_name": rateLimitUserHeader}},
		}},
	}}
}

// rateLimitDescriptor is one entry of the envoyproxy/ratelimit configuration.
type rateLimitDescriptor struct {
	Key         string                `json:"key"`
	Value       string                `json:"value,omitempty"`
	RateLimit   *rateLimitRate        `json:"rate_limit,omitempty"`
	Descriptors []rateLimitDescriptor `json:"descriptors,omitempty"`
}

type rateLimitRate struct {
	Unit            string `json:"unit"`
	RequestsPerUnit int    `json:"requests_per_unit"`
}

// RateLimitConfig is the envoyproxy/ratelimit configuration for the backends: per backend
// (generic_key = its name), a limit for each distinct user_id (a key without a value counts every
// value separately). It matches the labels of RateLimitLabels entry for entry.
func RateLimitConfig(backends []Backend) (string, error) {
	var descriptors []rateLimitDescriptor
	for _, b := range backends {
		if b.RateLimit == nil {
			continue
		}
		descriptors = append(descriptors, rateLimitDescriptor{
			Key: "generic_key", Value: b.Name,
			Descriptors: []rateLimitDescriptor{{
				Key:       rateLimitUserKey,
				RateLimit: &rateLimitRate{Unit: b.RateLimit.Unit, RequestsPerUnit: b.RateLimit.RequestsPerUnit},
			}},
		})
	}
	sort.Slice(descriptors, func(i, j int) bool { return descriptors[i].Value < descriptors[j].Value })
	out, err := yaml.Marshal(map[string]any{"domain": RateLimitDomain, "descriptors": descriptors})
	return string(out), err
}

// RateLimitServiceSpec points Emissary at the envoyproxy/ratelimit Service. It fails closed: when
// the limiter cannot answer, requests to rate-limited backends get an error instead of passing
// unlimited. Failing open would turn every limit off exactly when the limiter is overloaded, which
// an attacker can cause. Backends without a rate limit send no descriptors and never call it.
func RateLimitServiceSpec(namespace string) map[string]any {
	return map[string]any{
		"service":           fmt.Sprintf("%s.%s:%d", RateLimitServiceName, namespace, RateLimitGRPCPort),
		"protocol_version":  "v3", // the default, v2, is refused by Emissary 3.x+
		"domain":            RateLimitDomain,
		"failure_mode_deny": true,
		"timeout_ms":        rateLimitTimeoutMs,
	}
}

// AesRateLimitSpec is the Edge Stack RateLimit for one backend: the same descriptors as
// RateLimitConfig, as an AES pattern ("*" = per distinct value, in label order).
func AesRateLimitSpec(b Backend) map[string]any {
	return map[string]any{
		"domain": RateLimitDomain,
		"limits": []any{map[string]any{
			"name":    b.Name + "-per-user",
			"pattern": []any{map[string]any{"generic_key": b.Name}, map[string]any{rateLimitUserKey: "*"}},
			"rate":    b.RateLimit.RequestsPerUnit,
			"unit":    b.RateLimit.Unit,
			"action":  "Enforce",
		}},
	}
}

// RateLimitingArgs configures rate limiting.
type RateLimitingArgs struct {
	// Namespace is an output of Ambassador's namespace (objects wait for it); NamespaceName is the
	// same name, known now, for the addresses Ambassador and the server dial.
	Namespace     pulumi.StringInput
	NamespaceName string
	// EdgeStack selects Ambassador Edge Stack, whose built-in rate-limit service (created by its
	// chart) reads RateLimit resources; otherwise ztedge deploys envoyproxy/ratelimit and Redis.
	EdgeStack  bool
	Backends   []Backend
	Image      string
	RedisImage string
	Replicas   int
	// CRDs is the getambassador.io CRD install (RateLimitService, RateLimit).
	CRDs pulumi.Resource
	// DependsOn is what the workloads need first (namespace, schedulable nodes).
	DependsOn []pulumi.Resource
	// MetricsPort, when not 0, turns on the server's Prometheus endpoint (USE_PROMETHEUS, statsd
	// names mapped by its built-in mapper) on this port, named "metrics".
	MetricsPort int
}

// RateLimiting enforces the backends' rate limits.
type RateLimiting struct {
	pulumi.ResourceState

	// Enforcers make Ambassador apply the limits: the RateLimitService (Emissary) or the RateLimit
	// resources (Edge Stack). Rate-limited routes depend on them. (Not on this component: the Go SDK
	// collects a component's children asynchronously, so depending on it may miss some.)
	Enforcers []pulumi.Resource
	// ServerLabels and RedisLabels select the rate-limit server and Redis pods (for NetworkPolicies:
	// Ambassador → server on RateLimitGRPCPort, server → Redis on RateLimitRedisPort).
	ServerLabels map[string]string
	RedisLabels  map[string]string
}

// HasRateLimits reports whether any backend sets a rate limit (nothing is deployed otherwise).
func HasRateLimits(backends []Backend) bool {
	for _, b := range backends {
		if b.RateLimit != nil {
			return true
		}
	}
	return false
}

func (a *RateLimitingArgs) validate() error {
	switch {
	case a.Namespace == nil || a.NamespaceName == "" || a.CRDs == nil:
		return fmt.Errorf("ratelimit: Namespace, NamespaceName and CRDs are required")
	case !HasRateLimits(a.Backends):
		return fmt.Errorf("ratelimit: no backend sets a rate limit")
	case !a.EdgeStack && (a.Image == "" || a.RedisImage == "" || a.Replicas < 1):
		return fmt.Errorf("ratelimit: Image, RedisImage and Replicas ≥ 1 are required")
	}
	return nil
}

// NewRateLimiting creates the RateLimit resources (Edge Stack) or the rate-limit server, its Redis and
// the RateLimitService (Emissary).
func NewRateLimiting(ctx *pulumi.Context, name string, args *RateLimitingArgs, opts ...pulumi.ResourceOption) (*RateLimiting, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	r := &RateLimiting{}
	child, err := register(ctx, "ztedge:edge:RateLimiting", name, r, opts)
	if err != nil {
		return nil, err
	}
	afterCRDs := pulumi.DependsOn([]pulumi.Resource{args.CRDs})
	if args.EdgeStack {
		for _, b := range args.Backends {
			if b.RateLimit == nil {
				continue
			}
			limit, err := newAmbassadorObject(ctx, name+"-"+b.Name, "RateLimit", b.Name, args.Namespace, nil, AesRateLimitSpec(b), child, afterCRDs)
			if err != nil {
				return nil, err
			}
			r.Enforcers = append(r.Enforcers, limit)
		}
		return r, ctx.RegisterResourceOutputs(r, pulumi.Map{})
	}

	config, err := RateLimitConfig(args.Backends)
	if err != nil {
		return nil, err
	}
	auth, err := newRedisAuthSecret(ctx, name, args, child)
	if err != nil {
		return nil, err
	}
	afterAuth := pulumi.DependsOn([]pulumi.Resource{auth})
	redis, err := newRateLimitRedis(ctx, name, args, child, afterAuth)
	if err != nil {
		return nil, err
	}
	server, err := newRateLimitServer(ctx, name, args, config, child, afterAuth, pulumi.DependsOn(append([]pulumi.Resource{redis}, args.DependsOn...)))
	if err != nil {
		return nil, err
	}
	// Emissary starts calling the limiter as soon as this exists, so it waits for a ready server.
	service, err := newAmbassadorObject(ctx, name+"-service", "RateLimitService", RateLimitServiceName, args.Namespace, nil,
		RateLimitServiceSpec(args.NamespaceName), child, pulumi.DependsOn([]pulumi.Resource{args.CRDs, server}))
	if err != nil {
		return nil, err
	}
	r.Enforcers = []pulumi.Resource{service}
	r.ServerLabels = appLabels(RateLimitServiceName)
	r.RedisLabels = appLabels(RateLimitRedisName)
	return r, ctx.RegisterResourceOutputs(r, pulumi.Map{})
}

// newRedisAuthSecret creates the Secret with Redis's password: 256 random bits, generated once.
// pulumi-random is not a dependency (and not on the module proxy here); the value is drawn from
// crypto/rand on the first `up` and ignoreChanges keeps the stored one afterwards, so it never
// changes under running pods. It is a Pulumi secret (encrypted in the state, never printed).
// Rotate: `pulumi up --replace <this Secret's URN>`, then restart the ratelimit and ratelimit-redis
// Deployments.
func newRedisAuthSecret(ctx *pulumi.Context, name string, args *RateLimitingArgs, opts ...pulumi.ResourceOption) (*corev1.Secret, error) {
	buf := make([]byte, redisPasswordBytes)
	if _, err := rand.Read(buf); err != nil {
		return nil, fmt.Errorf("ratelimit: generating the Redis password: %w", err)
	}
	password := pulumi.ToSecret(pulumi.String(base64.RawURLEncoding.EncodeToString(buf))).(pulumi.StringOutput)
	return corev1.NewSecret(ctx, name+"-redis-auth", &corev1.SecretArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(RateLimitRedisAuthSecret), Namespace: args.Namespace,
			Labels: pulumi.ToStringMap(appLabels(RateLimitRedisName)),
		},
		Type:       pulumi.String("Opaque"),
		StringData: pulumi.StringMap{RateLimitRedisAuthKey: password},
	}, append(opts, pulumi.IgnoreChanges([]string{"stringData", "data"}))...)
}

// redisPasswordEnv is an environment variable holding Redis's password, read from its Secret.
func redisPasswordEnv(envName string) corev1.EnvVarArgs {
	return corev1.EnvVarArgs{Name: pulumi.String(envName), ValueFrom: &corev1.EnvVarSourceArgs{
		SecretKeyRef: &corev1.SecretKeySelectorArgs{Name: pulumi.String(RateLimitRedisAuthSecret), Key: pulumi.String(RateLimitRedisAuthKey)},
	}}
}

// newRateLimitRedis runs the counters' Redis: in memory only (counters are short-lived; a restart
// only resets the current window), bounded, evicting the keys closest to expiry first, and
// password-protected (requirepass from the Secret: the kubelet expands $(REDIS_PASSWORD), so the
// value is in no manifest).
func newRateLimitRedis(ctx *pulumi.Context, name string, args *RateLimitingArgs, opts ...pulumi.ResourceOption) (pulumi.Resource, error) {
	w := workload{
		name: RateLimitRedisName, namespace: args.Namespace, replicas: 1,
		// Not the image's redis user (999, which may exist on the host): the image runs as any uid,
		// and fsGroup makes the data volume writable for it.
		uid: 10001, gid: 10001,
		container: corev1.ContainerArgs{
			Image: pulumi.String(args.RedisImage),
			// No persistence; protected mode off because clients come over the pod network (the
			// NetworkPolicies admit only the rate-limit server).
			Args: pulumi.ToStringArray([]string{"--save", "", "--appendonly", "no", "--protected-mode", "no",
				"--maxmemory", "96mb", "--maxmemory-policy", "volatile-ttl", "--requirepass", "$(REDIS_PASSWORD)"}),
			// REDISCLI_AUTH: the readiness probe's redis-cli authenticates without the password on
			// its command line.
			Env:   corev1.EnvVarArray{redisPasswordEnv("REDIS_PASSWORD"), redisPasswordEnv("REDISCLI_AUTH")},
			Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{Name: pulumi.String("redis"), ContainerPort: pulumi.Int(RateLimitRedisPort)}},
			ReadinessProbe: &corev1.ProbeArgs{
				Exec:          &corev1.ExecActionArgs{Command: pulumi.ToStringArray([]string{"redis-cli", "ping"})},
				PeriodSeconds: pulumi.Int(5),
			},
			LivenessProbe: &corev1.ProbeArgs{
				TcpSocket:        &corev1.TCPSocketActionArgs{Port: pulumi.Int(RateLimitRedisPort)},
				PeriodSeconds:    pulumi.Int(10),
				FailureThreshold: pulumi.Int(3),
			},
			VolumeMounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String("data"), MountPath: pulumi.String("/data")}},
		},
		volumes: corev1.VolumeArray{corev1.VolumeArgs{Name: pulumi.String("data"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String("64Mi")}}},
		cpu:     "50m", memory: "128Mi",
		port: RateLimitRedisPort, portName: "redis",
	}
	return w.create(ctx, name+"-redis", append(opts, pulumi.DependsOn(args.DependsOn))...)
}

// newRateLimitServer runs envoyproxy/ratelimit with the descriptors in a ConfigMap.
func newRateLimitServer(ctx *pulumi.Context, name string, args *RateLimitingArgs, config string, opts ...pulumi.ResourceOption) (pulumi.Resource, error) {
	cm, err := corev1.NewConfigMap(ctx, name+"-config", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(RateLimitServiceName + "-config"), Namespace: args.Namespace,
			Labels: pulumi.ToStringMap(appLabels(RateLimitServiceName)),
		},
		Data: pulumi.StringMap{"config.yaml": pulumi.String(config)},
	}, opts...)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(config))
	env := map[string]string{
		"USE_STATSD":           "false",
		"LOG_LEVEL":            "warn",
		"LOG_FORMAT":           "json",
		"REDIS_SOCKET_TYPE":    "tcp",
		"REDIS_URL":            fmt.Sprintf("%s.%s:%d", RateLimitRedisName, args.NamespaceName, RateLimitRedisPort),
		"PORT":                 fmt.Sprint(rateLimitHTTPPort),
		"GRPC_PORT":            fmt.Sprint(RateLimitGRPCPort),
		"DEBUG_HOST":           "127.0.0.1", // the debug listener (6070) stays inside the pod
		"RUNTIME_ROOT":         rateLimitRuntimeRoot,
		"RUNTIME_SUBDIRECTORY": "ratelimit",
		// ConfigMap volumes are symlink farms with dot-directories; watch the subdirectory, skip dotfiles.
		"RUNTIME_WATCH_ROOT":     "false",
		"RUNTIME_IGNOREDOTFILES": "true",
	}
	if args.MetricsPort != 0 {
		env["USE_PROMETHEUS"] = "true"
		env["PROMETHEUS_ADDR"] = fmt.Sprintf(":%d", args.MetricsPort)
		env["PROMETHEUS_PATH"] = "/metrics"
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var envArgs corev1.EnvVarArray
	for _, k := range keys {
		envArgs = append(envArgs, corev1.EnvVarArgs{Name: pulumi.String(k), Value: pulumi.String(env[k])})
	}
	// envoyproxy/ratelimit's Redis password (settings.go: REDIS_AUTH).
	envArgs = append(envArgs, redisPasswordEnv("REDIS_AUTH"))
	ports := corev1.ContainerPortArray{
		corev1.ContainerPortArgs{Name: pulumi.String("grpc"), ContainerPort: pulumi.Int(RateLimitGRPCPort)},
		corev1.ContainerPortArgs{Name: pulumi.String("http"), ContainerPort: pulumi.Int(rateLimitHTTPPort)},
	}
	if args.MetricsPort != 0 {
		ports = append(ports, corev1.ContainerPortArgs{Name: pulumi.String(MetricsPortName), ContainerPort: pulumi.Int(args.MetricsPort)})
	}
	w := workload{
		name: RateLimitServiceName, namespace: args.Namespace, replicas: args.Replicas,
		uid: 65534, gid: 65534, // nobody: the server only reads its config and listens on high ports
		// A config change rolls the pods instead of relying on the file watch alone.
		podAnnotations: map[string]string{"ztedge.io/config-sha256": hex.EncodeToString(sum[:])},
		container: corev1.ContainerArgs{
			Image:   pulumi.String(args.Image),
			Command: pulumi.ToStringArray([]string{"/bin/ratelimit"}),
			Env:     envArgs,
			Ports:   ports,
			ReadinessProbe: &corev1.ProbeArgs{
				HttpGet:       &corev1.HTTPGetActionArgs{Path: pulumi.String("/healthcheck"), Port: pulumi.Int(rateLimitHTTPPort)},
				PeriodSeconds: pulumi.Int(5),
			},
			// Liveness only checks the process: /healthcheck also fails while Redis is away, and
			// restarting every limiter then would not bring Redis back.
			LivenessProbe: &corev1.ProbeArgs{
				TcpSocket:        &corev1.TCPSocketActionArgs{Port: pulumi.Int(RateLimitGRPCPort)},
				PeriodSeconds:    pulumi.Int(10),
				FailureThreshold: pulumi.Int(3),
			},
			VolumeMounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{
				Name: pulumi.String("config"), MountPath: pulumi.String(rateLimitConfigDir), ReadOnly: pulumi.Bool(true),
			}},
		},
		volumes: corev1.VolumeArray{corev1.VolumeArgs{
			Name: pulumi.String("config"), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{Name: pulumi.String(RateLimitServiceName + "-config")},
		}},
		cpu: "50m", memory: "128Mi",
		port: RateLimitGRPCPort, portName: "grpc",
	}
	return w.create(ctx, name, append(opts, pulumi.DependsOn([]pulumi.Resource{cm}))...)
}

// workload is a hardened Deployment with its ClusterIP Service (and a PodDisruptionBudget when it
// has more than one replica): non-root, read-only root filesystem, no capabilities, RuntimeDefault
// seccomp, no service-account token, requests and memory and ephemeral-storage limits (a runaway
// log cannot fill the node's disk), spread over nodes and zones.
type workload struct {
	name           string
	namespace      pulumi.StringInput
	replicas       int
	uid, gid       int
	podAnnotations map[string]string
	container      corev1.ContainerArgs
	volumes        corev1.VolumeArray
	cpu, memory    string // requests; memory is also the limit
	port           int
	portName       string
}

// workloadEphemeralStorage bounds logs and scratch files (kubelet rotates logs at 10Mi × 5).
const workloadEphemeralStorage = "128Mi"

func appLabels(name string) map[string]string {
	return map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "ztedge"}
}

// create registers the Deployment, Service and PodDisruptionBudget; the returned resource is the
// Deployment (Pulumi waits for its pods to be ready).
func (w workload) create(ctx *pulumi.Context, logical string, opts ...pulumi.ResourceOption) (pulumi.Resource, error) {
	labels := pulumi.ToStringMap(appLabels(w.name))
	meta := &metav1.ObjectMetaArgs{Name: pulumi.String(w.name), Namespace: w.namespace, Labels: labels}
	c := w.container
	c.Name = pulumi.String(w.name)
	c.ImagePullPolicy = pulumi.String("IfNotPresent")
	c.SecurityContext = &corev1.SecurityContextArgs{
		AllowPrivilegeEscalation: pulumi.Bool(false),
		ReadOnlyRootFilesystem:   pulumi.Bool(true),
		RunAsNonRoot:             pulumi.Bool(true),
		RunAsUser:                pulumi.Int(w.uid),
		RunAsGroup:               pulumi.Int(w.gid),
		Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.ToStringArray([]string{"ALL"})},
		SeccompProfile:           &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
	c.Resources = &corev1.ResourceRequirementsArgs{
		Requests: pulumi.StringMap{"cpu": pulumi.String(w.cpu), "memory": pulumi.String(w.memory), "ephemeral-storage": pulumi.String(workloadEphemeralStorage)},
		Limits:   pulumi.StringMap{"memory": pulumi.String(w.memory), "ephemeral-storage": pulumi.String(workloadEphemeralStorage)},
	}
	deployment, err := appsv1.NewDeployment(ctx, logical, &appsv1.DeploymentArgs{
		Metadata: meta,
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(w.replicas),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: labels},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels, Annotations: pulumi.ToStringMap(w.podAnnotations)},
				Spec: &corev1.PodSpecArgs{
					AutomountServiceAccountToken: pulumi.Bool(false),
					SecurityContext: &corev1.PodSecurityContextArgs{
						RunAsNonRoot:   pulumi.Bool(true),
						FsGroup:        pulumi.Int(w.gid),
						SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
					},
					// Replicas on different nodes and zones when the cluster allows it.
					Affinity: &corev1.AffinityArgs{PodAntiAffinity: &corev1.PodAntiAffinityArgs{
						PreferredDuringSchedulingIgnoredDuringExecution: corev1.WeightedPodAffinityTermArray{corev1.WeightedPodAffinityTermArgs{
							Weight: pulumi.Int(100),
							PodAffinityTerm: corev1.PodAffinityTermArgs{
								TopologyKey: pulumi.String("kubernetes.io/hostname"), LabelSelector: &metav1.LabelSelectorArgs{MatchLabels: labels},
							},
						}},
					}},
					TopologySpreadConstraints: corev1.TopologySpreadConstraintArray{corev1.TopologySpreadConstraintArgs{
						MaxSkew: pulumi.Int(1), TopologyKey: pulumi.String("topology.kubernetes.io/zone"),
						WhenUnsatisfiable: pulumi.String("ScheduleAnyway"),
						LabelSelector:     &metav1.LabelSelectorArgs{MatchLabels: labels},
					}},
					Containers: corev1.ContainerArray{c},
					Volumes:    w.volumes,
				},
			},
		},
	}, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := corev1.NewService(ctx, logical, &corev1.ServiceArgs{
		Metadata: meta,
		Spec: &corev1.ServiceSpecArgs{
			Type:     pulumi.String("ClusterIP"),
			Selector: labels,
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String(w.portName), Port: pulumi.Int(w.port), TargetPort: pulumi.String(w.portName),
			}},
		},
	}, opts...); err != nil {
		return nil, err
	}
	if w.replicas >= 2 {
		// Keep one pod through node drains; with one replica a PDB would block the drain instead.
		if _, err := policyv1.NewPodDisruptionBudget(ctx, logical, &policyv1.PodDisruptionBudgetArgs{
			Metadata: meta,
			Spec: &policyv1.PodDisruptionBudgetSpecArgs{
				MinAvailable: pulumi.Int(1),
				Selector:     &metav1.LabelSelectorArgs{MatchLabels: labels},
			},
		}, opts...); err != nil {
			return nil, err
		}
	}
	return deployment, nil
}
