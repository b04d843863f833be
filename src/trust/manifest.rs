//! The signed manifest: a small JSON object that names the patch, the kernel
//! it is for, and the payload's size and SHA-256.
//!
//! serde-json-core reads the JSON into [`Doc`], a struct with one named
//! field per manifest field; unknown, duplicate and missing fields and
//! trailing bytes are refused, and every string is checked against a tight
//! character set and length bound. Only `description` may contain escapes,
//! and only `\"` and `\\`. Whatever else JSON allows (whitespace, another
//! field order, `"build_id":null`) is refused by the classic canonical
//! check: serialize the parsed manifest again and compare the bytes.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Largest manifest in bytes.
pub const MAX_MANIFEST: usize = 16 * 1024;
/// Most CVE identifiers in one manifest.
pub const MAX_CVES: usize = 64;
/// Largest payload (kernel module) in bytes: 1 GiB.
pub const MAX_PAYLOAD: u64 = 1 << 30;
/// Longest module name (the kernel's MODULE_NAME_LEN is 56 with the NUL).
pub const MAX_NAME: usize = 55;
/// Longest stream name.
pub const MAX_STREAM: usize = 64;
/// Longest kernel release.
pub const MAX_RELEASE: usize = 64;
/// Longest CVE identifier.
pub const MAX_CVE: usize = 32;
/// Most product identifiers in one manifest.
pub const MAX_PRODUCTS: usize = 16;
/// Longest product identifier (a purl or a CPE).
pub const MAX_PRODUCT: usize = 256;
/// Longest architecture name.
pub const MAX_ARCH: usize = 16;
/// Longest build-id in bytes (GNU build-ids are 20 bytes with SHA-1).
pub const MAX_BUILD_ID: usize = 32;
/// Longest description, in bytes as stored (escaped).
pub const MAX_DESCRIPTION: usize = 1024;
/// The manifest format this klpctl reads and writes.
pub const FORMAT: u32 = 1;

/// The manifest exactly as its JSON spells it, field by field, in the
/// order of the specification (serde writes fields in declaration order, so
/// this order is the canonical one). Strings are borrowed still escaped:
/// serde-json-core does not unescape them, so every identifier's character
/// set excludes `\`, and `description` keeps its escaped form (see
/// [`Manifest::write`]). `deny_unknown_fields` also keeps serde-json-core's
/// lenient, unbounded skipper for unknown values out of reach: an unknown
/// key is refused before its value is read, so nesting cannot exhaust the
/// stack.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Doc<'a> {
    format: u64,
    name: &'a str,
    stream: &'a str,
    version: u64,
    release: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    build_id: Option<&'a str>,
    arch: &'a str,
    replace: bool,
    cves: heapless::Vec<&'a str, MAX_CVES>,
    #[serde(default, skip_serializing_if = "heapless::Vec::is_empty")]
    products: heapless::Vec<&'a str, MAX_CVES>,
    description: &'a str,
    created: u64,
    payload_size: u64,
    payload_sha256: &'a str,
}

const TOO_LARGE: Error = Error::Manifest(msg!("manifest too large (limit 16384 bytes)"));

/// What a serde-json-core error means to the author of a manifest.
fn json_error(e: serde_json_core::de::Error) -> Error {
    use serde_json_core::de::Error as E;
    Error::Manifest(match e {
        E::EofWhileParsingList
        | E::EofWhileParsingObject
        | E::EofWhileParsingString
        | E::EofWhileParsingNumber
        | E::EofWhileParsingValue => msg!("manifest JSON ends early"),
        E::TrailingCharacters => msg!("manifest has trailing bytes after the JSON object"),
        E::TrailingComma => msg!("manifest JSON has a trailing comma"),
        E::InvalidNumber | E::InvalidType => {
            msg!("manifest JSON: a field has the wrong type or number format")
        }
        E::InvalidUnicodeCodePoint => msg!("manifest JSON: invalid UTF-8"),
        _ => msg!(
            "manifest JSON is malformed, has an unknown, duplicate or missing field, or too many cves or products"
        ),
    })
}

/// A validated manifest. Strings borrow from the manifest bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest<'a> {
    /// Module name; also the `/sys/kernel/livepatch/<name>` directory.
    pub name: &'a str,
    /// Update line; versions are ordered within a stream.
    pub stream: &'a str,
    /// Version within the stream.
    pub version: u64,
    /// Target kernel release, as `uname -r` prints it.
    pub release: &'a str,
    /// Target kernel GNU build-id, raw bytes (empty when absent).
    pub build_id: heapless::Vec<u8, MAX_BUILD_ID>,
    /// Target machine, as `uname -m` prints it.
    pub arch: &'a str,
    /// Atomic-replace (cumulative) patch.
    pub replace: bool,
    /// CVE identifiers fixed by the patch.
    pub cves: heapless::Vec<&'a str, MAX_CVES>,
    /// The products (package URLs or CPEs) the patch fixes: what a VEX
    /// statement names beside the running kernel. Often empty.
    pub products: heapless::Vec<&'a str, MAX_CVES>,
    /// Free text, in its JSON-escaped form (only `\"` and `\\` escapes).
    pub description: &'a str,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// Payload size in bytes.
    pub payload_size: u64,
    /// Payload SHA-256.
    pub payload_sha256: [u8; 32],
}

