//! What klpctl may tell a vulnerability scanner: the patches it applied that
//! are live right now, and the identity of the VEX document that says so.
//!
//! A patch is *claimed* only when klpctl's record of this boot says its load
//! finished (`applied`) and sysfs agrees that it is enabled with no
//! transition running. A patch disabled behind klpctl's back, one being
//! reverted, or one loaded without a record is never claimed.
//!
//! One pass over sysfs gives one set of [`Claims`]; the document's
//! version and its statements are both made from that set, so a patch that
//! changes state meanwhile cannot make them disagree.
//!
//! The document is one per boot: its `@id` is `urn:uuid:<boot id>`, its
//! `timestamp` the first time it was issued this boot, and its `version`
//! grows by one each time the set of claimed patches changes, with
//! `last_updated` the time of that change (OpenVEX 0.2.0: a document's
//! version must be incremented on any change to its statements). The
//! change is noticed from a digest of the claims, so a patch disabled
//! behind klpctl's back also gives a new version the next time a document
//! is made. The bookkeeping is `/run/klpctl/vex.doc`, on tmpfs like the
//! patches. [`openvex`] builds the document as a typed value and writes
//! it with serde-json-core, as the manifest is written.
#![forbid(unsafe_code)]

use crate::codec::rfc3339;
use crate::error::{Error, Result};
use crate::files;
use crate::kernel::Running;
use crate::ops::status;
use crate::state::{self, Record};
use core::ffi::CStr;
use heapless::CapacityError;
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

/// The document's bookkeeping file.
pub const DOC: &CStr = c"/run/klpctl/vex.doc";
/// The current document, kept by `apply` and `disable`.
pub const FILE: &CStr = c"/run/klpctl/vex.json";

/// Calls `f` with the record of each patch klpctl may claim as fixed now.
pub fn each_claim(f: &mut dyn FnMut(&Record)) -> Result<()> {
    if !crate::kernel::sysfs::supported() {
        return Ok(());
    }
    status::each_patch(&mut |p| {
        if let Some(r) = &p.record
            && p.enabled
            && p.settled
            && r.state == "applied"
        {
            f(r)
        }
    })
}

/// Most live patches one document describes.
pub const MAX_CLAIMS: usize = 32;
/// Room for the claims' text: what [`MAX_CLAIMS`] valid records can hold
/// (name, stream, digest, CVEs and products, each list with its
/// separators), about 200 KiB; so only the documented bounds (32 patches,
/// [`MAX_DOCUMENT`]) refuse a document.
const TEXT: usize = {
    use crate::trust::manifest::*;
    let record =
        MAX_NAME + MAX_STREAM + 64 + MAX_CVES * (MAX_CVE + 1) + MAX_PRODUCTS * (MAX_PRODUCT + 1);
    MAX_CLAIMS * record
};
/// Largest document, in bytes.
pub const MAX_DOCUMENT: usize = 128 * 1024;

const TOO_MANY: Error = Error::Internal(msg!(
    "VEX document: more patches, CVEs or products than it holds (32 patches, 128 KiB)"
));

/// What a statement needs from one claimed patch's record.
#[derive(Clone, Copy)]
pub struct Claim<'a> {
    /// Patch (module) name.
    pub name: &'a str,
    /// Stream.
    pub stream: &'a str,
    /// Version in the stream.
    pub version: u64,
    /// Payload SHA-256, hex.
    pub sha256: &'a str,
    /// Unix time of the apply.
    pub time: u64,
    /// CVEs, comma-separated.
    pub cves: &'a str,
    /// Products, space-separated.
    pub products: &'a str,
}

impl<'a> Claim<'a> {
    /// Its CVEs, one statement each.
    pub fn each_cve(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.cves.split(',').filter(|c| !c.is_empty())
    }
}

/// A claim's numbers, and where its five texts (name, stream, sha256, cves,
/// products) end in [`Claims::text`].
struct Kept {
    version: u64,
    time: u64,
    ends: [usize; 5],
}

/// The patches klpctl may claim as fixed, copied out of one pass over
/// sysfs and the records.
pub struct Claims {
    text: heapless::String<TEXT>,
    kept: heapless::Vec<Kept, MAX_CLAIMS>,
}

