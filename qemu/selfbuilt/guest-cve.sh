# The CVE tier in the guest (busybox sh), booted on the self-built kernel
# that has CVE-2024-1086 unfixed (build-cve.sh). Two scenarios, chosen by
# /klptest/scenario:
#
#   cve       steps 1-6: the reproducer says vulnerable; klpctl applies the
#             live patch klp-build made from the upstream fix; the
#             reproducer says fixed; status shows the patch level with the
#             CVE; klpctl vex claims exactly that CVE (the host validates
#             the document: KLPTEST-VEX); disable brings vulnerable back;
#             and the same module packed without --replace still has the
#             patch it replaced cleaned up (cve_replace_unsaid).
#   lockdown  booted with module.sig_enforce=1 lockdown=integrity: the same
#             module without the kernel's signature is refused, klpctl
#             quoting the kernel, and nothing is loaded; so is it with a
#             damaged signature or one by a key the kernel does not trust;
#             signed with the kernel's own key it applies and fixes the hole.
#
# Every step is shown as typed at a prompt, so the same transcript is the
# demo (qemu/demo.sh cve) and the test (tests/qemu_selfbuilt.rs, which
# requires each case's PASS marker).
. /klptest/cases/lib.sh

CVE=CVE-2024-1086
NAME=livepatch_cve_2024_1086
SIGNED=$B/cve-2024-1086.klp
UNSIGNED=$B/cve-2024-1086-unsigned.klp
PRODUCT="pkg:generic/linux-kernel@$(uname -r)"

say() {
    echo
    for line in "$@"; do
        echo "# $line"
    done
}

# repro EXPECTED: run the reproducer; it must print EXPECTED and exit with
# its code for that (fixed 0, vulnerable 1).
repro() {
    local out rc want=1
    [ "$1" = fixed ] && want=0
    echo "guest# repro-cve-2024-1086"
    out=$(repro-cve-2024-1086 2>"$T/repro.err")
    rc=$?
    echo "$out"
    sed 's/^/  ! /' "$T/repro.err"
    [ "$out" = "$1" ] && [ "$rc" = "$want" ] \
        || klp_fail "reproducer printed '$out' (exit $rc), expected '$1' (exit $want)"
}

# expect_level "STREAM VERSION PATCH CVE...": status's patch level.
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

# expect_sysfs ATTR VALUE: /sys/kernel/livepatch/$NAME/ATTR.
expect_sysfs() {
    expect_file "/sys/kernel/livepatch/$NAME/$1" "$2"
}

cve_main() {
    begin cve_vulnerable
    say "1. The running kernel: built from Debian's linux-source with the $CVE" \
        "   check removed. The reproducer asks nf_tables to accept a DROP verdict" \
        "   with junk in its upper bits (it never runs the rule)."
    show_kernel
    repro vulnerable
    end

    begin cve_apply
    say "2. Apply the live patch klp-build made from the upstream fix: a signed" \
        "   bundle naming $CVE, for this kernel's build-id, atomic replace."
    kl apply "$SIGNED"
    expect_rc 0 "apply"
    klp_patch_present "$NAME" || klp_fail "no /sys/kernel/livepatch/$NAME"
    expect_sysfs enabled 1
    expect_sysfs transition 0
    expect_sysfs replace 1
    end

    begin cve_fixed
    say "3. The same reproducer on the same running kernel."
    repro fixed
    end

    begin cve_status
    say "4. The patch level, as klpctl reports it."
    kl status
    expect_rc 0 "status"
    expect_says "$CVE"
    expect_level "cve-2024-1086 1 $NAME $CVE"
    end

    begin cve_vex
    say "5. What scanners are told: OpenVEX, $CVE fixed in this kernel."
    kl vex
    expect_rc 0 "vex"
    cmp -s "$T/out" /run/klpctl/vex.json \
        || klp_fail "klpctl vex printed another document than /run/klpctl/vex.json"
    echo "KLPTEST-VEX cve_fixed $(cat "$T/out")"
    klp_json_flat <"$T/out" >"$T/vex.flat" || klp_fail "the VEX document is not JSON"
    cves=$(sed -n 's/^statements\.[0-9]*\.vulnerability\.name=//p' "$T/vex.flat" | sort | tr '\n' ' ')
    [ "$cves" = "$CVE " ] || klp_fail "vex claims '$cves', expected '$CVE '"
    grep -qx 'statements\.0\.status=fixed' "$T/vex.flat" || klp_fail "the statement is not 'fixed'"
    # Exactly one statement, about exactly this kernel.
    [ "$(grep -c '^statements\.[0-9]*\.status=' "$T/vex.flat")" = 1 ] \
        || klp_fail "the document has more than one statement"
    prods=$(sed -n 's/^statements\.[0-9]*\.products\.[0-9]*\.@id=//p' "$T/vex.flat" | tr '\n' ' ')
    [ "$prods" = "$PRODUCT " ] || klp_fail "the products are '$prods', expected '$PRODUCT '"
    end

    begin cve_disable
    say "6. Disable it: the reverse transition, the module removed, the claim" \
        "   withdrawn, and the hole is back."
    klp_patch_present "$NAME" || klp_fail "$NAME is not live: nothing to disable"
    kl disable "$NAME"
    expect_rc 0 "disable"
    expect_says "disabled|removed"
    expect_gone "$NAME"
    [ ! -e /run/klpctl/vex.json ] || klp_fail "/run/klpctl/vex.json still there"
    repro vulnerable
    end

    begin cve_replace_unsaid
    say "klp-build's modules replace every other patch unless built with" \
        "--no-replace, and nothing in .modinfo says so. The same module packed" \
        "without --replace, applied over another patch: klpctl follows the" \
        "kernel, removes the replaced patch's module, and says so."
    kl apply "$B/basic.klp"
    expect_rc 0 "apply basic"
    expect_cmdline "$BASIC_LINE"
    kl apply "$B/cve-2024-1086-noreplace.klp"
    expect_rc 0 "apply without --replace"
    expect_says "packed without --replace"
    expect_sysfs replace 1
    expect_gone klp_basic
    expect_no_record klp_basic
    expect_cmdline "$ORIG_CMDLINE"
    repro fixed
    kl disable "$NAME"
    expect_rc 0 "disable"
    expect_no_livepatch
    repro vulnerable
    end
}

