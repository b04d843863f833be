#!/bin/bash
# The arm64 guest's userland: Debian 12's busybox-static and bash-static for
# arm64, downloaded once into the shared cache and unpacked:
#   $CACHE_DIR/arm64/userland/<busybox version>_<bash version>/{busybox,bash}
# apt runs with configuration of its own under $CACHE_DIR/apt-bookworm-arm64
# (sources, lists, downloads), so the host's dpkg never learns of the arm64
# architecture and the host's apt lists stay as they are. A warm run makes no
# network access: it uses the newest entry already unpacked.
#
# usage: userland.sh
# stdout: the directory holding busybox and bash. Progress goes to stderr.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

APT_DIR=$CACHE_DIR/apt-bookworm-arm64
APT_LINE="deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main"
OUT=$CACHE_DIR/arm64/userland

arm_apt() {
    local tool=$1
    shift
    "$tool" -o Dir::Etc::sourcelist="$APT_DIR/sources.list" \
        -o Dir::Etc::sourceparts="$APT_DIR/sources.list.d" \
        -o Dir::Etc::preferences="$APT_DIR/preferences" \
        -o Dir::Etc::preferencesparts="$APT_DIR/preferences.d" \
        -o Dir::State="$APT_DIR/state" -o Dir::State::status="$APT_DIR/status" \
        -o Dir::Cache="$APT_DIR/cache" -o APT::Sandbox::User=root \
        -o APT::Architecture=arm64 -o APT::Architectures::=arm64 "$@"
}

setup() {
    mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/preferences.d" \
        "$APT_DIR/state/lists/partial" "$APT_DIR/cache/archives/partial"
    [ -e "$APT_DIR/status" ] || : >"$APT_DIR/status"
    printf '%s\n' "$APT_LINE" >"$APT_DIR/sources.list"
}

# version PKG: the candidate version in the lists we have.
version() {
    arm_apt apt-cache show "$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1
}

fetch_locked() {
    # Warm: the entry already unpacked. These packages change only with a
    # rare security update; emptying the entry picks that up.
    local have
    have=$(find "$OUT" -mindepth 2 -maxdepth 2 -name bash -printf '%h\n' 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$have" ] && [ -x "$have/busybox" ]; then
        printf '%s\n' "$have"
        return 0
    fi
    setup
    local vb vs
    vb=$(version busybox-static || true)
    vs=$(version bash-static || true)
    if [ -z "$vb" ] || [ -z "$vs" ]; then
        log "apt-get update (bookworm, arm64, $APT_DIR)"
        arm_apt apt-get update -qq >&2 || die "apt-get update of the arm64 lists failed"
        vb=$(version busybox-static || true)
        vs=$(version bash-static || true)
        [ -n "$vb" ] && [ -n "$vs" ] || die "no arm64 busybox-static or bash-static in bookworm"
    fi
    local dir=$OUT/${vb}_${vs}
    if [ -x "$dir/busybox" ] && [ -x "$dir/bash" ]; then
        printf '%s\n' "$dir"
        return 0
    fi
    rm -rf "$OUT"/.fetch.*
    mkdir -p "$OUT"
    local tmp
    tmp=$(mktemp -d "$OUT/.fetch.XXXXXX")
    chmod 0777 "$tmp"
    log "downloading busybox-static $vb and bash-static $vs (arm64)"
    (cd "$tmp" && arm_apt apt-get download -q "busybox-static=$vb" "bash-static=$vs" >&2) \
        || { rm -rf "$tmp"; die "apt-get download of the arm64 userland failed"; }
    mkdir "$tmp/x"
    for deb in "$tmp"/*.deb; do
        dpkg-deb -x "$deb" "$tmp/x" || { rm -rf "$tmp"; die "cannot unpack $deb"; }
    done
    mkdir "$tmp/out"
    install -m 0755 "$tmp/x/bin/busybox" "$tmp/out/busybox"
    install -m 0755 "$tmp/x/bin/bash-static" "$tmp/out/bash"
    # Both must be static aarch64 executables: the guest has no libc.
    for b in busybox bash; do
        readelf -h "$tmp/out/$b" | grep -q 'AArch64' \
            || { rm -rf "$tmp"; die "$b is not an AArch64 executable"; }
        if readelf -l "$tmp/out/$b" | grep -q INTERP; then
            rm -rf "$tmp"
            die "$b is dynamically linked"
        fi
    done
    rm -rf "$dir"
    mv "$tmp/out" "$dir"
    rm -rf "$tmp"
    printf '%s\n' "$dir"
}

need_cmd readelf binutils
with_cache_lock arm64-userland fetch_locked
