//! What klpctl may tell a vulnerability scanner: the patches it applied that
//! are live right now, and the identity of the VEX document that says so.
//!
//! A patch is *claimed* only when klpctl's record of this boot says its load
//! finished (`applied`) and sysfs agrees that it is enabled with no
//! transition running. A patch disabled behind klpctl's back, one being
//! reverted, or one loaded without a record is never claimed.
//!
//! The document is one per boot: its `@id` is `urn:uuid:<boot id>`, its
//! `timestamp` the first time it was issued this boot, and its `version`
//! grows by one each time the set of claimed patches changes, with
//! `last_updated` the time of that change (OpenVEX 0.2.0: a document's
//! version must be incremented on any change to its statements). The
//! change is noticed from a digest of the claims, so a patch disabled
//! behind klpctl's back also gives a new version the next time a document
//! is made. The bookkeeping is `/run/klpctl/vex.doc`, on tmpfs like the
//! patches.
#![forbid(unsafe_code)]

use crate::error::Result;
use crate::files;
use crate::ops::status;
use crate::state::{self, Record};

/// The document's bookkeeping file.
pub const DOC: &[u8] = b"/run/klpctl/vex.doc";
/// The current document, kept by `apply` and `disable`.
pub const FILE: &[u8] = b"/run/klpctl/vex.json";

/// Calls `f` with the record of each patch klpctl may claim as fixed now.
pub fn each_claim(f: &mut dyn FnMut(&Record)) -> Result<()> {
    if !crate::kernel::sysfs::supported() {
        return Ok(());
    }
    status::each_patch(&mut |p| {
        if let Some(r) = &p.record
            && p.enabled
            && !p.transition
            && r.state == "applied"
        {
            f(r)
        }
    })
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
/// the claims' digest, and the boot id (NUL-padded).
const STORED: usize = 24 + DIGEST + 40;
const DIGEST: usize = 72;

/// The stored bookkeeping of this boot's document, if `t` is one: the
/// right size, this boot's id, a version and times that make sense.
pub fn parse_doc(t: &[u8], boot_id: &str) -> Option<(Doc, [u8; DIGEST])> {
    let t: &[u8; STORED] = t.try_into().ok()?;
    let num = |i: usize| u64::from_le_bytes(t[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let id = &t[24 + DIGEST..];
    let d = Doc {
        boot_id: boot_id.try_into().ok()?,
        version: num(0),
        issued: num(1),
        updated: num(2),
        statements: 0,
    };
    let same_boot =
        id.starts_with(boot_id.as_bytes()) && id[boot_id.len()..].iter().all(|&c| c == 0);
    (same_boot && d.version > 0 && d.issued <= d.updated)
        .then(|| (d, t[24..24 + DIGEST].try_into().unwrap_or([0; DIGEST])))
}

/// The digest of a set of claims: each claim's payload SHA-256 (hex) and
/// apply time folded in by XOR, so the order sysfs lists them in does not
/// matter; a patch disabled and applied again has a new time.
fn digest() -> Result<([u8; DIGEST], usize)> {
    let mut x = [0u8; DIGEST];
    let mut n = 0;
    each_claim(&mut |r| {
        n += r.cves.split(',').filter(|c| !c.is_empty()).count();
        for (a, b) in x
            .iter_mut()
            .zip(r.sha256.bytes().chain(r.time.to_le_bytes()))
        {
            *a ^= b;
        }
    })?;
    Ok((x, n))
}

/// The document that describes the claims now. When they changed since
/// the stored version (or nothing valid is stored for this boot), the
/// version is raised and stored; reading never lowers it.
#[inline(never)]
pub fn doc() -> Result<Doc> {
    let (x, statements) = digest()?;
    let boot_id = state::boot_id();
    let mut buf = [0u8; STORED + 1];
    let old = files::open_own(c"/run/klpctl/vex.doc", "vex.doc")
        .and_then(|fd| files::read_fd_small(&fd, &mut buf, "vex.doc"))
        .ok()
        .and_then(|t| parse_doc(t, &boot_id));
    let now = crate::rt::unix_time();
    let (version, issued) = match old {
        Some((o, ox)) if ox == x => return Ok(Doc { statements, ..o }),
        Some((o, _)) => (o.version + 1, o.issued),
        None => (1, now),
    };
    let mut t = [0u8; STORED];
    for (i, v) in [version, issued, now].into_iter().enumerate() {
        t[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    t[24..24 + DIGEST].copy_from_slice(&x);
    t[24 + DIGEST..24 + DIGEST + boot_id.len()].copy_from_slice(boot_id.as_bytes());
    files::write_atomic(DOC, &t, 0o600)?;
    Ok(Doc {
        boot_id,
        version,
        issued,
        updated: now,
        statements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_bookkeeping_reads_strictly() {
        let mut t = [0u8; STORED];
        t[0] = 3;
        t[8] = 10;
        t[16] = 20;
        t[24] = 0xaa;
        t[24 + DIGEST..24 + DIGEST + 4].copy_from_slice(b"boot");
        let (d, x) = parse_doc(&t, "boot").unwrap();
        assert_eq!((d.version, d.issued, d.updated), (3, 10, 20));
        assert_eq!((d.boot_id.as_str(), x[0], x[1]), ("boot", 0xaa, 0));
        // Another boot, a longer id, a short or long file, version 0, a
        // first issue after the last update: all not this boot's document.
        assert!(parse_doc(&t, "boots").is_none());
        assert!(parse_doc(&t, "boo").is_none());
        assert!(parse_doc(&t[1..], "boot").is_none());
        assert!(parse_doc(&[&t[..], b"\0"].concat(), "boot").is_none());
        let mut v0 = t;
        v0[0] = 0;
        assert!(parse_doc(&v0, "boot").is_none());
        let mut late = t;
        late[8] = 30;
        assert!(parse_doc(&late, "boot").is_none());
    }
}
