//! The bundle container: one file holding a fixed header, the manifest, up
//! to four signatures and the payload.
//!
//! ```text
//! offset  size            field
//! 0       8               magic "KLPBNDL\0"
//! 8       2               container format, u16 LE = 1
//! 10      2               signature count n, u16 LE, 0..=4
//! 12      4               manifest length m, u32 LE, 2..=16384
//! 16      8               payload length p, u64 LE, 1..=2^30
//! 24      m               manifest (JSON, signed bytes)
//! 24+m    72*n            signatures: key id (8) ‖ Ed25519 signature (64)
//! 24+m+72n p              payload (the .ko)
//! ```
//! The file ends exactly after the payload. Parsing goes one way:
//! [`read`] gives an [`Unverified`] bundle; only [`Unverified::authenticate`]
//! (signatures) followed by a payload digest check turns it into something
//! the rest of klpctl acts on.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crate::files::{self, Source, TRUNCATED};
use crate::trust::keys::{Keyring, Signature, Verdict};
use crate::trust::manifest::{self, MAX_MANIFEST, MAX_PAYLOAD, Manifest};
use rustix::fd::AsFd;

/// File magic.
pub const MAGIC: [u8; 8] = *b"KLPBNDL\0";
/// Container format version.
pub const FORMAT: u16 = 1;
/// Header size.
pub const HEADER: usize = 24;
/// Size of one signature record.
pub const SIG_RECORD: usize = 72;
/// Most signatures a bundle holds.
pub const MAX_SIGS: usize = 4;

/// The parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Number of signatures.
    pub sig_count: usize,
    /// Manifest length.
    pub manifest_len: usize,
    /// Payload length.
    pub payload_len: u64,
}

impl Header {
    /// Offset of the first signature record.
    pub fn sigs_offset(&self) -> u64 {
        (HEADER + self.manifest_len) as u64
    }
    /// Offset of the payload.
    pub fn payload_offset(&self) -> u64 {
        self.sigs_offset() + (SIG_RECORD * self.sig_count) as u64
    }
    /// Exact length of a bundle with this header.
    pub fn total_len(&self) -> u64 {
        self.payload_offset() + self.payload_len
    }

    /// Parses and bounds-checks the fixed header.
    pub fn parse(h: &[u8; HEADER]) -> Result<Header> {
        if h[..8] != MAGIC {
            return Err(Error::Bundle(msg!("not a klpctl bundle (bad magic)")));
        }
        if u16::from_le_bytes([h[8], h[9]]) != FORMAT {
            return Err(Error::Bundle(msg!("unsupported bundle format version")));
        }
        let sig_count = u16::from_le_bytes([h[10], h[11]]) as usize;
        let manifest_len = u32::from_le_bytes([h[12], h[13], h[14], h[15]]) as usize;
        let mut p = [0u8; 8];
        p.copy_from_slice(&h[16..24]);
        let payload_len = u64::from_le_bytes(p);
        if sig_count > MAX_SIGS {
            return Err(Error::Bundle(msg!("more than 4 signatures")));
        }
        if !(2..=MAX_MANIFEST).contains(&manifest_len) {
            return Err(Error::Bundle(msg!(
                "manifest length out of bounds (2..16384)"
            )));
        }
        if payload_len == 0 || payload_len > MAX_PAYLOAD {
            return Err(Error::Bundle(msg!(
                "payload length out of bounds (1..2^30)"
            )));
        }
        Ok(Header {
            sig_count,
            manifest_len,
            payload_len,
        })
    }

    /// The 24 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&FORMAT.to_le_bytes());
        h[10..12].copy_from_slice(&(self.sig_count as u16).to_le_bytes());
        h[12..16].copy_from_slice(&(self.manifest_len as u32).to_le_bytes());
        h[16..24].copy_from_slice(&self.payload_len.to_le_bytes());
        h
    }
}

/// A bundle whose structure is sound but whose contents are not yet
/// trusted. The manifest bytes live in a caller-provided buffer.
pub struct Unverified<'m> {
    /// The header.
    pub header: Header,
    /// The exact manifest bytes (what signatures cover).
    pub manifest: &'m [u8],
    /// The signatures, in file order.
    pub sigs: heapless::Vec<Signature, MAX_SIGS>,
}