impl Claims {
    /// Reads the claims that hold now. More than [`MAX_CLAIMS`] patches, or
    /// more text than fits, is an error rather than a partial document.
    pub fn read() -> Result<Claims> {
        let mut c = Claims {
            text: heapless::String::new(),
            kept: heapless::Vec::new(),
        };
        let mut full = false;
        each_claim(&mut |r| full = full || c.keep(r).is_none())?;
        if full {
            return Err(TOO_MANY);
        }
        Ok(c)
    }

    /// Copies what a statement needs from `r`; `None` when full.
    fn keep(&mut self, r: &Record) -> Option<()> {
        let mut ends = [0; 5];
        for (end, s) in ends
            .iter_mut()
            .zip([r.name, r.stream, r.sha256, r.cves, r.products])
        {
            self.text.push_str(s).ok()?;
            *end = self.text.len();
        }
        let kept = Kept {
            version: r.version,
            time: r.time,
            ends,
        };
        self.kept.push(kept).ok()
    }

    /// Each claim, in the order sysfs listed them.
    pub fn iter(&self) -> impl Iterator<Item = Claim<'_>> {
        self.kept.iter().enumerate().map(|(i, k)| {
            let mut start = match i {
                0 => 0,
                _ => self.kept[i - 1].ends[4],
            };
            let mut piece = |end: usize| {
                let s = &self.text[start..end];
                start = end;
                s
            };
            Claim {
                name: piece(k.ends[0]),
                stream: piece(k.ends[1]),
                sha256: piece(k.ends[2]),
                cves: piece(k.ends[3]),
                products: piece(k.ends[4]),
                version: k.version,
                time: k.time,
            }
        })
    }

    /// How many statements they make: one per CVE of each claim.
    pub fn statements(&self) -> usize {
        self.iter().map(|c| c.each_cve().count()).sum()
    }
}

/// The identity of this boot's document.
#[derive(Debug, PartialEq, Eq)]
pub struct Doc {
    /// The boot id, the `urn:uuid:` of `@id`.
    pub boot_id: heapless::String<40>,
    /// The document's version, from 1.
    pub version: u64,
    /// When version 1 was issued (Unix time).
    pub issued: u64,
    /// When the current version was issued.
    pub updated: u64,
    /// How many statements it makes now (CVEs of claimed patches). With
    /// none there is no document: OpenVEX needs at least one statement.
    pub statements: usize,
}

/// The bookkeeping's size: version, issued, updated (little-endian u64s),
/// then the claims' digest (a SHA-256, zero-padded) and the boot id
/// (NUL-padded), which together
/// say what the version describes.
const STORED: usize = 24 + DIGEST + 40;
const DIGEST: usize = 72;

fn num(t: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&t[i * 8..i * 8 + 8]);
    u64::from_le_bytes(b)
}

