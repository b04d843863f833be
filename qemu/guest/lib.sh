# Helpers shared by the guest scripts (busybox sh). Sourced.
#
# Output protocol, one line each on the console:
#   KLPTEST <case> PASS
#   KLPTEST <case> FAIL <reason>
# Before each case a canary goes to /dev/kmsg so the case's kernel log can be
# cut out of dmesg; on failure that slice is printed.

KLP_CASE=
KLP_CASE_FAILED=0

klp_case_begin() {
    KLP_CASE=$1
    KLP_CASE_FAILED=0
    klp_case_canary
    echo "--- case $KLP_CASE"
}

# The kernel log since this case's canary (its last one: a case that set
# up its own state writes it again when the setup is done).
klp_case_dmesg() {
    dmesg | awk -v c="klptest: case $KLP_CASE start" '
        index($0, c) { on = 1; out = "" }
        on { out = out $0 "\n" }
        END { printf "%s", out }'
}

# klp_case_canary: write the case's canary again, so klp_case_dmesg shows
# only what happens from here on.
klp_case_canary() {
    echo "klptest: case $KLP_CASE start" >/dev/kmsg
}

klp_fail() {
    [ "$KLP_CASE_FAILED" = 1 ] && return 0
    KLP_CASE_FAILED=1
    echo "KLPTEST $KLP_CASE FAIL $*"
    echo "--- kernel log of case $KLP_CASE:"
    klp_case_dmesg
    echo "--- end of kernel log"
}

klp_pass() {
    [ "$KLP_CASE_FAILED" = 1 ] && return 0
    echo "KLPTEST $KLP_CASE PASS"
}

# klp_case_end: PASS unless a check already failed.
klp_case_end() {
    klp_pass
}

# Seconds since boot with centisecond resolution, as an integer of 1/100 s.
klp_now_cs() {
    local up
    read -r up _ </proc/uptime
    echo "${up%.*}${up#*.}" | sed 's/^0*//;s/^$/0/'
}

# klp_wait_for TIMEOUT_S CMD...: poll every 0.1 s until CMD succeeds.
klp_wait_for() {
    local limit=$(($1 * 10)) i=0
    shift
    while ! "$@"; do
        i=$((i + 1))
        [ "$i" -ge "$limit" ] && return 1
        usleep 100000
    done
    return 0
}

klp_module_loaded() {
    grep -q "^$1 " /proc/modules
}

klp_patch_present() {
    [ -d "/sys/kernel/livepatch/$1" ]
}

klp_patch_gone() {
    [ ! -d "/sys/kernel/livepatch/$1" ]
}

# klp_json_flat < JSON: flatten one JSON document into "path=value" lines,
# e.g. patches.0.name=klp_basic, patches.0.enabled=true, leftover=[] for an
# empty array. Strings are printed without quotes and escapes are kept as
# written. Malformed input prints "json-error=<offset>" and fails, so callers
# can tell "field missing" from "klpctl printed something that is not JSON".
klp_json_flat() {
    awk '
    function skip() { while (i <= n && index(" \t\r\n", substr(s, i, 1)) > 0) i++ }
    function str(    out, c) {
        i++; out = ""
        while (i <= n) {
            c = substr(s, i, 1)
            if (c == "\\") { out = out c substr(s, i + 1, 1); i += 2; continue }
            if (c == "\"") { i++; return out }
            out = out c; i++
        }
        bad = 1; return out
    }
    function key(path, k) { return path == "" ? k : path "." k }
    function val(path,    c, k, idx, start) {
        skip(); c = substr(s, i, 1)
        if (c == "{") {
            i++; skip()
            if (substr(s, i, 1) == "}") { i++; print path "={}"; return }
            while (!bad) {
                skip()
                if (substr(s, i, 1) != "\"") { bad = 1; return }
                k = str(); skip()
                if (substr(s, i, 1) != ":") { bad = 1; return }
                i++; val(key(path, k)); skip()
                c = substr(s, i, 1); i++
                if (c == "}") return
                if (c != ",") { bad = 1; return }
            }
            return
        }
        if (c == "[") {
            i++; skip()
            if (substr(s, i, 1) == "]") { i++; print path "=[]"; return }
            idx = 0
            while (!bad) {
                val(key(path, idx)); idx++; skip()
                c = substr(s, i, 1); i++
                if (c == "]") return
                if (c != ",") { bad = 1; return }
            }
            return
        }
        if (c == "\"") { k = str(); print path "=" k; return }
        start = i
        while (i <= n && index(",}] \t\r\n", substr(s, i, 1)) == 0) i++
        if (i == start) { bad = 1; return }
        print path "=" substr(s, start, i - start)
    }
    { s = s $0 "\n" }
    END {
        n = length(s); i = 1; bad = 0
        val("")
        skip()
        if (bad || i <= n) { print "json-error=" i; exit 1 }
    }'
}

# klp_json_get PATH < JSON: the value at PATH; fails when absent.
klp_json_get() {
    klp_json_flat | awk -v p="$1" '
        index($0, p "=") == 1 { print substr($0, length(p) + 2); found = 1 }
        END { exit !found }'
}
