#!/bin/bash
# Boot one kernel with one scenario's initramfs under QEMU (TCG) and save the
# serial console to target/qemu/logs/<release>-<scenario>.log.
#
# usage: run.sh [-s SCENARIO] [-i INITRD] [-t TIMEOUT_S] [-q] RELEASE [KERNEL_ARG...]
#   RELEASE may be a series name (6.1, 6.12, 7.x). The console is also copied to
#   stdout unless -q. Exit status: 0 when the guest printed KLPTEST-DONE and
#   powered off, 124 on host timeout, 1 otherwise.
# Environment: KLPTEST_CASES="c05_disable c07_downgrade" (spaces or commas)
#   runs only those cases of the scenario, passed to the guest as
#   klptest.cases=c05_disable,c07_downgrade. Each must be a case file of
#   guest/cases/ in this scenario; the guest checks the same again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

scenario=main
initrd=
limit=${KLPTEST_TIMEOUT:-600}
quiet=0
while getopts s:i:t:q opt; do
    case $opt in
        s) scenario=$OPTARG ;;
        i) initrd=$OPTARG ;;
        t) limit=$OPTARG ;;
        q) quiet=1 ;;
        *) die "usage: $0 [-s SCENARIO] [-i INITRD] [-t TIMEOUT_S] [-q] RELEASE [KERNEL_ARG...]" ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || die "usage: $0 [-s SCENARIO] [-i INITRD] [-t TIMEOUT_S] [-q] RELEASE [KERNEL_ARG...]"
release=$(to_release "$1")
shift
[ -n "$release" ] || die "kernel series not resolved: run qemu/fetch-kernels.sh"
kernel=$OUT_DIR/kernels/$release/vmlinuz
[ -n "$initrd" ] || initrd=$OUT_DIR/initramfs/$release-$scenario.cpio.gz
[ -s "$kernel" ] || die "no kernel image $kernel: run qemu/fetch-kernels.sh"
[ -s "$initrd" ] || die "no initramfs $initrd: run qemu/mkinitramfs.sh -s $scenario $release"

# The machine per architecture: a PC for Debian's amd64 kernels, QEMU's
# "virt" board with the emulator's most capable CPU for the self-built arm64
# one (its console is the board's PL011 UART; QEMU loads its Image directly,
# without firmware).
arch=$(release_arch "$release")
case $arch in
    arm64)
        need_cmd qemu-system-aarch64 qemu-system-arm
        qemu=(qemu-system-aarch64 -M virt -cpu max)
        console=ttyAMA0
        ;;
    *)
        need_cmd qemu-system-x86_64 qemu-system-x86
        # Debian splits the firmware the PC machine needs into these packages.
        need_pkg qemu-system-x86 seabios ipxe-qemu
        qemu=(qemu-system-x86_64)
        console=ttyS0
        ;;
esac

# The cases asked for by name: refused here already when no case file of
# this scenario has that marker, before a boot is spent on it.
cases=
wanted=${KLPTEST_CASES:-}
read -ra wanted <<<"${wanted//,/ }"
for want in "${wanted[@]}"; do
    [[ $want =~ ^c([0-9][0-9])_([a-z0-9_]+)$ ]] \
        || die "KLPTEST_CASES: '$want' is no case marker (cNN_name, as in KLPTEST-PLAN)"
    file=$QEMU_DIR/guest/cases/${BASH_REMATCH[1]}-${BASH_REMATCH[2]}.sh
    [ -f "$file" ] || die "KLPTEST_CASES: no case $want (no $file)"
    grep -Eq "^# scenarios:(.* )?$scenario( |\$)" "$file" \
        || die "KLPTEST_CASES: $want does not run in scenario $scenario ($(grep '^# scenarios:' "$file"))"
    cases=${cases:+$cases,}$want
done

logdir=$OUT_DIR/logs
mkdir -p "$logdir"
logfile=$logdir/$release-$scenario.log