/// Fills in the version and times of `new`, whose digest and boot id are
/// set, from the stored `old`: the same as `old` when it describes the same
/// claims of the same boot; one more than `old`'s version, updated `now`,
/// when only the claims changed; version 1 issued `now` otherwise
/// (nothing, or anything malformed, stored). Returns whether it changed.
pub fn advance(old: &[u8], new: &mut [u8; STORED], now: u64) -> bool {
    let valid = old.len() == STORED && num(old, 0) > 0 && num(old, 1) <= num(old, 2);
    let same_boot = valid && old[24 + DIGEST..] == new[24 + DIGEST..];
    if same_boot && old[24..] == new[24..] {
        new[..24].copy_from_slice(&old[..24]);
        return false;
    }
    let (version, issued) = match same_boot {
        true => (num(old, 0) + 1, num(old, 1)),
        false => (1, now),
    };
    for (i, v) in [version, issued, now].into_iter().enumerate() {
        new[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    true
}

/// The digest of a set of claims: a SHA-256 of everything a statement is
/// made from (name, stream, version, payload digest, apply time, CVEs,
/// products) for each claim, folded in by XOR so the order sysfs lists
/// them in does not matter. Nothing cancels out: each patch name is one
/// sysfs directory, so no claim comes twice. A patch disabled and applied
/// again has a new time; a record rewritten with other CVEs or products
/// gives other statements, and so another version.
fn digest(claims: &Claims, x: &mut [u8]) {
    use sha2::Digest;
    for c in claims.iter() {
        let mut h = sha2::Sha256::new();
        for text in [c.name, c.stream, c.sha256, c.cves, c.products] {
            h.update((text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        h.update(c.version.to_le_bytes());
        h.update(c.time.to_le_bytes());
        for (d, b) in x.iter_mut().zip(h.finalize()) {
            *d ^= b;
        }
    }
}

/// The identity of the document that describes `claims`. When they changed
/// since the stored version (or nothing valid is stored for this boot), the
/// version is raised and stored; reading never lowers it.
fn doc(claims: &Claims) -> Result<Doc> {
    let boot_id = state::boot_id();
    let mut new = [0u8; STORED];
    digest(claims, &mut new[24..24 + DIGEST]);
    new[24 + DIGEST..24 + DIGEST + boot_id.len()].copy_from_slice(boot_id.as_bytes());
    let mut buf = [0u8; STORED + 1];
    let old = files::open_own(DOC, crate::files::UNSHOWN)
        .and_then(|fd| files::read_fd_small(&fd, &mut buf, crate::files::UNSHOWN))
        .unwrap_or(b"");
    if advance(old, &mut new, crate::rt::unix_time()) {
        files::write_atomic(DOC.to_bytes(), &new, 0o600)?;
    }
    Ok(Doc {
        boot_id,
        version: num(&new, 0),
        issued: num(&new, 1),
        updated: num(&new, 2),
        statements: claims.statements(),
    })
}

/// The document of the patches klpctl may claim now, as one line of JSON
/// (with its newline) in `out`: the claims read in one pass, the version
/// in `/run/klpctl/vex.doc` raised if they changed, and the running
/// kernel named. `None` when there is no statement to make.
pub fn current(out: &mut [u8]) -> Result<Option<&[u8]>> {
    let claims = Claims::read()?;
    let d = doc(&claims)?;
    openvex(&d, &claims, &Running::read(), out)
}

/// The OpenVEX 0.2.0 document of `claims` as one line of JSON (with its
/// newline) in `out`: one `fixed` statement per CVE and claimed patch,
/// naming the running kernel `k`. `None` when there is no statement to
/// make: OpenVEX has no empty document.
fn openvex<'o>(
    d: &Doc,
    claims: &Claims,
    k: &Running,
    out: &'o mut [u8],
) -> Result<Option<&'o [u8]>> {
    if d.statements == 0 {
        return Ok(None);
    }
    let mut id = heapless::String::<64>::new();
    let mut kernel = heapless::String::<{ 3 * 64 + 32 }>::new();
    let mut build_id = heapless::String::<64>::new();
    let mut hex = [0u8; 64];
    let built = id.push_str("urn:uuid:").and(id.push_str(&d.boot_id));
    let built = built
        .and(kernel.push_str("pkg:generic/linux-kernel@"))
        .and(purl_version(k.release.as_bytes(), &mut kernel))
        .and(match crate::codec::hex_encode(&k.build_id, &mut hex) {
            Some(h) if !h.is_empty() => build_id.push_str(core::str::from_utf8(h).unwrap_or("")),
            _ => build_id.push_str("unknown"),
        });
    if built.is_err() {
        return Err(Error::Internal(msg!("VEX document: kernel identity")));
    }
    let doc = OpenVex {
        context: "https://openvex.dev/ns/v0.2.0",
        id: &id,
        author: "klpctl",
        timestamp: Time(d.issued),
        last_updated: Time(d.updated),
        version: d.version,
        tooling: concat!("klpctl ", env!("CARGO_PKG_VERSION")),
        statements: Statements {
            claims,
            kernel: &kernel,
            build_id: &build_id,
        },
    };
    let n = to_json(&doc, out).ok_or(TOO_MANY)?;
    Ok(Some(&out[..n]))
}

/// `release` as a purl version: percent-encoded, so `+` becomes `%2B`.
fn purl_version<const N: usize>(
    release: &[u8],
    out: &mut heapless::String<N>,
) -> core::result::Result<(), CapacityError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in release {
        if c.is_ascii_alphanumeric() || b"._-~".contains(&c) {
            out.push(c as char)?;
        } else {
            for h in [b'%', HEX[c as usize >> 4], HEX[c as usize & 15]] {
                out.push(h as char)?;
            }
        }
    }
    Ok(())
}

/// Writes `doc` as one line of JSON, with its newline, in `out`. The
/// length written; `None` when it does not fit, so no partial document is
/// ever used.
fn to_json(doc: &OpenVex, out: &mut [u8]) -> Option<usize> {
    let n = serde_json_core::to_slice(doc, out).ok()?;
    *out.get_mut(n)? = b'\n';
    Some(n + 1)
}

/// An OpenVEX 0.2.0 document, its fields in the order klpctl writes them.
#[derive(Serialize)]
struct OpenVex<'a> {
    #[serde(rename = "@context")]
    context: &'static str,
    #[serde(rename = "@id")]
    id: &'a str,
    author: &'static str,
    timestamp: Time,
    last_updated: Time,
    version: u64,
    tooling: &'static str,
    statements: Statements<'a>,
}

/// A time (Unix seconds), written as RFC 3339.
struct Time(u64);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut b = [0u8; 20];
        s.serialize_str(core::str::from_utf8(rfc3339(self.0, &mut b)).unwrap_or_default())
    }
}

