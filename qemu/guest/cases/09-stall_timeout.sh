# c09_stall_timeout: an enable blocked by a parked thread: exit 7 after
# --timeout, the blocking task named, the patch reverted.
# scenarios: main

run_case() {
    stall_target_load
    local t0 dt
    t0=$(klp_now_cs)
    kl apply --timeout 5 "$B/stall.klp"
    dt=$(($(klp_now_cs) - t0))
    echo "apply returned after ${dt}cs"
    expect_rc 7
    [ "$dt" -le 900 ] || klp_fail "apply took ${dt}cs, want about 7 s at most"
    [ "$dt" -ge 450 ] || klp_fail "apply gave up after ${dt}cs, before its 5 s timeout"
    kl_says "klptest_parked|[^0-9]$STALL_PID([^0-9]|\$)" \
        || klp_fail "the blocking task (klptest_parked, pid $STALL_PID) is not named"
    expect_gone klp_stall
    # Reverted: once released, the thread runs the original function.
    stall_release
    klp_wait_for 5 sh -c '[ "$(cat /sys/module/klp_stall_target/parameters/left)" = 1 ]' \
        || klp_fail "thread did not leave the wait function"
    expect_file /sys/module/klp_stall_target/parameters/result 0
    target_unload klp_stall_target
}
