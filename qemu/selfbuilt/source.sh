#!/bin/bash
# Unpack the newest Debian linux-source-7.x (trixie-backports) once into the
# shared cache and print the tree's path:
#   $CACHE_DIR/selfbuilt/source/<debian-version>/linux-source-<series>/
# The tree is shared by every self-built kernel (x86_64, arm64, ...): build
# it out of tree (make O=...) and never write into it. A tree with a .config
# or build output in it would make out-of-tree builds refuse to run.
#
# Safe to run concurrently: the work happens under the cache lock
# .selfbuilt-source.lock, in a temp dir renamed into place. A warm run makes
# no network access: it resolves "newest" from the apt lists the rig already
# has, or, when those cannot say (offline, no lists), from the newest tree
# already unpacked.
#
# usage: source.sh [SERIES]      (SERIES like 7.3; default: the newest 7.x)
# stdout: the tree's path. Progress goes to stderr.
set -euo pipefail
SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$SELF_DIR/../lib.sh"
. "$SELF_DIR/../trixie.sh"

SRC_CACHE=$CACHE_DIR/selfbuilt/source
want_series=${1:-}

# newest_cached: the newest complete tree in the cache, or nothing.
newest_cached() {
    local d best=""
    for d in "$SRC_CACHE"/*/linux-source-*/; do
        [ -f "$d/.klpctl-complete" ] || continue
        case "$d" in *"/linux-source-${want_series:-7.}"*) ;; *) continue ;; esac
        best=$(printf '%s\n%s\n' "$best" "${d%/}" | sed '/^$/d' | sort -V | tail -n 1)
    done
    printf '%s' "$best"
}

# resolve: prints "PACKAGE VERSION" for the newest linux-source-7.x that apt
# knows (or of SERIES), from the existing lists when there are some.
resolve() {
    bpo_ensure_lists
    local pkg
    if [ -n "$want_series" ]; then
        pkg=linux-source-$want_series
    else
        pkg=$(bpo apt-cache pkgnames linux-source-7. 2>/dev/null | grep -E '^linux-source-7\.[0-9]+$' | sort -V | tail -n 1)
    fi
    [ -n "$pkg" ] || return 1
    local ver
    ver=$(bpo apt-cache show "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1)
    [ -n "$ver" ] || return 1
    printf '%s %s\n' "$pkg" "$ver"
}

fetch() {
    local pkg=$1 ver=$2
    local series=${pkg#linux-source-}
    local dir=$SRC_CACHE/$ver/linux-source-$series
    if [ -f "$dir/.klpctl-complete" ]; then
        printf '%s\n' "$dir"
        return 0
    fi
    need_pkg xz-utils
    mkdir -p "$SRC_CACHE"
    # Leftovers of an interrupted run; the lock says nobody else uses them.
    rm -rf "$SRC_CACHE"/.fetch.*
    local tmp start=$SECONDS
    tmp=$(mktemp -d "$SRC_CACHE/.fetch.XXXXXX")
    # apt-get download runs as _apt, which cannot write to a root-owned dir.
    chmod 0777 "$tmp"
    log "downloading $pkg=$ver (trixie-backports)"
    if ! (cd "$tmp" && bpo apt-get download -q "$pkg=$ver" >&2); then
        bpo_update_once
        (cd "$tmp" && bpo apt-get download -q "$pkg=$ver" >&2) \
            || { rm -rf "$tmp"; die "apt-get download $pkg=$ver failed"; }
    fi
    dpkg-deb --fsys-tarfile "$tmp"/linux-source-*.deb \
        | tar -x -C "$tmp" --wildcards './usr/src/linux-source-*.tar.*' \
        || { rm -rf "$tmp"; die "cannot unpack $pkg"; }
    rm -f "$tmp"/linux-source-*.deb
    local tarball
    tarball=$(find "$tmp/usr/src" -maxdepth 1 -name "linux-source-*.tar.*" | head -n 1)
    [ -n "$tarball" ] || { rm -rf "$tmp"; die "$pkg holds no linux-source-*.tar.* under /usr/src"; }
    log "unpacking $(basename "$tarball")"
    tar -x -C "$tmp" -f "$tarball" || { rm -rf "$tmp"; die "cannot unpack $tarball"; }
    rm -rf "$tmp/usr"
    [ -f "$tmp/linux-source-$series/Makefile" ] \
        || { rm -rf "$tmp"; die "$tarball has no linux-source-$series/Makefile"; }
    printf '%s\n' "$ver" >"$tmp/linux-source-$series/.klpctl-debian-version"
    touch "$tmp/linux-source-$series/.klpctl-complete"
    chmod 0755 "$tmp"
    mkdir -p "$SRC_CACHE/$ver"
    rm -rf "$dir"
    mv "$tmp/linux-source-$series" "$dir"
    rmdir "$tmp"
    log "$pkg $ver unpacked in $((SECONDS - start))s at $dir"
    printf '%s\n' "$dir"
}

main() {
    local r
    if r=$(resolve); then
        # shellcheck disable=SC2086 # two words on purpose
        fetch $r
        return
    fi
    local d
    d=$(newest_cached)
    [ -n "$d" ] || die "apt knows no linux-source-${want_series:-7.x} in trixie-backports and the cache has none"
    log "apt cannot resolve linux-source-${want_series:-7.x}; using the newest cached tree"
    printf '%s\n' "$d"
}

with_cache_lock selfbuilt-source main
