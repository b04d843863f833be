//! Other builds of the binary: a threshold of two embedded keys, and the
//! locked-down device build.

use super::*;
use std::ffi::OsStr;

#[test]
fn threshold_two_of_three() {
    let d = TempDir::new();
    let a = keygen(&d, "a");
    let b = keygen(&d, "b");
    let c = keygen(&d, "c");
    let x = keygen(&d, "x"); // never trusted by the build
    let keys = format!("{}:{}:{}", d.abs("a.pub"), d.abs("b.pub"), d.abs("c.pub"));
    let bin = build_device_binary(
        &root().join("target/itest-threshold"),
        &[
            ("KLPCTL_THRESHOLD", OsStr::new("2")),
            ("KLPCTL_TRUSTED_KEYS", OsStr::new(&keys)),
        ],
    );
    // No runtime keys: only the three embedded ones are trusted.
    d.mkdir("none");
    d.write("m.ko", livepatch_ko());
    let pack = |out: &str, keys: &[&str]| {
        // One creation time for every bundle: below, signatures of one are
        // spliced onto the manifest of another, which only verify if both
        // manifests are the same bytes (a slow pack must not cross a second).
        let mut args = vec![
            "pack",
            "m.ko",
            "-o",
            out,
            "--stream",
            "s",
            "--version",
            "1",
            "--created",
            "1764300000",
        ];
        for k in keys {
            args.extend(["-s", k]);
        }
        d.klpctl(&args).code(0);
    };
    let verify = |name: &str, ring: &str| {
        let before = d.snapshot();
        let r = d.run_bin(&bin, &["verify", name, "--keyring", ring]);
        assert_same(&before, &d.snapshot(), &r);
        r
    };

    pack("a.klp", &["a.sec"]);
    verify("a.klp", "none").expect(
        3,
        "",
        &format!(
            "{}klpctl: a.klp: {NOT_ENOUGH}\n",
            verdict(0, 2, &[(&a, "unchecked")])
        ),
    );
    // The normal build (threshold 1) takes the same bundle from the same key.
    d.mkdir("ring-a");
    d.copy("a.pub", "ring-a/a.pub");
    d.klpctl(&["verify", "a.klp", "--keyring", "ring-a"])
        .code(0);

    pack("ab.klp", &["a.sec", "b.sec"]);
    let r = verify("ab.klp", "none");
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(2, 2, &[(&a, "valid"), (&b, "valid")])),
        "{}",
        r.out()
    );
    pack("cb.klp", &["c.sec", "b.sec"]);
    verify("cb.klp", "none").code(0);

    // The same key twice counts once (pack and sign never write that, so
    // the second record is added by hand).
    let one = d.read("a.klp");
    let rec = sig_records_of(&one)[0];
    d.write(
        "aa.klp",
        build_bundle(manifest_of(&one), &[rec, rec], &livepatch_ko()),
    );
    verify("aa.klp", "none").expect(
        3,
        "",
        &format!(
            "{}klpctl: aa.klp: {NOT_ENOUGH}\n",
            verdict(0, 2, &[(&a, "unchecked"), (&a, "unchecked")])
        ),
    );

    // An untrusted key does not make up the difference, and is reported.
    pack("ax.klp", &["a.sec", "x.sec"]);
    verify("ax.klp", "none").expect(
        3,
        "",
        &format!(
            "{}klpctl: ax.klp: {NOT_ENOUGH}\n",
            verdict(0, 2, &[(&a, "unchecked"), (&x, "untrusted")])
        ),
    );
    let r = d.run_bin(&bin, &["verify", "ax.klp", "--keyring", "none", "--json"]);
    r.code(3);
    let v = Json::parse(r.out());
    assert_eq!(
        (v.get("threshold").u64(), v.get("valid_keys").u64()),
        (2, 0)
    );
    let statuses: Vec<(&str, &str)> = v
        .get("signatures")
        .arr()
        .iter()
        .map(|s| (s.get("key_id").str(), s.get("status").str()))
        .collect();
    assert_eq!(
        statuses,
        [(a.as_str(), "unchecked"), (x.as_str(), "untrusted")]
    );

    // Three of three is more than enough; a runtime key counts toward the
    // embedded threshold.
    pack("abc.klp", &["a.sec", "b.sec", "c.sec"]);
    verify("abc.klp", "none").code(0);
    d.mkdir("ring-x");
    d.copy("x.pub", "ring-x/x.pub");
    let r = verify("ax.klp", "ring-x");
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(2, 2, &[(&a, "valid"), (&x, "valid")])),
        "{}",
        r.out()
    );

    // A bad signature by a trusted key rejects even above the threshold.
    let ab = d.read("ab.klp");
    let mut bad = ab.clone();
    let at = Layout::of(&ab).sigs_offset() + SIG_RECORD + 8 + 5;
    bad[at] ^= 1;
    d.write("abad.klp", &bad);
    d.write("abc-bad.klp", {
        let mut recs = sig_records_of(&d.read("abc.klp"));
        recs[1] = sig_records_of(&bad)[1];
        build_bundle(manifest_of(&ab), &recs, &livepatch_ko())
    });
    verify("abad.klp", "none").expect(
        3,
        "",
        &format!(
            "{}klpctl: abad.klp: {BAD_SIG}\n",
            verdict(1, 2, &[(&a, "valid"), (&b, "invalid")])
        ),
    );
    verify("abc-bad.klp", "none").expect(
        3,
        "",
        &format!(
            "{}klpctl: abc-bad.klp: {BAD_SIG}\n",
            verdict(2, 2, &[(&a, "valid"), (&b, "invalid"), (&c, "valid")])
        ),
    );
}

