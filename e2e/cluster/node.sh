#!/usr/bin/env bash
# A real worker node beside the KWOK nodes of a local test cluster: containerd (built from
# the Go module proxy) with Debian's runc and CNI plugins, and a real kubelet and kube-proxy
# built from the same Kubernetes sources as the control plane. Pods on it are real processes
# in network namespaces of their own; Services route to them through kube-proxy's iptables
# rules; a gateway on 127.0.0.1 reaches them on the node's pod bridge.
#
# usage: e2e/cluster/node.sh up|down|check [--name NAME]
#   up     start (or reuse) the real node "real-node" of cluster NAME (started first with
#          up.sh), build and import the test images, wait until the node is Ready
#   down   stop it and remove every trace on the host (processes, mounts, cgroups, links,
#          routes, iptables chains); no error when there is none
#   check  exit 0 when this machine can host a real node; else say why (one line), exit 1
#
# One real node per machine: kubelet and containerd write a few fixed host paths and
# iptables chains (docs/test-cluster.md). The node is tainted nonstop.test/real-node=true
# (NoSchedule): only pods that tolerate it land there.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=common.sh
source "$here/common.sh"

cmd=${1:-}
[ $# -gt 0 ] && shift
parse_name "$@"
[ ${#REST[@]} -eq 0 ] || die "unknown argument '${REST[0]}' (usage: e2e/cluster/node.sh up|down|check [--name NAME])."

NODE_NAME=real-node
NODE_DIR="$NONSTOP_CACHE/node"          # the one real node of this machine
RUN="$NODE_DIR/run"                      # pid files, the owner record
CTR_DIR="$NODE_DIR/containerd"           # root (images: kept across clusters), state, socket
KUBELET_DIR="$NODE_DIR/kubelet"
PROXY_DIR="$NODE_DIR/kube-proxy"
CNI_DIR="$NODE_DIR/cni"
LOG_DIR="$NODE_DIR/logs"
SOCK="$CTR_DIR/containerd.sock"
CTR=("$BIN_DIR/ctr" --address "$SOCK" --namespace k8s.io)
LOCK="$NONSTOP_CACHE/.node.lock"

# check: can this machine host a node? Prints the reason it cannot.
cannot_host() {
  [ "$(id -u)" -eq 0 ] || { echo "not root (a kubelet needs root: cgroups, mounts, network namespaces, iptables)"; return 0; }
  [ "$(uname -s)" = Linux ] || { echo "not Linux"; return 0; }
  [ -d /sys/fs/cgroup ] && [ -w /sys/fs/cgroup ] || [ -w /sys/fs/cgroup/memory ] ||
    { echo "/sys/fs/cgroup is not writable (no cgroups to put pods in)"; return 0; }
  ip netns add nonstop-probe 2>/dev/null && ip netns del nonstop-probe ||
    { echo "cannot create network namespaces (ip netns add failed: no CAP_SYS_ADMIN/CAP_NET_ADMIN?)"; return 0; }
  return 1
}

need_packages() {
  local missing=()
  [ -x /usr/sbin/runc ] || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v findmnt >/dev/null || missing+=(util-linux)
  [ ${#missing[@]} -eq 0 ] && return 0
  note "installing Debian packages for the real node: ${missing[*]}"
  command -v apt-get >/dev/null || die "the real node needs ${missing[*]} (Debian package names): install them and run again."
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >"$LOG_DIR/apt.log" 2>&1 ||
    die "apt-get install ${missing[*]} failed: see $LOG_DIR/apt.log."
}

pid_alive() { # name -> prints the pid when the process recorded in $RUN/name.pid runs
  local pid
  [ -f "$RUN/$1.pid" ] || return 0
  pid=$(cat "$RUN/$1.pid")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -qF -- "$NODE_DIR" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
  return 0
}

start_daemon() { # name logfile command... (detached; the pid file is the daemon's own pid)
  local name=$1 logf=$2; shift 2
  (cd / && exec setsid "$@" >>"$logf" 2>&1 </dev/null 6>&- 7>&- 8>&- 9>&-) &
  echo $! > "$RUN/$name.pid"
}

stop_daemon() { # name [seconds]
  local pid i
  pid=$(pid_alive "$1")
  [ -n "$pid" ] || { rm -f "$RUN/$1.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < ${2:-10} * 10; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$RUN/$1.pid"
}

wait_for() { # seconds description command...
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.3
  done
}

# --- host network: the node's IP on an empty bridge (no dummy interfaces without kernel
# modules); ClusterIPs routed into it, so that a Service packet never leaves the machine
# even before kube-proxy has written its rules.
net_up() {
  sysctl -qw net.ipv4.ip_forward=1
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || ip link add "$NODE_BRIDGE" type bridge
  ip addr replace "$NODE_IP/32" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  ip route replace "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"
  # kubelet mounts volumes that containers must see: the host's mounts propagate.
  mount --make-rshared /
}

write_configs() {
  local server=$1 ca=$2
  mkdir -p "$CNI_DIR/conf" "$CNI_DIR/ipam" "$KUBELET_DIR/pki" "$PROXY_DIR" "$KUBELET_DIR/pod-logs"
  cat > "$CTR_DIR/config.toml" <<EOF
# Generated by e2e/cluster/node.sh. containerd 2.x (config version 3).
version = 3
root = "$CTR_DIR/root"
state = "$CTR_DIR/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "$PAUSE_IMAGE"
  [plugins.'io.containerd.cri.v1.runtime']
    # No CAP_SYS_RESOURCE in this kind of sandbox: nothing may lower oom_score_adj, so
    # clamp what CRI asks for (-998 for sandboxes) to containerd's own value.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          SystemdCgroup = false
          BinaryName = "/usr/sbin/runc"
          Root = "$CTR_DIR/runc"
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["/usr/lib/cni"]
      conf_dir = "$CNI_DIR/conf"
EOF
  cat > "$CNI_DIR/conf/10-nonstop.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "nonstop", "plugins": [
  {"type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$REAL_POD_CIDR"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$CNI_DIR/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  # Client certificates signed by the cluster's CA: the kubelet as system:node:<name> (the
  # Node authorizer), kube-proxy as system:kube-proxy (the default system:node-proxier role).
  cp "$ca" "$KUBELET_DIR/pki/ca.crt"
  issue_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  issue_cert kube-proxy "/CN=system:kube-proxy"
  write_kubeconfig kubelet "$server" > "$KUBELET_DIR/kubeconfig"
  write_kubeconfig kube-proxy "$server" > "$PROXY_DIR/kubeconfig"
  cat > "$KUBELET_DIR/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
resolvConf: ""
containerRuntimeEndpoint: unix://$SOCK
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: $KUBELET_DIR/pki/ca.crt}}
authorization: {mode: Webhook}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "0%", nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%", imagefs.inodesFree: "0%"}
registerWithTaints: [{key: nonstop.test/real-node, value: "true", effect: NoSchedule}]
maxPods: 40
serializeImagePulls: false
podLogsDir: $KUBELET_DIR/pod-logs
shutdownGracePeriod: 0s
EOF
  cat > "$PROXY_DIR/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $PROXY_DIR/kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $REAL_POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
# Leave the host's conntrack sysctls alone (a sandbox may refuse them) and do not open
# NodePorts on 127.0.0.1 (that needs route_localnet).
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
EOF
}

issue_cert() { # name subject
  local d="$NODE_DIR/pki"
  mkdir -p "$d"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$d/$1.key" -subj "$2" -out "$d/$1.csr" 2>/dev/null
  printf 'extendedKeyUsage = clientAuth\n' > "$d/$1.ext"
  openssl x509 -req -in "$d/$1.csr" -CA "$KWOK_CLUSTER_DIR/pki/ca.crt" -CAkey "$KWOK_CLUSTER_DIR/pki/ca.key" \
    -CAcreateserial -days 30 -extfile "$d/$1.ext" -out "$d/$1.crt" 2>/dev/null ||
    die "could not sign the $1 certificate with the cluster's CA ($KWOK_CLUSTER_DIR/pki/ca.key)."
}

write_kubeconfig() { # name server
  cat <<EOF
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$2", certificate-authority: "$KUBELET_DIR/pki/ca.crt"}}]
users: [{name: $1, user: {client-certificate: "$NODE_DIR/pki/$1.crt", client-key: "$NODE_DIR/pki/$1.key"}}]
contexts: [{name: $1, context: {cluster: local, user: $1}}]
current-context: $1
EOF
}

# Test images (pause, the test app, the operator) built by e2e/images/build.sh; an archive
# is imported again only when it changed.
import_images() {
  local lines ref archive stampf
  lines=$(bash "$repo/e2e/images/build.sh") || die "building the test images failed (see above)."
  mkdir -p "$NODE_DIR/imported"
  while read -r ref archive; do
    [ -n "$ref" ] || continue
    stampf="$NODE_DIR/imported/$(echo "$ref" | tr '/:' '__')"
    if [ "$(cat "$stampf" 2>/dev/null)" != "$archive" ] || ! "${CTR[@]}" images ls -q | grep -qxF "$ref"; then
      note "importing $ref"
      "${CTR[@]}" images import "$archive" >>"$LOG_DIR/import.log" 2>&1 ||
        die "ctr could not import $archive: see $LOG_DIR/import.log."
      echo "$archive" > "$stampf"
    fi
  done <<<"$lines"
}

node_ready() {
  [ "$(kctl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

up() {
  local why
  why=$(cannot_host) && die "this machine cannot host a real node: $why."
  [ -s "$KUBECONFIG_PATH" ] && cluster_running ||
    die "cluster '$NAME' is not running: start it with e2e/cluster/up.sh --name $NAME first."
  mkdir -p "$RUN" "$CTR_DIR" "$LOG_DIR"
  need_packages
  for b in containerd containerd-shim-runc-v2 ctr kubelet kube-proxy; do
    [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b is missing: run e2e/cluster/build.sh."
  done
  local ca_sum owner
  ca_sum="$NAME $(sha256sum < "$KWOK_CLUSTER_DIR/pki/ca.crt" | cut -c1-16)"
  owner=$(cat "$RUN/owner" 2>/dev/null || true)
  if [ -n "$owner" ] && [ "$owner" != "$ca_sum" ]; then
    note "the real node belonged to another cluster ($owner): moving it to '$NAME'"
    down_node
    mkdir -p "$RUN" "$CTR_DIR" "$LOG_DIR"
  fi
  if [ -n "$(pid_alive kubelet)" ] && [ -n "$(pid_alive containerd)" ] && [ -n "$(pid_alive kube-proxy)" ] && node_ready; then
    import_images
    note "reusing the real node '$NODE_NAME' of cluster '$NAME'"
    return 0
  fi
  local t0 server
  t0=$(date +%s)
  server=$(kctl config view --minify -o 'jsonpath={.clusters[0].cluster.server}')
  net_up
  write_configs "$server" "$KWOK_CLUSTER_DIR/pki/ca.crt"
  echo "$ca_sum" > "$RUN/owner"
  if [ -z "$(pid_alive containerd)" ]; then
    # the shim that containerd starts is found in PATH: ours (2.x) before any other
    start_daemon containerd "$LOG_DIR/containerd.log" env "PATH=$BIN_DIR:$PATH" \
      "$BIN_DIR/containerd" --config "$CTR_DIR/config.toml"
    wait_for 30 containerd "${CTR[@]}" version ||
      die "containerd did not answer on $SOCK within 30s: see $LOG_DIR/containerd.log."
  fi
  import_images
  if [ -z "$(pid_alive kubelet)" ]; then
    rm -f "$KUBELET_DIR"/pki/kubelet.{crt,key}   # its self-signed serving cert, for this node IP
    start_daemon kubelet "$LOG_DIR/kubelet.log" env "PATH=$BIN_DIR:$PATH" "$BIN_DIR/kubelet" \
      --config="$KUBELET_DIR/config.yaml" --kubeconfig="$KUBELET_DIR/kubeconfig" \
      --root-dir="$KUBELET_DIR/root" --cert-dir="$KUBELET_DIR/pki" \
      --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
      --node-labels=nonstop.test/real-node=true
  fi
  wait_for 90 "node Ready" node_ready ||
    die "the real node '$NODE_NAME' did not become Ready within 90s: see $LOG_DIR/kubelet.log and $LOG_DIR/containerd.log."
  if [ -z "$(pid_alive kube-proxy)" ]; then
    start_daemon kube-proxy "$LOG_DIR/kube-proxy.log" env "PATH=$BIN_DIR:$PATH" "$BIN_DIR/kube-proxy" \
      --config="$PROXY_DIR/config.yaml"
  fi
  wait_for 30 "kube-proxy healthy" curl -fsS http://127.0.0.1:10256/healthz ||
    die "kube-proxy did not become healthy within 30s: see $LOG_DIR/kube-proxy.log."
  note "real node '$NODE_NAME' Ready in $(( $(date +%s) - t0 ))s (pods on $REAL_POD_CIDR, node IP $NODE_IP; logs in $LOG_DIR)"
}

# Everything the node left on the host, in the order that leaves nothing behind.
down_node() {
  local m c h ids
  if [ -s "$KUBECONFIG_PATH" ] && [ -n "$(pid_alive kubelet)" ] && cluster_running; then
    # pods go through the API first, so the kubelet stops their containers itself
    kctl delete pods -A --field-selector "spec.nodeName=$NODE_NAME" --wait=false >/dev/null 2>&1 || true
    wait_for 20 "pods gone" test -z "$(kctl get pods -A --field-selector "spec.nodeName=$NODE_NAME" -o name 2>/dev/null)" || true
  fi
  stop_daemon kube-proxy
  stop_daemon kubelet
  if [ -n "$(pid_alive containerd)" ]; then
    ids=$("${CTR[@]}" tasks ls -q 2>/dev/null || true)
    for c in $ids; do "${CTR[@]}" tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
    sleep 0.5
    ids=$("${CTR[@]}" containers ls -q 2>/dev/null || true)
    for c in $ids; do
      "${CTR[@]}" tasks delete -f "$c" >/dev/null 2>&1 || true
      "${CTR[@]}" containers rm "$c" >/dev/null 2>&1 || true
    done
  fi
  stop_daemon containerd 15
  # shims that outlived containerd (they hold the containers' processes)
  pkill -9 -f "containerd-shim-runc-v2 .*-address $SOCK" 2>/dev/null || true
  # mounts under the node's directories (pod volumes, netns, rootfs), deepest first
  for m in $(findmnt -rn -o TARGET | grep -F "$NODE_DIR" | sort -r); do umount -l "$m" 2>/dev/null || true; done
  for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/unified/kubepods; do
    [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  ip link del "$CNI_BRIDGE" 2>/dev/null || true
  ip route del "$SERVICE_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  clean_iptables
  rm -rf "$KUBELET_DIR" "$PROXY_DIR" "$CNI_DIR" "$NODE_DIR/pki" "$CTR_DIR/state" "$CTR_DIR/runc" \
    "$NODE_DIR/imported" "$RUN"
  # host paths the kubelet and CNI write whatever they are told (docs/test-cluster.md)
  rm -rf /var/lib/kubelet/device-plugins /var/lib/cni/results /run/containerd/s /run/containerd/runc
  find /var/log/containers -maxdepth 1 -type l -delete 2>/dev/null || true
}

# The KUBE-* chains of kube-proxy and the kubelet, and CNI-* chains of the bridge plugin.
clean_iptables() {
  local ipt t chains c
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in nat filter mangle; do
      chains=$("$ipt" -t "$t" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/ {print $2}') || continue
      [ -n "$chains" ] || continue
      # rules in built-in chains that jump to ours, then ours
      { "$ipt" -t "$t" -S 2>/dev/null || true; } |
        { grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j (KUBE-|CNI-)' || true; } |
        sed 's/^-A/-D/' | while read -r rule; do eval "$ipt -t $t $rule" 2>/dev/null || true; done
      for c in $chains; do "$ipt" -t "$t" -F "$c" 2>/dev/null || true; done
      for c in $chains; do "$ipt" -t "$t" -X "$c" 2>/dev/null || true; done
    done
  done
}

case $cmd in
  up)
    exec 6>"$LOCK"; flock -w 600 6 || die "another node.sh has held $LOCK for 10 min."
    up ;;
  down)
    exec 6>"$LOCK"; flock -w 600 6 || die "another node.sh has held $LOCK for 10 min."
    owner=$(cat "$RUN/owner" 2>/dev/null || true)
    if [ -z "$owner" ]; then note "no real node: nothing to stop"; exit 0; fi
    if [ "${owner%% *}" != "$NAME" ]; then note "the real node belongs to cluster '${owner%% *}', not '$NAME': left running"; exit 0; fi
    t0=$(date +%s); down_node; note "real node stopped and cleaned up in $(( $(date +%s) - t0 ))s" ;;
  check)
    if why=$(cannot_host); then echo "$why"; exit 1; fi ;;
  -h|--help|"") sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; [ -n "$cmd" ] ;;
  *) die "unknown command '$cmd' (usage: e2e/cluster/node.sh up|down|check [--name NAME])." ;;
esac
