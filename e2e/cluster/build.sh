#!/usr/bin/env bash
# Builds (once) and caches the binaries of the local test control plane from the Go module
# proxy: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok,
# kwokctl, helm; and fetches the Gateway API CRDs and KWOK stage files.
# Cache: $NONSTOP_CACHE (default ~/.cache/nonstop); binaries are keyed by version, so a
# warm run does nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.sh
source "$here/versions.sh"

die() { echo "nonstop-cluster: $*" >&2; exit 1; }
command -v go >/dev/null || die "Go is not installed: install Go >= 1.26 (Debian's golang-go is too old; see docs/test-cluster.md) and run again."
command -v python3 >/dev/null || die "python3 is needed to read go module metadata."
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
[ "$go_minor" -ge 26 ] || die "Go $(go env GOVERSION) is too old: Kubernetes $K8S_VERSION needs Go >= 1.26 (see docs/test-cluster.md), put it first in PATH and run again."

mkdir -p "$BIN_DIR" "$NONSTOP_CACHE/logs"
log() { echo "[build $(date +%H:%M:%S)] $*" >&2; }
stamp_ok() { [ -f "$BIN_DIR/.$1" ] && [ "$(cat "$BIN_DIR/.$1")" = "$2" ]; }
stamp() { echo "$2" > "$BIN_DIR/.$1"; }
modir() { go mod download -json "$1" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])'; }

build_k8s() {
  # kubelet and kube-proxy serve the real worker node (up.sh --real-node); built in the same
  # go build so they share its compile cache.
  local cmds="kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy"
  stamp_ok k8s "$K8S_VERSION $cmds" && return 0
  log "building Kubernetes $K8S_VERSION (cold: ~15-30 min on 2 cores)"
  local staging="v0.${K8S_VERSION#v1.}" minor; minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  local dir="$NONSTOP_CACHE/src/k8s-$K8S_VERSION"
  mkdir -p "$dir" && cd "$dir"
  [ -f go.mod ] || go mod init local.test/k8sbin >/dev/null 2>&1
  local kgomod; kgomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  local m
  while read -r m; do
    go mod edit -replace="$m=$m@$staging"
  done < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$kgomod")
  # shellcheck disable=SC2046
  go get -tool $(for c in $cmds; do echo "k8s.io/kubernetes/cmd/$c@$K8S_VERSION"; done) || die "go get of Kubernetes $K8S_VERSION failed: check that the Go module proxy is reachable (GOPROXY=$(go env GOPROXY))."
  local ldf="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  # shellcheck disable=SC2046
  go build -ldflags "$ldf" -o "$BIN_DIR/" $(for c in $cmds; do echo "k8s.io/kubernetes/cmd/$c"; done) || die "building Kubernetes failed (see above)."
  stamp k8s "$K8S_VERSION $cmds"
}

build_etcd() {
  stamp_ok etcd "$ETCD_VERSION" && return 0
  log "building etcd $ETCD_VERSION"
  local dir="$NONSTOP_CACHE/src/etcd-$ETCD_VERSION"
  mkdir -p "$dir" && cd "$dir"
  [ -f go.mod ] || go mod init local.test/etcdbin >/dev/null 2>&1
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" || die "go get of etcd $ETCD_VERSION failed."
  go build -ldflags "-s -w" -o "$BIN_DIR/etcd" go.etcd.io/etcd/server/v3 || die "building etcd failed."
  stamp etcd "$ETCD_VERSION"
}

build_go_install() { # name version pkg...
  local name=$1 version=$2; shift 2
  stamp_ok "$name" "$version" && return 0
  log "building $name $version"
  GOBIN="$BIN_DIR" go install -ldflags "-s -w" "$@" || die "go install of $name $version failed."
  stamp "$name" "$version"
}

# containerd, ctr and the runc shim for the real worker node; no cgo, no snapshotters we do
# not use (btrfs/devmapper/zfs need C headers).
build_containerd() {
  stamp_ok containerd "$CONTAINERD_VERSION" && return 0
  log "building containerd $CONTAINERD_VERSION"
  local m=github.com/containerd/containerd/v2
  GOBIN="$BIN_DIR" go install -ldflags "-s -w" -tags 'no_btrfs no_devmapper no_zfs urfave_cli_no_docs' \
    "$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/ctr@$CONTAINERD_VERSION" ||
    die "go install of containerd $CONTAINERD_VERSION failed."
  GOBIN="$BIN_DIR" go install -ldflags "-s -w" -tags no_grpc "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" ||
    die "go install of containerd-shim-runc-v2 $CONTAINERD_VERSION failed."
  stamp containerd "$CONTAINERD_VERSION"
}

fetch_assets() {
  stamp_ok assets "$GATEWAY_API_VERSION-$KWOK_VERSION" && return 0
  local gw kw
  gw=$(modir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
  kw=$(modir "sigs.k8s.io/kwok@$KWOK_VERSION")
  rm -rf "$ASSETS_DIR" && mkdir -p "$ASSETS_DIR/gateway-api" "$ASSETS_DIR/kwok-stages"
  cp "$gw"/config/crd/standard/*.yaml "$ASSETS_DIR/gateway-api/"
  cp -r "$kw"/kustomize/stage/. "$ASSETS_DIR/kwok-stages/"
  chmod -R u+w "$ASSETS_DIR"
  stamp assets "$GATEWAY_API_VERSION-$KWOK_VERSION"
}

start=$(date +%s)
build_etcd
build_go_install kwok "$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
build_go_install helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fetch_assets
build_k8s
build_containerd
log "binaries ready in $BIN_DIR ($(( $(date +%s) - start ))s)"
