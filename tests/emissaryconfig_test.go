package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

// The Envoy-configuration tier for engine emissary: every stack × clientAuth × upstreamMtls ×
// monitoring (and the Edge Stack edition) is rendered under mocks, the objects Emissary's
// watcher would hand its compiler are fed to Emissary 4.1.0's own Python compiler
// (internal/envoytier/compile.py over ../shared/emissary), and each guarantee of the README's
// security table is asserted on the Envoy configuration it generates (guarantees_test.go, for both engines).

// emissaryConfig is one rendered and compiled configuration.
type emissaryConfig struct {
	name   string
	edit   map[string]string
	envoy  map[string]any // the ADS configuration: listeners, clusters
	errors map[string]any // the compiler's errors by resource
	// notices the compiler posted (an ignored field says so here).
	notices map[string]any
	// certHeader is the stack's secret certificate header name (envoyView.certHeader).
	certHeader string
}

// emissarySources are the configurations the tier compiles, by name.
func emissarySources() map[string]map[string]string {
	out := map[string]map[string]string{}
	add := func(name string, edit map[string]string) { out[name] = edit }
	for _, stack := range []string{"dev", "prod", "local"} {
		modes := components.ClientAuthModes
		if stack == "local" {
			modes = []string{components.ClientAuthNLBPassthrough, components.ClientAuthOff}
		}
		for _, mode := range modes {
			for _, mtls := range components.UpstreamMtlsModes {
				for _, mon := range []string{"off", "existing", "install"} {
					edit := map[string]string{"ztedge:clientAuth": mode, "ztedge:monitoring": mon}
					for k, v := range meshEdits(mtls) {
						edit[k] = v
					}
					if mode == components.ClientAuthNLBPassthrough && stack != "local" {
						edit["ztedge:waf"] = "off" // no WAF on an NLB (refused otherwise)
					}
					add(fmt.Sprintf("%s/%s/%s/monitoring-%s", stack, mode, mtls, mon), edit)
				}
			}
			edit := map[string]string{"ztedge:clientAuth": mode, "ztedge:edition": components.EditionEdgeStack,
				"ztedge:edgeStackChartVersion": "8.10.1-rc.1", "ztedge:edgeStackLicenseKey": "test-license-jwt",
				"ztedge:edgeStackCrdsUrl": "https://app.getambassador.io/yaml/edge-stack/3.10.1-rc.1/aes-crds.yaml"}
			if mode == components.ClientAuthNLBPassthrough && stack != "local" {
				edit["ztedge:waf"] = "off"
			}
			add(fmt.Sprintf("%s/%s/edge-stack", stack, mode), edit)
		}
	}
	return out
}

var (
	emissaryOnce     sync.Once
	emissaryCompiled []*emissaryConfig
	emissaryRefused  map[string]string
)

// compiledEmissaryConfigs renders and compiles every source once per test binary; configurations
// the program refuses (a combination the validation forbids) are listed, not compiled.
func compiledEmissaryConfigs(t *testing.T) []*emissaryConfig {
	t.Helper()
	python, src := emissaryCompiler(t)
	emissaryOnce.Do(func() {
		emissaryRefused = map[string]string{}
		type job struct {
			name string
			edit map[string]string
		}
		jobs := make(chan job)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					c, refused := compileEmissary(t, python, src, j.name, j.edit)
					mu.Lock()
					if c != nil {
						emissaryCompiled = append(emissaryCompiled, c)
					} else {
						emissaryRefused[j.name] = refused
					}
					mu.Unlock()
				}
			}()
		}
		sources := emissarySources()
		for _, name := range sortedKeys(sources) {
			jobs <- job{name, sources[name]}
		}
		close(jobs)
		wg.Wait()
		sort.Slice(emissaryCompiled, func(i, j int) bool { return emissaryCompiled[i].name < emissaryCompiled[j].name })
	})
	if len(emissaryCompiled) == 0 {
		t.Fatalf("no configuration compiled; refused: %v", emissaryRefused)
	}
	return emissaryCompiled
}

