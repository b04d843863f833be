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

// The rig shared with the arm64 tier (tests/qemu_arm64.rs): case files and
// plans, booting and reading console logs, and the checks of each boot.
#[path = "qemu_rig/mod.rs"]
mod rig;

// The crash-loop guard across real reboots (qemu/reboot.sh).
#[path = "qemu_reboot/mod.rs"]
mod reboot;

use rig::{
    Boot, CASES_DIR, CASES_VAR, SCENARIOS, SELFTESTS, VEX_CASE, boot, case_files, metric,
    parse_case_file, parse_log, plan_for, problems, repo, required, say, selected_cases,
    selected_plan, selftest_marker, selftests_metric, selftests_plan, selftests_problems,
    skip_requested, smp_problems, suite_lock, tail, vex_problems,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Kernel series the matrix must cover.
const SERIES: &[&str] = &["6.1", "6.12", "7.x"];

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
    // KLPTEST_CASES: only the cases it names, on every kernel, in the
    // scenarios they run in, and no selftests boot.
    let selected = selected_cases(std::env::var(CASES_VAR).ok().as_deref(), &files)
        .unwrap_or_else(|e| panic!("{e}"));
    let selected = selected.as_deref();
    if let Some(only) = selected {
        say(&format!("qemu: {CASES_VAR}: only {}", only.join(" ")));
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
    // The last scenario of each kernel is the kernel's own selftests. With
    // KLPTEST_CASES a boot gets the cases of its scenario that were named,
    // and a scenario with none of them does not boot.
    let scenarios: Vec<(usize, Option<Vec<String>>)> = match selected {
        None => (0..=SCENARIOS.len()).map(|s| (s, None)).collect(),
        Some(_) => (0..SCENARIOS.len())
            .map(|s| (s, selected_plan(&files, SCENARIOS[s].name, selected)))
            .filter(|(_, plan)| !plan.is_empty())
            .map(|(s, plan)| (s, Some(plan)))
            .collect(),
    };
    let queue: Vec<(usize, String, usize, Option<Vec<String>>)> = kernels
        .iter()
        .enumerate()
        .flat_map(|(k, (_, release))| {
            scenarios
                .iter()
                .map(move |(s, cases)| (k, release.clone(), *s, cases.clone()))
        })
        .collect();
    let queue = Arc::new(Mutex::new(queue.into_iter()));
    let handles: Vec<_> = (0..jobs)
        .map(|_| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut done = Vec::new();
                loop {
                    let next = queue.lock().expect("boot queue poisoned").next();
                    let Some((k, release, s, cases)) = next else {
                        break;
                    };
                    let sc = SCENARIOS.get(s).unwrap_or(&SELFTESTS);
                    let b = boot(&release, sc, cases.as_deref());
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
            (selected_plan(&files, b.scenario, selected), Vec::new())
        };
        p.extend(problems(b, &host_plan));
        p.extend(smp_problems(b));
        if host_plan.iter().any(|c| c == VEX_CASE) {
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

/// Runs without QEMU: `KLPTEST_CASES` narrows each scenario's plan to the
/// cases it names, in the plan's order, and a name that is no case is an
/// error rather than an empty plan.
#[test]
fn cases_are_selected_by_name() {
    let files = case_files(&repo().join(CASES_DIR)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(selected_cases(None, &files), Ok(None));
    assert_eq!(selected_cases(Some(" ,\n"), &files), Ok(None));
    let only = selected_cases(Some("c07_downgrade, c05_disable c27_sig_enforce"), &files)
        .expect("three cases in the tree")
        .expect("a selection");
    assert_eq!(
        selected_plan(&files, "main", Some(&only)),
        ["c05_disable", "c07_downgrade"]
    );
    assert_eq!(
        selected_plan(&files, "sigenforce", Some(&only)),
        ["c27_sig_enforce"]
    );
    assert!(selected_plan(&files, "load", Some(&only)).is_empty());
    assert_eq!(
        selected_plan(&files, "main", None),
        plan_for(&files, "main")
    );
    for bad in ["c99_nope", "c05_disable c5_disable", "05-disable.sh"] {
        let e = selected_cases(Some(bad), &files).expect_err(bad);
        assert!(e.starts_with("KLPTEST_CASES names "), "{bad}: {e}");
    }

    // The guest's plan is checked against the narrowed plan: the full plan,
    // or a case left out, is a problem.
    let host = selected_plan(&files, "main", Some(&only));
    let log = |plan: &str| {
        let mut b = test_boot();
        parse_log(
            &format!(
                "KLPTEST-BOOT release=6.1.0-1-amd64 scenario=main uptime=1.0\n\
                 KLPTEST env PASS\n{plan}\n\
                 KLPTEST c05_disable PASS\nKLPTEST c07_downgrade PASS\n\
                 KLPTEST-DONE rc=0 uptime=9.0 tainted=0\n"
            ),
            &mut b,
        );
        problems(&b, &host)
    };
    let p = log("KLPTEST-PLAN main c05_disable c07_downgrade");
    assert!(p.is_empty(), "{p:?}");
    let p = log("KLPTEST-PLAN main c07_downgrade");
    assert!(
        p.iter().any(|x| x.starts_with("the guest planned 1 cases")),
        "{p:?}"
    );
    let p = log(&format!(
        "KLPTEST-PLAN main {}",
        plan_for(&files, "main").join(" ")
    ));
    assert!(
        p.iter().any(|x| x.starts_with("the guest planned ")),
        "{p:?}"
    );
}
