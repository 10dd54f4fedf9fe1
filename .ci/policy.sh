#!/usr/bin/env bash
# Policy checks on what ztedge would deploy, with no cloud and no Pulumi CLI:
#   1. render the dev, prod and local stacks offline (`ztedge render`);
#   2. conftest with ztedge's Rego rules (policy/ztedge.rego) on each render: must pass;
#   3. every bad fixture in policy/fixtures/ must FAIL with its expected rule and message;
#   4. kube-score on each render: no finding except the open ones listed in policy/kube-score-open.txt;
#   5. actionlint on .github/workflows.
# Self-installing: the tools are built from the Go module proxy at pinned versions into
# $ZTEDGE_TOOLS (default ~/.cache/ztedge-tools), once per version. Run: bash .ci/policy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

KUBE_SCORE=github.com/zegl/kube-score/cmd/kube-score@v1.20.0
CONFTEST=github.com/open-policy-agent/conftest@v0.71.1
ACTIONLINT=github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
TOOLS=${ZTEDGE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/ztedge-tools}

# kube-score checks that do not apply to a render, each with its reason:
#   container-image-pull-policy  images are pinned to a tag or digest (config validation refuses
#                                :latest); Always would add a registry round trip to every pod start
#                                and make restarts fail while the registry is down.
#   networkpolicy-targets-pod,   the pods and Services these select come from the Emissary Helm chart
#   service-targets-pod,         and the backends' own deployments, which a render does not contain
#   ingress-targets-service      (charts are not fetched offline); tests/ check the selectors instead.
# --ignore-container-cpu-limit: CPU limits throttle latency-sensitive proxies without protecting
# anything that requests do not; memory limits are required (and checked by policy/ztedge.rego).
KUBE_SCORE_IGNORES=container-image-pull-policy,networkpolicy-targets-pod,service-targets-pod,ingress-targets-service

failures=0
fail() { printf 'POLICY FAIL: %s\n' "$*"; failures=$((failures + 1)); }
step() { printf '\n-- %s (%ss)\n' "$1" "$SECONDS"; }

# tool NAME MODULE@VERSION: the binary path, built once per version.
tool() {
  local bin="$TOOLS/$1-${2##*@}"
  if [ ! -x "$bin" ]; then
    local start=$SECONDS tmp
    tmp=$(mktemp -d)
    GOBIN="$tmp" go install "$2" >&2
    mkdir -p "$TOOLS" && mv "$tmp/$1" "$bin" && rm -rf "$tmp"
    printf 'built %s in %ss\n' "$2" "$((SECONDS - start))" >&2
  fi
  printf '%s' "$bin"
}

step "tools"
kube_score=$(tool kube-score "$KUBE_SCORE")
conftest=$(tool conftest "$CONFTEST")
actionlint=$(tool actionlint "$ACTIONLINT")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step "render dev, prod, local (and prod with each service mesh)"
go build -o "$work/ztedge" ./cmd/ztedge
stacks=(dev prod local)
for s in "${stacks[@]}"; do
  "$work/ztedge" render --stack "$s" --out "$work/$s"
done
# The service-mesh modes on the prod stack (examples/mesh/*.yaml appended to its config): the
# same rules hold with upstreamMtls istio and consul.
for m in istio consul; do
  mkdir -p "$work/prod-$m-project"
  cp Pulumi.yaml "$work/prod-$m-project/"
  cat Pulumi.prod.yaml "examples/mesh/$m.yaml" >"$work/prod-$m-project/Pulumi.prod.yaml"
  "$work/ztedge" render --stack prod --dir "$work/prod-$m-project" --out "$work/prod-$m"
  stacks+=("prod-$m")
done

step "conftest (policy/ztedge.rego) on the renders"
"$conftest" fmt --check policy || fail "policy/*.rego is not formatted: run conftest fmt policy"
for s in "${stacks[@]}"; do
  "$conftest" test --no-color --combine --policy policy "$work/$s/kubernetes" "$work/$s/helm" "$work/$s/aws.json" || fail "stack $s breaks a ztedge rule (above)"
done

step "every bad fixture fails with its rule"
for dir in policy/fixtures/*/; do
  name=$(basename "$dir")
  tag=$(sed -n 1p "$dir/expect")
  want=$(sed -n 2p "$dir/expect")
  files=$(find "$dir" -type f ! -name expect | sort)
  set +e
  # shellcheck disable=SC2086 # one argument per fixture file
  out=$("$conftest" test --no-color --combine --policy policy $files 2>&1)
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    fail "fixture $name passed; its rule $tag does not fire"
  elif ! grep -qF -- "$want" <<<"$out"; then
    fail "fixture $name failed without the expected message: $want"$'\n'"$out"
  elif grep '^FAIL' <<<"$out" | grep -vqF -- "$tag"; then
    fail "fixture $name also breaks other rules than $tag (keep fixtures to one fault):"$'\n'"$out"
  else
    printf 'fixture %-22s fails as expected: %s\n' "$name" "$tag"
  fi
done

step "kube-score on the renders"
open_list=policy/kube-score-open.txt
seen="$work/kube-score-seen.txt"
: >"$seen"
for s in "${stacks[@]}"; do
  set +e
  # shellcheck disable=SC2046 # one argument per manifest
  "$kube_score" score --output-format ci --ignore-container-cpu-limit --ignore-test "$KUBE_SCORE_IGNORES" \
    $(find "$work/$s/kubernetes" -name '*.yaml' | sort) >"$work/ks-$s.txt"
  set -e
  grep '^\[CRITICAL\]' "$work/ks-$s.txt" >>"$seen" || true
  while IFS= read -r line; do
    if grep -qxF -- "$line" "$open_list"; then
      printf 'OPEN (%s, policy/kube-score-open.txt) %s\n' "$s" "$line"
    else
      fail "kube-score ($s): $line"
    fi
  done < <(grep '^\[CRITICAL\]' "$work/ks-$s.txt" || true)
  grep '^\[WARNING\]' "$work/ks-$s.txt" | sed "s/^/($s) /" || true
done
while IFS= read -r line; do
  case "$line" in '#'* | '') continue ;; esac
  grep -qxF -- "$line" "$seen" || fail "no longer found by kube-score, remove it from $open_list: $line"
done <"$open_list"

step "actionlint"
"$actionlint" -no-color .github/workflows/*.yml || fail "actionlint found problems in .github/workflows"

if [ "$failures" -gt 0 ]; then
  printf '\npolicy checks: %d problem(s)\n' "$failures"
  exit 1
fi
printf '\npolicy checks: all clean (%ss)\n' "$SECONDS"
