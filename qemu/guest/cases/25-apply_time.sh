# c25_apply_time: figures: apply, verify and disable of basic.klp timed
# against the kernel's own log (KLPTEST-METRIC apply_time_us and
# disable_time_us).
# scenarios: main

# How many apply/disable cycles apply_time measures; it reports medians.
TIMING_RUNS=5

# timed LABEL CMD...: like kl, but under exec-time, which brackets the run
# with "klptime: LABEL start|end" lines in the kernel log. Sets KL_RC and
# EXEC_NS (CLOCK_MONOTONIC from just before fork to just after wait).
timed() {
    local label=$1
    shift
    echo "+ exec-time -k '$label' $*"
    exec-time -k "$label" "$@" >"$T/out" 2>"$T/err"
    KL_RC=$?
    sed 's/^/  | /' "$T/out"
    sed 's/^/  ! /' "$T/err"
    echo "  = exit $KL_RC"
    EXEC_NS=$(sed -n 's/^exec-time: \([0-9]*\) ns$/\1/p' "$T/err")
    [ -n "$EXEC_NS" ] || klp_fail "exec-time printed no figure for $label"
}

# timing_report RUNS < "op run ns" lines followed by the case's kernel log:
# per run and median, in microseconds, of
#   klpctl      exec-time's CLOCK_MONOTONIC figure, fork to wait
#   to_complete klptime start -> livepatch "patching complete"
#   transition  "starting patching transition" -> "patching complete"
#   enable      "enabling patch" -> "patching complete" (apply only: adds
#               klp_init_transition and the ftrace set-up before the start)
#   after       "patching complete" -> klptime end (klpctl noticing the
#               end, recording, exiting)
#   verify      exec-time's figure for `klpctl verify` of the same bundle:
#               klpctl's own checks, without the kernel (apply's metric)
# all kernel figures from the kernel log's own timestamps. Prints one line
# per run, then KLPTEST-METRIC lines; fails when a run misses a figure.
timing_report() {
    awk -v runs="$1" -v patch=klp_basic '
    function us(line,    t) {
        t = line
        sub(/^\[ */, "", t); sub(/\].*/, "", t)
        split(t, p, ".")
        # busybox awk reads "000123" as octal: drop the leading zeros.
        sub(/^0+/, "", p[2])
        return p[1] * 1000000 + p[2]
    }
    function median(op, key,    n, i, j, v, a) {
        n = 0
        for (i = 1; i <= runs; i++)
            if ((op, i, key) in val) a[++n] = val[op, i, key]
        if (n < runs) return ""
        for (i = 2; i <= n; i++) {
            v = a[i]
            for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]
            a[j + 1] = v
        }
        return n % 2 ? a[(n + 1) / 2] : int((a[n / 2] + a[n / 2 + 1]) / 2)
    }
    # First the exec-time figures, "op run ns".
    NF == 3 && $1 ~ /^(verify|apply|disable)$/ { val[$1, $2, "klpctl"] = int($3 / 1000); next }
    # The timestamp may hold spaces ("[    9.5]"), so fields are counted
    # from the marker on.
    /klptime: (apply|disable) [0-9]+ (start|end)$/ {
        t = $0; sub(/.*klptime: /, "", t); split(t, w, " ")
        if (w[3] == "start") { op = w[1]; run = w[2]; t0[op, run] = us($0) }
        else { t1[w[1], w[2]] = us($0); op = "" }
        next
    }
    op == "" { next }
    index($0, "enabling patch '"'"'" patch "'"'"'") { ten[op, run] = us($0) }
    index($0, "'"'"'" patch "'"'"': starting " (op == "apply" ? "" : "un") "patching transition") { tbeg[op, run] = us($0) }
    index($0, "'"'"'" patch "'"'"': " (op == "apply" ? "" : "un") "patching complete") { tdone[op, run] = us($0) }
    END {
        bad = 0
        for (o = 1; o <= 2; o++) {
            op = o == 1 ? "apply" : "disable"
            for (i = 1; i <= runs; i++) {
                if (!((op, i) in t0) || !((op, i) in t1) || !((op, i) in tbeg) || !((op, i) in tdone) \
                    || (op == "apply" && !((op, i) in ten)) || !((op, i, "klpctl") in val)) {
                    print "timing: " op " " i ": missing figures" \
                        " (exec-time " ((op, i, "klpctl") in val) ", kernel log: start " ((op, i) in t0) \
                        ", enabling " ((op, i) in ten) ", starting " ((op, i) in tbeg) \
                        ", complete " ((op, i) in tdone) ", end " ((op, i) in t1) ")"
                    bad = 1
                    continue
                }
                val[op, i, "to_complete"] = tdone[op, i] - t0[op, i]
                val[op, i, "transition"] = tdone[op, i] - tbeg[op, i]
                if (op == "apply") val[op, i, "enable"] = tdone[op, i] - ten[op, i]
                val[op, i, "after"] = t1[op, i] - tdone[op, i]
                printf "timing: %s %d: klpctl %d us, start->complete %d us, transition %d us, %scomplete->exit %d us\n", \
                    op, i, val[op, i, "klpctl"], val[op, i, "to_complete"], val[op, i, "transition"], \
                    op == "apply" ? "enable->complete " val[op, i, "enable"] " us, " : "", val[op, i, "after"]
            }
        }
        if (bad) exit 1
        k = median("apply", "klpctl")
        printf "KLPTEST-METRIC apply_time_us runs=%d klpctl=%s to_complete=%s transition=%s enable=%s after=%s verify=%s vs_1s_poll=%.4f\n", \
            runs, k, median("apply", "to_complete"), median("apply", "transition"), \
            median("apply", "enable"), median("apply", "after"), median("verify", "klpctl"), k / 1000000
        printf "KLPTEST-METRIC disable_time_us runs=%d klpctl=%s to_complete=%s transition=%s after=%s\n", \
            runs, median("disable", "klpctl"), median("disable", "to_complete"), \
            median("disable", "transition"), median("disable", "after")
    }'
}

# apply_time: case 1 (the basic patch) timed precisely, TIMING_RUNS times,
# next to the kernel's own transition time from its log. Figures only: no
# time limit is asserted, the machines are too noisy for that.
run_case() {
    local i
    : >"$T/times"
    for i in $(seq "$TIMING_RUNS"); do
        # The same checks as apply's first half (parse, signatures, digest),
        # without the kernel: what klpctl itself costs before finit_module.
        timed "verify $i" klpctl verify "$B/basic.klp"
        expect_rc 0 "verify run $i"
        echo "verify $i $EXEC_NS" >>"$T/times"
        timed "apply $i" klpctl apply "$B/basic.klp"
        expect_rc 0 "apply run $i"
        echo "apply $i $EXEC_NS" >>"$T/times"
        expect_cmdline "$BASIC_LINE"
        expect_file /sys/kernel/livepatch/klp_basic/transition 0
        timed "disable $i" klpctl disable klp_basic
        expect_rc 0 "disable run $i"
        echo "disable $i $EXEC_NS" >>"$T/times"
        expect_cmdline "$ORIG_CMDLINE"
        klp_patch_gone klp_basic || klp_fail "klp_basic still in sysfs after disable run $i"
    done
    # The raw events behind the figures, for anyone who doubts them.
    klp_case_dmesg | grep -E 'klptime: |livepatch: ' | sed 's/^/  k| /'
    { cat "$T/times"; klp_case_dmesg; } | timing_report "$TIMING_RUNS" >"$T/timing" \
        || klp_fail "$(grep 'missing figures' "$T/timing" | head -n 1)"
    cat "$T/timing"
    expect_no_livepatch
}
