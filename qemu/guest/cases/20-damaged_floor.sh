# c20_damaged_floor: a damaged rollback floor refuses every apply of its
# stream (exit 5) until --allow-downgrade replaces it.
# scenarios: main

# A floor file that cannot be parsed refuses every apply of its stream
# (exit 5, naming the file) instead of meaning "no floor"; only
# --allow-downgrade replaces it. Both places: /run/klpctl and --state-dir.
run_case() {
    local sd=/tmp/klpctl-dmg-state before v
    rm -rf "$sd" /run/klpctl/streams/cumul
    kl apply "$B/cumul_v2.klp"
    expect_rc 0 "apply v2"
    kl disable klp_cumul_v2
    expect_rc 0
    echo junk >/run/klpctl/streams/cumul
    before=$(modules)
    for v in 1 3; do
        kl apply "$B/cumul_v$v.klp"
        expect_rc 5 "v$v with a damaged per-boot floor"
        expect_says "rollback floor is damaged"
        expect_says "/run/klpctl/streams/cumul"
        expect_modules_unchanged "$before"
        expect_no_record "klp_cumul_v$v"
    done
    expect_file /run/klpctl/streams/cumul junk
    kl apply --allow-downgrade "$B/cumul_v1.klp"
    expect_rc 0 "v1 with --allow-downgrade resets the floor"
    expect_file /run/klpctl/streams/cumul "newest 1
cumulative 1"
    kl disable klp_cumul_v1
    expect_rc 0
    # In --state-dir: a symlink to a FIFO is as damaged as junk, and must
    # neither be followed nor block.
    rm -rf /run/klpctl
    mkdir -p "$sd/streams"
    mkfifo /tmp/floor-fifo
    ln -s /tmp/floor-fifo "$sd/streams/cumul"
    kl apply --state-dir "$sd" "$B/cumul_v1.klp"
    expect_rc 5 "v1 with a symlink to a FIFO as persistent floor"
    expect_says "$sd/streams/cumul"
    expect_modules_unchanged "$before"
    [ -L "$sd/streams/cumul" ] || klp_fail "the damaged floor was replaced without --allow-downgrade"
    rm -rf "$sd" /tmp/floor-fifo
    expect_no_livepatch
}
