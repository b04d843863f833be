//! The shipped integration files in `dist/`: the systemd units pass
//! `systemd-analyze verify` (and a broken copy of them does not, so the
//! check is real), the init scripts parse as POSIX and busybox sh, and the
//! initramfs-tools hook copies klpctl, the keys and the bundles. The init
//! script itself runs in the QEMU reboot scenario (`qemu/reboot.sh`).
//!
//! Needs `systemd-analyze` (package systemd) and initramfs-tools'
//! hook-functions; missing ones are installed with `need_pkg` as root, and
//! the test fails (never skips) when that is impossible.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Installs `pkgs` with the rig's `need_pkg` unless `probe` exists.
fn need(probe: &str, pkgs: &str) {
    if Path::new(probe).exists() {
        return;
    }
    let st = Command::new("bash")
        .arg("-c")
        .arg(format!(". qemu/lib.sh && need_pkg {pkgs}"))
        .current_dir(repo())
        .status()
        .expect("cannot run bash");
    assert!(st.success(), "cannot install {pkgs} (for {probe})");
}

/// A scratch directory under target/, fresh for each call site.
fn scratch(name: &str) -> PathBuf {
    let d = repo().join("target/dist-test").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("cannot create a scratch directory");
    d
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("dir entry");
        let ty = e.file_type().expect("file type");
        let dst = to.join(e.file_name());
        if ty.is_dir() {
            copy_dir(&e.path(), &dst);
        } else if ty.is_symlink() {
            let t = std::fs::read_link(e.path()).expect("readlink");
            std::os::unix::fs::symlink(t, dst).expect("symlink");
        } else {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
}

const UNITS: &[&str] = &[
    "klpctl.service",
    "klpctl-confirm-shutdown.service",
    "klpctl-confirm.service",
    "klpctl-confirm.timer",
];

/// Runs `systemd-analyze verify` on `units` (name, text) installed in a
/// scratch root that has the host's system units and an executable
/// /usr/sbin/klpctl (verify checks that ExecStart= points at one). Any
/// message counts as a failure: verify exits 0 on unknown keys and
/// unparsable values, and only warns.
fn verify(tag: &str, units: &[(&str, String)]) -> Result<(), String> {
    need("/usr/bin/systemd-analyze", "systemd");
    let root = scratch(tag);
    copy_dir(
        Path::new("/usr/lib/systemd/system"),
        &root.join("usr/lib/systemd/system"),
    );
    let etc = root.join("etc/systemd/system");
    std::fs::create_dir_all(&etc).expect("mkdir");
    std::fs::create_dir_all(root.join("usr/sbin")).expect("mkdir");
    let sbin = root.join("usr/sbin/klpctl");
    std::fs::write(&sbin, "#!/bin/sh\n").expect("write");
    std::fs::set_permissions(&sbin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    for (name, text) in units {
        std::fs::write(etc.join(name), text).expect("write unit");
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .args(units.iter().map(|(n, _)| *n))
        .output()
        .expect("cannot run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&root);
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("exit {}: {said}", out.status))
    }
}

fn shipped_units() -> Vec<(&'static str, String)> {
    UNITS
        .iter()
        .map(|u| {
            let p = repo().join("dist/systemd").join(u);
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (*u, text)
        })
        .collect()
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    if let Err(e) = verify("verify-good", &shipped_units()) {
        panic!("dist/systemd fails systemd-analyze verify: {e}");
    }
}

/// The same check refuses each kind of breakage, so a broken unit in
/// dist/ cannot pass it.
#[test]
fn a_broken_unit_fails_the_check() {
    for (i, (what, from, to)) in [
        ("misspelt key", "TimeoutStartSec=", "TimeoutStartSecc="),
        ("bad value", "Type=oneshot", "Type=oneshott"),
        (
            "missing unit",
            "After=local-fs.target",
            "After=local-fs.targett",
        ),
        (
            "missing program",
            "ExecStart=/usr/sbin/klpctl",
            "ExecStart=/usr/sbin/klpctll",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut units = shipped_units();
        assert!(units[0].1.contains(from), "klpctl.service lacks {from}");
        units[0].1 = units[0].1.replacen(from, to, 1);
        assert!(
            verify(&format!("verify-bad{i}"), &units).is_err(),
            "systemd-analyze verify accepted a unit with a {what} ({to})"
        );
    }
}

#[test]
fn init_scripts_parse_as_posix_and_busybox_sh() {
    need("/bin/busybox", "busybox-static");
    for script in [
        "dist/sysvinit/klpctl",
        "dist/initramfs-tools/hooks/klpctl",
        "dist/initramfs-tools/scripts/local-bottom/klpctl",
    ] {
        for sh in [&["sh", "-n"][..], &["busybox", "sh", "-n"][..]] {
            let out = Command::new(sh[0])
                .args(&sh[1..])
                .arg(repo().join(script))
                .output()
                .expect("cannot run sh");
            assert!(
                out.status.success(),
                "{} {script}: {}",
                sh.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(repo().join(script))
                .expect("stat")
                .permissions(),
        );
        assert!(mode & 0o111 != 0, "{script} is not executable");
    }
}

/// The hook, run by initramfs-tools' own hook-functions, puts the binary,
/// the keys and the bundles (not dot files) into the initramfs tree.
#[test]
fn initramfs_hook_copies_klpctl_keys_and_bundles() {
    need(
        "/usr/share/initramfs-tools/hook-functions",
        "initramfs-tools-core",
    );
    let t = scratch("hook");
    let (dest, bundles, keys) = (t.join("dest"), t.join("bundles"), t.join("keys"));
    for d in [&dest, &bundles, &keys] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(bundles.join("basic.klp"), "bundle").expect("write");
    std::fs::write(bundles.join(".basic.klp.tmp"), "half-written").expect("write");
    std::fs::write(keys.join("vendor.pub"), "key").expect("write");
    let defaults = t.join("default");
    // Any executable stands in for klpctl: the hook only copies it.
    std::fs::write(
        &defaults,
        format!(
            "KLPCTL=/bin/true\nKLPCTL_BUNDLES={}\nKLPCTL_KEYS={}\n",
            bundles.display(),
            keys.display()
        ),
    )
    .expect("write");
    let out = Command::new("sh")
        .arg(repo().join("dist/initramfs-tools/hooks/klpctl"))
        .env("DESTDIR", &dest)
        .env("verbose", "n")
        .env("KLPCTL_DEFAULTS", &defaults)
        .output()
        .expect("cannot run the hook");
    assert!(
        out.status.success(),
        "hook failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "usr/sbin/klpctl",
        "etc/klpctl/keys.d/vendor.pub",
        "usr/lib/klpctl/bundles/basic.klp",
    ] {
        assert!(dest.join(f).is_file(), "the hook did not install {f}");
    }
    assert!(
        !dest.join("usr/lib/klpctl/bundles/.basic.klp.tmp").exists(),
        "the hook copied a dot file"
    );
    let out = Command::new("sh")
        .arg(repo().join("dist/initramfs-tools/hooks/klpctl"))
        .arg("prereqs")
        .output()
        .expect("cannot run the hook");
    assert!(out.status.success() && out.stdout.trim_ascii().is_empty());
    let _ = std::fs::remove_dir_all(&t);
}

/// The values of `key=` in a unit's text, in order.
fn unit_values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// The confirmation at a clean shutdown must not depend on how the
/// boot-time apply ended. systemd runs a unit's ExecStop= only if its start
/// succeeded, so (replaying that rule over the shipped units, as no systemd
/// runs as PID 1 here): every ExecStop= that confirms belongs to a unit
/// whose start cannot fail (no ExecStart=, or only ones whose failure is
/// ignored with `-`), and that unit is pulled in by klpctl.service with
/// Wants= (which a failed klpctl.service does not undo) or enabled itself.
#[test]
fn the_shutdown_confirmation_runs_whatever_the_apply_exits_with() {
    let units = shipped_units();
    let confirming: Vec<&(&str, String)> = units
        .iter()
        .filter(|(_, t)| {
            unit_values(t, "ExecStop")
                .iter()
                .any(|c| c.contains("klpctl confirm"))
        })
        .collect();
    assert!(!confirming.is_empty(), "no unit confirms at shutdown");
    for (name, text) in &confirming {
        for start in unit_values(text, "ExecStart") {
            assert!(
                start.starts_with('-'),
                "{name}: its ExecStart= can fail ({start}), and then systemd never runs its ExecStop="
            );
        }
        assert!(
            !unit_values(text, "ExecStop")
                .iter()
                .any(|c| c.contains("--after")),
            "{name}: a clean shutdown proves every try"
        );
        let apply = &units
            .iter()
            .find(|(n, _)| *n == "klpctl.service")
            .unwrap()
            .1;
        let wanted = unit_values(apply, "Wants")
            .iter()
            .any(|w| w.split(' ').any(|u| u == *name));
        assert!(
            wanted || text.contains("\n[Install]"),
            "{name}: nothing starts it"
        );
    }
    // The window's confirmation proves only tries at least the window old.
    let confirm = &units
        .iter()
        .find(|(n, _)| *n == "klpctl-confirm.service")
        .unwrap()
        .1;
    assert!(
        unit_values(confirm, "ExecStart")
            .iter()
            .all(|c| c.contains(" --after ")),
        "klpctl-confirm.service must give the window with --after"
    );
}
