//! The signed manifest: a small JSON object that names the patch, the kernel
//! it is for, and the payload's size and SHA-256.
//!
//! It is read and written with serde-json-core as the typed `Wire`
//! struct, and has exactly one accepted spelling (see [`parse`]): unknown,
//! duplicate and missing fields and trailing bytes are refused, strings
//! come back as they are written (still escaped) and are checked against
//! a tight character set and length bound, field by field. Only
//! `description` may contain escapes, and only `\"` and `\\`. Whatever
//! else JSON allows (whitespace, another field order, `"build_id":null`)
//! is then refused by writing the parsed fields back and comparing the
//! bytes with the input.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json_core::str::EscapedStr;

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

/// The manifest as its JSON spells it, before validation. serde writes the
/// fields in the order declared here, which is the order of the
/// specification; `build_id` and `products` are left out when absent, as
/// the canonical form has them.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    format: u64,
    name: &'a str,
    stream: &'a str,
    version: u64,
    release: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    build_id: Option<&'a str>,
    arch: &'a str,
    replace: bool,
    #[serde(borrow)]
    cves: heapless::Vec<&'a str, MAX_CVES>,
    #[serde(borrow, default, skip_serializing_if = "<[_]>::is_empty")]
    products: heapless::Vec<&'a str, MAX_CVES>,
    /// Kept as written, escapes and all (only `\"` and `\\`).
    #[serde(borrow)]
    description: EscapedStr<'a>,
    created: u64,
    payload_size: u64,
    payload_sha256: &'a str,
}

/// Writes `w` as compact JSON into `out`; `None` when it does not fit.
fn to_json<'o>(w: &Wire, out: &'o mut [u8]) -> Option<&'o [u8]> {
    let n = serde_json_core::to_slice(w, out).ok()?;
    out.get(..n)
}

const MALFORMED: Error = Error::Manifest(msg!(
    "JSON: malformed, an unknown, duplicate or missing field, or too many cves or products"
));

