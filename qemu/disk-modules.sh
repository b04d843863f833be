#!/bin/bash
# The kernel modules a guest needs to use a virtio disk with ext4, for one
# release: Debian builds virtio_blk, ext4 and their helpers as modules (and,
# on 6.1, virtio_pci too). Takes them from the linux-image-RELEASE-unsigned
# package (the one fetch-kernels.sh unpacks the image from), with every
# dependency that the package's own modules.dep names, decompressed, and
# with a modules.dep for that subset made by `depmod -b`. Cached under
# $CACHE_DIR/disk-modules/RELEASE/ (lib/modules/RELEASE/...), so a second
# run makes no network access. The file "load" there lists the modules in
# an order insmod can load them (each after its dependencies), as paths
# relative to lib/modules/RELEASE: the guest loads them with plain insmod.
#
# usage: disk-modules.sh RELEASE      stdout: the directory holding lib/
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# = 1 ] || die "usage: $0 RELEASE"
release=$(to_release "$1")
[ -n "$release" ] || die "kernel series $1 not resolved: run qemu/fetch-kernels.sh"
# What the reboot scenario needs; modprobe --show-depends adds the rest.
WANT=(virtio_pci virtio_blk crc32c_generic ext4)

out=$CACHE_DIR/disk-modules/$release
if [ -s "$out/lib/modules/$release/modules.dep" ] && grep -q '\.ko$' "$out/load" 2>/dev/null; then
    printf '%s\n' "$out"
    exit 0
fi
need_cmd depmod kmod
need_cmd xz xz-utils

mkdir -p "$CACHE_DIR/disk-modules"
tmp=$(mktemp -d "$CACHE_DIR/disk-modules/.$release.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt-get download drops privileges to _apt.
chmod 0777 "$tmp"
log "$release: downloading linux-image-$release-unsigned for its disk modules"
(cd "$tmp" && apt-get download -q "linux-image-$release-unsigned" >&2) \
    || die "apt-get download linux-image-$release-unsigned failed"
mkdir "$tmp/full" "$tmp/out"
dpkg-deb --fsys-tarfile "$tmp"/linux-image-*.deb \
    | tar -x -C "$tmp/full" --wildcards "./lib/modules/$release/*" \
    || die "cannot unpack the modules of linux-image-$release-unsigned"
src=$tmp/full/lib/modules/$release
# The package ships no modules.dep (the postinst runs depmod): make one.
depmod -b "$tmp/full" "$release" || die "depmod of the full tree failed"

dst=$tmp/out/lib/modules/$release
mkdir -p "$dst"
cp "$src"/modules.order "$src"/modules.builtin "$src"/modules.builtin.modinfo "$dst/" 2>/dev/null || true
: >"$tmp/out/load"
for m in "${WANT[@]}"; do
    # One line per module in load order: "insmod PATH" or "builtin NAME".
    modprobe -d "$tmp/full" -S "$release" --show-depends "$m" >"$tmp/deps" \
        || die "$release: modprobe --show-depends $m failed"
    while read -r kind path _; do
        case $kind in
            builtin) continue ;;
            insmod) ;;
            *) die "$release: unexpected modprobe line: $kind $path" ;;
        esac
        rel=${path#"$src"/}
        plain=${rel%.xz}
        plain=${plain%.zst}
        grep -qxF "$plain" "$tmp/out/load" || printf '%s\n' "$plain" >>"$tmp/out/load"
        mkdir -p "$dst/$(dirname "$plain")"
        case $rel in
            *.xz) xz -dc "$path" >"$dst/$plain" ;;
            *.zst) zstd -qdc "$path" >"$dst/$plain" ;;
            *) cp "$path" "$dst/$plain" ;;
        esac
    done <"$tmp/deps"
done
# modules.order names the compressed files; the subset is plain .ko.
sed -i -e 's/\.ko\.xz$/.ko/' -e 's/\.ko\.zst$/.ko/' "$dst/modules.order" 2>/dev/null || true
depmod -b "$tmp/out" "$release" || die "depmod of the disk modules failed"
log "$release: disk modules: $(cd "$dst" && find . -name '*.ko' | sed 's|.*/||' | sort | tr '\n' ' ')"
rm -rf "$out"
mv "$tmp/out" "$out"
printf '%s\n' "$out"
