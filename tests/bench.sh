#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Benchmark figures for klpctl: stripped binary size, `klpctl verify` speed on
# a 256 MiB payload against `openssl dgst -sha256` (and `sha256sum`) on the
# same payload file in the same run, and verify's peak RSS for a 1 MiB and a
# 256 MiB payload. It prints figures and goals; it exits non-zero only when
# something fails to build or run, never because a goal is missed.
#
# usage: tests/bench.sh [-n RUNS] [-m MIB]
#   -n RUNS   timed runs of each command, interleaved (default 5, minimum 3)
#   -m MIB    size of the large payload in MiB (default 256)
# env:  BENCH_DIR   scratch directory (default: a fresh mktemp -d, removed
#                   on exit); needs about 2 x MIB of space
#       KLPCTL      benchmark this binary instead of building one
#
# Needs: cargo with the x86_64-unknown-linux-musl target, python3, openssl,
# sha256sum, strip (binutils) and GNU time at /usr/bin/time (Debian: time).
set -euo pipefail

runs=5 mib=256
while getopts n:m: opt; do
    case $opt in
        n) runs=$OPTARG ;;
        m) mib=$OPTARG ;;
        *) echo "usage: $0 [-n RUNS] [-m MIB]" >&2; exit 2 ;;
    esac
done
[ "$runs" -ge 3 ] 2>/dev/null || { echo "bench: -n must be a number >= 3" >&2; exit 2; }
[ "$mib" -ge 1 ] 2>/dev/null || { echo "bench: -m must be a number >= 1" >&2; exit 2; }

die() { echo "bench: $*" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/.." && pwd)
for cmd in python3 openssl sha256sum strip; do
    command -v "$cmd" >/dev/null || die "$cmd is missing"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian: apt-get install time)"

if [ -z "${KLPCTL:-}" ]; then
    echo "building: cargo build --release --target x86_64-unknown-linux-musl"
    (cd "$repo" && cargo build --quiet --release --target x86_64-unknown-linux-musl) || die "build failed"
    KLPCTL=$repo/target/x86_64-unknown-linux-musl/release/klpctl
fi
[ -x "$KLPCTL" ] || die "no klpctl binary at $KLPCTL"

if [ -n "${BENCH_DIR:-}" ]; then
    work=$BENCH_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
