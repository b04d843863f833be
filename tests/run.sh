#!/bin/bash
# The whole test suite, on a fresh Debian 12 machine as root: installs what
# it needs (apt packages, the musl target), then runs the unit tests, the
# host integration tests, the OpenBSD signify interop tests, the format test
# vectors, and the QEMU kernel suite (Debian 12's 6.1 and 6.12, and the
# newest 7.x of trixie-backports, on x86_64; a self-built 7.x on arm64,
# tests/qemu_arm64.rs). Safe to rerun: per-checkout outputs are
# cached under target/, kernels and the 7.x build chroot under
# /var/cache/klpctl-test (qemu/README.md, "Cache").
set -euo pipefail
cd "$(dirname "$0")/.."
. qemu/lib.sh

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs) first"
# Host tools the tests call: signify (interop), time (RSS), openssl (bench),
# python3 (fixtures), QEMU and busybox (kernel rig), compiler for modules,
# jsonschema and rfc3987 for Debian's /usr/bin/python3 (tests/vex/validate.py:
# the OpenVEX schema check; rfc3987 checks the "iri" format and is only a
# Recommends of python3-jsonschema, which need_pkg does not install).
need_pkg signify-openbsd time openssl python3 busybox-static gcc make
need_pkg python3-jsonschema python3-rfc3987
need_pkg qemu-system-x86 seabios ipxe-qemu
# The arm64 tier: QEMU's aarch64 system and user-mode emulators, Debian's cross compiler
# (kernel, modules, guest helpers; it also links the aarch64 klpctl), and what
# a kernel build needs.
need_pkg qemu-system-arm qemu-user gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross
need_pkg bc bison flex libelf-dev libssl-dev ccache
if command -v rustup >/dev/null; then
    for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
        rustup target list --installed | grep -qx "$t" || rustup target add "$t"
    done
fi

# Habits the suite keeps: formatting and clippy, warnings as errors.
if command -v rustup >/dev/null; then
    for c in rustfmt clippy; do
        rustup component list --installed | grep -q "^$c" || rustup component add "$c"
    done
fi
log "cargo fmt --check"
cargo fmt --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy -q --release --all-targets -- -D warnings

log "building the static musl binary"
cargo build --release --target x86_64-unknown-linux-musl
bin=target/x86_64-unknown-linux-musl/release/klpctl
log "full binary: $(stat -c %s "$bin") bytes (hard limit 163840)"
cargo build --release --target x86_64-unknown-linux-musl --no-default-features --target-dir target/device
device=target/device/x86_64-unknown-linux-musl/release/klpctl
log "device binary (--no-default-features): $(stat -c %s "$device") bytes (target 98304, hard limit 114688)"
# The same binaries for aarch64, under the same budgets.
cargo build --release --target aarch64-unknown-linux-musl
cargo build --release --target aarch64-unknown-linux-musl --no-default-features --target-dir target/device
device_arm64=target/device/aarch64-unknown-linux-musl/release/klpctl
full_arm64=$(stat -c %s target/aarch64-unknown-linux-musl/release/klpctl)
dev_arm64=$(stat -c %s "$device_arm64")
log "aarch64: full binary $full_arm64 bytes (hard limit 163840), device binary $dev_arm64 bytes (hard limit 131072)"
[ "$full_arm64" -le 163840 ] || die "the aarch64 full binary is over its hard limit"
[ "$dev_arm64" -le 131072 ] || die "the aarch64 device binary is over its hard limit"

# Kernels, headers, modules, bundles and initramfs images for tests/qemu.rs.
KLPCTL=$PWD/$bin KLPCTL_DEVICE=$PWD/$device qemu/prepare.sh >/dev/null

log "format test vectors"
vectors_out=$(docs/vectors/check.sh "$bin")
printf '%s\n' "$vectors_out"
vectors=$(printf '%s\n' "$vectors_out" | awk '/checked/ {print $2}' | tail -n 1)

log "cargo test (unit, host integration, signify interop, QEMU kernels)"
out=target/test-output.log
set +e
KLPCTL_BIN=$PWD/$bin KLPCTL_DEVICE=$PWD/$device KLPCTL_DEVICE_ARM64=$PWD/$device_arm64 cargo test --release -- --test-threads=2 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
# One closing line over every test binary plus the format vectors.
awk -v v="$vectors" '/^test result:/ { p += $4; f += $6 } END { printf "all: %d passed, %d failed\n", p + v, f }' "$out"
exit "$rc"
