#!/bin/bash
# Cross-build the arm64 test kernel from Debian's linux-source-7.x
# (source.sh) with the minimal config of config.sh (config.common +
# config.arm64), using Debian's gcc-aarch64-linux-gnu, and keep the build in
# the shared cache, keyed by source version, config and compiler:
#   $CACHE_DIR/selfbuilt/arm64/<debian-version>-<key>/
#     build/        the out-of-tree build (make O=), kept for module builds
#     Image         the bootable kernel (arch/arm64/boot/Image)
#     config        the .config it was built with
#     notes         the bytes of /sys/kernel/notes (the .notes section)
#     build-id      its GNU build-id, hex
#     release       uname -r
#     build-seconds wall time of the build that filled the entry
#     sums          sha256sum of the five files above, written last
#     .klpctl-complete  the marker: the entry is whole
# A warm run (entry complete) builds nothing, but first checks the entry
# (check_entry): a damaged one (a truncated Image, a lost file) stops the run
# with its name rather than being booted. An interrupted build is resumed
# by make in the same directory; the cache lock keeps two runs apart. ccache
# ($CACHE_DIR/selfbuilt/ccache-arm64) makes a rebuild with a new config fast.
#
# usage: build-arm64.sh
#        build-arm64.sh --check ENTRY      check a cache entry (exit 1 if damaged)
#        build-arm64.sh --inputs VERSION   print the inputs key for that source version
# stdout: the cache entry's path (or the key). Progress goes to stderr.
set -euo pipefail
SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$SELF_DIR/../lib.sh"

# The files of an entry that sums covers.
ENTRY_FILES=(Image config notes build-id release)

# check_entry ENTRY: whether ENTRY is a complete, undamaged cache entry;
# says what is wrong on stderr. Entries made before sums existed are checked
# against the build tree they keep (Image and .config are copies of it).
check_entry() {
    local e=$1 f
    [ -f "$e/.klpctl-complete" ] || { log "$e: no .klpctl-complete (an unfinished build)"; return 1; }
    for f in "${ENTRY_FILES[@]}"; do
        [ -s "$e/$f" ] || { log "$e: $f is missing or empty"; return 1; }
    done
    # arm64 Image header: the magic "ARM\x64" at byte 56.
    [ "$(od -An -tx1 -j56 -N4 "$e/Image" | tr -d ' \n')" = 41524d64 ] \
        || { log "$e: Image is not an arm64 kernel image"; return 1; }
    if [ -f "$e/sums" ]; then
        (cd "$e" && sha256sum --quiet --strict -c sums >&2) \
            || { log "$e: files differ from their sums"; return 1; }
    else
        cmp -s "$e/Image" "$e/build/arch/arm64/boot/Image" \
            || { log "$e: Image differs from build/arch/arm64/boot/Image"; return 1; }
        cmp -s "$e/config" "$e/build/.config" \
            || { log "$e: config differs from build/.config"; return 1; }
    fi
}

# inputs_key VERSION: the key of what the config is made from. Kconfig
# writes the versions of the cross compiler, assembler and linker
# (CC_VERSION_TEXT, AS_VERSION, LD_VERSION) and of pahole (PAHOLE_VERSION)
# into the .config, so each is an input, as are the option files, the
# scripts, the source version and the cross libc (CC_CAN_LINK).
inputs_key() {
    {
        cat "$SELF_DIR/config.common" "$SELF_DIR/config.arm64" "$SELF_DIR/config.sh"
        printf '%s\n' "$1"
        aarch64-linux-gnu-gcc --version | head -n 1
        aarch64-linux-gnu-as --version | head -n 1
        aarch64-linux-gnu-ld --version | head -n 1
        pahole --version 2>/dev/null || echo "no pahole"
        dpkg-query -W -f='${Version}\n' libc6-dev-arm64-cross
    } | sha256sum | cut -c1-16
}

case "${1:-}" in
    --check)
        [ $# = 2 ] || die "usage: build-arm64.sh --check ENTRY"
        check_entry "$2" || exit 1
        exit 0
        ;;
    --inputs)
        [ $# = 2 ] || die "usage: build-arm64.sh --inputs VERSION"
        inputs_key "$2"
        exit 0
        ;;
    "") ;;
    *) die "usage: build-arm64.sh [--check ENTRY | --inputs VERSION]" ;;
esac