rm -rf "${work:?}/keys" "$work"/bench.* "$work"/*.ko "$work"/*.klp
mkdir -p "$work/keys"

# ---- binary size --------------------------------------------------------
strip -o "$work/klpctl.stripped" "$KLPCTL"
size=$(stat -c %s "$work/klpctl.stripped")
shipped=$(stat -c %s "$KLPCTL")
awk -v s="$size" -v f="$shipped" 'BEGIN {
    printf "binary size (stripped): %d bytes = %.1f KiB", s, s / 1024
    if (f != s) printf " (file as built: %d bytes)", f
    printf "\n"
    printf "  hard limit 163840 bytes (160 KiB): %s, %+d bytes\n", (s <= 163840 ? "within" : "OVER"), s - 163840
}'

# The device build (--no-default-features: no keygen/pack/sign) is what an
# appliance ships: hard limit 128 KiB (docs/performance.md).
if [ -z "${KLPCTL_DEVICE:-}" ]; then
    (cd "$repo" && cargo build --quiet --release --target x86_64-unknown-linux-musl --no-default-features \
        --target-dir target/device) || die "device build failed"
    KLPCTL_DEVICE=$repo/target/device/x86_64-unknown-linux-musl/release/klpctl
fi
dsize=$(stat -c %s "$KLPCTL_DEVICE")
awk -v s="$dsize" 'BEGIN {
    printf "device build size (--no-default-features): %d bytes = %.1f KiB\n", s, s / 1024
    printf "  hard limit 131072 bytes (128 KiB): %s, %+d bytes\n", (s <= 131072 ? "within" : "OVER"), s - 131072
}'

# ---- inputs -------------------------------------------------------------
"$KLPCTL" keygen -p "$work/keys/bench.pub" -s "$work/bench.sec" -c "klpctl bench (throwaway)" >/dev/null
mkbundle() { # NAME PAD_BYTES
    # A module padded with random bytes, from the tests' fake module builder
    # (tests/common/ko.rs).
    (cd "$repo" && KLPCTL_KO_OUT="$work/$1.ko" KLPCTL_KO_NAME=klp_bench KLPCTL_KO_PAD="$2" KLPCTL_KO_RANDOM=1 \
        cargo test --quiet --release --test cli -- --ignored --exact vectors::write_module >/dev/null) \
        || die "cannot write $1.ko"
    "$KLPCTL" pack "$work/$1.ko" -o "$work/$1.klp" --stream bench --version 1 -s "$work/bench.sec" >/dev/null
    "$KLPCTL" verify "$work/$1.klp" --keyring "$work/keys" >/dev/null || die "verify of $1.klp failed"
}
mkbundle small $((1 << 20))
mkbundle large $((mib << 20))
payload=$work/large.ko
pbytes=$(stat -c %s "$payload")
echo "payload: $pbytes bytes ($mib MiB + ELF headers), bundle $(stat -c %s "$work/large.klp") bytes, in $work"

# ---- speed --------------------------------------------------------------
# Warm the page cache so every command reads from memory.
cat "$payload" "$work/large.klp" >/dev/null

now() { date +%s%N; }
declare -a t_verify t_openssl t_sha256sum
for ((i = 0; i < runs; i++)); do
    t0=$(now)
    "$KLPCTL" verify "$work/large.klp" --keyring "$work/keys" >/dev/null || die "klpctl verify failed"
    t1=$(now)
    openssl dgst -sha256 "$payload" >/dev/null || die "openssl dgst failed"
    t2=$(now)
    sha256sum "$payload" >/dev/null || die "sha256sum failed"
    t3=$(now)
    t_verify+=($((t1 - t0))) t_openssl+=($((t2 - t1))) t_sha256sum+=($((t3 - t2)))
done

# best and median (ns) of a list of numbers
stats() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print v[1], m }'; }
read -r vb vm < <(stats "${t_verify[@]}")
read -r ob om < <(stats "${t_openssl[@]}")
read -r sb sm < <(stats "${t_sha256sum[@]}")
awk -v n="$runs" -v bytes="$pbytes" -v vb="$vb" -v vm="$vm" -v ob="$ob" -v om="$om" -v sb="$sb" -v sm="$sm" 'BEGIN {
    printf "verify speed, %d runs each, warm cache (best / median):\n", n
    row("klpctl verify", vb, vm)
    row("openssl dgst -sha256", ob, om)
    row("sha256sum", sb, sm)
    printf "  ratio klpctl verify / openssl:   %.3fx best, %.3fx median (goal <= 1.10x: %s)\n", vb / ob, vm / om, (vb / ob <= 1.10 ? "met" : "MISSED")
    printf "  ratio klpctl verify / sha256sum: %.3fx best, %.3fx median\n", vb / sb, vm / sm
}
function row(name, b, m) {
    printf "  %-22s %8.1f ms / %8.1f ms  (%.2f GB/s best)\n", name, b / 1e6, m / 1e6, bytes / b
}'

# ---- peak RSS -----------------------------------------------------------
# maxrss of one process jitters by up to ~128 KiB from run to run on the
# same input (stack randomisation and 64 KiB fault-around of the binary's
# pages), so take at least 9 runs and compare medians with a 64 KiB slack.
rss_runs=$((runs > 9 ? runs : 9))
rss() { # BUNDLE -> "min median max" KiB
    for ((i = 0; i < rss_runs; i++)); do
        /usr/bin/time -f 'maxrss %M' "$KLPCTL" verify "$1" --keyring "$work/keys" 2>&1 >/dev/null \
            | awk '$1 == "maxrss" { print $2 }'
    done | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[1], v[int((NR + 1) / 2)], v[NR] }'
}
read -r smin smed smax < <(rss "$work/small.klp") || die "could not read peak RSS from /usr/bin/time"
read -r lmin lmed lmax < <(rss "$work/large.klp") || die "could not read peak RSS from /usr/bin/time"
awk -v n="$rss_runs" -v mib="$mib" -v smin="$smin" -v smed="$smed" -v smax="$smax" \
    -v lmin="$lmin" -v lmed="$lmed" -v lmax="$lmax" 'BEGIN {
    printf "peak RSS of klpctl verify (/usr/bin/time), %d runs each (min / median / max):\n", n
    printf "  %4d MiB payload: %5d / %5d / %5d KiB\n", 1, smin, smed, smax
    printf "  %4d MiB payload: %5d / %5d / %5d KiB\n", mib, lmin, lmed, lmax
    d = lmed - smed
    printf "  goal < 1024 KiB: %s; same for both sizes (medians within 64 KiB): %s (%+d KiB)\n", \
        (smax < 1024 && lmax < 1024 ? "met" : "MISSED"), (d <= 64 && d >= -64 ? "met" : "MISSED"), d
}'