// emissaryCompiler finds Python and Emissary's source (unpacked once from ../shared/emissary into
// the cache). Under CI both must be there; elsewhere the tier is skipped saying how to get them.
func emissaryCompiler(t *testing.T) (python, src string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	python = os.Getenv("ZTEDGE_PYTHON")
	if python == "" {
		python = "python3"
	}
	src = os.Getenv("ZTEDGE_EMISSARY_SRC")
	if src == "" {
		home, _ := os.UserHomeDir()
		src = filepath.Join(home, ".cache", "ztedge-tools", "emissary-"+emissaryCompilerVersion, "python", "ambassador", "src")
	}
	if _, err := os.Stat(filepath.Join(src, "ambassador", "ir", "ir.py")); err != nil {
		fail("Emissary's compiler source is not at %s: run `bash .ci/emissary.sh` (unpacks ../shared/emissary)", src)
	}
	check := exec.Command(python, "-c", "import yaml, orjson, requests, prometheus_client")
	check.Env = pythonEnv()
	if out, err := check.CombinedOutput(); err != nil {
		fail("%s lacks the compiler's dependencies (PyYAML, orjson, requests, prometheus_client: `bash .ci/emissary.sh`): %v\n%s", python, err, out)
	}
	return python, src
}

// pythonEnv adds Debian's prometheus_client (python3-prometheus-client) when the interpreter is
// another Python of the same version (e.g. pyenv's, which has orjson).
func pythonEnv() []string {
	env := os.Environ()
	p := os.Getenv("ZTEDGE_PYTHONPATH")
	if p == "" {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, ".cache", "ztedge-tools", "emissary-"+emissaryCompilerVersion, "pylib") // .ci/emissary.sh
	}
	if _, err := os.Stat(p); err == nil {
		env = append(env, "PYTHONPATH="+p)
	}
	return env
}

// compileEmissary renders one configuration and compiles what Emissary would see. It returns the
// program's error instead when the configuration is refused.
func compileEmissary(t *testing.T, python, src, name string, edit map[string]string) (*emissaryConfig, string) {
	stack := strings.Split(name, "/")[0]
	cfg := stackConfig(t, stack, edit)
	for _, secret := range []string{"ztedge:edgeStackLicenseKey", "ztedge:consulToken"} {
		if edit[secret] != "" {
			cfg.Secrets[secret] = true
		}
	}
	g, err := run(t, stack, cfg)
	if err != nil {
		return nil, err.Error()
	}
	in := emissaryWatch(t, g, cfg)
	dir := t.TempDir()
	inFile, outFile := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join(repoRoot(t), "internal", "envoytier", "compile.py"), src, inFile, outFile)
	cmd.Env = pythonEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: Emissary's compiler failed: %v\n%s", name, err, out)
		return nil, "compiler failed"
	}
	var res struct {
		Envoy   map[string]any `json:"envoy"`
		Errors  map[string]any `json:"errors"`
		Notices map[string]any `json:"notices"`
	}
	b, err = os.ReadFile(outFile)
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		t.Fatalf("%s: compiler output: %v", name, err)
	}
	if dump := os.Getenv("ZTEDGE_EMISSARY_DUMP"); dump != "" {
		base := filepath.Join(dump, strings.ReplaceAll(name, "/", "_"))
		_ = os.MkdirAll(dump, 0o755)
		_ = os.WriteFile(base+".out.json", b, 0o600)
		in, _ := json.MarshalIndent(in, "", " ")
		_ = os.WriteFile(base+".in.json", in, 0o600)
	}
	return &emissaryConfig{name: name, edit: edit, envoy: res.Envoy, errors: res.Errors, notices: res.Notices, certHeader: stackCertHeader(g)}, ""
}

// emissaryCompilerVersion is the Emissary release whose compiler ../shared/emissary holds.
const emissaryCompilerVersion = "4.1.0"

// emissaryJob is compile.py's input.
type emissaryJob struct {
	Objects []map[string]any `json:"objects"`
	// Annotations are the getambassador.io/config objects of the listed Services and Ingresses,
	// by "Kind/name.namespace" of their parent (the snapshot's "annotations").
	Annotations map[string][]map[string]any `json:"annotations"`
	Env         map[string]string           `json:"env"`
	PodLabels   map[string]string           `json:"podLabels"`
	Mounts      []string                    `json:"mounts"`
}

