//! Kernel tests: boot Debian 12's newest 6.1 and 6.12 kernels and the newest
//! 7.x of trixie-backports under QEMU and run klpctl against real livepatches.
//!
//! The shell scripts in `qemu/` do the work (fetch kernels, build the test
//! modules and the static klpctl, pack and sign bundles, build initramfs
//! images, boot). Each kernel boots three times for the cases: once for the main scenario, which
//! runs the cases of `qemu/guest/cases/` in sequence, and once with
//! `module.sig_enforce=1` for the signature-enforcement case, and once for
//! the `load` scenario (busy tasks on every CPU, and the do-it-yourself
//! baseline). Every boot has at least 2 vCPUs, in the TCG mode
//! `qemu/smp-modes` gives the kernel's series and scenario. The guest
//! prints its plan (`KLPTEST-PLAN <scenario> <case>...`), then
//! `KLPTEST <case> PASS|FAIL <reason>` per case and `KLPTEST-DONE` at the
//! end. This test reads the same case files, requires the guest's plan to be
//! exactly theirs, and every planned case to pass on every kernel. A missing
//! marker is a failure.
//!
//! Each kernel also boots the `selftests` scenario: the kernel's own
//! livepatch selftests, fetched from that kernel's Debian source package and
//! run with klpctl as the loader (`qemu/fetch-selftests.sh`,
//! `qemu/mkselftests.sh`, `qemu/guest/selftests/`). Its plan is
//! `target/qemu/selftests/<release>/plan`, one marker per upstream script;
//! every script must pass, and the guest's `KLPTEST-METRIC selftests` line
//! must report cases run and none failed.
//!
//! This test never skips on its own: without QEMU, network or root it fails.
//! For quick local loops `KLPCTL_SKIP_QEMU=1` skips it, except under
//! `CI=true`, where that variable is itself a failure.

// The crash-loop guard across real reboots (qemu/reboot.sh).
#[path = "qemu_reboot/mod.rs"]
mod reboot;

// The rig's helpers are pub(crate): tests/qemu_arm64.rs includes this file
// as a module to boot the arm64 tier with the same plans and checks (it has
// no test harness, so none of the #[test]s here are compiled into it).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Kernel series the matrix must cover.
const SERIES: &[&str] = &["6.1", "6.12", "7.x"];

/// Host-side limit for one boot, enforced by run.sh with `timeout`.
pub(crate) const BOOT_TIMEOUT_S: u64 = 600;

/// The same for the `load` scenario: where `qemu/smp-modes` runs a kernel
/// under load with single-threaded TCG, each transition takes about two
/// minutes (the load case's klpctl allows 300 s per step), and the case
/// makes at least 6 of them.
pub(crate) const LOAD_BOOT_TIMEOUT_S: u64 = 2400;

/// Where the guest's case files live; `mkinitramfs.sh` ships them all.
pub(crate) const CASES_DIR: &str = "qemu/guest/cases";

pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) kernel_args: &'static [&'static str],
}

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "main",
        kernel_args: &[],
    },
    Scenario {
        name: "sigenforce",
        kernel_args: &["module.sig_enforce=1"],
    },
    // Busy tasks on every CPU while patches apply and disable, and the
    // do-it-yourself baseline (cases 40 and 41). A boot of its own, because
    // `qemu/smp-modes` may choose another TCG mode for a kernel under load.
    Scenario {
        name: "load",
        kernel_args: &[],
    },
];

/// The kernel's own livepatch selftests, run with klpctl as the loader.
/// Not in `SCENARIOS`: its plan comes from the selftests that
/// `qemu/mkselftests.sh` prepared for each kernel, not from case files.
pub(crate) const SELFTESTS: Scenario = Scenario {
    name: "selftests",
    kernel_args: &[],
};

/// Marker every scenario prints first: `qemu/guest/init` checks the booted
/// kernel before the scenario's plan runs.
pub(crate) const ENV_CASE: &str = "env";

