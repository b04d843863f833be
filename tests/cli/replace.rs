//! An atomic replace on the fake kernel: the modules of the patches it
//! replaced are removed, at most eight in one apply; more stay loaded, and
//! klpctl says so.

use crate::common::fakekernel::Machine;

/// `n` patches live, each its own stream, then a cumulative patch that
/// replaces them all. Returns the apply's run and the modules of the
/// replaced patches still loaded afterwards.
fn replace_after(n: usize) -> Option<(crate::common::runner::Run, Vec<String>, String)> {
    let m = Machine::new(&format!("replace{n}"))?;
    for i in 0..n {
        let b = m.bundle(&format!("klp_{i}"), &format!("s{i}"), 1, false);
        m.apply(&[], &b).code(0);
    }
    let b = m.bundle("klp_all", "all", 1, true);
    let r = m.apply(&["-l", "klp_all=replace"], &b);
    let mut left: Vec<String> = std::fs::read_dir(m.boot_dir().join("module"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "klp_all")
        .collect();
    left.sort();
    let status = m.run(&[], &["status"]);
    status.code(0);
    Some((r, left, status.out().to_string()))
}

/// Eight replaced patches: all eight modules go, each said, no warning.
/// Ten: eight go, the two others stay loaded, a warning says so, and
/// `status` lists them as leftovers (nothing is dropped unsaid).
#[test]
fn a_replace_removes_eight_modules_and_says_when_more_stay_loaded() {
    for (n, stay) in [(8, 0), (10, 2)] {
        let Some((r, left, status)) = replace_after(n) else {
            return;
        };
        r.code(0);
        let removed = r
            .out()
            .lines()
            .filter(|l| l.starts_with("klp_all: removed replaced module klp_"))
            .count();
        assert_eq!(removed, 8, "{n} replaced: {}", r.out());
        assert_eq!(left.len(), stay, "{n} replaced, still loaded: {left:?}");
        let warned = r
            .err()
            .contains("warning: over 8 leftover modules; the rest stay loaded");
        assert_eq!(warned, stay > 0, "{n} replaced: {}", r.err());
        for module in &left {
            assert!(
                status.contains(&format!("leftover module (its patch is gone): {module}")),
                "{module} not listed: {status}"
            );
        }
    }
}
