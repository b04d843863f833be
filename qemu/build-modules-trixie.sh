#!/bin/bash
# Build the livepatch test modules for a 7.x kernel of trixie-backports
# (RELEASE = <ver>+deb13-amd64) in a minimal trixie chroot, and print the
# directory that holds them. build-modules.sh calls this; it copies the
# modules into the checkout's target/qemu/build/<release>/.
#
# Why a chroot: those headers are built for trixie's gcc-14 and its
# binutils, which Debian 12 does not have. The chroot has trixie and
# trixie-backports in its sources and, --no-install-recommends, binutils
# (without it the build fails with a misleading "Compiler does not support
# fentry?"), gcc-14, make and linux-headers-<release>.
#
# Everything here is cached outside the clone, so other clones and CI on this
# machine reuse it:
#   $CACHE_DIR/chroot/trixie/               the chroot (about 700 MB)
#   $CACHE_DIR/modules/<release>/<hash>/    the built modules and build.log;
#                                           <hash> covers qemu/modules/*, so
#                                           they are rebuilt only when the
#                                           module sources change
# Both are made in a temp dir and renamed into place, under a lock, so a run
# that is interrupted, or two at once, leave nothing half-made. Every mount
# lives in a private mount namespace (unshare) and goes away with it.
#
# usage: build-modules-trixie.sh RELEASE
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# = 1 ] || die "usage: $0 RELEASE"
release=$1
case "$release" in
    7.*+deb13-amd64) ;;
    *) die "$release is not a trixie-backports 7.x amd64 release" ;;
esac

MIRROR=http://deb.debian.org/debian
CHROOTS=$CACHE_DIR/chroot
ROOT=$CHROOTS/trixie
MCACHE=$CACHE_DIR/modules/$release
# Every file of qemu/modules, names and contents.
hash=$(cd "$QEMU_DIR/modules" && find . -type f -print0 | LC_ALL=C sort -z \
    | xargs -0 sha256sum | sha256sum | cut -c1-16)
out=$MCACHE/$hash

if [ -e "$out/.complete" ]; then
    log "$release: modules cached in $out"
    printf '%s\n' "$out"
    exit 0
fi

need_cmd debootstrap debootstrap
need_cmd unshare util-linux

# in_chroot ROOT BIND CMD...: run CMD in ROOT with /proc mounted and, unless
# BIND is empty, the host directory BIND at /build; a clean environment.
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

make_chroot() {
    [ -e "$ROOT/.klpctl-ready" ] && return 0
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

install_headers() {
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

build() {
    [ -e "$out/.complete" ] && return 0
    make_chroot
    install_headers
    mkdir -p "$MCACHE"
    rm -rf "$MCACHE"/.build.*
    local tmp
    tmp=$(mktemp -d "$MCACHE/.build.XXXXXX")
    cp -p "$QEMU_DIR"/modules/Kbuild "$QEMU_DIR"/modules/*.c "$QEMU_DIR"/modules/*.h "$tmp/"
    log "$release: building test modules in the trixie chroot"
    if ! in_chroot "$ROOT" "$tmp" make -C "/usr/src/linux-headers-$release" M=/build \
        CC=x86_64-linux-gnu-gcc-14 -j"$(nproc)" modules >"$tmp/build.log" 2>&1; then
        tail -n 40 "$tmp/build.log" >&2
        cp "$tmp/build.log" "$MCACHE/failed-build.log"
        rm -rf "$tmp"
        die "$release: module build failed (log: $MCACHE/failed-build.log)"
    fi
    # Only the modules and the log are used; the objects double the size.
    find "$tmp" -mindepth 1 ! -name '*.ko' ! -name build.log -exec rm -rf {} +
    touch "$tmp/.complete"
    rm -rf "$out"
    mv "$tmp" "$out"
    # Builds of older module sources are never used again.
    find "$MCACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$hash" -exec rm -rf {} +
}

with_cache_lock trixie build
printf '%s\n' "$out"
