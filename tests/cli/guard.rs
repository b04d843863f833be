//! The crash-loop guard, the rollback floor and boot-time `apply --dir`
//! on a fake machine (`common::fakekernel`): several boots, loads the
//! kernel refuses, transitions that stall, klpctl killed mid-way.

use super::common::fakekernel::Machine;
use super::*;
use std::path::Path;

/// Boot 1 gets EBUSY for a payload, and the boot is confirmed: the payload
/// is not good (it never ran). Boot 2 loads it and dies: boot 3 must not
/// apply it again.
#[test]
fn a_payload_that_failed_to_load_is_not_proven_good() {
    let Some(mut m) = Machine::new("ebusy") else {
        return;
    };
    let b = m.bundle("klp_a", "a", 1, true);
    m.install(&b);
    let r = m.boot_apply(&["-l", "klp_a=16"]);
    assert_eq!(r.code, 6, "{}", r.err());
    assert!(m.patches().is_empty());
    m.confirm(&[]).code(0);
    assert!(!m.guard().contains("\ngood "), "{}", m.guard());
    // Boot 2: it loads, and the machine dies before any confirmation.
    m.reboot();
    m.boot_apply(&[]).code(0);
    assert!(m.live("klp_a"));
    m.reboot();
    let r = m.boot_apply(&[]);
    assert!(m.patches().is_empty(), "{}", r.err());
    assert!(r.err().contains("quarantined klp_a"), "{}", r.err());
}

/// The same after a transition that stalled and was reverted (exit 7) and
/// after a module whose name differs from the manifest's (exit 3): only a
/// payload live at the confirmation becomes good.
#[test]
fn a_reverted_or_rejected_try_is_not_proven_good() {
    let Some(m) = Machine::new("reverted") else {
        return;
    };
    let b = m.bundle("klp_a", "a", 1, false);
    let st = m.state();
    let r = m.run(
        &["-l", "klp_a=stall"],
        &[
            "apply",
            &b,
            "--state-dir",
            &st,
            "--keyring",
            "ring",
            "--timeout",
            "5",
        ],
    );
    assert_eq!(r.code, 7, "{}", r.err());
    assert!(m.patches().is_empty());
    // A bundle whose module is another than its manifest names: exit 3
    // before the kernel sees it, after the guard recorded the try.
    let other = m.bundle("klp_x", "x", 1, false);
    let mut bytes = std::fs::read(&other).unwrap();
    let at = bytes.windows(9).position(|w| w == b"name=klp_").unwrap();
    bytes[at + 5..at + 10].copy_from_slice(b"klp_y");
    std::fs::write(&other, &bytes).unwrap();
    let r = m.apply(&[], &other);
    assert_ne!(r.code, 0, "{}", r.err());
    m.confirm(&[]).code(0);
    let g = m.guard();
    assert!(!g.contains("\ngood "), "{g}");
    assert!(
        !g.contains("\ntry "),
        "a confirmation proves every try: {g}"
    );
}

/// The guard file stays one line per payload and state however often the
/// same payloads are tried, across boots and within one.
#[test]
fn the_guard_file_is_bounded_by_construction() {
    let Some(mut m) = Machine::new("bounded") else {
        return;
    };
    for (name, stream) in [("klp_a", "a"), ("klp_b", "b")] {
        let b = m.bundle(name, stream, 1, false);
        m.install(&b);
    }
    let mut sizes = Vec::new();
    for _ in 0..5 {
        m.boot_apply(&[]).code(0);
        // Tried again in the same boot (after a disable): still one line.
        m.run(&[], &["disable", "klp_b"]).code(0);
        m.boot_apply(&[]).code(0);
        m.confirm(&[]).code(0);
        sizes.push(m.guard().len());
        m.reboot();
    }
    assert!(sizes.windows(2).all(|w| w[0] == w[1]), "{sizes:?}");
    let g = m.guard();
    assert_eq!(
        g.lines().count(),
        5,
        "header, boot, one good per payload, seal: {g}"
    );
}

