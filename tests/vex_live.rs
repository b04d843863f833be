//! `klpctl vex` against a fake kernel: a private mount namespace
//! (`unshare -m`) with tmpfs over `/sys/kernel` and `/run`, holding
//! `livepatch/<name>/{enabled,transition}` and klpctl's records of this
//! boot, so the claims and the document can be checked without livepatch.
//!
//! - One pass, one set of claims: while another process flips a patch's
//!   `transition` as fast as it can, every document has at least one
//!   statement, and one version number always means one set of statements.
//! - `/run/klpctl/vex.json` is mode 0644 whatever the umask.
//!
//! Needs root (mount namespaces); without it the tests skip on a developer
//! machine and fail under `CI=true`.

// Only the binary lookup is used here.
#[allow(dead_code, unused_imports)]
#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::Command;

/// Makes a fake `/sys/kernel` and `/run` in the current (private) mount
/// namespace, and defines `patch NAME STREAM VERSION CVES [PRODUCTS]`: a live patch
/// with klpctl's record of this boot saying it is applied.
const FAKE: &str = r#"
set -eu
mount --make-rprivate /
mount -t tmpfs fake-sys /sys/kernel
mount -t tmpfs fake-run /run
mkdir -p /sys/kernel/livepatch /run/klpctl/patches
boot=$(cat /proc/sys/kernel/random/boot_id)
patch() {
    mkdir -p /sys/kernel/livepatch/$1
    echo 1 >/sys/kernel/livepatch/$1/enabled
    echo 0 >/sys/kernel/livepatch/$1/transition
    printf 'boot_id %s\nname %s\nstream %s\nversion %s\nsha256 %064d\nkeys 830f41e2890ec4a0\ncves %s\nproducts %s\ntime 1764300000\nreplace 0\nstate applied\n' \
        "$boot" "$1" "$2" "$3" "$3" "$4" "${5:-}" >/run/klpctl/patches/$1
}
"#;

/// Runs `script` after [`FAKE`] in a new mount namespace; its stdout.
/// `None` when this machine cannot make one (not root).
fn in_fake_kernel(script: &str) -> Option<String> {
    let unshare = Command::new("unshare")
        .args(["-m", "bash", "-c"])
        .arg(format!("{FAKE}\n{script}"))
        .env("KLPCTL", common::runner::klpctl_bin())
        .output()
        .expect("run unshare");
    if !unshare.status.success() {
        let err = String::from_utf8_lossy(&unshare.stderr);
        let no_ns = err.contains("unshare failed") || err.contains("Operation not permitted");
        assert!(
            no_ns && std::env::var_os("CI").is_none(),
            "fake kernel script failed: {err}"
        );
        eprintln!("skipped: cannot make a mount namespace here ({err})");
        return None;
    }
    Some(String::from_utf8(unshare.stdout).expect("UTF-8 output"))
}

