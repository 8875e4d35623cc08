#!/usr/bin/env bash
# The main job, for a newcomer: bring up the local cluster, install nonstop with Helm, apply
# an example Rollout and roll it to a new image while its progress shows.
#
# The chart installs the CRD, the ServiceAccount and its RBAC. KWOK's pods run no containers,
# so the operator itself runs here as a process, with the chart's ServiceAccount token: the
# demo uses exactly the permissions a cluster install would have.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=cluster/versions.sh
source "$here/cluster/versions.sh"
name=${NONSTOP_CLUSTER:-nonstop}
ns=demo
nonstop=$repo/.venv/bin/nonstop
[ -x "$nonstop" ] || nonstop=nonstop
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1/5 local control plane (etcd, kube-apiserver, controller-manager, scheduler, KWOK nodes)"
kubeconfig=$(bash "$here/cluster/up.sh" --name "$name" | tail -n 1)
export KUBECONFIG=$kubeconfig PATH="$BIN_DIR:$PATH"
kubectl get nodes

say "2/5 helm install nonstop (CRD, ServiceAccount, RBAC)"
helm upgrade --install nonstop "$repo/helm/nonstop" --namespace nonstop-system --create-namespace \
  --set operator.enabled=false --wait
state=$NONSTOP_CACHE/clusters/$name
sa_config=$state/nonstop-sa.kubeconfig
server=$(kubectl config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
token=$(kubectl -n nonstop-system create token nonstop --duration=2h)
cat > "$sa_config" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: nonstop, user: {token: "$token"}}]
contexts: [{name: nonstop, context: {cluster: local, user: nonstop}}]
current-context: nonstop
YAML
KUBECONFIG=$sa_config "$nonstop" run > "$state/operator.log" 2>&1 &
operator=$!
trap 'kill $operator 2>/dev/null || true' EXIT
fail() { echo "demo: $*; the operator's log ends with:" >&2; tail -n 20 "$state/operator.log" >&2; exit 1; }
echo "operator running as system:serviceaccount:nonstop-system:nonstop (log: $state/operator.log)"

say "3/5 apply examples/rolling.yaml and wait until it is Ready"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" delete rollout web --ignore-not-found --wait >/dev/null
until kubectl -n "$ns" get serviceaccount default >/dev/null 2>&1; do sleep 0.5; done
kubectl -n "$ns" apply -f "$repo/examples/rolling.yaml"
kubectl -n "$ns" wait --for=condition=Ready rollout/web --timeout=120s || fail "the Rollout did not become Ready"
kubectl -n "$ns" get rollouts

say "4/5 roll to a new image: old pods go only as new ones are ready (maxSurge 1, maxUnavailable 0)"
kubectl -n "$ns" patch rollout web --type=json \
  -p '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"registry.example/web:2.0"}]'
generation=$(kubectl -n "$ns" get rollout web -o jsonpath='{.metadata.generation}')
kubectl -n "$ns" get rollouts
for _ in $(seq 120); do
  sleep 1
  kubectl -n "$ns" get rollouts --no-headers
  observed=$(kubectl -n "$ns" get rollout web -o jsonpath='{.status.observedGeneration} {.status.phase}')
  [ "$observed" = "$generation Healthy" ] && break
done

say "5/5 kubectl describe rollout web (the Events tell the story)"
kubectl -n "$ns" describe rollout web | sed -n '/^Status:/,$p'
cat <<EOF2

The cluster keeps running. Try it yourself:
  export KUBECONFIG=$kubeconfig PATH=$BIN_DIR:\$PATH
  $nonstop run &          # the operator (the demo's one stops now)
  kubectl -n $ns get rollouts -w
Stop the cluster with: make cluster-down
EOF2
