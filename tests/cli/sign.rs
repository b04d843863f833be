//! `klpctl manifest`, `sign` and `attach`: the exact signed bytes,
//! co-signing, detached signatures, and refusing bad bundles.

use super::*;

#[test]
fn manifest_prints_the_exact_signed_bytes() {
    let s = setup();
    let d = &s.dir;
    pack_full(&s);
    let ko = livepatch_ko();
    let want = format!(
        concat!(
            r#"{{"format":1,"name":"{}","stream":"acme.live-1","version":7,"release":"{}","build_id":"{}","arch":"x86_64","#,
            r#""replace":true,"cves":["CVE-2024-1234","RHSA:2025.01"],"description":"{}","created":1764300000,"#,
            r#""payload_size":{},"payload_sha256":"{}"}}"#
        ),
        MOD_NAME,
        RELEASE,
        BUILD_ID,
        DESCRIPTION_STORED,
        ko.len(),
        sha256_hex(&ko)
    );
    // No trailing newline: stdout is exactly the signed bytes.
    d.klpctl(&["manifest", "full.klp"]).expect(0, &want, "");
    let bundle = d.read("full.klp");
    assert_eq!(manifest_of(&bundle), want.as_bytes());
    d.klpctl(&["manifest", "b.klp"])
        .expect(0, &canonical_manifest(&ko), "");

    // The signature in the bundle is a plain Ed25519 signature over exactly
    // those bytes: signify agrees.
    d.write("m", &want);
    d.write("from-bundle.sig", sig_file(&sig_records_of(&bundle)[0]));
    d.signify(&[
        "-V",
        "-q",
        "-p",
        "k.pub",
        "-m",
        "m",
        "-x",
        "from-bundle.sig",
    ])
    .expect(0, "", "");
    d.write("m", format!("{want}\n"));
    d.signify(&[
        "-V",
        "-q",
        "-p",
        "k.pub",
        "-m",
        "m",
        "-x",
        "from-bundle.sig",
    ])
    .code(1);
}

#[test]
fn sign_co_signs_and_is_idempotent() {
    let s = setup();
    let d = &s.dir;
    let k2 = keygen(d, "k2");
    d.klpctl(&["sign", "b.klp", "-s", "k2.sec"])
        .expect(0, &format!("signed with key {k2}\n"), "");
    let once = d.read("b.klp");
    assert_eq!(Layout::of(&once).sig_count, 2);
    assert_eq!(
        manifest_of(&once),
        d.klpctl(&["manifest", "b.klp"]).stdout,
        "signing does not touch the manifest"
    );

    // Again, with either key: nothing changes.
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "k2.sec"])
        .expect(0, &format!("already signed by key {k2}\n"), "");
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "k.sec"])
        .expect(0, &format!("already signed by key {}\n", s.key), "");

    let info = d.klpctl(&["info", "b.klp"]);
    assert!(
        info.code(0).out().ends_with(&format!(
            "  signatures: 2\n    key {}\n    key {k2}\n",
            s.key
        )),
        "{}",
        info.out()
    );
    d.copy("k2.pub", "ring/k2.pub");
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring"]);
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(2, 1, &[(&s.key, "valid"), (&k2, "valid")])),
        "{}",
        r.out()
    );
    // With only the co-signer trusted, the first signature is reported and ignored.
    d.mkdir("ring2");
    d.copy("k2.pub", "ring2/k2.pub");
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring2"]);
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(1, 1, &[(&s.key, "untrusted"), (&k2, "valid")])),
        "{}",
        r.out()
    );
}

#[test]
fn attach_adds_a_signature_once() {
    let s = setup();
    let d = &s.dir;
    pack_m(d, "u.klp", &["--unsigned", "--created", "1700000000"]).expect(
        0,
        &format!("packed {MOD_NAME} stream s version 1 for {RELEASE} (0 signatures)\n"),
        "",
    );
    d.klpctl(&["verify", "u.klp", "--keyring", "ring"]).expect(
        3,
        "",
        &format!("{}klpctl: u.klp: {NOT_ENOUGH}\n", verdict(0, 1, &[])),
    );
    // A detached signature made by `sign -x` on one copy attaches to another.
    d.copy("u.klp", "signed.klp");
    d.klpctl(&["sign", "signed.klp", "-s", "k.sec", "-x", "k.sig"])
        .expect(0, &format!("signed with key {}\n", s.key), "");
    d.klpctl(&["attach", "u.klp", "k.sig"]).expect(
        0,
        &format!("attached signature by key {}\n", s.key),
        "",
    );
    assert_eq!(d.read("u.klp"), d.read("signed.klp"));
    assert_eq!(
        d.read("u.klp"),
        d.read("b.klp"),
        "attach and pack -s give the same bytes"
    );
    d.klpctl_unchanged(&["attach", "u.klp", "k.sig"]).expect(
        0,
        &format!("signature already present: key {}\n", s.key),
        "",
    );
    d.klpctl(&["verify", "u.klp", "--keyring", "ring"]).code(0);
}

#[test]
fn sign_and_attach_refuse_bad_bundles_without_touching_them() {
    let s = setup();
    let d = &s.dir;
    keygen(d, "k2");
    // Bundles with an altered payload, cut short, with a byte too many or
    // with a manifest klpctl would not accept, and bad key files and
    // arguments: rows of the table in exit_codes.rs.

    // Four signatures is the limit.
    for k in ["k3", "k4", "k5"] {
        keygen(d, k);
    }
    for k in ["k2", "k3", "k4"] {
        d.klpctl(&["sign", "b.klp", "-s", &format!("{k}.sec")])
            .code(0);
    }
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "k5.sec"])
        .fails(2, "klpctl: b.klp: bundle already holds 4 signatures");
}

/// When the `-x` signature file cannot be written, `sign` exits 1 and the
/// bundle has not gained the signature.
#[test]
fn sign_with_unwritable_sig_file_leaves_bundle_unchanged() {
    let s = setup();
    let d = &s.dir;
    keygen(d, "k2");
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "k2.sec", "-x", "no-such-dir/k2.sig"])
        .fails(
            1,
            "klpctl: no-such-dir/k2.sig: cannot create output file: ENOENT",
        );
}

/// Ed25519 is deterministic, so a different signature by a key that already
/// signed was made over other bytes: `attach` refuses it and leaves the
/// bundle (which still verifies) as it was.
#[test]
fn attach_does_not_replace_a_signature_by_the_same_key() {
    let s = setup();
    let d = &s.dir;
    d.klpctl(&[
        "pack",
        "m.ko",
        "-o",
        "v2.klp",
        "--stream",
        "s",
        "--version",
        "2",
        "-s",
        "k.sec",
    ])
    .code(0);
    d.write("v2.sig", sig_file(&sig_records_of(&d.read("v2.klp"))[0]));
    d.klpctl(&["verify", "b.klp", "--keyring", "ring"]).code(0);
    let r = d.klpctl_unchanged(&["attach", "b.klp", "v2.sig"]);
    assert_ne!(
        r.code,
        0,
        "attach replaced a valid signature with one over other bytes: {}",
        r.out()
    );
    d.klpctl(&["verify", "b.klp", "--keyring", "ring"]).code(0);
}
