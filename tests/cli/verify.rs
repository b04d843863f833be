//! `klpctl verify` and `info`: JSON output, the keyring, and unknown,
//! duplicate and forged signatures.

use super::*;

#[test]
fn verify_and_info_json() {
    let s = setup();
    let d = &s.dir;
    pack_full(&s);
    let ko = livepatch_ko();

    let check_manifest = |m: &Json| {
        assert_eq!(
            m.keys(),
            [
                "name",
                "stream",
                "version",
                "release",
                "build_id",
                "arch",
                "replace",
                "cves",
                "products",
                "description",
                "created",
                "payload_size",
                "payload_sha256"
            ]
        );
        assert_eq!(m.get("name").str(), MOD_NAME);
        assert_eq!(m.get("stream").str(), "acme.live-1");
        assert_eq!(m.get("version").u64(), 7);
        assert_eq!(m.get("release").str(), RELEASE);
        assert_eq!(m.get("build_id").str(), BUILD_ID);
        assert_eq!(m.get("arch").str(), "x86_64");
        assert!(m.get("replace").bool());
        let cves: Vec<&str> = m.get("cves").arr().iter().map(Json::str).collect();
        assert_eq!(cves, ["CVE-2024-1234", "RHSA:2025.01"]);
        assert_eq!(
            m.get("description").str(),
            DESCRIPTION,
            "description must round-trip exactly"
        );
        assert_eq!(m.get("created").u64(), 1764300000);
        assert_eq!(m.get("payload_size").u64(), ko.len() as u64);
        assert_eq!(m.get("payload_sha256").str(), sha256_hex(&ko));
    };

    let r = d.klpctl(&["verify", "full.klp", "--keyring", "ring", "--json"]);
    r.code(0);
    assert_eq!(r.err(), "");
    assert!(
        r.out().ends_with("}\n") && r.out().lines().count() == 1,
        "one line of JSON: {}",
        r.out()
    );
    let v = Json::parse(r.out());
    assert_eq!(
        v.keys(),
        [
            "ok",
            "bundle",
            "manifest",
            "threshold",
            "valid_keys",
            "signatures"
        ]
    );
    assert!(v.get("ok").bool());
    assert_eq!(v.get("bundle").str(), "full.klp");
    check_manifest(v.get("manifest"));
    assert_eq!(v.get("threshold").u64(), 1);
    assert_eq!(v.get("valid_keys").u64(), 1);
    let sigs = v.get("signatures").arr();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].get("key_id").str(), s.key);
    assert_eq!(sigs[0].get("status").str(), "valid");

    let r = d.klpctl(&["info", "full.klp", "--json"]);
    r.code(0);
    assert_eq!(r.err(), "");
    let v = Json::parse(r.out());
    assert_eq!(v.keys(), ["verified", "bundle", "manifest", "signatures"]);
    assert!(!v.get("verified").bool());
    check_manifest(v.get("manifest"));
    assert_eq!(
        v.get("signatures"),
        &Json::Arr(vec![Json::Obj(vec![(
            "key_id".into(),
            Json::Str(s.key.clone())
        )])])
    );

    // Defaults come out as null build_id, empty cves and description.
    let v = Json::parse(d.klpctl(&["info", "b.klp", "--json"]).code(0).out());
    assert_eq!(v.get("manifest").get("build_id"), &Json::Null);
    assert_eq!(v.get("manifest").get("cves").arr(), []);
    assert_eq!(v.get("manifest").get("description").str(), "");

    // A rejected bundle under --json: the verdict on stdout as JSON, the
    // error line on stderr, exit 3.
    keygen(d, "other");
    d.mkdir("ring2");
    d.copy("other.pub", "ring2/other.pub");
    let before = d.snapshot();
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring2", "--json"]);
    assert_same(&before, &d.snapshot(), &r);
    r.code(3);
    assert_eq!(r.err(), format!("klpctl: b.klp: {NOT_ENOUGH}\n"));
    let v = Json::parse(r.out());
    assert_eq!(
        v.keys(),
        [
            "ok",
            "bundle",
            "exit",
            "error",
            "threshold",
            "valid_keys",
            "signatures"
        ]
    );
    assert!(!v.get("ok").bool());
    assert_eq!(v.get("exit").u64(), 3);
    assert_eq!(v.get("error").str(), NOT_ENOUGH);
    assert_eq!(v.get("valid_keys").u64(), 0);
    assert_eq!(
        v.get("signatures").arr()[0].get("status").str(),
        "untrusted"
    );

    // Rejected before any signature was looked at: no verdict members.
    d.write("junk.klp", b"KLPBNDL\0junk");
    let r = d.klpctl(&["verify", "junk.klp", "--keyring", "ring", "--json"]);
    r.code(3);
    assert_eq!(r.err(), format!("klpctl: junk.klp: {TRUNCATED}\n"));
    let v = Json::parse(r.out());
    assert_eq!(v.keys(), ["ok", "bundle", "exit", "error"]);
    assert_eq!(v.get("error").str(), TRUNCATED);
}

