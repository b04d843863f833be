# c28_vex: what klpctl tells scanners. /run/klpctl/vex.json, kept by apply
# and disable, and `klpctl vex` (which must print the same document) claim
# exactly the CVEs of the patches that are live: after an apply, after a
# disable, after the cumulative chain v1 -> v2 -> v3 (v3's CVEs only), not a
# patch disabled in sysfs behind klpctl's back, and not a stall that was
# reverted. With nothing to claim there is no document (OpenVEX
# needs a statement): no file, nothing on stdout. The document's @id is the
# boot's, and its version grows with every change and only then; `status`
# shows the same patch level. Each document is printed as
# `KLPTEST-VEX <label> <json>` for the host, which validates it against the
# OpenVEX schema and klpctl's (tests/vex/).
# scenarios: main

# vex_file LABEL: /run/klpctl/vex.json, as apply or disable left it.
vex_file() {
    cp /run/klpctl/vex.json "$T/vex" 2>/dev/null \
        || { klp_fail "$1: no /run/klpctl/vex.json"; return 1; }
    vex_seen "$1"
}

# expect_no_vex LABEL: no claim, so no document: no file, and `klpctl vex`
# prints nothing on stdout and says why on stderr.
expect_no_vex() {
    [ ! -e /run/klpctl/vex.json ] || klp_fail "$1: /run/klpctl/vex.json exists: $(cat /run/klpctl/vex.json)"
    vex_cmd_none "$1"
}

# vex_cmd_none LABEL: `klpctl vex` finds nothing to claim: nothing on
# stdout, the reason on stderr, and no file left.
vex_cmd_none() {
    kl vex
    expect_rc 0 "vex $1"
    [ ! -s "$T/out" ] || klp_fail "$1: klpctl vex printed a document"
    expect_says "no VEX document"
    [ ! -e /run/klpctl/vex.json ] || klp_fail "$1: klpctl vex wrote /run/klpctl/vex.json"
}

# vex_cmd LABEL: `klpctl vex`; its output must equal the file it updates.
vex_cmd() {
    kl vex
    expect_rc 0 "vex $1"
    cmp -s "$T/out" /run/klpctl/vex.json \
        || klp_fail "$1: klpctl vex printed another document than /run/klpctl/vex.json"
    cp "$T/out" "$T/vex"
    vex_seen "$1"
}

vex_seen() {
    echo "KLPTEST-VEX $1 $(cat "$T/vex")"
    klp_json_flat <"$T/vex" >"$T/vex.flat" || klp_fail "$1: the VEX document is not JSON"
    VEX_VERSION=$(sed -n 's/^version=//p' "$T/vex.flat")
    VEX_CVES=$(sed -n 's/^statements\.[0-9]*\.vulnerability\.name=//p' "$T/vex.flat" \
        | sort | tr '\n' ' ')
    VEX_ID=$(sed -n 's/^@id=//p' "$T/vex.flat")
}

# expect_vex LABEL "CVE... " VERSION: the claims and the version.
expect_vex() {
    [ "$VEX_CVES" = "$2" ] || klp_fail "$1: claims '$VEX_CVES', expected '$2'"
    [ "$VEX_VERSION" = "$3" ] || klp_fail "$1: version $VEX_VERSION, expected $3"
    [ "$VEX_ID" = "urn:uuid:$(cat /proc/sys/kernel/random/boot_id)" ] \
        || klp_fail "$1: @id is '$VEX_ID', expected urn:uuid:<boot id>"
}

# vex_has LABEL PATTERN: a line of the flattened document matches.
vex_has() {
    grep -qE "$2" "$T/vex.flat" || klp_fail "$1: the document has no line /$2/"
}

