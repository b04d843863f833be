#!/bin/bash
# The README's main job, end to end on this machine: fetch a Debian 12
# kernel, build the klp_basic test livepatch, build klpctl, make a demo
# signing key, pack and sign a bundle on the host, then boot the kernel in
# QEMU and show klpctl applying and removing the patch.
#
# With "arm64" the kernel is the self-built arm64 one (qemu/selfbuilt/, from
# Debian's linux-source-7.x, cross-compiled once and cached), booted on QEMU's
# virt machine, and the guest runs the aarch64 klpctl.
#
# usage: demo.sh [SERIES | arm64]    (default 6.1)
#        demo.sh cve         a real CVE fixed live: qemu/selfbuilt/demo-cve.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ "${1:-}" = cve ] && exec "$QEMU_DIR/selfbuilt/demo-cve.sh"

series=${1:-6.1}
step() { printf '\n==> %s\n' "$*"; }

device_target=x86_64-unknown-linux-musl
if [ "$series" = arm64 ]; then
    step "building the arm64 kernel from Debian's linux-source-7.x (cached after the first run)"
    release=$("$QEMU_DIR/arm64/kernel.sh")
    device_target=aarch64-unknown-linux-musl
else
    step "fetching Debian 12 kernels"
    "$QEMU_DIR/fetch-kernels.sh" >/dev/null
    release=$(to_release "$series")
fi
[ -n "$release" ] || die "no kernel resolved for series $series"

step "building the test livepatch modules for $release"
"$QEMU_DIR/build-modules.sh" "$release" >/dev/null

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs) first"
if command -v rustup >/dev/null; then
    for t in x86_64-unknown-linux-musl "$device_target"; do
        rustup target list --installed | grep -qx "$t" || rustup target add "$t"
    done
fi

step "building klpctl (static, musl)"
(cd "$REPO_DIR" && cargo build --release --target x86_64-unknown-linux-musl --bin klpctl)
klpctl=$REPO_DIR/target/x86_64-unknown-linux-musl/release/klpctl
ls -l "$klpctl"

demo=$OUT_DIR/demo
mkdir -p "$demo/keys.d" "$demo/secret" "$demo/bundles"
if [ ! -s "$demo/secret/demo.sec" ]; then
    step "generating a demo signing key"
    rm -f "$demo/keys.d/demo.pub"
    "$klpctl" keygen -p "$demo/keys.d/demo.pub" -s "$demo/secret/demo.sec" -c "klpctl demo key"
fi

step "packing and signing klp_basic.ko for $release"
bundle=$demo/bundles/klp_basic.klp
rm -f "$bundle"
"$klpctl" pack "$OUT_DIR/build/$release/klp_basic.ko" -o "$bundle" \
    --stream demo --version 1 --kernel-notes "$OUT_DIR/kernels/$release/notes" \
    --description "demo: /proc/cmdline says it is patched" -s "$demo/secret/demo.sec" \
    --cve CVE-0000-0001 --product "pkg:deb/debian/linux-image-${release//+/%2B}"
"$klpctl" info "$bundle"
"$klpctl" verify "$bundle" --keyring "$demo/keys.d"

step "building the initramfs (busybox, klpctl, the bundle, the demo public key)"
step "building the device klpctl for the guest (no authoring commands, $device_target)"
(cd "$REPO_DIR" && cargo build --release --target "$device_target" --bin klpctl \
    --no-default-features --target-dir target/device)
device=$REPO_DIR/target/device/$device_target/release/klpctl
ls -l "$device"

KLPCTL=$device "$QEMU_DIR/mkinitramfs.sh" -s demo -b "$demo/bundles" -K "$demo/keys.d" "$release" >/dev/null

step "booting $release under QEMU (console log: $OUT_DIR/logs/$release-demo.log)"
logf=$OUT_DIR/logs/$release-demo.log
set +e
"$QEMU_DIR/run.sh" -q -s demo -t 300 "$release"
rc=$?
set -e
# The guest's transcript without firmware noise: SeaBIOS leaves escape
# sequences that would reset the terminal and wipe the steps above.
step "in the guest"
tr -d '\r' <"$logf" | sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[a-zA-Z]//g' \
    | sed -n '/^--- case demo$/,/^KLPTEST demo /p' | grep -v -e '^--- case demo$' -e '^KLPTEST '
echo
if [ "$rc" = 0 ] && grep -q '^KLPTEST demo PASS' "$logf"; then
    echo "PASS: klpctl demo on $release"
else
    tr -d '\r' <"$logf" | sed -n '/^KLPTEST [^ ]* FAIL/,/^--- end of kernel log/p' | grep . \
        || tail -n 30 "$logf"
    echo "FAIL: klpctl demo on $release (run.sh exit $rc); see $logf"
    exit 1
fi