fn charset_ok(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

/// Module names as the kernel accepts them for livepatches: letters, digits
/// and `_` (the kernel turns `-` into `_`, so allowing it would create two
/// spellings of one sysfs name).
pub fn valid_name(s: &str) -> bool {
    charset_ok(s, MAX_NAME, b"_")
}

/// Stream names: letters, digits, `.`, `_`, `-`; no leading dot, so a
/// stream name is always a safe file name.
pub fn valid_stream(s: &str) -> bool {
    charset_ok(s, MAX_STREAM, b"._-") && !s.starts_with('.')
}

/// Kernel releases as `uname -r` prints them.
pub fn valid_release(s: &str) -> bool {
    charset_ok(s, MAX_RELEASE, b"._+-~")
}

/// Architectures as `uname -m` prints them.
pub fn valid_arch(s: &str) -> bool {
    charset_ok(s, MAX_ARCH, b"_")
}

/// CVE and advisory identifiers.
pub fn valid_cve(s: &str) -> bool {
    charset_ok(s, MAX_CVE, b"._:-")
}

/// Whether no CVE id in `cves` is listed twice. One statement per CVE: a
/// repeated id would give a scanner two. Ids compare without case, as
/// `pack --cve` compares them (CVE-1 is cve-1).
pub fn distinct_cves(cves: &[&str]) -> bool {
    !repeats(cves, true)
}

/// Product identifiers: a package URL (`pkg:`) or a CPE (`cpe:`) of 5 to
/// 256 printable ASCII characters that JSON needs no escape for (no space,
/// `"`, `\`, `<`, `>`, `^`, `` ` ``, `{`, `|`, `}`). A purl spells `+`
/// as `%2B`: a literal `+` there is ambiguous, so it is refused.
pub fn valid_product(s: &str) -> bool {
    let purl = s.starts_with("pkg:");
    s.len() > 4
        && (purl || s.starts_with("cpe:"))
        && charset_ok(s, MAX_PRODUCT, b"-._~:/?#[]@!$&'()*+,;=%")
        && !(purl && s.contains('+'))
}

/// A description in its stored (escaped) form: no control characters, and
/// a backslash only as part of `\"` or `\\`.
pub fn valid_description(s: &str) -> bool {
    if s.len() > MAX_DESCRIPTION || s.chars().any(hidden_char) {
        return false;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            0..=0x1f | 0x7f => return false,
            b'\\' => match b.get(i + 1) {
                Some(b'"') | Some(b'\\') => i += 1,
                _ => return false,
            },
            b'"' => return false,
            _ => {}
        }
        i += 1;
    }
    true
}

