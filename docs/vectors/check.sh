#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Re-verify every test vector of docs/bundle-format.md with a built klpctl:
#   - each FILE in expected.txt: `klpctl verify FILE --keyring keys` exits as
#     listed; accepted bundles print exactly FILE.out (and FILE.json with
#     --json) and nothing on stderr; rejected ones exit 3, name REASON on
#     stderr, and report "ok":false with "exit":3 under --json;
#   - every reject/*.klp is listed, so no vector goes unchecked;
#   - the hex dump of valid.klp in docs/bundle-format.md matches the file.
# Exits 1 on any mismatch, 2 on a usage problem.
#
# usage: docs/vectors/check.sh [KLPCTL]
#   KLPCTL defaults to $KLPCTL, then target/x86_64-unknown-linux-musl/release/klpctl
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
klpctl=${1:-${KLPCTL:-$repo/target/x86_64-unknown-linux-musl/release/klpctl}}
case $klpctl in /*) ;; *) klpctl=$PWD/$klpctl ;; esac
if [ ! -x "$klpctl" ]; then
    echo "check.sh: no klpctl at $klpctl (cargo build --release --target x86_64-unknown-linux-musl)" >&2
    exit 2
fi
cd "$here" || exit 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fails=0 checked=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

while read -r file want reason; do
    case $file in '' | '#'*) continue ;; esac
    checked=$((checked + 1))
    if [ ! -f "$file" ]; then
        fail "$file: listed in expected.txt but missing"
        continue
    fi
    "$klpctl" verify "$file" --keyring keys >"$tmp/out" 2>"$tmp/err"
    rc=$?
    "$klpctl" verify "$file" --keyring keys --json >"$tmp/json" 2>"$tmp/jerr"
    jrc=$?
    if [ "$rc" != "$want" ] || [ "$jrc" != "$want" ]; then
        fail "$file: exit $rc (--json: $jrc), expected $want: $(head -c 300 "$tmp/err")"
        continue
    fi
    if [ "$want" = 0 ]; then
        base=${file%.klp}
        cmp -s "$tmp/out" "$base.out" || fail "$file: stdout differs from $base.out: $(diff "$base.out" "$tmp/out" | head -n 6)"
        cmp -s "$tmp/json" "$base.json" || fail "$file: --json stdout differs from $base.json"
        [ -s "$tmp/err" ] && fail "$file: unexpected stderr: $(head -c 300 "$tmp/err")"
    else
        grep -qF -- "$reason" "$tmp/err" || fail "$file: stderr does not mention \"$reason\": $(head -c 300 "$tmp/err")"
        grep -qF '"ok":false' "$tmp/json" && grep -qF "\"exit\":$want" "$tmp/json" \
            || fail "$file: --json does not report \"ok\":false and \"exit\":$want: $(head -c 300 "$tmp/json")"
    fi
done <expected.txt

for f in reject/*.klp; do
    grep -q "^$f " expected.txt || fail "$f: not listed in expected.txt"
done

# The doc's hex dump is `od -A x -t x1 -v valid.klp` between two markers.
sed -n '/<!-- begin od valid.klp -->/,/<!-- end od valid.klp -->/p' "$repo/docs/bundle-format.md" \
    | grep -E '^[0-9a-f]{6}( [0-9a-f]{2})*$' >"$tmp/doc.hex"
od -A x -t x1 -v valid.klp | grep -E '^[0-9a-f]{6}( [0-9a-f]{2})*$' >"$tmp/file.hex"
checked=$((checked + 1))
if [ ! -s "$tmp/doc.hex" ]; then
    fail "docs/bundle-format.md: no hex dump of valid.klp between the od markers"
elif ! cmp -s "$tmp/doc.hex" "$tmp/file.hex"; then
    fail "docs/bundle-format.md: hex dump differs from valid.klp"
fi

echo "vectors: $checked checked, $fails failed ($klpctl)"
[ "$fails" = 0 ]
