#!/bin/sh
# The kernel's own livepatch selftests with klpctl as the loader: the
# "selftests" scenario, run in the guest as /klptest/selftests.sh (busybox
# sh; the upstream scripts themselves run under /bin/bash, bash-static).
#
# /klptest/st/ holds what mkselftests.sh made on the host for this kernel:
# the upstream scripts (unmodified), the plain test modules, one signed
# bundle per livepatch and parameter set, the list of livepatch modules, and
# the plan ("run SCRIPT" / "exclude SCRIPT REASON"). At test time the
# scripts are copied to /tmp/st, and functions.sh gets klpctl-loader.sh
# appended, whose helpers replace upstream's of the same name.
#
# Output:
#   KLPTEST-PLAN selftests st_<script>...          the scripts to run
#   KLPTEST-SELFTEST <script> <n> ok|FAIL rules=... <name>   one per case
#   KLPTEST-SELFTEST-EXCLUDED <script> <reason>
#   KLPTEST st_<script> PASS|FAIL <reason>
#   KLPTEST-TIME st_<script> <n>cs
#   KLPTEST-METRIC selftests scripts=.. excluded=.. cases=.. passed=.. adapted=.. failed=.. failures=..
. /klptest/lib.sh

ST=/klptest/st
W=/tmp/st
mkdir -p "$W" /sys/kernel/debug
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug

marker() { # test-call-backs.sh -> st_call_backs
    local m=${1%.sh}
    m=${m#test-}
    echo "st_$(echo "$m" | tr -- '-' '_')"
}

plan=
while read -r what script reason; do
    case $what in
        run) plan="$plan $(marker "$script")" ;;
        exclude) echo "KLPTEST-SELFTEST-EXCLUDED $script $reason" ;;
    esac
done <"$ST/plan"
if [ -z "$plan" ] || [ ! -x /bin/bash ] || [ ! -f "$ST/scripts/functions.sh" ]; then
    echo "KLPTEST-PLAN selftests"
    echo "KLPTEST st_setup FAIL nothing to run (plan '$plan', bash, functions.sh)"
    exit 1
fi
echo "KLPTEST-PLAN selftests$plan"
[ -f "$ST/source" ] && sed 's/^/KLPTEST-SELFTEST-SOURCE /' "$ST/source"

cp "$ST"/scripts/*.sh "$W/"
cat "$ST/scripts/functions.sh" "$ST/klpctl-loader.sh" >"$W/functions.sh"
ln -sfn "$ST/modules" "$W/test_modules"

# leave_clean: after a script that died half-way, remove what it left so
# the next script starts from a kernel without test patches or modules.
leave_clean() {
    local p m
    for p in /sys/kernel/livepatch/*; do
        [ -d "$p" ] || continue
        timeout -s KILL 120 klpctl disable "${p##*/}" >/dev/null 2>&1
    done
    for m in $(awk '$1 ~ /^test_klp/ {print $1}' /proc/modules); do
        timeout -s KILL 120 klpctl disable "$m" >/dev/null 2>&1
        grep -q "^$m " /proc/modules && rmmod "$m" 2>/dev/null
    done
}

scripts=0 excluded=0 cases=0 passed=0 adapted=0 failed=0 failures=
excluded=$(grep -c '^exclude ' "$ST/plan")
for m in $plan; do
    script=$(awk -v m="$m" '$1 == "run" {print $2}' "$ST/plan" | while read -r s; do
        [ "$(marker "$s")" = "$m" ] && echo "$s"
    done)
    scripts=$((scripts + 1))
    klp_case_begin "$m"
    t0=$(klp_now_cs)
    (cd "$W" && ST_SCRIPT=$m timeout -s KILL 900 /bin/bash "./$script") >"$W/$m.log" 2>&1
    rc=$?
    cat "$W/$m.log"
    echo "KLPTEST-TIME $m $(($(klp_now_cs) - t0))cs"
    n=$(grep -c '^TEST: ' "$W/$m.log")
    ok=$(grep -c "^KLPTEST-SELFTEST $m [0-9]* ok " "$W/$m.log")
    bad=$(grep -c "^KLPTEST-SELFTEST $m [0-9]* FAIL " "$W/$m.log")
    # Adapted: the expectation was changed beyond naming the command that
    # ran (klpctl apply/disable, insmod for modprobe).
    ad=$(grep "^KLPTEST-SELFTEST $m [0-9]* ok " "$W/$m.log" |
        grep -cE ' rules=[^ ]*(params|rmmod|refused)')
    cases=$((cases + n))
    passed=$((passed + ok))
    adapted=$((adapted + ad))
    # A case that started but reached no verdict (its script died in a
    # helper) failed too.
    nf=$((n - ok))
    failed=$((failed + nf))
    if [ "$nf" -gt 0 ]; then
        names=$(grep '^TEST: ' "$W/$m.log" | sed 's/^TEST: //' | awk -v ok="$(grep "^KLPTEST-SELFTEST $m [0-9]* ok " "$W/$m.log" | awk '{print $3}' | tr '\n' ' ')" '
            BEGIN { split(ok, o, " "); for (i in o) good[o[i]] = 1 }
            !(NR in good) { gsub(/ /, "_"); printf "%s%s", (c++ ? "," : ""), $0 }')
        failures="$failures${failures:+,}$script:$names"
    fi
    if [ "$rc" = 0 ] && [ "$n" -gt 0 ] && [ "$ok" = "$n" ] && [ "$bad" = 0 ]; then
        klp_pass
    else
        klp_fail "$script exited $rc: $ok of $n cases ok"
        leave_clean
    fi
done
echo "KLPTEST-METRIC selftests release=$(uname -r) scripts=$scripts excluded=$excluded cases=$cases passed=$passed adapted=$adapted failed=$failed failures=${failures:-none}"
exit 0