/// One case file, `NN-name.sh`: its marker `cNN_name` and the scenarios its
/// `# scenarios:` line names.
#[derive(Debug)]
pub(crate) struct CaseFile {
    pub(crate) marker: String,
    pub(crate) scenarios: Vec<String>,
}

/// Reads one case file as the guest's `run.sh` does. Stricter than the
/// guest: the host also refuses malformed names and unknown scenarios, so a
/// case cannot drop out of every plan unnoticed.
pub(crate) fn parse_case_file(file: &str, text: &str) -> Result<CaseFile, String> {
    let stem = file
        .strip_suffix(".sh")
        .ok_or_else(|| format!("{file}: not a .sh file"))?;
    let (num, name) = stem
        .split_once('-')
        .ok_or_else(|| format!("{file}: not named NN-name.sh"))?;
    if num.len() != 2 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{file}: the number must be two digits"));
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("{file}: the name must be [a-z0-9_]+"));
    }
    let tags: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# scenarios:"))
        .collect();
    let [tags] = tags[..] else {
        return Err(format!(
            "{file}: needs exactly one '# scenarios:' line, has {}",
            tags.len()
        ));
    };
    let scenarios: Vec<String> = tags.split_whitespace().map(str::to_owned).collect();
    if scenarios.is_empty() {
        return Err(format!("{file}: '# scenarios:' names no scenario"));
    }
    if let Some(bad) = scenarios
        .iter()
        .find(|s| !SCENARIOS.iter().any(|sc| sc.name == s.as_str()))
    {
        return Err(format!("{file}: unknown scenario {bad}"));
    }
    if !text.lines().any(|l| l.trim_end() == "run_case() {") {
        return Err(format!("{file}: defines no run_case"));
    }
    Ok(CaseFile {
        marker: format!("c{num}_{name}"),
        scenarios,
    })
}

/// The case files `[0-9]*.sh` of `dir`, in the order the guest runs them
/// (its glob sorts by name, bytewise in the guest's C locale).
pub(crate) fn case_files(dir: &Path) -> Result<Vec<CaseFile>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(|c: char| c.is_ascii_digit()) && name.ends_with(".sh") {
            names.push(name);
        }
    }
    names.sort();
    let mut files: Vec<CaseFile> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 && names[i - 1].get(..2) == name.get(..2) {
            return Err(format!("{} and {name} share a number", names[i - 1]));
        }
        let text = std::fs::read_to_string(dir.join(name))
            .map_err(|e| format!("cannot read {}/{name}: {e}", dir.display()))?;
        files.push(parse_case_file(name, &text)?);
    }
    Ok(files)
}

/// The markers the guest must plan for `scenario`, in order.
pub(crate) fn plan_for(files: &[CaseFile], scenario: &str) -> Vec<String> {
    files
        .iter()
        .filter(|f| f.scenarios.iter().any(|s| s == scenario))
        .map(|f| f.marker.clone())
        .collect()
}

/// What one boot produced.
pub(crate) struct Boot {
    pub(crate) release: String,
    pub(crate) scenario: &'static str,
    pub(crate) wall: Duration,
    pub(crate) status: Option<i32>,
    pub(crate) log: PathBuf,
    /// Verdict per case: Ok(()) for PASS, Err(reason) for FAIL.
    pub(crate) verdicts: BTreeMap<String, Result<(), String>>,
    /// Every `KLPTEST-PLAN <scenario> <case>...` line: (scenario, cases).
    pub(crate) plans: Vec<(String, Vec<String>)>,
    pub(crate) done: bool,
    pub(crate) booted_release: Option<String>,
    pub(crate) extra: Vec<String>,
    /// Every `KLPTEST-VEX <label> <document>` line: (label, document).
    pub(crate) vex: Vec<(String, String)>,
}

/// Writes straight to the process's stderr, which the test harness does not
/// capture, so timings show up in a plain `cargo test` run.
pub(crate) fn say(msg: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{msg}");
}

pub(crate) fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

