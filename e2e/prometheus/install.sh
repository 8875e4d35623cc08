#!/usr/bin/env bash
# Makes a Prometheus server binary available for the metric-analysis e2e tests, from Debian's
# package `prometheus` (bookworm: 2.42), and prints its path (the last line of stdout).
#
#   $NONSTOP_CACHE/prometheus/bin/prometheus   (NONSTOP_CACHE defaults to ~/.cache/nonstop)
#
# Preferred: `apt-get download` the .deb and `dpkg-deb -x` it into the cache (nothing is
# installed system-wide). Fallback: `apt-get install prometheus` (needs root) and a symlink.
# Idempotent: a binary that is there and answers --version is left alone (a warm run takes
# milliseconds). Set NONSTOP_PROMETHEUS_REINSTALL=1 to install again.
set -euo pipefail

NONSTOP_CACHE=${NONSTOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nonstop}
DEST="$NONSTOP_CACHE/prometheus"
BIN="$DEST/bin/prometheus"

die() { echo "nonstop-prometheus: $*" >&2; exit 1; }
log() { echo "[nonstop-prometheus $(date +%H:%M:%S)] $*" >&2; }
works() { [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

if [ "${NONSTOP_PROMETHEUS_REINSTALL:-}" != 1 ] && works "$BIN"; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$DEST"
# One install at a time (two test sessions may start together); re-check under the lock.
exec 9>"$DEST/.lock"
flock 9
if [ "${NONSTOP_PROMETHEUS_REINSTALL:-}" != 1 ] && works "$BIN"; then
  echo "$BIN"
  exit 0
fi

start=$(date +%s%N)
command -v apt-get >/dev/null || die "apt-get is not available: this script needs a Debian (12 bookworm) machine to get Debian's package 'prometheus'."
command -v dpkg-deb >/dev/null || die "dpkg-deb is not available: it is part of dpkg on every Debian machine."

# As root apt would download as user _apt, who cannot enter a private directory (it then
# warns and downloads as root anyway): download as root from the start.
sandbox=()
if [ "$(id -u)" = 0 ]; then sandbox=(-o APT::Sandbox::User=root); fi
candidate() { apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: *//p'; }
version=$(candidate)
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
  [ "$(id -u)" = 0 ] || die "apt knows no package 'prometheus' (package lists missing?) and only root can run 'apt-get update': run 'sudo apt-get update' and this script again."
  log "apt knows no 'prometheus' yet: running apt-get update"
  apt-get update -qq >&2 || die "apt-get update failed (see above): Debian's package mirror must be reachable."
  version=$(candidate)
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    die "Debian's package lists have no 'prometheus' even after apt-get update: check that the 'main' component of Debian is in /etc/apt/sources.list(.d)."
  fi
fi

tmp=$(mktemp -d "$DEST/.install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

installed=""
log "downloading Debian's prometheus $version"
if (cd "$tmp" && apt-get download -q "${sandbox[@]}" "prometheus=$version" >&2); then
  debs=("$tmp"/prometheus_*.deb)
  deb=${debs[0]}
  [ -f "$deb" ] || die "apt-get download said it worked but left no prometheus_*.deb in $tmp."
  dpkg-deb -x "$deb" "$tmp/root" || die "dpkg-deb -x $deb failed (see above)."
  works "$tmp/root/usr/bin/prometheus" || die "the extracted $tmp/root/usr/bin/prometheus does not run: $("$tmp/root/usr/bin/prometheus" --version 2>&1 | tail -n3)"
  rm -rf "${DEST:?}/root" "${DEST:?}/bin"
  mv "$tmp/root" "$DEST/root"
  mkdir -p "$DEST/bin"
  ln -s ../root/usr/bin/prometheus "$DEST/bin/prometheus"
  ln -s ../root/usr/bin/promtool "$DEST/bin/promtool"
  installed="extracted from ${deb##*/}"
else
  log "apt-get download failed: falling back to apt-get install prometheus (system-wide)"
  [ "$(id -u)" = 0 ] || die "apt-get download prometheus failed and installing it system-wide needs root: run 'sudo apt-get install --no-install-recommends prometheus' and this script again."
  # The package's own service must not start (the tests run their own Prometheus): a
  # temporary policy-rc.d, Debian's switch for that, unless the machine already has one.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
    trap 'rm -rf "$tmp"; rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >&2 ||
    die "apt-get install prometheus failed as well (see above)."
  [ -z "$policy" ] || rm -f "$policy"
  works /usr/bin/prometheus || die "/usr/bin/prometheus does not run after apt-get install."
  rm -rf "${DEST:?}/bin" && mkdir -p "$DEST/bin"
  ln -s /usr/bin/prometheus "$DEST/bin/prometheus"
  [ -x /usr/bin/promtool ] && ln -s /usr/bin/promtool "$DEST/bin/promtool"
  installed="installed system-wide by apt-get"
fi

works "$BIN" || die "$BIN does not run: $("$BIN" --version 2>&1 | tail -n3)"
echo "$version" > "$DEST/.version"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
elapsed=$((ms / 1000)).$(printf %03d $((ms % 1000)))
log "$("$BIN" --version 2>&1 | head -n1) ready ($installed) in ${elapsed}s"
echo "$BIN"
