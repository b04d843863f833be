//! The signed manifest: a small JSON object that names the patch, the kernel
//! it is for, and the payload's size and SHA-256.
//!
//! The parser is klpctl's own and small, because a manifest has exactly one
//! accepted spelling (see [`parse`]): it reads one flat JSON object without
//! recursion (an unknown field is refused before its value is looked at, so
//! nesting cannot exhaust the stack), hands strings back as they are
//! written (still escaped), rejects unknown, duplicate and missing fields
//! and trailing bytes, and checks every string against a tight character
//! set and length bound. Only `description` may contain escapes, and only
//! `\"` and `\\`. Whatever else JSON allows (whitespace, another field
//! order, `"build_id":null`) is then refused by comparing the input with
//! the canonical form [`Manifest::write`] produces.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};

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

/// The manifest exactly as its JSON says, before validation.
#[derive(Default)]
struct Raw<'a> {
    format: u64,
    name: &'a str,
    stream: &'a str,
    version: u64,
    release: &'a str,
    build_id: Option<&'a str>,
    arch: &'a str,
    replace: bool,
    cves: heapless::Vec<&'a str, MAX_CVES>,
    products: heapless::Vec<&'a str, MAX_CVES>,
    description: &'a str,
    created: u64,
    payload_size: u64,
    payload_sha256: &'a str,
}

/// The fields, in the order of the specification.
const FIELDS: [&str; 14] = [
    "format",
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
    "payload_sha256",
];
/// Every field but `build_id` (bit 5) and `products` (bit 9) must be
/// present.
const REQUIRED: u16 = 0x3fff & !(1 << 5) & !(1 << 9);

const MALFORMED: Error = Error::Manifest(msg!(
    "manifest JSON is malformed, has an unknown, duplicate or missing field, or too many cves or products"
));
const WRONG_TYPE: Error = Error::Manifest(msg!(
    "manifest JSON: a field has the wrong type or number format"
));
const ENDS_EARLY: Error = Error::Manifest(msg!("manifest JSON ends early"));

/// A cursor over manifest bytes that reads JSON tokens. A method that
/// fails records why in `err` and returns `None`: an `Option` comes back
/// in registers, a `Result` of this size through memory.
struct Lexer<'a> {
    b: &'a [u8],
    i: usize,
    err: Error,
}

impl<'a> Lexer<'a> {
    /// Records `e` as the reason of the failure.
    #[inline(never)]
    fn fail<T>(&mut self, e: Error) -> Option<T> {
        self.err = e;
        None
    }

    /// The next byte that is not JSON whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while self.b.get(self.i).is_some_and(|c| b" \t\n\r".contains(c)) {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(&c) => Some(c),
            None => self.fail(ENDS_EARLY),
        }
    }

    /// Consumes `c` if it comes next.
    fn eat(&mut self, c: u8) -> Option<bool> {
        let next = self.peek()? == c;
        self.i += next as usize;
        Some(next)
    }

    /// Consumes `c`, which must come next, or fails with `e`.
    fn expect(&mut self, c: u8, e: Error) -> Option<()> {
        if self.eat(c)? { Some(()) } else { self.fail(e) }
    }

    /// `lit` must come next (a literal such as `true`).
    fn literal(&mut self, lit: &[u8]) -> bool {
        let ok = self.b[self.i..].starts_with(lit);
        self.i += if ok { lit.len() } else { 0 };
        ok
    }

    /// A string, as written between its quotes (escapes left in place).
    fn string(&mut self, wrong: Error) -> Option<&'a str> {
        self.expect(b'"', wrong)?;
        let start = self.i;
        loop {
            match self.b.get(self.i) {
                None => return self.fail(ENDS_EARLY),
                Some(b'"') => break,
                Some(b'\\') => self.i += 2,
                Some(_) => self.i += 1,
            }
        }
        let Some(raw) = self.b.get(start..self.i) else {
            return self.fail(ENDS_EARLY);
        };
        self.i += 1;
        match core::str::from_utf8(raw) {
            Ok(s) => Some(s),
            Err(_) => self.fail(Error::Manifest(msg!("manifest JSON: invalid UTF-8"))),
        }
    }

    /// An unsigned decimal number.
    fn number(&mut self) -> Option<u64> {
        self.peek()?;
        let start = self.i;
        while self
            .b
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
        {
            self.i += 1;
        }
        match crate::codec::parse_u64(&self.b[start..self.i]) {
            Some(n) => Some(n),
            None => self.fail(WRONG_TYPE),
        }
    }

    /// An array of strings (`cves`, `products`).
    fn list(&mut self, v: &mut heapless::Vec<&'a str, MAX_CVES>) -> Option<()> {
        self.expect(b'[', WRONG_TYPE)?;
        if !self.eat(b']')? {
            loop {
                let s = self.string(WRONG_TYPE)?;
                if v.push(s).is_err() {
                    return self.fail(MALFORMED);
                }
                if self.eat(b']')? {
                    break;
                }
                self.expect(b',', MALFORMED)?;
            }
        }
        Some(())
    }

    /// One value of field `f` into `raw`.
    fn value(&mut self, f: usize, raw: &mut Raw<'a>) -> Option<()> {
        let text = |l: &mut Self| l.string(WRONG_TYPE);
        match f {
            0 => raw.format = self.number()?,
            1 => raw.name = text(self)?,
            2 => raw.stream = text(self)?,
            3 => raw.version = self.number()?,
            4 => raw.release = text(self)?,
            5 => {
                self.peek()?;
                raw.build_id = if self.literal(b"null") {
                    None
                } else {
                    Some(text(self)?)
                };
            }
            6 => raw.arch = text(self)?,
            7 => {
                self.peek()?;
                raw.replace = self.literal(b"true");
                if !raw.replace && !self.literal(b"false") {
                    return self.fail(WRONG_TYPE);
                }
            }
            8 => self.list(&mut raw.cves)?,
            9 => self.list(&mut raw.products)?,
            10 => raw.description = text(self)?,
            11 => raw.created = self.number()?,
            12 => raw.payload_size = self.number()?,
            _ => raw.payload_sha256 = text(self)?,
        }
        Some(())
    }

    /// The object: every field once, none unknown. Returns the bytes used.
    fn object(&mut self, raw: &mut Raw<'a>) -> Option<usize> {
        let mut seen = 0u16;
        self.expect(b'{', MALFORMED)?;
        loop {
            let key = self.string(MALFORMED)?;
            self.expect(b':', MALFORMED)?;
            // An unknown field is refused before its value is read.
            let f = match FIELDS.iter().position(|k| *k == key) {
                Some(f) if seen & (1 << f) == 0 => f,
                _ => return self.fail(MALFORMED),
            };
            seen |= 1 << f;
            self.value(f, raw)?;
            if self.eat(b'}')? {
                break;
            }
            self.expect(b',', MALFORMED)?;
            if self.peek()? == b'}' {
                return self.fail(Error::Manifest(msg!("manifest JSON has a trailing comma")));
            }
        }
        if seen & REQUIRED != REQUIRED {
            return self.fail(MALFORMED);
        }
        Some(self.i)
    }
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
        return Err(Error::Manifest(msg!(
            "manifest too large (limit 16384 bytes)"
        )));
    }
    // The signed bytes are exactly one object: no whitespace around it, so a
    // manifest has no invisible variants.
    if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return Err(Error::Manifest(msg!(
            "manifest must be exactly one JSON object with nothing before or after it"
        )));
    }
    let mut raw = Raw::default();
    let mut lx = Lexer {
        b: bytes,
        i: 0,
        err: MALFORMED,
    };
    let Some(used) = lx.object(&mut raw) else {
        return Err(lx.err);
    };
    if used != bytes.len() {
        return Err(Error::Manifest(msg!(
            "manifest has trailing bytes after the JSON object"
        )));
    }
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
            "manifest field products: at most 16 pkg: or cpe: identifiers of 5-256 URL characters ('+' as %2B)"
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

