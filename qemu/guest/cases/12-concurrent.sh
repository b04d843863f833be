# c12_concurrent: applies at the same time: two patches, the same bundle
# twice, and --no-wait against an apply that holds the lock (exit 9).
# scenarios: main

# apply_pair A B: runs `klpctl apply A` and `klpctl apply B` at the same
# time, shows both outputs, and leaves their exit codes in ra and rb.
apply_pair() {
    local pa pb
    klpctl apply "$1" >"$T/a" 2>&1 &
    pa=$!
    klpctl apply "$2" >"$T/b" 2>&1 &
    pb=$!
    wait $pa
    ra=$?
    wait $pb
    rb=$?
    sed 's/^/  a| /' "$T/a"
    sed 's/^/  b| /' "$T/b"
}

run_case() {
    local pa ra rb
    # Two different patches at once: both must end applied.
    apply_pair "$B/basic.klp" "$B/modobj.klp"
    [ "$ra" = 0 ] || klp_fail "first apply exited $ra"
    [ "$rb" = 0 ] || klp_fail "second apply exited $rb"
    expect_applied klp_basic
    expect_applied klp_modobj
    expect_cmdline "$BASIC_LINE"
    kl disable klp_basic
    expect_rc 0
    kl disable klp_modobj
    expect_rc 0
    expect_no_livepatch

    # The same bundle twice at once: one applies, the other finds it done.
    apply_pair "$B/basic.klp" "$B/basic.klp"
    [ "$ra" = 0 ] || klp_fail "first identical apply exited $ra"
    [ "$rb" = 0 ] || klp_fail "second identical apply exited $rb"
    [ "$(grep -c '^klp_basic ' /proc/modules)" = 1 ] || klp_fail "klp_basic loaded twice?"
    cat "$T/a" "$T/b" | grep -qi "already applied" \
        || klp_fail "neither identical apply says already applied"
    expect_applied klp_basic
    kl disable klp_basic
    expect_rc 0

    # While one apply waits on a stalled transition it holds the lock:
    # --no-wait must give up at once with exit 9.
    stall_target_load
    klpctl apply --timeout 60 "$B/stall.klp" >"$T/a" 2>&1 &
    pa=$!
    klp_wait_for 10 klp_patch_present klp_stall || klp_fail "stalled apply never loaded klp_stall"
    kl apply --no-wait "$B/basic.klp"
    expect_rc 9
    klp_module_loaded klp_basic && klp_fail "--no-wait apply loaded klp_basic"
    stall_release
    wait $pa
    ra=$?
    sed 's/^/  a| /' "$T/a"
    [ "$ra" = 0 ] || klp_fail "stalled apply exited $ra after release"
    expect_applied klp_stall
    kl disable klp_stall
    expect_rc 0
    expect_gone klp_stall
    target_unload klp_stall_target
    expect_no_livepatch
}