/// The statements: one per CVE of each claim, made as values one at a
/// time while the document is written.
struct Statements<'a> {
    claims: &'a Claims,
    /// The running kernel's purl.
    kernel: &'a str,
    /// Its build-id in hex, or `unknown`.
    build_id: &'a str,
}

impl Serialize for Statements<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for c in self.claims.iter() {
            for cve in c.each_cve() {
                seq.serialize_element(&Statement {
                    vulnerability: Vulnerability { name: cve },
                    timestamp: Time(c.time),
                    products: Products {
                        kernel: self.kernel,
                        others: c.products,
                    },
                    status: Status::Fixed,
                    status_notes: Notes {
                        claim: c,
                        build_id: self.build_id,
                    },
                })?;
            }
        }
        seq.end()
    }
}

/// One OpenVEX statement.
#[derive(Serialize)]
struct Statement<'a> {
    vulnerability: Vulnerability<'a>,
    timestamp: Time,
    products: Products<'a>,
    status: Status,
    status_notes: Notes<'a>,
}

/// The vulnerability a statement is about, by its CVE id.
#[derive(Serialize)]
struct Vulnerability<'a> {
    name: &'a str,
}

/// What a statement says of its products: klpctl only ever claims fixes.
#[derive(Serialize)]
enum Status {
    #[serde(rename = "fixed")]
    Fixed,
}

/// The products a statement is about: the running kernel first, then the
/// patch's own (space-separated in its record).
struct Products<'a> {
    kernel: &'a str,
    others: &'a str,
}

/// One product, by its purl or CPE.
#[derive(Serialize)]
struct Product<'a> {
    #[serde(rename = "@id")]
    id: &'a str,
}

impl Serialize for Products<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        // A patch may name the running kernel's purl itself (a vendor
        // naming its own kernel build does): each product once.
        let mut seq = s.serialize_seq(None)?;
        seq.serialize_element(&Product { id: self.kernel })?;
        for id in self.others.split(' ') {
            if !id.is_empty() && id != self.kernel {
                seq.serialize_element(&Product { id })?;
            }
        }
        seq.end()
    }
}

/// The statement's note: which live patch fixes it, and on which kernel.
struct Notes<'a> {
    claim: Claim<'a>,
    build_id: &'a str,
}