#[test]
fn keyring_skips_malformed_key_files() {
    let s = setup();
    let d = &s.dir;
    d.write("ring/bad.pub", "untrusted comment: x\nAAAA\n");
    // The identity point: a weak key that could never verify anything.
    let mut weak = b"Ed".to_vec();
    weak.extend_from_slice(&[7; 8]);
    weak.push(1);
    weak.extend_from_slice(&[0; 31]);
    d.write(
        "ring/weak.pub",
        format!("untrusted comment: weak\n{}\n", b64_encode(&weak)),
    );
    d.write("ring/ignored.txt", "not a key, not read");
    d.write("ring/.hidden.pub", "not read either");
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring"]);
    r.code(0);
    // Directory order decides the order of the warnings.
    let mut warnings: Vec<&str> = r.err().lines().collect();
    warnings.sort();
    assert_eq!(
        warnings,
        [
            "klpctl: warning: ignoring key file bad.pub: not a signify/minisign Ed25519 public key file",
            "klpctl: warning: ignoring key file weak.pub: public key is not a valid Ed25519 point (weak or malformed key)",
        ]
    );
}

#[test]
fn unknown_key_and_unsigned_bundles_are_rejected() {
    let s = setup();
    let d = &s.dir;
    let other = keygen(d, "other");
    pack_m(d, "o.klp", &["-s", "other.sec"]).code(0);
    d.klpctl_unchanged(&["verify", "o.klp", "--keyring", "ring"])
        .expect(
            3,
            "",
            &format!(
                "{}klpctl: o.klp: {NOT_ENOUGH}\n",
                verdict(0, 1, &[(&other, "untrusted")])
            ),
        );
    pack_m(d, "u.klp", &["--unsigned"]).code(0);
    d.klpctl_unchanged(&["verify", "u.klp", "--keyring", "ring"])
        .expect(
            3,
            "",
            &format!("{}klpctl: u.klp: {NOT_ENOUGH}\n", verdict(0, 1, &[])),
        );
    // info does not judge trust, it says so instead.
    assert!(
        d.klpctl(&["info", "u.klp"])
            .code(0)
            .out()
            .starts_with("UNVERIFIED ")
    );

    // The same signature twice counts once.
    let rec = sig_records_of(&d.read("b.klp"))[0];
    d.write(
        "twice.klp",
        build_bundle(manifest_of(&d.read("b.klp")), &[rec, rec], &livepatch_ko()),
    );
    let r = d.klpctl(&["verify", "twice.klp", "--keyring", "ring"]);
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(1, 1, &[(&s.key, "valid"), (&s.key, "duplicate")])),
        "{}",
        r.out()
    );

    // A trusted key id in front of a signature it did not make.
    let mut b = d.read("o.klp");
    let at = Layout::of(&b).sigs_offset();
    b[at..at + 8].copy_from_slice(&d.read("b.klp")[at..at + 8]);
    d.write("forged.klp", &b);
    d.klpctl_unchanged(&["verify", "forged.klp", "--keyring", "ring"])
        .expect(
            3,
            "",
            &format!(
                "{}klpctl: forged.klp: {BAD_SIG}\n",
                verdict(0, 1, &[(&s.key, "invalid")])
            ),
        );
    // An invalid signature by a trusted key rejects even next to a valid one.
    let mut recs = sig_records_of(&d.read("b.klp"));
    recs.push(sig_records_of(&b)[0]);
    let ko = livepatch_ko();
    d.write(
        "mixed.klp",
        build_bundle(manifest_of(&d.read("b.klp")), &recs, &ko),
    );
    d.klpctl_unchanged(&["verify", "mixed.klp", "--keyring", "ring"])
        .expect(
            3,
            "",
            &format!(
                "{}klpctl: mixed.klp: {BAD_SIG}\n",
                verdict(1, 1, &[(&s.key, "valid"), (&s.key, "invalid")])
            ),
        );
}

/// `info --json` keeps the promise of one JSON object on stdout when the
/// file cannot be read as a bundle at all (missing, not a bundle,
/// truncated), with the exit code and error, and the name escaped.
#[test]
fn info_json_fails_with_one_json_object() {
    let d = TempDir::new();
    let good = std::fs::read(root().join("docs/vectors/valid-full.klp")).unwrap();
    d.write("junk.klp", b"not a bundle");
    d.write("cut\u{1b}.klp", &good[..100]);
    for (name, code) in [("missing.klp", 1), ("junk.klp", 3), ("cut\u{1b}.klp", 3)] {
        let r = d.klpctl_unchanged(&["info", name, "--json"]);
        r.code(code);
        let j = Json::parse(r.out());
        assert!(!j.get("verified").bool());
        assert_eq!(j.get("bundle").str(), name);
        assert_eq!(j.get("exit").u64(), code as u64);
        assert!(!j.get("error").str().is_empty());
        assert_eq!(r.err().lines().count(), 1, "{}", r.err());
    }
    // Negative: without --json, nothing on stdout.
    let r = d.klpctl_unchanged(&["info", "junk.klp"]);
    r.code(3);
    assert_eq!(r.out(), "");
}
