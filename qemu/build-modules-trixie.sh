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
. "$(dirname "$0")/trixie.sh"

[ $# = 1 ] || die "usage: $0 RELEASE"
release=$1
is_bpo_release "$release" || die "$release is not a trixie-backports 7.x amd64 release"

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

# in_chroot, chroot_apt, make_chroot, install_headers, in_chroot_make:
# qemu/trixie.sh.

build() {
    [ -e "$out/.complete" ] && return 0
    make_chroot
    install_headers "$release"
    mkdir -p "$MCACHE"
    rm -rf "$MCACHE"/.build.*
    local tmp
    tmp=$(mktemp -d "$MCACHE/.build.XXXXXX")
    cp -p "$QEMU_DIR"/modules/Kbuild "$QEMU_DIR"/modules/*.c "$QEMU_DIR"/modules/*.h "$tmp/"
    log "$release: building test modules in the trixie chroot"
    if ! in_chroot_make "$release" "$tmp" -j"$(nproc)" modules >"$tmp/build.log" 2>&1; then
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
