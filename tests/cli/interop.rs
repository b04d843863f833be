//! Interoperability with OpenBSD signify: keys and signatures move
//! between the two tools in both directions.

use super::*;

#[test]
fn signify_key_signs_for_klpctl_attach() {
    let d = TempDir::new();
    d.signify(&["-G", "-n", "-p", "x.pub", "-s", "x.sec"])
        .code(0);
    let x = key_id_hex(&d.read_text("x.pub"));
    d.mkdir("ring");
    d.copy("x.pub", "ring/x.pub");
    d.write("m.ko", livepatch_ko());
    pack_m(&d, "b.klp", &["--unsigned"]).code(0);
    let m = d.klpctl(&["manifest", "b.klp"]);
    m.code(0);
    d.write("m", &m.stdout);
    d.signify(&["-S", "-s", "x.sec", "-m", "m", "-x", "m.sig"])
        .expect(0, "", "");
    d.klpctl(&["attach", "b.klp", "m.sig"]).expect(
        0,
        &format!("attached signature by key {x}\n"),
        "",
    );
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring"]);
    r.code(0);
    assert!(
        r.out().ends_with(&verdict(1, 1, &[(&x, "valid")])),
        "{}",
        r.out()
    );
    assert_eq!(
        sig_records_of(&d.read("b.klp"))[0],
        sig_record(&d.read_text("m.sig"))
    );

    // A signify signature over other bytes attaches, but never verifies.
    d.klpctl(&[
        "pack",
        "m.ko",
        "-o",
        "c.klp",
        "--stream",
        "s",
        "--version",
        "2",
        "--unsigned",
    ])
    .code(0);
    d.klpctl(&["attach", "c.klp", "m.sig"]).code(0);
    d.klpctl_unchanged(&["verify", "c.klp", "--keyring", "ring"])
        .expect(
            3,
            "",
            &format!(
                "{}klpctl: c.klp: {BAD_SIG}\n",
                verdict(0, 1, &[(&x, "invalid")])
            ),
        );
}

#[test]
fn klpctl_sign_writes_a_signify_signature() {
    let d = TempDir::new();
    let k = keygen(&d, "k");
    d.write("m.ko", livepatch_ko());
    pack_m(&d, "b.klp", &["--unsigned"]).code(0);
    d.klpctl(&["sign", "b.klp", "-s", "k.sec", "-x", "k.sig"])
        .expect(0, &format!("signed with key {k}\n"), "");
    let sig = d.read_text("k.sig");
    assert!(
        sig.starts_with("untrusted comment: ") && sig.ends_with('\n') && sig.lines().count() == 2,
        "{sig}"
    );
    d.write("m", d.klpctl(&["manifest", "b.klp"]).code(0).stdout.clone());
    d.signify(&["-V", "-p", "k.pub", "-m", "m", "-x", "k.sig"])
        .expect(0, "Signature Verified\n", "");
    // signify really checks: one changed byte of the message fails.
    let mut m = d.read("m");
    m[10] ^= 1;
    d.write("m2", &m);
    assert_ne!(
        d.signify(&["-V", "-q", "-p", "k.pub", "-m", "m2", "-x", "k.sig"])
            .code,
        0
    );
    // -x again for a bundle already signed by that key: same signature file.
    d.klpctl(&["sign", "b.klp", "-s", "k.sec", "-x", "k2.sig"])
        .expect(0, &format!("already signed by key {k}\n"), "");
    assert_eq!(
        signify_payload(&d.read_text("k2.sig")),
        signify_payload(&sig)
    );
}

#[test]
fn key_files_work_in_both_tools() {
    let d = TempDir::new();
    // A klpctl secret key signs with signify, and signify verifies with the
    // klpctl public key; klpctl accepts the result.
    let k = keygen(&d, "k");
    d.write("m.ko", livepatch_ko());
    pack_m(&d, "b.klp", &["--unsigned"]).code(0);
    d.write("m", d.klpctl(&["manifest", "b.klp"]).code(0).stdout.clone());
    d.signify(&["-S", "-s", "k.sec", "-m", "m", "-x", "s.sig"])
        .expect(0, "", "");
    d.signify(&["-V", "-p", "k.pub", "-m", "m", "-x", "s.sig"])
        .expect(0, "Signature Verified\n", "");
    d.klpctl(&["attach", "b.klp", "s.sig"]).expect(
        0,
        &format!("attached signature by key {k}\n"),
        "",
    );
    d.mkdir("ring-k");
    d.copy("k.pub", "ring-k/k.pub");
    d.klpctl(&["verify", "b.klp", "--keyring", "ring-k"])
        .code(0);
    // Ed25519 is deterministic: klpctl's own signature is the same bytes.
    d.copy("b.klp", "c.klp");
    d.klpctl(&["sign", "c.klp", "-s", "k.sec", "-x", "k.sig"])
        .expect(0, &format!("already signed by key {k}\n"), "");
    assert_eq!(
        signify_payload(&d.read_text("k.sig")),
        signify_payload(&d.read_text("s.sig"))
    );

    // A signify secret key packs and signs with klpctl; signify verifies.
    d.signify(&["-G", "-n", "-p", "x.pub", "-s", "x.sec"])
        .code(0);
    let x = key_id_hex(&d.read_text("x.pub"));
    pack_m(&d, "x.klp", &["-s", "x.sec"]).code(0);
    d.klpctl(&["sign", "b.klp", "-s", "x.sec", "-x", "x.sig"])
        .expect(0, &format!("signed with key {x}\n"), "");
    d.mkdir("ring-x");
    d.copy("x.pub", "ring-x/x.pub");
    d.klpctl(&["verify", "x.klp", "--keyring", "ring-x"])
        .code(0);
    d.write(
        "xm",
        d.klpctl(&["manifest", "x.klp"]).code(0).stdout.clone(),
    );
    d.write(
        "from-bundle.sig",
        sig_file(&sig_records_of(&d.read("x.klp"))[0]),
    );
    d.signify(&["-V", "-p", "x.pub", "-m", "xm", "-x", "from-bundle.sig"])
        .expect(0, "Signature Verified\n", "");
    d.signify(&["-V", "-p", "x.pub", "-m", "m", "-x", "x.sig"])
        .expect(0, "Signature Verified\n", "");
    // Both keys on b.klp now; either alone is enough at threshold 1.
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring-x"]);
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(1, 1, &[(&k, "untrusted"), (&x, "valid")])),
        "{}",
        r.out()
    );

    // A passphrase-protected key (non-zero KDF rounds) is refused clearly.
    let mut raw = signify_payload(&d.read_text("x.sec"));
    raw[4..8].copy_from_slice(&42u32.to_be_bytes());
    d.write(
        "enc.sec",
        format!("untrusted comment: encrypted\n{}\n", b64_encode(&raw)),
    );
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "enc.sec"]).fails(
        2,
        "klpctl: enc.sec: secret key is passphrase-protected; klpctl needs an unencrypted key (signify -G -n)",
    );
    // A corrupted secret key is caught by its checksum.
    let mut raw = signify_payload(&d.read_text("x.sec"));
    raw[50] ^= 1;
    d.write(
        "bad.sec",
        format!("untrusted comment: corrupted\n{}\n", b64_encode(&raw)),
    );
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "bad.sec"])
        .fails(
            2,
            "klpctl: bad.sec: secret key checksum mismatch (corrupted key file)",
        );
}