pub(crate) fn skip_requested() -> bool {
    if std::env::var("KLPCTL_SKIP_QEMU").is_ok_and(|v| v == "1") {
        assert!(
            !is_ci(),
            "KLPCTL_SKIP_QEMU=1 is set under CI=true: the QEMU kernel tests must run in CI"
        );
        say("qemu: KLPCTL_SKIP_QEMU=1, skipping the kernel tests (local runs only)");
        return true;
    }
    false
}

pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs qemu/prepare.sh; returns (series, release) pairs.
fn prepare() -> Vec<(String, String)> {
    let start = Instant::now();
    let out = Command::new("bash")
        .arg(repo().join("qemu/prepare.sh"))
        .current_dir(repo())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run bash qemu/prepare.sh");
    assert!(
        out.status.success(),
        "qemu/prepare.sh failed ({}); its stderr above says why",
        out.status
    );
    let kernels: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(s, r)| (s.to_owned(), r.to_owned()))
        .collect();
    for series in SERIES {
        assert!(
            kernels.iter().any(|(s, _)| s == series),
            "prepare.sh resolved no {series} kernel (got {kernels:?})"
        );
    }
    say(&format!(
        "qemu: prepared {} in {:.1}s",
        kernels
            .iter()
            .map(|(_, r)| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        start.elapsed().as_secs_f64()
    ));
    kernels
}

/// Extracts the plan, "KLPTEST <case> PASS" / "KLPTEST <case> FAIL
/// <reason>" and the other markers from a console log. Markers are matched
/// anywhere in a line, since firmware escapes or kernel messages may precede
/// them.
pub(crate) fn parse_log(text: &str, boot: &mut Boot) {
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(at) = line.find("KLPTEST-PLAN ") {
            let mut words = line[at + "KLPTEST-PLAN ".len()..].split_whitespace();
            let scenario = words.next().unwrap_or("").to_owned();
            boot.plans
                .push((scenario, words.map(str::to_owned).collect()));
        }
        if let Some(at) = line.find("KLPTEST-BOOT ") {
            boot.booted_release = line[at..]
                .split_whitespace()
                .find_map(|w| w.strip_prefix("release="))
                .map(str::to_owned);
        }
        if let Some(at) = line.find("KLPTEST-VEX ") {
            let rest = &line[at + "KLPTEST-VEX ".len()..];
            let (label, doc) = rest.split_once(' ').unwrap_or((rest, ""));
            boot.vex.push((label.to_owned(), doc.to_owned()));
        }
        if line.contains("KLPTEST-DONE") {
            boot.done = true;
        }
        for tag in [
            "KLPTEST-TIME ",
            "KLPTEST-METRIC ",
            "KLPTEST-SELFTEST-EXCLUDED ",
            "KLPTEST-SELFTEST-SOURCE ",
            "KLPTEST-NOTE ",
        ] {
            if let Some(at) = line.find(tag) {
                boot.extra.push(line[at..].to_owned());
            }
        }
        let Some(at) = line.find("KLPTEST ") else {
            continue;
        };
        let mut words = line[at + "KLPTEST ".len()..].splitn(3, ' ');
        let (Some(case), Some(verdict)) = (words.next(), words.next()) else {
            continue;
        };
        let reason = words.next().unwrap_or("").to_owned();
        let entry = match verdict {
            "PASS" => Ok(()),
            "FAIL" => Err(reason),
            _ => continue,
        };
        // A FAIL sticks even if a later line claims PASS for the same case.
        let slot = boot.verdicts.entry(case.to_owned()).or_insert(Ok(()));
        if slot.is_ok() {
            *slot = entry;
        }
    }
}

