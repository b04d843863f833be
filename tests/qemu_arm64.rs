//! The arm64 tier: the self-built arm64 kernel (`qemu/selfbuilt/`, from
//! Debian's linux-source-7.x, cross-compiled) booted with
//! `qemu-system-aarch64 -M virt -cpu max` under TCG with 2 vCPUs, running the
//! same scenarios as the x86_64 kernels of `tests/qemu.rs`: the main cases,
//! the signature-enforcing boot, the load case and the kernel's own
//! livepatch selftests with klpctl as the loader. `qemu/arm64/prepare.sh`
//! builds everything; the guests run the aarch64 device klpctl.
//!
//! Checks and markers are those of `tests/qemu.rs`: both include the rig
//! in `tests/qemu_rig/` as a module. It has no libtest harness
//! (`harness = false` in Cargo.toml): `main` runs the tier. It prints a libtest-style `test result:` line for
//! tests/run.sh's summary.
//!
//! Never skips silently: `KLPCTL_SKIP_QEMU=1` skips it on a developer's
//! machine, and is itself a failure under `CI=true`. A filter argument that
//! does not match `arm64` (as in `cargo test NAME`) runs nothing, and so
//! does `--skip arm64`, as libtest would.

#[path = "qemu_rig/mod.rs"]
#[allow(dead_code, unused_imports)]
mod rig;

// The fake kernel module builder of the host tests.
#[path = "common/ko.rs"]
#[allow(dead_code)]
mod ko;

use rig::{
    Boot, SCENARIOS, SELFTESTS, Scenario, case_files, problems, repo, say, selected_cases,
    selected_plan, selftests_metric, selftests_plan, selftests_problems, skip_requested,
    smp_problems, suite_lock, tail, vex_problems,
};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The name `cargo test FILTER` is matched against.
const NAME: &str = "qemu_arm64_tier";

/// Runs `qemu/arm64/prepare.sh`; returns the arm64 release.
fn prepare() -> String {
    let out = Command::new("bash")
        .arg(repo().join("qemu/arm64/prepare.sh"))
        .current_dir(repo())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run bash qemu/arm64/prepare.sh");
    assert!(
        out.status.success(),
        "qemu/arm64/prepare.sh failed ({}); its stderr above says why",
        out.status
    );
    let release = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        release.ends_with("-klp-arm64"),
        "qemu/arm64/prepare.sh printed {release:?}, not an arm64 release"
    );
    release
}

/// A path from the environment, or the default under the repository.
fn binary(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|p| !p.is_empty())
        .map_or_else(|| repo().join(default), PathBuf::from)
}