/// Writes bytes into a fixed buffer. Overflow is sticky: later writes are
/// dropped and [`Cursor::done`] reports it, so the writer has one error
/// path instead of one per piece.
struct Cursor<'o> {
    out: &'o mut [u8],
    n: usize,
    full: bool,
}

impl<'o> Cursor<'o> {
    #[inline(never)]
    fn put(&mut self, b: &[u8]) {
        match self.out.get_mut(self.n..self.n + b.len()) {
            Some(dst) if !self.full => {
                dst.copy_from_slice(b);
                self.n += b.len();
            }
            _ => self.full = true,
        }
    }

    fn field(&mut self, key: &str, first: bool) {
        self.put(if first { b"{\"" } else { b",\"" });
        self.put(key.as_bytes());
        self.put(b"\":");
    }

    #[inline(never)]
    fn string(&mut self, s: &[u8]) {
        self.put(b"\"");
        self.put(s);
        self.put(b"\"");
    }

    fn list(&mut self, key: &str, v: &[&str]) {
        self.field(key, false);
        self.put(b"[");
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                self.put(b",");
            }
            self.string(x.as_bytes());
        }
        self.put(b"]");
    }

    fn num(&mut self, v: u64) {
        let mut tmp = [0u8; 20];
        self.put(crate::codec::fmt_u64(v, &mut tmp));
    }

    fn done(self) -> Result<&'o [u8]> {
        if self.full {
            return Err(Error::Manifest(msg!(
                "manifest too large (limit 16384 bytes)"
            )));
        }
        Ok(&self.out[..self.n])
    }
}

impl Manifest<'_> {
    /// Writes the canonical JSON form (the bytes klpctl signs) into `out`:
    /// fields in the order of the specification, no whitespace, no trailing
    /// newline. Every value must already be valid (see the `valid_*`
    /// functions); `parse` of the result gives back an equal manifest.
    pub fn write<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8]> {
        let mut c = Cursor {
            out,
            n: 0,
            full: false,
        };
        c.field("format", true);
        c.num(FORMAT as u64);
        c.field("name", false);
        c.string(self.name.as_bytes());
        c.field("stream", false);
        c.string(self.stream.as_bytes());
        c.field("version", false);
        c.num(self.version);
        c.field("release", false);
        c.string(self.release.as_bytes());
        if !self.build_id.is_empty() {
            let mut hex = [0u8; 2 * MAX_BUILD_ID];
            let h = crate::codec::hex_encode(&self.build_id, &mut hex)
                .ok_or(Error::Internal(msg!("build-id")))?;
            c.field("build_id", false);
            c.string(h);
        }
        c.field("arch", false);
        c.string(self.arch.as_bytes());
        c.field("replace", false);
        c.put(if self.replace { b"true" } else { b"false" });
        c.list("cves", &self.cves);
        if !self.products.is_empty() {
            c.list("products", &self.products);
        }
        c.field("description", false);
        c.string(self.description.as_bytes());
        c.field("created", false);
        c.num(self.created);
        c.field("payload_size", false);
        c.num(self.payload_size);
        c.field("payload_sha256", false);
        let mut hex = [0u8; 64];
        let h = crate::codec::hex_encode(&self.payload_sha256, &mut hex)
            .ok_or(Error::Internal(msg!("sha256")))?;
        c.string(h);
        c.put(b"}");
        c.done()
    }
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
