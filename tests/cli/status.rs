//! `status` on the fake kernel, in both forms, across what it describes:
//! no live patching, patches live, disabled and in transition, their
//! objects and functions, klpctl's records (valid and damaged), the patch
//! level, leftover modules, names a terminal would act on, the lockdown
//! mode, and the crash-loop guard (absent, with a quarantine, unreadable).
//!
//! With `KLPCTL_BASE_BIN` set to another build of klpctl, every run is
//! also compared with that build's, byte for byte (stdout, stderr, exit
//! code): a change to how `status` is rendered must not change what it
//! says.

use crate::common::fakekernel::Machine;
use crate::common::json::Json;
use crate::common::runner::Run;
use std::path::Path;

/// `status` plus `extra`, human then JSON, each compared with the base
/// build when there is one.
fn status(m: &Machine, extra: &[&str]) -> (Run, Run) {
    let run = |json: bool| {
        let mut args = vec!["status"];
        args.extend_from_slice(extra);
        if json {
            args.push("--json");
        }
        let r = m.run(&[], &args);
        if let Some(base) = std::env::var_os("KLPCTL_BASE_BIN") {
            let b = m.run_bin(Path::new(&base), &[], &args);
            assert_eq!(
                (b.code, &b.stdout, &b.stderr),
                (r.code, &r.stdout, &r.stderr),
                "{args:?}: the base build said\n{}\n{}\nthis one\n{}\n{}",
                String::from_utf8_lossy(&b.stdout),
                String::from_utf8_lossy(&b.stderr),
                r.out(),
                r.err()
            );
        }
        r
    };
    (run(false), run(true))
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn status_says_the_same_facts_in_both_forms() {
    let Some(mut m) = Machine::new("status") else {
        return;
    };
    let st = m.state();
    let sd = ["--state-dir", st.as_str()];

    // Nothing applied; a state directory that does not exist yet.
    let (h, j) = status(&m, &[]);
    h.code(0);
    assert!(h.out().contains("\nlivepatch: supported, lockdown: "));
    assert!(
        h.out()
            .ends_with("no livepatches applied\npatch level: no patch applied by klpctl is live\n")
    );
    let doc = Json::parse(j.code(0).out().trim_end());
    assert_eq!(doc.keys(), ["kernel", "patches", "patch_level", "leftover"]);
    let (_, j) = status(&m, &sd);
    let doc = Json::parse(j.code(0).out().trim_end());
    assert_eq!(doc.get("quarantined").arr().len(), 0);

    // Two patches klpctl applied, two patches in transition (one being
    // disabled) that klpctl never saw, objects and functions,
    // a leftover module, a name with escapes, the lockdown mode.
    let a = m.bundle("klp_a", "a", 1, false);
    let b = m.bundle("klp_b", "b", 2, false);
    m.apply(&[], &a).code(0);
    m.apply(&[], &b).code(0);
    let lp = m.boot_dir().join("kernel/livepatch");
    write(&lp.join("klp_a/vmlinux/cmdline_proc_show,1"), "x", "");
    write(&lp.join("klp_a/vmlinux"), "patched", "1\n");
    write(&lp.join("klp_a/ext4/ext4_f,2"), "x", "");
    write(&lp.join("klp_a/ext4"), "patched", "0\n");
    write(&lp.join("klp_a/nfs/nfs_g,1"), "x", "");
    write(&lp.join("klp_a"), "stack_order", "1\n");
    write(&lp.join("klp_a"), "replace", "0\n");
    // (The fake kernel removes a patch whose `enabled` reads 0 as soon as
    // klpctl runs: an `enabled` it cannot read is disabled too.)
    write(&lp.join("klp_d"), "transition", "1\n");
    write(&lp.join("klp_b"), "replace", "1\n");
    write(&lp.join("klp_b"), "stack_order", "-2\n");
    write(&lp.join("klp_t"), "enabled", "1\n");
    write(&lp.join("klp_t"), "transition", "1\n");
    write(&lp.join("klp_\x1b]0;x\x07"), "enabled", "1\n");
    write(&lp.join("klp_\x1b]0;x\x07"), "transition", "zero\n");
    write(&m.boot_dir().join("module/klp_old"), "taint", "OEK\n");
    write(
        &m.boot_dir().join("kernel/security"),
        "lockdown",
        "none [integrity] confidentiality\n",
    );
    let (h, j) = status(&m, &sd);
    h.code(0);
    let out = h.out();
    assert!(out.contains("lockdown: integrity"), "{out}");
    assert!(
        out.contains("patch klp_a: enabled, stack order 1\n"),
        "{out}"
    );
    assert!(out.contains("  object vmlinux: patched, functions: cmdline_proc_show,1\n"));
    assert!(out.contains("  object ext4: not loaded, functions: ext4_f,2\n"));
    assert!(out.contains("  object nfs, functions: nfs_g,1\n"));
    assert!(out.contains("  klpctl: stream a version 1, sha256 "));
    assert!(
        out.contains("patch klp_b: enabled, replace, stack order -2\n"),
        "{out}"
    );
    assert!(
        out.contains("patch klp_d: disabled, in transition\n"),
        "{out}"
    );
    assert!(out.contains(
        "patch klp_t: enabled, in transition\n  klpctl: no record this boot\n  blocking task: "
    ));
    assert!(out.contains("  blocking task: "));
    assert!(out.contains("patch klp_\\x1b]0;x\\x07: enabled\n"));
    assert!(out.contains("  klpctl: no record this boot\n"));
    assert!(out.contains("patch level: stream a version 1 (klp_a), fixes no listed CVE\n"));
    assert!(out.contains("patch level: stream b version 2 (klp_b), fixes no listed CVE\n"));
    assert!(out.contains("leftover module (its patch is gone): klp_old\n"));
    let doc = Json::parse(j.code(0).out().trim_end());
    assert_eq!(doc.get("patches").arr().len(), 5);
    assert_eq!(doc.get("patch_level").arr().len(), 2);
    assert_eq!(doc.get("leftover").arr()[0].str(), "klp_old");
    assert_eq!(doc.get("kernel").get("lockdown").str(), "integrity");

    // A damaged record is no record.
    let rec = m.boot_dir().join("run/klpctl/patches/klp_a");
    std::fs::write(&rec, "not a record\n").unwrap();
    let (h, _) = status(&m, &[]);
    assert!(!h.code(0).out().contains("stream a version 1"));

    // The machine dies: the next boot quarantines klp_a.
    m.reboot();
    m.install(&a);
    m.boot_apply(&[]);
    assert!(m.guard().contains("quarantine "), "{}", m.guard());
    let (h, j) = status(&m, &sd);
    assert!(
        h.code(0)
            .out()
            .contains("quarantined: klp_a stream a version 1, sha256 ")
    );
    let doc = Json::parse(j.code(0).out().trim_end());
    assert_eq!(doc.get("quarantined").arr()[0].get("name").str(), "klp_a");

    // A guard that cannot be read is said, and fails the command.
    let guard = m.dir.join("state/guard");
    let good = std::fs::read(&guard).unwrap();
    std::fs::write(&guard, &good[..good.len() - 1]).unwrap();
    let (h, j) = status(&m, &sd);
    assert_ne!(h.code, 0);
    assert!(!h.out().contains("quarantined"));
    let doc = Json::parse(j.out().trim_end());
    assert!(!doc.get("guard_error").str().is_empty());
    assert_eq!(j.code, h.code);

    // No live patching at all; then a /sys/kernel/livepatch that cannot
    // be listed (said so, after what was said before it).
    let lp = m.boot_dir().join("kernel/livepatch");
    std::fs::remove_dir_all(&lp).unwrap();
    let (h, j) = status(&m, &[]);
    assert!(
        h.code(0).out().contains("livepatch: not supported"),
        "{}",
        h.out()
    );
    assert!(
        !Json::parse(j.code(0).out().trim_end())
            .get("kernel")
            .get("livepatch")
            .bool()
    );
    std::fs::write(&lp, "").unwrap();
    let (h, j) = status(&m, &sd);
    assert_ne!(h.code, 0);
    assert!(h.out().starts_with("kernel: "));
    assert!(j.out().starts_with("{\"kernel\":"));
}
