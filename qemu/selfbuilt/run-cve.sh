#!/bin/bash
# The CVE tier, end to end on the host: the self-built vulnerable kernel and
# klp-build's live patch (build-cve.sh, cached), two bundles packed and
# signed with the rig's test key, the reproducer, one initramfs, and one boot
# per scenario (guest-cve.sh):
#   cve       plain boot; steps 1-6
#   lockdown  module.sig_enforce=1 lockdown=integrity
# Console logs: target/qemu/logs/selfbuilt-<scenario>.log. Each boot ends
# with the guest's KLPTEST-DONE marker; the markers are for
# tests/qemu_selfbuilt.rs, which requires them.
#
# usage: run-cve.sh [-q] [SCENARIO...]     (default: cve lockdown)
#   -q  do not copy the console to stdout
# Environment: KLPCTL (full build: pack), KLPCTL_DEVICE (device build: the
# guest's klpctl); built with cargo when unset. KLPCTL_SELFBUILT_LOCKED=1:
# the caller holds $OUT_DIR/.selfbuilt.lock (see below).
# Exit status: 0 when every boot printed KLPTEST-DONE, 1 otherwise.
set -euo pipefail
SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$SELF_DIR/../lib.sh"

# One run at a time in a clone: runs share $OUT_DIR/selfbuilt and the logs
# (the demo beside the test suite, two terminals). A caller that holds this
# lock itself, to read the logs afterwards, sets KLPCTL_SELFBUILT_LOCKED=1.
if [ "${KLPCTL_SELFBUILT_LOCKED:-}" != 1 ]; then
    mkdir -p "$OUT_DIR"
    exec 8>"$OUT_DIR/.selfbuilt.lock"
    if ! flock -n 8; then
        log "waiting for $OUT_DIR/.selfbuilt.lock (another run of this tier in this clone)"
        flock 8
    fi
fi

quiet=0
if [ "${1:-}" = -q ]; then quiet=1; shift; fi
scenarios=("$@")
[ "${#scenarios[@]}" -gt 0 ] || scenarios=(cve lockdown)
t0=$SECONDS

need_pkg busybox-static gcc libc6-dev python3 openssl qemu-system-x86 seabios ipxe-qemu

kdir=$("$SELF_DIR/build-cve.sh")
t_build=$((SECONDS - t0))
release=$(cat "$kdir/release")

klpctl=${KLPCTL:-${KLPCTL_BIN:-}}
if [ -z "$klpctl" ]; then
    (cd "$REPO_DIR" && cargo build -q --release --target x86_64-unknown-linux-musl --bin klpctl >&2)
    klpctl=$REPO_DIR/target/x86_64-unknown-linux-musl/release/klpctl
fi
device=${KLPCTL_DEVICE:-}
if [ -z "$device" ]; then
    (cd "$REPO_DIR" && cargo build -q --release --target x86_64-unknown-linux-musl --bin klpctl \
        --no-default-features --target-dir target/device >&2)
    device=$REPO_DIR/target/device/x86_64-unknown-linux-musl/release/klpctl
fi

# The rig's test key (qemu/mkbundles.sh makes the same one on first use).
keys=$OUT_DIR/keys
mkdir -p "$keys/trusted" "$keys/secret"
if [ ! -s "$keys/secret/klptest.sec" ]; then
    rm -f "$keys/trusted/klptest.pub"
    "$klpctl" keygen -p "$keys/trusted/klptest.pub" -s "$keys/secret/klptest.sec" \
        -c "klpctl test key" >&2
fi

