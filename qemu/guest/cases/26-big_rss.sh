# c26_big_rss: figures: peak RSS of apply, small and 16 MiB bundle (KLPTEST-
# METRIC apply_peak_rss_kb); klpctl's memory must not grow with the bundle.
# scenarios: main

# rss_apply BUNDLE NAME: apply under peak-rss, leave the figure in RSS_KB,
# and disable again.
rss_apply() {
    echo "+ peak-rss klpctl apply $1"
    peak-rss klpctl apply "$1" >"$T/out" 2>"$T/err"
    KL_RC=$?
    sed 's/^/  | /' "$T/out"
    sed 's/^/  ! /' "$T/err"
    expect_rc 0 "apply $1"
    RSS_KB=$(sed -n 's/^peak-rss: \([0-9]*\) KiB$/\1/p' "$T/err")
    [ -n "$RSS_KB" ] || klp_fail "peak-rss printed no figure"
    [ "$2" = klp_big ] && expect_cmdline "klpctl-test: big patched 5a"
    expect_applied "$2"
    kl disable "$2"
    expect_rc 0
    expect_gone "$2"
}

run_case() {
    local basic_kb size
    rss_apply "$B/basic.klp" klp_basic
    basic_kb=$RSS_KB
    size=$(wc -c <"$B/big.klp")
    rss_apply "$B/big.klp" klp_big
    echo "KLPTEST-METRIC apply_peak_rss_kb basic=$basic_kb big=$RSS_KB big_bundle_bytes=$size"
    # klpctl streams the payload (hash, then a sealed memfd), so its memory
    # must not grow with the bundle: allow 1 MiB over the small bundle.
    [ -n "$basic_kb" ] && [ -n "$RSS_KB" ] && [ "$RSS_KB" -gt $((basic_kb + 1024)) ] \
        && klp_fail "peak RSS ${RSS_KB} KiB for a 16 MiB bundle vs ${basic_kb} KiB for a small one"
    expect_no_livepatch
}
