# Shared helpers for the 7.x tier (trixie-backports kernels). Sourced after
# lib.sh, not executed.
#
#   bpo, bpo_setup, bpo_update_once, bpo_ensure_lists
#                 apt-get/apt-cache that see trixie-backports only, through
#                 apt configuration of their own under
#                 $CACHE_DIR/apt-trixie-backports (fetch-kernels.sh,
#                 fetch-selftests.sh)
#   in_chroot, chroot_apt, make_chroot, install_headers, in_chroot_make
#                 the minimal trixie chroot with gcc-14 in which modules for
#                 those kernels are built (build-modules-trixie.sh,
#                 mkselftests.sh)
#
# Callers that use the chroot hold the "trixie" cache lock around it
# (with_cache_lock trixie ...): install_headers may purge another release's
# headers.
# shellcheck shell=bash

# is_bpo_release RELEASE: a 7.x amd64 kernel of trixie-backports.
is_bpo_release() {
    case "$1" in
        7.*+deb13-amd64) return 0 ;;
        *) return 1 ;;
    esac
}

# --- trixie-backports, through apt configuration of its own ----------------

BPO=$CACHE_DIR/apt-trixie-backports
BPO_LINE="deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main"

# bpo TOOL ARGS...: apt-get or apt-cache that sees trixie-backports and
# nothing else: not the host's sources, preferences or dpkg status.
# Sandbox::User=root: the lists and downloads are root-owned cache dirs.
bpo() {
    local tool=$1
    shift
    "$tool" -o Dir::Etc::sourcelist="$BPO/sources.list" \
        -o Dir::Etc::sourceparts="$BPO/sources.list.d" \
        -o Dir::Etc::preferences="$BPO/preferences" \
        -o Dir::Etc::preferencesparts="$BPO/preferences.d" \
        -o Dir::State="$BPO/state" -o Dir::State::status="$BPO/status" \
        -o Dir::Cache="$BPO/cache" -o APT::Sandbox::User=root "$@"
}

bpo_setup() {
    mkdir -p "$BPO/sources.list.d" "$BPO/preferences.d" "$BPO/state/lists/partial" \
        "$BPO/cache/archives/partial"
    [ -e "$BPO/status" ] || : >"$BPO/status"
    if [ "$(cat "$BPO/sources.list" 2>/dev/null)" != "$BPO_LINE" ]; then
        printf '%s\n' "$BPO_LINE" >"$BPO/sources.list.tmp"
        mv "$BPO/sources.list.tmp" "$BPO/sources.list"
    fi
}

_BPO_UPDATED=0
BPO_STAMP=$BPO/updated
bpo_update_once() {
    if [ "$_BPO_UPDATED" = 0 ]; then
        log "apt-get update (trixie-backports, $BPO)"
        with_cache_lock apt-trixie-backports apt_update_stamped "$BPO_STAMP" "$(date +%s)" \
            bpo apt-get update -qq \
            || die "apt-get update of trixie-backports failed"
        _BPO_UPDATED=1
    fi
}

# bpo_ensure_lists: set up, and update when there are no lists yet or they
# are older than KLPCTL_APT_MAX_AGE hours (apt_lists_fresh, lib.sh).
bpo_ensure_lists() {
    bpo_setup
    if ! compgen -G "$BPO/state/lists/*trixie-backports*Packages*" >/dev/null \
        || ! apt_lists_fresh "$BPO_STAMP"; then
        bpo_update_once
    fi
}

# --- the trixie build chroot -----------------------------------------------

MIRROR=http://deb.debian.org/debian
CHROOTS=$CACHE_DIR/chroot
ROOT=$CHROOTS/trixie

# in_chroot ROOT BIND CMD...: run CMD in ROOT with /proc mounted and, unless
# BIND is empty, the host directory BIND at /build; a clean environment.
# Every mount lives in a private mount namespace and goes away with it.
in_chroot() {
    local root=$1 bind=$2
    shift 2
    unshare --mount --propagation private -- /bin/sh -c '
        root=$1 bind=$2
        shift 2
        mount -t proc proc "$root/proc" || exit 1
        if [ -n "$bind" ]; then
            mkdir -p "$root/build" && mount --bind "$bind" "$root/build" || exit 1
        fi
        exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
    ' in_chroot "$root" "$bind" "$@"
}

# chroot_apt ROOT ARGS...: apt-get install ARGS in ROOT; updates its lists
# and retries once when they are stale (a security update moved a version).
chroot_apt() {
    local root=$1 aptlog
    shift
    aptlog=$(mktemp)
    if ! in_chroot "$root" "" apt-get install -y -q --no-install-recommends "$@" >"$aptlog" 2>&1; then
        in_chroot "$root" "" apt-get update -q >"$aptlog" 2>&1 \
            && in_chroot "$root" "" apt-get install -y -q --no-install-recommends "$@" >"$aptlog" 2>&1 \
            || { tail -n 30 "$aptlog" >&2; rm -f "$aptlog"; return 1; }
    fi
    rm -f "$aptlog"
}

