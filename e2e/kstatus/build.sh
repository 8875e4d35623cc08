#!/usr/bin/env bash
# Builds (once) and caches $BIN_DIR/kstatus: a small program that prints what the kstatus
# library (sigs.k8s.io/cli-utils, the version pinned in go.mod here) computes for one
# object read on stdin, as Flux's health checks do. e2e/test_kstatus.py runs it on Rollouts.
# The modules come from the Go module proxy, checked against go.sum.
# Cache: $NONSTOP_CACHE (default ~/.cache/nonstop); the stamp $BIN_DIR/.kstatus holds a hash
# of go.mod, go.sum and main.go, so a warm run does nothing and a changed source rebuilds.
# Prints the binary's path.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../cluster/versions.sh
source "$here/../cluster/versions.sh"

die() { echo "nonstop-kstatus: $*" >&2; exit 1; }
log() { echo "[kstatus-build $(date +%H:%M:%S)] $*" >&2; }

bin="$BIN_DIR/kstatus"
key=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-16)
stamp_ok() { [ -x "$bin" ] && [ -f "$BIN_DIR/.kstatus" ] && [ "$(cat "$BIN_DIR/.kstatus")" = "$key" ]; }
if stamp_ok; then echo "$bin"; exit 0; fi

command -v go >/dev/null || die "Go is not installed: install Go >= 1.26 (Debian's golang-go is too old; see docs/test-cluster.md) and run again."
export GOTOOLCHAIN=local CGO_ENABLED=0
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
[ "$go_minor" -ge 26 ] || die "Go $(go env GOVERSION) is too old: e2e/kstatus/go.mod needs Go >= 1.26 (see docs/test-cluster.md), put it first in PATH and run again."

mkdir -p "$BIN_DIR"
# One build at a time (parallel test runs); the loser finds the stamp written.
exec 8>"$NONSTOP_CACHE/.kstatus-build.lock"
flock 8
if stamp_ok; then echo "$bin"; exit 0; fi

start=$(date +%s)
log "building kstatus from $here (cold: ~1 min on 2 cores)"
cd "$here"
# -mod=readonly: go.mod and go.sum as committed, never rewritten by a build.
go build -mod=readonly -trimpath -ldflags "-s -w" -o "$bin.tmp" . ||
  die "building e2e/kstatus failed (see above): check that the Go module proxy is reachable (GOPROXY=$(go env GOPROXY))."
mv "$bin.tmp" "$bin"
echo "$key" > "$BIN_DIR/.kstatus"
log "kstatus ready: $bin ($(( $(date +%s) - start ))s)"
echo "$bin"
