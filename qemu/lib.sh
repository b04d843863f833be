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

# apt-get update at most once per script run (needed when a package is
# missing from the lists, or the lists are too old: apt_lists_fresh).
_APT_UPDATED=0
apt_update_once() {
    if [ "$_APT_UPDATED" = 0 ]; then
        log "apt-get update"
        with_cache_lock apt-lists apt_update_stamped "$APT_STAMP" "$(date +%s)" \
            apt-get update -qq -o DPkg::Lock::Timeout=300 \
            || die "apt-get update failed"
        _APT_UPDATED=1
    fi
}

# How old apt's lists may be before the rig refreshes them, in hours
# (KLPCTL_APT_MAX_AGE; 0 = refresh on every run). The rig always wants the
# newest kernel of each series, and Debian replaces kernels with security
# updates: lists left from an earlier day name a kernel that is no longer
# the newest, or no longer on the mirror at all. apt gives its list files
# the mirror's dates, not the time they were fetched, so the rig keeps a
# stamp of its own per apt configuration, touched after each successful
# update, and a machine whose lists the rig never refreshed (a fresh one)
# is refreshed once before anything is resolved.
APT_MAX_AGE_H=${KLPCTL_APT_MAX_AGE:-6}
APT_STAMP=$CACHE_DIR/apt-host.updated

# apt_lists_fresh STAMP: the lists behind STAMP were refreshed less than
# APT_MAX_AGE_H hours ago.
apt_lists_fresh() {
    local stamp=$1 max
    case $APT_MAX_AGE_H in '' | *[!0-9]*) die "KLPCTL_APT_MAX_AGE must be a whole number of hours" ;; esac
    max=$((APT_MAX_AGE_H * 60))
    [ "$max" -gt 0 ] && [ -e "$stamp" ] && [ -z "$(find "$stamp" -mmin +"$max")" ]
}

# apt_update_stamped STAMP SINCE CMD...: run the update CMD (under the
# caller's cache lock) and touch STAMP when it succeeded; skipped when
# another run refreshed the same lists after SINCE (epoch seconds: when
# this run decided to refresh) while this one waited for the lock.
apt_update_stamped() {
    local stamp=$1 since=$2
    shift 2
    if [ -e "$stamp" ] && [ "$(stat -c %Y "$stamp")" -gt "$since" ]; then
        log "apt's lists were refreshed by another run just now"
        return 0
    fi
    DEBIAN_FRONTEND=noninteractive "$@" >&2 || return 1
    mkdir -p "$(dirname "$stamp")" && touch "$stamp"
}

# apt_refresh_if_stale: the host's lists, refreshed when too old.
apt_refresh_if_stale() {
    apt_lists_fresh "$APT_STAMP" && return 0
    log "apt's lists were refreshed more than ${APT_MAX_AGE_H} h ago (or never by this rig): refreshing, to see the newest kernels"
    apt_update_once
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