// emissaryWatch is what Emissary's pod would feed its compiler for a rendered stack:
//   - the chart's Module and container environment, modelled on the emissary-ingress 4.1.0
//     templates (module.yaml; deployment.yaml's env) from the values ztedge gives the release
//     (TestEmissaryChartTemplatesModelled checks the templates still say so);
//   - the objects its Go watcher lists (cmd/entrypoint/interesting_types.go at v4.1.0): Services,
//     Endpoints, Ingresses and every getambassador.io kind in all namespaces, or only in
//     AMBASSADOR_NAMESPACE under AMBASSADOR_SINGLE_NAMESPACE; ConfigMaps of AMBASSADOR_NAMESPACE;
//     filtered by AMBASSADOR_LABEL_SELECTOR;
//   - of the Secrets, only those a Host or TLSContext names (cmd/entrypoint/secrets.go,
//     ReconcileSecrets), with stand-in PEMs (the mocks' certificates are placeholders);
//   - the objects other teams own and ztedge does not create: each backend's Service, and what
//     hostileObjects adds.
func emissaryWatch(t *testing.T, g *graph, cfg stacks.MapSource) emissaryJob {
	t.Helper()
	job := emissaryJob{Env: map[string]string{}, PodLabels: map[string]string{}, Annotations: map[string][]map[string]any{}}
	var rendered []map[string]any
	for _, ro := range renderedObjects(g) {
		res, obj := ro.res, ro.obj
		if values, defaults := emissaryChartValues(t, res); values != nil {
			ns := str(input(res, "namespace"))
			values = components.MergeValues(defaults, values)
			job.Env, job.PodLabels = emissaryChartEnv(values, ns), chartPodLabels(values, res.Name)
			for _, m := range asList(values["volumeMounts"]) {
				job.Mounts = append(job.Mounts, str(dig(m, "mountPath")))
			}
			if module, _ := values["module"].(map[string]any); module["enabled"] != false {
				rendered = append(rendered, emissaryChartModule(values, ns))
			}
			continue
		}
		rendered = append(rendered, obj)
	}
	rendered = append(rendered, backendServices(t, cfg)...)
	rendered = append(rendered, runtimeSecrets(job.Env, rendered)...)
	rendered = append(rendered, hostileObjects(t, g, cfg)...)

	secretRefs := emissarySecretRefs(rendered)
	pemPair := selfSigned(t)
	for _, obj := range rendered {
		kind, ns := str(obj["kind"]), str(dig(obj, "metadata", "namespace"))
		if !emissaryWatches(job.Env, obj) {
			continue
		}
		if kind == "Secret" {
			if !secretRefs[ns+"/"+str(dig(obj, "metadata", "name"))] {
				continue
			}
			obj = standInSecret(obj, pemPair)
		}
		if anns := annotationObjects(t, obj); len(anns) > 0 {
			job.Annotations[kind+"/"+str(dig(obj, "metadata", "name"))+"."+ns] = anns
		}
		job.Objects = append(job.Objects, obj)
	}
	return job
}

// emissaryWatches reports whether the watcher lists obj (its kind, namespace and labels).
func emissaryWatches(env map[string]string, obj map[string]any) bool {
	api, kind, ns := str(obj["apiVersion"]), str(obj["kind"]), str(dig(obj, "metadata", "namespace"))
	switch {
	case strings.HasPrefix(api, "getambassador.io/"):
	case api == "v1" && (kind == "Service" || kind == "Endpoints" || kind == "Secret"):
		if kind == "Endpoints" && ns == "kube-system" {
			return false
		}
	case api == "v1" && kind == "ConfigMap":
		if ns != env["AMBASSADOR_NAMESPACE"] {
			return false
		}
	case kind == "Ingress":
	default:
		return false
	}
	if env["AMBASSADOR_SINGLE_NAMESPACE"] != "" && ns != env["AMBASSADOR_NAMESPACE"] {
		return false
	}
	if sel := env["AMBASSADOR_LABEL_SELECTOR"]; sel != "" {
		labels, _ := dig(obj, "metadata", "labels").(map[string]any)
		for _, term := range strings.Split(sel, ",") {
			k, v, _ := strings.Cut(term, "=")
			if str(labels[k]) != v {
				return false
			}
		}
	}
	return true
}

