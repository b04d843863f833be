#!/bin/bash
# Fetch the kernel's own livepatch selftests for each given kernel release
# (default: every release fetch-kernels.sh resolved) from Debian's
# linux-source-<major.minor> package, and cache only what the selftests
# scenario needs under $CACHE_DIR/selftests/<release>/:
#   modules/   the test modules' sources (lib/livepatch/test_klp_*.c before
#              they moved, tools/testing/selftests/livepatch/test_modules/
#              after)
#   scripts/   tools/testing/selftests/livepatch/*.sh, functions.sh included
#   version    the linux-source package version the files came from
#   note       present when that version is not the running kernel's
#
# A 7.x release of trixie-backports (+deb13) takes linux-source-<major.minor>
# from trixie-backports, through the rig's own apt configuration for it
# (qemu/trixie.sh, as fetch-kernels.sh does), and the version to match from
# the trixie build chroot's linux-headers-<release> (or, before the chroot
# has them, from the trixie-backports index): the host's dpkg knows nothing
# of that kernel.
#
# Nothing of the kernel's ends up in the repository. A warm run makes no
# network access.
#
# usage: fetch-selftests.sh [RELEASE|SERIES]...
# stdout: one cache directory per release. Progress goes to stderr.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/trixie.sh"

need_pkg xz-utils
need_cmd dpkg-deb dpkg

releases=("$@")
if [ "${#releases[@]}" = 0 ]; then
    mapfile -t releases < <(resolved_releases)
fi

# image_version RELEASE: the Debian version of the kernel RELEASE was built
# from. The headers are installed by fetch-kernels.sh and come from the same
# source upload as the image, whatever the image package is called in that
# series (linux-image-*-unsigned, linux-binary-*).
# 7.x: the chroot's headers are the ones its modules are built against.
image_version() {
    if is_bpo_release "$1"; then
        local v
        v=$(chroot_headers_version "$1")
        if [ -z "$v" ]; then
            bpo_ensure_lists
            v=$(bpo apt-cache show "linux-headers-$1" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)
        fi
        printf '%s' "$v"
        return
    fi
    dpkg-query -W -f='${Version}' "linux-headers-$1" 2>/dev/null \
        || apt-cache show "linux-headers-$1" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1
}

# APT [apt-get|apt-cache] ARGS...: the host's apt for 6.x; for 7.x the apt
# that sees trixie-backports only. $use_bpo is set per release by fetch.
use_bpo=0
APT() {
    if [ "$use_bpo" = 1 ]; then bpo "$@"; else "$@"; fi
}
# update_once: refresh the lists APT reads.
update_once() {
    if [ "$use_bpo" = 1 ]; then bpo_update_once; else apt_update_once; fi
}

