//! The kill switch on the kernel command line (`klpctl.enable=`,
//! `klpctl.skip=`), read by boot-time `apply --dir` in a small fake kernel:
//! a private mount namespace (`unshare -m`) with tmpfs over `/sys/kernel`
//! (an empty `livepatch` directory, so livepatch looks supported) and over
//! `/run`, and a file bind-mounted over `/proc/cmdline`. The bundle
//! directory holds no bundle for the running kernel, so nothing can ever be
//! loaded into the machine running the tests.
//!
//! Without `unshare` (not root, no user namespaces) these tests say so and
//! pass, except under `CI=true`, where they fail.

use super::*;
use std::process::Command;

/// Runs `klpctl apply --dir bundles --json` with `/proc/cmdline` reading
/// `cmdline`; `None` when no mount namespace can be had outside CI.
fn boot_apply(d: &TempDir, cmdline: &[u8]) -> Option<Run> {
    let ok = Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "unshare -m is unavailable: the kill-switch tests cannot run"
        );
        eprintln!("switches: unshare -m unavailable; not run");
        return None;
    }
    let file = d.write("cmdline", cmdline);
    d.mkdir("bundles");
    // Not a bundle: reported as skipped when the switch lets apply run.
    d.write("bundles/junk.klp", b"not a bundle");
    let script = "set -e
mount --make-rprivate /
mount -t tmpfs fake /sys/kernel
mkdir /sys/kernel/livepatch
mount -t tmpfs fake /run
mount --bind \"$0\" /proc/cmdline
exec \"$@\"";
    let keys = root().join("docs/vectors/keys");
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", script])
        .arg(&file)
        .arg(klpctl_bin())
        .args(["apply", "--dir", "bundles", "--json", "--keyring"])
        .arg(keys)
        .current_dir(d.path());
    Some(run(cmd))
}

const OFF: &str = "{\"results\":[],\"switch\":\"klpctl.enable=0\",\"changed\":false,\"exit\":0}\n";
const OFF_SAID: &str = "klpctl: klpctl.enable=0 on the kernel command line: applying nothing\n";

/// What boot-time apply prints when the switches let it run: the one
/// file, skipped because it is not a bundle (exit 0:
/// nothing for this kernel).
fn ran(r: &Run) {
    r.code(0);
    let j = Json::parse(r.out());
    let results = j.get("results").arr();
    assert_eq!(results.len(), 1, "{}", r.out());
    assert!(r.out().contains("junk.klp"), "{}", r.out());
}

#[test]
fn every_false_value_and_form_the_kernel_reads_turns_boot_apply_off() {
    for line in [
        "ro klpctl.enable=0 quiet\n",
        "klpctl.enable=00\n",
        "klpctl.enable=n\n",
        "klpctl.enable=N\n",
        "klpctl.enable=no\n",
        "klpctl.enable=off\n",
        "klpctl.enable=false\n",
        "\"klpctl.enable=0\"\n",
        "klpctl.enable=\"0\"\n",
        "klpctl.enable=1 klpctl.enable=0\n",
    ] {
        let d = TempDir::new();
        let Some(r) = boot_apply(&d, line.as_bytes()) else {
            return;
        };
        assert_eq!(r.out(), OFF, "{line:?}");
        assert!(r.err().ends_with(OFF_SAID), "{line:?}: {}", r.err());
        r.code(0);
        assert!(!d.path().join("bundles/.klpctl-tmp").exists());
    }
}

#[test]
fn init_arguments_quoted_values_and_true_values_are_not_off() {
    for line in [
        "ro -- klpctl.enable=0\n",
        "dyndbg=\"x klpctl.enable=0\"\n",
        "klpctl.enable=0 klpctl.enable=1\n",
        "klpctl.enable\n",
        "KLPCTL.ENABLE=0 klpctl.enabled=0\n",
        "ro\n",
    ] {
        let d = TempDir::new();
        let Some(r) = boot_apply(&d, line.as_bytes()) else {
            return;
        };
        assert!(!r.out().contains("switch"), "{line:?}: {}", r.out());
        ran(&r);
    }
}

#[test]
fn what_cannot_be_read_in_full_or_understood_fails_closed() {
    let long_line = format!("ro {}\n", "x".repeat(4096));
    let long_skip = format!("klpctl.skip={}\n", "a".repeat(257));
    let cases: &[(&[u8], &str)] = &[
        (
            long_line.as_bytes(),
            "cannot read /proc/cmdline in full (unreadable, or over 4096 bytes)",
        ),
        (
            long_skip.as_bytes(),
            "klpctl.skip on the kernel command line is longer than 256 bytes",
        ),
        (
            b"klpctl.skip\n",
            "klpctl.skip on the kernel command line has no value",
        ),
        (
            b"klpctl.enable=0 klpctl.enable=maybe\n",
            "klpctl.enable on the kernel command line is neither on nor off",
        ),
        (
            b"klpctl.enable=maybe klpctl.enable=1\n",
            "klpctl.enable on the kernel command line is neither on nor off",
        ),
        // True for kernels from 6.17 on, invalid before them: never on.
        (
            b"klpctl.enable=enable\n",
            "klpctl.enable on the kernel command line is neither on nor off",
        ),
        (
            b"klpctl.enable=0 klpctl.enable=Enabled\n",
            "klpctl.enable on the kernel command line is neither on nor off",
        ),
    ];
    for (line, why) in cases {
        let d = TempDir::new();
        let Some(r) = boot_apply(&d, line) else {
            return;
        };
        let want = format!(
            "{{\"results\":[],\"switch\":\"klpctl.enable=0\",\"why\":\"{why}\",\"changed\":false,\"exit\":0}}\n"
        );
        assert_eq!(r.out(), want);
        assert_eq!(
            r.err(),
            format!("klpctl: {why}: failing closed (klpctl.enable=0)\n{OFF_SAID}")
        );
        r.code(0);
    }
    // Negative: a line of exactly 4096 bytes, and a skip value of exactly
    // 256, are read in full, and apply runs.
    let exact = format!("ro {}\n", "x".repeat(4096 - 4));
    let fits = format!("klpctl.skip={}\n", "a".repeat(256));
    for line in [exact, fits] {
        let d = TempDir::new();
        let Some(r) = boot_apply(&d, line.as_bytes()) else {
            return;
        };
        assert!(!r.out().contains("switch"), "{}", r.out());
        ran(&r);
    }
}

/// Without `/sys/kernel/livepatch`, apply fails at once (exit 4) with an
/// error about the kernel, which names no file: not the keyring it had
/// not even opened yet.
#[test]
fn no_livepatch_support_names_the_kernel_not_the_keyring() {
    let ok = Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var("CI").as_deref() != Ok("true"));
        return;
    }
    let d = TempDir::new();
    d.mkdir("bundles");
    let want = "klpctl: no livepatch support in this kernel (/sys/kernel/livepatch missing)\n";
    for extra in [&[][..], &["--keyring", "ring"][..]] {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "-m",
            "sh",
            "-c",
            "set -e
mount --make-rprivate /
mount -t tmpfs fake /sys/kernel
mount -t tmpfs fake /run
exec \"$@\"",
            "sh",
        ])
        .arg(klpctl_bin())
        .args(["apply", "--dir", "bundles", "--json"])
        .args(extra)
        .current_dir(d.path());
        let r = run(cmd);
        r.code(4);
        assert_eq!(r.err(), want);
        let j = Json::parse(r.out());
        assert_eq!(j.get("exit").u64(), 4);
    }
}