# Bundles of klp-build's module: as the kernel's key signed it, and as
# klp-build made it. The bundle signature (klpctl's) is the same kind on
# both; only the module signature (the kernel's) differs.
work=$OUT_DIR/selfbuilt
rm -rf "$work"
mkdir -p "$work/bundles"
product="pkg:generic/linux-kernel@$release"
pack() { # MODULE BUNDLE [--replace]
    "$klpctl" pack "$1" -o "$2" --stream cve-2024-1086 --version 1 \
        --kernel-notes "$kdir/notes" ${3:+"$3"} --cve "$(cat "$kdir/cve")" --product "$product" \
        --description "CVE-2024-1086: nft_verdict_init() refuses verdict codes that are not exact (upstream fix, built by klp-build)" \
        -s "$keys/secret/klptest.sec" >&2
}
pack "$kdir/livepatch-cve-2024-1086.signed.ko" "$work/bundles/cve-2024-1086.klp" --replace
pack "$kdir/livepatch-cve-2024-1086.ko" "$work/bundles/cve-2024-1086-unsigned.klp" --replace
# Wrongly signed (case lockdown_wrongly_signed): the kernel's signature with
# one byte of its RSA value changed, and a well-formed signature by a key
# the kernel does not know, made here the way scripts/sign-file does (a
# detached PKCS#7 of the module, then the module_signature trailer).
python3 - "$kdir/livepatch-cve-2024-1086.signed.ko" "$work/badsig.ko" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
magic = b"~Module signature appended~\n"
assert b.endswith(magic), "the signed module has no signature trailer"
b[-len(magic) - 12 - 16] ^= 0xff  # inside the signature value, the blob's last field
open(sys.argv[2], "wb").write(b)
PY
openssl req -new -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=not the kernel's key" \
    -keyout "$work/other.key" -out "$work/other.crt" 2>/dev/null
openssl cms -sign -binary -noattr -nocerts -nosmimecap -md sha256 -signer "$work/other.crt" \
    -inkey "$work/other.key" -in "$kdir/livepatch-cve-2024-1086.ko" -outform DER -out "$work/other.p7s"
python3 - "$kdir/livepatch-cve-2024-1086.ko" "$work/other.p7s" "$work/otherkey.ko" <<'PY'
import struct, sys
mod, sig = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
# algo, hash, id_type (2: PKCS#7), signer_len, key_id_len, pad[3], sig_len (big-endian)
trailer = struct.pack(">BBBBB3xI", 0, 0, 2, 0, 0, len(sig)) + b"~Module signature appended~\n"
open(sys.argv[3], "wb").write(mod + sig + trailer)
PY
rm -f "$work/other.key"
pack "$work/badsig.ko" "$work/bundles/cve-2024-1086-badsig.klp" --replace
pack "$work/otherkey.ko" "$work/bundles/cve-2024-1086-otherkey.klp" --replace
# The module with its .modinfo name= changed and nothing else: the kernel
# names a module, and its live patch, after the struct module in
# .gnu.linkonce.this_module, not after name=, so klpctl refuses it (the
# same check runs again in apply, before the kernel sees the module).
python3 - "$kdir/livepatch-cve-2024-1086.ko" "$work/renamed.ko" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
old, new = b"\0name=livepatch_cve_2024_1086\0", b"\0name=livepatch_cve_2024_1087\0"
assert b.count(old) == 1, "name= not found once in the module"
open(sys.argv[2], "wb").write(b.replace(old, new))
PY
if pack "$work/renamed.ko" "$work/renamed.klp" --replace 2>"$work/renamed.err"; then
    die "klpctl pack accepted a module whose name= is not its struct module's name"
fi
grep -q "differs from the name in its struct module" "$work/renamed.err" \
    || die "klpctl pack refused the renamed module for another reason: $(cat "$work/renamed.err")"
# What a vendor who missed that klp-build replaces by default would ship:
# the same module, packed without --replace (case cve_replace_unsaid).
pack "$kdir/livepatch-cve-2024-1086.signed.ko" "$work/bundles/cve-2024-1086-noreplace.klp"
# The patch it then replaces: the rig's klp_basic, built for this kernel.
"$klpctl" pack "$kdir/klp_basic.ko" -o "$work/bundles/basic.klp" --stream basic --version 1 \
    --kernel-notes "$kdir/notes" --description "klp_basic for the self-built kernel" \
    -s "$keys/secret/klptest.sec" >&2