# fetch RELEASE: fills $CACHE_DIR/selftests/RELEASE unless it is complete.
fetch() {
    local release=$1
    local dir=$CACHE_DIR/selftests/$release
    if [ -f "$dir/complete" ]; then
        log "$release: selftests cached ($(cat "$dir/version"))"
        [ -f "$dir/note" ] && log "$release: $(cat "$dir/note")"
        return 0
    fi
    # 6.1.0-57-amd64 -> 6.1, 6.12.117+deb12-amd64 -> 6.12, 7.3.4+deb13-amd64 -> 7.3
    local series pkg want have
    use_bpo=0
    if is_bpo_release "$release"; then
        use_bpo=1
        bpo_ensure_lists
    fi
    series=$(printf '%s\n' "$release" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
    pkg=linux-source-$series
    want=$(image_version "$release")
    [ -n "$want" ] || die "$release: cannot tell the Debian version of this kernel (linux-headers-$release unknown to dpkg and apt$([ "$use_bpo" = 1 ] && echo ', the trixie chroot and trixie-backports' || true))"

    # The exact source of the running kernel when the archive still has it;
    # otherwise the newest of the series, and say so.
    local spec=$pkg=$want
    if ! APT apt-cache show "$spec" >/dev/null 2>&1; then
        update_once
    fi
    if APT apt-cache show "$spec" >/dev/null 2>&1; then
        have=$want
    else
        have=$(APT apt-cache show "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1)
        [ -n "$have" ] || die "$release: apt knows no $pkg"
        spec=$pkg=$have
    fi

    mkdir -p "$CACHE_DIR/selftests"
    # Leftovers of an interrupted run; the lock says nobody else uses them.
    rm -rf "$CACHE_DIR"/selftests/.fetch.*
    local tmp
    tmp=$(mktemp -d "$CACHE_DIR/selftests/.fetch.XXXXXX")
    # apt-get download runs as _apt, which cannot write to a root-owned
    # mktemp dir.
    chmod 0777 "$tmp"
    log "$release: downloading $spec$([ "$use_bpo" = 1 ] && echo ' (trixie-backports)' || true)"
    (cd "$tmp" && APT apt-get download -q "$spec" >&2) \
        || { rm -rf "$tmp"; die "apt-get download $spec failed"; }
    dpkg-deb -x "$tmp"/linux-source-*.deb "$tmp/deb" \
        || { rm -rf "$tmp"; die "cannot unpack $spec"; }
    rm -f "$tmp"/linux-source-*.deb
    local tarball
    tarball=$(find "$tmp/deb/usr/src" -maxdepth 1 -name "linux-source-*.tar.*" | head -n 1)
    [ -n "$tarball" ] || { rm -rf "$tmp"; die "$spec holds no linux-source-*.tar.* under /usr/src"; }
    local top
    top=$(basename "$tarball")
    top=${top%.tar.*}
    log "$release: extracting the livepatch selftests from $(basename "$tarball")"
    # Only the selftests directory and the old home of the test modules; tar
    # still reads the whole stream, once.
    tar -x -C "$tmp" -f "$tarball" --wildcards \
        "$top/tools/testing/selftests/livepatch/*" "$top/lib/livepatch/*" 2>/dev/null \
        || tar -x -C "$tmp" -f "$tarball" --wildcards "$top/tools/testing/selftests/livepatch/*" \
        || { rm -rf "$tmp"; die "$release: no tools/testing/selftests/livepatch in $(basename "$tarball")"; }
    rm -rf "$tmp/deb"

    local src=$tmp/$top new=$tmp/out
    mkdir -p "$new/modules" "$new/scripts"
    cp -p "$src"/tools/testing/selftests/livepatch/*.sh "$new/scripts/"
    if [ -d "$src/tools/testing/selftests/livepatch/test_modules" ]; then
        cp -p "$src"/tools/testing/selftests/livepatch/test_modules/*.c "$new/modules/"
    else
        cp -p "$src"/lib/livepatch/test_klp_*.c "$new/modules/"
    fi
    ls "$new"/modules/test_klp_*.c >/dev/null 2>&1 \
        || { rm -rf "$tmp"; die "$release: no test_klp_*.c test modules in $top"; }
    [ -f "$new/scripts/functions.sh" ] \
        || { rm -rf "$tmp"; die "$release: no functions.sh in $top"; }
    printf '%s\n' "$have" >"$new/version"
    # Close enough: the same upstream release (6.1.192 of 6.1.192-3); the
    # selftests change between upstream releases, hardly ever in Debian's
    # revisions. Any difference is written down and shown on every run.
    if [ "$have" != "$want" ]; then
        printf 'source %s %s, kernel is %s%s\n' "$pkg" "$have" "$want" \
            "$([ "${have%%-*}" = "${want%%-*}" ] && echo ' (same upstream release)' \
                || echo ' (DIFFERENT upstream release)')" >"$new/note"
        log "$release: $(cat "$new/note")"
    fi
    : >"$new/complete"
    rm -rf "$dir"
    mv "$new" "$dir"
    rm -rf "$tmp"
    log "$release: $(find "$dir/modules" -name '*.c' | wc -l) test modules, $(find "$dir/scripts" -name 'test-*.sh' | wc -l) scenario scripts from $pkg $have"
}

for arg in "${releases[@]}"; do
    release=$(to_release "$arg")
    [ -n "$release" ] || die "kernel series $arg not resolved: run qemu/fetch-kernels.sh"
    # One run at a time fills the cache (another clone or CI may share it).
    with_cache_lock selftests fetch "$release"
    printf '%s\n' "$CACHE_DIR/selftests/$release"
done