pub(crate) fn boot(release: &str, sc: &Scenario) -> Boot {
    let start = Instant::now();
    let status = Command::new("bash")
        .arg(repo().join("qemu/run.sh"))
        .args([
            "-q",
            "-s",
            sc.name,
            "-t",
            &if sc.name == "load" {
                LOAD_BOOT_TIMEOUT_S
            } else {
                BOOT_TIMEOUT_S
            }
            .to_string(),
            release,
        ])
        .args(sc.kernel_args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("cannot run bash qemu/run.sh");
    let log = repo().join(format!("target/qemu/logs/{release}-{}.log", sc.name));
    let mut b = Boot {
        release: release.to_owned(),
        scenario: sc.name,
        wall: start.elapsed(),
        status: status.code(),
        log: log.clone(),
        verdicts: BTreeMap::new(),
        plans: Vec::new(),
        done: false,
        booted_release: None,
        extra: Vec::new(),
        vex: Vec::new(),
    };
    match std::fs::read(&log) {
        Ok(bytes) => parse_log(&String::from_utf8_lossy(&bytes), &mut b),
        Err(e) => {
            b.verdicts.insert(
                "log".into(),
                Err(format!("cannot read {}: {e}", log.display())),
            );
        }
    }
    b
}

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

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The static klpctl the guests run (the device build, without authoring
/// commands), chosen as `qemu/prepare.sh` chooses it.
fn device_binary() -> PathBuf {
    std::env::var_os("KLPCTL_DEVICE")
        .filter(|p| !p.is_empty())
        .map_or_else(
            || repo().join("target/device/x86_64-unknown-linux-musl/release/klpctl"),
            PathBuf::from,
        )
}

/// Serialises whole suite runs on this checkout: two `cargo test` runs at
/// once would rebuild each other's initramfs images and write the same logs.
pub(crate) fn suite_lock() -> std::fs::File {
    let dir = repo().join("target/qemu");
    std::fs::create_dir_all(&dir).expect("cannot create target/qemu");
    let f = std::fs::File::create(dir.join(".suite.lock"))
        .expect("cannot create target/qemu/.suite.lock");
    if f.try_lock().is_err() {
        say("qemu: another QEMU suite run holds target/qemu/.suite.lock; waiting");
        f.lock().expect("cannot lock target/qemu/.suite.lock");
    }
    f
}

#[test]
fn qemu_kernel_matrix() {
    if skip_requested() {
        return;
    }
    let _lock = suite_lock();
    let suite = Instant::now();
    // The plans the guests must print, from the same files mkinitramfs.sh
    // ships: a case file that stops being planned fails here, not silently.
    let files = case_files(&repo().join(CASES_DIR))
        .unwrap_or_else(|e| panic!("{CASES_DIR} is not a valid set of cases: {e}"));
    for sc in SCENARIOS {
        assert!(
            !plan_for(&files, sc.name).is_empty(),
            "no case in {CASES_DIR} runs in scenario {}",
            sc.name
        );
    }
    let kernels = prepare();
    let prepared = suite.elapsed();
    let bin = device_binary();
    match std::fs::metadata(&bin) {
        Ok(m) => say(&format!(
            "qemu: KLPTEST-METRIC klpctl_binary bytes={} path={}",
            m.len(),
            bin.display()
        )),
        Err(e) => say(&format!("qemu: cannot stat {}: {e}", bin.display())),
    }

    // Every (kernel, scenario) boot goes into one queue that `jobs` threads
    // drain, so boots run side by side and neither core idles while the
    // other still has boots to do. Every guest has 2 vCPUs; under
    // multi-threaded TCG each is a host thread (qemu/smp-modes).
    let jobs: usize = std::env::var("KLPCTL_QEMU_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get().min(2)))
        .max(1);
    let queue: Vec<(usize, String, usize)> = kernels
        .iter()
        .enumerate()
        .flat_map(|(k, (_, release))| (0..=SCENARIOS.len()).map(move |s| (k, release.clone(), s)))
        .collect();
    let queue = Arc::new(Mutex::new(queue.into_iter()));
    let handles: Vec<_> = (0..jobs)
        .map(|_| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut done = Vec::new();
                loop {
                    let next = queue.lock().expect("boot queue poisoned").next();
                    let Some((k, release, s)) = next else {
                        break;
                    };
                    // The last scenario of each kernel is the kernel's own selftests.
                    let b = boot(&release, SCENARIOS.get(s).unwrap_or(&SELFTESTS));
                    say(&format!(
                        "qemu: {} {}: {:.1}s, {} case markers{}",
                        b.release,
                        b.scenario,
                        b.wall.as_secs_f64(),
                        b.verdicts.len(),
                        if b.done { "" } else { ", NO KLPTEST-DONE" }
                    ));
                    done.push(((k, s), b));
                }
                done
            })
        })
        .collect();
    let mut boots: Vec<((usize, usize), Boot)> = Vec::new();
    for h in handles {
        boots.extend(h.join().expect("boot thread panicked"));
    }
    // Report in matrix order, whichever thread ran what.
    boots.sort_by_key(|(order, _)| *order);
    let boots: Vec<Boot> = boots.into_iter().map(|(_, b)| b).collect();

    let mut failures = Vec::new();
    let mut per_kernel: BTreeMap<&str, Vec<(&str, Duration)>> = BTreeMap::new();
    for b in &boots {
        per_kernel
            .entry(b.release.as_str())
            .or_default()
            .push((b.scenario, b.wall));
        for line in &b.extra {
            say(&format!("qemu: {} {}: {line}", b.release, b.scenario));
        }
        let (host_plan, mut p) = if b.scenario == SELFTESTS.name {
            match selftests_plan(&b.release) {
                Ok(plan) => (plan, selftests_problems(b)),
                Err(e) => (Vec::new(), vec![e]),
            }
        } else {
            (plan_for(&files, b.scenario), Vec::new())
        };
        p.extend(problems(b, &host_plan));
        p.extend(smp_problems(b));
        if b.scenario == "main" {
            p.extend(vex_problems(b));
        }
        let expected = required(b, &host_plan);
        let passed = expected
            .iter()
            .filter(|c| matches!(b.verdicts.get(**c), Some(Ok(()))))
            .count();
        say(&format!(
            "qemu: {} {}: {passed}/{} cases passed in {:.1}s (log {})",
            b.release,
            b.scenario,
            expected.len(),
            b.wall.as_secs_f64(),
            b.log.display()
        ));
        if !p.is_empty() {
            say(&format!(
                "qemu: --- last lines of {}:\n{}",
                b.log.display(),
                tail(&b.log, 60)
            ));
            failures.extend(
                p.into_iter()
                    .map(|x| format!("{} {}: {x}", b.release, b.scenario)),
            );
        }
    }
    // The kernel's own selftests, one row per kernel.
    say("qemu: kernel livepatch selftests with klpctl as the loader:");
    say(&format!(
        "qemu:   {:<24} {:>7} {:>8} {:>5} {:>6} {:>7} {:>6} {:>7}  failures",
        "kernel", "scripts", "excluded", "cases", "passed", "adapted", "failed", "wall_s"
    ));
    for b in boots.iter().filter(|b| b.scenario == SELFTESTS.name) {
        let m = selftests_metric(b).unwrap_or_default();
        let g = |k: &str| m.get(k).map_or("-", String::as_str).to_owned();
        say(&format!(
            "qemu:   {:<24} {:>7} {:>8} {:>5} {:>6} {:>7} {:>6} {:>7.1}  {}",
            b.release,
            g("scripts"),
            g("excluded"),
            g("cases"),
            g("passed"),
            g("adapted"),
            g("failed"),
            b.wall.as_secs_f64(),
            g("failures")
        ));
    }
    // The vCPUs and TCG mode of every boot, as the guest saw them.
    say("qemu: vCPUs and TCG mode per boot (qemu/smp-modes):");
    for b in &boots {
        let m = metric(b, "smp").unwrap_or_default();
        let g = |k: &str| m.get(k).map_or("-", String::as_str).to_owned();
        say(&format!(
            "qemu:   {:<24} {:<10} vcpus={} online={} accel={} why={}",
            b.release,
            b.scenario,
            g("vcpus"),
            g("online"),
            g("accel"),
            g("why")
        ));
    }
    // Figures, not assertions: wall times depend on the machine and its load.
    for (release, walls) in &per_kernel {
        let total: Duration = walls.iter().map(|(_, w)| *w).sum();
        let each: String = walls
            .iter()
            .map(|(sc, w)| format!(" {sc}={:.1}", w.as_secs_f64()))
            .collect();
        say(&format!(
            "qemu: {release}: KLPTEST-METRIC boot_wall_s{each} total={:.1}",
            total.as_secs_f64()
        ));
    }
    say(&format!(
        "qemu: KLPTEST-METRIC suite_wall_s prepare={:.1} total={:.1}",
        prepared.as_secs_f64(),
        suite.elapsed().as_secs_f64()
    ));
    assert!(
        failures.is_empty(),
        "QEMU kernel tests failed:\n  {}",
        failures.join("\n  ")
    );
}

