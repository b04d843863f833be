# c40_diy_baseline: the do-it-yourself way next to klpctl, in the same guest
# and on the same module: `insmod klp_basic.ko` plus a shell loop reading
# /sys/kernel/livepatch/klp_basic/transition every 10 ms until it reads 0,
# versus `klpctl apply basic.klp`. DIY_RUNS runs of each, interleaved (the
# order alternates), each checked (patched /proc/cmdline, settled) and
# cleaned up untimed. Each run also times `klpctl verify` of the same
# bundle, the same way: the goal is klpctl within 1.1 x DIY plus the cost
# of verifying. Prints KLPTEST-METRIC diy_baseline: medians, the ratio
# klpctl / DIY, that ratio with the verify cost taken off klpctl, and
# klpctl's own overhead in ms.
# scenarios: load

DIY_RUNS=6
# Shipped only in this scenario's initramfs (qemu/mkinitramfs.sh).
DIY_KO=/klptest/diy/klp_basic.ko
LP=/sys/kernel/livepatch/klp_basic

# Both ways are timed the same way, by the kernel log's own clock (µs): the
# shell writes "klptime: <way> <run> start|end" to /dev/kmsg with its
# builtin echo right before and after, so each figure covers the same
# fork/exec of the loader and, for DIY, the polling.
mark() { echo "klptime: $1 $2 $3" >/dev/kmsg; }

diy_apply() { # RUN
    local t
    mark diy "$1" start
    insmod "$DIY_KO" || { mark diy "$1" end; klp_fail "insmod $DIY_KO (run $1)"; return; }
    while read -r t <"$LP/transition" && [ "$t" != 0 ]; do
        usleep 10000
    done
    mark diy "$1" end
    expect_cmdline "$BASIC_LINE"
    expect_file "$LP/transition" 0
}

# What a DIY user must do to remove it again (untimed): disable, wait for the
# directory to go and refcnt to reach 0, rmmod.
diy_remove() {
    echo 0 >"$LP/enabled" || klp_fail "echo 0 > $LP/enabled"
    klp_wait_for 60 klp_patch_gone klp_basic || klp_fail "klp_basic still in sysfs 60 s after disabling"
    klp_wait_for 10 sh -c '[ "$(cat /sys/module/klp_basic/refcnt)" = 0 ]' \
        || klp_fail "klp_basic refcnt stays $(cat /sys/module/klp_basic/refcnt)"
    rmmod klp_basic || klp_fail "rmmod klp_basic"
    expect_cmdline "$ORIG_CMDLINE"
}

# verify_run RUN: `klpctl verify` of the bundle klpctl_apply applies.
verify_run() {
    mark verify "$1" start
    klpctl verify "$B/basic.klp" >"$T/out" 2>"$T/err"
    KL_RC=$?
    mark verify "$1" end
    expect_rc 0 "klpctl verify, run $1"
}

klpctl_apply() { # RUN
    mark klpctl "$1" start
    klpctl apply "$B/basic.klp" >"$T/out" 2>"$T/err"
    KL_RC=$?
    mark klpctl "$1" end
    expect_rc 0 "klpctl apply, run $1"
    expect_cmdline "$BASIC_LINE"
    expect_file "$LP/transition" 0
}

# diy_report < the case's kernel log, per run:
#   "<way> <run> <total_us> <kernel_us> <before_us> <after_us>"
# kernel_us: livepatch's "enabling patch" -> "patching complete" in that run;
# before_us: start -> "enabling patch" (fork/exec, for klpctl its checks,
# memfd and lock, then the kernel loading the module); after_us: "patching
# complete" -> end (noticing it, for klpctl its records, exit).
diy_report() {
    awk -v patch=klp_basic '
    function us(line,    t) {
        t = line
        sub(/^\[ */, "", t); sub(/\].*/, "", t)
        split(t, p, ".")
        sub(/^0+/, "", p[2])
        return p[1] * 1000000 + p[2]
    }
    /klptime: (diy|klpctl) [0-9]+ (start|end)$/ {
        t = $0; sub(/.*klptime: /, "", t); split(t, w, " ")
        if (w[3] == "start") { way = w[1]; run = w[2]; t0[way, run] = us($0) }
        else { t1[w[1], w[2]] = us($0); way = "" }
        next
    }
    way == "" { next }
    index($0, "enabling patch '"'"'" patch "'"'"'") { ten[way, run] = us($0) }
    index($0, "'"'"'" patch "'"'"': patching complete") { tdone[way, run] = us($0) }
    END {
        for (k in t0) {
            split(k, w, SUBSEP)
            if (!(k in t1) || !(k in ten) || !(k in tdone)) { print "missing " w[1] " " w[2]; continue }
            print w[1], w[2], t1[k] - t0[k], tdone[k] - ten[k], ten[k] - t0[k], t1[k] - tdone[k]
        }
    }'
}