# vCPUs and TCG mode from qemu/smp-modes: the first row matching the
# kernel's series and the scenario. KLPTEST_VCPUS, KLPTEST_ACCEL and
# KLPTEST_LOAD_CYCLES override it for experiments, and the guest then
# prints why=override:... Never fewer than 2 vCPUs.
series=$(awk -v r="$release" '$2 == r {print $1; exit}' "$OUT_DIR/kernels/releases" 2>/dev/null || true)
# Another architecture has rows of its own.
[ "$arch" = x86_64 ] || series=$arch
smp_row=$(awk -v s="${series:-?}" -v sc="$scenario" '
    /^#/ || NF < 6 { next }
    ($1 == s || $1 == "*") && ($2 == sc || $2 == "*") { print $3, $4, $5, $6; exit }' \
    "$QEMU_DIR/smp-modes")
[ -n "$smp_row" ] || die "no row in qemu/smp-modes for series ${series:-?}, scenario $scenario"
read -r vcpus accel load_cycles smp_why <<<"$smp_row"
if [ -n "${KLPTEST_VCPUS:-}${KLPTEST_ACCEL:-}${KLPTEST_LOAD_CYCLES:-}" ]; then
    vcpus=${KLPTEST_VCPUS:-$vcpus}
    accel=${KLPTEST_ACCEL:-$accel}
    load_cycles=${KLPTEST_LOAD_CYCLES:-$load_cycles}
    smp_why=override:KLPTEST_VCPUS/ACCEL/LOAD_CYCLES
fi
case $vcpus in '' | *[!0-9]*) die "bad vCPU count '$vcpus'" ;; esac
[ "$vcpus" -ge 2 ] || die "every guest boots with at least 2 vCPUs, not $vcpus"

# loglevel=4 keeps routine kernel chatter off the console so it cannot split
# marker lines; warnings and oopses still show live, and the guest prints
# each failing case's full kernel log itself.
# no_timer_check: with 2 vCPUs under TCG on a busy host, the kernel's
# early check that the IO-APIC timer ticks can miss its short window and
# panic ("IO-APIC + timer doesn't work!") before init runs: the emulator
# was slow, not the timer broken. The option skips only that check.
# klptest.*: the boot's vCPUs and TCG mode, for the guest to print and check
# (guest/init), the load case's cycle count (guest/cases/41-load.sh), and
# the cases asked for by name (guest/cases/run.sh).
append="console=$console panic=-1 loglevel=4 no_timer_check klptest.vcpus=$vcpus klptest.accel=$accel"
append="$append klptest.load_cycles=$load_cycles klptest.smp_why=$smp_why${cases:+ klptest.cases=$cases} $*"

log "booting $release ($scenario${cases:+, only $cases}), $vcpus vCPUs, -accel $accel ($smp_why), timeout ${limit}s, log $logfile"
start=$(date +%s.%N)
set +e
if [ "$quiet" = 1 ]; then
    timeout --kill-after=10 "$limit" "${qemu[@]}" \
        -accel "$accel" -m 512 -smp "$vcpus" -nographic -no-reboot -nic none \
        -kernel "$kernel" -initrd "$initrd" -append "$append" \
        </dev/null >"$logfile" 2>&1
    rc=$?
else
    timeout --kill-after=10 "$limit" "${qemu[@]}" \
        -accel "$accel" -m 512 -smp "$vcpus" -nographic -no-reboot -nic none \
        -kernel "$kernel" -initrd "$initrd" -append "$append" \
        </dev/null 2>&1 | tee "$logfile"
    rc=${PIPESTATUS[0]}
fi
set -e
end=$(date +%s.%N)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')
pass=$(grep -c '^KLPTEST [^ ]* PASS' "$logfile" || true)
fail=$(grep -c '^KLPTEST [^ ]* FAIL' "$logfile" || true)
log "$release ($scenario, $vcpus vCPUs, $accel): qemu exit $rc after ${secs}s; $pass passed, $fail failed"
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    log "$release ($scenario): host timeout after ${limit}s"
    exit 124
fi
grep -q '^KLPTEST-DONE' "$logfile" || { log "no KLPTEST-DONE marker: the guest crashed or hung"; exit 1; }
exit 0