/// A guard file klpctl cannot read in full is never taken as empty and
/// never replaced: boot-time apply applies nothing and says so, and every
/// other command that needs the guard refuses too.
#[test]
fn an_unreadable_guard_fails_closed_and_is_kept() {
    let Some(mut m) = Machine::new("damaged") else {
        return;
    };
    let b = m.bundle("klp_a", "a", 1, false);
    m.install(&b);
    m.boot_apply(&[]).code(0);
    m.confirm(&[]).code(0);
    assert!(m.guard().contains("\ngood "));
    let guard = m.dir.join("state/guard");
    let good = std::fs::read(&guard).unwrap();
    let huge = [good.clone(), vec![b'\n'; 16 * 1024]].concat();
    let mut truncated = good.clone();
    truncated.pop();
    type Make = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Make)> = vec![
        ("symlink", {
            let target = m.dir.write("elsewhere", &good);
            Box::new(move |p| std::os::unix::fs::symlink(&target, p).unwrap())
        }),
        (
            "fifo",
            Box::new(|p| {
                let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
                assert_eq!(unsafe_free_mkfifo(&c), 0);
            }),
        ),
        (
            "too big",
            Box::new(move |p| std::fs::write(p, &huge).unwrap()),
        ),
        (
            "truncated",
            Box::new(move |p| std::fs::write(p, &truncated).unwrap()),
        ),
        (
            "junk",
            Box::new(|p| std::fs::write(p, "boot x\nhello\n").unwrap()),
        ),
        ("empty", Box::new(|p| std::fs::write(p, "").unwrap())),
        ("unreadable", Box::new(|p| std::fs::create_dir(p).unwrap())),
    ];
    let st = m.state();
    for (what, make) in &cases {
        m.reboot();
        let _ = std::fs::remove_file(&guard);
        make(&guard);
        let before = m.snapshot();
        let r = m.boot_apply(&[]);
        assert_eq!(r.code, 5, "{what}: {}", r.err());
        assert!(
            r.err()
                .contains("crash-loop guard file cannot be read in full"),
            "{what}: {}",
            r.err()
        );
        assert!(m.patches().is_empty(), "{what}: something was applied");
        for args in [
            vec!["confirm", "--state-dir", &st],
            vec!["unquarantine", "klp_a", "--state-dir", &st],
            vec!["apply", &b, "--state-dir", &st, "--keyring", "ring"],
        ] {
            let r = m.run(&[], &args);
            assert_eq!(r.code, 5, "{what}: {args:?}: {}", r.err());
        }
        assert!(m.patches().is_empty(), "{what}: something was applied");
        assert_same(&before, &m.snapshot(), &r);
        let meta = std::fs::symlink_metadata(&guard).unwrap();
        assert!(!meta.is_file() || *what != "symlink" && *what != "fifo");
        if meta.is_dir() {
            std::fs::remove_dir(&guard).unwrap();
        }
    }
}

/// mkfifo through the shell tool, so the test needs no unsafe code.
fn unsafe_free_mkfifo(p: &std::ffi::CStr) -> i32 {
    let s = std::process::Command::new("mkfifo")
        .arg(p.to_str().unwrap())
        .status()
        .unwrap();
    if s.success() { 0 } else { 1 }
}

/// A try that would grow the guard past its bound is refused before the
/// kernel sees it, and the file is left as it was.
#[test]
fn a_full_guard_refuses_new_tries_and_keeps_its_evidence() {
    let Some(m) = Machine::new("full") else {
        return;
    };
    let b = m.bundle("klp_a", "a", 1, false);
    // A valid file just under the bound: a boot line and quarantines.
    m.run(&[], &["status"]).code(0);
    let id = std::fs::read_to_string(m.boot_dir().join("boot_id")).unwrap();
    let id = id.trim();
    let mut text = format!("boot {id}\n");
    let line = |i: usize, name: &str| format!("quarantine {i:064x} {name} q {i} {id} 1700000000\n");
    let mut i = 1;
    while 16 * 1024 - text.len() >= line(i, "klp_q").len() + 300 {
        text.push_str(&line(i, "klp_q"));
        i += 1;
    }
    // Two more, whose names leave room for less than one try line (80
    // bytes).
    let names: Vec<String> = (1..=55)
        .map(|n| format!("q{}", "x".repeat(n - 1)))
        .collect();
    let (n1, n2) = names
        .iter()
        .flat_map(|x| names.iter().map(move |y| (x, y)))
        .find(|(x, y)| {
            let used = text.len() + line(i, x).len() + line(i + 1, y).len();
            used < 16 * 1024 && 16 * 1024 - used < 80
        })
        .unwrap();
    text.push_str(&line(i, n1));
    text.push_str(&line(i + 1, n2));
    // (The streams directory is made by the check that state can be
    // written, before the guard is.)
    std::fs::create_dir_all(m.dir.join("state/streams")).unwrap();
    std::fs::write(m.dir.join("state/guard"), &text).unwrap();
    let before = m.snapshot();
    let r = m.apply(&[], &b);
    assert_eq!(r.code, 5, "{}", r.err());
    assert!(r.err().contains("would grow past 16 KiB"), "{}", r.err());
    assert!(m.patches().is_empty());
    assert_same(&before, &m.snapshot(), &r);
}

