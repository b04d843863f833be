#!/bin/bash
# The kernel-side figures of docs/performance.md, collected from one fresh run and printed as
# one Markdown table per kernel:
#   - `klpctl apply` of case 1 (klp_basic), exec to exit, next to the
#     kernel's own transition time from its log timestamps (guest case
#     c25_apply_time: median of its apply/disable cycles);
#   - peak RSS of apply with the 16 MiB bundle (guest case c26_big_rss);
#   - the size of the static device binary;
#   - the wall time of the QEMU suite.
#
# usage: figures.sh [-b]
#   default  build klpctl, then time `cargo test --release --test qemu`
#            (the whole suite: both kernels, both scenarios)
#   -b       boots only: prepare.sh, then the main scenario of each kernel;
#            quicker, and gives no suite time
# Environment: KLPCTL or KLPCTL_BIN = a prebuilt static klpctl to use.
# Tables go to stdout, progress to stderr. Nothing here is a pass/fail
# threshold: the figures depend on the machine and its load.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

boots_only=0
while getopts b opt; do
    case $opt in
        b) boots_only=1 ;;
        *) die "usage: $0 [-b]" ;;
    esac
done
shift $((OPTIND - 1))
[ $# = 0 ] || die "usage: $0 [-b]"

bin=${KLPCTL:-${KLPCTL_BIN:-}}
if [ -z "$bin" ]; then
    log "building klpctl (release, x86_64-unknown-linux-musl)"
    (cd "$REPO_DIR" && cargo build --release --target x86_64-unknown-linux-musl --bin klpctl >&2) \
        || die "cargo build of klpctl failed"
    bin=$REPO_DIR/target/x86_64-unknown-linux-musl/release/klpctl
fi
[ -x "$bin" ] || die "no klpctl at $bin"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
export KLPCTL_BIN=$bin
unset KLPCTL

out=$OUT_DIR/figures
mkdir -p "$out"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }

suite_s=
suite_failed=0
declare -A boot_s=()
if [ "$boots_only" = 0 ]; then
    # Compile the test first, so the timed run is the suite and not rustc.
    (cd "$REPO_DIR" && cargo test --release --test qemu --no-run >&2 2>&1) \
        || die "cargo test --no-run failed"
    log "running cargo test --release --test qemu (output in $out/cargo-test.log)"
    t0=$(now)
    set +e
    (cd "$REPO_DIR" && cargo test --release --test qemu) >"$out/cargo-test.log" 2>&1
    rc=$?
    set -e
    t1=$(now)
    suite_s=$(secs "$t0" "$t1")
    grep -E '^qemu: ' "$out/cargo-test.log" >&2 || true
    # A failed case elsewhere does not void the figures of this run, but it
    # is said loudly, and the script exits 1 after the tables.
    if [ "$rc" != 0 ]; then
        suite_failed=1
        grep -E '^  [^ ]+ (main|sigenforce): ' "$out/cargo-test.log" >&2 || true
        log "cargo test --release --test qemu FAILED (exit $rc); see $out/cargo-test.log"
    fi
    # "qemu: <release>: KLPTEST-METRIC boot_wall_s main=.. sigenforce=.. total=.."
    while read -r release total; do
        boot_s[$release]=$total
    done < <(sed -n 's/^qemu: \([^ ]*\): KLPTEST-METRIC boot_wall_s .*total=\([0-9.]*\)$/\1 \2/p' \
        "$out/cargo-test.log")
    releases=$(resolved_releases)
else
    # Hold the suite's lock: a concurrent cargo test would rebuild the same
    # initramfs images and write the same logs.
    exec 9>"$OUT_DIR/.suite.lock"
    flock 9
    "$QEMU_DIR/prepare.sh" >/dev/null
    releases=$(resolved_releases)
    for release in $releases; do
        t0=$(now)
        "$QEMU_DIR/run.sh" -q -s main "$release" \
            || die "boot of $release failed; see $OUT_DIR/logs/$release-main.log"
        boot_s[$release]=$(secs "$t0" "$(now)")
        grep -q "^KLPTEST-DONE rc=0 " "$OUT_DIR/logs/$release-main.log" \
            || die "$release: the main scenario failed; see $OUT_DIR/logs/$release-main.log"
    done
    exec 9>&-