/// Reads and structurally checks a bundle: magic, version, bounds, and that
/// the file length is exactly what the header says. Nothing is trusted yet.
pub fn read<'m, S: Source>(src: &S, mbuf: &'m mut [u8; MAX_MANIFEST]) -> Result<Unverified<'m>> {
    let mut h = [0u8; HEADER];
    // A short file that does not even start like a bundle is "not a
    // bundle", not "truncated".
    let have = src.size().min(HEADER as u64) as usize;
    src.read_at(0, &mut h[..have])?;
    let m = have.min(MAGIC.len());
    if h[..m] != MAGIC[..m] {
        return Err(Error::Bundle(msg!("not a klpctl bundle (bad magic)")));
    }
    if have < HEADER {
        return Err(TRUNCATED);
    }
    let header = Header::parse(&h)?;
    let total = header.total_len();
    if src.size() < total {
        return Err(TRUNCATED);
    }
    if src.size() > total {
        return Err(Error::Bundle(msg!("trailing bytes after the payload")));
    }
    let manifest = &mut mbuf[..header.manifest_len];
    src.read_at(HEADER as u64, manifest)?;
    let mut sigs = heapless::Vec::new();
    for i in 0..header.sig_count {
        let mut rec = [0u8; SIG_RECORD];
        src.read_at(header.sigs_offset() + (i * SIG_RECORD) as u64, &mut rec)?;
        let mut s = Signature {
            key_id: [0; 8],
            sig: [0; 64],
        };
        s.key_id.copy_from_slice(&rec[..8]);
        s.sig.copy_from_slice(&rec[8..]);
        let _ = sigs.push(s); // sig_count <= MAX_SIGS, checked above
    }
    Ok(Unverified {
        header,
        manifest,
        sigs,
    })
}

/// A bundle whose manifest is signed by enough trusted keys. The payload is
/// not yet checked: [`Signed::check_payload`] or the kernel loader's sealed
/// copy does that.
pub struct Signed<'m> {
    /// The header.
    pub header: Header,
    /// The authenticated manifest.
    pub manifest: Manifest<'m>,
    /// The exact signed bytes.
    pub raw_manifest: &'m [u8],
    /// Which keys signed.
    pub verdict: Verdict,
}

impl<'m> Unverified<'m> {
    /// Parses the manifest without checking any signature. Only for `info`
    /// and for signing tools; never act on the result.
    pub fn manifest_unverified(&self) -> Result<Manifest<'m>> {
        let m = manifest::parse(self.manifest)?;
        if m.payload_size != self.header.payload_len {
            return Err(Error::Bundle(msg!(
                "header payload length differs from the manifest"
            )));
        }
        Ok(m)
    }

    /// Checks signatures (cheap checks first, inside [`Keyring::check`]),
    /// then parses the now-authenticated manifest. On failure the verdict
    /// is still returned so callers can report which keys signed.
    pub fn authenticate(self, keyring: &Keyring) -> (Verdict, Result<Signed<'m>>) {
        let verdict = keyring.check(self.manifest, &self.sigs);
        if let Err(e) = verdict.result() {
            return (verdict, Err(e));
        }
        let manifest = match self.manifest_unverified() {
            Ok(m) => m,
            Err(e) => return (verdict, Err(e)),
        };
        let signed = Signed {
            header: self.header,
            manifest,
            raw_manifest: self.manifest,
            verdict: verdict.clone(),
        };
        (verdict, Ok(signed))
    }
}

/// Reads the bundle in `src` and authenticates it ([`read`], then
/// [`Unverified::authenticate`]); with `payload`, checks the payload digest
/// too ([`Signed::check_payload`]). For callers that need no verdict when
/// it fails.
pub fn read_signed<'m, S: Source>(
    src: &S,
    ring: &Keyring,
    mbuf: &'m mut [u8; MAX_MANIFEST],
    payload: bool,
) -> Result<Signed<'m>> {
    let signed = read(src, mbuf)?.authenticate(ring).1?;
    if payload {
        signed.check_payload(src)?;
    }
    Ok(signed)
}

impl Signed<'_> {
    /// Hashes the payload in `src` and compares it with the manifest.
    pub fn check_payload<S: Source>(&self, src: &S) -> Result<()> {
        let d = src.sha256(self.header.payload_offset(), self.header.payload_len)?;
        if d != self.manifest.payload_sha256 {
            return Err(Error::Digest);
        }
        Ok(())
    }
}

/// Writes a complete bundle to `out`, copying the payload from `payload`
/// (`len` bytes at `off`) through a fixed buffer.
pub fn write(
    out: &mut files::AtomicFile,
    manifest: &[u8],
    sigs: &[Signature],
    payload: impl AsFd,
    off: u64,
    len: u64,
) -> Result<()> {
    if sigs.len() > MAX_SIGS {
        return Err(Error::Usage(msg!("a bundle holds at most 4 signatures")));
    }
    let h = Header {
        sig_count: sigs.len(),
        manifest_len: manifest.len(),
        payload_len: len,
    };
    out.write(&h.to_bytes())?;
    out.write(manifest)?;
    for s in sigs {
        out.write(&s.key_id)?;
        out.write(&s.sig)?;
    }
    files::copy_range(
        payload,
        off,
        len,
        Error::Module(msg!("input file shrank while reading")),
        msg!("read payload"),
        |c| out.write(c),
    )
}

