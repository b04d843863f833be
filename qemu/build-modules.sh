#!/bin/bash
# Build the livepatch test modules for each given kernel release (default: all
# releases fetch-kernels.sh resolved) into target/qemu/build/<release>/.
#
# Kbuild wants the sources inside M=, so they are copied there with their
# timestamps kept; make then rebuilds only what changed. 7.x releases build in
# a trixie chroot instead (build-modules-trixie.sh, cached outside the clone)
# and their modules are copied here. Self-built kernels (qemu/selfbuilt/)
# build against their own build tree, cross-compiled for arm64.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_pkg make gcc libc6-dev
need_cmd modinfo kmod

releases=("$@")
if [ "${#releases[@]}" = 0 ]; then
    mapfile -t releases < <(resolved_releases)
fi

MODULES=(klp_basic klp_cumul_v1 klp_cumul_v2 klp_cumul_v3 klp_stall_target
    klp_stall klp_badcb klp_target klp_modobj klp_big klp_noreg klp_panic)

for arg in "${releases[@]}"; do
    release=$(to_release "$arg")
    bdir=$OUT_DIR/build/$release
    blog=$bdir/build.log
    # A self-built kernel (qemu/selfbuilt/) builds against its own tree,
    # cross-compiled where its architecture is not the host's.
    kind=$release
    is_selfbuilt "$release" && kind=selfbuilt
    case "$kind" in
        selfbuilt)
            mkdir -p "$bdir"
            cp -p "$QEMU_DIR"/modules/Kbuild "$QEMU_DIR"/modules/*.c "$QEMU_DIR"/modules/*.h "$bdir/"
            log "$release: building test modules in $bdir ($(release_arch "$release"), self-built tree)"
            if ! selfbuilt_make "$release" "$bdir" -j"$(nproc)" modules >"$blog" 2>&1; then
                tail -n 40 "$blog" >&2
                die "$release: module build failed (full log: $blog)"
            fi
            ;;
        7.*)
            built=$("$QEMU_DIR/build-modules-trixie.sh" "$release")
            rm -rf "$bdir"
            mkdir -p "$bdir"
            cp -p "$built"/*.ko "$built/build.log" "$bdir/"
            ;;
        *)
            kdir=/usr/src/linux-headers-$release
            [ -f "$kdir/Makefile" ] \
                || die "no headers at $kdir: run qemu/fetch-kernels.sh first"
            mkdir -p "$bdir"
            cp -p "$QEMU_DIR"/modules/Kbuild "$QEMU_DIR"/modules/*.c "$QEMU_DIR"/modules/*.h "$bdir/"
            log "$release: building test modules in $bdir"
            if ! make -C "$kdir" M="$bdir" -j"$(nproc)" modules >"$blog" 2>&1; then
                tail -n 40 "$blog" >&2
                die "$release: module build failed (full log: $blog)"
            fi
            ;;
    esac
    for m in "${MODULES[@]}"; do
        [ -s "$bdir/$m.ko" ] || die "$release: $m.ko was not built (see $blog)"
    done
    # A module built against other headers would be refused by the kernel
    # with a bare ENOEXEC; catch that here instead.
    vm=$(modinfo -F vermagic "$bdir/klp_basic.ko" 2>/dev/null || true)
    case "$vm" in
        "$release "*) ;;
        *) die "$release: klp_basic.ko has vermagic '$vm'" ;;
    esac
    printf '%s\n' "$bdir"
done
