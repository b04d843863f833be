//! The QEMU rig's apt lists: "the newest kernel" must be the mirror's
//! newest, so `qemu/lib.sh` and `qemu/trixie.sh` refresh lists the rig has
//! not refreshed for `KLPCTL_APT_MAX_AGE` hours (or never), and leave fresh
//! ones alone so a warm run stays offline.
//!
//! Each test sources the rig's helpers in bash with a private cache
//! directory and a fake `apt-get` first on `PATH`, which appends its
//! arguments to a log (and fails when told to), so no network and no root
//! are needed.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Rig {
    dir: PathBuf,
}

impl Rig {
    fn new(tag: &str) -> Rig {
        let dir = std::env::temp_dir().join(format!("klpctl-rig-apt-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let fake = dir.join("bin/apt-get");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho \"$*\" >>\"$FAKE_APT_LOG\"\n[ -z \"$FAKE_APT_FAIL\" ]\n",
        )
        .unwrap();
        Command::new("chmod")
            .arg("755")
            .arg(&fake)
            .status()
            .unwrap();
        Rig { dir }
    }

    fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }

    /// Runs `script` after sourcing qemu/lib.sh and qemu/trixie.sh; returns
    /// whether it succeeded and the fake apt-get's calls.
    fn run(&self, env: &[(&str, &str)], script: &str) -> (bool, Vec<String>) {
        let log = self.dir.join("apt.log");
        let _ = std::fs::remove_file(&log);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(format!(
                "set -euo pipefail; . qemu/lib.sh; . qemu/trixie.sh; {script}"
            ))
            .current_dir(root)
            .env("PATH", path)
            .env("KLPCTL_CACHE", self.cache())
            .env("FAKE_APT_LOG", &log)
            .env_remove("KLPCTL_APT_MAX_AGE")
            .env_remove("FAKE_APT_FAIL");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let calls = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        (out.status.success(), calls)
    }

    /// Sets the modification time of `rel` (under the cache) `hours` ago,
    /// creating it.
    fn stamp(&self, rel: &str, hours: u32) {
        let p = self.cache().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let ok = Command::new("touch")
            .arg("-d")
            .arg(format!("{hours} hours ago"))
            .arg(&p)
            .status()
            .unwrap()
            .success();
        assert!(ok, "touch {}", p.display());
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn updates(calls: &[String]) -> usize {
    calls.iter().filter(|c| c.contains("update")).count()
}

#[test]
fn lists_the_rig_never_refreshed_are_refreshed_once() {
    let rig = Rig::new("never");
    let (ok, calls) = rig.run(&[], "apt_refresh_if_stale; apt_refresh_if_stale");
    assert!(ok);
    assert_eq!(updates(&calls), 1, "calls: {calls:?}");
    assert!(rig.cache().join("apt-host.updated").exists());
}

#[test]
fn lists_older_than_the_limit_are_refreshed() {
    let rig = Rig::new("old");
    rig.stamp("apt-host.updated", 7);
    let (ok, calls) = rig.run(&[], "apt_refresh_if_stale");
    assert!(ok);
    assert_eq!(updates(&calls), 1, "calls: {calls:?}");
    // The stamp now says "just refreshed": a second run stays offline.
    let (ok, calls) = rig.run(&[], "apt_refresh_if_stale");
    assert!(ok);
    assert_eq!(updates(&calls), 0, "calls: {calls:?}");
}

#[test]
fn fresh_lists_are_left_alone_unless_the_limit_is_zero() {
    let rig = Rig::new("fresh");
    rig.stamp("apt-host.updated", 1);
    let (ok, calls) = rig.run(&[], "apt_refresh_if_stale");
    assert!(ok);
    assert_eq!(updates(&calls), 0, "calls: {calls:?}");
    let (ok, calls) = rig.run(&[("KLPCTL_APT_MAX_AGE", "2")], "apt_refresh_if_stale");
    assert!(ok);
    assert_eq!(updates(&calls), 0, "calls: {calls:?}");
    let (ok, calls) = rig.run(&[("KLPCTL_APT_MAX_AGE", "0")], "apt_refresh_if_stale");
    assert!(ok);
    assert_eq!(updates(&calls), 1, "calls: {calls:?}");
}

#[test]
fn a_failed_refresh_stops_the_run_and_leaves_the_stamp_old() {
    let rig = Rig::new("fail");
    rig.stamp("apt-host.updated", 7);
    let before = std::fs::metadata(rig.cache().join("apt-host.updated"))
        .unwrap()
        .modified()
        .unwrap();
    let (ok, calls) = rig.run(
        &[("FAKE_APT_FAIL", "1")],
        "apt_refresh_if_stale; echo reached",
    );
    assert!(!ok, "a failed apt-get update must stop the run");
    assert_eq!(updates(&calls), 1, "calls: {calls:?}");
    let after = std::fs::metadata(rig.cache().join("apt-host.updated"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        before, after,
        "the stamp must not claim a refresh that failed"
    );
}

#[test]
fn trixie_backports_lists_follow_the_same_rule() {
    let rig = Rig::new("bpo");
    // Lists present, but refreshed 30 hours ago: refreshed, through the
    // rig's own apt configuration.
    rig.stamp(
        "apt-trixie-backports/state/lists/deb.debian.org_debian_dists_trixie-backports_main_binary-amd64_Packages",
        30,
    );
    rig.stamp("apt-trixie-backports/updated", 30);
    let (ok, calls) = rig.run(&[], "bpo_ensure_lists");
    assert!(ok);
    assert_eq!(updates(&calls), 1, "calls: {calls:?}");
    assert!(
        calls[0].contains("apt-trixie-backports/sources.list"),
        "not the rig's own configuration: {calls:?}"
    );
    let (ok, calls) = rig.run(&[], "bpo_ensure_lists");
    assert!(ok);
    assert_eq!(updates(&calls), 0, "calls: {calls:?}");
}
