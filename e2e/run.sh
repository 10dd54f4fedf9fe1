#!/usr/bin/env bash
# The real-engine tier (make e2e): builds the Pulumi CLI, etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok from the Go module proxy at the versions pinned
# in e2e/tools/*/go.mod (once per version, cached in $ZTEDGE_E2E_CACHE, default
# ~/.cache/ztedge-e2e), installs the Go language host and the provider plugins from
# ../shared/pulumi-plugins into a Pulumi home of its own, and runs e2e/*_test.go (build tag e2e),
# which starts the control plane on 127.0.0.1 and deploys the local stack through `ztedge` and
# `pulumi up`. Everything it starts stops when the test binary exits, pass or fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
CACHE=${ZTEDGE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ztedge-e2e}
SHARED=${ZTEDGE_SHARED:-$root/../shared}
mkdir -p "$CACHE"
command -v xz >/dev/null || { apt-get update -qq && apt-get install -y -qq xz-utils >/dev/null; }

# version TOOLDIR MODULE: the version of MODULE pinned in e2e/tools/TOOLDIR/go.mod.
version() { awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "e2e/tools/$1/go.mod"; }

# build TOOLDIR PACKAGE NAME VERSION [LDFLAGS]: $CACHE/NAME-VERSION/NAME, built once.
build() {
  local out="$CACHE/$3-$4/$3"
  if [ ! -x "$out" ]; then
    local start=$SECONDS
    (cd "e2e/tools/$1" && go build -trimpath -ldflags "-s -w ${5:-}" -o "$out.tmp" "$2") && mv "$out.tmp" "$out"
    printf 'built %s %s in %ss\n' "$3" "$4" "$((SECONDS - start))" >&2
  fi
  printf '%s' "$out"
}

pulumi_v=$(version pulumi github.com/pulumi/pulumi/pkg/v3)
sdk_v=$(awk '$1 == "github.com/pulumi/pulumi/sdk/v3" { print $2; exit }' go.mod)
if [ "$pulumi_v" != "$sdk_v" ]; then
  echo "e2e/tools/pulumi pins the CLI at $pulumi_v but the program's SDK is $sdk_v: keep them equal" >&2
  exit 1
fi
k8s_v=$(version kubernetes k8s.io/kubernetes)
etcd_v=$(version kubernetes go.etcd.io/etcd/server/v3)
kwok_v=$(version kwok sigs.k8s.io/kwok)

pulumi=$(build pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi pulumi "$pulumi_v" \
  "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$pulumi_v")
kflags="-X k8s.io/component-base/version.gitVersion=$k8s_v -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$k8s_v")"
export E2E_KUBE_APISERVER E2E_KUBE_CONTROLLER_MANAGER E2E_KUBE_SCHEDULER E2E_ETCD E2E_KWOK E2E_KWOK_STAGES E2E_CHARTS
E2E_KUBE_APISERVER=$(build kubernetes k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$k8s_v" "$kflags")
E2E_KUBE_CONTROLLER_MANAGER=$(build kubernetes k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager "$k8s_v" "$kflags")
E2E_KUBE_SCHEDULER=$(build kubernetes k8s.io/kubernetes/cmd/kube-scheduler kube-scheduler "$k8s_v" "$kflags")
E2E_ETCD=$(build kubernetes go.etcd.io/etcd/server/v3 etcd "$etcd_v")
E2E_KWOK=$(build kwok sigs.k8s.io/kwok/cmd/kwok kwok "$kwok_v")

# kwok's "fast" stages (nodes Ready at once, pods Running and Ready, deletions honoured) and the
# node heartbeat through its Lease (else the node lifecycle controller marks the node's pods
# NotReady), from the kwok module itself.
E2E_KWOK_STAGES="$CACHE/kwok-$kwok_v/stages-lease.yaml"
if [ ! -s "$E2E_KWOK_STAGES" ]; then
  kwok_dir=$(cd e2e/tools/kwok && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  for f in "$kwok_dir"/kustomize/stage/node/fast/node-*.yaml "$kwok_dir"/kustomize/stage/node/heartbeat-with-lease/node-*.yaml \
    "$kwok_dir"/kustomize/stage/pod/fast/pod-*.yaml; do
    printf -- '---\n'; cat "$f"
  done >"$E2E_KWOK_STAGES"
fi

# The Go language host and the provider plugins (see ../shared/pulumi-plugins/README.md), in a
# Pulumi home of the tier's own: the user's ~/.pulumi is not touched.
export PULUMI_HOME="$CACHE/pulumi-home"
plugins="$CACHE/plugins-$pulumi_v"
mkdir -p "$plugins" "$PULUMI_HOME"
for xz in "$SHARED"/pulumi-plugins/*.xz; do
  name=$(basename "$xz" .xz)
  [ -x "$plugins/$name" ] || { xz -dc "$xz" >"$plugins/$name.tmp" && chmod +x "$plugins/$name.tmp" && mv "$plugins/$name.tmp" "$plugins/$name"; }
done
ln -sf "$plugins/pulumi-language-go-$pulumi_v" "$(dirname "$pulumi")/pulumi-language-go"
export PATH="$(dirname "$pulumi"):$PATH"
# The `ztedge` subtest runs without the CLI on PATH, as on a fresh machine where ztedge installed
# the pinned CLI into the Pulumi home: it must find it in $PULUMI_HOME/versions/<version>/bin.
mkdir -p "$PULUMI_HOME/versions/${pulumi_v#v}/bin"
ln -sf "$pulumi" "$PULUMI_HOME/versions/${pulumi_v#v}/bin/pulumi"
export E2E_PULUMI_BIN_DIR=$(dirname "$pulumi")
for p in "$plugins"/pulumi-resource-*; do
  name=$(basename "$p"); name=${name#pulumi-resource-}
  kind=${name%-v*}; ver=${name##*-}
  [ -d "$PULUMI_HOME/plugins/resource-$kind-$ver" ] || pulumi plugin install resource "$kind" "$ver" --file "$p" >/dev/null
done
E2E_CHARTS=$(cd "$SHARED/charts" && pwd)

pulumi version
start=$SECONDS
# -json through testsummary: the same verbose output, then each failed test's last lines again at
# the end, where a CI record that keeps only the tail still shows why.
summary="$CACHE/testsummary"
go build -o "$summary" ./cmd/testsummary
set +e
go test -tags e2e -count=1 -timeout 45m -json ./e2e/ "$@" | "$summary" -tail 40
status=("${PIPESTATUS[@]}")
set -e
printf 'real-engine tier: %ss\n' "$((SECONDS - start))"
[ "${status[0]}" = 0 ] && [ "${status[1]}" = 0 ]
