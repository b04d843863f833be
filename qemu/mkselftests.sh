#!/bin/bash
# Build the kernel's own livepatch selftest modules for RELEASE (fetched by
# fetch-selftests.sh into $CACHE_DIR/selftests/RELEASE), and pack and sign
# every livepatch among them with klpctl, for the "selftests" scenario.
# Output, in target/qemu/selftests/RELEASE/:
#   build/            the Kbuild tree (sources copied from the cache)
#   modules/          the plain (non-livepatch) test modules, loaded with insmod
#   bundles/          one signed bundle per livepatch module and load-time
#                     parameter set: MODULE.klp, MODULE@PARAM=VALUE[,...].klp
#   livepatches       the livepatch module names, one a line
#   scripts/          the upstream scenario scripts, unmodified
#   plan              "run SCRIPT" or "exclude SCRIPT REASON", one a line
#   source            where the files came from (package version, note)
#
# klpctl loads no module parameters: a bundle's payload is exactly what was
# signed. Where a scenario loads a livepatch with parameters (for example
# test_klp_atomic_replace replace=1), the parameters are read from the
# script at build time and a variant of the module is built whose parameter
# defaults to that value (the copied source's "static TYPE NAME;" gets
# "= VALUE"); its bundle is named after the parameters. A scenario whose
# parameters are only known at run time cannot be packed beforehand and is
# excluded, with the reason in the plan.
#
# A 7.x release of trixie-backports is built in the trixie chroot with its
# gcc-14 against the chroot's linux-headers-<release> (qemu/trixie.sh, the
# machinery build-modules-trixie.sh uses; the chroot is made, and the
# headers installed, when missing), holding the chroot's cache lock. 6.x
# releases build on the host against /usr/src/linux-headers-<release>, and
# self-built kernels (qemu/selfbuilt/) against their own build tree.
#
# usage: mkselftests.sh [-k KLPCTL] RELEASE
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/trixie.sh"

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
need_pkg make gcc libc6-dev bash-static
need_cmd modinfo kmod

src=$CACHE_DIR/selftests/$release
[ -f "$src/complete" ] || "$QEMU_DIR/fetch-selftests.sh" "$release" >/dev/null
[ -f "$src/complete" ] || die "no selftests for $release in $src"
kdir=/usr/src/linux-headers-$release
in_trixie=0
if is_selfbuilt "$release"; then
    # Built against the kernel's own tree (build-modules.sh does the same).
    [ -f "$OUT_DIR/kernels/$release/build/Module.symvers" ] \
        || die "no built kernel tree for $release"
elif is_bpo_release "$release"; then
    in_trixie=1
    need_cmd unshare util-linux
    chroot_ready() {
        make_chroot
        install_headers "$release"
    }
    with_cache_lock trixie chroot_ready
    [ -f "$ROOT$kdir/Makefile" ] || die "no headers at $ROOT$kdir"
else
    [ -f "$kdir/Makefile" ] || die "no headers at $kdir: run qemu/fetch-kernels.sh first"
fi
SEC=$OUT_DIR/keys/secret/klptest.sec
[ -s "$SEC" ] || die "no test key $SEC: run qemu/mkbundles.sh first"
notes=$OUT_DIR/kernels/$release/notes
[ -s "$notes" ] || die "no $notes: run qemu/fetch-kernels.sh"

