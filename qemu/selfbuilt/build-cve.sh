#!/bin/bash
# The self-built x86_64 kernel of the CVE tier and its live patch, built by
# the kernel's own klp-build, cached under
#   $CACHE_DIR/selfbuilt/x86_64-cve-<key>/
#     bzImage            the vulnerable kernel (CVE-2024-1086 unfixed)
#     config release notes build-id
#     fix.patch          the upstream fix, computed back from the tree
#     livepatch-cve-2024-1086.ko         klp-build's module, as it made it
#     livepatch-cve-2024-1086.signed.ko  the same, signed with the kernel's
#                                        own module-signing key
#     signing_key.x509   that key's certificate (public half)
#     klp_basic.ko       the rig's smallest livepatch (qemu/modules), built
#                        against this kernel: a second patch for the guest
#     times              seconds per step of the cold build
#     SHA256SUMS         every file above, written last but for
#     complete           the marker that the entry is whole
# <key> hashes everything the result depends on: the Debian source version,
# the option files, the script that makes the vulnerable variant, this
# recipe, the rig's files it builds or runs (klp_basic.c, kernel-notes.py)
# and the host compiler. A warm run finds the entry and builds nothing.
# An entry is used only when it is complete and every file matches its
# SHA256SUMS; a damaged one (a file missing, truncated or changed) is
# rebuilt, never used.
#
# The build happens in a tree of its own (klp-build runs in the tree: it
# applies the patch there and reads ./.config), made as a hard-linked copy of
# the shared source from source.sh; every file that changes is replaced, not
# written through. ccache (CCACHE_DIR=$CACHE_DIR/selfbuilt/ccache) makes
# klp-build's own full rebuild cheap when the key changes. The module-signing
# key is made by the kernel build (certs/signing_key.pem) and lives only in
# the cached work tree, never in the repository.
#
# usage: build-cve.sh            build unless cached; print the entry
#        build-cve.sh --key      print the entry's path; never build
#        build-cve.sh --cached   print the entry if it is there and intact,
#                                else exit 1; never build
# stdout: the cache directory. Progress goes to stderr.
# Environment: KLPCTL_JOBS (default: nproc + 2: on a shared machine the
# build runs under nice 5, and a couple of jobs more keep it from starving).
set -euo pipefail
SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$SELF_DIR/../lib.sh"

CVE=CVE-2024-1086
PATCH_NAME=cve-2024-1086
SB=$CACHE_DIR/selfbuilt
jobs=${KLPCTL_JOBS:-$(($(nproc) + 2))}

src=$("$SELF_DIR/source.sh")
srcver=$(cat "$src/.klpctl-debian-version")
# Every file of the rig the result depends on, relative to this directory
# (lib.sh and source.sh only find things: the source is keyed by version).
inputs=(config.common config.x86_64 config.cve config.sh "unfix-${PATCH_NAME}.sh" build-cve.sh
    ../modules/klp_basic.c ../tools/kernel-notes.py)
key=$( {
    printf 'source %s\n' "$srcver"
    for f in "${inputs[@]}"; do
        printf '== %s %s\n' "$f" "$(wc -c <"$SELF_DIR/$f")"
        cat "$SELF_DIR/$f"
    done
    gcc --version | head -n 1
} | sha256sum | cut -c1-16)
out=$SB/x86_64-cve-$key

# intact DIR: a finished entry whose files all match their checksums.
intact() {
    [ -f "$1/complete" ] && [ -s "$1/SHA256SUMS" ] \
        && (cd "$1" && sha256sum --quiet --strict -c SHA256SUMS) >/dev/null 2>&1
}

case ${1:-} in
    --key) printf '%s\n' "$out"; exit 0 ;;
    --cached) intact "$out" || { log "no intact entry at $out"; exit 1; } ;;
    "") ;;
    *) die "usage: build-cve.sh [--key | --cached]" ;;
esac
if intact "$out"; then
    log "cached: $out (source $srcver)"
    printf '%s\n' "$out"
    exit 0
fi
[ ! -e "$out" ] || log "$out is damaged (incomplete, or a file differs from SHA256SUMS): rebuilding it"

