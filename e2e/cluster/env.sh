#!/usr/bin/env bash
# Prints shell lines that point kubectl (and anything reading KUBECONFIG) at a local test
# cluster and put its binaries (kubectl v1.36.3, helm, kwokctl, ...) first in PATH:
#
#   eval "$(e2e/cluster/env.sh [NAME])"     (default NAME: $NONSTOP_CLUSTER, else "nonstop")
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"

parse_name "$@"
if [ ${#REST[@]} -eq 1 ] && [[ ${REST[0]} != -* ]]; then
  parse_name --name "${REST[0]}"
elif [ ${#REST[@]} -ne 0 ]; then
  die "usage: eval \"\$(e2e/cluster/env.sh [NAME])\""
fi
[ -s "$KUBECONFIG_PATH" ] || die "cluster '$NAME' has no kubeconfig ($KUBECONFIG_PATH): start it with e2e/cluster/up.sh --name $NAME."
printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_PATH"
printf 'export KWOK_WORKDIR=%q\n' "$KWOK_WORKDIR"
# shellcheck disable=SC2016  # $PATH is for the eval-ing shell to expand
printf 'export PATH=%q:"$PATH"\n' "$BIN_DIR"
