//! Kernel tests: boot Debian 12's newest 6.1 and 6.12 kernels under QEMU and
//! run klpctl against real livepatches.
//!
//! The shell scripts in `qemu/` do the work (fetch kernels, build the test
//! modules and the static klpctl, pack and sign bundles, build initramfs
//! images, boot). Each kernel boots twice: once for the main scenario, which
//! runs every case of `qemu/guest/cases.sh` in sequence, and once with
//! `module.sig_enforce=1` for the signature-enforcement case. The guest
//! prints `KLPTEST <case> PASS|FAIL <reason>` per case and `KLPTEST-DONE`
//! at the end; this test requires every expected case to pass on every
//! kernel. A missing marker is a failure.
//!
//! This test never skips on its own: without QEMU, network or root it fails.
//! For quick local loops `KLPCTL_SKIP_QEMU=1` skips it, except under
//! `CI=true`, where that variable is itself a failure.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Cases of the main boot, in the order cases.sh runs them.
const MAIN_CASES: &[&str] = &[
    "env",
    "c01_apply",
    "c02_reapply",
    "c03_rejected",
    "c04_wrong_kernel",
    "c07_disable",
    "c05_replace_chain",
    "c06_downgrade",
    "c06b_persistent_floor",
    "c08_stall_timeout",
    "c09_badcb",
    "c16_not_livepatch",
    "c11_concurrent",
    "c12_apply_dir",
    "c13_sigkill",
    "c14_revert_stall",
    "c15_disable_timeout",
    "modobj_before",
    "modobj_after",
    "c17_noncumulative_reboot",
    "c18_damaged_floor",
    "c19_state_unwritable",
    "c20_name_mismatch",
    "c21_special_files",
    "c22_no_livepatch",
    "apply_time",
    "big_rss",
    "final_clean",
];

/// Cases of the `module.sig_enforce=1` boot.
const SIGENFORCE_CASES: &[&str] = &["env", "c10_sig_enforce", "final_clean"];

/// Kernel series the matrix must cover.
const SERIES: &[&str] = &["6.1", "6.12"];

/// Host-side limit for one boot, enforced by run.sh with `timeout`.
const BOOT_TIMEOUT_S: u64 = 600;

struct Scenario {
    name: &'static str,
    kernel_args: &'static [&'static str],
    cases: &'static [&'static str],
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "main",
        kernel_args: &[],
        cases: MAIN_CASES,
    },
    Scenario {
        name: "sigenforce",
        kernel_args: &["module.sig_enforce=1"],
        cases: SIGENFORCE_CASES,
    },
];

/// What one boot produced.
struct Boot {
    release: String,
    scenario: &'static str,
    wall: Duration,
    status: Option<i32>,
    log: PathBuf,
    /// Verdict per case: Ok(()) for PASS, Err(reason) for FAIL.
    verdicts: BTreeMap<String, Result<(), String>>,
    done: bool,
    booted_release: Option<String>,
    extra: Vec<String>,
}

/// Writes straight to the process's stderr, which the test harness does not
/// capture, so timings show up in a plain `cargo test` run.
fn say(msg: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{msg}");
}

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn skip_requested() -> bool {
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

fn repo() -> &'static Path {
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

/// Extracts "KLPTEST <case> PASS" / "KLPTEST <case> FAIL <reason>" from a
/// console log. Markers are matched anywhere in a line, since firmware
/// escapes or kernel messages may precede them.
fn parse_log(text: &str, boot: &mut Boot) {
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(at) = line.find("KLPTEST-BOOT ") {
            boot.booted_release = line[at..]
                .split_whitespace()
                .find_map(|w| w.strip_prefix("release="))
                .map(str::to_owned);
        }
        if line.contains("KLPTEST-DONE") {
            boot.done = true;
        }
        for tag in ["KLPTEST-TIME ", "KLPTEST-METRIC "] {
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

fn boot(release: &str, sc: &Scenario) -> Boot {
    let start = Instant::now();
    let status = Command::new("bash")
        .arg(repo().join("qemu/run.sh"))
        .args([
            "-q",
            "-s",
            sc.name,
            "-t",
            &BOOT_TIMEOUT_S.to_string(),
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
        done: false,
        booted_release: None,
        extra: Vec::new(),
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

/// Problems with one boot; empty when every expected case passed.
fn problems(b: &Boot, expected: &[&str]) -> Vec<String> {
    let mut p = Vec::new();
    if b.booted_release.as_deref() != Some(b.release.as_str()) {
        p.push(format!(
            "booted release {:?}, expected {}",
            b.booted_release, b.release
        ));
    }
    for case in expected {
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

fn tail(path: &Path, lines: usize) -> String {
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
fn suite_lock() -> std::fs::File {
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

    // One thread per kernel, each booting its scenarios in turn; QEMU's TCG
    // runs a single-vCPU guest on one host core, so kernels run side by side.
    let jobs: usize = std::env::var("KLPCTL_QEMU_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get().min(2)))
        .max(1);
    let mut boots: Vec<(Boot, &'static [&'static str])> = Vec::new();
    for chunk in kernels.chunks(jobs) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|(_, release)| {
                let release = release.clone();
                thread::spawn(move || {
                    SCENARIOS
                        .iter()
                        .map(|sc| {
                            let b = boot(&release, sc);
                            say(&format!(
                                "qemu: {} {}: {:.1}s, {} case markers{}",
                                b.release,
                                b.scenario,
                                b.wall.as_secs_f64(),
                                b.verdicts.len(),
                                if b.done { "" } else { ", NO KLPTEST-DONE" }
                            ));
                            (b, sc.cases)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            boots.extend(h.join().expect("boot thread panicked"));
        }
    }

    let mut failures = Vec::new();
    let mut per_kernel: BTreeMap<&str, Vec<(&str, Duration)>> = BTreeMap::new();
    for (b, expected) in &boots {
        per_kernel
            .entry(b.release.as_str())
            .or_default()
            .push((b.scenario, b.wall));
        for line in &b.extra {
            say(&format!("qemu: {} {}: {line}", b.release, b.scenario));
        }
        let p = problems(b, expected);
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

#[test]
fn markers_are_parsed_strictly() {
    let mut b = Boot {
        release: "6.1.0-1-amd64".into(),
        scenario: "main",
        wall: Duration::ZERO,
        status: Some(0),
        log: PathBuf::new(),
        verdicts: BTreeMap::new(),
        done: false,
        booted_release: None,
        extra: Vec::new(),
    };
    let log = "\x1b[2JKLPTEST-BOOT release=6.1.0-1-amd64 scenario=main uptime=1.0\r\n\
               KLPTEST env PASS\n\
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
    let p = problems(&b, &["env", "c01_apply", "c02_reapply"]);
    assert!(p.iter().any(|x| x.starts_with("c01_apply: FAIL")), "{p:?}");
    assert!(
        p.iter().any(|x| x.starts_with("c02_reapply: no marker")),
        "{p:?}"
    );
    assert!(p.iter().any(|x| x.contains("KLPTEST-DONE")), "{p:?}");
    assert_eq!(b.extra, ["KLPTEST-TIME env 3cs"]);
}
