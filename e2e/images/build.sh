#!/usr/bin/env bash
# Builds the container images of the end-to-end tests without any registry, as OCI archives
# that `ctr -n k8s.io images import <tar>` registers under their full names:
#   operator  ghcr.io/nonstop-dev/nonstop:<appVersion of helm/nonstop/Chart.yaml>, from the
#             Dockerfile at the top of the repo; its base is a minimal Debian bookworm
#             (python3, python3-venv, ca-certificates) made here by mmdebstrap
#   app       localhost/nonstop-test-app:<hash of its source>, e2e/images/app (Go, FROM scratch)
#   pause     registry.k8s.io/pause:3.10.2 (containerd's sandbox image), from Kubernetes' own
#             build/pause/linux/pause.c
# Usage: e2e/images/build.sh [operator|app|pause]...     (no argument: all three)
# Prints on stdout one line per image: "<reference> <archive>"; progress goes to stderr.
# Cache: $NONSTOP_CACHE/images/<name>-<hash>.tar, keyed by a hash of everything the image is
# made of (sources, tool versions, and the functions below that build it), so a warm run
# builds nothing; buildah's own storage is $NONSTOP_CACHE/buildah (never
# /var/lib/containers). Installs its Debian prerequisites when run as root.
# Settings: NONSTOP_CACHE; NONSTOP_BUILDAH_DRIVER (overlay or vfs; default: overlay if a real
# overlay mount works, remembered in $NONSTOP_CACHE/buildah/driver); NONSTOP_DEBIAN_MIRROR and
# NONSTOP_DEBIAN_SECURITY_MIRROR (for mmdebstrap); PIP_INDEX_URL, and PIP_CERT /
# REQUESTS_CA_BUNDLE / SSL_CERT_FILE (a CA bundle that pip in the build then trusts).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../cluster/versions.sh
source "$repo/e2e/cluster/versions.sh"
PAUSE_VERSION=${PAUSE_VERSION:-3.10.2}   # the sandbox image containerd 2.3 pins
OPERATOR_REPO=ghcr.io/nonstop-dev/nonstop
APP_REPO=localhost/nonstop-test-app
DEPS_REF=localhost/nonstop-build-cache:deps   # in buildah's storage only
DEBIAN_MIRROR=${NONSTOP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${NONSTOP_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
IMAGES_DIR="$NONSTOP_CACHE/images"
BUILDAH_DIR="$NONSTOP_CACHE/buildah"

die() { echo "nonstop-images: $*" >&2; exit 1; }
log() { echo "[images $(date +%H:%M:%S)] $*" >&2; }
hash_of() { sha256sum | cut -c1-12; }   # stdin -> short hash
tree_hash() { # dir...: paths and contents of the files, without caches
  find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' -print0 |
    LC_ALL=C sort -z | xargs -0 sha256sum
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(operator app pause)
for t in "${targets[@]}"; do
  case $t in operator | app | pause) ;; *) die "unknown image '$t': name any of operator, app, pause (none: all three)." ;; esac
done
want() { local t; for t in "${targets[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

# --- prerequisites -----------------------------------------------------------------------
need_pkgs=()
command -v buildah >/dev/null || need_pkgs+=(buildah)
if want operator; then
  command -v mmdebstrap >/dev/null || need_pkgs+=(mmdebstrap)
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need_pkgs+=(debian-archive-keyring)
fi
if want pause; then
  command -v gcc >/dev/null || need_pkgs+=(gcc)
  # a static link needs libc.a; gcc prints the bare name when it has none
  [ -f "$(gcc -print-file-name=libc.a 2>/dev/null || true)" ] || need_pkgs+=(libc6-dev)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${need_pkgs[*]}"
    apt-get update -qq >&2 || die "apt-get update failed: check that the Debian mirrors in /etc/apt/sources.list* are reachable."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2 ||
      die "apt-get install ${need_pkgs[*]} failed (see above)."
  else
    die "missing ${need_pkgs[*]}: run as root (the script then installs them) or install them yourself: sudo apt-get install --no-install-recommends ${need_pkgs[*]}"
  fi
fi
command -v python3 >/dev/null || die "python3 is needed (to read go module metadata and name the images in the archives): install python3 and run again."
if want app || want pause; then
  command -v go >/dev/null || die "Go is not installed: install Go >= 1.26 (see docs/test-cluster.md) and run again."
  export GOTOOLCHAIN=local
fi

# --- buildah, with its state under $NONSTOP_CACHE ------------------------------------------
export BUILDAH_ISOLATION=chroot
mkdir -p "$IMAGES_DIR" "$BUILDAH_DIR"
# one run at a time per cache: two would make the same base and prune each other's layers
exec 9>"$IMAGES_DIR/.lock"
flock -n 9 || { log "waiting for another e2e/images/build.sh on $NONSTOP_CACHE to finish"; flock 9; }
storage_conf() { # driver -> path of a storage.conf that ignores the machine's own
  local d=$1 f="$BUILDAH_DIR/storage-$1.conf"
  printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' \
    "$d" "$BUILDAH_DIR/$d/root" "$BUILDAH_DIR/$d/run" > "$f"
  echo "$f"
}
bh() { CONTAINERS_STORAGE_CONF="$STORAGE_CONF" buildah --storage-driver "$DRIVER" --root "$BUILDAH_DIR/$DRIVER/root" --runroot "$BUILDAH_DIR/$DRIVER/run" "$@"; }
choose_driver() {
  DRIVER=${NONSTOP_BUILDAH_DRIVER:-$(cat "$BUILDAH_DIR/driver" 2>/dev/null || true)}
  if [ -n "$DRIVER" ]; then STORAGE_CONF=$(storage_conf "$DRIVER"); return 0; fi
  # overlay shares layers between images but needs a kernel overlay mount on the cache's file
  # system (root, and a file system that can hold one: not xfs without d_type, not overlayfs on
  # older kernels); vfs copies the whole tree for every layer (the operator build takes ~4x as
  # long) but works anywhere. Try a real overlay mount; keep the first driver that works.
  DRIVER=overlay STORAGE_CONF=$(storage_conf overlay)
  local c err
  if c=$(bh from --quiet scratch 2>"$BUILDAH_DIR/probe.log") && bh mount "$c" >/dev/null 2>>"$BUILDAH_DIR/probe.log"; then
    bh rm "$c" >/dev/null
  else
    err=$(tail -1 "$BUILDAH_DIR/probe.log")
    [ -z "${c:-}" ] || bh rm "$c" >/dev/null 2>&1 || true
    log "storage driver overlay does not work here ($err); using vfs"
    DRIVER=vfs STORAGE_CONF=$(storage_conf vfs)
  fi
  echo "$DRIVER" > "$BUILDAH_DIR/driver"
  log "buildah storage: $DRIVER in $BUILDAH_DIR/$DRIVER"
}
choose_driver

# push <image> <reference> <archive>: an OCI archive whose index names the image by its full
# reference in both io.containerd.image.name (what ctr/CRI import reads first) and
# org.opencontainers.image.ref.name, so a plain `ctr images import` registers that name.
push_archive() {
  local image=$1 ref=$2 out=$3 tmp="$3.tmp"
  rm -f "$tmp" "$tmp.named"
  bh push --quiet "$image" "oci-archive:$tmp:$ref" >&2 || die "buildah push of $ref failed (see above)."
  python3 - "$tmp" "$ref" <<'EOF' || die "could not name $ref in $tmp (see above)."
import io, json, sys, tarfile
path, ref = sys.argv[1], sys.argv[2]
with tarfile.open(path) as src, tarfile.open(path + ".named", "w", format=tarfile.PAX_FORMAT) as dst:
    for m in src:
        data = src.extractfile(m) if m.isfile() else None
        if m.name.removeprefix("./") == "index.json":
            index = json.load(data)
            assert len(index["manifests"]) == 1, index
            ann = index["manifests"][0].setdefault("annotations", {})
            ann["io.containerd.image.name"] = ref
            ann["org.opencontainers.image.ref.name"] = ref
            raw = json.dumps(index, separators=(",", ":")).encode()
            m.size, data = len(raw), io.BytesIO(raw)
        dst.addfile(m, data)
EOF
  mv "$tmp.named" "$out" && rm -f "$tmp"
}

# keep the newest 3 archives of an image, so the cache does not grow without end
prune_archives() { # name
  find "$IMAGES_DIR" -maxdepth 1 -name "$1-*.tar" -printf '%T@ %p\n' | sort -rn | tail -n +4 |
    cut -d' ' -f2- | while IFS= read -r old; do rm -f "$old"; done
}

# scratch_image <ref> <archive> <binary> <path in image> <user> <title> <description>
scratch_image() {
  local ref=$1 out=$2 bin=$3 path=$4 user=$5 title=$6 desc=$7 c
  c=$(bh from --quiet scratch)
  bh copy --quiet --chmod 0555 "$c" "$bin" "$path" >/dev/null
  bh config --entrypoint "[\"$path\"]" --user "$user" --workingdir / \
    --label "org.opencontainers.image.title=$title" \
    --label "org.opencontainers.image.description=$desc" "$c"
  [ "$title" != nonstop-test-app ] || bh config --port 8080/tcp "$c"
  # a fixed creation time: the same binary gives the same image digest
  bh commit --quiet --rm --identity-label=false --timestamp 0 "$c" "$ref" >/dev/null
  push_archive "$ref" "$ref" "$out"
}

results=()
start=$(date +%s)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- the test application ------------------------------------------------------------------
build_app() {
  local src="$here/app" h ref out work
  h=$( { go env GOVERSION; declare -f build_app scratch_image push_archive; (cd "$src" && find . -type f ! -name '*_test.go' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); } | hash_of)
  ref="$APP_REPO:$h" out="$IMAGES_DIR/app-$h.tar"
  if [ ! -f "$out" ]; then
    log "building $ref"
    work="$WORK/app" && mkdir -p "$work"
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/app" .) || die "go build of e2e/images/app failed (see above)."
    scratch_image "$ref" "$out" "$work/app" /app 65532:65532 nonstop-test-app \
      "nonstop's end-to-end test workload: VERSION, READY, ERROR_RATE, DRAIN_SECONDS"
    prune_archives app
  fi
  results+=("$ref $out")
}

# --- the pause image ------------------------------------------------------------------------
build_pause() {
  local dir src h ref="registry.k8s.io/pause:$PAUSE_VERSION" out work
  dir=$(cd "$IMAGES_DIR" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])') ||
    die "go mod download of k8s.io/kubernetes@$K8S_VERSION failed: check that the Go module proxy is reachable (GOPROXY=$(go env GOPROXY))."
  src="$dir/build/pause/linux/pause.c"
  [ -f "$src" ] || die "$src is missing: k8s.io/kubernetes@$K8S_VERSION has no pause source; set K8S_VERSION in e2e/cluster/versions.sh to a release that has it."
  h=$( { echo "v$PAUSE_VERSION"; gcc --version | head -1; declare -f build_pause scratch_image push_archive; sha256sum < "$src"; } | hash_of)
  out="$IMAGES_DIR/pause-$h.tar"
  if [ ! -f "$out" ]; then
    log "building $ref from k8s.io/kubernetes@$K8S_VERSION"
    work="$WORK/pause" && mkdir -p "$work"
    { gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION" -o "$work/pause" "$src" && strip "$work/pause"; } ||
      die "compiling pause.c failed: a static link needs libc6-dev (apt-get install libc6-dev)."
    scratch_image "$ref" "$out" "$work/pause" /pause 65535:65535 pause "Kubernetes pause $PAUSE_VERSION, the sandbox of every pod"
    prune_archives pause
  fi
  results+=("$ref $out")
}

# --- the operator ---------------------------------------------------------------------------
# The base: Debian bookworm from its packages, the minbase variant plus python3, python3-venv
# and ca-certificates, merged /usr set up without the usrmerge package (that pulls in perl),
# no documentation but the copyrights, no man pages, no locales.
# shellcheck disable=SC2054  # the commas separate package names
BASE_MMDEBSTRAP=(--format=tar --variant=minbase --include=python3,python3-venv,ca-certificates
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
  bookworm)
BASE_SOURCES=("deb $DEBIAN_MIRROR bookworm main" "deb $DEBIAN_MIRROR bookworm-updates main"
  "deb $DEBIAN_SECURITY_MIRROR bookworm-security main")

build_base() { # sets BASE_REF and BASE_HASH
  local key rootfs c old
  # the root file system is keyed by what mmdebstrap is asked for, the image also by this function
  key=$(echo "${BASE_MMDEBSTRAP[*]} ${BASE_SOURCES[*]}" | hash_of)
  BASE_HASH=$( { echo "$key"; declare -f build_base; } | hash_of)
  BASE_REF="localhost/nonstop-base:bookworm-$BASE_HASH"
  bh inspect --type image "$BASE_REF" >/dev/null 2>&1 && return 0
  rootfs="$IMAGES_DIR/base-bookworm-$key.rootfs.tar"
  if [ ! -f "$rootfs" ]; then
    log "making the base root file system with mmdebstrap (cold: 1-3 min; log: $NONSTOP_CACHE/logs/images-mmdebstrap.log)"
    mkdir -p "$NONSTOP_CACHE/logs" && rm -rf "$rootfs.tmp"
    mmdebstrap "${BASE_MMDEBSTRAP[@]}" "$rootfs.tmp" "${BASE_SOURCES[@]}" \
      </dev/null >"$NONSTOP_CACHE/logs/images-mmdebstrap.log" 2>&1 || {
      tail -20 "$NONSTOP_CACHE/logs/images-mmdebstrap.log" >&2
      die "mmdebstrap failed (above, whole log in $NONSTOP_CACHE/logs/images-mmdebstrap.log): check that $DEBIAN_MIRROR is reachable (NONSTOP_DEBIAN_MIRROR chooses another mirror)."
    }
    mv "$rootfs.tmp" "$rootfs"
  fi
  log "importing the base as $BASE_REF"
  c=$(bh from --quiet scratch)
  bh add --quiet "$c" "$rootfs" / >/dev/null   # a local tar is unpacked, owners and modes kept
  bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd '["/usr/bin/python3"]' \
    --label "org.opencontainers.image.title=nonstop-base" \
    --label "org.opencontainers.image.description=Debian bookworm minbase with python3 (mmdebstrap)" "$c"
  bh commit --quiet --rm "$c" "$BASE_REF" >/dev/null
  # what older recipes left
  find "$IMAGES_DIR" -maxdepth 1 -name 'base-bookworm-*.rootfs.tar' ! -path "$rootfs" -delete
  for old in $(bh images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/nonstop-base:' | grep -vxF "$BASE_REF"); do
    bh rmi "$old" >/dev/null 2>&1 || true
  done
}

chart_app_version() {
  local v
  v=$(sed -n 's/^appVersion:[[:space:]]*["'\'']\{0,1\}\([^"'\''[:space:]]*\).*/\1/p' "$repo/helm/nonstop/Chart.yaml")
  [ -n "$v" ] || die "no appVersion in helm/nonstop/Chart.yaml: the operator image is tagged with it; add it there."
  grep -Eq "^[[:space:]]*repository:[[:space:]]*\"?$OPERATOR_REPO\"?[[:space:]]*(#.*)?$" "$repo/helm/nonstop/values.yaml" ||
    die "helm/nonstop/values.yaml no longer names $OPERATOR_REPO as operator.image.repository: change OPERATOR_REPO in e2e/images/build.sh to match."
  echo "$v"
}

build_operator() {
  local version ref h out cert="" args=()
  version=$(chart_app_version)
  ref="$OPERATOR_REPO:$version"
  build_base
  h=$( { echo "$version $BASE_HASH"; declare -f build_operator push_archive; cd "$repo" && tree_hash Dockerfile .dockerignore pyproject.toml README.md operator; } | hash_of)
  out="$IMAGES_DIR/operator-$h.tar"
  if [ ! -f "$out" ]; then
    log "building $ref (base $BASE_REF)"
    # pip inside the build trusts what pip trusts here (a TLS-inspecting proxy's CA), through a
    # build secret that stays out of the image; and uses the same package index.
    for f in "${PIP_CERT:-}" "${REQUESTS_CA_BUNDLE:-}" "${SSL_CERT_FILE:-}"; do
      [ -n "$f" ] && [ -f "$f" ] && { cert=$f; break; }
    done
    [ -z "$cert" ] || args+=(--secret "id=pipcert,src=$cert")
    [ -z "${PIP_INDEX_URL:-}" ] || args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
    args+=(--isolation chroot --network host --layers --pull=never --build-arg "BASE=$BASE_REF" -f "$repo/Dockerfile")
    # The stage with the dependencies gets a name, so that pruning what older builds left
    # (each leaves its own copy of the venv) never loses the layers that downloaded them.
    { bh build --quiet "${args[@]}" --target deps -t "$DEPS_REF" "$repo" >&2 &&
      bh build --quiet "${args[@]}" --build-arg "VERSION=$version" -t "$ref" "$repo" >&2; } ||
      die "building the operator image failed (see above); pip needs PyPI (or PIP_INDEX_URL) reachable."
    bh rmi --prune >/dev/null 2>&1 || true
    push_archive "$ref" "$ref" "$out"
    prune_archives operator
  fi
  results+=("$ref $out")
}

want pause && build_pause
want app && build_app
want operator && build_operator
log "images ready ($(($(date +%s) - start))s; buildah: CONTAINERS_STORAGE_CONF=$STORAGE_CONF buildah images)"
printf '%s\n' "${results[@]}"
