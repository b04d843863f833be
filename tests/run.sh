#!/bin/bash
# The whole test suite, on a fresh Debian 12 machine as root: installs what
# it needs (apt packages, the musl target), then runs the unit tests, the
# host integration tests, the OpenBSD signify interop tests, the format test
# vectors, and the QEMU kernel suite (Debian 12's 6.1 and 6.12, and the
# newest 7.x of trixie-backports), the arm64 tier
# (a self-built 7.x on QEMU's virt machine: tests/qemu_arm64.rs) and the
# Ansible fleet tier (tests/fleet.rs, qemu/fleet/). Safe to rerun:
# per-checkout outputs are cached under target/, kernels, the 7.x build
# chroot, the self-built kernels and the fleet's virtualenv under
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
# The self-built kernel and klp-build (qemu/selfbuilt/build-cve.sh).
need_pkg gawk patchutils libxxhash-dev libelf-dev libssl-dev bison flex bc ccache
# The arm64 tier: QEMU's aarch64 system and user-mode emulators, Debian's cross compiler
# (kernel, modules, guest helpers; it also links the aarch64 klpctl).
need_pkg qemu-system-arm qemu-user gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross
# The toolchain rust-toolchain.toml pins (the sizes below are budgeted for
# it), with the components and targets this suite needs.
if command -v rustup >/dev/null; then
    pin=$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)
    have=$(rustup component list --toolchain "$pin" --installed 2>/dev/null || true)
    for c in rustfmt clippy rust-std-x86_64-unknown-linux-musl rust-std-aarch64-unknown-linux-musl; do
        if ! grep -q "^$c" <<<"$have"; then
            rustup toolchain install "$pin" --profile minimal \
                -c rustfmt -c clippy -t x86_64-unknown-linux-musl -t aarch64-unknown-linux-musl
            break
        fi
    done
fi

log "cargo fmt --check"
cargo fmt --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy -q --release --all-targets -- -D warnings

log "building the static musl binary"
cargo build --release --target x86_64-unknown-linux-musl
bin=target/x86_64-unknown-linux-musl/release/klpctl
cargo build --release --target x86_64-unknown-linux-musl --no-default-features --target-dir target/device
device=target/device/x86_64-unknown-linux-musl/release/klpctl
# The size budgets (docs/performance.md): the suite fails above them.
# within_budget WHAT FILE LIMIT
within_budget() {
    local size
    size=$(stat -c %s "$2")
    log "$1 binary: $size bytes (hard limit $3)"
    [ "$size" -le "$3" ] || { echo "FAIL: the $1 binary is $size bytes, over its limit of $3" >&2; return 1; }
}
# The same binaries for aarch64, under the same budgets.
cargo build --release --target aarch64-unknown-linux-musl
cargo build --release --target aarch64-unknown-linux-musl --no-default-features --target-dir target/device
device_arm64=target/device/aarch64-unknown-linux-musl/release/klpctl
sizes_ok=true
within_budget full "$bin" 163840 || sizes_ok=false
within_budget device "$device" 131072 || sizes_ok=false
within_budget "aarch64 full" target/aarch64-unknown-linux-musl/release/klpctl 163840 || sizes_ok=false
within_budget "aarch64 device" "$device_arm64" 131072 || sizes_ok=false
$sizes_ok || exit 1

# Kernels, headers, modules, bundles and initramfs images for tests/qemu.rs.
KLPCTL=$PWD/$bin KLPCTL_DEVICE=$PWD/$device qemu/prepare.sh >/dev/null

log "format test vectors"
vectors_out=$(docs/vectors/check.sh "$bin")
printf '%s\n' "$vectors_out"
vectors=$(printf '%s\n' "$vectors_out" | awk '/checked/ {print $2}' | tail -n 1)

log "cargo test (unit, host integration, signify interop, QEMU kernels)"
out=target/test-output.log
set +e
# --no-fail-fast: a failing test binary does not keep the later ones (the
# QEMU tiers among them) from running, so the closing count covers them all.
KLPCTL_BIN=$PWD/$bin KLPCTL_DEVICE=$PWD/$device KLPCTL_DEVICE_ARM64=$PWD/$device_arm64 cargo test --release --no-fail-fast -- --test-threads=2 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
# One closing line over every test binary plus the format vectors.
awk -v v="$vectors" '/^test result:/ { p += $4; f += $6 } END { printf "all: %d passed, %d failed\n", p + v, f }' "$out"
exit "$rc"
