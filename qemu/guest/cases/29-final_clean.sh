# c29_final_clean: last in every scenario: no livepatch and no module left
# loaded.
# scenarios: main sigenforce

run_case() {
    expect_no_livepatch
    local left
    left=$(modules)
    [ -z "$left" ] || klp_fail "modules left loaded: $left"
}