// annotationObjects unfolds a Service's or Ingress's getambassador.io/config annotation as the Go
// watcher does (pkg/snapshot/v1/annotations.go, ParseAnnotationResources, at v4.1.0): name,
// namespace and generation go to metadata, metadata_labels to metadata.labels, the rest to spec;
// the namespace defaults to the parent's, and so do the labels. A namespace the annotation names
// is kept, whatever the parent's.
func annotationObjects(t *testing.T, parent map[string]any) []map[string]any {
	kind := str(parent["kind"])
	raw, _ := dig(parent, "metadata", "annotations", "getambassador.io/config").(string)
	if raw == "" || (kind != "Service" && kind != "Ingress") {
		return nil
	}
	var out []map[string]any
	for _, doc := range strings.Split(raw, "\n---") {
		var flat map[string]any
		if err := yaml.Unmarshal([]byte(strings.TrimPrefix(doc, "---")), &flat); err != nil {
			t.Fatalf("annotation of %s: %v", dig(parent, "metadata", "name"), err)
		}
		if flat == nil {
			continue
		}
		obj := map[string]any{"apiVersion": flat["apiVersion"], "kind": flat["kind"], "metadata": map[string]any{}, "spec": map[string]any{}}
		meta, spec := obj["metadata"].(map[string]any), obj["spec"].(map[string]any)
		for k, v := range flat {
			switch k {
			case "apiVersion", "kind":
			case "name", "namespace", "generation":
				meta[k] = v
			case "metadata_labels":
				meta["labels"] = v
			default:
				spec[k] = v
			}
		}
		if meta["namespace"] == nil || meta["namespace"] == "" {
			meta["namespace"] = dig(parent, "metadata", "namespace")
		}
		if meta["labels"] == nil && dig(parent, "metadata", "labels") != nil {
			meta["labels"] = dig(parent, "metadata", "labels")
		}
		out = append(out, obj)
	}
	return out
}

// emissarySecretRefs are the Secrets (namespace/name) a Host or TLSContext names; a name
// "secret.ns" points into another namespace (secret namespacing, Emissary's default).
func emissarySecretRefs(objs []map[string]any) map[string]bool {
	refs := map[string]bool{}
	add := func(owner map[string]any, name, ns any) {
		n := str(name)
		if name == nil || n == "" {
			return
		}
		namespace := str(dig(owner, "metadata", "namespace"))
		if ns != nil && str(ns) != "" {
			namespace = str(ns)
		} else if base, other, ok := strings.Cut(n, "."); ok {
			n, namespace = base, other
		}
		refs[namespace+"/"+n] = true
	}
	for _, o := range objs {
		switch str(o["kind"]) {
		case "Host":
			add(o, dig(o, "spec", "tlsSecret", "name"), dig(o, "spec", "tlsSecret", "namespace"))
			add(o, dig(o, "spec", "tls", "ca_secret"), nil)
			add(o, dig(o, "spec", "tls", "crl_secret"), nil)
		case "TLSContext":
			for _, k := range []string{"secret", "ca_secret", "crl_secret"} {
				add(o, dig(o, "spec", k), nil)
			}
		}
	}
	return refs
}

// standInSecret gives a Secret real PEMs under the keys it has (the mocks' certificates are
// placeholders; a key Emissary reads but ztedge does not set, like ca.crt beside a server
// certificate, changes what it generates), keeping its type. A runtime Secret without data
// gets the keys of its type.
func standInSecret(obj map[string]any, pemPair [2]string) map[string]any {
	out := map[string]any{}
	for k, v := range obj {
		out[k] = v
	}
	keys := map[string]bool{}
	for _, field := range []string{"data", "stringData"} {
		m, _ := obj[field].(map[string]any)
		for k := range m {
			keys[k] = true
		}
	}
	if len(keys) == 0 {
		keys = map[string]bool{"tls.crt": true, "tls.key": true}
	}
	delete(out, "stringData")
	data := map[string]any{}
	for k := range keys {
		switch {
		case strings.HasSuffix(k, ".key") || k == "key.pem":
			data[k] = pemPair[1]
		case strings.HasSuffix(k, ".crt") || strings.HasSuffix(k, ".pem"):
			data[k] = pemPair[0]
		default:
			data[k] = b64([]byte("stand-in"))
		}
	}
	out["data"] = data
	if out["type"] == nil {
		out["type"] = "Opaque"
	}
	return out
}

