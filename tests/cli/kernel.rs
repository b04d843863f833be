//! The kernel commands (`apply`, `disable`, `status`) as far as the host
//! can test them: usage errors before touching anything, and `status --json`.

use super::*;

/// The kernel commands refuse bad command lines with exit 2 before they
/// look at the kernel, take the lock, or write any state. (Nothing here may
/// ever load a module into the machine running the tests.)
#[test]
fn kernel_commands_refuse_bad_usage_before_touching_anything() {
    let d = TempDir::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["apply"],
            "klpctl: apply needs BUNDLE... or --dir DIR (not both)",
        ),
        (
            &["apply", "a.klp", "--dir", "d"],
            "klpctl: apply needs BUNDLE... or --dir DIR (not both)",
        ),
        (
            &["apply", "--dir", "--json"],
            "klpctl: an option is missing its value",
        ),
        (
            &["apply", "a.klp", "--timeout", "0"],
            "klpctl: --timeout must be 1 to 86400 seconds",
        ),
        (
            &["apply", "a.klp", "--timeout", "86401"],
            "klpctl: --timeout must be 1 to 86400 seconds",
        ),
        (
            &["apply", "a.klp", "--timeout", "-1"],
            "klpctl: expected a non-negative decimal number",
        ),
        (
            &["apply", "a.klp", "--force"],
            "klpctl: --force: unknown option",
        ),
        (&["disable"], "klpctl: disable needs NAME"),
        (
            &["disable", "klp-bad"],
            "klpctl: klp-bad: invalid patch name ([A-Za-z0-9_], 1-55)",
        ),
        (
            &["disable", "../x"],
            "klpctl: ../x: invalid patch name ([A-Za-z0-9_], 1-55)",
        ),
        (&["disable", "a", "b"], "klpctl: b: unexpected argument"),
        (
            &["status", "--verbose"],
            "klpctl: --verbose: unknown option",
        ),
    ];
    for (args, err) in cases {
        let before = d.snapshot();
        let r = d.klpctl(args);
        assert_same(&before, &d.snapshot(), &r);
        r.fails(2, err);
    }
}

/// `status` only reads; on the test machine it must describe the running
/// kernel as uname does, as valid JSON with the documented members.
#[test]
fn status_json_describes_the_running_kernel() {
    let d = TempDir::new();
    let before = d.snapshot();
    let r = d.klpctl(&["status", "--json"]);
    assert_same(&before, &d.snapshot(), &r);
    r.code(0);
    let j = Json::parse(r.out().trim_end());
    assert_eq!(j.keys(), ["kernel", "patches", "patch_level", "leftover"]);
    // Nothing klpctl applied is live on the host: no patch level.
    assert_eq!(j.get("patch_level").arr().len(), 0);
    let k = j.get("kernel");
    assert_eq!(
        k.keys(),
        [
            "release",
            "machine",
            "build_id",
            "livepatch",
            "lockdown",
            "taint",
            "taint_flags"
        ]
    );
    let uname = |flag: &str| {
        let out = std::process::Command::new("uname")
            .arg(flag)
            .output()
            .expect("uname");
        String::from_utf8(out.stdout)
            .expect("uname output")
            .trim()
            .to_string()
    };
    assert_eq!(k.get("release").str(), uname("-r"));
    assert_eq!(k.get("machine").str(), uname("-m"));
    let tainted = std::fs::read_to_string("/proc/sys/kernel/tainted").expect("tainted");
    assert_eq!(
        k.get("taint").u64(),
        tainted.trim().parse::<u64>().expect("taint number")
    );
    assert_eq!(
        k.get("livepatch").bool(),
        std::path::Path::new("/sys/kernel/livepatch").is_dir()
    );
}