/// An old quarantine in a stream does not open its rollback floor: v1
/// crashed long ago, v2 and v3 have since been proven; v2 is a downgrade.
#[test]
fn an_old_quarantine_does_not_open_the_floor() {
    let Some(mut m) = Machine::new("oldq") else {
        return;
    };
    let v: Vec<String> = (1..=3)
        .map(|n| m.bundle(&format!("klp_s{n}"), "s", n, true))
        .collect();
    m.apply(&["-r"], &v[0]).code(0);
    m.reboot(); // crash: v1 is quarantined
    m.run(&[], &["status"]).code(0);
    m.apply(&["-r"], &v[1]).code(0);
    assert!(m.guard().contains(" klp_s1 "), "{}", m.guard());
    m.confirm(&[]).code(0);
    m.reboot();
    m.apply(&["-r"], &v[1]).code(0);
    m.apply(&["-r"], &v[2]).code(0);
    m.confirm(&[]).code(0);
    assert_eq!(m.patches(), ["klp_s3"]);
    let before = m.snapshot();
    let r = m.apply(&["-r"], &v[1]);
    assert_eq!(r.code, 5, "{}", r.err());
    assert!(r.err().contains("refusing downgrade"), "{}", r.err());
    assert_eq!(m.patches(), ["klp_s3"]);
    assert!(m.live("klp_s3"));
    assert_same(&before, &m.snapshot(), &r);
}

