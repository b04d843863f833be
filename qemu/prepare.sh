#!/bin/bash
# Everything the QEMU suite needs before booting, idempotent and cached:
# kernels and headers, test modules, the static klpctl, test keys, bundles,
# the kernel's own livepatch selftests (fetch-selftests.sh, mkselftests.sh),
# and one initramfs per kernel and scenario (main, sigenforce, selftests,
# load).
#
# usage: prepare.sh
# stdout: one line per kernel: "<series> <release>". Progress goes to stderr.
# Environment: KLPCTL_DEVICE = prebuilt device klpctl for the guest.
# Environment: KLPCTL (or KLPCTL_BIN) = path to use a prebuilt static klpctl
# instead of building one with cargo.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Install the host tools here, one apt run at a time: the boots run in
# parallel and must not race each other for the dpkg lock.
need_cmd qemu-system-x86_64 qemu-system-x86
need_pkg qemu-system-x86 seabios ipxe-qemu
need_pkg busybox-static

"$QEMU_DIR/fetch-kernels.sh" >/dev/null
"$QEMU_DIR/build-modules.sh" >/dev/null

# tests/run.sh passes the binary it built as KLPCTL_BIN.
KLPCTL=${KLPCTL:-${KLPCTL_BIN:-}}
if [ -z "$KLPCTL" ]; then
    cargo=${CARGO:-cargo}
    command -v "$cargo" >/dev/null || die "cargo not found: install Rust (rustup) to build klpctl"
    if command -v rustup >/dev/null; then
        rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
            || rustup target add x86_64-unknown-linux-musl >&2
    fi
    log "building klpctl (release, x86_64-unknown-linux-musl)"
    (cd "$REPO_DIR" && "$cargo" build --release --target x86_64-unknown-linux-musl --bin klpctl >&2) \
        || die "cargo build of klpctl failed"
    KLPCTL=$REPO_DIR/target/x86_64-unknown-linux-musl/release/klpctl
fi
export KLPCTL
[ -x "$KLPCTL" ] || die "no klpctl at $KLPCTL"

# The guest runs the device build (no authoring commands: no keygen, pack or
# signing code), as an appliance would; the host packs and signs with the
# full build above.
KLPCTL_DEVICE=${KLPCTL_DEVICE:-}
if [ -z "$KLPCTL_DEVICE" ]; then
    log "building the device klpctl (--no-default-features)"
    (cd "$REPO_DIR" && ${CARGO:-cargo} build --release --target x86_64-unknown-linux-musl --bin klpctl \
        --no-default-features --target-dir target/device >&2) || die "cargo build of the device klpctl failed"
    KLPCTL_DEVICE=$REPO_DIR/target/device/x86_64-unknown-linux-musl/release/klpctl
fi
[ -x "$KLPCTL_DEVICE" ] || die "no device klpctl at $KLPCTL_DEVICE"

while read -r series release; do
    "$QEMU_DIR/mkbundles.sh" "$release" >/dev/null
    "$QEMU_DIR/mkselftests.sh" "$release" >/dev/null
    for scenario in main sigenforce selftests load; do
        "$QEMU_DIR/mkinitramfs.sh" -k "$KLPCTL_DEVICE" -s "$scenario" "$release" >/dev/null
    done
    printf '%s %s\n' "$series" "$release"
done <"$OUT_DIR/kernels/releases"