repro=$work/repro-cve-2024-1086
gcc -static -Os -s -Wall -Wextra -o "$repro" "$SELF_DIR/repro-cve-2024-1086.c"

# The initramfs: busybox, the rig's init and helpers, this tier's guest
# script, the device klpctl, the reproducer, the bundles and the trusted key.
root=$(mktemp -d "${TMPDIR:-/tmp}/klpcve-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,root,etc/klpctl/keys.d,klptest/cases,klptest/bundles}
install -m 0755 /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
install -m 0755 "$QEMU_DIR/guest/init" "$root/init"
install -m 0644 "$QEMU_DIR/guest/lib.sh" "$root/klptest/lib.sh"
install -m 0644 "$QEMU_DIR/guest/cases/lib.sh" "$root/klptest/cases/lib.sh"
install -m 0755 "$device" "$root/usr/bin/klpctl"
install -m 0755 "$repro" "$root/usr/bin/repro-cve-2024-1086"
cp "$work/bundles/"*.klp "$root/klptest/bundles/"
install -m 0644 "$keys/trusted/klptest.pub" "$root/etc/klpctl/keys.d/"
cp "$kdir/notes" "$kdir/build-id" "$root/klptest/"
printf '%s\n' "$release" >"$root/klptest/release"

logdir=$OUT_DIR/logs
mkdir -p "$logdir"
rc=0
for scenario in "${scenarios[@]}"; do
    case $scenario in
        cve) args="" ;;
        lockdown) args="module.sig_enforce=1 lockdown=integrity" ;;
        *) die "unknown scenario $scenario (cve, lockdown)" ;;
    esac
    install -m 0755 "$SELF_DIR/guest-cve.sh" "$root/klptest/$scenario.sh"
    printf '%s\n' "$scenario" >"$root/klptest/scenario"
    initrd=$work/$scenario.cpio.gz
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort \
        | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$initrd"
    rm -f "$root/klptest/$scenario.sh"
    logf=$logdir/selfbuilt-$scenario.log
    append="console=ttyS0 panic=-1 loglevel=4 no_timer_check klptest.vcpus=2 klptest.accel=tcg"
    append="$append klptest.smp_why=selfbuilt $args"
    log "booting $release ($scenario): $append"
    tb=$SECONDS
    # A tinyconfig kernel has no ACPI, so the guest's poweroff halts
    # instead of ending QEMU: once the guest printed its final marker, the
    # host ends the VM itself (this QEMU only, by its pid).
    qemu-system-x86_64 -accel tcg -m 512 -smp 2 -nographic -no-reboot -nic none \
        -kernel "$kdir/bzImage" -initrd "$initrd" -append "$append" </dev/null >"$logf" 2>&1 &
    qpid=$!
    [ "$quiet" = 1 ] || tail -f --pid="$qpid" "$logf" &
    while kill -0 "$qpid" 2>/dev/null; do
        if grep -q '^KLPTEST-DONE' "$logf"; then
            sleep 1
            kill "$qpid" 2>/dev/null || true
            break
        fi
        if [ $((SECONDS - tb)) -ge 300 ]; then
            log "$scenario: host timeout after 300s"
            kill "$qpid" 2>/dev/null || true
            rc=1
            break
        fi
        sleep 0.2
    done
    wait "$qpid" 2>/dev/null || true
    pass=$(grep -c '^KLPTEST [^ ]* PASS' "$logf" || true)
    fail=$(grep -c '^KLPTEST [^ ]* FAIL' "$logf" || true)
    log "$scenario: $((SECONDS - tb))s, $pass passed, $fail failed (log $logf)"
    grep -q '^KLPTEST-DONE' <(tr -d '\r' <"$logf") || { log "$scenario: no KLPTEST-DONE marker"; rc=1; }
done
log "tier: ${t_build}s to the kernel and patch ($(tr '\n' ' ' <"$kdir/times")), $((SECONDS - t0))s in all"
exit "$rc"
