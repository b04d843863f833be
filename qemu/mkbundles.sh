#!/bin/bash
# Pack and sign, on the host, every bundle the guest cases need for RELEASE,
# into target/qemu/bundles/RELEASE/. Creates the test keys on first use:
#   target/qemu/keys/trusted/klptest.pub     shipped in the guest's keys.d
#   target/qemu/keys/secret/klptest.sec      host only
#   target/qemu/keys/untrusted/untrusted.*   host only, signs the
#                                            "untrusted key" bundle
#
# usage: mkbundles.sh [-k KLPCTL] RELEASE
# Needs the modules of every resolved release (for the "other kernel" cases).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

klpctl=${KLPCTL:-$REPO_DIR/target/x86_64-unknown-linux-musl/release/klpctl}
while getopts k: opt; do
    case $opt in
        k) klpctl=$OPTARG ;;
        *) die "usage: $0 [-k KLPCTL] RELEASE" ;;
    esac
done
shift $((OPTIND - 1))
[ $# = 1 ] || die "usage: $0 [-k KLPCTL] RELEASE"
release=$(to_release "$1")
[ -n "$release" ] || die "kernel series $1 not resolved: run qemu/fetch-kernels.sh"
[ -x "$klpctl" ] || die "no klpctl binary at $klpctl"
# Debian's python3 (not a pyenv shim): its stdlib has lzma and bz2.
need_pkg python3
PYTHON=/usr/bin/python3

# "Another kernel" for the wrong-kernel cases: the first release in
# fetch-kernels.sh's order (6.1, 6.12, 7.x) that is not this one, so 6.1 gets
# 6.12 and every other release gets 6.1, the same on every run.
other=$(resolved_releases | grep -vxF "$release" | head -n 1 || true)
[ -n "$other" ] || die "the cases need a second kernel release; fetch at least two series"

keys=$OUT_DIR/keys
mkdir -p "$keys/trusted" "$keys/secret" "$keys/untrusted"
if [ ! -s "$keys/secret/klptest.sec" ]; then
    rm -f "$keys/trusted/klptest.pub"
    "$klpctl" keygen -p "$keys/trusted/klptest.pub" -s "$keys/secret/klptest.sec" \
        -c "klpctl QEMU test key" >&2 || die "klpctl keygen failed"
fi
if [ ! -s "$keys/untrusted/untrusted.sec" ]; then
    rm -f "$keys/untrusted/untrusted.pub"
    "$klpctl" keygen -p "$keys/untrusted/untrusted.pub" -s "$keys/untrusted/untrusted.sec" \
        -c "klpctl QEMU untrusted key" >&2 || die "klpctl keygen failed"
fi
SEC=$keys/secret/klptest.sec

mods=$OUT_DIR/build/$release
omods=$OUT_DIR/build/$other
notes=$OUT_DIR/kernels/$release/notes
onotes=$OUT_DIR/kernels/$other/notes
for f in "$mods/klp_basic.ko" "$omods/klp_cumul_v1.ko" "$notes" "$onotes"; do
    [ -s "$f" ] || die "missing $f: run qemu/fetch-kernels.sh and qemu/build-modules.sh"
done

out=$OUT_DIR/bundles/$release
tmp=$(mktemp -d "$OUT_DIR/bundles/.$release.XXXXXX" 2>/dev/null \
    || { mkdir -p "$OUT_DIR/bundles" && mktemp -d "$OUT_DIR/bundles/.$release.XXXXXX"; })
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"
mkdir -p "$tmp/bad" "$tmp/wrong" "$tmp/dir" "$tmp/nsdir"

# pack KO OUT STREAM VERSION [EXTRA...]: a bundle for $release signed by the
# trusted key, unless EXTRA says otherwise.
pack() {
    local ko=$1 dst=$2 stream=$3 version=$4
    shift 4
    "$klpctl" pack "$ko" -o "$dst" --stream "$stream" --version "$version" "$@" >/dev/null \
        || die "klpctl pack $ko -> $dst failed"
}

pack "$mods/klp_basic.ko" "$tmp/basic.klp" basic 1 --kernel-notes "$notes" -s "$SEC" \
    --description "klpctl test: /proc/cmdline says basic patched" --cve CVE-0000-0001
# The cumulative chain fixes CVEs for c28_vex: each version drops one and
# adds one, so the CVEs claimed after v3 tell v3's from the others'. It
# names the kernel package the way Trivy and Grype name an installed Debian
# kernel (with '+' as %2B), and a CPE (of the upstream version: '+' would
# need a backslash there).
darch=amd64
[ "$(release_arch "$release")" = arm64 ] && darch=arm64
kpurl="pkg:deb/debian/linux-image-${release//+/%2B}?arch=$darch"
cumul_cves=("" "--cve CVE-0000-1001 --cve CVE-0000-1002"
    "--cve CVE-0000-1002 --cve CVE-0000-1003" "--cve CVE-0000-1003 --cve CVE-0000-1004")
for v in 1 2 3; do
    # shellcheck disable=SC2086 # the CVE options are words on purpose
    pack "$mods/klp_cumul_v$v.ko" "$tmp/cumul_v$v.klp" cumul "$v" --kernel-notes "$notes" \
        --replace -s "$SEC" ${cumul_cves[$v]} --product "$kpurl" \
        --product "cpe:2.3:o:linux:linux_kernel:${release%%[-+]*}:*:*:*:*:*:*:*"
done
pack "$mods/klp_stall.ko" "$tmp/stall.klp" stall 1 --kernel-notes "$notes" -s "$SEC" \
    --cve CVE-0000-9001
pack "$mods/klp_badcb.ko" "$tmp/badcb.klp" badcb 1 --kernel-notes "$notes" -s "$SEC"
pack "$mods/klp_modobj.ko" "$tmp/modobj.klp" modobj 1 --kernel-notes "$notes" -s "$SEC"
pack "$mods/klp_big.ko" "$tmp/big.klp" big 1 --kernel-notes "$notes" -s "$SEC"

# Rejected bundles (exit 3).
mutate() { "$PYTHON" "$QEMU_DIR/tools/bundle-mutate.py" "$@"; }
mutate payload "$tmp/basic.klp" "$tmp/bad/tampered.klp"
mutate signature "$tmp/basic.klp" "$tmp/bad/badsig.klp"
mutate manifest "$tmp/basic.klp" "$tmp/bad/manifest.klp"
pack "$mods/klp_basic.ko" "$tmp/bad/unsigned.klp" basic 1 --kernel-notes "$notes" --unsigned
pack "$mods/klp_basic.ko" "$tmp/bad/untrusted.klp" basic 1 --kernel-notes "$notes" \
    -s "$keys/untrusted/untrusted.sec"

# A bundle signed by the trusted key whose payload is a plain module, not a
# livepatch (exit 6; klpctl must not leave it loaded). pack refuses such a
# module, so swap the payload of a good bundle and sign the result.
mutate swap-payload "$tmp/basic.klp" "$tmp/bad/notlp.klp" "$mods/klp_target.ko" klp_target
"$klpctl" sign "$tmp/bad/notlp.klp" -s "$SEC" >/dev/null || die "klpctl sign of notlp.klp failed"

# Trusted and intact, but the manifest names klp_renamed while the module
# inside calls itself klp_basic (exit 3, before the kernel sees it).
mutate swap-payload "$tmp/basic.klp" "$tmp/bad/renamed.klp" "$mods/klp_basic.ko" klp_renamed
"$klpctl" sign "$tmp/bad/renamed.klp" -s "$SEC" >/dev/null || die "klpctl sign of renamed.klp failed"

# A module that claims livepatch=Y but registers no patch: it loads, and
# klpctl must unload it again (exit 6).
pack "$mods/klp_noreg.ko" "$tmp/bad/noreg.klp" noreg 1 --kernel-notes "$notes" -s "$SEC"

# Bundles for another kernel (exit 4): the other release's build, and this
# release's module claiming a build-id this kernel does not have.
pack "$omods/klp_basic.ko" "$tmp/wrong/other_kernel.klp" basic 1 --kernel-notes "$onotes" -s "$SEC"
bid=$(cat "$OUT_DIR/kernels/$release/build-id")
wrong_bid=$(printf '%s' "$bid" | tr '0-9a-f' '1-9a-f0')
pack "$mods/klp_basic.ko" "$tmp/wrong/wrong_build_id.klp" basic 1 --kernel-build-id "$wrong_bid" -s "$SEC"
# And a bundle for this release on the other architecture: this release's
# module with the other ELF machine (x86_64 62 <-> aarch64 183, at byte 18
# of the ELF header), which pack records as the bundle's arch.
cp "$mods/klp_basic.ko" "$tmp/foreign.ko"
if [ "$(release_arch "$release")" = arm64 ]; then
    printf '\076\000' | dd of="$tmp/foreign.ko" bs=1 seek=18 conv=notrunc status=none
else
    printf '\267\000' | dd of="$tmp/foreign.ko" bs=1 seek=18 conv=notrunc status=none
fi
pack "$tmp/foreign.ko" "$tmp/wrong/other_arch.klp" basic 1 --kernel-notes "$notes" -s "$SEC"
rm -f "$tmp/foreign.ko"

# apply --dir: two bundles for this kernel, one for the other, and junk.
cp "$tmp/basic.klp" "$tmp/dir/basic.klp"
cp "$tmp/modobj.klp" "$tmp/dir/modobj.klp"
pack "$omods/klp_cumul_v1.ko" "$tmp/dir/other_cumul_v1.klp" cumul 1 --kernel-notes "$onotes" \
    --replace -s "$SEC"
head -c 4096 /dev/urandom >"$tmp/dir/junk.klp"
: >"$tmp/dir/empty.klp"
mutate truncate "$tmp/basic.klp" "$tmp/dir/truncated.klp"
printf 'not a bundle\n' >"$tmp/dir/notes.txt"

# apply --dir across a reboot: a non-cumulative stream "ns" of two separate
# modules (v1 klp_basic, v2 klp_modobj, neither replace) beside the
# cumulative stream "cumul" v1..v3.
pack "$mods/klp_basic.ko" "$tmp/nsdir/ns_v1.klp" ns 1 --kernel-notes "$notes" -s "$SEC"
pack "$mods/klp_modobj.ko" "$tmp/nsdir/ns_v2.klp" ns 2 --kernel-notes "$notes" -s "$SEC"
for v in 1 2 3; do
    cp "$tmp/cumul_v$v.klp" "$tmp/nsdir/cumul_v$v.klp"
done

# The crash-loop guard across real reboots (qemu/reboot.sh): klp_panic as
# its own stream, and the bundle directory the persistent disk starts with:
# a cumulative stream "base" (v1, v2; it sorts before "basic", so its
# replace leaves klp_basic alone) and klp_basic. rebootnext/ holds bundles
# for the other kernel, which the guest installs before booting into it.
pack "$mods/klp_panic.ko" "$tmp/panic.klp" panic 1 --kernel-notes "$notes" -s "$SEC" \
    --description "klpctl test: reading /proc/version panics the kernel"
mkdir -p "$tmp/rebootdir" "$tmp/rebootnext"
for v in 1 2; do
    pack "$mods/klp_cumul_v$v.ko" "$tmp/rebootdir/base_v$v.klp" base "$v" --kernel-notes "$notes" \
        --replace -s "$SEC"
done
cp "$tmp/basic.klp" "$tmp/rebootdir/basic.klp"
pack "$omods/klp_cumul_v2.ko" "$tmp/rebootnext/base_v2.klp" base 2 --kernel-notes "$onotes" \
    --replace -s "$SEC"
pack "$omods/klp_basic.ko" "$tmp/rebootnext/basic.klp" basic 1 --kernel-notes "$onotes" -s "$SEC"

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
log "$release: bundles in $out"
printf '%s\n' "$out"