/// What a JSON reading error means for a manifest. Unknown, duplicate and
/// missing fields, and lists longer than their capacity, come back from
/// serde as one custom error, and so as [`MALFORMED`].
fn json_error(e: serde_json_core::de::Error) -> Error {
    use serde_json_core::de::Error as E;
    Error::Manifest(match e {
        E::EofWhileParsingList
        | E::EofWhileParsingObject
        | E::EofWhileParsingString
        | E::EofWhileParsingNumber
        | E::EofWhileParsingValue => msg!("JSON ends early"),
        E::InvalidType | E::InvalidNumber | E::ExpectedSomeIdent => {
            msg!("JSON: a field has the wrong type or number format")
        }
        E::InvalidUnicodeCodePoint => msg!("JSON: invalid UTF-8"),
        E::TrailingComma => msg!("JSON has a trailing comma"),
        E::TrailingCharacters => msg!("has trailing bytes after the JSON object"),
        _ => return MALFORMED,
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

/// Whether no product in `products` is listed twice (compared exactly, as
/// the reader and `pack --product` compare them).
pub fn distinct_products(products: &[&str]) -> bool {
    !repeats(products, false)
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

/// Decodes lowercase hex (only lowercase, so one digest or build-id has
/// exactly one spelling) into `out`; `None` as [`crate::codec::hex_decode`].
fn lower_hex<'o>(s: &str, out: &'o mut [u8]) -> Option<&'o [u8]> {
    if s.bytes().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    crate::codec::hex_decode(s.as_bytes(), out)
}

/// Parses and validates manifest bytes.
pub fn parse(bytes: &[u8]) -> Result<Manifest<'_>> {
    if bytes.len() > MAX_MANIFEST {
        return Err(Error::Manifest(msg!("too large (limit 16384 bytes)")));
    }
    // The signed bytes are exactly one object: no whitespace around it, so a
    // manifest has no invisible variants.
    if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return Err(Error::Manifest(msg!(
            "must be exactly one JSON object with nothing before or after it"
        )));
    }
    // Strings come back as written (escapes are not undone), and an
    // unknown field is refused at its key, before its value is read, so
    // nesting cannot exhaust the stack.
    let (raw, _) = serde_json_core::from_slice::<Wire>(bytes).map_err(json_error)?;
    if raw.format != FORMAT as u64 {
        return Err(Error::Manifest(msg!(
            "format unsupported (this klpctl reads format 1)"
        )));
    }
    let bad = |f: crate::error::Msg| Err(Error::ManifestField(f));
    if !valid_name(raw.name) {
        return bad(msg!("name: 1-55 of [A-Za-z0-9_]"));
    }
    if !valid_stream(raw.stream) {
        return bad(msg!(
            "stream: 1-64 of [A-Za-z0-9._-], not starting with '.'"
        ));
    }
    if !valid_release(raw.release) {
        return bad(msg!("release: 1-64 of [A-Za-z0-9._+~-]"));
    }
    let mut build_id = heapless::Vec::new();
    if let Some(b) = raw.build_id {
        let mut tmp = [0u8; MAX_BUILD_ID];
        let ok = !b.is_empty()
            && lower_hex(b, &mut tmp).is_some_and(|d| build_id.extend_from_slice(d).is_ok());
        if !ok {
            return bad(msg!("build_id: 2-64 lowercase hex digits"));
        }
    }
    if !valid_arch(raw.arch) {
        return bad(msg!("arch: 1-16 of [A-Za-z0-9_]"));
    }
    if !raw.cves.iter().all(|c| valid_cve(c)) {
        return bad(msg!("cves: each 1-32 of [A-Za-z0-9._:-]"));
    }
    // One statement per CVE: a repeated id would give a scanner two. Ids
    // compare without ASCII case (cve-1 is CVE-1), as `pack --cve` does.
    if repeats(&raw.cves, true) {
        return bad(msg!("cves: each CVE id at most once"));
    }
    if raw.products.len() > MAX_PRODUCTS || !raw.products.iter().all(|p| valid_product(p)) {
        return bad(msg!(
            "products: at most 16 pkg: or cpe: identifiers of 5-256 URL characters ('+' as %2B)"
        ));
    }
    // A list is a set: `pack --product` refuses a repeat, so must the reader.
    if !distinct_products(&raw.products) {
        return bad(msg!("products: each product at most once"));
    }
    if !valid_description(raw.description.0) {
        return bad(msg!(
            "description: at most 1024 bytes, no control characters, only \\\" and \\\\ escapes"
        ));
    }
    if raw.payload_size == 0 || raw.payload_size > MAX_PAYLOAD {
        return bad(msg!("payload_size: 1 to 1073741824"));
    }
    let mut payload_sha256 = [0u8; 32];
    if raw.payload_sha256.len() != 64
        || lower_hex(raw.payload_sha256, &mut payload_sha256).is_none()
    {
        return bad(msg!("payload_sha256: 64 lowercase hex digits"));
    }
    // JSON also allows whitespace between tokens, fields in any order and
    // `"build_id":null`. Accept only the one spelling `write` produces, so a
    // signed manifest has exactly one byte form: the parsed fields written
    // back must give the input.
    let mut canon = [0u8; MAX_MANIFEST];
    if to_json(&raw, &mut canon) != Some(bytes) {
        return Err(Error::Manifest(msg!("is not canonical")));
    }
    Ok(Manifest {
        name: raw.name,
        stream: raw.stream,
        version: raw.version,
        release: raw.release,
        build_id,
        arch: raw.arch,
        replace: raw.replace,
        cves: raw.cves,
        products: raw.products,
        description: raw.description.0,
        created: raw.created,
        payload_size: raw.payload_size,
        payload_sha256,
    })
}

impl Manifest<'_> {
    /// Writes the canonical JSON form (the bytes klpctl signs) into `out`:
    /// fields in the order of the specification, no whitespace, no trailing
    /// newline. Every value must already be valid (see the `valid_*`
    /// functions); `parse` of the result gives back an equal manifest.
    pub fn write<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8]> {
        let mut id = [0u8; 2 * MAX_BUILD_ID];
        let mut sha = [0u8; 64];
        let (Some(id), Some(sha)) = (
            hex(&self.build_id, &mut id),
            hex(&self.payload_sha256, &mut sha),
        ) else {
            return Err(Error::Internal(msg!("manifest digests")));
        };
        let wire = Wire {
            format: FORMAT as u64,
            name: self.name,
            stream: self.stream,
            version: self.version,
            release: self.release,
            build_id: (!id.is_empty()).then_some(id),
            arch: self.arch,
            replace: self.replace,
            cves: self.cves.clone(),
            products: self.products.clone(),
            description: EscapedStr(self.description),
            created: self.created,
            payload_size: self.payload_size,
            payload_sha256: sha,
        };
        to_json(&wire, out).ok_or(Error::Manifest(msg!("too large (limit 16384 bytes)")))
    }
}

/// `bytes` in lowercase hex, in `out`.
fn hex<'o>(bytes: &[u8], out: &'o mut [u8]) -> Option<&'o str> {
    core::str::from_utf8(crate::codec::hex_encode(bytes, out)?).ok()
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
    let b = stored.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
        }
        o.b(&b[i..i + 1]);
        i += 1;
    }
}

#[cfg(test)]
mod tests;