/// Characters that can rewrite what an operator's terminal shows: C1
/// controls (U+0080..U+009F, including the CSI introducer U+009B) and the
/// bidirectional overrides and isolates. `info` prints a description before
/// anything is verified, so these are refused outright.
fn hidden_char(c: char) -> bool {
    matches!(c, '\u{80}'..='\u{9f}' | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether any entry of `list` equals an earlier one, ignoring ASCII case
/// if `fold_case`.
fn repeats(list: &[&str], fold_case: bool) -> bool {
    let same = |a: &str, b: &str| match fold_case {
        true => a.eq_ignore_ascii_case(b),
        false => a == b,
    };
    (1..list.len()).any(|i| list[..i].iter().any(|e| same(e, list[i])))
}

fn hex_exact<const N: usize>(s: &str, out: &mut [u8; N]) -> bool {
    // Lowercase only, so one digest has exactly one spelling.
    s.len() == 2 * N
        && !s.bytes().any(|c| c.is_ascii_uppercase())
        && crate::codec::hex_decode(s.as_bytes(), out).is_some()
}

/// Parses and validates manifest bytes.
pub fn parse(bytes: &[u8]) -> Result<Manifest<'_>> {
    if bytes.len() > MAX_MANIFEST {
        return Err(TOO_LARGE);
    }
    // The signed bytes are exactly one object: no whitespace around it, so a
    // manifest has no invisible variants.
    if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return Err(Error::Manifest(msg!(
            "manifest must be exactly one JSON object with nothing before or after it"
        )));
    }
    // serde-json-core refuses trailing bytes itself.
    let (raw, _): (Doc<'_>, usize) = serde_json_core::from_slice(bytes).map_err(json_error)?;
    if raw.format != FORMAT as u64 {
        return Err(Error::Manifest(msg!(
            "unsupported manifest format (this klpctl reads format 1)"
        )));
    }
    let bad = |f: crate::error::Msg| Err(Error::Manifest(f));
    if !valid_name(raw.name) {
        return bad(msg!("manifest field name: 1-55 of [A-Za-z0-9_]"));
    }
    if !valid_stream(raw.stream) {
        return bad(msg!(
            "manifest field stream: 1-64 of [A-Za-z0-9._-], not starting with '.'"
        ));
    }
    if !valid_release(raw.release) {
        return bad(msg!("manifest field release: 1-64 of [A-Za-z0-9._+~-]"));
    }
    let mut build_id = heapless::Vec::new();
    if let Some(b) = raw.build_id {
        let mut tmp = [0u8; MAX_BUILD_ID];
        let ok = !b.is_empty()
            && !b.bytes().any(|c| c.is_ascii_uppercase())
            && crate::codec::hex_decode(b.as_bytes(), &mut tmp)
                .is_some_and(|d| build_id.extend_from_slice(d).is_ok());
        if !ok {
            return bad(msg!("manifest field build_id: 2-64 lowercase hex digits"));
        }
    }
    if !valid_arch(raw.arch) {
        return bad(msg!("manifest field arch: 1-16 of [A-Za-z0-9_]"));
    }
    if !raw.cves.iter().all(|c| valid_cve(c)) {
        return bad(msg!("manifest field cves: each 1-32 of [A-Za-z0-9._:-]"));
    }
    // One statement per CVE: a repeated id would give a scanner two. Ids
    // compare without ASCII case (cve-1 is CVE-1), as `pack --cve` does.
    if repeats(&raw.cves, true) {
        return bad(msg!("manifest field cves: each CVE id at most once"));
    }
    if raw.products.len() > MAX_PRODUCTS || !raw.products.iter().all(|p| valid_product(p)) {
        return bad(msg!(
            "manifest field products: at most 16, each a pkg: or cpe: identifier of 5-256 URL characters, '+' as %2B in a purl"
        ));
    }
    // A list is a set: `pack --product` refuses a repeat, so must the reader.
    if repeats(&raw.products, false) {
        return bad(msg!("manifest field products: each product at most once"));
    }
    if !valid_description(raw.description) {
        return bad(msg!(
            "manifest field description: at most 1024 bytes, no control characters, only \\\" and \\\\ escapes"
        ));
    }
    if raw.payload_size == 0 || raw.payload_size > MAX_PAYLOAD {
        return bad(msg!("manifest field payload_size: 1 to 1073741824"));
    }
    let mut payload_sha256 = [0u8; 32];
    if !hex_exact(raw.payload_sha256, &mut payload_sha256) {
        return bad(msg!(
            "manifest field payload_sha256: 64 lowercase hex digits"
        ));
    }
    let m = Manifest {
        name: raw.name,
        stream: raw.stream,
        version: raw.version,
        release: raw.release,
        build_id,
        arch: raw.arch,
        replace: raw.replace,
        cves: raw.cves,
        products: raw.products,
        description: raw.description,
        created: raw.created,
        payload_size: raw.payload_size,
        payload_sha256,
    };
    // JSON also allows whitespace between tokens, fields in any order and
    // `"build_id":null`. Accept only the one spelling `write` produces, so a
    // signed manifest has exactly one byte form.
    let mut canon = [0u8; MAX_MANIFEST];
    if m.write(&mut canon)? != bytes {
        return bad(msg!(
            "manifest is not canonical: fields in specification order, no whitespace, no null build_id"
        ));
    }
    Ok(m)
}

impl Manifest<'_> {
    /// Writes the canonical JSON form (the bytes klpctl signs) into `out`:
    /// fields in the order of the specification, no whitespace, no trailing
    /// newline. Every value must already be valid (see the `valid_*`
    /// functions); `parse` of the result gives back an equal manifest.
    pub fn write<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8]> {
        let mut bid = [0u8; 2 * MAX_BUILD_ID];
        let build_id = match self.build_id.is_empty() {
            true => None,
            false => Some(hex_str(&self.build_id, &mut bid)?),
        };
        let mut sha = [0u8; 64];
        // serde-json-core escapes `"` and `\` itself, so the description
        // goes to it as the text it stands for.
        let mut text = [0u8; MAX_DESCRIPTION];
        let doc = Doc {
            format: FORMAT as u64,
            name: self.name,
            stream: self.stream,
            version: self.version,
            release: self.release,
            build_id,
            arch: self.arch,
            replace: self.replace,
            cves: self.cves.clone(),
            products: self.products.clone(),
            description: unescape_description(self.description, &mut text)?,
            created: self.created,
            payload_size: self.payload_size,
            payload_sha256: hex_str(&self.payload_sha256, &mut sha)?,
        };
        let n = serde_json_core::to_slice(&doc, out).map_err(|_| TOO_LARGE)?;
        Ok(&out[..n])
    }
}

