package components

// MutableConfig is the kubernetes provider's enableConfigMapMutable and enableSecretMutable,
// set on every provider ztedge creates. By default (false) the provider replaces a ConfigMap or
// Secret whose data changes; ztedge's have fixed names (jwt-auth mounts them by name), so the
// replacement is delete-then-create and takes the jwt-auth Deployment with it: every request is
// refused until it is back (Envoy fails closed). Updated in place, the pods roll one at a time
// instead (the config checksum annotation on jwt-auth's pod template, maxUnavailable 0) or pick
// the change up themselves (signing keys, re-read every 30 s). Documented in pulumi-kubernetes
// v4.30.0 (sdk/go/kubernetes/provider.go: "allow ConfigMaps / Secrets to be mutated").
const MutableConfig = true
