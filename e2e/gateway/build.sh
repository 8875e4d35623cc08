#!/usr/bin/env bash
# Builds (once) and caches Traefik, a real Gateway API implementation for the end-to-end
# tests, from the Go module proxy: $BIN_DIR/traefik (e2e/gateway/traefik.py runs it).
# The module as served by the proxy does not build as is: patches/apply.py makes four small
# changes (see patches/): recreate the nested module pkg/config/dynamic/ext missing from the
# zip; drop ACME's DNS-01 providers (the proxy refuses ~15 of their modules); use upstream
# github.com/abbot/go-http-auth v0.4.0 instead of the containous fork (refused too), with
# the fork's CheckSecret added. Gateway API routing is untouched.
# Cache: $NONSTOP_CACHE (default ~/.cache/nonstop); the stamp $BIN_DIR/.traefik holds the
# version and a hash of the patches, so a warm run does nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../cluster/versions.sh
source "$here/../cluster/versions.sh"

die() { echo "nonstop-cluster: $*" >&2; exit 1; }
log() { echo "[traefik-build $(date +%H:%M:%S)] $*" >&2; }

key="$TRAEFIK_VERSION $(cat "$here"/patches/apply.py "$here"/patches/*.go "$here"/patches/dynamic-ext/* | sha256sum | cut -c1-16)"
stamp_ok() { [ -x "$BIN_DIR/traefik" ] && [ -f "$BIN_DIR/.traefik" ] && [ "$(cat "$BIN_DIR/.traefik")" = "$key" ]; }
stamp_ok && exit 0

command -v go >/dev/null || die "Go is not installed: install Go >= 1.26 (Debian's golang-go is too old; see docs/test-cluster.md) and run again."
command -v python3 >/dev/null || die "python3 is needed to read go module metadata and patch the source."
export GOTOOLCHAIN=local CGO_ENABLED=0
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
[ "$go_minor" -ge 26 ] || die "Go $(go env GOVERSION) is too old: Traefik $TRAEFIK_VERSION needs Go >= 1.26 (see docs/test-cluster.md), put it first in PATH and run again."

mkdir -p "$BIN_DIR" "$NONSTOP_CACHE/src"
# One build at a time (parallel test runs); the loser finds the stamp written.
exec 8>"$NONSTOP_CACHE/.traefik-build.lock"
flock 8
stamp_ok && exit 0

start=$(date +%s)
log "building Traefik $TRAEFIK_VERSION (cold: 6-20 min on 2 cores, more while other builds run)"
mod=$(go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION") ||
  die "go mod download of Traefik $TRAEFIK_VERSION failed: check that the Go module proxy is reachable (GOPROXY=$(go env GOPROXY))."
moddir=$(python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])' <<<"$mod")
src="$NONSTOP_CACHE/src/traefik-$TRAEFIK_VERSION"
rm -rf "$src"
cp -r "$moddir" "$src"
chmod -R u+w "$src"
python3 "$here/patches/apply.py" "$src"
cd "$src"
go mod edit -dropreplace=github.com/abbot/go-http-auth -require=github.com/abbot/go-http-auth@v0.4.0
# -mod=mod: go.sum gets the hashes of abbot v0.4.0.
nice -n 10 go build -mod=mod -trimpath -ldflags "-s -w" -o "$BIN_DIR/traefik.tmp" ./cmd/traefik ||
  die "building Traefik $TRAEFIK_VERSION failed (see the messages above): fix the cause (e.g. the Go module proxy unreachable, or a patch in e2e/gateway/patches/ out of date) and run e2e/gateway/build.sh again."
mv "$BIN_DIR/traefik.tmp" "$BIN_DIR/traefik"
echo "$key" > "$BIN_DIR/.traefik"
log "Traefik ready: $BIN_DIR/traefik ($(( $(date +%s) - start ))s)"
