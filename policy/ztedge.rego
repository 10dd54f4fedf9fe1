# ztedge's own rules for a rendered stack (`ztedge render`), run by conftest with --combine: the
# input is every file of the render at once ([{path, contents}]), because some rules relate objects
# (a namespace the edge routes to must have a default-deny NetworkPolicy; a Host may name a
# TLSContext). Each deny message names the object and the rule, so a finding says what to fix.
# Every rule has a failing fixture in policy/fixtures/ (checked by .ci/policy.sh).
package main

import rego.v1

# ---- inputs ----------------------------------------------------------------------------------

# Every document of every file (a file may hold one object or a list of them).
docs contains d if {
	some f in input
	is_object(f.contents)
	d := f.contents
}

docs contains d if {
	some f in input
	is_array(f.contents)
	some d in f.contents
	is_object(d)
}

k8s contains o if {
	some o in docs
	o.kind
	o.apiVersion
}

of_kind(kind) := {o | some o in k8s; o.kind == kind}

ns(o) := object.get(o.metadata, "namespace", "default")

id(o) := sprintf("%s %s/%s", [o.kind, ns(o), object.get(o.metadata, "name", "?")])

# ---- default deny in every namespace the edge routes to ----------------------------------------

# The namespace of a Mapping's service: https://name.namespace:port, name.namespace.svc..., or a
# bare name in the Mapping's own namespace.
service_namespace(m) := parts[1] if {
	host := split(regex.replace(m.spec.service, "^[a-z]+://", ""), ":")[0]
	parts := split(host, ".")
	count(parts) > 1
} else := ns(m)

routed_namespaces contains service_namespace(m) if some m in of_kind("Mapping")

selects_all_pods(np) if {
	count(object.get(np.spec.podSelector, "matchLabels", {})) == 0
	count(object.get(np.spec.podSelector, "matchExpressions", [])) == 0
}

default_deny(namespace) if {
	some np in of_kind("NetworkPolicy")
	ns(np) == namespace
	selects_all_pods(np)
	"Ingress" in np.spec.policyTypes
	count(object.get(np.spec, "ingress", [])) == 0
}

deny contains msg if {
	some namespace in routed_namespaces
	not default_deny(namespace)
	msg := sprintf("namespace %s: the edge routes to it but no NetworkPolicy denies ingress by default (podSelector {}, policyTypes [Ingress], no ingress rules) [default-deny]", [namespace])
}

# ---- fail closed -------------------------------------------------------------------------------

deny contains msg if {
	some a in of_kind("AuthService")
	a.spec.failure_mode_allow == true
	msg := sprintf("%s: failure_mode_allow is true, so requests pass unauthenticated when the auth service is down; set it false [fail-closed]", [id(a)])
}

# ---- TLS 1.3 only ------------------------------------------------------------------------------

deny contains msg if {
	some c in of_kind("TLSContext")
	object.get(c.spec, "min_tls_version", "") != "v1.3"
	msg := sprintf("%s: min_tls_version is %q, must be v1.3 [tls13]", [id(c), object.get(c.spec, "min_tls_version", "unset")])
}

tls_context_is_13(namespace, name) if {
	some c in of_kind("TLSContext")
	ns(c) == namespace
	c.metadata.name == name
	c.spec.min_tls_version == "v1.3"
}

host_is_tls13(h) if h.spec.tls.min_tls_version == "v1.3"

host_is_tls13(h) if tls_context_is_13(ns(h), h.spec.tlsContext.name)

deny contains msg if {
	some h in of_kind("Host")
	not host_is_tls13(h)
	msg := sprintf("%s: neither spec.tls.min_tls_version nor its tlsContext requires v1.3 [tls13]", [id(h)])
}

tls13_policies := {"ELBSecurityPolicy-TLS13-1-3-2021-06", "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04", "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09"}

alb_ingress(i) if i.spec.ingressClassName == "alb"

alb_ingress(i) if i.metadata.annotations["kubernetes.io/ingress.class"] == "alb"

deny contains msg if {
	some i in of_kind("Ingress")
	alb_ingress(i)
	policy := object.get(i.metadata.annotations, "alb.ingress.kubernetes.io/ssl-policy", "unset")
	not policy in tls13_policies
	msg := sprintf("%s: ssl-policy %q allows TLS below 1.3; use one of %v [tls13]", [id(i), policy, tls13_policies])
}

# ---- plain HTTP rejected -----------------------------------------------------------------------

deny contains msg if {
	some h in of_kind("Host")
	action := object.get(h.spec, ["requestPolicy", "insecure", "action"], "unset (Redirect)")
	action != "Reject"
	msg := sprintf("%s: requestPolicy.insecure.action is %s, must be Reject [no-http]", [id(h), action]) # Redirect still serves port 80
}

deny contains msg if {
	some i in of_kind("Ingress")
	alb_ingress(i)
	ports := object.get(i.metadata.annotations, "alb.ingress.kubernetes.io/listen-ports", "")
	alb_listens_http(ports)
	msg := sprintf("%s: the ALB listens for plain HTTP (listen-ports %q; unset means HTTP:80); use [{\"HTTPS\":443}] [no-http]", [id(i), ports])
}

alb_listens_http("")

alb_listens_http(ports) if {
	some l in json.unmarshal(ports)
	l.HTTP
}

deny contains msg if {
	some s in of_kind("Service")
	s.spec.type in {"LoadBalancer", "NodePort"}
	some p in s.spec.ports
	http_port(p)
	msg := sprintf("%s: exposes plain HTTP outside the cluster (port %v %s) [no-http]", [id(s), p.port, object.get(p, "name", "")])
}

