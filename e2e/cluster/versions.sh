# shellcheck shell=bash disable=SC2034  # sourced by the scripts beside it
# Pinned versions of the local test control plane (see docs/test-cluster.md).
K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.10
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.21.4
GATEWAY_API_VERSION=v1.6.1
# The real worker node (up.sh --real-node): containerd from the Go module proxy, with Debian's
# runc and CNI plugins; kubelet and kube-proxy come from the Kubernetes build above.
CONTAINERD_VERSION=v2.3.7
TRAEFIK_VERSION=v3.7.13
NONSTOP_CACHE=${NONSTOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nonstop}
BIN_DIR="$NONSTOP_CACHE/bin"
ASSETS_DIR="$NONSTOP_CACHE/assets"
