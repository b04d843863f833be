#!/bin/bash
# Everything the arm64 tier needs before booting, idempotent and cached: the
# self-built arm64 kernel (kernel.sh), the test modules and the kernel's
# selftest modules cross-built against it, the aarch64 device klpctl, the
# bundles (packed and signed on the host, as for every kernel), and one
# initramfs per scenario (main, sigenforce, selftests, load) with Debian's
# arm64 busybox (userland.sh).
#
# The wrong-kernel cases need a second kernel's modules: the first of the
# Debian kernels qemu/prepare.sh resolves (fetched here when it has not run).
#
# usage: prepare.sh
# stdout: the arm64 release. Progress goes to stderr.
# Environment: KLPCTL (or KLPCTL_BIN) = the host klpctl that packs and signs;
# KLPCTL_DEVICE_ARM64 = a prebuilt aarch64 device klpctl for the guest.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

need_cmd qemu-system-aarch64 qemu-system-arm
# User-mode emulation: tests/qemu_arm64.rs runs the aarch64 klpctl on the host.
need_cmd qemu-aarch64 qemu-user
need_cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
need_pkg libc6-dev-arm64-cross busybox-static

cargo=${CARGO:-cargo}
KLPCTL=${KLPCTL:-${KLPCTL_BIN:-}}
if [ -z "$KLPCTL" ]; then
    log "building klpctl (release, x86_64-unknown-linux-musl)"
    (cd "$REPO_DIR" && "$cargo" build --release --target x86_64-unknown-linux-musl --bin klpctl >&2) \
        || die "cargo build of klpctl failed"
    KLPCTL=$REPO_DIR/target/x86_64-unknown-linux-musl/release/klpctl
fi
export KLPCTL
device=${KLPCTL_DEVICE_ARM64:-}
if [ -z "$device" ]; then
    if command -v rustup >/dev/null; then
        rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-musl \
            || rustup target add aarch64-unknown-linux-musl >&2
    fi
    log "building the aarch64 device klpctl (--no-default-features)"
    (cd "$REPO_DIR" && "$cargo" build --release --target aarch64-unknown-linux-musl --bin klpctl \
        --no-default-features --target-dir target/device >&2) \
        || die "cargo build of the aarch64 device klpctl failed"
    device=$REPO_DIR/target/device/aarch64-unknown-linux-musl/release/klpctl
fi
[ -x "$device" ] || die "no aarch64 device klpctl at $device"

release=$("$QEMU_DIR/arm64/kernel.sh")

# The second kernel for the wrong-kernel bundles.
[ -s "$OUT_DIR/kernels/releases" ] || "$QEMU_DIR/fetch-kernels.sh" >/dev/null
other=$(resolved_releases | head -n 1)
[ -s "$OUT_DIR/build/$other/klp_cumul_v1.ko" ] || "$QEMU_DIR/build-modules.sh" "$other" >/dev/null

"$QEMU_DIR/build-modules.sh" "$release" >/dev/null
"$QEMU_DIR/mkbundles.sh" "$release" >/dev/null
"$QEMU_DIR/mkselftests.sh" "$release" >/dev/null
for scenario in main sigenforce selftests load; do
    "$QEMU_DIR/mkinitramfs.sh" -k "$device" -s "$scenario" "$release" >/dev/null
done
log "arm64: device klpctl $(stat -c %s "$device") bytes ($device)"
printf '%s\n' "$release"
