#!/bin/sh
# klpctl's kernel test cases, run inside the QEMU guest (busybox sh) as
# /klptest/main.sh or /klptest/sigenforce.sh, for the scenario named in
# /klptest/scenario.
#
# One case per file, /klptest/cases/NN-name.sh, run in the order of NN.
# The file's marker is cNN_name, and its "# scenarios:" line names the
# scenarios it runs in. The plan comes from the files present and is printed
# before the first case:
#   KLPTEST-PLAN <scenario> <marker> <marker> ...
# so the host checks every planned case against its own reading of
# qemu/guest/cases/ and needs no list of its own.
#
# A case file defines run_case. Each case runs in a subshell, between begin
# (canary, timer) and end (KLPTEST-TIME, PASS unless a check failed), and
# checks behaviour (what /proc prints) and state (sysfs, /proc/modules,
# klpctl's exit code and `status --json`). Cases run in sequence on one
# kernel. Most leave it as they found it, with no livepatch loaded; the few
# that hand state on say so in their header (01 applies klp_basic for
# 02-05, 06 leaves klp_cumul_v3 for 07). A case that needs such state also
# defines setup_case, run after begin and before run_case: it establishes
# the state only when it is missing, so in the full sequence it does
# nothing, and the case can run alone.
#
# klptest.cases=cNN_name,... on the kernel command line (KLPTEST_CASES on
# the host, qemu/run.sh) narrows the plan to those cases of this scenario,
# in the usual order. A name that is not a case of this scenario fails the
# boot (KLPTEST plan FAIL), never an empty run that passes.
CASES=/klptest/cases
. "$CASES/lib.sh"

# case_marker FILE: the marker of a case file, NN-name.sh -> cNN_name.
case_marker() {
    local base=${1##*/}
    base=${base%.sh}
    echo "c${base%%-*}_${base#*-}"
}

# The files of this scenario, in order; a file without a scenarios line is
# an error, never a silent skip.
files=
plan=
for f in "$CASES"/[0-9]*.sh; do
    [ -e "$f" ] || continue
    tags=$(sed -n 's/^# scenarios: *//p' "$f" | head -n 1)
    if [ -z "$tags" ]; then
        echo "KLPTEST plan FAIL ${f##*/} has no '# scenarios:' line"
        exit 1
    fi
    case " $tags " in
        *" $SCENARIO "*)
            files="$files $f"
            plan="$plan $(case_marker "$f")"
            ;;
    esac
done
if [ -z "$plan" ]; then
    echo "KLPTEST plan FAIL no case in $CASES for scenario $SCENARIO"
    exit 1
fi

# The cases asked for by name, if any: each must be in this scenario's plan.
only=$(boot_param cases | tr ',' ' ')
if [ -n "$only" ]; then
    for want in $only; do
        case $want in
            *[!a-z0-9_]*)
                echo "KLPTEST plan FAIL klptest.cases: '$want' is no case marker (cNN_name)"
                exit 1
                ;;
        esac
        case " $plan " in
            *" $want "*) ;;
            *)
                echo "KLPTEST plan FAIL klptest.cases names $want, not a case of scenario $SCENARIO:$plan"
                exit 1
                ;;
        esac
    done
    echo "KLPTEST-NOTE klptest.cases: running only $only"
    all=$files
    files=
    plan=
    for f in $all; do
        case " $only " in
            *" $(case_marker "$f") "*)
                files="$files $f"
                plan="$plan $(case_marker "$f")"
                ;;
        esac
    done
fi
echo "KLPTEST-PLAN $SCENARIO$plan"

for f in $files; do
    marker=$(case_marker "$f")
    (
        . "$f" || exit 125
        type run_case >/dev/null 2>&1 || exit 126
        begin "$marker"
        if type setup_case >/dev/null 2>&1; then
            setup_case
        fi
        [ "$KLP_CASE_FAILED" = 1 ] || run_case
        end
    )
    rc=$?
    # end returns 0; anything else means the case never got there.
    [ "$rc" = 0 ] || echo "KLPTEST $marker FAIL ${f##*/} stopped with status $rc before its end"
done
exit 0
