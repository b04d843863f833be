//! The crash-loop guard across real reboots: `qemu/reboot.sh` boots one
//! persistent disk again and again (Debian 6.1, then 6.12 for the bundles
//! installed for it) and prints one verdict line per boot:
//!
//! ```text
//! KLPTEST-REBOOT-PLAN b1_apply b2_panic ...
//! KLPTEST-REBOOT <n> <step> <release> expect=<how> got=<how> PASS|FAIL <s>s [why]
//! KLPTEST-REBOOT-DONE boots=<n> failed=<n> wall=<s>s
//! ```
//!
//! This test requires exactly the boots in [`BOOTS`], in order, each
//! ending as listed there and passing its checks. Like the kernel matrix it
//! never skips on its own, and `KLPCTL_SKIP_QEMU=1` is refused under
//! `CI=true`.

use super::{prepare, repo, say, skip_requested, suite_lock};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The reboot scenario's boots, and how each must end: `clean` (checks
/// passed, the init script's stop confirmed, poweroff), `panic` (checks
/// passed, then the kernel panicked), `powercut` (checks passed after the
/// confirmation window, then the power was cut without stop).
const BOOTS: &[(&str, &str)] = &[
    ("b1_apply", "clean"),
    ("b2_panic", "panic"),
    ("b3_quarantined", "clean"),
    ("b4_clean", "powercut"),
    ("b5_enable0", "clean"),
    ("b6_skip", "clean"),
    ("b7_reapply", "clean"),
    ("b8_next_kernel", "clean"),
];

/// One `KLPTEST-REBOOT` line.
#[derive(Debug, PartialEq)]
struct Verdict {
    step: String,
    expect: String,
    got: String,
    pass: bool,
    line: String,
}

/// What reboot.sh printed.
#[derive(Debug, Default)]
struct Run {
    plan: Option<Vec<String>>,
    boots: Vec<Verdict>,
    done: bool,
}

fn parse(text: &str) -> Run {
    let mut run = Run::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("KLPTEST-REBOOT-PLAN ") {
            run.plan = Some(rest.split_whitespace().map(str::to_owned).collect());
        } else if line.starts_with("KLPTEST-REBOOT-DONE ") {
            run.done = true;
        } else if let Some(rest) = line.strip_prefix("KLPTEST-REBOOT ") {
            let w: Vec<&str> = rest.split_whitespace().collect();
            let [_n, step, _release, expect, got, verdict, ..] = w[..] else {
                continue;
            };
            run.boots.push(Verdict {
                step: step.to_owned(),
                expect: expect.strip_prefix("expect=").unwrap_or("?").to_owned(),
                got: got.strip_prefix("got=").unwrap_or("?").to_owned(),
                pass: verdict == "PASS",
                line: line.to_owned(),
            });
        }
    }
    run
}

/// Everything wrong with a run; empty when every boot of [`BOOTS`] ran in
/// order and ended as it must.
fn problems(run: &Run) -> Vec<String> {
    let mut p = Vec::new();
    let want: Vec<&str> = BOOTS.iter().map(|b| b.0).collect();
    match &run.plan {
        None => p.push("no KLPTEST-REBOOT-PLAN line".to_owned()),
        Some(plan) if plan[..] != want[..] => p.push(format!(
            "reboot.sh planned [{}], expected [{}]",
            plan.join(" "),
            want.join(" ")
        )),
        Some(_) => {}
    }
    for (i, (step, how)) in BOOTS.iter().enumerate() {
        match run.boots.get(i) {
            None => p.push(format!("boot {}: {step}: no verdict", i + 1)),
            Some(v) if v.step != *step => {
                p.push(format!("boot {}: ran {}, expected {step}", i + 1, v.step))
            }
            Some(v) if v.expect != *how || v.got != *how || !v.pass => {
                p.push(format!("boot {}: {step} must end {how}: {}", i + 1, v.line))
            }
            Some(_) => {}
        }
    }
    if run.boots.len() > BOOTS.len() {
        p.push(format!(
            "{} boots, expected {}",
            run.boots.len(),
            BOOTS.len()
        ));
    }
    if !run.done {
        p.push("no KLPTEST-REBOOT-DONE line".to_owned());
    }
    p
}

#[test]
fn qemu_reboot_sequence() {
    if skip_requested() {
        return;
    }
    let _lock = suite_lock();
    let start = Instant::now();
    prepare();
    let out = Command::new("bash")
        .arg(repo().join("qemu/reboot.sh"))
        .arg("-q")
        .current_dir(repo())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run bash qemu/reboot.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        say(&format!("qemu reboot: {line}"));
    }
    let mut p = problems(&parse(&text));
    if !out.status.success() {
        p.push(format!("qemu/reboot.sh exited {}", out.status));
    }
    say(&format!(
        "qemu reboot: KLPTEST-METRIC reboot_wall_s total={:.1}",
        start.elapsed().as_secs_f64()
    ));
    assert!(
        p.is_empty(),
        "the reboot sequence failed (logs: target/qemu/logs/reboot-*.log):\n  {}",
        p.join("\n  ")
    );
}

#[test]
fn reboot_verdicts_are_parsed_strictly() {
    let plan = BOOTS.iter().map(|b| b.0).collect::<Vec<_>>().join(" ");
    let good: String = BOOTS
        .iter()
        .enumerate()
        .map(|(i, (s, how))| {
            format!(
                "KLPTEST-REBOOT {} {s} 6.1.0-1-amd64 expect={how} got={how} PASS 7.0s\n",
                i + 1
            )
        })
        .collect();
    let all = format!(
        "KLPTEST-REBOOT-PLAN {plan}\n{good}KLPTEST-REBOOT-DONE boots=8 failed=0 wall=56.0s\n"
    );
    assert_eq!(problems(&parse(&all)), Vec::<String>::new());

    // The panic boot that ended cleanly instead.
    let bad = all.replace("expect=panic got=panic PASS", "expect=panic got=clean FAIL");
    let p = problems(&parse(&bad));
    assert!(
        p.iter()
            .any(|x| x.starts_with("boot 2: b2_panic must end panic")),
        "{p:?}"
    );

    // A boot left out of the plan and the run.
    let short = all
        .replace(
            "KLPTEST-REBOOT 5 b5_enable0 6.1.0-1-amd64 expect=clean got=clean PASS 7.0s\n",
            "",
        )
        .replace(" b5_enable0", "");
    let p = problems(&parse(&short));
    assert!(
        p.iter().any(|x| x.starts_with("reboot.sh planned")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|x| x.starts_with("boot 5: ran b6_skip")),
        "{p:?}"
    );

    // A run that died half-way.
    let cut: String = all.lines().take(4).map(|l| format!("{l}\n")).collect();
    let p = problems(&parse(&cut));
    assert!(
        p.iter().any(|x| x == "boot 4: b4_clean: no verdict"),
        "{p:?}"
    );
    assert!(
        p.iter().any(|x| x == "no KLPTEST-REBOOT-DONE line"),
        "{p:?}"
    );
}
