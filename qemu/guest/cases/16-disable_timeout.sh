# c16_disable_timeout: a disable whose reverse transition stalls: exit 7,
# the patch switched back on and left applied.
# scenarios: main

# Exit 7 from disable: the reverse transition is blocked by klptest_hold,
# parked in the replacement; klpctl must switch the patch back on (write 1
# to enabled), wait for that to settle, and leave it applied.
run_case() {
    local t0 dt
    stall_target_load
    stall_release
    klp_wait_for 5 sh -c "[ \$(cat $STALL_PARAMS/left) = 1 ]" \
        || klp_fail "klptest_parked did not leave the wait function"
    kl apply "$B/stall.klp"
    expect_rc 0 "apply with no thread parked"
    expect_applied klp_stall
    hold_result_is 1
    hold_new 1
    klp_wait_for 5 hold_inside || klp_fail "klptest_hold did not enter the replacement"
    t0=$(klp_now_cs)
    kl disable --timeout 5 klp_stall
    dt=$(($(klp_now_cs) - t0))
    echo "disable returned after ${dt}cs"
    expect_rc 7
    [ "$dt" -ge 450 ] || klp_fail "disable gave up after ${dt}cs, before its 5 s timeout"
    [ "$dt" -le 1000 ] || klp_fail "disable took ${dt}cs, want about 5 s plus settling"
    kl_says "klptest_hold|[^0-9]$HOLD_PID([^0-9]|\$)" \
        || klp_fail "the blocking task (klptest_hold, pid $HOLD_PID) is not named"
    expect_says "stays enabled|switched back on"
    expect_says "unchanged"
    # Still applied and settled, and the patched function still runs.
    expect_applied klp_stall
    klp_module_loaded klp_stall || klp_fail "klp_stall not in /proc/modules"
    hold_inside || klp_fail "klptest_hold left the replacement while held"
    hold_new 0
    hold_result_is 1
    expect_applied klp_stall
    expect_not_forced
    kl disable klp_stall
    expect_rc 0 "disable after the release"
    expect_gone klp_stall
    hold_result_is 0
    target_unload klp_stall_target
    expect_no_livepatch
}
