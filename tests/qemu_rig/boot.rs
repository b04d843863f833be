//! Booting one scenario with `qemu/run.sh` and reading its console log:
//! the markers each boot printed, and the helpers every QEMU tier shares.

use super::cases::{CASES_VAR, Scenario};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Host-side limit for one boot, enforced by run.sh with `timeout`.
pub(crate) const BOOT_TIMEOUT_S: u64 = 600;

/// The same for the `load` scenario: where `qemu/smp-modes` runs a kernel
/// under load with single-threaded TCG, each transition takes about two
/// minutes (the load case's klpctl allows 300 s per step), and the case
/// makes at least 6 of them.
pub(crate) const LOAD_BOOT_TIMEOUT_S: u64 = 2400;

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

/// Boots `release` with scenario `sc`; with `cases`, only those cases of it
/// (passed on as [`CASES_VAR`]), else all of them, whatever the
/// environment says.
pub(crate) fn boot(release: &str, sc: &Scenario, cases: Option<&[String]>) -> Boot {
    let start = Instant::now();
    let mut run = Command::new("bash");
    match cases {
        Some(only) => run.env(CASES_VAR, only.join(",")),
        None => run.env_remove(CASES_VAR),
    };
    let status = run
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

/// The last `lines` lines of the log at `path`, for a failure report.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
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