// emissaryChartValues are, for the release of Emissary (or Edge Stack's emissary-ingress
// subchart), the values ztedge gives it and the chart's defaults (its values.yaml, kept in
// tests/testdata/charts); nil for any other resource.
func emissaryChartValues(t *testing.T, res *mockengine.Resource) (values, defaults map[string]any) {
	if res.Type != typeRelease {
		return nil, nil
	}
	values, _ = input(res, "values").(map[string]any)
	chart := "emissary-ingress-4.1.0"
	if sub, ok := values["emissary-ingress"].(map[string]any); ok {
		values, chart = sub, "edge-stack-8.10.1-rc.1"
	}
	if values["module"] == nil {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "tests", "testdata", "charts", chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &defaults); err != nil {
		t.Fatal(err)
	}
	if sub, ok := defaults["emissary-ingress"].(map[string]any); ok {
		defaults = sub
	}
	return values, defaults
}

// emissaryChartModule is the chart's templates/module.yaml: the `ambassador` Module whose config
// is the `module` value (with `enabled`, which the template copies into the config too).
func emissaryChartModule(values map[string]any, ns string) map[string]any {
	module, _ := values["module"].(map[string]any)
	spec := map[string]any{"config": module}
	if env, _ := values["env"].(map[string]any); env["AMBASSADOR_ID"] != nil {
		spec["ambassador_id"] = []any{str(env["AMBASSADOR_ID"])}
	}
	return map[string]any{"apiVersion": "getambassador.io/v3alpha1", "kind": "Module",
		"metadata": map[string]any{"name": "ambassador", "namespace": ns}, "spec": spec}
}

// emissaryChartEnv is the environment deployment.yaml gives Emissary's container (HOST_IP and the
// waitForApiext variables aside: the compiler does not read them).
func emissaryChartEnv(values map[string]any, ns string) map[string]string {
	env := map[string]string{"AMBASSADOR_NAMESPACE": ns}
	if dig(values, "namespace", "name") != nil {
		env["AMBASSADOR_NAMESPACE"] = str(dig(values, "namespace", "name"))
	}
	if dig(values, "scope", "singleNamespace") == true {
		env["AMBASSADOR_SINGLE_NAMESPACE"] = "YES"
	}
	if dig(values, "prometheusExporter", "enabled") == true {
		env["STATSD_ENABLED"], env["STATSD_HOST"] = "true", "localhost"
	}
	vals, _ := values["env"].(map[string]any)
	for k, v := range vals {
		env[strings.ToUpper(k)] = str(v)
	}
	return env
}

// chartPodLabels are the labels of Emissary's pods (the chart's selector labels and podLabels).
func chartPodLabels(values map[string]any, release string) map[string]string {
	labels := map[string]string{"app.kubernetes.io/instance": release}
	pl, _ := values["podLabels"].(map[string]any)
	for k, v := range pl {
		labels[k] = str(v)
	}
	return labels
}

// stackBackends are the backends a stack configuration names.
func stackBackends(t *testing.T, cfg stacks.MapSource) []components.Backend {
	var backends []components.Backend
	if err := json.Unmarshal([]byte(cfg.Values["ztedge:backends"]), &backends); err != nil {
		t.Fatalf("ztedge:backends: %v", err)
	}
	return backends
}

// renderedObject is a custom resource of a run with its inputs as a plain Kubernetes object.
type renderedObject struct {
	res *mockengine.Resource
	obj map[string]any
}

// renderedObjects are the run's custom resources whose inputs form an object.
func renderedObjects(g *graph) []renderedObject {
	var out []renderedObject
	for _, res := range g.all {
		if !res.Custom {
			continue
		}
		if obj, ok := plain(res).(map[string]any); ok {
			out = append(out, renderedObject{res, obj})
		}
	}
	return out
}

