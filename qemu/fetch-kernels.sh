#!/bin/bash
# Resolve the newest Debian kernels of each series and cache their image,
# config and /sys/kernel/notes bytes under $CACHE_DIR/kernels/<release>/
# (outside the clone, shared by every clone on this machine); this checkout
# sees them as the symlinks target/qemu/kernels/<release>, and its resolved
# list in target/qemu/kernels/releases.
#
#   6.1, 6.12  Debian 12: linux-image-*-unsigned, with the matching headers
#              installed on the host so test modules build against them.
#   7.x        the newest 7.x amd64 build of trixie-backports: from 7.x the
#              image is split into linux-binary-<rel> (vmlinuz) and
#              linux-base-<rel> (config). Its headers need trixie's gcc-14,
#              so build-modules.sh builds its modules in a trixie chroot and
#              nothing is installed on the host for it.
#
# trixie-backports is read through apt configuration of its own under
# $CACHE_DIR/apt-trixie-backports (sources, lists, package cache, an empty
# dpkg status): the host's sources and what the host installs stay as they
# are.
#
# stdout: one resolved release per line. Progress goes to stderr.
#
# "Newest" means newest on the mirror, not in whatever lists this machine
# happens to hold: both sets of apt lists (the host's, and trixie-backports')
# are refreshed first when the rig has not refreshed them for
# KLPCTL_APT_MAX_AGE hours (default 6; stamps in $CACHE_DIR), so a fresh
# machine always updates once. A warm run inside that window makes no
# network access, and a new kernel then gets its own cache entry (the cache
# is keyed by release).
#
# Environment:
#   KLPCTL_APT_UPDATE=1   refresh apt's lists now, however fresh they are
#   KLPCTL_APT_MAX_AGE=H  refresh lists older than H hours (0: every run)
#   KLPCTL_KERNELS="6.1 6.12 7.x"  the series to fetch (default all three)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/trixie.sh"

SERIES=${KLPCTL_KERNELS:-6.1 6.12 7.x}
# Per checkout: which releases it resolved, and links to the cached images.
KDIR=$OUT_DIR/kernels
# Shared: the images themselves.
KCACHE=$CACHE_DIR/kernels
mkdir -p "$KDIR" "$KCACHE"

# Debian's python3 (not a pyenv shim): its stdlib has lzma and bz2.
need_pkg python3
PYTHON=/usr/bin/python3
# 6.1 images are xz (python's lzma), 6.12 and 7.x images zstd (the zstd tool).
need_cmd zstd zstd
need_pkg make gcc libc6-dev
if [ "${KLPCTL_APT_UPDATE:-0}" = 1 ]; then
    apt_update_once
else
    apt_refresh_if_stale
fi

# --- trixie-backports, through apt configuration of its own ----------------
# (bpo, bpo_setup, bpo_update_once: qemu/trixie.sh)

if [[ " $SERIES " == *" 7.x "* ]]; then
    if [ "${KLPCTL_APT_UPDATE:-0}" = 1 ]; then
        bpo_setup
        bpo_update_once
    else
        bpo_ensure_lists
    fi
fi

# refresh_lists SERIES: update the lists that SERIES is resolved from.
refresh_lists() {
    case "$1" in
        7.x)
            _BPO_UPDATED=0
            bpo_update_once
            ;;
        *)
            _APT_UPDATED=0
            apt_update_once
            ;;
    esac
}

# newest_release SERIES: newest <release> whose unsigned image and headers are
# both known to apt. Realtime and cloud flavours never match the patterns.
newest_release() {
    local re
    case "$1" in
        6.1) re='6\.1\.0-[0-9]+-amd64' ;;
        6.12) re='6\.12\.[0-9]+\+deb12-amd64' ;;
        7.x)
            newest_release_7
            return
            ;;
        *) die "unknown kernel series $1 (want 6.1, 6.12 or 7.x)" ;;
    esac
    local images headers
    images=$(apt-cache search --names-only "^linux-image-${re}-unsigned\$" \
        | awk '{print $1}' | sed -e 's/^linux-image-//' -e 's/-unsigned$//')
    headers=$(apt-cache search --names-only "^linux-headers-${re}\$" \
        | awk '{print $1}' | sed -e 's/^linux-headers-//')
    comm -12 <(printf '%s\n' "$images" | sort -u) <(printf '%s\n' "$headers" | sort -u) \
        | sed '/^$/d' | sort -V | tail -n 1
}