impl Serialize for Notes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let c = &self.claim;
        let (mut v, mut t) = ([0u8; 20], [0u8; 20]);
        let version = core::str::from_utf8(crate::codec::fmt_u64(c.version, &mut v));
        let applied = core::str::from_utf8(rfc3339(c.time, &mut t));
        let mut text = heapless::String::<1024>::new();
        for piece in [
            "Fixed in the running kernel by live patch ",
            c.name,
            " (stream ",
            c.stream,
            ", version ",
            version.unwrap_or_default(),
            "; payload sha256 ",
            c.sha256,
            "), applied by klpctl at ",
            applied.unwrap_or_default(),
            " to kernel build-id ",
            self.build_id,
            ". A live patch does not persist across reboot: after one, this holds only once the patch is applied again.",
        ] {
            // Bounded: every piece is a validated identifier of bounded
            // length, together under 700 bytes.
            let _ = text.push_str(piece);
        }
        s.serialize_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(name: &'a str, cves: &'a str, products: &'a str) -> Record<'a> {
        Record {
            boot_id: "b",
            name,
            stream: "acme",
            version: 3,
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            keys: "830f41e2890ec4a0",
            cves,
            products,
            time: 1764300000,
            replace: false,
            state: "applied",
        }
    }

    #[test]
    fn the_document_is_one_line_of_openvex_with_a_statement_per_cve() {
        let kernel = "pkg:generic/linux-kernel@6.1.0%2Bx";
        let products = format!("pkg:deb/debian/acme@3 {kernel}");
        let mut claims = Claims {
            text: heapless::String::new(),
            kept: heapless::Vec::new(),
        };
        claims
            .keep(&record("klp_a", "CVE-2024-1", &products))
            .unwrap();
        claims
            .keep(&record("klp_b", "CVE-2024-2,CVE-2024-3", ""))
            .unwrap();
        let d = Doc {
            boot_id: heapless::String::try_from("0f1e").unwrap(),
            version: 2,
            issued: 1764300000,
            updated: 1764300060,
            statements: claims.statements(),
        };
        let k = Running {
            release: heapless::String::try_from("6.1.0+x").unwrap(),
            machine: heapless::String::try_from("x86_64").unwrap(),
            build_id: heapless::Vec::from_slice(&[0xab, 0xcd]).unwrap(),
        };
        let mut out = [0u8; 4096];
        let doc = openvex(&d, &claims, &k, &mut out).unwrap().unwrap();
        let note = |name: &str| {
            format!(
                "Fixed in the running kernel by live patch {name} (stream acme, version 3; payload sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855), applied by klpctl at 2025-11-28T03:20:00Z to kernel build-id abcd. A live patch does not persist across reboot: after one, this holds only once the patch is applied again."
            )
        };
        let statement = |cve: &str, name: &str, products: &str| {
            format!(
                r#"{{"vulnerability":{{"name":"{cve}"}},"timestamp":"2025-11-28T03:20:00Z","products":[{products}],"status":"fixed","status_notes":"{}"}}"#,
                note(name)
            )
        };
        let own = format!(r#"{{"@id":"{kernel}"}}"#);
        let both = format!(r#"{own},{{"@id":"pkg:deb/debian/acme@3"}}"#);
        let want = format!(
            r#"{{"@context":"https://openvex.dev/ns/v0.2.0","@id":"urn:uuid:0f1e","author":"klpctl","timestamp":"2025-11-28T03:20:00Z","last_updated":"2025-11-28T03:21:00Z","version":2,"tooling":"klpctl {}","statements":[{},{},{}]}}"#,
            env!("CARGO_PKG_VERSION"),
            statement("CVE-2024-1", "klp_a", &both),
            statement("CVE-2024-2", "klp_b", &own),
            statement("CVE-2024-3", "klp_b", &own),
        ) + "\n";
        assert_eq!(core::str::from_utf8(doc).unwrap(), want);
        // One byte short: no document rather than part of one.
        let mut short = [0u8; 4096];
        let short = &mut short[..doc.len() - 1];
        assert_eq!(openvex(&d, &claims, &k, short), Err(TOO_MANY));
        // No statement to make: no document.
        let none = Doc { statements: 0, ..d };
        assert_eq!(openvex(&none, &claims, &k, &mut out), Ok(None));
    }

    fn stored(digest: u8, boot: &[u8]) -> [u8; STORED] {
        let mut t = [0u8; STORED];
        t[24] = digest;
        t[24 + DIGEST..24 + DIGEST + boot.len()].copy_from_slice(boot);
        t
    }

    #[test]
    fn versions_grow_with_changes_only() {
        // Nothing stored: version 1, issued and updated now.
        let mut a = stored(1, b"boot");
        assert!(advance(b"", &mut a, 10));
        assert_eq!((num(&a, 0), num(&a, 1), num(&a, 2)), (1, 10, 10));
        // The same claims: the same version and times.
        let mut same = stored(1, b"boot");
        assert!(!advance(&a, &mut same, 20));
        assert_eq!(same, a);
        // Other claims: one more, first issued time kept.
        let mut b = stored(2, b"boot");
        assert!(advance(&a, &mut b, 30));
        assert_eq!((num(&b, 0), num(&b, 1), num(&b, 2)), (2, 10, 30));
        // Back to the first claims is still a change.
        let mut c = stored(1, b"boot");
        assert!(advance(&b, &mut c, 40));
        assert_eq!((num(&c, 0), num(&c, 1), num(&c, 2)), (3, 10, 40));
        // Another boot, a short or long file, version 0, a first issued time
        // after the last update: a new document.
        let mut bad_version = c;
        bad_version[..8].fill(0);
        let mut bad_times = c;
        bad_times[8] = 99;
        let long = [&c[..], b"\0"].concat();
        for old in [
            &stored(1, b"boots")[..],
            &c[1..],
            &long,
            &bad_version,
            &bad_times,
        ] {
            let mut n = stored(1, b"boot");
            assert!(advance(old, &mut n, 50));
            assert_eq!((num(&n, 0), num(&n, 1), num(&n, 2)), (1, 50, 50));
        }
    }
}