out=$OUT_DIR/selftests/$release
mkdir -p "$out"
new=$(mktemp -d "$out/.new.XXXXXX")
trap 'rm -rf "$new"' EXIT
mkdir -p "$new/modules" "$new/bundles" "$new/scripts"
cp -p "$src"/scripts/*.sh "$new/scripts/"
{
    printf 'linux-source %s\n' "$(cat "$src/version")"
    [ -f "$src/note" ] && cat "$src/note"
} >"$new/source"

# --- the parameter sets the scenarios load livepatches with -------------

# load_calls SCRIPT: "MODULE PARAMS..." for every load_lp, load_lp_nowait and
# load_failing_mod call with parameters, with the script's MOD_*=...
# variables substituted. A parameter that still holds a "$" is only known
# at run time.
load_calls() {
    awk '
        /^[A-Z_0-9]+=[^ ]+$/ { split($0, kv, "="); var[kv[1]] = kv[2] }
        /^[ \t]*(load_lp|load_lp_nowait|load_failing_mod)[ \t]/ && NF > 2 {
            line = ""
            for (i = 2; i <= NF; i++) {
                w = $i; gsub(/"/, "", w)
                for (v in var) { gsub("\\$\\{" v "\\}", var[v], w); gsub("\\$" v, var[v], w) }
                line = line (i > 2 ? " " : "") w
            }
            print line
        }' "$1"
}

# --- build ----------------------------------------------------------------

b=$out/build
mkdir -p "$b/base"
cp -p "$src"/modules/*.c "$b/base/"
# Every test module the kernel ships; the Makefile beside them (where there
# is one) expects to be run from the selftests tree, so it is not used.
for c in "$src"/modules/*.c; do c=${c##*/}; printf 'obj-m += %s.o\n' "${c%.c}"; done >"$b/base/Kbuild.new"
cmp -s "$b/base/Kbuild.new" "$b/base/Kbuild" 2>/dev/null || mv "$b/base/Kbuild.new" "$b/base/Kbuild"
rm -f "$b/base/Kbuild.new"

kbuild() { # DIR
    local rc=0
    if is_selfbuilt "$release"; then
        selfbuilt_make "$release" "$1" -j"$(nproc)" modules >"$1/build.log" 2>&1 || rc=$?
    elif [ "$in_trixie" = 1 ]; then
        # The lock: install_headers of another run may swap the headers.
        with_cache_lock trixie in_chroot_make "$release" "$1" -j"$(nproc)" modules \
            >"$1/build.log" 2>&1 || rc=$?
    else
        make -C "$kdir" M="$1" -j"$(nproc)" modules >"$1/build.log" 2>&1 || rc=$?
    fi
    if [ "$rc" != 0 ]; then
        tail -n 40 "$1/build.log" >&2
        die "$release: selftest module build failed (full log: $1/build.log)"
    fi
}
log "$release: building the selftest modules in $b/base$([ "$in_trixie" = 1 ] && echo ' (trixie chroot, gcc-14)' || true)"
kbuild "$b/base"

livepatches=()
for ko in "$b"/base/*.ko; do
    m=$(basename "$ko" .ko)
    vm=$(modinfo -F vermagic "$ko")
    case "$vm" in
        "$release "*) ;;
        *) die "$release: $m.ko has vermagic '$vm'" ;;
    esac
    if [ "$(modinfo -F livepatch "$ko")" = Y ]; then
        livepatches+=("$m")
    else
        cp "$ko" "$new/modules/"
    fi
done
[ "${#livepatches[@]}" -gt 0 ] || die "$release: no livepatch among the selftest modules"
printf '%s\n' "${livepatches[@]}" >"$new/livepatches"

is_lp() {
    local m
    for m in "${livepatches[@]}"; do [ "$m" = "$1" ] && return 0; done
    return 1
}

# replace_of SOURCE [PARAM=VALUE...]: 1 when the patch is an atomic-replace
# one: ".replace = true" in its klp_patch, or "patch.replace = PARAM" with
# PARAM set to a true value.
# A source that #includes another .c (test_klp_state3.c is test_klp_state2.c
# again) is read with it.
replace_of() {
    local c=$1 how inc
    shift
    inc=$(sed -n 's/^#include "\(.*\.c\)"/\1/p' "$c")
    how=$(cd "$(dirname "$c")" && cat "$(basename "$c")" $inc |
        sed -n -E 's/.*\.replace[[:space:]]*=[[:space:]]*([A-Za-z_0-9]+)[[:space:]]*[,;].*/\1/p' | head -n 1)
    case "$how" in
        true | 1) echo 1; return ;;
        "" | false | 0) echo 0; return ;;
    esac
    local kv
    for kv in "$@"; do
        if [ "${kv%%=*}" = "$how" ]; then
            case "${kv#*=}" in 1 | y | Y | true) echo 1; return ;; esac
        fi
    done
    echo 0
}