/// Runs `cmd` in a private mount namespace with a fresh tmpfs over /run, so
/// klpctl's lock and state dirs never touch the host's, and one over
/// /sys/kernel holding an empty `livepatch` dir, so the host kernel (built
/// without live patching) passes klpctl's first check and the architecture
/// check is the one that speaks; returns the exit code and stderr.
fn isolated(cmd: &[&Path], args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /sys/kernel && mkdir /sys/kernel/livepatch && exec \"$@\"",
            "sh",
        ])
        .args(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run unshare");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Before any kernel boots: an x86_64 bundle for the running release is
/// refused by the aarch64 klpctl (under QEMU's user-mode emulator, whose
/// uname says aarch64) with exit 4 naming both architectures, and an aarch64
/// bundle by the x86_64 klpctl likewise. Both are refused before anything
/// reaches the kernel (the release matches; only the machine differs).
fn cross_arch_on_host(arm_device: &Path) -> Vec<String> {
    let full = binary(
        "KLPCTL_BIN",
        "target/x86_64-unknown-linux-musl/release/klpctl",
    );
    let dir = repo().join("target/qemu/arm64-host");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ring")).expect("create target/qemu/arm64-host");
    let release = String::from_utf8_lossy(
        &Command::new("uname")
            .arg("-r")
            .output()
            .expect("uname -r")
            .stdout,
    )
    .trim()
    .to_owned();
    let run = |args: &[&str]| {
        let st = Command::new(&full)
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("cannot run the host klpctl");
        assert!(st.success(), "klpctl {args:?} failed");
    };
    run(&["keygen", "-p", "ring/k.pub", "-s", "k.sec"]);
    let mut p = Vec::new();
    for (machine, bundle_arch, runner, running) in [
        (
            ko::EM_X86_64,
            "x86_64",
            vec![Path::new("qemu-aarch64"), arm_device],
            "aarch64",
        ),
        (183, "aarch64", vec![full.as_path()], "x86_64"),
    ] {
        let ko_name = format!("{bundle_arch}.ko");
        let klp = format!("{bundle_arch}.klp");
        std::fs::write(
            dir.join(&ko_name),
            ko::fake_ko(
                &ko::modinfo("klp_arch", &format!("{release} SMP "), true),
                machine,
            ),
        )
        .expect("write a fake module");
        run(&[
            "pack",
            &ko_name,
            "-o",
            &klp,
            "--stream",
            "s",
            "--version",
            "1",
            "-s",
            "k.sec",
        ]);
        let bundle = dir.join(&klp);
        let ring = dir.join("ring");
        let (code, err) = isolated(
            &runner,
            &[
                "apply",
                bundle.to_str().expect("UTF-8 path"),
                "--keyring",
                ring.to_str().expect("UTF-8 path"),
            ],
        );
        let want = format!("bundle is for {bundle_arch}, running {running}");
        say(&format!(
            "qemu-arm64: host: {bundle_arch} bundle on {running} klpctl: exit {code:?}: {}",
            err.trim()
        ));
        if code != Some(4) || !err.contains(&want) {
            p.push(format!(
                "host: an {bundle_arch} bundle on the {running} klpctl exited {code:?} saying {err:?}, expected 4 and {want:?}"
            ));
        }
    }
    p
}

/// Seconds the guest spent from `/init` to its verdict: the uptimes of its
/// `KLPTEST-BOOT` and `KLPTEST-DONE` lines.
fn guest_seconds(b: &Boot) -> Option<f64> {
    let text = String::from_utf8_lossy(&std::fs::read(&b.log).ok()?).into_owned();
    let uptime = |tag: &str| {
        text.lines()
            .filter_map(|l| l.find(tag).map(|at| &l[at..]))
            .flat_map(str::split_whitespace)
            .find_map(|w| w.strip_prefix("uptime="))
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some(uptime("KLPTEST-DONE")? - uptime("KLPTEST-BOOT")?)
}

/// The problems of one arm64 boot, by the same rules as the x86_64 matrix.
/// (That the guest ran the arm64 kernel is among them: the booted release,
/// `<version>-klp-arm64`, must be the one prepared.)
fn boot_problems(b: &Boot, files: &[rig::CaseFile], selected: Option<&[String]>) -> Vec<String> {
    let (host_plan, mut p) = if b.scenario == SELFTESTS.name {
        match selftests_plan(&b.release) {
            Ok(plan) => (plan, selftests_problems(b)),
            Err(e) => (Vec::new(), vec![e]),
        }
    } else {
        (selected_plan(files, b.scenario, selected), Vec::new())
    };
    p.extend(problems(b, &host_plan));
    p.extend(smp_problems(b));
    if host_plan.iter().any(|c| c == rig::VEX_CASE) {
        p.extend(vex_problems(b));
    }
    p
}

fn run() -> Result<(), Vec<String>> {
    let _lock = suite_lock();
    let start = Instant::now();
    let files = case_files(&repo().join(rig::CASES_DIR)).map_err(|e| vec![e])?;
    // KLPTEST_CASES: only the cases it names, as in the x86_64 matrix.
    let selected = selected_cases(std::env::var(rig::CASES_VAR).ok().as_deref(), &files)
        .map_err(|e| vec![e])?;
    let selected = selected.as_deref();
    let release = prepare();
    let prepared = start.elapsed();
    let host = cross_arch_on_host(&binary(
        "KLPCTL_DEVICE_ARM64",
        "target/device/aarch64-unknown-linux-musl/release/klpctl",
    ));
    say(&format!(
        "qemu-arm64: prepared {release} in {:.1}s",
        prepared.as_secs_f64()
    ));

    // The same scenarios as the x86_64 kernels, two boots at a time.
    let scenarios: Vec<(&'static Scenario, Option<Vec<String>>)> = match selected {
        None => SCENARIOS
            .iter()
            .chain([&SELFTESTS])
            .map(|sc| (sc, None))
            .collect(),
        Some(_) => SCENARIOS
            .iter()
            .map(|sc| (sc, selected_plan(&files, sc.name, selected)))
            .filter(|(_, plan)| !plan.is_empty())
            .map(|(sc, plan)| (sc, Some(plan)))
            .collect(),
    };
    let queue = Arc::new(Mutex::new(scenarios.into_iter().enumerate()));
    let jobs = thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let handles: Vec<_> = (0..jobs)
        .map(|_| {
            let queue = Arc::clone(&queue);
            let release = release.clone();
            thread::spawn(move || {
                let mut done = Vec::new();
                loop {
                    let next = queue.lock().expect("boot queue poisoned").next();
                    let Some((i, (sc, cases))) = next else { break };
                    let b = rig::boot(&release, sc, cases.as_deref());
                    say(&format!(
                        "qemu-arm64: {} {}: {:.1}s, {} case markers{}",
                        b.release,
                        b.scenario,
                        b.wall.as_secs_f64(),
                        b.verdicts.len(),
                        if b.done { "" } else { ", NO KLPTEST-DONE" }
                    ));
                    done.push((i, b));
                }
                done
            })
        })
        .collect();
    let mut boots: Vec<(usize, Boot)> = Vec::new();
    for h in handles {
        boots.extend(h.join().expect("boot thread panicked"));
    }
    boots.sort_by_key(|(i, _)| *i);
    let boots_wall = start.elapsed() - prepared;

    let mut failures = host;
    let (mut wall, mut guest) = (Duration::ZERO, 0.0);
    for (_, b) in &boots {
        for line in &b.extra {
            say(&format!("qemu-arm64: {} {}: {line}", b.release, b.scenario));
        }
        let p = boot_problems(b, &files, selected);
        let in_guest = guest_seconds(b);
        wall += b.wall;
        guest += in_guest.unwrap_or(0.0);
        let cases = b.verdicts.values().filter(|v| v.is_ok()).count();
        say(&format!(
            "qemu-arm64: {} {}: {cases}/{} markers passed; wall {:.1}s, of which the guest ran its cases {} (log {})",
            b.release,
            b.scenario,
            b.verdicts.len(),
            b.wall.as_secs_f64(),
            in_guest.map_or("?".into(), |s| format!("{s:.1}s")),
            b.log.display()
        ));
        if !p.is_empty() {
            say(&format!(
                "qemu-arm64: --- last lines of {}:\n{}",
                b.log.display(),
                tail(&b.log, 60)
            ));
            failures.extend(
                p.into_iter()
                    .map(|x| format!("{} {}: {x}", b.release, b.scenario)),
            );
        }
    }
    if let Some((_, st)) = boots.iter().find(|(_, b)| b.scenario == SELFTESTS.name) {
        let m = selftests_metric(st).unwrap_or_default();
        let g = |k: &str| m.get(k).map_or("-", String::as_str).to_owned();
        say(&format!(
            "qemu-arm64: selftests with klpctl as the loader: scripts={} excluded={} cases={} passed={} failed={}",
            g("scripts"),
            g("excluded"),
            g("cases"),
            g("passed"),
            g("failed")
        ));
    }
    // Figures, not assertions: the budget is a target, the machine is shared.
    say(&format!(
        "qemu-arm64: KLPTEST-METRIC arm64_wall_s prepare={:.1} boots={:.1} boot_sum={:.1} guest_cases_sum={guest:.1} boot_overhead_sum={:.1} total={:.1}",
        prepared.as_secs_f64(),
        boots_wall.as_secs_f64(),
        wall.as_secs_f64(),
        wall.as_secs_f64() - guest,
        start.elapsed().as_secs_f64()
    ));
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

fn main() -> ExitCode {
    // `cargo test FILTER`: libtest runs only tests whose name contains a
    // filter; do the same with this tier's one name.
    // Options that take their value as the next argument are not filters.
    const WITH_VALUE: &[&str] = &[
        "--test-threads",
        "--skip",
        "--format",
        "--color",
        "--logfile",
        "-Z",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            !a.starts_with('-') && (*i == 0 || !WITH_VALUE.contains(&args[i - 1].as_str()))
        })
        .map(|(_, a)| a)
        .collect();
    // libtest's --skip (as `--skip X` or `--skip=X`) and --exact, too.
    let exact = args.iter().any(|a| a == "--exact");
    let matches = |f: &str| if exact { NAME == f } else { NAME.contains(f) };
    let skipped = args.iter().enumerate().any(|(i, a)| {
        a.strip_prefix("--skip=")
            .or((i > 0 && args[i - 1] == "--skip").then_some(a.as_str()))
            .is_some_and(matches)
    });
    if skipped || !filters.is_empty() && !filters.iter().any(|f| matches(f)) {
        println!("test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out");
        return ExitCode::SUCCESS;
    }
    // A panic (prepare.sh failing, KLPCTL_SKIP_QEMU=1 under CI=true) is a
    // failure like any other and is reported as one, as libtest would: the
    // closing line of tests/run.sh counts the `test result:` lines.
    let outcome = std::panic::catch_unwind(|| (!skip_requested()).then(run)).unwrap_or_else(|_| {
        Some(Err(vec![
            "the tier stopped early (the panic message above says why)".to_owned(),
        ]))
    });
    match outcome {
        None => {
            println!("test result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out");
            ExitCode::SUCCESS
        }
        Some(Ok(())) => {
            println!("test {NAME} ... ok");
            println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
            ExitCode::SUCCESS
        }
        Some(Err(failures)) => {
            println!("test {NAME} ... FAILED");
            println!("arm64 kernel tests failed:\n  {}", failures.join("\n  "));
            println!(
                "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"
            );
            ExitCode::FAILURE
        }
    }
}
