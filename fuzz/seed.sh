#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Fill fuzz/corpus/{bundle,modinfo,keys} with small valid samples made by the
# real klpctl binary, so the fuzzers start from inputs that get past every
# cheap check. The corpora are not committed (.gitignore); rerun this after a
# clean checkout. Bundles are signed with the TEST ONLY key in docs/vectors,
# which is the key the `bundle` target trusts.
#
# usage: fuzz/seed.sh            (from anywhere; builds klpctl if needed)
# env:   KLPCTL=path/to/klpctl   use this binary instead of building
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
fuzz=$repo/fuzz
vec=$repo/docs/vectors
if [ -z "${KLPCTL:-}" ]; then
    (cd "$repo" && cargo build --quiet --release --target x86_64-unknown-linux-musl)
    KLPCTL=$repo/target/x86_64-unknown-linux-musl/release/klpctl
fi
klpctl() { "$KLPCTL" "$@" >/dev/null; }
# mkko OUT [KLPCTL_KO_SETTING=VALUE]...: a module from the tests' fake module
# builder (tests/common/ko.rs; the settings are listed at vectors::write_module
# in tests/cli/vectors.rs).
mkko() {
    local out=$1
    shift
    (cd "$repo" && env KLPCTL_KO_OUT="$out" "$@" \
        cargo test --quiet --release --test cli -- --ignored --exact vectors::write_module >/dev/null)
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$fuzz/corpus/bundle" "$fuzz/corpus/modinfo" "$fuzz/corpus/keys"
B=$fuzz/corpus/bundle M=$fuzz/corpus/modinfo K=$fuzz/corpus/keys

# Modules: the plain vector module, a non-livepatch one, another machine, one
# with a padding section, and odd but valid names and releases.
mkko "$tmp/basic.ko"
mkko "$tmp/plain.ko" KLPCTL_KO_PLAIN=1 KLPCTL_KO_NAME=plain_mod
mkko "$tmp/arm.ko" KLPCTL_KO_MACHINE=183 KLPCTL_KO_VERMAGIC="6.12.57+deb13-arm64 SMP mod_unload aarch64"
mkko "$tmp/pad.ko" KLPCTL_KO_PAD=200 KLPCTL_KO_RANDOM=1
mkko "$tmp/long.ko" KLPCTL_KO_NAME="$(printf 'n%.0s' {1..55})" KLPCTL_KO_VERMAGIC="7.3.4~rc1+deb13.x_y-amd64"
cp "$tmp"/*.ko "$M/"

# Bundles: signed by the trusted test key, by the untrusted one, both,
# unsigned; with and without every optional manifest field.
sec=$vec/test.sec other=$vec/untrusted.sec
pack() { local ko=$1 out=$2; shift 2; klpctl pack "$tmp/$ko" -o "$B/$out" --created 1764300000 "$@"; }
pack basic.ko signed.klp --stream s --version 1 -s "$sec"
pack basic.ko unsigned.klp --stream s --version 2 --unsigned
pack basic.ko untrusted.klp --stream s --version 3 -s "$other"
pack basic.ko two.klp --stream s --version 4 -s "$sec" -s "$other"
pack pad.ko full.klp --stream acme.lts-6.1 --version 18446744073709551615 --replace \
    --kernel-build-id 00112233445566778899aabbccddeeff00112233 \
    --cve CVE-2024-1234 --cve GHSA-xxxx:1.2 --description 'fixes "x" \ y, ünïcode' -s "$sec" \
    --product 'pkg:deb/debian/linux-image-6.12.117%2Bdeb12-amd64@6.12.117-1~bpo12%2B1?arch=amd64' \
    --product 'cpe:2.3:o:linux:linux_kernel:6.12.117:*:*:*:*:*:*:*'
pack arm.ko arm.klp --stream s --version 0 --arch aarch64 -s "$sec"
pack long.ko long.klp --stream s --version 7 -s "$sec" -s "$other"

# Raw manifests, so the manifest parser is fuzzed directly as well.
for b in signed full arm long; do
    "$KLPCTL" manifest "$B/$b.klp" >"$B/$b.json"
done

# Key and signature files.
cp "$vec/keys/test.pub" "$vec/test.sec" "$vec/untrusted.pub" "$K/"
cp "$B/signed.klp" "$tmp/s.klp"
klpctl sign "$tmp/s.klp" -s "$other" -x "$K/detached.sig"
printf 'Zm9vYmFy' >"$K/b64"
printf '00112233445566778899aabbccddeeff' >"$K/hex"

echo "seeded: $(ls "$B" | wc -l) bundle, $(ls "$M" | wc -l) modinfo, $(ls "$K" | wc -l) keys inputs in $fuzz/corpus"