pack() { # KO OUT STREAM REPLACE
    local extra=()
    [ "$4" = 1 ] && extra=(--replace)
    "$klpctl" pack "$1" -o "$2" --stream "$3" --version 1 --kernel-notes "$notes" \
        "${extra[@]}" -s "$SEC" --created 0 \
        --description "kernel livepatch selftest module $(basename "$1" .ko)" >/dev/null \
        || die "klpctl pack $1 failed"
}

for m in "${livepatches[@]}"; do
    pack "$b/base/$m.ko" "$new/bundles/$m.klp" "$m" "$(replace_of "$b/base/$m.c")"
done

: >"$new/plan"
nvariants=0
for s in "$new"/scripts/test-*.sh; do
    script=$(basename "$s")
    why=
    # test-kprobe.sh needs kprobes on ftrace (it skips itself without them).
    # arm64 cannot have them (no HAVE_KPROBES_ON_FTRACE): upstream says this
    # is the one livepatch selftest that cannot pass there.
    kcfg=$OUT_DIR/kernels/$release/config
    if [ "$script" = test-kprobe.sh ] && ! grep -q '^CONFIG_KPROBES_ON_FTRACE=y' "$kcfg"; then
        if grep -q '^CONFIG_HAVE_KPROBES_ON_FTRACE=y' "$kcfg"; then
            why="needs CONFIG_KPROBES_ON_FTRACE, which this kernel is built without"
        else
            why="needs CONFIG_KPROBES_ON_FTRACE, which $(release_arch "$release") does not have"
        fi
    fi
    while read -r m params; do
        is_lp "$m" || continue
        if [[ "$params" == *'$'* ]]; then
            why="loads $m with $params, known only at run time; a signed bundle carries no module parameters"
            continue
        fi
        name=$m@$(printf '%s' "$params" | tr ' ' ,)
        [ -e "$new/bundles/$name.klp" ] && continue
        vdir=$b/v$nvariants
        nvariants=$((nvariants + 1))
        mkdir -p "$vdir"
        # The other sources too, for a module that #includes one.
        for c in "$b"/base/*.c; do
            [ "$c" = "$b/base/$m.c" ] || cp -p "$c" "$vdir/"
        done
        cp -p "$b/base/$m.c" "$vdir/$m.c.new"
        for kv in $params; do
            p=${kv%%=*} v=${kv#*=}
            case "$v" in Y | y) v=true ;; N | n) v=false ;; esac
            grep -qE "^static [a-z ]+ $p;" "$vdir/$m.c.new" \
                || die "$release: $m.c has no 'static TYPE $p;' to give the default $v"
            sed -i -E "s/^(static [a-z ]+ $p);/\1 = $v;/" "$vdir/$m.c.new"
        done
        cmp -s "$vdir/$m.c.new" "$vdir/$m.c" 2>/dev/null || mv "$vdir/$m.c.new" "$vdir/$m.c"
        rm -f "$vdir/$m.c.new"
        printf 'obj-m += %s.o\n' "$m" >"$vdir/Kbuild"
        log "$release: $m with $params as the default"
        kbuild "$vdir"
        # shellcheck disable=SC2086
        pack "$vdir/$m.ko" "$new/bundles/$name.klp" "$m" "$(replace_of "$vdir/$m.c" $params)"
    done < <(load_calls "$s")
    if [ -n "$why" ]; then
        printf 'exclude %s %s\n' "$script" "$why" >>"$new/plan"
    else
        printf 'run %s\n' "$script" >>"$new/plan"
    fi
done
# Variant directories of an earlier run that this one did not use.
for d in "$b"/v*; do
    [ -d "$d" ] || continue
    n=${d##*/v}
    [ "$n" -ge "$nvariants" ] && rm -rf "$d"
done

for d in modules bundles scripts; do
    rm -rf "${out:?}/$d"
    mv "$new/$d" "$out/$d"
done
mv "$new/livepatches" "$new/plan" "$new/source" "$out/"
log "$release: $(ls "$out/bundles" | wc -l) selftest bundles, $(ls "$out/modules" | wc -l) plain modules, $(grep -c '^run ' "$out/plan") scripts to run, $(grep -c '^exclude ' "$out/plan" || true) excluded"
printf '%s\n' "$out"