# make_chroot: debootstrap the chroot once per machine, with binutils (without
# it the build fails with a misleading "Compiler does not support fentry?"),
# gcc-14 and make. Made in a temp dir and renamed into place.
make_chroot() {
    [ -e "$ROOT/.klpctl-ready" ] && return 0
    need_cmd debootstrap debootstrap
    need_cmd unshare util-linux
    # Leftovers of an interrupted run; the lock says nobody else uses them.
    rm -rf "$CHROOTS"/.trixie.*
    mkdir -p "$CHROOTS"
    local tmp start=$SECONDS
    tmp=$(mktemp -d "$CHROOTS/.trixie.XXXXXX")
    chmod 0755 "$tmp"
    log "debootstrap --variant=minbase trixie into $tmp (once per machine, a few minutes)"
    # debootstrap mounts /proc and /sys in the target itself; in a private
    # namespace those mounts cannot outlive it, even if it is killed.
    if ! unshare --mount --propagation private -- \
        debootstrap --variant=minbase trixie "$tmp" "$MIRROR" >"$CHROOTS/debootstrap.log" 2>&1; then
        tail -n 30 "$CHROOTS/debootstrap.log" >&2
        die "debootstrap failed (full log: $CHROOTS/debootstrap.log)"
    fi
    printf 'deb %s trixie main\ndeb %s trixie-backports main\n' "$MIRROR" "$MIRROR" \
        >"$tmp/etc/apt/sources.list"
    rm -f "$tmp"/etc/apt/sources.list.d/*
    in_chroot "$tmp" "" apt-get update -q >"$CHROOTS/apt.log" 2>&1 \
        || { tail -n 30 "$CHROOTS/apt.log" >&2; die "apt-get update in the trixie chroot failed"; }
    chroot_apt "$tmp" binutils gcc-14 make \
        || die "cannot install binutils gcc-14 make in the trixie chroot"
    in_chroot "$tmp" "" apt-get clean
    touch "$tmp/.klpctl-ready"
    rm -rf "$ROOT"
    mv "$tmp" "$ROOT"
    log "trixie chroot ready in $((SECONDS - start))s: $(du -sh "$ROOT" | cut -f1) at $ROOT"
}

# install_headers RELEASE: linux-headers-RELEASE in the chroot, and no other
# release's headers.
install_headers() {
    local release=$1
    local kdir=/usr/src/linux-headers-$release
    [ -f "$ROOT$kdir/Makefile" ] && return 0
    log "$release: installing linux-headers-$release in the trixie chroot"
    chroot_apt "$ROOT" "linux-headers-$release" \
        || die "cannot install linux-headers-$release in the trixie chroot"
    [ -f "$ROOT$kdir/Makefile" ] || die "linux-headers-$release installed but $kdir is missing"
    # Keep the chroot to one kernel's headers: drop those of older releases.
    local old
    old=$(in_chroot "$ROOT" "" dpkg-query -W -f='${Package}\n' 'linux-headers-*' \
        | grep -vxF -e "linux-headers-$release" -e "linux-headers-${release%-amd64}-common" || true)
    if [ -n "$old" ]; then
        # shellcheck disable=SC2086 # one package name per word
        in_chroot "$ROOT" "" apt-get purge -y -q $old >/dev/null 2>&1 \
            && in_chroot "$ROOT" "" apt-get autoremove -y -q --purge >/dev/null 2>&1 \
            || log "could not purge old headers ($old); continuing"
    fi
    in_chroot "$ROOT" "" apt-get clean
}

# chroot_headers_version RELEASE: the version of linux-headers-RELEASE
# installed in the chroot, empty when it is not.
# Read from the chroot's dpkg database; nothing runs in it.
chroot_headers_version() {
    [ -f "$ROOT/usr/src/linux-headers-$1/Makefile" ] || return 0
    dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Version}' "linux-headers-$1" 2>/dev/null || true
}

# in_chroot_make RELEASE DIR ARGS...: make ARGS for an external module tree
# DIR (bound at /build) against RELEASE's headers, with trixie's gcc-14.
# The chroot and the headers must be there (make_chroot, install_headers).
in_chroot_make() {
    local release=$1 dir=$2
    shift 2
    in_chroot "$ROOT" "$dir" make -C "/usr/src/linux-headers-$release" M=/build \
        CC=x86_64-linux-gnu-gcc-14 "$@"
}
