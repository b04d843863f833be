//! Unit tests of the manifest parser and writer (kept apart so that
//! manifest.rs stays short).

use super::*;

const GOOD: &str = concat!(
    r#"{"format":1,"name":"klp_fix_1","stream":"acme","version":3,"release":"6.1.0-41-amd64","#,
    r#""build_id":"00112233445566778899aabbccddeeff00112233","arch":"x86_64","replace":true,"#,
    r#""cves":["CVE-2024-1234","CVE-2025-0001"],"description":"fix \"x\" \\ y","created":1764300000,"#,
    r#""payload_size":1234,"payload_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}"#
);

fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replacen(from, to, 1)
}

#[test]
fn parses_and_writes_canonically() {
    let m = parse(GOOD.as_bytes()).unwrap();
    assert_eq!(m.name, "klp_fix_1");
    assert_eq!(m.version, 3);
    assert_eq!(m.build_id.len(), 20);
    assert_eq!(m.cves.len(), 2);
    assert_eq!(m.description, r#"fix \"x\" \\ y"#);
    let mut buf = [0u8; 2048];
    assert_eq!(m.write(&mut buf).unwrap(), GOOD.as_bytes());
}

#[test]
fn products_are_optional_signed_and_checked() {
    let cves = r#""cves":["CVE-2024-1234","CVE-2025-0001"],"#;
    let purl = "pkg:deb/debian/linux-image-6.1.0-41-amd64@6.1.158-1?arch=amd64";
    let cpe = "cpe:2.3:o:linux:linux_kernel:6.1.158:*:*:*:*:*:*:*";
    let s = with(cves, &format!(r#"{cves}"products":["{purl}","{cpe}"],"#));
    let m = parse(s.as_bytes()).unwrap();
    assert_eq!(&m.products[..], &[purl, cpe]);
    let mut buf = [0u8; 2048];
    assert_eq!(m.write(&mut buf).unwrap(), s.as_bytes());
    // A manifest without the field (every bundle made before it
    // existed) has none, and is written back without it.
    let m = parse(GOOD.as_bytes()).unwrap();
    assert!(m.products.is_empty());
    let one = |p: &str| with(cves, &format!(r#"{cves}"products":["{p}"],"#));
    for bad in [
        // '+' must be %2B in a purl; no other schemes; no JSON escapes,
        // spaces or quotes; not empty; not too long.
        "pkg:deb/debian/linux-image-6.12.117+deb12-amd64@6.12.117+deb12",
        "http://example.com/x",
        "pkg:",
        "pkg:deb/a b",
        r#"pkg:deb/a"b"#,
        r"pkg:deb/a\b",
        &format!("pkg:deb/{}", "a".repeat(252)),
    ] {
        assert!(parse(one(bad).as_bytes()).is_err(), "{bad}");
        assert!(!valid_product(bad), "{bad}");
    }
    let encoded = "pkg:deb/debian/linux-image-6.12.117%2Bdeb12-amd64@6.12.117%2Bdeb12";
    assert!(parse(one(encoded).as_bytes()).is_ok());
    assert!(parse(one(&format!("pkg:deb/{}", "a".repeat(248))).as_bytes()).is_ok());
    // An empty list is another spelling of "none": not canonical.
    assert!(parse(with(cves, &format!(r#"{cves}"products":[],"#)).as_bytes()).is_err());
    // At most 16, and in their place after cves.
    let many = vec![format!(r#""{purl}""#); 17].join(",");
    assert!(parse(with(cves, &format!(r#"{cves}"products":[{many}],"#)).as_bytes()).is_err());
    let moved = with(cves, "").replace(
        r#""description""#,
        &format!(r#"{}"products":["{purl}"],"description""#, cves),
    );
    assert!(parse(moved.as_bytes()).is_ok());
    let wrong_place = with(cves, &format!(r#""products":["{purl}"],{cves}"#));
    assert!(parse(wrong_place.as_bytes()).is_err());
}

#[test]
fn a_cve_id_is_listed_at_most_once() {
    let twice = with("CVE-2025-0001", "CVE-2024-1234");
    assert_eq!(
        parse(twice.as_bytes()),
        Err(Error::ManifestField(msg!("cves: each CVE id at most once")))
    );
    // Ids compare without ASCII case, as `pack --cve` compares them:
    // cve-2024-1234 is CVE-2024-1234, and would be a second statement.
    assert_eq!(
        parse(with("CVE-2025-0001", "cve-2024-1234").as_bytes()),
        Err(Error::ManifestField(msg!("cves: each CVE id at most once")))
    );
    assert!(parse(with("CVE-2025-0001", "cve-2024-1235").as_bytes()).is_ok());
}

#[test]
fn a_product_is_listed_at_most_once() {
    let cves = r#""cves":["CVE-2024-1234","CVE-2025-0001"],"#;
    let list = |p: &str| with(cves, &format!(r#"{cves}"products":[{p}],"#));
    let twice = list(r#""pkg:deb/debian/linux@1","pkg:deb/debian/linux@1""#);
    assert_eq!(
        parse(twice.as_bytes()),
        Err(Error::ManifestField(msg!(
            "products: each product at most once"
        )))
    );
    assert!(parse(list(r#""pkg:deb/debian/linux@1","pkg:deb/debian/linux@2""#).as_bytes()).is_ok());
}

#[test]
fn build_id_is_optional() {
    let s = with(
        r#""build_id":"00112233445566778899aabbccddeeff00112233","#,
        "",
    );
    let m = parse(s.as_bytes()).unwrap();
    assert!(m.build_id.is_empty());
    let mut buf = [0u8; 2048];
    assert_eq!(m.write(&mut buf).unwrap(), s.as_bytes());
}

#[test]
fn unknown_duplicate_and_missing_fields_are_rejected() {
    assert!(parse(with(r#""arch""#, r#""extra":{"a":[[[1]]]},"arch""#).as_bytes()).is_err());
    assert!(parse(with(r#""arch""#, r#""name":"other","arch""#).as_bytes()).is_err());
    assert!(parse(with(r#""arch":"x86_64","#, "").as_bytes()).is_err());
}

#[test]
fn trailing_bytes_are_rejected() {
    assert!(parse(format!("{GOOD} ").as_bytes()).is_err());
    assert!(parse(format!("{GOOD}\n").as_bytes()).is_err());
    assert!(parse(format!(" {GOOD}").as_bytes()).is_err());
    assert!(parse(format!("{GOOD}x").as_bytes()).is_err());
    assert!(parse(format!("{GOOD}{{}}").as_bytes()).is_err());
}

#[test]
fn only_the_canonical_spelling_is_accepted() {
    // Found by fuzz/fuzz_targets/bundle.rs: each of these parsed to the
    // same manifest as GOOD, so one signed manifest had many spellings.
    for variant in [
        with(r#""release":"#, r#""release": "#),
        with(r#""release":"#, r#""release" :"#),
        with(r#","arch""#, r#", "arch""#),
        with(r#"{"format""#, "{\n\"format\""),
        with(r#"52b855"}"#, "52b855\"\t}"),
        with(r#"["CVE-2024-1234","#, r#"[ "CVE-2024-1234" ,"#),
        with(
            r#""format":1,"name":"klp_fix_1","#,
            r#""name":"klp_fix_1","format":1,"#,
        ),
        with(
            r#""build_id":"00112233445566778899aabbccddeeff00112233","#,
            r#""build_id":null,"#,
        ),
    ] {
        assert_eq!(
            parse(variant.as_bytes()),
            Err(Error::Manifest(msg!("is not canonical"))),
            "{variant}"
        );
    }
    assert!(parse(GOOD.as_bytes()).is_ok());
}

#[test]
fn deep_nesting_does_not_crash() {
    let deep = "[".repeat(15000);
    assert!(parse(with(r#""cves":["#, &format!(r#""cves":{deep}"#)).as_bytes()).is_err());
    let deep = format!(r#"{{"x":{}"#, "{\"a\":".repeat(3000));
    assert!(parse(deep.as_bytes()).is_err());
}

#[test]
fn escapes_and_control_characters_in_identifiers_are_rejected() {
    assert!(parse(with("klp_fix_1", r"klp_fix\u0031").as_bytes()).is_err());
    assert!(parse(with("acme", "ac\\\"me").as_bytes()).is_err());
    assert!(parse(with("acme", "ac\tme").as_bytes()).is_err());
    assert!(parse(with("acme", "../etc").as_bytes()).is_err());
    assert!(parse(with("CVE-2024-1234", "CVE\\n").as_bytes()).is_err());
    assert!(parse(with("fix ", "fix \\n").as_bytes()).is_err());
    assert!(parse(with("fix ", "fix \u{1}").as_bytes()).is_err());
}

#[test]
fn bounds_are_enforced() {
    assert!(parse(with("klp_fix_1", &"a".repeat(56)).as_bytes()).is_err());
    assert!(parse(with("klp_fix_1", &"a".repeat(55)).as_bytes()).is_ok());
    assert!(parse(with("klp_fix_1", "klp-fix").as_bytes()).is_err());
    let many: Vec<String> = (0..65).map(|i| format!("\"C{i}\"")).collect();
    assert!(parse(with(r#""CVE-2024-1234","CVE-2025-0001""#, &many.join(",")).as_bytes()).is_err());
    let ok: Vec<String> = (0..64).map(|i| format!("\"C{i}\"")).collect();
    assert!(parse(with(r#""CVE-2024-1234","CVE-2025-0001""#, &ok.join(",")).as_bytes()).is_ok());
    assert!(parse(with(r#""payload_size":1234"#, r#""payload_size":0"#).as_bytes()).is_err());
    assert!(
        parse(with(r#""payload_size":1234"#, r#""payload_size":1073741825"#).as_bytes()).is_err()
    );
    assert!(
        parse(with(r#""payload_size":1234"#, r#""payload_size":1073741824"#).as_bytes()).is_ok()
    );
    assert!(parse(with("e3b0", "E3B0").as_bytes()).is_err());
    assert!(parse(with("\"format\":1", "\"format\":2").as_bytes()).is_err());
    let big = format!("{}{}", &GOOD[..GOOD.len() - 1], " ".repeat(MAX_MANIFEST));
    assert!(parse(big.as_bytes()).is_err());
}

#[test]
fn numbers_must_be_plain_unsigned() {
    assert!(parse(with(r#""version":3"#, r#""version":-3"#).as_bytes()).is_err());
    assert!(parse(with(r#""version":3"#, r#""version":3.5"#).as_bytes()).is_err());
    assert!(parse(with(r#""version":3"#, r#""version":"3""#).as_bytes()).is_err());
    assert!(parse(with(r#""version":3"#, r#""version":18446744073709551616"#).as_bytes()).is_err());
    assert!(parse(with(r#""version":3"#, r#""version":18446744073709551615"#).as_bytes()).is_ok());
    // What each kind of bad number is called. A number is its digits: a
    // leading zero, a fraction or an exponent leaves bytes where a comma
    // belongs, so the object is malformed.
    let wrong_type = Err(Error::Manifest(msg!(
        "JSON: a field has the wrong type or number format"
    )));
    for bad in ["-3", "\"3\"", "null", "18446744073709551616"] {
        let s = with(r#""version":3"#, &format!(r#""version":{bad}"#));
        assert_eq!(parse(s.as_bytes()), wrong_type, "{bad}");
    }
    for bad in ["03", "3.0", "3e0"] {
        let s = with(r#""version":3"#, &format!(r#""version":{bad}"#));
        assert_eq!(parse(s.as_bytes()), Err(MALFORMED), "{bad}");
    }
}

#[test]
fn each_json_error_has_its_message() {
    let msg = |m| Err(Error::Manifest(m));
    let cves = r#""cves":["CVE-2024-1234","CVE-2025-0001"]"#;
    let cases = [
        (
            with(cves, r#""cves":["CVE-2024-1234",]"#),
            msg(msg!("JSON has a trailing comma")),
        ),
        (
            with(r#"52b855"}"#, r#"52b855",}"#),
            msg(msg!("JSON has a trailing comma")),
        ),
        (
            r#"{"format":1,"name":"}"#.to_string(),
            msg(msg!("JSON ends early")),
        ),
        (
            with(r#""replace":true"#, r#""replace":1"#),
            msg(msg!("JSON: a field has the wrong type or number format")),
        ),
        (
            format!("{GOOD}{{}}"),
            msg(msg!("has trailing bytes after the JSON object")),
        ),
        (with(r#""arch""#, r#""x":1,"arch""#), Err(MALFORMED)),
        (with(r#","name""#, r#" "name""#), Err(MALFORMED)),
    ];
    for (s, want) in cases {
        assert_eq!(parse(s.as_bytes()), want, "{s}");
    }
    let mut utf8 = with("fix ", "fix \u{1}").into_bytes();
    let at = utf8.iter().position(|&c| c == 1).unwrap();
    utf8[at] = 0xff;
    assert_eq!(parse(&utf8), msg(msg!("JSON: invalid UTF-8")));
}

#[test]
fn description_escaping() {
    let mut buf = [0u8; 64];
    assert_eq!(
        escape_description(br#"a "b" \c"#, &mut buf).unwrap(),
        r#"a \"b\" \\c"#
    );
    assert!(escape_description(b"a\nb", &mut buf).is_err());
    assert!(valid_description(r#"a \"b\" \\c"#));
    assert!(!valid_description(r#"a "b"#));
    assert!(!valid_description(r"a \n"));
    assert!(!valid_description("a \\"));
    // Terminal tricks: C1 CSI and a right-to-left override.
    assert!(!valid_description("a \u{9b}31m"));
    assert!(!valid_description("abc\u{202e}fed"));
    assert!(valid_description("caf\u{e9} \u{2014} ok"));
    assert!(escape_description("x\u{202e}y".as_bytes(), &mut buf).is_err());
}