/// `"version":N` and the CVE names of one printed document.
fn version_and_cves(doc: &str) -> (u64, Vec<String>) {
    let v = doc
        .split("\"version\":")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no version in {doc}"));
    let cves = doc
        .split("{\"vulnerability\":{\"name\":\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap_or_default().to_owned())
        .collect();
    (v, cves)
}

#[test]
fn one_pass_gives_one_set_of_claims() {
    // klp_a flips between settled and in transition all the time; klp_b
    // stays. First klp_a alone (a document made from a claim that is gone
    // by the time statements are written has none), then both (statements
    // from another set than the version describes).
    let script = r#"
patch klp_a acme 3 CVE-2024-1234,CVE-2025-0001
t=/sys/kernel/livepatch/klp_a/transition
( while :; do echo 1 >$t; echo 0 >$t; done ) &
runs() { for i in $(seq 250); do "$KLPCTL" vex 2>/dev/null | tr -d '\n'; echo; done; }
runs
patch klp_b other 1 CVE-2024-9999
runs
kill $!
"#;
    let Some(out) = in_fake_kernel(script) else {
        return;
    };
    let mut seen: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut documents = 0;
    for doc in out.lines().filter(|l| !l.is_empty()) {
        documents += 1;
        assert!(
            !doc.contains("\"statements\":[]"),
            "a document without statements (invalid OpenVEX): {doc}"
        );
        let (version, mut cves) = version_and_cves(doc);
        cves.sort();
        assert!(!cves.is_empty(), "{doc}");
        let first = seen.entry(version).or_insert_with(|| cves.clone());
        assert_eq!(
            *first, cves,
            "version {version} stands for two sets of statements"
        );
    }
    // The toggler leaves klp_a claimed part of the time, and klp_b always
    // in the second half: the check above saw documents of both kinds.
    assert!(documents >= 250, "only {documents} documents in 500 runs");
    assert!(seen.values().any(|c| c.len() == 3), "{seen:?}");
    assert!(seen.values().any(|c| c.len() == 1), "{seen:?}");
}

#[test]
fn vex_json_is_world_readable_whatever_the_umask() {
    let script = r#"
patch klp_a acme 3 CVE-2024-1234
umask 077
"$KLPCTL" vex >/dev/null
stat -c %a /run/klpctl/vex.json
umask 0
"$KLPCTL" vex >/dev/null
stat -c %a /run/klpctl/vex.json
"#;
    let Some(out) = in_fake_kernel(script) else {
        return;
    };
    assert_eq!(out, "644\n644\n");
}

#[test]
fn a_document_that_cannot_be_made_leaves_no_stale_file() {
    // 33 live patches: more than one document describes. `klpctl vex`
    // refuses (exit 1) and prints nothing; after `disable`, which keeps
    // vex.json, the file from before is gone rather than left claiming.
    let script = r#"
set +e
cd /run
patch klp_a acme 1 CVE-2024-0001
"$KLPCTL" vex >/dev/null
[ -e /run/klpctl/vex.json ] && echo "before: file"
for i in $(seq 2 33); do patch klp_$i s$i 1 CVE-2024-$i; done
"$KLPCTL" vex >out 2>err; echo "vex: exit $? stdout $(wc -c <out) bytes"
grep -c "more patches, CVEs or products" err
"$KLPCTL" disable klp_nothere >/dev/null 2>err; echo "disable: exit $?"
grep -c "vex.json not updated (removed)" err
[ -e /run/klpctl/vex.json ] && echo "after: file" || echo "after: no file"
"#;
    let Some(out) = in_fake_kernel(script) else {
        return;
    };
    assert_eq!(
        out,
        "before: file\nvex: exit 1 stdout 0 bytes\n1\ndisable: exit 0\n1\nafter: no file\n"
    );
}

#[test]
fn a_failed_klpctl_vex_leaves_no_stale_file() {
    // The document of 32 live patches is written. Then one is disabled
    // behind klpctl's back and two more go live: 33, more than one
    // document holds. `klpctl vex` refuses (exit 1), and the old file,
    // which still claims the disabled patch's CVE, must not stay.
    let script = r#"
set +e
cd /run
for i in $(seq 1 32); do patch klp_$i s$i 1 CVE-2024-$i; done
"$KLPCTL" vex >/dev/null; echo "32: exit $?"
grep -c '"CVE-2024-1"' /run/klpctl/vex.json
rm -r /sys/kernel/livepatch/klp_1
patch klp_33 s33 1 CVE-2024-33
patch klp_34 s34 1 CVE-2024-34
"$KLPCTL" vex >out 2>err; echo "33: exit $? stdout $(wc -c <out) bytes"
grep -c "more patches, CVEs or products" err
[ -e /run/klpctl/vex.json ] && echo "after: file" || echo "after: no file"
# Negative: once it fits again, the file is back, without the claim.
rm -r /sys/kernel/livepatch/klp_34
"$KLPCTL" vex >/dev/null; echo "32 again: exit $?"
grep -c '"CVE-2024-1"' /run/klpctl/vex.json
true
"#;
    let Some(out) = in_fake_kernel(script) else {
        return;
    };
    assert_eq!(
        out,
        "32: exit 0\n1\n33: exit 1 stdout 0 bytes\n1\nafter: no file\n32 again: exit 0\n0\n"
    );
}

#[test]
fn long_products_within_the_documented_bounds_make_a_document() {
    // Six live patches, each with one CVE and 16 products of 256 bytes (the
    // most a manifest holds): about 30 KiB of document, well within 32
    // patches and 128 KiB. The claims' text must hold what 32 valid records
    // can hold, not refuse at a smaller bound of its own.
    let script = r#"
set +e
cd /run
prods() { s=""; for i in $(seq 1 16); do p="pkg:deb/$1/p$i@"; p="$p$(head -c $((256 - ${#p})) /dev/zero | tr '\0' 'v')"; s="$s${s:+ }$p"; done; echo "$s"; }
for i in $(seq 1 6); do patch klp_$i s$i 1 CVE-2024-$i "$(prods n$i)"; done
"$KLPCTL" vex >out 2>err; echo "exit $?"
grep -o '"vulnerability"' out | wc -l
cat err
"#;
    let Some(out) = in_fake_kernel(script) else {
        return;
    };
    assert_eq!(out, "exit 0\n6\n");
}

#[test]
fn a_record_rewritten_with_other_cves_gets_a_new_version() {
    // Same patch, payload digest and apply time; its record now lists
    // other CVEs (another signed manifest for the same payload). Other
    // statements are another version: one version, one set of claims.
    let script = r#"
set +e
cd /run
patch klp_a acme 1 CVE-2024-0001
patch klp_b beta 1 CVE-2024-0002
show() { "$KLPCTL" vex >d; grep -o '"version":[0-9]*,' d | tr '\n' ' '; grep -o 'CVE-2024-000[0-9]' d | sort | tr '\n' ' '; echo; }
show
patch klp_b beta 1 CVE-2024-0003,CVE-2024-0004
show
# Negative: nothing changed, nothing moves.
"$KLPCTL" vex | grep -o '"version":[0-9]*,' ; true
"#;
    let Some(out) = in_fake_kernel(script) else {
        return;
    };
    assert_eq!(
        out,
        "\"version\":1, CVE-2024-0001 CVE-2024-0002 \n\
         \"version\":2, CVE-2024-0001 CVE-2024-0003 CVE-2024-0004 \n\
         \"version\":2,\n"
    );
}

#[test]
fn a_patch_whose_transition_cannot_be_read_is_not_claimed() {
    // Claimed only when sysfs says the transition is over (`0`); a
    // `transition` that is missing or reads anything else says nothing.
    let script = r#"
set +e
cd /run
patch klp_a acme 1 CVE-2024-0001
patch klp_b beta 1 CVE-2024-0002
patch klp_c gamma 1 CVE-2024-0003
printf '0\033\n' >/sys/kernel/livepatch/klp_b/transition
rm /sys/kernel/livepatch/klp_c/transition
"$KLPCTL" vex >d; grep -o 'CVE-2024-000[0-9]' d | sort | tr '\n' ' '; echo
"#;
    let Some(out) = in_fake_kernel(script) else {
        return;
    };
    assert_eq!(out, "CVE-2024-0001 \n");
}

#[test]
fn a_product_naming_the_running_kernel_is_listed_once() {
    // A vendor names its own kernel build as the bundle's product: the same
    // purl klpctl adds for the running kernel. OpenVEX tools (and klpctl's
    // own schema) refuse a statement listing one product twice.
    let script = r#"
kernel="pkg:generic/linux-kernel@$(uname -r | sed 's/+/%2B/g')"
patch klp_a acme 3 CVE-2024-1234 "$kernel pkg:deb/debian/acme@3"
"$KLPCTL" vex
echo "KERNEL $kernel"
"#;
    let Some(out) = in_fake_kernel(script) else {
        return;
    };
    let kernel = out
        .lines()
        .find_map(|l| l.strip_prefix("KERNEL "))
        .expect("the script names the kernel purl");
    let doc = out.lines().next().expect("a document");
    let products = doc
        .split("\"products\":[")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or_else(|| panic!("no products in {doc}"));
    assert_eq!(
        products,
        format!("{{\"@id\":\"{kernel}\"}},{{\"@id\":\"pkg:deb/debian/acme@3\"}}"),
        "{doc}"
    );
}
