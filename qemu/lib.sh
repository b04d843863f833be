# Shared helpers for the QEMU rig. Sourced, not executed.
# shellcheck shell=bash

# Repository root and the rig's output tree, whatever the caller's cwd is.
QEMU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$QEMU_DIR/.." && pwd)
OUT_DIR=${KLPCTL_QEMU_OUT:-$REPO_DIR/target/qemu}
# Downloads and builds that do not depend on this checkout (kernel packages,
# kernel source trees, build chroots) belong here, outside the clone, so every
# clone and CI run on this machine reuses them; a fresh machine fills it by
# itself. Override with KLPCTL_CACHE.
CACHE_DIR=${KLPCTL_CACHE:-/var/cache/klpctl-test}

# with_cache_lock NAME CMD...: run CMD holding $CACHE_DIR/.NAME.lock, so two
# runs that share the cache (two clones, CI beside a developer) never fill
# the same entry at once. Entries are still built in a temp dir and renamed
# into place, so an interrupted run leaves nothing half-made behind.
with_cache_lock() {
    local name=$1
    shift
    mkdir -p "$CACHE_DIR"
    (
        exec 9>"$CACHE_DIR/.$name.lock"
        if ! flock -n 9; then
            log "waiting for $CACHE_DIR/.$name.lock (another run fills the cache)"
            flock 9
        fi
        "$@"
    )
}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# apt-get update at most once per script run, and only when something is
# actually missing: a warm machine never touches the network.
_APT_UPDATED=0
apt_update_once() {
    if [ "$_APT_UPDATED" = 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=300 >&2 \
            || die "apt-get update failed"
        _APT_UPDATED=1
    fi
}

# need_cmd CMD PACKAGE: install PACKAGE unless CMD is already on PATH.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 && return 0
    need_pkg "$2"
    command -v "$1" >/dev/null 2>&1 || die "$2 installed but $1 still missing"
}

# need_pkg PACKAGE...: install the packages that are not installed yet.
need_pkg() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
            || missing+=("$p")
    done
    [ "${#missing[@]}" = 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]}"
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
        apt_update_once
    fi
    log "installing ${missing[*]}"
    # INITRD=No: 6.12 headers drag in the signed image package, whose hook
    # would otherwise spend half a minute building an initrd nobody boots.
    local aptlog
    aptlog=$(mktemp)
    if ! INITRD=No DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
        --no-install-recommends "${missing[@]}" >"$aptlog" 2>&1; then
        apt_update_once
        INITRD=No DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
            --no-install-recommends "${missing[@]}" >"$aptlog" 2>&1 || {
            tail -n 30 "$aptlog" >&2
            rm -f "$aptlog"
            die "apt-get install ${missing[*]} failed"
        }
    fi
    rm -f "$aptlog"
}

# The kernel releases fetch-kernels.sh resolved, one per line.
resolved_releases() {
    [ -s "$OUT_DIR/kernels/releases" ] \
        || die "no kernels resolved yet: run qemu/fetch-kernels.sh"
    awk '{print $2}' "$OUT_DIR/kernels/releases"
}

# release_for SERIES (6.1, 6.12 or 7.x): the resolved release of that series.
release_for() {
    [ -s "$OUT_DIR/kernels/releases" ] \
        || die "no kernels resolved yet: run qemu/fetch-kernels.sh"
    awk -v s="$1" '$1 == s {print $2}' "$OUT_DIR/kernels/releases"
}

# Accept either a series name or a full release.
to_release() {
    case "$1" in
        6.1|6.12|7.x) release_for "$1" ;;
        *) printf '%s\n' "$1" ;;
    esac
}

# A self-built kernel (qemu/selfbuilt/) has, beside its image in
# $OUT_DIR/kernels/<release>/, the file "arch" (its architecture, as the
# kernel's ARCH= names it) and "build" (its out-of-tree build, which modules
# are built against). Debian's kernels have neither.

# release_arch RELEASE: arm64, or x86_64 for Debian's amd64 kernels.
release_arch() {
    cat "$OUT_DIR/kernels/$1/arch" 2>/dev/null || echo x86_64
}

# is_selfbuilt RELEASE: the kernel has its own build tree.
is_selfbuilt() {
    [ -d "$OUT_DIR/kernels/$1/build" ]
}

# selfbuilt_make RELEASE MODDIR ARGS...: make external modules in MODDIR
# against RELEASE's build tree, with its ARCH= and CROSS_COMPILE=.
selfbuilt_make() {
    local release=$1 dir=$2
    shift 2
    local margs
    mapfile -t margs < <("$QEMU_DIR/selfbuilt/config.sh" --make-args "$(release_arch "$release")")
    make -C "$OUT_DIR/kernels/$release/build" M="$dir" "${margs[@]}" "$@"
}