/// The one fallback the floor allows: from the quarantined payload that
/// raised it to the newest version below it proven good, not further.
#[test]
fn a_crashing_update_falls_back_to_the_newest_good_version() {
    let Some(mut m) = Machine::new("fallback") else {
        return;
    };
    let v: Vec<String> = (1..=3)
        .map(|n| m.bundle(&format!("klp_s{n}"), "s", n, true))
        .collect();
    for b in &v[..2] {
        m.install(b);
    }
    m.apply(&["-r"], &v[0]).code(0);
    m.confirm(&[]).code(0);
    m.reboot();
    m.boot_apply(&["-r"]).code(0);
    m.confirm(&[]).code(0);
    // v3 is installed and crashes the next boot.
    m.install(&v[2]);
    m.reboot();
    m.boot_apply(&["-r"]).code(0);
    assert_eq!(m.patches(), ["klp_s3"]);
    m.reboot();
    let r = m.boot_apply(&["-r"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(m.patches(), ["klp_s2"], "{}", r.err());
    // v1 is good too, but not the newest good below v3.
    let r = m.apply(&["-r"], &v[0]);
    assert_eq!(r.code, 5, "{}", r.err());
    assert_eq!(m.patches(), ["klp_s2"]);
}

/// Each try needs its own proof: after the window confirmed the boot's
/// first tries, a bundle applied later in the same boot is still a suspect
/// until its own window has passed, or a clean shutdown.
#[test]
fn each_try_is_proven_by_its_own_window() {
    let Some(mut m) = Machine::new("window") else {
        return;
    };
    let a = m.bundle("klp_a", "a", 1, false);
    let b = m.bundle("klp_b", "b", 1, false);
    m.install(&a);
    m.set_uptime(5);
    m.boot_apply(&[]).code(0);
    m.set_uptime(400);
    let first = m.confirm(&["--after", "300"]);
    first.code(0);
    m.set_uptime(500);
    m.apply(&[], &b).code(0);
    m.set_uptime(600);
    let second = m.confirm(&["--after", "300"]);
    second.code(0);
    // The machine dies now: klp_b is quarantined, klp_a is not.
    m.reboot();
    m.install(&b);
    let r = m.boot_apply(&[]);
    assert_eq!(m.patches(), ["klp_a"], "{}", r.err());
    assert!(r.err().contains("quarantined klp_b"), "{}", r.err());
    first.expect(0, "confirmed: 1 bundle(s) tried, 1 live and now good\n", "");
    second.expect(
        0,
        "confirmed: 0 bundle(s) tried, 0 live and now good, 1 tried less than 300 s ago (still suspects)\n",
        "",
    );
    // Its own window after it proves it; so does a clean shutdown.
    let mut m2 = Machine::new("window2").unwrap();
    let b2 = m2.bundle("klp_b", "b", 1, false);
    m2.set_uptime(500);
    m2.apply(&[], &b2).code(0);
    m2.set_uptime(800);
    m2.confirm(&["--after", "300"]).code(0);
    m2.reboot();
    m2.install(&b2);
    m2.boot_apply(&[]).code(0);
    assert_eq!(m2.patches(), ["klp_b"]);
}

/// Without a readable boot id the guard cannot tell boots apart: klpctl
/// refuses to apply or confirm anything with a state directory, and
/// changes nothing.
#[test]
fn no_boot_id_refuses_everything_with_a_state_dir() {
    let Some(mut m) = Machine::new("nobootid") else {
        return;
    };
    let b = m.bundle("klp_a", "a", 1, false);
    m.install(&b);
    m.boot_apply(&[]).code(0);
    m.reboot_without_boot_id();
    let before = m.snapshot();
    let r = m.boot_apply(&[]);
    assert_eq!(r.code, 5, "{}", r.err());
    assert!(
        r.err().contains("cannot read the kernel's boot id"),
        "{}",
        r.err()
    );
    assert!(m.patches().is_empty());
    let r = m.confirm(&[]);
    assert_eq!(r.code, 5, "{}", r.err());
    assert_same(&before, &m.snapshot(), &r);
}

/// A write that fails is an error, never "0 released".
#[test]
fn unquarantine_on_a_read_only_state_dir_is_an_error() {
    let Some(mut m) = Machine::new("rounq") else {
        return;
    };
    let b = m.bundle("klp_a", "a", 1, false);
    m.install(&b);
    m.boot_apply(&[]).code(0);
    m.reboot();
    m.boot_apply(&[]).code(0);
    assert!(m.guard().contains("quarantine "));
    let st = m.state();
    let before = m.snapshot();
    let r = m.run(&["-o", &st], &["unquarantine", "klp_a", "--state-dir", &st]);
    assert_eq!(r.code, 1, "{}{}", r.out(), r.err());
    assert_eq!(r.out(), "");
    assert_eq!(
        r.err(),
        "klpctl: klp_a: cannot write the crash-loop guard: EROFS\n"
    );
    assert_same(&before, &m.snapshot(), &r);
}

/// One stream's failure never costs another: a refused fallback is never
/// picked, and a load the kernel refuses stops only its own stream.
#[test]
fn one_streams_failure_does_not_cost_another() {
    let Some(mut m) = Machine::new("streams") else {
        return;
    };
    let a1 = m.bundle("klp_a1", "a", 1, true);
    let a2 = m.bundle("klp_a2", "a", 2, true);
    let b1 = m.bundle("klp_b1", "b", 1, false);
    m.install(&b1);
    m.boot_apply(&[]).code(0);
    m.confirm(&[]).code(0);
    // a2 is applied later and crashes the boot; a1 (never proven good)
    // is installed too.
    m.apply(&["-r"], &a2).code(0);
    m.reboot();
    m.install(&a1);
    m.install(&a2);
    let r = m.boot_apply(&[]);
    assert_eq!(m.patches(), ["klp_b1"], "{}", r.err());
    assert!(r.err().contains("quarantined klp_a2"), "{}", r.err());
    assert!(r.err().contains("refusing downgrade"), "{}", r.err());
    assert_eq!(r.code, 0, "{}", r.err());
    // The kernel refuses a's first bundle (EBUSY): b still applies, and
    // a2, which stacks on a1, waits for it.
    let m = Machine::new("streams2").unwrap();
    for b in [
        m.bundle("klp_a1", "a", 1, false),
        m.bundle("klp_a2", "a", 2, false),
        m.bundle("klp_b1", "b", 1, false),
    ] {
        m.install(&b);
    }
    let r = m.boot_apply(&["-l", "klp_a1=16"]);
    assert_eq!(r.code, 6, "{}", r.err());
    assert_eq!(m.patches(), ["klp_b1"], "{}", r.err());
    assert!(
        r.err().contains("an earlier bundle of its stream failed"),
        "{}",
        r.err()
    );
    let j = Json::parse(r.out().trim_end());
    assert_eq!(j.get("results").arr().len(), 3);
}

/// More bundles than `apply --dir` keeps: chosen by stream and version,
/// never by directory order, so the newest always applies.
#[test]
fn past_64_bundles_the_newest_still_applies() {
    let Some(m) = Machine::new("many") else {
        return;
    };
    // v70 first: tmpfs lists a directory newest first, so v70 comes last
    // in directory order.
    for n in [70].into_iter().chain(1..=69) {
        let b = m.bundle(&format!("klp_v{n}"), "s", n, true);
        m.install(&b);
    }
    // Another stream, applied after (an atomic replace would take it out).
    let b = m.bundle("klp_other", "z", 1, false);
    m.install(&b);
    let r = m.boot_apply(&["-r", "-l", "klp_other=ok"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(m.patches(), ["klp_other", "klp_v70"], "{}", r.err());
    // 66 non-cumulative members of one stream cannot all be kept: the
    // oldest are left out, loudly, and the other stream still applies.
    let Some(m) = Machine::new("many2") else {
        return;
    };
    for n in 1..=66 {
        let b = m.bundle(&format!("klp_n{n}"), "n", n, false);
        m.install(&b);
    }
    let b = m.bundle("klp_other", "o", 1, false);
    m.install(&b);
    let r = m.boot_apply(&[]);
    assert_eq!(r.code, 0, "{}", r.err());
    let p = m.patches();
    assert!(p.contains(&"klp_other".to_string()) && p.contains(&"klp_n66".to_string()));
    assert_eq!(p.len(), 64);
    for gone in ["klp_n1", "klp_n2", "klp_n3"] {
        assert!(!p.contains(&gone.to_string()), "{p:?}");
    }
    assert_eq!(
        r.err().matches("more than 64 bundles to apply").count(),
        3,
        "{}",
        r.err()
    );
}

/// klpctl killed at every system call of a boot-time apply (a power cut):
/// the next boot finds a guard it can read, and quarantines what the cut
/// boot tried, or applies it when the cut came before the try.
#[test]
fn a_power_cut_at_any_system_call_leaves_a_readable_guard() {
    let Some(mut m) = Machine::new("powercut") else {
        return;
    };
    let b = m.bundle("klp_a", "a", 1, false);
    m.install(&b);
    let mut n = 1;
    loop {
        let _ = std::fs::remove_dir_all(m.dir.join("state"));
        m.reboot();
        let n_s = n.to_string();
        let r = m.boot_apply(&["-k", &n_s]);
        let finished = r.code == 0;
        let tried = m.guard().contains("\ntry ");
        m.reboot();
        let r = m.boot_apply(&[]);
        assert_eq!(r.code, 0, "cut at {n}: {}", r.err());
        if tried {
            assert!(m.patches().is_empty(), "cut at {n}: applied again");
            assert!(r.err().contains("quarantined klp_a"), "cut at {n}");
        } else {
            assert_eq!(m.patches(), ["klp_a"], "cut at {n}");
        }
        if finished {
            break;
        }
        n += 1;
    }
    assert!(n > 20, "only {n} system calls");
    eprintln!("power cut at each of {n} system calls");
}

/// A try whose patch is loaded but not yet live when its window ends (its
/// transition still running, or klpctl killed before it recorded the
/// patch applied) is still a suspect: the window proves only what ran
/// through it. If the boot then dies, the payload is quarantined.
#[test]
fn a_try_still_in_transition_at_its_window_stays_a_suspect() {
    let Some(mut m) = Machine::new("inflight") else {
        return;
    };
    let b = m.bundle("klp_a", "a", 1, false);
    let st = m.state();
    // klpctl killed while it waits for the transition, which never ends:
    // the first system call after the load (a binary search, since the
    // patch stays loaded from there on).
    let cut = |m: &mut Machine, n: u32| {
        let _ = std::fs::remove_dir_all(m.dir.join("state"));
        m.reboot();
        m.set_uptime(5);
        let n_s = n.to_string();
        let r = m.run(
            &["-l", "klp_a=stall", "-k", &n_s],
            &[
                "apply",
                &b,
                "--state-dir",
                &st,
                "--keyring",
                "ring",
                "--timeout",
                "3600",
            ],
        );
        !m.patches().is_empty() && r.code != 0
    };
    let (mut lo, mut hi) = (1, 4096);
    assert!(cut(&mut m, hi), "the patch never loaded");
    while lo < hi {
        let mid = (lo + hi) / 2;
        if cut(&mut m, mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    assert!(cut(&mut m, lo));
    assert!(!m.live("klp_a"));
    m.set_uptime(400);
    let r = m.confirm(&["--after", "300"]);
    r.code(0);
    assert!(m.guard().contains("\ntry "), "{}{}", r.out(), m.guard());
    assert!(r.out().contains("still suspects"), "{}", r.out());
    // The transition ends, and the patched code kills the machine.
    m.reboot();
    m.install(&b);
    let r = m.boot_apply(&[]);
    assert!(m.patches().is_empty(), "applied again: {}", r.err());
    assert!(r.err().contains("quarantined klp_a"), "{}", r.err());
}

/// Past 64 bundles, the set applied does not depend on the directory
/// order: bundles a newer cumulative one makes moot never take the place
/// of one that is needed, wherever the cumulative one comes in the
/// directory. 63 members of a non-cumulative stream and three of another
/// whose newest is cumulative: 64 are needed, and all 64 apply.
#[test]
fn past_64_bundles_the_choice_does_not_depend_on_directory_order() {
    for (seed, cumulative_first) in [("order1", false), ("order2", true)] {
        let Some(m) = Machine::new(seed) else {
            return;
        };
        let mut b: Vec<String> = (1..=2)
            .map(|n| m.bundle(&format!("klp_b{n}"), "b", n, false))
            .collect();
        b.push(m.bundle("klp_b3", "b", 3, true));
        let a: Vec<String> = (1..=63)
            .map(|n| m.bundle(&format!("klp_a{n}"), "a", n, false))
            .collect();
        // tmpfs lists a directory newest first.
        let mut order: Vec<&String> = b.iter().rev().chain(a.iter().rev()).collect();
        if cumulative_first {
            order.reverse();
        }
        for x in order {
            m.install(x);
        }
        let r = m.boot_apply(&[]);
        assert_eq!(r.code, 0, "{seed}: {}", r.err());
        let mut want: Vec<String> = (1..=63).map(|n| format!("klp_a{n}")).collect();
        want.push("klp_b3".to_string());
        want.sort();
        assert_eq!(m.patches(), want, "{seed}: {}", r.err());
        assert!(
            !r.err().contains("more than 64 bundles"),
            "{seed}: {}",
            r.err()
        );
    }
}

/// Copies directory `from` to `to` (files only, one level of
/// subdirectories), replacing `to`.
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// klpctl killed at every system call of a boot-time apply over a state
/// directory that already knows things (a good payload, a quarantine, a
/// floor): the next boot loses none of them, and quarantines every payload
/// the cut boot tried.
#[test]
fn a_power_cut_at_any_system_call_loses_nothing_learnt() {
    let Some(mut m) = Machine::new("cutstate") else {
        return;
    };
    let a1 = m.bundle("klp_a1", "a", 1, true);
    let a2 = m.bundle("klp_a2", "a", 2, true);
    let q = m.bundle("klp_q", "q", 1, false);
    let b1 = m.bundle("klp_b1", "b", 1, false);
    // Boot 1: a1 proven good; q tried and the boot dies.
    m.install(&a1);
    m.boot_apply(&[]).code(0);
    m.confirm(&[]).code(0);
    m.reboot();
    m.apply(&[], &q).code(0);
    m.reboot();
    // The first run of a boot with the state directory quarantines.
    m.dir.mkdir("none");
    let st = m.state();
    let start = [
        "apply",
        "--dir",
        "none",
        "--state-dir",
        &st,
        "--keyring",
        "ring",
    ];
    m.run(&[], &start).code(0);
    let learnt: Vec<String> = m
        .guard()
        .lines()
        .filter(|l| l.starts_with("good ") || l.starts_with("quarantine "))
        .map(str::to_owned)
        .collect();
    assert_eq!(learnt.len(), 2, "{}", m.guard());
    let saved = m.dir.join("saved");
    copy_dir(&m.dir.join("state"), &saved);
    m.install(&a2);
    m.install(&b1);
    let mut n = 1;
    loop {
        copy_dir(&saved, &m.dir.join("state"));
        m.reboot();
        let n_s = n.to_string();
        let r = m.boot_apply(&["-k", &n_s]);
        let finished = r.code == 0;
        let tries: Vec<String> = m
            .guard()
            .lines()
            .filter(|l| l.starts_with("try "))
            .map(|l| l.split(' ').nth(2).unwrap().to_owned())
            .collect();
        m.reboot();
        let r = m.run(&[], &start);
        assert_eq!(r.code, 0, "cut at {n}: {}", r.err());
        let g = m.guard();
        for l in &learnt {
            assert!(g.lines().any(|x| x == l), "cut at {n}: lost {l}: {g}");
        }
        for t in &tries {
            assert!(
                g.lines()
                    .any(|x| x.starts_with("quarantine ") && x.split(' ').nth(2) == Some(t)),
                "cut at {n}: {t} escaped: {g}"
            );
        }
        let floor = std::fs::read_to_string(m.dir.join("state/streams/a")).unwrap();
        assert!(
            floor.starts_with("newest 1\n") || floor.starts_with("newest 2\n"),
            "cut at {n}: {floor}"
        );
        if finished {
            break;
        }
        n += 1;
    }
    assert!(n > 40, "only {n} system calls");
    eprintln!("power cut at each of {n} system calls");
}

/// A guard file that still parses but is not the whole file klpctl wrote
/// (cut at a line boundary, a record lost, one digit of a sha changed, a
/// line after its seal) is unreadable: boot-time apply applies nothing and
/// says so on stderr and in the kernel log, and the file is kept as it is.
#[test]
fn a_guard_cut_at_a_line_or_changed_inside_fails_closed() {
    let Some(mut m) = Machine::new("sealed") else {
        return;
    };
    let a = m.bundle("klp_a", "a", 1, false);
    let q = m.bundle("klp_q", "q", 1, false);
    m.install(&a);
    m.boot_apply(&[]).code(0);
    m.confirm(&[]).code(0);
    m.reboot();
    m.apply(&[], &q).code(0);
    m.reboot(); // crash: klp_q is quarantined
    let r = m.boot_apply(&[]);
    assert!(r.err().contains("quarantined klp_q"), "{}", r.err());
    m.install(&q);
    let whole = m.guard();
    assert!(whole.starts_with("klpctl-guard 2\n"), "{whole}");
    let lines: Vec<&str> = whole.split_inclusive('\n').collect();
    let mut cases: Vec<(String, String)> = (1..lines.len())
        .map(|n| (format!("first {n} lines"), lines[..n].concat()))
        .collect();
    let qline = lines
        .iter()
        .position(|l| l.starts_with("quarantine "))
        .unwrap();
    let mut without = lines.clone();
    without.remove(qline);
    cases.push(("no quarantine line".into(), without.concat()));
    // The first digit of its sha, changed: still 64 hex digits.
    let mut sha = lines[qline].as_bytes().to_vec();
    sha[11] = if sha[11] == b'0' { b'1' } else { b'0' };
    let sha = String::from_utf8(sha).unwrap();
    let mut digit = lines.clone();
    digit[qline] = &sha;
    cases.push(("a digit of a sha".into(), digit.concat()));
    cases.push((
        "a line after the seal".into(),
        format!("{whole}{}", lines[1]),
    ));
    cases.push(("no header".into(), lines[1..].concat()));
    let guard = m.dir.join("state/guard");
    for (what, text) in &cases {
        m.reboot();
        std::fs::write(&guard, text).unwrap();
        let before = m.snapshot();
        let r = m.boot_apply(&[]);
        assert_eq!(r.code, 5, "{what}: {}", r.err());
        assert!(
            r.err()
                .contains("crash-loop guard file cannot be read in full"),
            "{what}: {}",
            r.err()
        );
        assert!(m.patches().is_empty(), "{what}: something was applied");
        let kmsg = std::fs::read_to_string(m.boot_dir().join("kmsg")).unwrap();
        assert!(
            kmsg.contains(
                "klpctl: applying nothing: the crash-loop guard file cannot be read in full"
            ),
            "{what}: {kmsg}"
        );
        assert_same(&before, &m.snapshot(), &r);
    }
}

/// `good` lines are pruned: 300 payloads proven one after the other in one
/// stream never fill the guard, the crashing update still falls back to
/// the newest good version, and a fallback proven long before (the newest
/// good below a quarantined version) is kept however many proofs follow.
#[test]
fn proven_payloads_never_fill_the_guard() {
    let Some(mut m) = Machine::new("pruned") else {
        return;
    };
    // Stream q: v1 proven, v2 crashes.
    let q1 = m.bundle("klp_q1", "q", 1, false);
    let q2 = m.bundle("klp_q2", "q", 2, false);
    m.apply(&[], &q1).code(0);
    m.confirm(&[]).code(0);
    m.reboot();
    m.apply(&[], &q2).code(0);
    m.reboot();
    let mut largest = 0;
    for n in 1..=300 {
        let b = m.bundle(&format!("klp_s{n}"), "s", n, true);
        let r = m.apply(&["-r"], &b);
        assert_eq!(r.code, 0, "v{n}: {}", r.err());
        m.confirm(&[]).code(0);
        largest = largest.max(m.guard().len());
    }
    let g = m.guard();
    let good = g.lines().filter(|l| l.starts_with("good ")).count();
    // The 64 last proofs before the last confirmation, the one it made,
    // and stream q's fallback.
    assert_eq!(good, 66, "{g}");
    assert!(largest < 8 * 1024, "{largest} bytes");
    assert!(
        g.contains(" q 1\n"),
        "the fallback of stream q was pruned: {g}"
    );
    assert!(!g.contains(" s 235\n") && g.contains(" s 236\n"), "{g}");
    // v301 crashes the next boot: back to v300.
    let v300 = m.bundle("klp_s300", "s", 300, true);
    let v301 = m.bundle("klp_s301", "s", 301, true);
    m.install(&v300);
    m.install(&v301);
    m.reboot();
    m.boot_apply(&["-r"]).code(0);
    assert_eq!(m.patches(), ["klp_s301"]);
    m.reboot();
    let r = m.boot_apply(&["-r"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(m.patches(), ["klp_s300"], "{}", r.err());
    // And stream q's way back is still open.
    let r = m.apply(&[], &q1);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(m.patches(), ["klp_q1", "klp_s300"]);
}

/// Boot-time `apply --dir` goes on after a bundle fails: each failure is
/// said on stderr with the path of the bundle that failed, not the path
/// of whichever bundle was tried last, and a second failure is said too.
#[test]
fn each_failure_of_apply_dir_is_said_with_its_own_bundle() {
    let Some(m) = Machine::new("failpath") else {
        return;
    };
    for (name, stream) in [("klp_a", "a"), ("klp_b", "b"), ("klp_c", "c")] {
        let b = m.bundle(name, stream, 1, false);
        m.install(&b);
    }
    let r = m.boot_apply(&["-l", "klp_a=13", "-l", "klp_c=16"]);
    // The first failure decides the exit code, as before.
    let j = Json::parse(r.out());
    let failed: Vec<String> = j
        .get("results")
        .arr()
        .iter()
        .filter(|x| x.get("result").str() == "failed")
        .map(|x| x.get("bundle").str().to_owned())
        .collect();
    assert_eq!(failed, ["bundles/klp_a-1.klp", "bundles/klp_c-1.klp"]);
    assert_eq!(r.code, 6, "{}", r.err());
    assert!(m.live("klp_b"));
    // (The fake kernel's log adds lines of its own; only klpctl's count.)
    let lines: Vec<&str> = r
        .err()
        .lines()
        .filter(|l| l.starts_with("klpctl: "))
        .collect();
    assert_eq!(
        lines,
        [
            "klpctl: bundles/klp_a-1.klp: kernel refused the module: its init or pre-patch callback failed [EACCES]",
            "klpctl: bundles/klp_c-1.klp: kernel refused the module: busy (a transition, ftrace_enabled=0 or a kprobe) [EBUSY]",
        ],
        "{}",
        r.err()
    );
}