# expect_level "STREAM VERSION PATCH CVE..." or "": status's patch level.
expect_level() {
    status_json
    local got
    got=$(awk -F= '
        /^patch_level\.[0-9]+\.stream=/ { printf "%s%s", sep, $2; sep = "; " }
        /^patch_level\.[0-9]+\.version=/ { printf " %s", $2 }
        /^patch_level\.[0-9]+\.patch=/ { printf " %s", $2 }
        /^patch_level\.[0-9]+\.cves\.[0-9]+=/ { printf " %s", $2 }' "$T/status.flat")
    [ "$got" = "$1" ] || klp_fail "status patch level is '$got', expected '$1'"
}

run_case() {
    local v kp
    kp="pkg:generic/linux-kernel@$(uname -r | sed 's/+/%2B/g')"
    expect_no_vex start
    expect_level ""

    kl apply "$B/basic.klp"
    expect_rc 0 "apply basic"
    vex_file after_apply
    v=$VEX_VERSION
    case $v in '' | 0 | *[!0-9]*) klp_fail "after_apply: version '$v' is not a positive integer" ;; esac
    expect_vex after_apply "CVE-0000-0001 " "$v"
    vex_has after_apply '^statements\.0\.status=fixed$'
    vex_has after_apply "^statements\\.0\\.products\\.0\\.@id=$kp\$"
    vex_has after_apply '^statements\.0\.status_notes=.*klp_basic \(stream basic, version 1; payload sha256 [0-9a-f]{64}\).*does not persist across reboot'
    vex_has after_apply '^@context=https://openvex.dev/ns/v0.2.0$'
    expect_level "basic 1 klp_basic CVE-0000-0001"
    # Nothing changed: the same document, the same version.
    vex_cmd after_apply_cmd
    expect_vex after_apply_cmd "CVE-0000-0001 " "$v"

    # The last claim disabled: no document.
    kl disable klp_basic
    expect_rc 0 "disable basic"
    expect_no_vex disabled_last
    expect_level ""

    # Versions: +1 for the disable, +1 for each of v1, v2, v3.
    for i in 1 2 3; do
        kl apply "$B/cumul_v$i.klp"
        expect_rc 0 "apply cumul v$i"
    done
    vex_file after_chain
    expect_vex after_chain "CVE-0000-1003 CVE-0000-1004 " $((v + 4))
    # Debian's name of the architecture (mkbundles.sh writes it).
    local darch=amd64
    [ "$(uname -m)" = aarch64 ] && darch=arm64
    vex_has after_chain '^statements\.[01]\.products\.1\.@id=pkg:deb/debian/linux-image-[^+]*\?arch='"$darch"'$'
    vex_has after_chain '^statements\.[01]\.products\.2\.@id=cpe:2\.3:o:linux:linux_kernel:'
    vex_has after_chain '^statements\.[01]\.status_notes=.*klp_cumul_v3 \(stream cumul, version 3;'
    expect_level "cumul 3 klp_cumul_v3 CVE-0000-1003 CVE-0000-1004"

    # A disable with another patch still live: the document goes on
    # without the disabled patch's CVE.
    kl apply "$B/basic.klp"
    expect_rc 0 "apply basic beside the chain"
    vex_file with_basic
    expect_vex with_basic "CVE-0000-0001 CVE-0000-1003 CVE-0000-1004 " $((v + 5))
    kl disable klp_basic
    expect_rc 0 "disable basic beside the chain"
    vex_file after_disable
    expect_vex after_disable "CVE-0000-1003 CVE-0000-1004 " $((v + 6))

    # A stall that was reverted: its CVE is not claimed, and nothing live
    # changed, so neither does the version.
    stall_target_load
    kl apply --timeout 5 "$B/stall.klp"
    expect_rc 7 "stalled apply"
    vex_file after_stall
    expect_vex after_stall "CVE-0000-1003 CVE-0000-1004 " $((v + 6))
    expect_level "cumul 3 klp_cumul_v3 CVE-0000-1003 CVE-0000-1004"
    stall_release
    expect_gone klp_stall
    target_unload klp_stall_target

    # Behind klpctl's back: the record still says applied, sysfs does not.
    echo 0 >/sys/kernel/livepatch/klp_cumul_v3/enabled
    klp_wait_for 60 sh -c '[ ! -d /sys/kernel/livepatch/klp_cumul_v3 ] || [ "$(cat /sys/kernel/livepatch/klp_cumul_v3/transition)" = 0 ]' \
        || klp_fail "the disable behind klpctl's back did not finish"
    [ -e /run/klpctl/patches/klp_cumul_v3 ] || klp_fail "the record of klp_cumul_v3 is gone"
    # The file says what the last klpctl command saw; `klpctl vex` looks
    # again, claims nothing, and removes it.
    vex_file behind_back_stale
    expect_vex behind_back_stale "CVE-0000-1003 CVE-0000-1004 " $((v + 6))
    vex_cmd_none behind_back
    expect_level ""
    kl disable klp_cumul_v3
    expect_rc 0 "disable the patch disabled behind klpctl's back"
    expect_gone klp_cumul_v3

    # The same @id goes on: +1 for the disable behind klpctl's back, +1 for
    # basic again.
    kl apply "$B/basic.klp"
    expect_rc 0 "apply basic again"
    vex_file reapplied
    expect_vex reapplied "CVE-0000-0001 " $((v + 8))
    kl disable klp_basic
    expect_rc 0 "disable basic again"
    expect_no_vex end
}