lockdown_main() {
    begin lockdown_env
    say "The appliance: module signatures enforced, kernel lockdown on."
    echo "guest# cat /sys/kernel/security/lockdown"
    cat /sys/kernel/security/lockdown
    grep -q '\[integrity\]' /sys/kernel/security/lockdown || klp_fail "lockdown is not integrity"
    expect_file /sys/module/module/parameters/sig_enforce Y
    repro vulnerable
    end

    begin lockdown_unsigned
    say "The klp-build module without the kernel's signature (the bundle itself" \
        "is signed and trusted): the kernel refuses it, klpctl says why."
    local before
    before=$(modules)
    kl apply "$UNSIGNED"
    expect_rc 6
    expect_says "signature|signed"
    expect_says "EKEYREJECTED|ENOKEY|EPERM|rejected|Key was rejected|Required key"
    # The kernel's own words, quoted from its log.
    expect_says "kernel: .*(unsigned|signature|rejected)"
    expect_modules_unchanged "$before"
    expect_gone "$NAME"
    expect_no_livepatch
    [ ! -e /run/klpctl/vex.json ] || klp_fail "a VEX document claims a patch that is not live"
    repro vulnerable
    end

    begin lockdown_wrongly_signed
    say "The same module with a signature the kernel cannot verify: one byte" \
        "of the kernel key's signature changed, and a valid signature by a" \
        "key the kernel does not trust. Both refused, nothing loaded."
    local bad
    for bad in badsig otherkey; do
        before=$(modules)
        kl apply "$B/cve-2024-1086-$bad.klp"
        expect_rc 6 "apply $bad"
        expect_says "signature|signed|EKEYREJECTED|ENOKEY|EBADMSG"
        expect_modules_unchanged "$before"
        expect_gone "$NAME"
        expect_no_livepatch
        [ ! -e /run/klpctl/vex.json ] || klp_fail "$bad: a VEX document claims a patch that is not live"
        repro vulnerable
    done
    end

    begin lockdown_signed
    say "The same module signed with the kernel's own module-signing key."
    kl apply "$SIGNED"
    expect_rc 0 "apply signed"
    expect_sysfs enabled 1
    repro fixed
    kl disable "$NAME"
    expect_rc 0 "disable"
    expect_gone "$NAME"
    repro vulnerable
    end
}

show_kernel() {
    echo "guest# uname -r; cat /sys/kernel/security/lockdown"
    uname -r
    cat /sys/kernel/security/lockdown 2>/dev/null
}

case $SCENARIO in
    cve) cve_main ;;
    lockdown) lockdown_main ;;
    *) echo "KLPTEST scenario FAIL unknown scenario $SCENARIO" ;;
esac
