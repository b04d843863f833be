//! What a boot must show: the planned cases passed, SMP as asked for, the
//! kernel's own selftests, and valid VEX documents.

use super::boot::{Boot, repo, say};
use super::cases::{CASES_DIR, ENV_CASE};
use std::collections::BTreeMap;
use std::process::Command;

/// The marker of an upstream selftest script, as the guest's
/// `qemu/guest/selftests/run.sh` names it: `test-shadow-vars.sh` ->
/// `st_shadow_vars`.
pub(crate) fn selftest_marker(script: &str) -> String {
    let stem = script.strip_suffix(".sh").unwrap_or(script);
    let stem = stem.strip_prefix("test-").unwrap_or(stem);
    format!("st_{}", stem.replace('-', "_"))
}

/// The selftests plan `qemu/mkselftests.sh` wrote for `release`: the
/// markers of the scripts to run. Missing or empty is an error, never a
/// skip.
pub(crate) fn selftests_plan(release: &str) -> Result<Vec<String>, String> {
    let path = repo().join(format!("target/qemu/selftests/{release}/plan"));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let plan: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("run "))
        .map(|s| selftest_marker(s.trim()))
        .collect();
    if plan.is_empty() {
        return Err(format!("{} lists no script to run", path.display()));
    }
    Ok(plan)
}