/// The locked-down appliance build: no authoring commands, no runtime
/// keyring, one embedded key. It trusts exactly the embedded key, refuses
/// `--keyring`, and says plainly that it cannot pack.
#[test]
fn locked_down_device_build() {
    let d = TempDir::new();
    keygen(&d, "a");
    keygen(&d, "x");
    let bin = build_binary_with(
        &root().join("target/itest-lockdown"),
        &[("KLPCTL_TRUSTED_KEYS", OsStr::new(&d.abs("a.pub")))],
        &["--no-default-features", "--features", "no-runtime-keyring"],
    );
    d.write("m.ko", livepatch_ko());
    pack_m(&d, "a.klp", &["-s", "a.sec"]).code(0);
    pack_m(&d, "x.klp", &["-s", "x.sec"]).code(0);
    d.mkdir("ring-x");
    d.copy("x.pub", "ring-x/x.pub");

    // The embedded key is trusted without any keyring directory.
    let r = d.run_bin(&bin, &["verify", "a.klp"]);
    r.code(0);
    assert!(r.out().starts_with("OK "), "{}", r.out());

    // Another key is not, and no directory can add it.
    let before = d.snapshot();
    let r = d.run_bin(&bin, &["verify", "x.klp"]);
    assert_same(&before, &d.snapshot(), &r);
    r.code(3);
    let r = d.run_bin(&bin, &["verify", "x.klp", "--keyring", "ring-x"]);
    assert_same(&before, &d.snapshot(), &r);
    r.code(2);
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("built without a runtime keyring"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );

    // No authoring commands on the device.
    for args in [
        &[
            "pack",
            "m.ko",
            "-o",
            "y.klp",
            "--stream",
            "s",
            "--version",
            "1",
            "-s",
            "a.sec",
        ][..],
        &["keygen", "-p", "n.pub", "-s", "n.sec"][..],
        &["sign", "a.klp", "-s", "a.sec"][..],
    ] {
        let r = d.run_bin(&bin, args);
        assert_same(&before, &d.snapshot(), &r);
        r.code(2);
        assert!(
            String::from_utf8_lossy(&r.stderr)
                .contains("device build without the authoring commands")
        );
    }
}
