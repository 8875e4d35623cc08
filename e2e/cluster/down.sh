#!/usr/bin/env bash
# Deletes a local test cluster made by up.sh: stops its processes and removes its state
# (kwokctl's workdir and the kubeconfig). No error if it does not exist.
#
# usage: e2e/cluster/down.sh [--name NAME]   (default: $NONSTOP_CLUSTER, else "nonstop")
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"

parse_name "$@"
for a in ${REST[@]+"${REST[@]}"}; do
  case $a in
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$a' (usage: e2e/cluster/down.sh [--name NAME])." ;;
  esac
done

if [ ! -d "$STATE_DIR" ] && [ ! -d "$KWOK_CLUSTER_DIR" ]; then
  note "no cluster '$NAME': nothing to delete"
  exit 0
fi
t0=$(date +%s)
bash "$here/node.sh" down --name "$NAME" || note "the real node of cluster '$NAME' could not be cleaned up fully (see above)"
exec 9>"$LOCK_FILE"
flock -w 900 9 || die "another up.sh or down.sh for cluster '$NAME' has held its lock for 15 min: wait for it or stop it."
delete_cluster
rm -rf "$STATE_DIR"
note "cluster '$NAME' deleted in $(( $(date +%s) - t0 ))s"