fi

bytes=$(stat -c %s "$bin")
# What the guests run: the device build that prepare.sh made.
device=${KLPCTL_DEVICE:-$REPO_DIR/target/device/x86_64-unknown-linux-musl/release/klpctl}
dbytes=$(stat -c %s "$device" 2>/dev/null || echo "?")

# metric LOG NAME KEY: the value of KEY in the last "KLPTEST-METRIC NAME" line.
metric() {
    tr -d '\r' <"$1" | awk -v n="$2" -v k="$3" '
        $1 == "KLPTEST-METRIC" && $2 == n {
            for (i = 3; i <= NF; i++) if (index($i, k "=") == 1) v = substr($i, length(k) + 2)
        }
        END { print v }'
}
# ms US: microseconds as milliseconds with 2 decimals.
ms() { awk -v u="$1" 'BEGIN {printf "%.2f ms", u / 1000}'; }

for release in $releases; do
    logf=$OUT_DIR/logs/$release-main.log
    [ -s "$logf" ] || die "no log $logf"
    runs=$(metric "$logf" apply_time_us runs)
    k=$(metric "$logf" apply_time_us klpctl)
    [ -n "$k" ] || die "$release: no apply_time metric in $logf"
    ratio=$(metric "$logf" apply_time_us vs_1s_poll)
    echo
    echo "### $release"
    echo
    echo "| figure | value |"
    echo "|---|---|"
    echo "| \`klpctl apply\` of case 1 (klp_basic), exec → exit, median of $runs | $(ms "$k") |"
    echo "| exec → kernel \`'klp_basic': patching complete\` | $(ms "$(metric "$logf" apply_time_us to_complete)") |"
    echo "| kernel transition: \`starting patching transition\` → \`patching complete\` | $(ms "$(metric "$logf" apply_time_us transition)") |"
    echo "| kernel \`enabling patch\` → \`patching complete\` (adds ftrace set-up) | $(ms "$(metric "$logf" apply_time_us enable)") |"
    echo "| kernel \`patching complete\` → klpctl exit | $(ms "$(metric "$logf" apply_time_us after)") |"
    echo "| \`klpctl verify\` of the same bundle (klpctl's own checks) | $(ms "$(metric "$logf" apply_time_us verify)") |"
    echo "| vs. one 1 s poll (kpatch): klpctl ÷ 1000 ms | $ratio |"
    echo "| \`klpctl disable\` exec → exit / kernel unpatching transition | $(ms "$(metric "$logf" disable_time_us klpctl)") / $(ms "$(metric "$logf" disable_time_us transition)") |"
    echo "| peak RSS of apply, 16 MiB bundle (small bundle) | $(metric "$logf" apply_peak_rss_kb big) KiB ($(metric "$logf" apply_peak_rss_kb basic) KiB) |"
    echo "| binary sizes (\`stat -c %s\`): full / device build run in the guest | $bytes / $dbytes bytes |"
    if [ "$boots_only" = 0 ]; then
        echo "| QEMU boots of this kernel (main + sigenforce) | ${boot_s[$release]:-?} s |"
    else
        echo "| QEMU boot of this kernel (main) | ${boot_s[$release]} s |"
    fi
done
echo
if [ -n "$suite_s" ]; then
    echo "Whole suite: \`cargo test --release --test qemu\` took $suite_s s wall (both kernels, booted side by side)."
fi
echo "Times are under QEMU TCG on $(nproc) host core(s); the kernel figures come from the guest's own log timestamps."
if [ "$suite_failed" = 1 ]; then
    echo
    echo "**The suite FAILED in this run** (see \`$out/cargo-test.log\`); the figures above come from it."
    exit 1
fi
