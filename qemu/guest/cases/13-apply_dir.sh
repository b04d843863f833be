# c13_apply_dir: apply --dir: every bundle for this kernel applied, junk and
# other kernels' bundles reported, exit 0; then the same with --json, twice.
# scenarios: main

# dir_json_result FILE: the "result" of the entry for FILE (its "bundle"
# is FILE or a path ending in /FILE) in the last apply --dir --json output,
# flattened in $T/flat.
dir_json_result() {
    local idx
    idx=$(sed -n "s|^results\.\([0-9]*\)\.bundle=\(.*/\)\{0,1\}$1\$|\1|p" "$T/flat" | head -n 1)
    [ -n "$idx" ] || return 1
    sed -n "s/^results\.$idx\.result=//p" "$T/flat"
}

# check_dir_json CHANGED: the apply --dir --json output in $T/out is one
# JSON object that names every file of the directory, says "exit":0 and
# "changed":CHANGED.
check_dir_json() {
    local f r
    klp_json_flat <"$T/out" >"$T/flat" || { klp_fail "apply --dir --json printed invalid JSON"; return; }
    expect_json_changed "$1"
    r=$(klp_json_get exit <"$T/out")
    [ "$r" = 0 ] || klp_fail "--json says \"exit\":$r, expected 0"
    for f in basic.klp modobj.klp; do
        r=$(dir_json_result "$f") || { klp_fail "--json does not list $f"; continue; }
        case $1 in
            true) [ "$r" = applied ] || klp_fail "--json: $f result '$r', expected applied" ;;
            false) [ "$r" = "already applied" ] || klp_fail "--json: $f result '$r', expected already applied" ;;
        esac
    done
    for f in other_cumul_v1.klp junk.klp empty.klp truncated.klp notes.txt; do
        r=$(dir_json_result "$f") || { klp_fail "--json does not list $f"; continue; }
        case $r in
            applied | "already applied") klp_fail "--json: $f result '$r'" ;;
        esac
    done
}

run_case() {
    local f
    # Junk files and other kernels' bundles are reported but do not change
    # the exit code: every bundle for this kernel applied, so exit 0.
    kl apply --dir "$B/dir"
    expect_rc 0 "apply --dir"
    expect_applied klp_basic
    expect_applied klp_modobj
    klp_module_loaded klp_cumul_v1 && klp_fail "bundle for the other kernel was loaded"
    for f in junk.klp empty.klp truncated.klp notes.txt; do
        kl_says "$f" || klp_fail "junk file $f not reported"
    done
    kl_says "other_cumul_v1" || klp_fail "other kernel's bundle not reported"
    expect_cmdline "$BASIC_LINE"
    kl disable klp_basic
    expect_rc 0
    kl disable klp_modobj
    expect_rc 0
    expect_no_livepatch

    # The same with --json: "changed":true the first time, and a second,
    # identical run changes nothing, still with exit 0.
    kl apply --json --dir "$B/dir"
    expect_rc 0 "apply --dir --json"
    check_dir_json true
    expect_applied klp_basic
    expect_applied klp_modobj
    kl apply --json --dir "$B/dir"
    expect_rc 0 "second apply --dir --json"
    check_dir_json false
    expect_applied klp_basic
    expect_applied klp_modobj
    klp_module_loaded klp_cumul_v1 && klp_fail "bundle for the other kernel was loaded"
    expect_cmdline "$BASIC_LINE"
    kl disable klp_basic
    expect_rc 0
    kl disable klp_modobj
    expect_rc 0
    expect_no_livepatch
}