/// Unit tests, and bundle builders the other modules' tests share.
#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::trust::keys::SecretKey;

    /// Builds a bundle in memory: used by unit tests here and in other
    /// modules.
    pub fn build(manifest: &[u8], sigs: &[Signature], payload: &[u8]) -> Vec<u8> {
        let h = Header {
            sig_count: sigs.len(),
            manifest_len: manifest.len(),
            payload_len: payload.len() as u64,
        };
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(manifest);
        for s in sigs {
            v.extend_from_slice(&s.key_id);
            v.extend_from_slice(&s.sig);
        }
        v.extend_from_slice(payload);
        v
    }

    /// A canonical manifest for `payload`, as `pack` would write it.
    pub fn sample_manifest(payload: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        let d: [u8; 32] = sha2::Sha256::digest(payload).into();
        let m = Manifest {
            name: "klp_test",
            stream: "s",
            version: 1,
            release: "6.1.0-1-amd64",
            build_id: heapless::Vec::new(),
            arch: "x86_64",
            replace: false,
            cves: heapless::Vec::new(),
            products: heapless::Vec::new(),
            description: "",
            created: 0,
            payload_size: payload.len() as u64,
            payload_sha256: d,
        };
        let mut buf = [0u8; 4096];
        m.write(&mut buf).unwrap().to_vec()
    }

    fn key() -> SecretKey {
        SecretKey::from_seed([5; 32], *b"testkey!")
    }

    fn ring() -> Keyring {
        let mut r = Keyring::new(1);
        r.add(key().public()).unwrap();
        r
    }

    fn check(bytes: &[u8]) -> Result<()> {
        let src: &[u8] = bytes;
        let mut mbuf = [0u8; MAX_MANIFEST];
        let u = read(&src, &mut mbuf)?;
        let (_, s) = u.authenticate(&ring());
        s?.check_payload(&src)
    }

    fn good() -> Vec<u8> {
        let payload = b"\x7fELF fake module bytes".repeat(10);
        let m = sample_manifest(&payload);
        build(&m, &[key().sign(&m)], &payload)
    }

    #[test]
    fn good_bundle_verifies() {
        assert_eq!(check(&good()), Ok(()));
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let g = good();
        for i in 0..g.len() {
            for bit in 0..8 {
                let mut b = g.clone();
                b[i] ^= 1 << bit;
                let r = check(&b);
                assert!(r.is_err(), "flip at byte {i} bit {bit} accepted");
                assert_eq!(r.unwrap_err().exit_code(), 3, "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let g = good();
        for n in 0..g.len() {
            assert_eq!(
                check(&g[..n]).map_err(|e| e.exit_code()),
                Err(3),
                "length {n}"
            );
        }
        let mut longer = g.clone();
        longer.push(0);
        assert_eq!(
            check(&longer),
            Err(Error::Bundle(msg!("trailing bytes after the payload")))
        );
    }

    #[test]
    fn unsigned_and_untrusted_bundles_are_rejected() {
        let payload = b"payload";
        let m = sample_manifest(payload);
        assert_eq!(
            check(&build(&m, &[], payload)),
            Err(Error::NotEnoughSignatures)
        );
        let other = SecretKey::from_seed([6; 32], *b"otherkey");
        assert_eq!(
            check(&build(&m, &[other.sign(&m)], payload)),
            Err(Error::NotEnoughSignatures)
        );
    }

    #[test]
    fn header_payload_length_must_match_manifest() {
        let payload = b"payload";
        let m = sample_manifest(b"payloa");
        assert!(check(&build(&m, &[key().sign(&m)], payload)).is_err());
    }

    #[test]
    fn short_junk_is_not_a_bundle_but_a_short_bundle_is_truncated() {
        let bad_magic = Error::Bundle(msg!("not a klpctl bundle (bad magic)"));
        assert_eq!(check(b"hello, world\n"), Err(bad_magic));
        assert_eq!(check(b""), Err(TRUNCATED));
        assert_eq!(check(&good()[..5]), Err(TRUNCATED));
        assert_eq!(check(&good()[..20]), Err(TRUNCATED));
    }

    #[test]
    fn header_bounds() {
        let mut h = Header {
            sig_count: 5,
            manifest_len: 10,
            payload_len: 1,
        }
        .to_bytes();
        assert!(Header::parse(&h).is_err());
        h = Header {
            sig_count: 1,
            manifest_len: MAX_MANIFEST + 1,
            payload_len: 1,
        }
        .to_bytes();
        assert!(Header::parse(&h).is_err());
        h = Header {
            sig_count: 1,
            manifest_len: 10,
            payload_len: 0,
        }
        .to_bytes();
        assert!(Header::parse(&h).is_err());
        h = Header {
            sig_count: 4,
            manifest_len: MAX_MANIFEST,
            payload_len: MAX_PAYLOAD,
        }
        .to_bytes();
        assert!(Header::parse(&h).is_ok());
    }
}