/// Lowercase hex of `bytes` in `buf`.
fn hex_str<'o>(bytes: &[u8], buf: &'o mut [u8]) -> Result<&'o str> {
    crate::codec::hex_encode(bytes, buf)
        .and_then(|h| core::str::from_utf8(h).ok())
        .ok_or(Error::Internal(msg!("hex")))
}

/// The text a stored description stands for: `\"` and `\\` lose their
/// backslash (the only escapes [`valid_description`] allows).
fn unescape_description<'o>(stored: &str, out: &'o mut [u8]) -> Result<&'o str> {
    let b = stored.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
        }
        let dst = out.get_mut(n).ok_or(TOO_LARGE)?;
        *dst = b[i];
        n += 1;
        i += 1;
    }
    core::str::from_utf8(&out[..n]).map_err(|_| Error::Internal(msg!("description")))
}

/// Escapes free text for the description field: `"` and `\` get a
/// backslash; control characters are refused.
pub fn escape_description<'o>(text: &[u8], out: &'o mut [u8]) -> Result<&'o str> {
    let mut n = 0;
    for &c in text {
        if c < 0x20 || c == 0x7f {
            return Err(Error::Usage(msg!(
                "--description must not contain control characters"
            )));
        }
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            _ => core::slice::from_ref(&c),
        };
        let dst = out.get_mut(n..n + esc.len()).ok_or(Error::Usage(msg!(
            "--description is too long (1024 bytes escaped)"
        )))?;
        dst.copy_from_slice(esc);
        n += esc.len();
    }
    if n > MAX_DESCRIPTION {
        return Err(Error::Usage(msg!(
            "--description is too long (1024 bytes escaped)"
        )));
    }
    let d = core::str::from_utf8(&out[..n])
        .map_err(|_| Error::Usage(msg!("--description must be UTF-8")))?;
    if d.chars().any(hidden_char) {
        return Err(Error::Usage(msg!(
            "--description must not contain C1 controls or bidirectional overrides"
        )));
    }
    Ok(d)
}

/// Undoes [`escape_description`] while writing human output.
pub fn write_description(o: &mut crate::out::Out, stored: &str) {
    // A stored description unescapes into at most its own length.
    let mut text = [0u8; MAX_DESCRIPTION];
    if let Ok(t) = unescape_description(stored, &mut text) {
        o.b(t.as_bytes());
    }
}

#[cfg(test)]
mod tests {
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
            Err(Error::Manifest(msg!(
                "manifest field cves: each CVE id at most once"
            )))
        );
        // Ids compare without ASCII case, as `pack --cve` compares them:
        // cve-2024-1234 is CVE-2024-1234, and would be a second statement.
        assert_eq!(
            parse(with("CVE-2025-0001", "cve-2024-1234").as_bytes()),
            Err(Error::Manifest(msg!(
                "manifest field cves: each CVE id at most once"
            )))
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
            Err(Error::Manifest(msg!(
                "manifest field products: each product at most once"
            )))
        );
        assert!(
            parse(list(r#""pkg:deb/debian/linux@1","pkg:deb/debian/linux@2""#).as_bytes()).is_ok()
        );
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
                Err(Error::Manifest(msg!(
                    "manifest is not canonical: fields in specification order, no whitespace, no null build_id"
                ))),
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
        assert!(
            parse(with(r#""CVE-2024-1234","CVE-2025-0001""#, &many.join(",")).as_bytes()).is_err()
        );
        let ok: Vec<String> = (0..64).map(|i| format!("\"C{i}\"")).collect();
        assert!(
            parse(with(r#""CVE-2024-1234","CVE-2025-0001""#, &ok.join(",")).as_bytes()).is_ok()
        );
        assert!(parse(with(r#""payload_size":1234"#, r#""payload_size":0"#).as_bytes()).is_err());
        assert!(
            parse(with(r#""payload_size":1234"#, r#""payload_size":1073741825"#).as_bytes())
                .is_err()
        );
        assert!(
            parse(with(r#""payload_size":1234"#, r#""payload_size":1073741824"#).as_bytes())
                .is_ok()
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
        assert!(
            parse(with(r#""version":3"#, r#""version":18446744073709551616"#).as_bytes()).is_err()
        );
        assert!(
            parse(with(r#""version":3"#, r#""version":18446744073709551615"#).as_bytes()).is_ok()
        );
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
}
