#!/bin/bash
# Resolve the newest Debian 12 kernels of the 6.1 and 6.12 series, cache their
# image, config and /sys/kernel/notes bytes under target/qemu/kernels/<release>/,
# and install the matching headers so test modules can be built against them.
#
# stdout: one resolved release per line. Progress goes to stderr.
# A warm second run makes no network access.
#
# Environment:
#   KLPCTL_APT_UPDATE=1   run apt-get update first (to pick up newer kernels)
#   KLPCTL_KERNELS="6.1 6.12"  the series to fetch (default both)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SERIES=${KLPCTL_KERNELS:-6.1 6.12}
KDIR=$OUT_DIR/kernels
mkdir -p "$KDIR"

# Debian's python3 (not a pyenv shim): its stdlib has lzma and bz2.
need_pkg python3
PYTHON=/usr/bin/python3
# 6.1 images are xz (python's lzma), 6.12 images zstd (the zstd tool).
need_cmd zstd zstd
need_pkg make gcc libc6-dev
[ "${KLPCTL_APT_UPDATE:-0}" = 1 ] && apt_update_once

# newest_release SERIES: newest <release> whose unsigned image and headers are
# both known to apt. Realtime and cloud flavours never match the patterns.
newest_release() {
    local re
    case "$1" in
        6.1) re='6\.1\.0-[0-9]+-amd64' ;;
        6.12) re='6\.12\.[0-9]+\+deb12-amd64' ;;
        *) die "unknown kernel series $1 (want 6.1 or 6.12)" ;;
    esac
    local images headers
    images=$(apt-cache search --names-only "^linux-image-${re}-unsigned\$" \
        | awk '{print $1}' | sed -e 's/^linux-image-//' -e 's/-unsigned$//')
    headers=$(apt-cache search --names-only "^linux-headers-${re}\$" \
        | awk '{print $1}' | sed -e 's/^linux-headers-//')
    comm -12 <(printf '%s\n' "$images" | sort -u) <(printf '%s\n' "$headers" | sort -u) \
        | sed '/^$/d' | sort -V | tail -n 1
}

fetch_image() {
    local release=$1 dir=$KDIR/$1
    if [ -s "$dir/vmlinuz" ] && [ -s "$dir/config" ] && [ -s "$dir/notes" ] \
        && [ -s "$dir/build-id" ]; then
        log "$release: image cached"
        return 0
    fi
    log "$release: downloading linux-image-$release-unsigned"
    local tmp
    tmp=$(mktemp -d "$KDIR/.fetch.XXXXXX")
    # apt-get download drops privileges to _apt, which cannot write to a
    # root-owned mktemp dir; let it.
    chmod 0777 "$tmp"
    if ! (cd "$tmp" && apt-get download -q "linux-image-$release-unsigned" >&2); then
        rm -rf "$tmp"
        log "apt-get download linux-image-$release-unsigned failed"
        return 1
    fi
    # Only ./boot is needed; skipping the module tree saves most of the time.
    # Each step is checked explicitly: this runs where errexit is off.
    rm -rf "$dir.new"
    mkdir -p "$dir.new" \
        && dpkg-deb --fsys-tarfile "$tmp"/linux-image-*.deb | tar -x -C "$tmp" ./boot \
        && mv "$tmp/boot/vmlinuz-$release" "$dir.new/vmlinuz" \
        && mv "$tmp/boot/config-$release" "$dir.new/config" \
        && "$PYTHON" "$QEMU_DIR/tools/kernel-notes.py" "$dir.new/vmlinuz" \
            "$dir.new/notes" "$dir.new/build-id" \
        || { rm -rf "$tmp" "$dir.new"; log "$release: cannot unpack the image"; return 1; }
    rm -rf "$tmp"
    if ! grep -q '^CONFIG_LIVEPATCH=y' "$dir.new/config"; then
        rm -rf "$dir.new"
        die "$release was built without CONFIG_LIVEPATCH"
    fi
    rm -rf "$dir" && mv "$dir.new" "$dir" || return 1
    log "$release: build-id $(cat "$dir/build-id")"
}

fetch_headers() {
    local release=$1
    if [ -f "/usr/src/linux-headers-$release/Makefile" ]; then
        log "$release: headers installed"
        return 0
    fi
    need_pkg "linux-headers-$release"
    [ -f "/usr/src/linux-headers-$release/Makefile" ] \
        || die "linux-headers-$release installed but /usr/src/linux-headers-$release is missing"
}

# resolve_and_fetch SERIES: prints the release. Fails (without dying) when
# apt's lists are stale, e.g. a security update removed the version they
# name from the mirror, so the caller can update and retry once.
resolve_and_fetch() {
    local r
    r=$(newest_release "$1")
    [ -n "$r" ] || return 1
    (fetch_image "$r" && fetch_headers "$r") || return 1
    printf '%s\n' "$r"
}

resolved=()
for s in $SERIES; do
    if ! r=$(resolve_and_fetch "$s"); then
        log "series $s: nothing usable in apt's lists; updating them and retrying"
        _APT_UPDATED=0
        apt_update_once
        r=$(resolve_and_fetch "$s") \
            || die "no linux-image-*-unsigned with matching headers could be fetched for series $s"
    fi
    resolved+=("$s $r")
done

printf '%s\n' "${resolved[@]}" >"$KDIR/releases.new"
mv "$KDIR/releases.new" "$KDIR/releases"
for line in "${resolved[@]}"; do
    printf '%s\n' "${line#* }"
done
