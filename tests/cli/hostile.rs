//! Hostile manifests: signed by a trusted key but malformed, oversized or
//! deeply nested, and rejected on content alone.

use super::*;

/// A directory with a signify key `x` (trusted through `ring/x.pub`) and
/// a helper to build bundles whose manifest signify signed, so klpctl
/// authenticates them and must reject them on content alone.
struct Crafted {
    dir: TempDir,
    key: String,
}

impl Crafted {
    fn new() -> Crafted {
        let dir = TempDir::new();
        dir.signify(&[
            "-G",
            "-n",
            "-c",
            "itest signify key",
            "-p",
            "x.pub",
            "-s",
            "x.sec",
        ])
        .code(0);
        dir.mkdir("ring");
        dir.copy("x.pub", "ring/x.pub");
        let key = key_id_hex(&dir.read_text("x.pub"));
        Crafted { dir, key }
    }

    /// Writes `name`: a bundle of `manifest` signed by `x`, and `payload`.
    fn bundle(&self, name: &str, manifest: &[u8], payload: &[u8]) {
        let m = format!("{name}.m");
        let sig = format!("{name}.sig");
        self.dir.write(&m, manifest);
        self.dir
            .signify(&["-S", "-s", "x.sec", "-m", &m, "-x", &sig])
            .code(0);
        let rec = sig_record(&self.dir.read_text(&sig));
        self.dir
            .write(name, build_bundle(manifest, &[rec], payload));
    }

    fn verify(&self, name: &str) -> Run {
        self.dir
            .klpctl_unchanged(&["verify", name, "--keyring", "ring"])
    }

    /// Asserts a signed bundle is rejected after authentication with `msg`.
    #[track_caller]
    fn rejects(&self, name: &str, manifest: &[u8], payload: &[u8], msg: &str) {
        self.bundle(name, manifest, payload);
        self.verify(name).expect(
            3,
            "",
            &format!(
                "{}klpctl: {name}: {msg}\n",
                verdict(1, 1, &[(&self.key, "valid")])
            ),
        );
        // info parses the same manifest without any signature.
        self.dir
            .klpctl_unchanged(&["info", name])
            .fails(3, &format!("klpctl: {name}: {msg}"));
    }
}

#[test]
fn signed_but_malformed_manifests_are_rejected() {
    let c = Crafted::new();
    let ko = livepatch_ko();
    let good = canonical_manifest(&ko);
    // Control: the crafting itself yields a bundle klpctl accepts.
    c.bundle("good.klp", good.as_bytes(), &ko);
    c.verify("good.klp").code(0);

    let with = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        good.replacen(from, to, 1).into_bytes()
    };
    let name_field = format!("\"name\":\"{MOD_NAME}\"");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dup.klp",
            with(",\"arch\"", &format!(",{name_field},\"arch\"")),
            MANIFEST_JSON,
        ),
        (
            "dup-other.klp",
            with(",\"arch\"", ",\"name\":\"klp_evil\",\"arch\""),
            MANIFEST_JSON,
        ),
        (
            "unknown.klp",
            with(",\"arch\"", ",\"extra\":1,\"arch\""),
            MANIFEST_JSON,
        ),
        (
            "unknown-nested.klp",
            with(",\"arch\"", ",\"extra\":{\"a\":[[[1]]]},\"arch\""),
            MANIFEST_JSON,
        ),
        (
            "missing.klp",
            with(",\"arch\":\"x86_64\"", ""),
            MANIFEST_JSON,
        ),
        (
            "escape.klp",
            with(&name_field, "\"name\":\"klp_\\u0069test\""),
            "manifest field name: 1-55 of [A-Za-z0-9_]",
        ),
        (
            "escape2.klp",
            with(&name_field, "\"name\":\"klp\\\"itest\""),
            "manifest field name: 1-55 of [A-Za-z0-9_]",
        ),
        (
            "stream.klp",
            with("\"stream\":\"s\"", "\"stream\":\"../../etc\""),
            "manifest field stream: 1-64 of [A-Za-z0-9._-], not starting with '.'",
        ),
        (
            "desc.klp",
            with("\"description\":\"\"", "\"description\":\"a\\nb\""),
            "manifest field description: at most 1024 bytes, no control characters, only \\\" and \\\\ escapes",
        ),
        (
            "format.klp",
            with("\"format\":1", "\"format\":2"),
            "manifest format unsupported (this klpctl reads format 1)",
        ),
        (
            "space.klp",
            format!(" {good}").into_bytes(),
            "manifest must be exactly one JSON object with nothing before or after it",
        ),
        (
            "newline.klp",
            format!("{good}\n").into_bytes(),
            "manifest must be exactly one JSON object with nothing before or after it",
        ),
        (
            "two.klp",
            format!("{good}{{}}").into_bytes(),
            "manifest has trailing bytes after the JSON object",
        ),
        // Other spellings of the same manifest: one signed manifest has one byte form.
        ("ws.klp", with(",\"arch\"", ", \"arch\""), NOT_CANONICAL),
        (
            "order.klp",
            with(
                &format!("\"format\":1,{name_field}"),
                &format!("{name_field},\"format\":1"),
            ),
            NOT_CANONICAL,
        ),
        (
            "null.klp",
            with(",\"arch\"", ",\"build_id\":null,\"arch\""),
            NOT_CANONICAL,
        ),
        (
            "upper.klp",
            good.replacen(&sha256_hex(&ko), &sha256_hex(&ko).to_uppercase(), 1)
                .into_bytes(),
            "manifest field payload_sha256: 64 lowercase hex digits",
        ),
        (
            "negative.klp",
            with("\"version\":1", "\"version\":-1"),
            "manifest JSON: a field has the wrong type or number format",
        ),
        (
            "size.klp",
            with(
                &format!("\"payload_size\":{}", ko.len()),
                &format!("\"payload_size\":{}", ko.len() + 1),
            ),
            "bundle rejected: header payload length differs from the manifest",
        ),
    ];
    for (name, manifest, msg) in &cases {
        c.rejects(name, manifest, &ko, msg);
    }

    // Correctly signed, but the payload is not the one the manifest names.
    let mut other = ko.clone();
    other[70] ^= 0x20;
    c.bundle("swapped.klp", good.as_bytes(), &other);
    c.verify("swapped.klp").expect(
        3,
        "",
        &format!(
            "{}klpctl: swapped.klp: {DIGEST}\n",
            verdict(1, 1, &[(&c.key, "valid")])
        ),
    );
}