# newest_release_7: the newest 7.x <release> (+deb13-amd64) of
# trixie-backports whose image, config and headers packages all exist.
newest_release_7() {
    local re='7\.[0-9]+\.[0-9]+\+deb13-amd64' kind
    local lists=()
    for kind in binary base headers; do
        lists+=("$(bpo apt-cache search --names-only "^linux-$kind-${re}\$" \
            | awk '{print $1}' | sed "s/^linux-$kind-//" | sort -u)")
    done
    comm -12 <(printf '%s\n' "${lists[0]}") <(printf '%s\n' "${lists[1]}") \
        | comm -12 - <(printf '%s\n' "${lists[2]}") \
        | sed '/^$/d' | sort -V | tail -n 1
}

# cached RELEASE: the cache holds everything the rig reads of RELEASE.
cached() {
    local dir=$KCACHE/$1
    [ -s "$dir/vmlinuz" ] && [ -s "$dir/config" ] && [ -s "$dir/notes" ] \
        && [ -s "$dir/build-id" ]
}

# link_release RELEASE: target/qemu/kernels/RELEASE -> the cache entry. A
# directory there from before the cache existed moves into the cache when
# the cache lacks that release, so it is not downloaded again.
link_release() {
    local release=$1 link=$KDIR/$1
    if [ -d "$link" ] && [ ! -L "$link" ]; then
        if ! cached "$release" && [ -s "$link/notes" ] && [ -s "$link/build-id" ]; then
            rm -rf "$KCACHE/$release" && mv "$link" "$KCACHE/$release"
        fi
        rm -rf "$link"
    fi
    ln -sfn "$KCACHE/$release" "$link.tmp" && mv -T "$link.tmp" "$link"
}

fetch_image() {
    with_cache_lock kernels fetch_image_locked "$@" || return 1
    link_release "$1"
}

# download_unpack RELEASE TMP DEST: the image packages of RELEASE, downloaded
# into TMP; vmlinuz and config land in DEST.
download_unpack() {
    local release=$1 tmp=$2 dest=$3
    case "$release" in
        7.*)
            log "$release: downloading linux-binary-$release and linux-base-$release (trixie-backports)"
            (cd "$tmp" && bpo apt-get download -q "linux-binary-$release" "linux-base-$release" >&2) \
                || { log "apt-get download of $release from trixie-backports failed"; return 1; }
            local m=./usr/lib/modules/$release
            dpkg-deb --fsys-tarfile "$tmp"/linux-binary-*.deb | tar -x -C "$tmp" "$m/vmlinuz" \
                && dpkg-deb --fsys-tarfile "$tmp"/linux-base-*.deb | tar -x -C "$tmp" "$m/config" \
                && mv "$tmp/$m/vmlinuz" "$dest/vmlinuz" \
                && mv "$tmp/$m/config" "$dest/config"
            ;;
        *)
            log "$release: downloading linux-image-$release-unsigned"
            (cd "$tmp" && apt-get download -q "linux-image-$release-unsigned" >&2) \
                || { log "apt-get download linux-image-$release-unsigned failed"; return 1; }
            # Only ./boot is needed; skipping the module tree saves most of the time.
            dpkg-deb --fsys-tarfile "$tmp"/linux-image-*.deb | tar -x -C "$tmp" ./boot \
                && mv "$tmp/boot/vmlinuz-$release" "$dest/vmlinuz" \
                && mv "$tmp/boot/config-$release" "$dest/config"
            ;;
    esac
}

fetch_image_locked() {
    local release=$1 dir=$KCACHE/$1
    if cached "$release"; then
        log "$release: image cached in $dir"
        return 0
    fi
    # Leftovers of an interrupted run; the lock says nobody else uses them.
    rm -rf "$KCACHE"/.fetch.*
    local tmp
    tmp=$(mktemp -d "$KCACHE/.fetch.XXXXXX")
    # apt-get download drops privileges to _apt, which cannot write to a
    # root-owned mktemp dir; let it.
    chmod 0777 "$tmp"
    # Each step is checked explicitly: this runs where errexit is off.
    rm -rf "$dir.new"
    mkdir -p "$dir.new" \
        && download_unpack "$release" "$tmp" "$dir.new" \
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
    # 7.x headers live in build-modules.sh's trixie chroot, not on the host.
    case "$release" in 7.*) return 0 ;; esac
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
        refresh_lists "$s"
        r=$(resolve_and_fetch "$s") \
            || die "no kernel image with matching headers could be fetched for series $s"
    fi
    resolved+=("$s $r")
done

printf '%s\n' "${resolved[@]}" >"$KDIR/releases.new"
mv "$KDIR/releases.new" "$KDIR/releases"
for line in "${resolved[@]}"; do
    printf '%s\n' "${line#* }"
done
