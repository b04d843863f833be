//! Adversarial files and paths: FIFOs where a bundle or key is expected,
//! and paths that are not UTF-8 in JSON output.

use super::*;
use std::ffi::OsStr;

/// Makes a FIFO at `path` (mkfifo(1), so the tests need no libc crate).
fn mkfifo(path: &std::path::Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
}

/// klpctl with `args` in `d`, killed (and the test failed) if it has not
/// exited after 10 s, and shown to have changed nothing in `d`.
fn klpctl_bounded_unchanged(d: &TempDir, args: &[&str]) -> Run {
    let before = d.snapshot();
    let mut cmd = std::process::Command::new(klpctl_bin());
    cmd.args(args).current_dir(d.path());
    let r = run_bounded(cmd, 10);
    assert_same(&before, &d.snapshot(), &r);
    r
}

/// A FIFO (or any file that is not a regular file) given as a bundle is
/// refused before anything is read. Opening one used to block until a
/// writer came, which never happens: klpctl hung forever.
#[test]
fn a_fifo_given_as_a_bundle_is_refused_at_once() {
    let s = setup();
    let d = &s.dir;
    mkfifo(&d.join("f.klp"));
    for cmd in ["verify", "info"] {
        klpctl_bounded_unchanged(
            d,
            &[cmd, "f.klp", "--keyring", "ring"][..if cmd == "info" { 2 } else { 4 }],
        )
        .fails(1, "klpctl: f.klp: cannot read bundle: not a regular file");
    }
    let r = klpctl_bounded_unchanged(d, &["verify", "f.klp", "--keyring", "ring", "--json"]);
    r.code(1);
    let j = Json::parse(r.out().trim_end());
    assert_eq!(j.get("ok"), &Json::Bool(false));
    assert_eq!(j.get("exit").u64(), 1);
    // /dev/null is a character device: the same.
    klpctl_bounded_unchanged(d, &["verify", "/dev/null", "--keyring", "ring"]).fails(
        1,
        "klpctl: /dev/null: cannot read bundle: not a regular file",
    );
}

/// A FIFO named like a key in the keyring is skipped with a warning, like
/// any other unreadable key file, instead of blocking; the real key in the
/// same directory still verifies the bundle.
#[test]
fn a_fifo_in_the_keyring_is_skipped_not_waited_for() {
    let s = setup();
    let d = &s.dir;
    mkfifo(&d.join("ring/evil.pub"));
    let r = klpctl_bounded_unchanged(d, &["verify", "b.klp", "--keyring", "ring"]);
    r.code(0);
    assert!(
        r.out()
            .starts_with(&format!("OK {MOD_NAME} stream s version 1\n"))
    );
    assert_eq!(
        r.err(),
        "klpctl: warning: ignoring key file evil.pub: cannot read key file: not a regular file\n"
    );
    // A FIFO as the secret key of an authoring command: refused, no hang.
    mkfifo(&d.join("f.sec"));
    klpctl_bounded_unchanged(d, &["sign", "b.klp", "-s", "f.sec"]).fails(
        1,
        "klpctl: f.sec: cannot read secret key: not a regular file",
    );
}

/// Paths that are not UTF-8 cannot be carried exactly by JSON strings.
/// `--json` writes each byte that is not part of a UTF-8 sequence as a lone
/// surrogate `\udc80`-`\udcff` (PEP 383), which gives back the exact bytes,
/// and never confuses byte 0xff with the character U+00FF.
#[test]
fn json_paths_that_are_not_utf8_round_trip() {
    use std::os::unix::ffi::OsStrExt;
    let s = setup();
    let d = &s.dir;
    // "b", byte 0xff, "ÿ" (U+00FF as UTF-8), ".klp"
    let name: &[u8] = b"b\xff\xc3\xbf.klp";
    std::fs::copy(d.join("b.klp"), d.path().join(OsStr::from_bytes(name))).unwrap();
    let mut cmd = std::process::Command::new(klpctl_bin());
    cmd.arg("verify")
        .arg(OsStr::from_bytes(name))
        .args(["--keyring", "ring", "--json"])
        .current_dir(d.path());
    let r = run(cmd);
    r.code(0);
    assert!(
        r.out().contains(r#""bundle":"b\udcffÿ.klp""#),
        "{}",
        r.out()
    );
    let j = Json::parse(r.out().trim_end());
    assert_eq!(j.get("bundle").raw(), name);
}

/// `pack` with the stack limit (`ulimit -s`) set to `limits` (a shell
/// `ulimit` command) in `d`.
fn pack_with_stack_limit(d: &TempDir, limits: &str) -> Run {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{limits} && exec \"$0\" \"$@\""))
        .arg(klpctl_bin())
        .args(["pack", "m.ko", "-o", "x.klp", "--stream", "s"])
        .args(["--version", "1", "-s", "k.sec"])
        .current_dir(d.path());
    run(cmd)
}

/// klpctl keeps its buffers on the stack (no heap), ~170 KiB deep for
/// `pack`. Under a small stack limit it used to die of SIGSEGV half-way
/// through a command. Now it raises the soft limit when the hard limit
/// allows, and otherwise refuses at start-up (exit 1), before doing
/// anything.
#[test]
fn a_small_stack_limit_is_raised_or_refused_never_a_crash() {
    let s = setup();
    let d = &s.dir;
    pack_with_stack_limit(d, "ulimit -S -s 32").code(0);
    d.klpctl(&["verify", "x.klp", "--keyring", "ring"]).code(0);
    std::fs::remove_file(d.join("x.klp")).unwrap();
    let before = d.snapshot();
    let r = pack_with_stack_limit(d, "ulimit -s 32");
    r.code(1);
    assert_eq!(
        r.err(),
        "klpctl: the stack size limit (ulimit -s) is below 1024 KiB\n"
    );
    assert_same(&before, &d.snapshot(), &r);
}