need_cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
# libc6-dev-arm64-cross before the config is made: with it the cross
# compiler can link programs, and Kconfig records that (CC_CAN_LINK), so the
# config, and the cache key, would differ with and without it.
need_pkg binutils-aarch64-linux-gnu libc6-dev-arm64-cross make bc bison flex libelf-dev \
    libssl-dev openssl ccache xz-utils

ksrc=$("$SELF_DIR/source.sh")
ver=$(cat "$ksrc/.klpctl-debian-version")
mapfile -t margs < <("$SELF_DIR/config.sh" --make-args arm64)

# The config is made in a scratch dir first: its bytes (with the compiler's
# version) name the cache entry. Making it takes tinyconfig's host tools and
# two Kconfig passes (most of a warm run), so what it was made from is
# remembered too (inputs_key). The same inputs give the same config.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/klp-arm64-config.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
inputs=$(inputs_key "$ver")
known=$CACHE_DIR/selfbuilt/arm64/inputs/$inputs
key=$(cat "$known" 2>/dev/null || true)
if [ -z "$key" ] || [ ! -f "$CACHE_DIR/selfbuilt/arm64/$ver-$key/.klpctl-complete" ]; then
    KSRC=$ksrc "$SELF_DIR/config.sh" arm64 "$scratch" >/dev/null
    key=$({ cat "$scratch/.config"; aarch64-linux-gnu-gcc --version | head -n 1; } | sha256sum | cut -c1-16)
fi
entry=$CACHE_DIR/selfbuilt/arm64/$ver-$key

build_locked() {
    if [ -f "$entry/.klpctl-complete" ]; then
        check_entry "$entry" \
            || die "the cached arm64 kernel $entry is damaged (above); remove that directory to rebuild it"
        log "arm64 kernel cached in $entry"
        if [ ! -s "$known" ]; then
            mkdir -p "$(dirname "$known")"
            printf '%s\n' "$key" >"$known.tmp" && mv "$known.tmp" "$known"
        fi
        return 0
    fi
    mkdir -p "$entry/build"
    # make rebuilds what an interrupted run left unfinished; a config that
    # differs would not share this key.
    cp "$scratch/.config" "$entry/build/.config"
    local jobs start=$SECONDS blog=$entry/build.log
    jobs=$(nproc)
    export CCACHE_DIR=$CACHE_DIR/selfbuilt/ccache-arm64
    export CCACHE_MAXSIZE=2G
    # Depend mode: ccache trusts the compiler's -MMD dependency list instead
    # of running the preprocessor a second time, which on a cold build costs
    # a good part of a compile per file.
    export CCACHE_DEPEND=1
    log "building the arm64 kernel ($ver, key $key) in $entry/build, -j$jobs; log $blog"
    if ! nice -n 5 make -C "$ksrc" O="$entry/build" "${margs[@]}" \
        CC="ccache aarch64-linux-gnu-gcc" -j"$jobs" olddefconfig Image modules \
        >"$blog" 2>&1; then
        tail -n 40 "$blog" >&2
        die "arm64 kernel build failed (log $blog)"
    fi
    local secs=$((SECONDS - start))
    cmp -s "$scratch/.config" "$entry/build/.config" \
        || die "the kernel build changed its .config: config.sh and the build disagree"
    cp "$entry/build/arch/arm64/boot/Image" "$entry/Image"
    cp "$entry/build/.config" "$entry/config"
    aarch64-linux-gnu-objcopy -O binary --only-section=.notes "$entry/build/vmlinux" "$entry/notes"
    [ -s "$entry/notes" ] || die "vmlinux has no .notes section"
    aarch64-linux-gnu-readelf -n "$entry/build/vmlinux" \
        | awk '/Build ID:/ {print $3; exit}' >"$entry/build-id"
    [ -s "$entry/build-id" ] || die "vmlinux has no GNU build-id note"
    cat "$entry/build/include/config/kernel.release" >"$entry/release"
    printf '%s\n' "$secs" >"$entry/build-seconds"
    (cd "$entry" && sha256sum "${ENTRY_FILES[@]}" >sums)
    touch "$entry/.klpctl-complete"
    check_entry "$entry" || die "the arm64 kernel just built in $entry does not check out"
    mkdir -p "$(dirname "$known")"
    printf '%s\n' "$key" >"$known.tmp" && mv "$known.tmp" "$known"
    log "arm64 kernel $(cat "$entry/release") built in ${secs}s (ccache: $(ccache -s 2>/dev/null | awk '/Hits:/ {print $2 " hits"; exit}'))"
}

with_cache_lock selfbuilt-arm64 build_locked
printf '%s\n' "$entry"
