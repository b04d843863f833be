#!/bin/bash
# Build the gzip'd newc cpio initramfs for one kernel release and scenario.
#
# usage: mkinitramfs.sh [options] RELEASE
#   -s SCENARIO   guest script to run: main, sigenforce or load (the cases
#                 in guest/cases/, run by guest/cases/run.sh), selftests (the
#                 kernel's own, guest/selftests/run.sh), smoke, demo
#                 (default main)
#   -k KLPCTL     static klpctl binary (default $KLPCTL or
#                 target/x86_64-unknown-linux-musl/release/klpctl)
#   -b DIR        bundles to ship as /klptest/bundles (default
#                 target/qemu/bundles/RELEASE when it exists)
#   -K DIR        *.pub files to trust, installed as /etc/klpctl/keys.d
#                 (default target/qemu/keys/trusted)
#   -o FILE       output (default target/qemu/initramfs/RELEASE-SCENARIO.cpio.gz)
# RELEASE may also be a series name (6.1, 6.12).
#
# Only fixture target modules go in as plain .ko files, except for the smoke
# scenario, which exercises every module with insmod before klpctl exists.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

scenario=main
klpctl=${KLPCTL:-$REPO_DIR/target/x86_64-unknown-linux-musl/release/klpctl}
bundles=
keys=$OUT_DIR/keys/trusted
out=
while getopts s:k:b:K:o: opt; do
    case $opt in
        s) scenario=$OPTARG ;;
        k) klpctl=$OPTARG ;;
        b) bundles=$OPTARG ;;
        K) keys=$OPTARG ;;
        o) out=$OPTARG ;;
        *) die "usage: $0 [-s SCENARIO] [-k KLPCTL] [-b DIR] [-K DIR] [-o FILE] RELEASE" ;;
    esac
done
shift $((OPTIND - 1))
[ $# = 1 ] || die "usage: $0 [-s SCENARIO] [-k KLPCTL] [-b DIR] [-K DIR] [-o FILE] RELEASE"
release=$(to_release "$1")
[ -n "$release" ] || die "kernel series $1 not resolved: run qemu/fetch-kernels.sh"
[ -n "$bundles" ] || bundles=$OUT_DIR/bundles/$release
[ -n "$out" ] || out=$OUT_DIR/initramfs/$release-$scenario.cpio.gz

need_pkg busybox-static
busybox_bin=/bin/busybox
need_cmd readelf binutils
# The guest has no libc: a dynamically linked busybox would not run.
if readelf -l "$busybox_bin" 2>/dev/null | grep -q 'INTERP'; then
    die "$busybox_bin is dynamically linked; install busybox-static"
fi
# The guest's architecture. An arm64 guest gets Debian's arm64 busybox and
# bash (arm64/userland.sh) and helpers built with the cross compiler; the
# host's busybox still lists the applets (the same Debian version) and
# writes the cpio archive.
arch=$(release_arch "$release")
guest_busybox=$busybox_bin
guest_bash=/bin/bash-static
tool_cc=gcc
tool_dir=$OUT_DIR/tools
elf_machine='X86-64'
if [ "$arch" = arm64 ]; then
    userland=$("$QEMU_DIR/arm64/userland.sh")
    guest_busybox=$userland/busybox
    guest_bash=$userland/bash
    need_cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
    need_pkg libc6-dev-arm64-cross
    tool_cc=aarch64-linux-gnu-gcc
    tool_dir=$OUT_DIR/tools/arm64
    elf_machine='AArch64'
fi

kcache=$OUT_DIR/kernels/$release
bdir=$OUT_DIR/build/$release
[ -s "$kcache/notes" ] || die "no kernel cache for $release: run qemu/fetch-kernels.sh"
[ -s "$bdir/klp_target.ko" ] || die "no modules for $release: run qemu/build-modules.sh"
script=$QEMU_DIR/guest/$scenario.sh
case $scenario in
    main | sigenforce | load) script=$QEMU_DIR/guest/cases/run.sh ;;
    selftests) script=$QEMU_DIR/guest/selftests/run.sh ;;
esac
[ -f "$script" ] || die "no guest script ${script#"$REPO_DIR"/}"

