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
use core::ffi::CStr;

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
/// then the claims' digest and the boot id (NUL-padded), which together
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

/// The digest of a set of claims: each claim's payload SHA-256 (hex) and
/// apply time folded in by XOR, so the order sysfs lists them in does not
/// matter; a patch disabled and applied again has a new time. Also counts
/// the statements they make (their CVEs).
fn digest(x: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    each_claim(&mut |r| {
        n += r.cves.split(',').filter(|c| !c.is_empty()).count();
        let t = r.time.to_le_bytes();
        for (i, b) in r.sha256.bytes().enumerate() {
            x[i] ^= b;
        }
        for (i, b) in t.into_iter().enumerate() {
            x[64 + i] ^= b;
        }
    })?;
    Ok(n)
}

/// The document that describes the claims now. When they changed since
/// the stored version (or nothing valid is stored for this boot), the
/// version is raised and stored; reading never lowers it.
#[inline(never)]
pub fn doc() -> Result<Doc> {
    let boot_id = state::boot_id();
    let mut new = [0u8; STORED];
    let statements = digest(&mut new[24..24 + DIGEST])?;
    new[24 + DIGEST..24 + DIGEST + boot_id.len()].copy_from_slice(boot_id.as_bytes());
    let mut buf = [0u8; STORED + 1];
    let old = files::open_own(DOC, msg!("vex.doc"))
        .and_then(|fd| files::read_fd_small(&fd, &mut buf, msg!("vex.doc")))
        .unwrap_or(b"");
    if advance(old, &mut new, crate::rt::unix_time()) {
        files::write_atomic(DOC.to_bytes(), &new, 0o600)?;
    }
    Ok(Doc {
        boot_id,
        version: num(&new, 0),
        issued: num(&new, 1),
        updated: num(&new, 2),
        statements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Other claims: one more, first issue kept.
        let mut b = stored(2, b"boot");
        assert!(advance(&a, &mut b, 30));
        assert_eq!((num(&b, 0), num(&b, 1), num(&b, 2)), (2, 10, 30));
        // Back to the first claims is still a change.
        let mut c = stored(1, b"boot");
        assert!(advance(&b, &mut c, 40));
        assert_eq!((num(&c, 0), num(&c, 1), num(&c, 2)), (3, 10, 40));
        // Another boot, a short or long file, version 0, a first issue
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