# verify_report < the case's kernel log: "verify <run> <total_us>" per run.
verify_report() {
    awk '
    function us(line,    t) {
        t = line
        sub(/^\[ */, "", t); sub(/\].*/, "", t)
        split(t, p, ".")
        sub(/^0+/, "", p[2])
        return p[1] * 1000000 + p[2]
    }
    /klptime: verify [0-9]+ start$/ { t = $0; sub(/.*klptime: verify /, "", t); sub(/ .*/, "", t); t0[t] = us($0) }
    /klptime: verify [0-9]+ end$/ { t = $0; sub(/.*klptime: verify /, "", t); sub(/ .*/, "", t); if (t in t0) print "verify", t, us($0) - t0[t] }'
}

run_case() {
    local i
    [ -f "$DIY_KO" ] || { klp_fail "no $DIY_KO in the initramfs"; return; }
    for i in $(seq "$DIY_RUNS"); do
        if [ $((i % 2)) = 1 ]; then
            diy_apply "$i"; diy_remove
            klpctl_apply "$i"; kl disable klp_basic; expect_rc 0 "disable, run $i"
        else
            klpctl_apply "$i"; kl disable klp_basic; expect_rc 0 "disable, run $i"
            diy_apply "$i"; diy_remove
        fi
        verify_run "$i"
        expect_no_livepatch
        [ "$KLP_CASE_FAILED" = 0 ] || return
    done
    klp_case_dmesg | grep -E 'klptime: |livepatch: ' | sed 's/^/  k| /'
    klp_case_dmesg | diy_report >"$T/diy"
    klp_case_dmesg | verify_report >"$T/verify"
    [ "$(wc -l <"$T/verify")" = "$DIY_RUNS" ] || { klp_fail "verify: $(wc -l <"$T/verify") runs timed, expected $DIY_RUNS"; return; }
    sed 's/^/  diy| /' "$T/diy"
    grep -q '^missing' "$T/diy" && { klp_fail "diy: $(grep '^missing' "$T/diy" | head -n 1)"; return; }
    [ "$(wc -l <"$T/diy")" = $((2 * DIY_RUNS)) ] || { klp_fail "diy: $(wc -l <"$T/diy") runs timed, expected $((2 * DIY_RUNS))"; return; }
    # Medians over the runs, in ms: total per way (ratio = klpctl / DIY),
    # the kernel's own enable -> complete, and each way's time beyond the
    # kernel's, per run, then the median: klpctl_overhead is what klpctl
    # costs beyond the kernel's enable (exec, verify, memfd, lock, the
    # kernel loading the module, noticing the end, records), diy_overhead
    # the same for insmod and the 10 ms poll, so their difference is what
    # klpctl adds over DIY; before/after split each at the kernel's enable.
    # With 2 CPUs the kernel's transition either completes at once or waits
    # for its 1 s retry, so the totals (and their ratio) swing by a second
    # from run to run; the overheads do not.
    awk -v runs="$DIY_RUNS" -v vfile="$T/verify" '
    function med(key,    n, i, j, v, a) {
        n = 0
        for (i = 1; i <= runs; i++) a[++n] = val[key, i]
        for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
        return (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) / 1000
    }
    {
        val[$1, $2] = $3; val[$1 "_kernel", $2] = $4; val[$1 "_over", $2] = $3 - $4
        val[$1 "_before", $2] = $5; val[$1 "_after", $2] = $6
    }
    END {
        while ((getline l < vfile) > 0) { split(l, f, " "); val["verify", f[2]] = f[3] }
        k = med("klpctl"); d = med("diy"); v = med("verify")
        ko = med("klpctl_over"); dov = med("diy_over")
        printf "KLPTEST-METRIC diy_baseline_ms runs=%d klpctl=%.1f diy=%.1f ratio=%.3f verify=%.1f ratio_beyond_verify=%.3f kernel_enable=%.1f klpctl_overhead=%.1f diy_overhead=%.1f klpctl_minus_diy_overhead=%.1f klpctl_before=%.1f diy_before=%.1f klpctl_after=%.1f diy_after=%.1f\n", \
            runs, k, d, k / d, v, (k - v) / d, med("klpctl_kernel"), ko, dov, ko - dov, \
            med("klpctl_before"), med("diy_before"), med("klpctl_after"), med("diy_after")
    }' "$T/diy" >"$T/diy.metric"
    cat "$T/diy.metric"
    grep -q '^KLPTEST-METRIC diy_baseline_ms ' "$T/diy.metric" || klp_fail "no diy_baseline_ms figures"
}