build() {
    intact "$out" && return 0
    need_pkg gawk patchutils libxxhash-dev libelf-dev libssl-dev bison flex bc ccache openssl python3
    local work=$SB/work/x86_64-cve t0=$SECONDS t
    local times=()
    mkdir -p "$SB/work"
    rm -rf "$work" "$SB"/.x86_64-cve-*
    log "work tree $work (hard links into $src)"
    cp -al "$src" "$work"
    rm -f "$work/.klpctl-complete"
    # The fixed file, kept aside, then the vulnerable variant in the tree.
    local f=net/netfilter/nf_tables_api.c
    cp "$src/$f" "$work/.fixed.c"
    "$SELF_DIR/unfix-${PATCH_NAME}.sh" "$work"
    local patch=$work/$PATCH_NAME.patch
    set +e
    (cd "$work" && diff -u --label "a/$f" --label "b/$f" "$f" .fixed.c) >"$patch"
    local rc=$?
    set -e
    [ "$rc" = 1 ] || die "no fix computed (diff exit $rc)"
    rm -f "$work/.fixed.c"

    # The kernel's config, in the tree (klp-build reads ./.config).
    KSRC=$work "$SELF_DIR/config.sh" x86_64 "$work" @"$SELF_DIR/config.cve" \
        --set-str LOCALVERSION -klpctl-cve >/dev/null
    times+=("prepare $((SECONDS - t0))")

    # ccache through its compiler links; fixed build stamps so init/version.c
    # hits the cache too.
    export PATH=/usr/lib/ccache:$PATH CCACHE_DIR=$SB/ccache CCACHE_MAXSIZE=2G
    export KBUILD_BUILD_TIMESTAMP="Thu Jan  1 00:00:00 UTC 2026" KBUILD_BUILD_USER=klpctl \
        KBUILD_BUILD_HOST=selfbuilt
    ccache -z >/dev/null 2>&1 || true
    t=$SECONDS
    log "klp-build $PATCH_NAME.patch (cleans and builds the kernel twice, -j$jobs)"
    (cd "$work" && nice -n 5 ./scripts/livepatch/klp-build -j "$jobs" "$PATCH_NAME.patch") >"$work/klp-build.log" 2>&1 \
        || { tail -n 40 "$work/klp-build.log" >&2; die "klp-build failed (log $work/klp-build.log)"; }
    times+=("klp-build $((SECONDS - t))")
    log "klp-build done in $((SECONDS - t))s; ccache: $(ccache -s 2>/dev/null | grep -E '^ *(Hits|Misses):' | tr -s ' ' | tr '\n' ' ')"

    # klp-build builds vmlinux and modules only; the bootable image, with
    # the same flags, so it matches the vmlinux the patch was made against.
    t=$SECONDS
    (cd "$work" && nice -n 5 make -s -j"$jobs" KLP_SYMIDS=1 \
        KCFLAGS="-ffunction-sections -fdata-sections" bzImage) >"$work/bzImage.log" 2>&1 \
        || { tail -n 40 "$work/bzImage.log" >&2; die "bzImage build failed"; }
    times+=("bzImage $((SECONDS - t))")

    # A second live patch for the guest, one klpctl already knows: the
    # rig's klp_basic, built as an external module against this tree.
    local mdir=$work/.klptest-modules
    mkdir -p "$mdir"
    cp "$SELF_DIR/../modules/klp_basic.c" "$mdir/"
    printf 'obj-m += klp_basic.o\n' >"$mdir/Kbuild"
    (cd "$work" && nice -n 5 make -s -j"$jobs" M="$mdir" modules) >"$work/modules.log" 2>&1 \
        || { tail -n 40 "$work/modules.log" >&2; die "klp_basic build failed"; }

    local tmp ko=livepatch-$PATCH_NAME.ko
    tmp=$(mktemp -d "$SB/.x86_64-cve-XXXXXX")
    cp "$work/arch/x86/boot/bzImage" "$work/.config" "$patch" "$work/$ko" "$mdir/klp_basic.ko" "$tmp/"
    mv "$tmp/.config" "$tmp/config"
    mv "$tmp/$PATCH_NAME.patch" "$tmp/fix.patch"
    (cd "$work" && make -s kernelrelease) >"$tmp/release"
    "$work/scripts/sign-file" sha256 "$work/certs/signing_key.pem" "$work/certs/signing_key.x509" \
        "$tmp/$ko" "$tmp/livepatch-$PATCH_NAME.signed.ko"
    cp "$work/certs/signing_key.x509" "$tmp/"
    python3 "$SELF_DIR/../tools/kernel-notes.py" "$tmp/bzImage" "$tmp/notes" "$tmp/build-id" >/dev/null
    printf '%s\n' "$CVE" >"$tmp/cve"
    printf '%s\n' "$srcver" >"$tmp/source-version"
    times+=("total $((SECONDS - t0))")
    printf '%s\n' "${times[@]}" >"$tmp/times"
    local sums
    sums=$(cd "$tmp" && sha256sum -- *)
    printf '%s\n' "$sums" >"$tmp/SHA256SUMS"
    touch "$tmp/complete"
    chmod 0755 "$tmp"
    rm -rf "$out"
    mv "$tmp" "$out"
    log "built in $((SECONDS - t0))s: $out"
}
with_cache_lock selfbuilt-x86_64-cve build
printf '%s\n' "$out"
