//! The fleet tier: the `klpctl.klpctl` Ansible collection against QEMU
//! guests that have no Python (`qemu/fleet/`).
//!
//! `qemu/fleet/run.sh` boots four dropbear guests on Debian 12's 6.1 and
//! 6.12 kernels at once and `qemu/fleet/check.py` drives them through the
//! collection's `patch-fleet.yml`: first apply, the idempotent second run,
//! check mode, a bundle for another kernel on one host, a tampered bundle
//! on all, a host that goes away mid-run, `state: disabled`, and the fleet
//! report against what the guests themselves show, rendered in headless
//! Chromium. Every run is checked against the guests' sysfs read over SSH.
//! It prints `FLEET <check> PASS|FAIL ...` per check; this test requires
//! exactly the checks listed in `CHECKS` to be there and to pass, so a
//! check that stops running fails here. `qemu/fleet/lint.sh` then runs
//! ansible-lint and ansible-test sanity over the collection, and
//! `qemu/fleet/units.sh` (a test of its own, no guests) its unit tests.
//!
//! Never skips on its own. `KLPCTL_SKIP_FLEET=1` skips it for local loops,
//! except under `CI=true`, where that variable is itself a failure.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Every check `check.py` must report, in its order.
const CHECKS: &[&str] = &[
    "1-changed-everywhere",
    "1-sysfs-g1",
    "1-sysfs-g2",
    "1-sysfs-g3",
    "1-sysfs-g4",
    "1-report",
    "2-ok-everywhere",
    "2-already-applied",
    "2-sysfs-g1",
    "2-sysfs-g2",
    "2-sysfs-g3",
    "2-sysfs-g4",
    "3-check-would-change",
    "3-check-diff",
    "3-sysfs-g1",
    "3-sysfs-g2",
    "3-sysfs-g3",
    "3-sysfs-g4",
    "4-g1-exit-4",
    "4-rest-changed",
    "4-sysfs-g1",
    "4-sysfs-g2",
    "4-sysfs-g3",
    "4-sysfs-g4",
    "4-report-why",
    "5-exit-3-everywhere",
    "5-sysfs-g1",
    "5-sysfs-g2",
    "5-sysfs-g3",
    "5-sysfs-g4",
    "6-g4-killed-mid-run",
    "6-g4-unreachable",
    "6-rest-changed",
    "6-sysfs-g1",
    "6-sysfs-g2",
    "6-sysfs-g3",
    "8-report-matches-guests",
    "8-report-g4-not-reached",
    "8-report-payload-sha256",
    "8-report-oldest-open-fix",
    "report-html-report-6",
    "report-screenshot-report-6",
    "7-changed",
    "7-sysfs-g1",
    "7-sysfs-g2",
    "7-sysfs-g3",
    "7-vex-empty",
    "7-report-nothing-fixed",
];

fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

fn skip_requested() -> bool {
    if std::env::var("KLPCTL_SKIP_FLEET").is_ok_and(|v| v == "1") {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "KLPCTL_SKIP_FLEET=1 is set under CI=true: the fleet tier must run in CI"
        );
        say("fleet: KLPCTL_SKIP_FLEET=1, skipping the fleet tier (local runs only)");
        return true;
    }
    false
}

/// What is wrong with check.py's output: checks missing, failed, out of
/// order or unknown, or no closing line.
fn problems(out: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut bad = Vec::new();
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("FLEET ") else {
            continue;
        };
        let mut w = rest.splitn(3, ' ');
        let (Some(name), Some(verdict)) = (w.next(), w.next()) else {
            bad.push(format!("malformed line: {line}"));
            continue;
        };
        match verdict {
            "PASS" => {}
            "FAIL" => bad.push(format!("failed: {rest}")),
            _ => bad.push(format!("malformed line: {line}")),
        }
        seen.push(name.to_string());
    }
    if seen != CHECKS {
        bad.push(format!("checks reported {seen:?}, expected {CHECKS:?}"));
    }
    if !out.lines().any(|l| l == "FLEET-DONE 0 failed") {
        bad.push("no \"FLEET-DONE 0 failed\" line".into());
    }
    bad
}

fn run(script: &str) -> (bool, String, f64) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = Instant::now();
    let out = Command::new("bash")
        .arg(repo.join(script))
        .current_dir(repo)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let secs = t.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    say(&text);
    if !out.status.success() {
        say(&String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), text, secs)
}

#[test]
fn fleet_of_qemu_guests_driven_by_ansible() {
    if skip_requested() {
        return;
    }
    let (ok, out, secs) = run("qemu/fleet/run.sh");
    say(&format!(
        "fleet: tier took {secs:.1}s (target: 180 s cold, 60 s warm)"
    ));
    let bad = problems(&out);
    assert!(
        ok && bad.is_empty(),
        "fleet tier failed:\n{}",
        bad.join("\n")
    );

    let (ok, _, secs) = run("qemu/fleet/lint.sh");
    say(&format!(
        "fleet: ansible-lint and ansible-test sanity took {secs:.1}s"
    ));
    assert!(
        ok,
        "ansible-lint or ansible-test sanity found problems (see above)"
    );
}

/// The collection's unit tests (`qemu/fleet/units.sh`): the plugins against
/// a fake klpctl (hostile output, exit codes, quoting), the report against
/// hostile status documents, and the playbook over local connections. No
/// guests, seconds; it needs only the venv.
#[test]
fn collection_unit_tests() {
    if skip_requested() {
        return;
    }
    let (ok, _, secs) = run("qemu/fleet/units.sh");
    say(&format!("fleet: collection unit tests took {secs:.1}s"));
    assert!(ok, "the collection's unit tests failed (see above)");
}

#[test]
fn every_check_must_be_reported_and_pass() {
    let all: String = CHECKS
        .iter()
        .map(|c| format!("FLEET {c} PASS detail\n"))
        .collect();
    assert!(problems(&(all.clone() + "FLEET-DONE 0 failed\n")).is_empty());
    // No closing line: the driver died.
    assert_eq!(problems(&all).len(), 1);
    // One check failing.
    let failing = all.replacen("PASS", "FAIL", 1) + "FLEET-DONE 0 failed\n";
    assert!(problems(&failing)[0].starts_with("failed: 1-changed-everywhere"));
    // One check gone, though everything else passed.
    let missing = all.replacen("FLEET 7-vex-empty PASS detail\n", "", 1) + "FLEET-DONE 0 failed\n";
    assert_eq!(problems(&missing).len(), 1);
    // A verdict that is neither.
    let odd = all.replacen("PASS", "SKIP", 1) + "FLEET-DONE 0 failed\n";
    assert!(problems(&odd)[0].starts_with("malformed line"));
}
