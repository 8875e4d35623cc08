# Shared settings of the local test cluster scripts (sourced, not run).
# shellcheck shell=bash
# shellcheck source=versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"

die() { echo "nonstop-cluster: $*" >&2; exit 1; }
note() { echo "[nonstop-cluster $(date +%H:%M:%S)] $*" >&2; }

# Addresses of the test cluster. All of them stay on this machine: KWOK's pod and node IPs
# are never dialled (KWOK simulates those pods); the real node's ones are on bridges that
# node.sh makes, and ClusterIPs are routed into the node bridge.
SERVICE_CIDR=10.96.0.0/16   # kube-apiserver's default (10.0.0.0/24) would clash with KWOK's pod IPs
REAL_POD_CIDR=10.245.0.0/24 # pods of the real node (KWOK's are 10.244.i.0/24)
NODE_IP=10.200.0.10         # the real node's IP, on the empty bridge NODE_BRIDGE
NODE_BRIDGE=nsnode0
CNI_BRIDGE=nscni0
PAUSE_IMAGE=registry.k8s.io/pause:3.10.2   # containerd 2.3's pinned sandbox image, built here

# Keep kwokctl's state under our cache: never ~/.kwok (whose kwok.yaml kwokctl would load).
export KWOK_WORKDIR="$NONSTOP_CACHE/kwok"
CLUSTERS_DIR="$NONSTOP_CACHE/clusters"

# parse_name "$@": sets NAME from --name NAME / --name=NAME / a bare NAME, default
# $NONSTOP_CLUSTER or "nonstop"; the remaining arguments are left in REST.
parse_name() {
  NAME=${NONSTOP_CLUSTER:-nonstop}
  REST=()
  while [ $# -gt 0 ]; do
    case $1 in
      --name) [ $# -ge 2 ] || die "--name needs a value"; NAME=$2; shift 2 ;;
      --name=*) NAME=${1#--name=}; shift ;;
      *) REST+=("$1"); shift ;;
    esac
  done
  [[ $NAME =~ ^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$ ]] ||
    die "invalid cluster name '$NAME': use lower-case letters, digits and '-' (at most 40 characters)."
  STATE_DIR="$CLUSTERS_DIR/$NAME"        # ours: kubeconfig, generated config, kwokctl output
  KWOK_CLUSTER_DIR="$KWOK_WORKDIR/clusters/$NAME"   # kwokctl's: pki, etcd data, logs, pids
  KUBECONFIG_PATH="$STATE_DIR/kubeconfig"
  # shellcheck disable=SC2034  # used by up.sh and down.sh
  LOCK_FILE="$STATE_DIR/up.lock"   # held (fd 9) by up.sh and down.sh
}

# kwokctl must never download anything: every binary is given as a local path, and any
# http(s) fetch it might still attempt goes to a closed local port and fails at once.
# (Go never proxies loopback addresses, so the cluster's own traffic is unaffected; the API
# server reaches the real node's kubelet, for logs and exec, directly.)
KWOKCTL=(env HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9
  https_proxy=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9
  "NO_PROXY=127.0.0.1,localhost,$NODE_IP" "no_proxy=127.0.0.1,localhost,$NODE_IP" "$BIN_DIR/kwokctl")
# (7>&- 8>&- 9>&-: the daemons kwokctl starts must not inherit our lock files.)
kwokctl() { "${KWOKCTL[@]}" "$@" 7>&- 8>&- 9>&-; }
kctl() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# pid_of COMPONENT: the pid of a running process kwokctl started for $NAME, else nothing.
pid_of() {
  local pid
  [ -f "$KWOK_CLUSTER_DIR/pids/$1.pid" ] || return 0
  pid=$(tr -dc '0-9' < "$KWOK_CLUSTER_DIR/pids/$1.pid")
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
     tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$KWOK_CLUSTER_DIR"; then
    echo "$pid"
  fi
}

# True when all of the cluster's processes run.
cluster_running() {
  local c
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok-controller; do
    [ -n "$(pid_of "$c")" ] || return 1
  done
}

# Stops and removes cluster $NAME (kwokctl's state and ours, except the lock); no error if
# absent. Output of kwokctl goes to $STATE_DIR/kwokctl.log.
delete_cluster() {
  local pidfile pid c
  mkdir -p "$STATE_DIR"
  if [ -f "$KWOK_CLUSTER_DIR/kwok.yaml" ]; then
    kwokctl --name "$NAME" delete cluster >>"$STATE_DIR/kwokctl.log" 2>&1 ||
      note "kwokctl could not delete cluster '$NAME' cleanly (see $STATE_DIR/kwokctl.log): stopping its processes from their pid files"
  fi
  # Whatever is left (kwokctl failed, or its config is broken): only processes that kwokctl
  # started for this cluster, whose command line names its directory.
  for pidfile in "$KWOK_CLUSTER_DIR"/pids/*.pid; do
    [ -f "$pidfile" ] || continue
    c=$(basename "$pidfile" .pid)
    pid=$(pid_of "$c")
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  done
  rm -rf "$KWOK_CLUSTER_DIR"
  rm -f "$KUBECONFIG_PATH" "$STATE_DIR/fingerprint" "$STATE_DIR/kwok-config.yaml"
}
