#!/bin/bash
# Write a minimal kernel config for a self-built test kernel:
#   tinyconfig
#   + config.common        (every architecture)
#   + config.ARCH          (this architecture)
#   + the extra options given on the command line
#   + olddefconfig
# Each options file holds one scripts/config argument per line ("-e FOO",
# "-d BAR", "--set-str BAZ value"); '#' starts a comment. Extra options are
# scripts/config arguments too, or @FILE for a file in the same format.
#
# Afterwards every requested option is checked against the result: an option
# that olddefconfig dropped (an unmet dependency) is an error, never a
# silently different kernel.
#
# The build is out of tree: OUTDIR gets the .config; the source tree (from
# source.sh, or $KSRC) is only read. The make variables for ARCH (ARCH=,
# CROSS_COMPILE=) are the same ones the build must use; `config.sh --make-args
# ARCH` prints them.
#
# usage: config.sh ARCH OUTDIR [OPTION... | @FILE...]
#        config.sh --make-args ARCH
# ARCH: x86_64 | arm64
# stdout: the path of the .config written. Progress goes to stderr.
set -euo pipefail
SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$SELF_DIR/../lib.sh"

# make_args ARCH: the kbuild variables that select ARCH.
make_args() {
    case "$1" in
        x86_64) printf '%s\n' ARCH=x86_64 ;;
        arm64)
            printf '%s\n' ARCH=arm64
            [ "$(uname -m)" = aarch64 ] || printf '%s\n' "CROSS_COMPILE=${CROSS_COMPILE:-aarch64-linux-gnu-}"
            ;;
        *) die "unknown ARCH '$1' (x86_64 or arm64)" ;;
    esac
}

if [ "${1:-}" = --make-args ]; then
    [ $# = 2 ] || die "usage: config.sh --make-args ARCH"
    make_args "$2"
    exit 0
fi
[ $# -ge 2 ] || die "usage: config.sh ARCH OUTDIR [OPTION... | @FILE...]"
arch=$1 out=$2
shift 2
mapfile -t margs < <(make_args "$arch")
[ -f "$SELF_DIR/config.$arch" ] || die "no $SELF_DIR/config.$arch"
ksrc=${KSRC:-$("$SELF_DIR/source.sh")}
[ -f "$ksrc/Makefile" ] || die "no kernel tree at $ksrc"

# read_opts FILE: its scripts/config arguments, one per output line.
read_opts() {
    sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$1"
}

opts=()
while IFS= read -r l; do opts+=("$l"); done < <(read_opts "$SELF_DIR/config.common")
while IFS= read -r l; do opts+=("$l"); done < <(read_opts "$SELF_DIR/config.$arch")
# Extra options: "@FILE" reads a file; anything else is split on blanks
# ("-e FOO" or "-e" "FOO" both work).
extra=()
for a in "$@"; do
    if [ "${a#@}" != "$a" ]; then
        [ -f "${a#@}" ] || die "no options file ${a#@}"
        while IFS= read -r l; do extra+=("$l"); done < <(read_opts "${a#@}")
    else
        extra+=("$a")
    fi
done
# Join the extra arguments and re-split into one option per line.
if [ "${#extra[@]}" -gt 0 ]; then
    while IFS= read -r l; do [ -n "$l" ] && opts+=("$l"); done \
        < <(printf '%s ' "${extra[@]}" | sed -E 's/[[:space:]]+(-[-a-z])/\n\1/g')
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
log "$arch: tinyconfig in $out (source $ksrc)"
make -s -C "$ksrc" O="$out" "${margs[@]}" tinyconfig >&2
args=()
for o in "${opts[@]}"; do
    # shellcheck disable=SC2206 # "-e FOO" is two words on purpose
    args+=($o)
done
"$ksrc/scripts/config" --file "$out/.config" "${args[@]}"
make -s -C "$ksrc" O="$out" "${margs[@]}" olddefconfig >&2

# Check that each requested option is what was asked for.
bad=()
for o in "${opts[@]}"; do
    # shellcheck disable=SC2086
    set -- $o
    flag=$1 sym=${2#CONFIG_}
    got=$("$ksrc/scripts/config" --file "$out/.config" --state "$sym")
    case "$flag" in
        -e | --enable) [ "$got" = y ] || bad+=("$sym=$got (wanted y)") ;;
        -m | --module) [ "$got" = m ] || bad+=("$sym=$got (wanted m)") ;;
        -d | --disable) [ "$got" = n ] || [ "$got" = undef ] || bad+=("$sym=$got (wanted off)") ;;
        --set-str) shift 2; [ "$got" = "$*" ] || bad+=("$sym=$got (wanted \"$*\")") ;;
        --set-val) [ "$got" = "$3" ] || bad+=("$sym=$got (wanted $3)") ;;
        *) ;;
    esac
done
[ "${#bad[@]}" = 0 ] || die "$arch: olddefconfig did not keep: ${bad[*]} (a dependency is missing; add it to the options)"
printf '%s\n' "$out/.config"