http_port(p) if p.port == 80

http_port(p) if p.name == "http"

# ---- workloads: non-root, resources -----------------------------------------------------------

pod_spec(o) := o.spec.template.spec if o.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

pod_spec(o) := o.spec.jobTemplate.spec.template.spec if o.kind == "CronJob"

pod_spec(o) := o.spec if o.kind == "Pod"

containers(spec) := array.concat(object.get(spec, "initContainers", []), object.get(spec, "containers", []))

# A container's effective setting: its own securityContext, else the pod's.
effective(spec, c, key) := c.securityContext[key]

effective(spec, c, key) := spec.securityContext[key] if not has_key(object.get(c, "securityContext", {}), key)

has_key(o, k) if o[k] != null

deny contains msg if {
	some o in k8s
	spec := pod_spec(o)
	some c in containers(spec)
	not runs_as_non_root(spec, c)
	msg := sprintf("%s: container %s may run as root: set securityContext.runAsNonRoot true (and runAsUser other than 0) [non-root]", [id(o), c.name])
}

runs_as_non_root(spec, c) if {
	effective(spec, c, "runAsNonRoot") == true
	not root_uid(spec, c)
}

root_uid(spec, c) if effective(spec, c, "runAsUser") == 0

# Memory limits keep one workload from starving a node; requests make scheduling honest. CPU limits
# are not required: they throttle latency-sensitive proxies without protecting anything.
required_resources := [["limits", "memory"], ["requests", "cpu"], ["requests", "memory"]]

deny contains msg if {
	some o in k8s
	spec := pod_spec(o)
	some c in containers(spec)
	some r in required_resources
	object.get(c, ["resources", r[0], r[1]], null) == null
	msg := sprintf("%s: container %s has no resources.%s.%s [resources]", [id(o), c.name, r[0], r[1]])
}

# ---- IRSA trust policies pin the service account and the audience ----------------------------

web_identity(stmt) if stmt.Action == "sts:AssumeRoleWithWebIdentity"

web_identity(stmt) if "sts:AssumeRoleWithWebIdentity" in stmt.Action

string_equals(stmt) := object.get(stmt, ["Condition", "StringEquals"], {})

pins(stmt, suffix) if {
	some k, _ in string_equals(stmt)
	endswith(k, suffix)
}

irsa_pinned(stmt) if {
	pins(stmt, ":sub")
	some k, v in string_equals(stmt)
	endswith(k, ":aud")
	v == "sts.amazonaws.com"
}

deny contains msg if {
	some d in docs
	some role in object.get(d, "iamRoles", [])
	some stmt in role.assumeRolePolicy.Statement
	web_identity(stmt)
	not irsa_pinned(stmt)
	msg := sprintf("IAM role %s: a web-identity trust statement must pin both <issuer>:sub (StringEquals, one service account) and <issuer>:aud = sts.amazonaws.com [irsa]", [role.name])
}

# ---- only the load balancer reaches Envoy ------------------------------------------------------

# Envoy's HTTPS listener and Emissary's admin port (the load balancer's health checks).
envoy_ports := {8443, 8877}

aws_resources contains r if {
	some d in docs
	some r in object.get(d, "resources", [])
	is_object(r)
}

# Node subnets: the VPC's subnets without a load balancer role. The nodes, and with the VPC CNI
# every pod, take their addresses there.
node_cidrs contains s.inputs.cidrBlock if {
	some s in aws_resources
	s.type == "aws:ec2/subnet:Subnet"
	tags := object.get(s.inputs, "tags", {})
	not tags["kubernetes.io/role/elb"]
	not tags["kubernetes.io/role/internal-elb"]
}

deny contains msg if {
	some np in of_kind("NetworkPolicy")
	some rule in object.get(np.spec, "ingress", [])
	some p in object.get(rule, "ports", [])
	p.port in envoy_ports
	some peer in object.get(rule, "from", [])
	cidr := peer.ipBlock.cidr
	some node in node_cidrs
	net.cidr_intersects(cidr, node)
	msg := sprintf("%s: admits %s to Envoy's port %v, which overlaps node subnet %s: any pod there could skip the load balancer, forge its headers or read the admin port; admit only the load balancer subnets [lb-only]", [id(np), cidr, p.port, node])
}

# ---- Envoy normalises what it forwards ---------------------------------------------------------

# The `ambassador` Module config every edge needs (Emissary 4.1.0 keys; normalize_path is always on).
required_module := {
	"headers_with_underscores_action": "REJECT_REQUEST",
	"merge_slashes": true,
	"reject_requests_with_escaped_slashes": true,
}

# The Module the Emissary or Edge Stack chart renders from a release's values (helm/ in a render).
chart_module(d) := object.get(d.values, "module", {}) if endswith(d.chart, "/emissary-ingress")

chart_module(d) := object.get(d.values, ["emissary-ingress", "module"], {}) if endswith(d.chart, "edge-stack")

modules contains [sprintf("Helm release %s (values.module)", [d.name]), m] if {
	some d in docs
	is_string(d.chart)
	m := chart_module(d)
}

modules contains [id(m), object.get(m.spec, "config", {})] if {
	some m in of_kind("Module")
	m.metadata.name == "ambassador"
}

deny contains msg if {
	some [what, config] in modules
	some k, v in required_module
	object.get(config, k, null) != v
	msg := sprintf("%s: %s is %v, must be %v so Envoy forwards only paths and headers that the auth check and the backend read alike [normalise]", [what, k, object.get(config, k, "unset"), v])
}
