//! The arm64 tier's rig, checked on the host without booting anything.
//!
//! The kernel's cache entry (`qemu/selfbuilt/build-arm64.sh`): a warm run
//! boots what the entry holds, so an entry that is damaged (a truncated
//! `Image`, a lost or emptied file, bytes changed) must stop the run by name
//! and never be booted; and the inputs key that stands for the kernel config
//! must change with every tool whose version Kconfig writes into it. These
//! work on entries made here in a temporary directory, and on fake tools
//! first on `PATH`, so no kernel build and no cache is needed.
//!
//! The tier itself (`tests/qemu_arm64.rs`, no libtest harness) must report a
//! failure that stops it early as a failed test, in libtest's words, since
//! tests/run.sh's closing line counts them.

use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = "qemu/selfbuilt/build-arm64.sh";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("klpctl-rig-arm64-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An arm64 kernel image as far as the check can tell: the header's magic
/// `ARM\x64` at byte 56, then bytes that differ along the file.
fn image() -> Vec<u8> {
    let mut b: Vec<u8> = (0..70_000u32).map(|i| (i * 31 + i / 251) as u8).collect();
    b[56..60].copy_from_slice(b"ARM\x64");
    b
}

/// Writes a complete entry into `dir`: as the build writes it (with `sums`)
/// when `sums` is true, else as entries made before `sums` existed.
fn entry(dir: &Path, sums: bool) -> PathBuf {
    let e = dir.join("7.3.4-1~bpo13+1-0123456789abcdef");
    std::fs::create_dir_all(e.join("build/arch/arm64/boot")).unwrap();
    let config = b"CONFIG_LIVEPATCH=y\nCONFIG_MODULE_SIG=y\n";
    std::fs::write(e.join("Image"), image()).unwrap();
    std::fs::write(e.join("build/arch/arm64/boot/Image"), image()).unwrap();
    std::fs::write(e.join("config"), config).unwrap();
    std::fs::write(e.join("build/.config"), config).unwrap();
    std::fs::write(e.join("notes"), [4u8, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0]).unwrap();
    std::fs::write(
        e.join("build-id"),
        "00112233445566778899aabbccddeeff00112233\n",
    )
    .unwrap();
    std::fs::write(e.join("release"), "7.3.4-klp-arm64\n").unwrap();
    std::fs::write(e.join("build-seconds"), "180\n").unwrap();
    if sums {
        let ok = Command::new("sh")
            .arg("-c")
            .arg("sha256sum Image config notes build-id release >sums")
            .current_dir(&e)
            .status()
            .unwrap()
            .success();
        assert!(ok, "sha256sum failed");
    }
    std::fs::write(e.join(".klpctl-complete"), "").unwrap();
    e
}

/// `build-arm64.sh --check ENTRY`: whether it passed, and its stderr.
fn check(e: &Path) -> (bool, String) {
    let out = Command::new("bash")
        .arg(SCRIPT)
        .arg("--check")
        .arg(e)
        .current_dir(repo())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn truncate(p: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Each way of damaging an entry, by name, applied to a fresh entry of
/// both kinds; each must be refused with a message that names the part.
#[test]
fn a_damaged_entry_is_refused_by_name() {
    type Damage = fn(&Path);
    let damages: &[(&str, Damage, &str)] = &[
        (
            "Image truncated",
            |e| truncate(&e.join("Image"), 40_000),
            "Image",
        ),
        (
            "Image and its build copy truncated alike",
            |e| {
                truncate(&e.join("Image"), 40_000);
                truncate(&e.join("build/arch/arm64/boot/Image"), 40_000);
            },
            "sums",
        ),
        ("Image emptied", |e| truncate(&e.join("Image"), 0), "Image"),
        (
            "not an arm64 image",
            |e| {
                let mut b = image();
                b[56..60].copy_from_slice(b"\0\0\0\0");
                std::fs::write(e.join("Image"), b).unwrap();
            },
            "Image",
        ),
        (
            "config changed",
            |e| std::fs::write(e.join("config"), "CONFIG_LIVEPATCH=n\n").unwrap(),
            "config",
        ),
        (
            "release lost",
            |e| std::fs::remove_file(e.join("release")).unwrap(),
            "release",
        ),
        ("notes emptied", |e| truncate(&e.join("notes"), 0), "notes"),
        (
            "build-id lost",
            |e| std::fs::remove_file(e.join("build-id")).unwrap(),
            "build-id",
        ),
        (
            "no completion marker",
            |e| std::fs::remove_file(e.join(".klpctl-complete")).unwrap(),
            "klpctl-complete",
        ),
    ];
    let dir = scratch("damage");
    for sums in [true, false] {
        let (ok, err) = check(&entry(&dir, sums));
        assert!(ok, "a whole entry (sums {sums}) was refused: {err}");
        for (what, damage, names) in damages {
            // Without sums, a truncation made alike in the build tree's copy
            // is beyond what the entry itself can tell.
            if !sums && what.contains("alike") {
                continue;
            }
            let _ = std::fs::remove_dir_all(&dir);
            let e = entry(&dir, sums);
            damage(&e);
            let (ok, err) = check(&e);
            assert!(!ok, "{what} (sums {sums}): the entry passed the check");
            assert!(
                err.contains(names),
                "{what} (sums {sums}): the message does not name {names:?}: {err}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `build-arm64.sh --inputs VERSION` with fake tools that print the
/// versions given in the environment.
fn inputs_key(bin: &Path, versions: &[(&str, &str)]) -> String {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("bash");
    c.arg(SCRIPT)
        .args(["--inputs", "7.3.4-1~bpo13+1"])
        .current_dir(repo())
        .env("PATH", path);
    for (var, v) in versions {
        c.env(var, v);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "--inputs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Kconfig records the versions of the cross compiler, assembler and
/// linker and of pahole in the .config, and the cross libc decides
/// CC_CAN_LINK: a change in any of them must give another inputs key, or a
/// warm run would take a config made with the old tools for the new ones.
#[test]
fn the_inputs_key_follows_every_tool_the_config_records() {
    let dir = scratch("inputs");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tools = [
        ("aarch64-linux-gnu-gcc", "FAKE_GCC"),
        ("aarch64-linux-gnu-as", "FAKE_AS"),
        ("aarch64-linux-gnu-ld", "FAKE_LD"),
        ("pahole", "FAKE_PAHOLE"),
        ("dpkg-query", "FAKE_LIBC"),
    ];
    for (tool, var) in tools {
        let p = bin.join(tool);
        std::fs::write(&p, format!("#!/bin/sh\necho \"${var}\"\n")).unwrap();
        assert!(
            Command::new("chmod")
                .arg("755")
                .arg(&p)
                .status()
                .unwrap()
                .success()
        );
    }
    let base: Vec<(&str, &str)> = tools.iter().map(|(_, var)| (*var, "1")).collect();
    let key = inputs_key(&bin, &base);
    assert_eq!(key.len(), 16, "not a key: {key:?}");
    assert_eq!(key, inputs_key(&bin, &base), "the key is not stable");
    for (tool, var) in tools {
        let changed: Vec<(&str, &str)> = base
            .iter()
            .map(|&(v, x)| if v == var { (v, "2") } else { (v, x) })
            .collect();
        assert_ne!(
            key,
            inputs_key(&bin, &changed),
            "another {tool} version gives the same inputs key"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the arm64 tier's test binary through cargo, in this test's profile,
/// with a fake `bash` first on its `PATH` that fails at once, so its
/// `prepare.sh` fails as on a machine that lacks a tool; returns whether it
/// passed and its stdout.
fn tier_with_failing_prepare(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let dir = scratch(&format!("tier-{}-{}", env.len(), args.len()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("bash"),
        "#!/bin/sh\necho 'fake bash: no tools here' >&2\nexit 1\n",
    )
    .unwrap();
    assert!(
        Command::new("chmod")
            .arg("755")
            .arg(bin.join("bash"))
            .status()
            .unwrap()
            .success()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.arg("test");
    if !cfg!(debug_assertions) {
        c.arg("--release");
    }
    c.args(["--quiet", "--test", "qemu_arm64"])
        .current_dir(repo())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("CI")
        .env_remove("KLPCTL_SKIP_QEMU");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.args(args).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Asked to skip the tier (`--skip`, or a filter it does not match), the
/// tier runs nothing and reports it filtered out, as a libtest test would;
/// the failing `bash` shows that nothing was prepared.
#[test]
fn the_arm64_tier_honours_skip_and_filters_as_libtest_does() {
    for args in [
        &["--", "--skip", "arm64"][..],
        &["--", "--skip=qemu_arm64_tier"][..],
        &["--", "--exact", "arm64"][..],
        &["--", "no_such_test"][..],
    ] {
        let (ok, stdout) = tier_with_failing_prepare(&[("CI", "true")], args);
        assert!(ok, "{args:?}: the tier failed: {stdout}");
        assert!(
            stdout.contains("0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out"),
            "{args:?}: not reported as filtered out: {stdout:?}"
        );
    }
}

/// A tier that stops early (its preparation fails; or it is told to skip
/// under CI=true, where skipping is not allowed) fails, and says so in a
/// `test result: FAILED` line.
#[test]
fn the_arm64_tier_reports_an_early_stop_as_a_failed_test() {
    for env in [
        &[("CI", "true")][..],
        &[("CI", "true"), ("KLPCTL_SKIP_QEMU", "1")][..],
    ] {
        let (ok, stdout) = tier_with_failing_prepare(env, &[]);
        assert!(!ok, "{env:?}: the tier passed: {stdout}");
        assert!(
            stdout.contains("test result: FAILED. 0 passed; 1 failed"),
            "{env:?}: no failed-test line on stdout: {stdout:?}"
        );
    }
}
