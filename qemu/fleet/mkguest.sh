#!/bin/bash
# The initramfs of a fleet guest for one kernel release: busybox, the e1000
# module from Debian's linux-image-RELEASE-unsigned (cached under
# $CACHE_DIR/net-modules/RELEASE), Debian's dropbear with the libraries it
# links, the controller's SSH key as root's authorized key, the trusted
# test keys in /etc/klpctl/keys.d, and the fixture target modules. klpctl
# itself is not in it: the playbook copies the binary over SSH, as it would
# to a real machine.
#
# usage: mkguest.sh RELEASE AUTHORIZED_KEY.pub OUT.cpio.gz
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

[ $# = 3 ] || die "usage: $0 RELEASE AUTHORIZED_KEY.pub OUT.cpio.gz"
release=$(to_release "$1")
pubkey=$2
out=$3
need_pkg busybox-static dropbear-bin
need_cmd xz xz-utils
need_cmd zstd zstd

# e1000: one module with no dependencies, QEMU's default NIC model.
net=$CACHE_DIR/net-modules/$release
fetch_e1000() {
    [ -s "$net/e1000.ko" ] && return 0
    local tmp
    mkdir -p "$CACHE_DIR/net-modules"
    tmp=$(mktemp -d "$CACHE_DIR/net-modules/.$release.XXXXXX")
    chmod 0777 "$tmp" # apt-get download drops privileges to _apt
    log "$release: downloading linux-image-$release-unsigned for e1000.ko"
    (cd "$tmp" && apt-get download -q "linux-image-$release-unsigned" >&2) \
        || { rm -rf "$tmp"; die "apt-get download linux-image-$release-unsigned failed"; }
    mkdir "$tmp/x"
    dpkg-deb --fsys-tarfile "$tmp"/linux-image-*.deb \
        | tar -x -C "$tmp/x" --wildcards "./lib/modules/$release/kernel/drivers/net/ethernet/intel/e1000/*" \
        || { rm -rf "$tmp"; die "no e1000 in linux-image-$release-unsigned"; }
    local ko
    ko=$(find "$tmp/x" -name 'e1000.ko*' | head -n 1)
    mkdir -p "$tmp/out"
    case $ko in
        *.xz) xz -dc "$ko" >"$tmp/out/e1000.ko" ;;
        *.zst) zstd -qdc "$ko" >"$tmp/out/e1000.ko" ;;
        *) cp "$ko" "$tmp/out/e1000.ko" ;;
    esac
    rm -rf "$net"
    mv "$tmp/out" "$net"
    rm -rf "$tmp"
}
with_cache_lock "net-modules-$release" fetch_e1000

bdir=$OUT_DIR/build/$release
[ -s "$bdir/klp_target.ko" ] || die "no modules for $release: run qemu/build-modules.sh"

root=$(mktemp -d "${TMPDIR:-/tmp}/klpfleet-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,etc/dropbear,etc/klpctl/keys.d} \
    "$root"/{lib/modules,lib64,lib/x86_64-linux-gnu,root/.ssh,klptest/modules}
install -m 0755 /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
install -m 0755 "$QEMU_DIR/fleet/guest-init" "$root/init"
install -m 0644 "$net/e1000.ko" "$root/lib/modules/e1000.ko"
cp "$bdir/klp_target.ko" "$root/klptest/modules/"

# dropbear is dynamically linked: its libraries and the ELF interpreter.
# libgmp is loaded by libtomcrypt/libtommath, so take ldd's whole closure.
install -m 0755 /usr/sbin/dropbear "$root/usr/sbin/dropbear"
for lib in $(ldd /usr/sbin/dropbear | awk '/=>/ {print $3} !/=>/ && $1 ~ /^\// {print $1}'); do
    cp -L "$lib" "$root$lib"
done
# Ansible's ssh runs commands through the user's shell from /etc/passwd.
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf '/bin/sh\n' >"$root/etc/shells"
printf 'klpfleet\n' >"$root/etc/hostname"
dropbearkey -t ed25519 -f "$root/etc/dropbear/dropbear_ed25519_host_key" >/dev/null 2>&1 \
    || die "dropbearkey failed"
install -m 0600 "$pubkey" "$root/root/.ssh/authorized_keys"
chmod 0700 "$root/root" "$root/root/.ssh"
for k in "$OUT_DIR"/keys/trusted/*.pub; do
    install -m 0644 "$k" "$root/etc/klpctl/keys.d/"
done

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort \
    | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
log "$release: fleet guest initramfs $(du -h "$out" | cut -f1) at $out"