#[test]
fn oversized_and_deeply_nested_manifests_are_rejected() {
    let c = Crafted::new();
    let d = &c.dir;
    let ko = livepatch_ko();
    let good = canonical_manifest(&ko);
    const LEN_BOUNDS: &str = "bundle rejected: manifest length out of bounds (2..16384)";

    // Over the limit, even when signed: refused from the header alone.
    let padded = |n: usize| {
        format!(
            "{}{}",
            &good[..good.len() - 1],
            " ".repeat(n - good.len()) + "}"
        )
    };
    for (name, m) in [
        ("big.klp", padded(16385)),
        ("deep.klp", "[".repeat(100_000)),
        (
            "deep-obj.klp",
            format!("{{\"x\":{}", "{\"a\":".repeat(100_000)),
        ),
    ] {
        c.bundle(name, m.as_bytes(), &ko);
        c.verify(name)
            .fails(3, &format!("klpctl: {name}: {LEN_BOUNDS}"));
        d.klpctl_unchanged(&["info", name])
            .fails(3, &format!("klpctl: {name}: {LEN_BOUNDS}"));
        d.klpctl_unchanged(&["manifest", name])
            .fails(3, &format!("klpctl: {name}: {LEN_BOUNDS}"));
    }
    // A header claiming more than the limit, whatever follows.
    let mut b = build_bundle(good.as_bytes(), &[], &ko);
    b[12..16].copy_from_slice(&16385u32.to_le_bytes());
    d.write("hdr.klp", &b);
    c.verify("hdr.klp")
        .fails(3, &format!("klpctl: hdr.klp: {LEN_BOUNDS}"));
    b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    d.write("hdr.klp", &b);
    c.verify("hdr.klp")
        .fails(3, &format!("klpctl: hdr.klp: {LEN_BOUNDS}"));

    // Exactly at the limit and signed: the parser itself sees it. Nesting
    // that fills the whole manifest must be an error, never a crash.
    let fill = |prefix: &str| {
        let mut s = prefix.to_owned();
        s.push_str(&"[".repeat(16383 - prefix.len()));
        s.push('}');
        assert_eq!(s.len(), 16384);
        s
    };
    let at = good.find("\"cves\":").unwrap() + "\"cves\":".len();
    let nested = [
        ("n-cves.klp", fill(&good[..at])),
        ("n-unknown.klp", fill("{\"x\":")),
        ("n-first.klp", fill("{\"format\":")),
        ("n-obj.klp", {
            let mut s = "{\"x\":".to_owned();
            while s.len() + 5 <= 16383 {
                s.push_str("{\"a\":");
            }
            s.push_str(&"}".repeat(16384 - s.len()));
            s
        }),
    ];
    for (name, m) in &nested {
        assert!(m.len() <= 16384);
        c.bundle(name, m.as_bytes(), &ko);
        let r = c.verify(name);
        r.code(3);
        assert!(
            r.err().starts_with(&verdict(1, 1, &[(&c.key, "valid")])),
            "{}",
            r.err()
        );
        let last = r.err().lines().last().unwrap();
        assert!(
            last.starts_with(&format!("klpctl: {name}: manifest")),
            "{last}"
        );
        let info = d.klpctl_unchanged(&["info", name]);
        info.code(3);
        assert_eq!(info.err(), format!("{last}\n"));
    }
    // Exactly the limit passes the header check; the padding inside the
    // object is then refused as a second spelling of the manifest.
    c.rejects("max.klp", padded(16384).as_bytes(), &ko, NOT_CANONICAL);
}
