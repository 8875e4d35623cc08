#!/usr/bin/env bash
# The main job, for a newcomer: bring up the local cluster, install nonstop with Helm, apply
# an example Rollout and roll it to a new version while its progress shows.
#
# Where the machine can host a real worker node (root, cgroups: e2e/cluster/node.sh check),
# nonstop runs in a pod from its image, installed by the chart, and the example is the test
# application on that node: while the canary moves, real requests go through the Service
# (kube-proxy) and the demo prints which version answered them and how many failed (0).
# Elsewhere it says why in one line and falls back to KWOK's simulated nodes, where pods run
# no containers: the operator then runs here as a process, with the chart's ServiceAccount
# token, so it has exactly the permissions a cluster install would have.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=cluster/versions.sh
source "$here/cluster/versions.sh"
name=${NONSTOP_CLUSTER:-nonstop}
ns=demo
python=$repo/.venv/bin/python
nonstop=$repo/.venv/bin/nonstop
[ -x "$nonstop" ] || nonstop=nonstop
[ -x "$python" ] || python=python3
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if why=$(bash "$here/cluster/node.sh" check); then
  real=1
else
  real=0
  echo "demo: this machine cannot host a real node ($why): running on KWOK's simulated nodes, without traffic."
fi

if [ "$real" = 1 ]; then
  say "1/5 local control plane, with a real worker node (kubelet, containerd, kube-proxy) beside the KWOK nodes"
  kubeconfig=$(bash "$here/cluster/up.sh" --name "$name" --real-node | tail -n 1)
  export KUBECONFIG=$kubeconfig PATH="$BIN_DIR:$(dirname "$python"):$PATH"
  kubectl get nodes -o wide

  say "2/5 helm install nonstop: the operator in a pod on the real node, from the image built here"
  images=$(bash "$here/images/build.sh")
  app_image=$(awk '/nonstop-test-app/ {print $1}' <<<"$images")
  operator_archive=$(awk '/nonstop-dev\/nonstop/ {print $2}' <<<"$images")
  server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  api=${server#https://}
  # The local API server listens on 127.0.0.1 only: the operator pod uses the node's network.
  helm upgrade --install nonstop "$repo/helm/nonstop" --namespace nonstop-system --create-namespace \
    --set operator.hostNetwork=true --set operator.healthPort=18481 \
    --set operator.env[0].name=KUBERNETES_SERVICE_HOST --set "operator.env[0].value=${api%:*}" \
    --set operator.env[1].name=KUBERNETES_SERVICE_PORT --set-string "operator.env[1].value=${api##*:}" \
    --set-string 'operator.nodeSelector.nonstop\.test/real-node=true' \
    --set operator.tolerations[0].key=nonstop.test/real-node --set operator.tolerations[0].operator=Exists \
    --set-string "operator.podAnnotations.nonstop\.test/image=$(basename "$operator_archive")" \
    --wait --timeout 180s
  kubectl -n nonstop-system get pods -o wide

  say "3/5 apply examples/canary-pods.yaml (the test application, version v1) and wait until it is Ready"
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl -n "$ns" delete rollout web --ignore-not-found --wait >/dev/null
  until kubectl -n "$ns" get serviceaccount default >/dev/null 2>&1; do sleep 0.5; done
  "$python" - "$repo/examples/canary-pods.yaml" "$app_image" <<'PY' | kubectl -n "$ns" apply -f -
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
pod = doc["spec"]["template"]["spec"]
pod["containers"][0].update(image=sys.argv[2], imagePullPolicy="Never")
pod.update(nodeSelector={"nonstop.test/real-node": "true"}, automountServiceAccountToken=False,
           dnsPolicy="Default", tolerations=[{"key": "nonstop.test/real-node", "operator": "Exists"}])
print(yaml.safe_dump(doc))
PY
  kubectl -n "$ns" wait --for=condition=Ready rollout/web --timeout=180s
  kubectl -n "$ns" get rollouts

  say "4/5 release v2: the canary moves 25% -> 50% -> 75% of the pods -> all, while requests flow"
  kubectl -n "$ns" patch rollout web --type=json \
    -p '[{"op":"replace","path":"/spec/template/spec/containers/0/env","value":[{"name":"VERSION","value":"v2"}]}]'
  ip=$(kubectl -n "$ns" get service web -o jsonpath='{.spec.clusterIP}')
  (cd "$repo" && "$python" -m e2e.demo_traffic "http://$ip/" "$ns" web) ||
    echo "demo: the rollout did not finish cleanly (see above)"

  say "5/5 kubectl describe rollout web (the Events tell the story)"
  kubectl -n "$ns" describe rollout web | sed -n '/^Status:/,$p'
  cat <<EOF2

The cluster and its real node keep running. Try it yourself:
  export KUBECONFIG=$kubeconfig PATH=$BIN_DIR:\$PATH
  kubectl -n $ns get rollouts -w
  kubectl -n nonstop-system logs deploy/nonstop-operator
Stop the cluster (and the node) with: make cluster-down
EOF2
  exit 0
fi

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
