#!/bin/bash
# The arm64 kernel as the rig sees it: builds it (or finds it in the cache,
# qemu/selfbuilt/build-arm64.sh) and makes target/qemu/kernels/<release>/ the
# same shape as a Debian kernel's there (vmlinuz, config, notes, build-id),
# plus "arch" (arm64) and "build" (the build tree modules are built against).
# Also files the kernel's own livepatch selftests of the same source tree in
# $CACHE_DIR/selftests/<release>/, the layout fetch-selftests.sh gives
# Debian's kernels, for mkselftests.sh.
#
# usage: kernel.sh
# stdout: the release (uname -r). Progress goes to stderr.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

entry=$("$QEMU_DIR/selfbuilt/build-arm64.sh")
release=$(cat "$entry/release")
[ -n "$release" ] || die "no release in $entry"
log "arm64 kernel $release, built in $(cat "$entry/build-seconds")s when its cache entry was made ($entry)"

kdir=$OUT_DIR/kernels/$release
rm -rf "$kdir.new"
mkdir -p "$kdir.new"
ln -s "$entry/Image" "$kdir.new/vmlinuz"
for f in config notes build-id build; do
    ln -s "$entry/$f" "$kdir.new/$f"
done
printf 'arm64\n' >"$kdir.new/arch"
rm -rf "$kdir"
mv "$kdir.new" "$kdir"

# The selftests of the tree the kernel was built from.
st=$CACHE_DIR/selftests/$release
file_selftests() {
    [ -f "$st/complete" ] && return 0
    local ksrc new
    ksrc=$("$QEMU_DIR/selfbuilt/source.sh")
    rm -rf "$st.new"
    new=$st.new
    mkdir -p "$new/scripts" "$new/modules"
    cp -p "$ksrc"/tools/testing/selftests/livepatch/*.sh "$new/scripts/"
    cp -p "$ksrc"/tools/testing/selftests/livepatch/test_modules/*.c "$new/modules/"
    printf '%s\n' "$(cat "$ksrc/.klpctl-debian-version")" >"$new/version"
    : >"$new/complete"
    rm -rf "$st"
    mv "$new" "$st"
    log "$release: livepatch selftests filed in $st"
}
with_cache_lock "selftests-$release" file_selftests
printf '%s\n' "$release"
