# c21_state_unwritable: an unusable --state-dir is refused before loading;
# one that turns read-only during the transition gives exit 10.
# scenarios: main

# The state directory is checked before the kernel is touched: a read-only
# one, one under a missing parent, or one whose "streams" is a file is
# refused with nothing loaded. If the state still cannot be written after
# the patch went live, klpctl says so truthfully: applied, exit 10.
run_case() {
    local before sd pa ra
    before=$(modules)
    mkdir -p /tmp/sd-file /tmp/sd-ro
    : >/tmp/sd-file/streams
    mount -t tmpfs -o ro tmpfs /tmp/sd-ro
    for sd in /tmp/no-such-parent/state /tmp/sd-file /tmp/sd-ro; do
        kl apply --json --state-dir "$sd" "$B/basic.klp"
        expect_rc 1 "state dir $sd"
        expect_json_changed false
        expect_says "state directory|cannot create|EROFS|ENOTDIR"
        expect_modules_unchanged "$before"
        expect_no_record klp_basic
    done
    umount /tmp/sd-ro
    # Writable at the start, read-only by the time the transition is over.
    mount -t tmpfs tmpfs /tmp/sd-ro
    stall_target_load
    klpctl apply --json --state-dir /tmp/sd-ro "$B/stall.klp" >"$T/a" 2>"$T/a.err" &
    pa=$!
    klp_wait_for 10 klp_patch_present klp_stall || klp_fail "apply never loaded klp_stall"
    mount -o remount,ro /tmp/sd-ro
    stall_release
    wait $pa
    ra=$?
    sed 's/^/  a| /' "$T/a" "$T/a.err"
    [ "$ra" = 10 ] || klp_fail "apply exited $ra after its state became read-only, expected 10"
    grep -q '"result":"applied"' "$T/a" || klp_fail "JSON does not say applied"
    grep -q '"changed":true' "$T/a" || klp_fail "JSON does not say changed"
    grep -q '"warning":' "$T/a" || klp_fail "JSON has no warning"
    grep -qi "applied and live" "$T/a.err" || klp_fail "no warning on stderr"
    expect_applied klp_stall
    # Still read-only: "already applied", and still truthful about the state.
    kl apply --state-dir /tmp/sd-ro "$B/stall.klp"
    expect_rc 10 "re-apply, state still read-only"
    expect_says "already applied"
    mount -o remount,rw /tmp/sd-ro
    kl apply --state-dir /tmp/sd-ro "$B/stall.klp"
    expect_rc 0 "re-apply once the state is writable"
    expect_file /tmp/sd-ro/streams/stall "newest 1
cumulative 0"
    kl disable klp_stall
    expect_rc 0
    target_unload klp_stall_target
    umount /tmp/sd-ro
    rm -rf /tmp/sd-file /tmp/sd-ro
    expect_no_livepatch
}