// backendServices are the backend teams' Services, which the backends' routes send to (both
// engines' tiers add them: ztedge does not create them).
func backendServices(t *testing.T, cfg stacks.MapSource) []map[string]any {
	var out []map[string]any
	for _, b := range stackBackends(t, cfg) {
		out = append(out, map[string]any{"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": b.ServiceName(), "namespace": b.Namespace},
			"spec":     map[string]any{"ports": []any{map[string]any{"name": "https", "port": b.Port}}, "selector": b.Selector()}})
	}
	return out
}

// runtimeSecrets are the Secrets that exist only once the edge runs: Emissary's watcher builds
// "istio-certs" (type kubernetes.io/tls, in its own namespace) from the files in
// AMBASSADOR_ISTIO_SECRET_DIR (cmd/entrypoint/istiocert.go), and consul-cert-sync writes the
// Consul Connect leaf and roots (components/consul.go).
func runtimeSecrets(env map[string]string, objs []map[string]any) []map[string]any {
	secret := func(name, ns string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
			"metadata": map[string]any{"name": name, "namespace": ns}}
	}
	ns := env["AMBASSADOR_NAMESPACE"]
	var out []map[string]any
	if env["AMBASSADOR_ISTIO_SECRET_DIR"] != "" {
		out = append(out, secret(components.IstioCertsSecret, ns))
	}
	for _, o := range objs {
		if str(o["kind"]) == "TLSContext" && str(dig(o, "metadata", "name")) == components.ConsulTLSContext {
			out = append(out, secret(components.ConsulLeafSecret, ns), secret(components.ConsulRootsSecret, ns))
		}
	}
	return out
}

// hostilePrefix starts the path of every route hostileObjects ask for.
const hostilePrefix = "/hostile-"

// hostileTarget is the backend a hostile team's objects route to (the stack's first) and the edge
// namespace they aim at.
func hostileTarget(t *testing.T, cfg stacks.MapSource) (b components.Backend, edgeNS string) {
	backends := stackBackends(t, cfg)
	if len(backends) == 0 {
		t.Fatal("the stack has no backend")
	}
	edgeNS = "ambassador"
	if ns := cfg.Values["ztedge:ambassadorNamespace"]; ns != "" {
		edgeNS = ns
	}
	return backends[0], edgeNS
}

// hostileObjects are what anyone who can write in a backend's namespace (the default `edit` role,
// a backend team's CI) would add to publish a route of their own: a Service whose
// getambassador.io/config annotation names Ambassador's namespace and the edge Host's label, and
// a Mapping in their own namespace; both skip the auth check and forge the identity header.
func hostileObjects(t *testing.T, g *graph, cfg stacks.MapSource) []map[string]any {
	b, ambassadorNS := hostileTarget(t, cfg)
	mapping := func(name string) map[string]any {
		return map[string]any{
			"hostname": strings.ToLower(cfg.Values["ztedge:hostname"]), "prefix": hostilePrefix + name + "/",
			"service": fmt.Sprintf("https://%s.%s:%d", b.ServiceName(), b.Namespace, b.Port), "bypass_auth": true,
			"add_request_headers": map[string]any{"x-user-id": "admin", "x-user-permissions": "*"},
		}
	}
	annotation := mapping("annotation")
	annotation["apiVersion"], annotation["kind"], annotation["name"], annotation["namespace"] = "getambassador.io/v3alpha1", "Mapping", "hostile-annotation", ambassadorNS
	annotation["metadata_labels"] = toAny(components.EdgeMappingLabels())
	doc, err := yaml.Marshal(annotation)
	if err != nil {
		t.Fatal(err)
	}
	return []map[string]any{
		{"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": "hostile", "namespace": b.Namespace, "annotations": map[string]any{"getambassador.io/config": "---\n" + string(doc)}},
			"spec":     map[string]any{"ports": []any{map[string]any{"port": 8443}}, "selector": b.Selector()}},
		{"apiVersion": "getambassador.io/v3alpha1", "kind": "Mapping",
			"metadata": map[string]any{"name": "hostile-crd", "namespace": b.Namespace, "labels": toAny(components.EdgeMappingLabels())},
			"spec":     mapping("crd")},
	}
}
