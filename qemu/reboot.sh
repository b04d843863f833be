#!/bin/bash
# The crash-loop guard across real reboots: boots one persistent disk image
# (ext4 on virtio, holding klpctl's --state-dir and bundle directory) again
# and again, each boot a separate QEMU run, and reads each boot's verdict
# from its serial console. The guest runs dist/sysvinit/klpctl, the shipped
# init script, to apply at boot and to confirm at a clean shutdown.
#
# usage: reboot.sh [-q] [-n N] [-t TIMEOUT_S] [RELEASE [NEXT_RELEASE]]
#   RELEASE (default 6.1) boots every step but the last; NEXT_RELEASE
#   (default 6.12) the last, after the guest installed bundles for it.
#   Needs qemu/prepare.sh first (modules, bundles, the device klpctl).
#   -q: no console on stdout. Logs: target/qemu/logs/reboot-NN-STEP.log.
#   -n N: only the first N boots (to debug one step).
# stdout: "KLPTEST-REBOOT-PLAN step..." first, then one line per boot:
#   KLPTEST-REBOOT <n> <step> <release> expect=<how> got=<how> PASS|FAIL <s>s [why]
# where how is clean (the guest's checks passed, then its init script's
# stop and a poweroff), panic (checks passed, then a kernel panic) or
# powercut (checks passed, then a power cut without stop). Exit status 0
# when every boot ended as expected.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

limit=${KLPTEST_TIMEOUT:-300}
quiet=0
max=0
while getopts t:qn: opt; do
    case $opt in
        t) limit=$OPTARG ;;
        q) quiet=1 ;;
        n) max=$OPTARG ;;
        *) die "usage: $0 [-q] [-n N] [-t TIMEOUT_S] [RELEASE [NEXT_RELEASE]]" ;;
    esac
done
shift $((OPTIND - 1))
rel=$(to_release "${1:-6.1}")
next=$(to_release "${2:-6.12}")
[ -n "$rel" ] && [ -n "$next" ] || die "kernels not resolved: run qemu/prepare.sh"
[ "$rel" != "$next" ] || die "the next kernel must differ from the first"
device=${KLPCTL_DEVICE:-$REPO_DIR/target/device/x86_64-unknown-linux-musl/release/klpctl}
[ -x "$device" ] || die "no device klpctl at $device: run qemu/prepare.sh"
need_cmd qemu-system-x86_64 qemu-system-x86
need_cmd mkfs.ext4 e2fsprogs

# The boots: step, release, extra kernel arguments, how it must end.
STEPS=(
    "b1_apply $rel - clean"
    "b2_panic $rel - panic"
    "b3_quarantined $rel - clean"
    "b4_clean $rel - powercut"
    "b5_enable0 $rel klpctl.enable=0 clean"
    "b6_skip $rel klpctl.skip=klp_basic clean"
    "b7_reapply $rel - clean"
    "b8_next_kernel $next - clean"
)

work=$OUT_DIR/reboot
mkdir -p "$work" "$OUT_DIR/logs"

# One initramfs per kernel: the usual one for scenario "reboot" (busybox,
# the device klpctl, keys, bundles, guest/reboot.sh), plus a second cpio
# archive, which the kernel unpacks over the first: the shipped init
# script, the disk modules, and for the first kernel the bundles to install
# for the next.
initrd() {
    local r=$1 other=$2 base extra root mods
    base=$("$QEMU_DIR/mkinitramfs.sh" -k "$device" -s reboot -o "$work/$r-base.cpio.gz" "$r")
    mods=$("$QEMU_DIR/disk-modules.sh" "$r")
    root=$(mktemp -d "$work/.root.XXXXXX")
    mkdir -p "$root/etc/init.d" "$root/etc/default" "$root/usr/sbin" "$root/klptest/next" "$root/lib"
    install -m 0755 "$REPO_DIR/dist/sysvinit/klpctl" "$root/etc/init.d/klpctl"
    ln -s /usr/bin/klpctl "$root/usr/sbin/klpctl"
    cp -r "$mods/lib/modules" "$root/lib/"
    cp "$mods/load" "$root/klptest/disk-modules"
    cp "$OUT_DIR/bundles/$r/rebootnext/"*.klp "$root/klptest/next/"
    printf '%s\n' "$other" >"$root/klptest/next-release"
    # install names a bundle that names a build-id
    # NAME@RELEASE@BUILDID@vVERSION.klp.
    cp "$OUT_DIR/kernels/$other/build-id" "$root/klptest/next-build-id"
    cp "$OUT_DIR/kernels/$r/build-id" "$root/klptest/build-id"
    extra=$work/$r-extra.cpio.gz
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort \
        | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$extra"
    rm -rf "$root"
    cat "$base" "$extra" >"$work/$r.cpio.gz"
}
initrd "$rel" "$next"
initrd "$next" "$rel"