/// The `key=value` words of the guest's `KLPTEST-METRIC selftests` line.
pub(crate) fn selftests_metric(b: &Boot) -> Option<BTreeMap<String, String>> {
    let line = b
        .extra
        .iter()
        .find(|l| l.starts_with("KLPTEST-METRIC selftests "))?;
    Some(
        line.split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// Problems with the selftests boot beyond its markers: the guest must say
/// how many upstream cases ran, and that none failed.
pub(crate) fn selftests_problems(b: &Boot) -> Vec<String> {
    let Some(m) = selftests_metric(b) else {
        return vec!["no KLPTEST-METRIC selftests line".into()];
    };
    let num = |k: &str| m.get(k).and_then(|v| v.parse::<u64>().ok());
    let mut p = Vec::new();
    match num("cases") {
        Some(n) if n > 0 => {}
        _ => p.push("the selftests ran no case".into()),
    }
    if num("failed") != Some(0) {
        p.push(format!(
            "upstream selftest cases failed: {} ({})",
            m.get("failed").map_or("?", String::as_str),
            m.get("failures").map_or("?", String::as_str)
        ));
    }
    if num("passed") != num("cases") {
        p.push("not every selftest case that ran passed".into());
    }
    p
}

/// The cases one boot must pass: `env`, then the guest's plan, then any case
/// of `host_plan` (the case files' plan) the guest left out.
pub(crate) fn required<'a>(b: &'a Boot, host_plan: &'a [String]) -> Vec<&'a str> {
    let mut cases = vec![ENV_CASE];
    let guest = b.plans.iter().flat_map(|(_, cases)| cases);
    for case in guest.chain(host_plan) {
        if !cases.contains(&case.as_str()) {
            cases.push(case);
        }
    }
    cases
}

/// Problems with one boot; empty when the guest planned exactly `host_plan`
/// and every planned case passed.
pub(crate) fn problems(b: &Boot, host_plan: &[String]) -> Vec<String> {
    let mut p = Vec::new();
    if b.booted_release.as_deref() != Some(b.release.as_str()) {
        p.push(format!(
            "booted release {:?}, expected {}",
            b.booted_release, b.release
        ));
    }
    match &b.plans[..] {
        [] => p.push("no KLPTEST-PLAN line: the guest never listed its cases".into()),
        [(scenario, cases)] => {
            if scenario != b.scenario {
                p.push(format!(
                    "KLPTEST-PLAN is for scenario {scenario:?}, expected {}",
                    b.scenario
                ));
            }
            if cases.is_empty() {
                p.push("KLPTEST-PLAN lists no case".into());
            } else if cases[..] != host_plan[..] {
                p.push(format!(
                    "the guest planned {} cases [{}], {CASES_DIR} has {} [{}]",
                    cases.len(),
                    cases.join(" "),
                    host_plan.len(),
                    host_plan.join(" ")
                ));
            }
        }
        more => p.push(format!("{} KLPTEST-PLAN lines, expected one", more.len())),
    }
    let expected = required(b, host_plan);
    for case in &expected {
        match b.verdicts.get(*case) {
            Some(Ok(())) => {}
            Some(Err(reason)) => p.push(format!("{case}: FAIL {reason}")),
            None => p.push(format!(
                "{case}: no marker (not run, or the guest died first)"
            )),
        }
    }
    for (case, v) in &b.verdicts {
        if let Err(reason) = v
            && !expected.contains(&case.as_str())
        {
            p.push(format!("{case}: FAIL {reason}"));
        }
    }
    if !b.done {
        p.push("no KLPTEST-DONE: the guest panicked, hung or was killed".into());
    }
    if b.status != Some(0) {
        p.push(format!("run.sh exited {:?}", b.status));
    }
    p
}

/// The `key=value` words of the boot's `KLPTEST-METRIC <name>` line.
pub(crate) fn metric(b: &Boot, name: &str) -> Option<BTreeMap<String, String>> {
    let prefix = format!("KLPTEST-METRIC {name} ");
    let line = b.extra.iter().find(|l| l.starts_with(&prefix))?;
    Some(
        line.split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// Every boot runs with at least 2 vCPUs (`qemu/smp-modes`), and says so:
/// `qemu/guest/init` prints `KLPTEST-METRIC smp vcpus= online= accel= why=`.
/// A boot without that line, or with fewer CPUs online than asked for, or
/// fewer than 2, fails: SMP is never dropped silently.
pub(crate) fn smp_problems(b: &Boot) -> Vec<String> {
    let Some(m) = metric(b, "smp") else {
        return vec!["no KLPTEST-METRIC smp line: vCPUs and TCG mode unknown".into()];
    };
    let num = |k: &str| m.get(k).and_then(|v| v.parse::<u32>().ok());
    match (num("vcpus"), num("online")) {
        (Some(want), Some(online)) if online == want && online >= 2 => Vec::new(),
        _ => vec![format!(
            "SMP: vcpus={} online={}, expected at least 2 online, as many as asked for",
            m.get("vcpus").map_or("?", String::as_str),
            m.get("online").map_or("?", String::as_str)
        )],
    }
}

/// The case that prints the VEX documents: a boot whose plan has it must
/// show them ([`vex_problems`]).
pub(crate) const VEX_CASE: &str = "c28_vex";

/// The documents c28_vex printed (`KLPTEST-VEX <label> <json>`): each one
/// the case needs must be there, and every one must pass the OpenVEX schema
/// and klpctl's own (tests/vex/), checked by the validator dev tool.
pub(crate) const VEX_LABELS: &[&str] = &[
    "after_apply",
    "after_apply_cmd",
    "after_chain",
    "with_basic",
    "after_disable",
    "after_stall",
    "behind_back_stale",
    "reapplied",
];

pub(crate) fn vex_problems(b: &Boot) -> Vec<String> {
    let mut p = Vec::new();
    for label in VEX_LABELS {
        if !b.vex.iter().any(|(l, _)| l == label) {
            p.push(format!("no KLPTEST-VEX {label} document"));
        }
    }
    if b.vex.is_empty() {
        return p;
    }
    let dir = repo()
        .join("target/qemu/vex")
        .join(format!("{}-{}", b.release, b.scenario));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create target/qemu/vex");
    let mut files = Vec::new();
    for (i, (label, doc)) in b.vex.iter().enumerate() {
        let f = dir.join(format!("{i:02}-{label}.json"));
        std::fs::write(&f, doc).expect("write a VEX document");
        files.push(f);
    }
    for schema in ["openvex-0.2.0.schema.json", "klpctl-vex.schema.json"] {
        // Debian's python3 with python3-jsonschema (tests/run.sh), as in
        // tests/vex.rs.
        let python =
            std::env::var("KLPCTL_VEX_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let out = Command::new(python)
            .arg(repo().join("tests/vex/validate.py"))
            .arg(repo().join("tests/vex").join(schema))
            .args(&files)
            .output();
        match out {
            Ok(o) if o.status.success() => say(&format!(
                "qemu: {} {}: {} VEX documents valid against {schema}",
                b.release,
                b.scenario,
                files.len()
            )),
            Ok(o) => p.push(format!(
                "VEX documents in {} fail {schema}: {}{}",
                dir.display(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => p.push(format!("cannot run tests/vex/validate.py: {e}")),
        }
    }
    p
}
