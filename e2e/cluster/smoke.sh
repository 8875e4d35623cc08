#!/usr/bin/env bash
# Checks that a cluster made by up.sh works as the tests expect, in a throwaway namespace:
# node count and readiness, server version, a Deployment whose pods become ready behind a
# Service's EndpointSlice, scaling down (pod deletion), and the test.kwok/readiness labels
# (never, flaky). Prints one line per check and "N passed, N failed"; exit 1 on a failure.
#
# usage: e2e/cluster/smoke.sh [--name NAME] [--nodes N]   (N: expected node count, default 3)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"

parse_name "$@"
nodes=${NONSTOP_NODES:-3}
set -- ${REST[@]+"${REST[@]}"}
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) [ $# -ge 2 ] || die "--nodes needs a value"; nodes=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
[ -s "$KUBECONFIG_PATH" ] || die "cluster '$NAME' has no kubeconfig: run e2e/cluster/up.sh --name $NAME first."

ns="nonstop-smoke-$(date +%s)-$$"
passed=0 failed=0
ok() { echo "ok   - $*"; passed=$((passed + 1)); }
bad() { echo "FAIL - $*"; failed=$((failed + 1)); }
cleanup() { kctl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT

# wait_until SECONDS CMD...: polls CMD every 0.5 s.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
# Ready values of the endpoints behind Service $1, sorted, space-separated (e.g. "true true").
endpoints() {
  kctl -n "$ns" get endpointslice -l "kubernetes.io/service-name=$1" \
    -o jsonpath='{range .items[*].endpoints[*]}{.conditions.ready}{"\n"}{end}' | sort | xargs
}
endpoints_are() { [ "$(endpoints "$1")" = "$2" ]; }
pods_of() { kctl -n "$ns" get pods -l "app=$1" -o name | wc -l; }
pods_count_is() { [ "$(pods_of "$1")" -eq "$2" ]; }
# Field of every pod of app $1, space-separated.
pod_field() { kctl -n "$ns" get pods -l "app=$1" -o jsonpath="{range .items[*]}$2{\"\\n\"}{end}" | xargs; }

deploy() { # name replicas readiness-label unready-after
  local labels="app: $1" annotations="{}"
  [ -z "$3" ] || labels="$labels
        test.kwok/readiness: $3"
  [ -z "$4" ] || annotations="{test.kwok/unready-after: \"$4\"}"
  kctl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata:
      labels:
        $labels
      annotations: $annotations
    spec:
      containers: [{name: app, image: example.invalid/app:1}]
---
apiVersion: v1
kind: Service
metadata: {name: $1}
spec:
  selector: {app: $1}
  ports: [{port: 80, targetPort: 8080}]
EOF
}

# --- cluster ---------------------------------------------------------------------------
ready_nodes=$(kctl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$' || true)
all_nodes=$(kctl get nodes -o name | wc -l)
if [ "$all_nodes" -eq "$nodes" ] && [ "$ready_nodes" -eq "$nodes" ]; then ok "$nodes nodes, all Ready"
else bad "expected $nodes Ready nodes, got $ready_nodes Ready of $all_nodes"; fi
taints=$(kctl get nodes -o jsonpath='{.items[*].spec.taints}')
if [ -z "$taints" ]; then ok "nodes have no taints"; else bad "nodes have taints: $taints"; fi

server=$(kctl version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')
client=$(kctl version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')
if [ "$server" = "$K8S_VERSION" ] && [ "$client" = "$K8S_VERSION" ]; then ok "server and kubectl are $K8S_VERSION"
else bad "versions: server $server, kubectl $client, expected $K8S_VERSION"; fi

kctl create namespace "$ns" >/dev/null
if wait_until 30 kctl -n "$ns" get serviceaccount default; then ok "namespace gets its default ServiceAccount"
else bad "no default ServiceAccount in a new namespace after 30s"; fi

# --- Gateway API CRDs: schema and CEL validation by the real API server ---------------------
route() { # name path-value
  kctl -n "$ns" apply -f - <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: $1}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: "$2"}}]
    backendRefs: [{name: stable, port: 80, weight: 90}, {name: canary, port: 80, weight: 10}]
EOF
}
if route good /api >/dev/null 2>&1; then ok "HTTPRoute with weighted backends accepted"
else bad "valid HTTPRoute rejected: $(route good /api 2>&1 | tail -n1)"; fi
if route bad api >/dev/null 2>&1; then bad "HTTPRoute with a relative path accepted (CEL rules not enforced?)"
else ok "HTTPRoute with a relative path rejected by the CRD's CEL rule"; fi

# --- pods --------------------------------------------------------------------------------
deploy web 3 "" ""
deploy never 2 never ""
deploy flaky 2 flaky 8s

if kctl -n "$ns" rollout status deployment/web --timeout=60s >/dev/null; then ok "Deployment web: 3/3 pods ready"
else bad "Deployment web not ready after 60s: $(kctl -n "$ns" get pods -l app=web --no-headers 2>&1 | xargs)"; fi
if wait_until 30 endpoints_are web "true true true"; then ok "EndpointSlice of Service web: 3 ready endpoints"
else bad "EndpointSlice of Service web: '$(endpoints web)', expected 3 × true"; fi
ips=$(pod_field web '{.status.podIP}')
if [ "$(wc -w <<<"$ips")" -eq 3 ]; then ok "web pods have IPs: $ips"; else bad "web pod IPs: '$ips'"; fi

# never: Running with an IP, Ready=False (ContainersNotReady), and it stays so.
never_ok() {
  [ "$(pod_field never '{.status.phase}')" = "Running Running" ] &&
  [ "$(pod_field never '{.status.conditions[?(@.type=="Ready")].status}')" = "False False" ] &&
  [ "$(pod_field never '{.status.conditions[?(@.type=="Ready")].reason}')" = "ContainersNotReady ContainersNotReady" ] &&
  [ "$(pod_field never '{.status.conditions[?(@.type=="ContainersReady")].status}')" = "False False" ] &&
  [ "$(wc -w <<<"$(pod_field never '{.status.podIP}')")" -eq 2 ]
}
if wait_until 30 never_ok && wait_until 30 endpoints_are never "false false"; then
  ok "readiness=never: pods Running with IPs, Ready=False/ContainersNotReady, endpoints ready=false"
else bad "readiness=never: pods $(pod_field never '{.status.phase}/{.status.conditions[?(@.type=="Ready")].status}'), endpoints '$(endpoints never)'"; fi

# flaky: Ready first, then NotReady 8 s after.
if wait_until 30 endpoints_are flaky "true true"; then ok "readiness=flaky: ready first (endpoints ready=true)"
else bad "readiness=flaky: endpoints '$(endpoints flaky)', expected ready first"; fi
if wait_until 40 endpoints_are flaky "false false"; then
  ok "readiness=flaky: NotReady after test.kwok/unready-after=8s (endpoints ready=false)"
else bad "readiness=flaky: endpoints '$(endpoints flaky)' 40s later, expected ready=false"; fi

# Still not ready a while later (no stage readies a Running pod again).
sleep 5
if never_ok && endpoints_are never "false false" && endpoints_are flaky "false false"; then ok "never/flaky pods stay NotReady"
else bad "never/flaky pods did not stay NotReady: never '$(endpoints never)', flaky '$(endpoints flaky)'"; fi

# --- deletion ----------------------------------------------------------------------------
kctl -n "$ns" scale deployment/web --replicas=1 >/dev/null
if wait_until 30 pods_count_is web 1 && wait_until 30 endpoints_are web "true"; then ok "scale web to 1: pods deleted, 1 endpoint left"
else bad "scale web to 1: $(pods_of web) pods, endpoints '$(endpoints web)'"; fi
kctl -n "$ns" delete deployment never flaky --wait=false >/dev/null
if wait_until 30 pods_count_is never 0 && wait_until 30 pods_count_is flaky 0; then ok "pods of never/flaky Deployments deleted"
else bad "never/flaky pods left: $(pods_of never) and $(pods_of flaky)"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