/// A boot of the main scenario on a made-up kernel, before its log is read.
fn test_boot() -> Boot {
    Boot {
        release: "6.1.0-1-amd64".into(),
        scenario: "main",
        wall: Duration::ZERO,
        status: Some(0),
        log: PathBuf::new(),
        verdicts: BTreeMap::new(),
        plans: Vec::new(),
        done: false,
        booted_release: None,
        extra: Vec::new(),
        vex: Vec::new(),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn markers_are_parsed_strictly() {
    let mut b = test_boot();
    let log = "\x1b[2JKLPTEST-BOOT release=6.1.0-1-amd64 scenario=main uptime=1.0\r\n\
               KLPTEST env PASS\n\
               KLPTEST-PLAN main c01_apply c02_reapply\r\n\
               KLPTEST c01_apply FAIL klpctl exited 1, expected 0\n\
               KLPTEST c01_apply PASS\n\
               KLPTEST-TIME env 3cs\n";
    parse_log(log, &mut b);
    assert_eq!(b.booted_release.as_deref(), Some("6.1.0-1-amd64"));
    assert_eq!(b.verdicts.get("env"), Some(&Ok(())));
    assert_eq!(
        b.verdicts.get("c01_apply"),
        Some(&Err("klpctl exited 1, expected 0".into()))
    );
    assert_eq!(
        b.plans,
        [("main".to_owned(), strings(&["c01_apply", "c02_reapply"]))]
    );
    let p = problems(&b, &strings(&["c01_apply", "c02_reapply"]));
    assert!(p.iter().any(|x| x.starts_with("c01_apply: FAIL")), "{p:?}");
    assert!(
        p.iter().any(|x| x.starts_with("c02_reapply: no marker")),
        "{p:?}"
    );
    assert!(p.iter().any(|x| x.contains("KLPTEST-DONE")), "{p:?}");
    assert_eq!(b.extra, ["KLPTEST-TIME env 3cs"]);
}

#[test]
fn the_plan_must_match_the_case_files_and_pass() {
    let host = strings(&["c01_apply", "c02_reapply", "c03_final_clean"]);
    let all_pass = "KLPTEST-BOOT release=6.1.0-1-amd64 scenario=main uptime=1.0\n\
                    KLPTEST env PASS\n\
                    KLPTEST c01_apply PASS\n\
                    KLPTEST c02_reapply PASS\n\
                    KLPTEST c03_final_clean PASS\n\
                    KLPTEST-DONE rc=0 uptime=9.0 tainted=0\n";
    let with_plan = |plan: &str| {
        all_pass.replacen(
            "KLPTEST env PASS\n",
            &format!("KLPTEST env PASS\n{plan}\n"),
            1,
        )
    };
    let check = |log: &str| {
        let mut b = test_boot();
        parse_log(log, &mut b);
        problems(&b, &host)
    };

    let p = check(&with_plan(
        "KLPTEST-PLAN main c01_apply c02_reapply c03_final_clean",
    ));
    assert!(p.is_empty(), "{p:?}");

    // Every case passed, but the guest said nothing of its plan.
    let p = check(all_pass);
    assert_eq!(
        p,
        ["no KLPTEST-PLAN line: the guest never listed its cases"]
    );

    // A plan that shrank (a case file not shipped, or not tagged): its case
    // is still required, and the plan itself is a problem.
    let p = check(
        &with_plan("KLPTEST-PLAN main c01_apply c03_final_clean")
            .replace("KLPTEST c02_reapply PASS\n", ""),
    );
    assert!(
        p.iter().any(|x| x.starts_with("the guest planned 2 cases")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|x| x.starts_with("c02_reapply: no marker")),
        "{p:?}"
    );

    // A case the guest planned must pass even if the host does not know it.
    let p = check(&with_plan(
        "KLPTEST-PLAN main c01_apply c02_reapply c03_final_clean c04_new",
    ));
    assert!(
        p.iter().any(|x| x.starts_with("c04_new: no marker")),
        "{p:?}"
    );

    let p = check(&with_plan("KLPTEST-PLAN main"));
    assert!(p.iter().any(|x| x == "KLPTEST-PLAN lists no case"), "{p:?}");

    let p = check(&with_plan(
        "KLPTEST-PLAN sigenforce c01_apply c02_reapply c03_final_clean",
    ));
    assert!(
        p.iter()
            .any(|x| x.starts_with("KLPTEST-PLAN is for scenario")),
        "{p:?}"
    );

    let twice = "KLPTEST-PLAN main c01_apply c02_reapply c03_final_clean";
    let p = check(&with_plan(&format!("{twice}\n{twice}")));
    assert_eq!(p, ["2 KLPTEST-PLAN lines, expected one"]);
}

#[test]
fn selftests_markers_and_metric() {
    assert_eq!(selftest_marker("test-shadow-vars.sh"), "st_shadow_vars");
    assert_eq!(selftest_marker("test-livepatch.sh"), "st_livepatch");
    let mut b = test_boot();
    b.scenario = "selftests";
    assert_eq!(selftests_problems(&b), ["no KLPTEST-METRIC selftests line"]);
    parse_log(
        "KLPTEST-METRIC selftests release=x scripts=6 excluded=0 cases=22 passed=22 adapted=21 failed=0 failures=none\n",
        &mut b,
    );
    assert!(selftests_problems(&b).is_empty());
    let mut b = test_boot();
    parse_log(
        "KLPTEST-METRIC selftests scripts=6 cases=22 passed=21 adapted=20 failed=1 failures=test-state.sh:x\n",
        &mut b,
    );
    let p = selftests_problems(&b);
    assert!(p.iter().any(|x| x.contains("test-state.sh:x")), "{p:?}");
    let mut b = test_boot();
    parse_log(
        "KLPTEST-METRIC selftests scripts=0 cases=0 passed=0 failed=0\n",
        &mut b,
    );
    assert_eq!(selftests_problems(&b), ["the selftests ran no case"]);
}

#[test]
fn every_boot_must_report_smp() {
    let mut b = test_boot();
    assert_eq!(
        smp_problems(&b),
        ["no KLPTEST-METRIC smp line: vCPUs and TCG mode unknown"]
    );
    parse_log(
        "KLPTEST-METRIC smp vcpus=2 online=2 accel=tcg,thread=multi why=x\n",
        &mut b,
    );
    assert!(smp_problems(&b).is_empty());
    for line in [
        "KLPTEST-METRIC smp vcpus=2 online=1 accel=tcg why=x\n",
        "KLPTEST-METRIC smp vcpus=1 online=1 accel=tcg why=x\n",
        "KLPTEST-METRIC smp vcpus=? online=2 accel=tcg why=x\n",
    ] {
        let mut b = test_boot();
        parse_log(line, &mut b);
        let p = smp_problems(&b);
        assert!(p.len() == 1 && p[0].starts_with("SMP: "), "{line}: {p:?}");
    }
}

#[test]
fn case_files_are_read_strictly() {
    let ok =
        "# c05_disable: what it checks\n# scenarios: main sigenforce\n\nrun_case() {\n    :\n}\n";
    let f = parse_case_file("05-disable.sh", ok).expect("a well-formed case file");
    assert_eq!(f.marker, "c05_disable");
    assert_eq!(f.scenarios, ["main", "sigenforce"]);
    let f = parse_case_file("19-noncumulative_reboot.sh", ok).expect("underscores");
    assert_eq!(f.marker, "c19_noncumulative_reboot");

    for (file, text, why) in [
        ("5-disable.sh", ok, "two digits"),
        ("005-disable.sh", ok, "two digits"),
        ("05_disable.sh", ok, "NN-name.sh"),
        ("05-.sh", ok, "[a-z0-9_]+"),
        ("05-Disable.sh", ok, "[a-z0-9_]+"),
        ("05-dis-able.sh", ok, "[a-z0-9_]+"),
        ("05-disable", ok, "not a .sh file"),
        (
            "05-disable.sh",
            "run_case() {\n}\n",
            "exactly one '# scenarios:' line, has 0",
        ),
        (
            "05-disable.sh",
            "# scenarios: main\n# scenarios: main\nrun_case() {\n}\n",
            "has 2",
        ),
        (
            "05-disable.sh",
            "# scenarios:\nrun_case() {\n}\n",
            "names no scenario",
        ),
        (
            "05-disable.sh",
            "# scenarios: mian\nrun_case() {\n}\n",
            "unknown scenario mian",
        ),
        (
            "05-disable.sh",
            "# scenarios: main\ncase_disable() {\n}\n",
            "no run_case",
        ),
    ] {
        match parse_case_file(file, text) {
            Ok(f) => panic!("{file} accepted as {f:?}, expected: {why}"),
            Err(e) => assert!(e.contains(why), "{file}: {e:?} lacks {why:?}"),
        }
    }
}

/// Runs without QEMU: the case files in the tree are well formed, and every
/// one of them is in some scenario's plan, so none can drop out unnoticed.
#[test]
fn every_case_file_is_planned() {
    let dir = repo().join(CASES_DIR);
    let files = case_files(&dir).unwrap_or_else(|e| panic!("{e}"));
    let on_disk = std::fs::read_dir(&dir)
        .expect("cannot read qemu/guest/cases")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(|c: char| c.is_ascii_digit()) && n.ends_with(".sh"))
        .count();
    let mut planned: Vec<String> = SCENARIOS
        .iter()
        .flat_map(|sc| plan_for(&files, sc.name))
        .collect();
    planned.sort();
    planned.dedup();
    assert!(on_disk > 0, "no case files in {CASES_DIR}");
    assert_eq!(
        planned.len(),
        on_disk,
        "{on_disk} case files in {CASES_DIR}, {} planned: {planned:?}",
        planned.len()
    );
    for sc in SCENARIOS {
        assert!(
            !plan_for(&files, sc.name).is_empty(),
            "no case runs in scenario {}",
            sc.name
        );
    }
}

#[test]
fn vex_documents_are_required_and_validated() {
    let mut b = test_boot();
    b.release = "vex-selftest".into();
    // A kernel message may precede the marker on its line.
    parse_log(
        "[  1.0] x KLPTEST-VEX after_apply {\"@context\":\"https://openvex.dev/ns/v0.2.0\"}\r\n\
         KLPTEST-VEX reapplied {}\n",
        &mut b,
    );
    assert_eq!(b.vex.len(), 2);
    assert_eq!(b.vex[0].0, "after_apply");
    assert!(b.vex[0].1.starts_with("{\"@context\""), "{:?}", b.vex[0]);
    let p = vex_problems(&b);
    for missing in ["after_apply_cmd", "after_chain"] {
        assert!(
            p.iter()
                .any(|x| x == &format!("no KLPTEST-VEX {missing} document")),
            "{p:?}"
        );
    }
    // Both documents are invalid: each schema must say so.
    for schema in ["openvex-0.2.0.schema.json", "klpctl-vex.schema.json"] {
        assert!(
            p.iter().any(|x| x.contains(&format!("fail {schema}"))),
            "{p:?}"
        );
    }
    assert!(!p.iter().any(|x| x.contains("cannot run")), "{p:?}");
}