root=$(mktemp -d "${TMPDIR:-/tmp}/klptest-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,root,etc/klpctl/keys.d,klptest/modules,klptest/bundles}

install -m 0755 "$guest_busybox" "$root/bin/busybox"
for applet in $("$busybox_bin" --list-full); do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done

install -m 0755 "$QEMU_DIR/guest/init" "$root/init"
install -m 0644 "$QEMU_DIR/guest/lib.sh" "$root/klptest/lib.sh"
install -m 0755 "$script" "$root/klptest/$scenario.sh"
if [ "$script" = "$QEMU_DIR/guest/cases/run.sh" ]; then
    # Every case file goes in; run.sh picks this scenario's from their
    # "# scenarios:" lines.
    mkdir -p "$root/klptest/cases"
    install -m 0644 "$QEMU_DIR"/guest/cases/lib.sh "$QEMU_DIR"/guest/cases/[0-9]*.sh \
        "$root/klptest/cases/"
fi
printf '%s\n' "$scenario" >"$root/klptest/scenario"
printf '%s\n' "$release" >"$root/klptest/release"
cp "$kcache/notes" "$kcache/build-id" "$root/klptest/"

if [ "$scenario" = smoke ]; then
    cp "$bdir"/*.ko "$root/klptest/modules/"
else
    cp "$bdir/klp_target.ko" "$bdir/klp_stall_target.ko" "$root/klptest/modules/"
    [ -x "$klpctl" ] || die "no klpctl binary at $klpctl (cargo build --release --target x86_64-unknown-linux-musl)"
    if readelf -l "$klpctl" 2>/dev/null | grep -q 'INTERP'; then
        die "$klpctl is dynamically linked; the guest needs the static musl build"
    fi
    readelf -h "$klpctl" | grep -q "Machine: *.*$elf_machine" \
        || die "$klpctl is not an $elf_machine executable, which this $arch guest needs"
    install -m 0755 "$klpctl" "$root/usr/bin/klpctl"
    # Tiny static helpers measure klpctl in the guest: peak-rss its peak
    # RSS, exec-time its run time (busybox's time has 10 ms resolution).
    for tool in peak-rss exec-time; do
        bin=$tool_dir/$tool
        if [ ! -x "$bin" ] || [ "$QEMU_DIR/tools/$tool.c" -nt "$bin" ]; then
            need_pkg gcc libc6-dev
            mkdir -p "$tool_dir"
            "$tool_cc" -static -Os -s -Wall -o "$bin.tmp" "$QEMU_DIR/tools/$tool.c" \
                || die "cannot build qemu/tools/$tool.c"
            mv "$bin.tmp" "$bin"
        fi
        install -m 0755 "$bin" "$root/usr/bin/$tool"
    done
    if [ -d "$bundles" ]; then
        cp -r "$bundles"/. "$root/klptest/bundles/"
    fi
    if [ -d "$keys" ]; then
        for k in "$keys"/*.pub; do
            [ -e "$k" ] && install -m 0644 "$k" "$root/etc/klpctl/keys.d/"
        done
    fi
fi

# The load scenario's do-it-yourself baseline (c40_diy_baseline) loads
# klp_basic.ko with plain insmod, next to klpctl applying basic.klp. Only
# that scenario gets the plain livepatch, and in a directory of its own:
# everywhere else a livepatch reaches the kernel only through a signed
# bundle, and no case could load one by mistake.
if [ "$scenario" = load ]; then
    mkdir -p "$root/klptest/diy"
    cp "$bdir/klp_basic.ko" "$root/klptest/diy/"
fi

# The kernel's own livepatch selftests (made by mkselftests.sh), klpctl's
# helpers for them, and bash, which the upstream scripts need.
if [ "$scenario" = selftests ]; then
    st=$OUT_DIR/selftests/$release
    [ -s "$st/plan" ] || die "no selftests for $release: run qemu/mkselftests.sh $release"
    mkdir -p "$root/klptest/st"
    cp -r "$st/scripts" "$st/modules" "$st/bundles" "$st/plan" "$st/livepatches" "$st/source" \
        "$root/klptest/st/"
    install -m 0644 "$QEMU_DIR/guest/selftests/klpctl-loader.sh" "$root/klptest/st/"
    bin=$tool_dir/insmod1
    if [ ! -x "$bin" ] || [ "$QEMU_DIR/tools/insmod1.c" -nt "$bin" ]; then
        need_pkg gcc libc6-dev
        mkdir -p "$tool_dir"
        "$tool_cc" -static -Os -s -Wall -o "$bin.tmp" "$QEMU_DIR/tools/insmod1.c" \
            || die "cannot build qemu/tools/insmod1.c"
        mv "$bin.tmp" "$bin"
    fi
    install -m 0755 "$bin" "$root/usr/bin/insmod1"
    [ "$arch" = arm64 ] || need_pkg bash-static
    rm -f "$root/bin/bash"
    install -m 0755 "$guest_bash" "$root/bin/bash"
fi

mkdir -p "$(dirname "$out")"
# newc with every file owned by root; -R keeps that true even when the host
# tree belongs to another user.
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort \
    | "$busybox_bin" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
log "$release/$scenario: $(du -h "$out" | cut -f1) initramfs at $out"
printf '%s\n' "$out"