# The disk: the bundle directory as a device ships it, an empty state.
stage=$(mktemp -d "$work/.disk.XXXXXX")
mkdir -p "$stage/klpctl/bundles"
cp "$OUT_DIR/bundles/$rel/rebootdir/"*.klp "$stage/klpctl/bundles/"
rm -f "$work/disk.img"
mkfs.ext4 -q -F -L klpstate -d "$stage" "$work/disk.img" 64M
rm -rf "$stage"

# verdict LOG: how the boot ended, from its console.
verdict() {
    local log=$1
    if grep -q 'Kernel panic - not syncing' "$log"; then
        echo panic
    elif grep -q '^KLPTEST-DONE' "$log"; then
        echo clean
    elif grep -q '^KLPTEST-POWERCUT' "$log"; then
        echo powercut
    else
        echo none
    fi
}

echo "KLPTEST-REBOOT-PLAN $(printf '%s\n' "${STEPS[@]}" | awk '{print $1}' | tr '\n' ' ' | sed 's/ $//')"
failed=0
n=0
total_start=$(date +%s.%N)
for s in "${STEPS[@]}"; do
    read -r step r args expect <<<"$s"
    [ "$args" = - ] && args=
    [ "$max" = 0 ] || [ "$n" -lt "$max" ] || break
    n=$((n + 1))
    log=$OUT_DIR/logs/reboot-$(printf %02d "$n")-$step.log
    log "boot $n: $step on $r${args:+ ($args)}, expecting $expect; log $log"
    start=$(date +%s.%N)
    set +e
    # 2 vCPUs and the TCG mode qemu/smp-modes gives this kernel's series
    # (scenario "reboot" matches the '*' rows), as for every other guest.
    series=$(awk -v rel="$r" '$2 == rel {print $1; exit}' "$OUT_DIR/kernels/releases")
    read -r vcpus accel _ smp_why < <(awk -v s="${series:-?}" '
        /^#/ || NF < 6 { next }
        ($1 == s || $1 == "*") && ($2 == "reboot" || $2 == "*") { print $3, $4, $5, $6; exit }' \
        "$QEMU_DIR/smp-modes")
    [ "${vcpus:-0}" -ge 2 ] || die "no qemu/smp-modes row with 2+ vCPUs for $r"
    timeout --kill-after=10 "$limit" qemu-system-x86_64 \
        -accel "$accel" -m 512 -smp "$vcpus" -nographic -no-reboot -nic none \
        -drive "file=$work/disk.img,if=virtio,format=raw" \
        -kernel "$OUT_DIR/kernels/$r/vmlinuz" -initrd "$work/$r.cpio.gz" \
        -append "console=ttyS0 panic=-1 loglevel=4 no_timer_check klptest.vcpus=$vcpus klptest.accel=$accel klptest.smp_why=$smp_why klptest.step=$step $args" \
        </dev/null >"$log" 2>&1
    rc=$?
    set -e
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    [ "$quiet" = 1 ] || cat "$log"
    got=$(verdict "$log")
    why=
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        got=timeout
        why="host timeout after ${limit}s"
    elif [ "$rc" != 0 ]; then
        why="qemu exited $rc"
    fi
    grep -q "^KLPTEST $step PASS" "$log" || why="${why:+$why; }no 'KLPTEST $step PASS'"
    fails=$(grep '^KLPTEST [^ ]* FAIL' "$log" | head -n 3 | tr '\n' ';' || true)
    [ -z "$fails" ] || why="${why:+$why; }$fails"
    grep -q "KLPTEST-BOOT release=$r " "$log" || why="${why:+$why; }did not boot $r"
    grep -q '^KLPTEST env PASS' "$log" || why="${why:+$why; }env check did not pass"
    [ "$got" = "$expect" ] || why="${why:+$why; }ended $got"
    if [ -z "$why" ]; then
        echo "KLPTEST-REBOOT $n $step $r expect=$expect got=$got PASS ${secs}s"
    else
        failed=$((failed + 1))
        echo "KLPTEST-REBOOT $n $step $r expect=$expect got=$got FAIL ${secs}s $why"
        [ "$quiet" = 0 ] || tail -n 40 "$log" | sed 's/^/    /' >&2
    fi
done
total=$(awk -v a="$total_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
echo "KLPTEST-REBOOT-DONE boots=$n failed=$failed wall=${total}s"
[ "$failed" = 0 ]
