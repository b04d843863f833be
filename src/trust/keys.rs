//! Keys, signatures and trust.
//!
//! File formats are OpenBSD signify's (minisign public keys are the same
//! bytes), so keys and signatures move freely between klpctl,
//! `signify-openbsd` and minisign:
//!
//! | file        | base64 payload                                                       |
//! |-------------|----------------------------------------------------------------------|
//! | public key  | `"Ed"` ‖ key id (8) ‖ Ed25519 public key (32)                         |
//! | secret key  | `"Ed"` ‖ `"BK"` ‖ rounds (4, BE, must be 0) ‖ salt (16) ‖ checksum (8) ‖ key id (8) ‖ secret key (64) |
//! | signature   | `"Ed"` ‖ key id (8) ‖ Ed25519 signature (64)                          |
//!
//! Each file is an `untrusted comment: ` line followed by the base64 line.
#![forbid(unsafe_code)]

use crate::codec;
use crate::error::{Error, Result};

/// Key ids are the 8 random bytes signify calls the key number.
pub type KeyId = [u8; 8];

/// Most keys a keyring holds (embedded plus runtime).
pub const MAX_KEYS: usize = 16;
/// Largest key or signature file klpctl reads.
pub const MAX_KEY_FILE: usize = 2048;
/// Comment lines are limited as signify limits them.
pub const MAX_COMMENT: usize = 1024;

const COMMENT_PREFIX: &[u8] = b"untrusted comment: ";

/// A trusted Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicKey {
    /// The key id (signify key number).
    pub id: KeyId,
    /// The raw Ed25519 public key.
    pub key: [u8; 32],
}

/// An unencrypted signify secret key.
pub struct SecretKey {
    /// The key id (signify key number).
    pub id: KeyId,
    /// Ed25519 seed followed by the public key, as signify stores it.
    pub key: [u8; 64],
}

/// One signature as it sits in a bundle.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Signature {
    /// The id of the key that claims to have made it.
    pub key_id: KeyId,
    /// The Ed25519 signature over the manifest bytes.
    pub sig: [u8; 64],
}

/// Splits a signify-style file into its comment and decoded payload, which
/// must be exactly `N` bytes and start with `"Ed"`.
fn decode_file<const N: usize>(text: &[u8], what: crate::error::Msg) -> Result<(&[u8], [u8; N])> {
    let bad = Error::KeyFile(what);
    if text.len() > MAX_KEY_FILE {
        return Err(bad);
    }
    let rest = text.strip_prefix(COMMENT_PREFIX).ok_or(bad)?;
    let nl = rest.iter().position(|&c| c == b'\n').ok_or(bad)?;
    let comment = &rest[..nl];
    if comment.len() > MAX_COMMENT || comment.iter().any(|&c| c < 0x20 && c != b'\t') {
        return Err(bad);
    }
    let mut line = &rest[nl + 1..];
    // One final newline is optional; nothing else may follow the key line.
    if let Some(l) = line.strip_suffix(b"\n") {
        line = l;
    }
    let mut out = [0u8; N];
    let dec = codec::b64_decode(line, &mut out).ok_or(bad)?;
    if dec.len() != N || &out[..2] != b"Ed" {
        return Err(bad);
    }
    Ok((comment, out))
}

/// Parses a signify/minisign public-key file.
pub fn parse_public(text: &[u8]) -> Result<PublicKey> {
    let (_, raw) = decode_file::<42>(text, msg!("not a signify/minisign Ed25519 public key file"))?;
    let mut id = [0u8; 8];
    id.copy_from_slice(&raw[2..10]);
    let mut key = [0u8; 32];
    key.copy_from_slice(&raw[10..42]);
    // Refuse a key that can never verify anything (not a point, or a point of
    // small order); it is a configuration error, not a bundle problem.
    ed25519_compact::PublicKey::new(key)
        .validate()
        .map_err(|_| {
            Error::KeyFile(msg!(
                "public key is not a valid Ed25519 point (weak or malformed key)"
            ))
        })?;
    Ok(PublicKey { id, key })
}

/// Parses a signify secret-key file. Only unencrypted keys (`signify -G -n`,
/// `klpctl keygen`) are supported.
pub fn parse_secret(text: &[u8]) -> Result<SecretKey> {
    let (_, raw) = decode_file::<104>(text, msg!("not a signify Ed25519 secret key file"))?;
    if &raw[2..4] != b"BK" {
        return Err(Error::KeyFile(msg!("secret key uses an unknown KDF")));
    }
    if raw[4..8] != [0, 0, 0, 0] {
        return Err(Error::KeyFile(msg!(
            "secret key is passphrase-protected; klpctl needs an unencrypted key (signify -G -n)"
        )));
    }
    let mut key = [0u8; 64];
    key.copy_from_slice(&raw[40..104]);
    let sum = ed25519_compact::sha512::Hash::hash(key);
    if sum[..8] != raw[24..32] {
        return Err(Error::KeyFile(msg!(
            "secret key checksum mismatch (corrupted key file)"
        )));
    }
    // The stored public half must be the one the seed derives.
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&key[..32]);
    let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
    if kp.sk[..] != key[..] {
        return Err(Error::KeyFile(msg!(
            "secret key is inconsistent (public half does not match seed)"
        )));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&raw[32..40]);
    Ok(SecretKey { id, key })
}

/// Parses a signify signature file (detached, not embedded).
pub fn parse_signature(text: &[u8]) -> Result<Signature> {
    let (_, raw) = decode_file::<74>(text, msg!("not a signify Ed25519 signature file"))?;
    let mut key_id = [0u8; 8];
    key_id.copy_from_slice(&raw[2..10]);
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&raw[10..74]);
    Ok(Signature { key_id, sig })
}

impl SecretKey {
    /// Makes a new key pair from 32 bytes of seed and 8 bytes of key id.
    pub fn from_seed(seed: [u8; 32], id: KeyId) -> SecretKey {
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
        SecretKey { id, key: *kp.sk }
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.key[32..]);
        PublicKey { id: self.id, key }
    }

    /// Signs `msg` deterministically (RFC 8032), as signify does.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        let sk = ed25519_compact::SecretKey::new(self.key);
        Signature {
            key_id: self.id,
            sig: *sk.sign(msg, None),
        }
    }
}

/// Writes `untrusted comment: <comment>\n<base64>\n` into `out`.
fn encode_file<'o>(comment: &[&[u8]], raw: &[u8], out: &'o mut [u8]) -> Result<&'o [u8]> {
    let overflow = Error::Usage(msg!("comment too long"));
    let mut n = 0;
    let mut put = |bytes: &[u8], out: &mut [u8]| -> Result<()> {
        out.get_mut(n..n + bytes.len())
            .ok_or(overflow)?
            .copy_from_slice(bytes);
        n += bytes.len();
        Ok(())
    };
    put(COMMENT_PREFIX, out)?;
    for part in comment {
        put(part, out)?;
    }
    put(b"\n", out)?;
    let mut b = [0u8; 140];
    let enc = codec::b64_encode(raw, &mut b).ok_or(Error::Internal(msg!("base64 buffer")))?;
    put(enc, out)?;
    put(b"\n", out)?;
    Ok(&out[..n])
}

/// Checks a user-supplied key comment: one line, printable, bounded.
pub fn check_comment(c: &[u8]) -> Result<()> {
    if c.len() > MAX_COMMENT - 16 || c.iter().any(|&x| x < 0x20 || x == 0x7f) {
        return Err(Error::Usage(msg!(
            "-c COMMENT must be one printable line of at most 1000 bytes"
        )));
    }
    Ok(())
}

impl PublicKey {
    /// The public-key file contents.
    pub fn to_file<'o>(&self, comment: &[u8], out: &'o mut [u8]) -> Result<&'o [u8]> {
        let mut raw = [0u8; 42];
        raw[..2].copy_from_slice(b"Ed");
        raw[2..10].copy_from_slice(&self.id);
        raw[10..].copy_from_slice(&self.key);
        encode_file(&[comment, b" public key"], &raw, out)
    }
}

impl SecretKey {
    /// The unencrypted secret-key file contents (`kdfrounds` 0, zero salt).
    pub fn to_file<'o>(&self, comment: &[u8], out: &'o mut [u8]) -> Result<&'o [u8]> {
        let mut raw = [0u8; 104];
        raw[..4].copy_from_slice(b"EdBK");
        let sum = ed25519_compact::sha512::Hash::hash(self.key);
        raw[24..32].copy_from_slice(&sum[..8]);
        raw[32..40].copy_from_slice(&self.id);
        raw[40..].copy_from_slice(&self.key);
        encode_file(&[comment, b" secret key"], &raw, out)
    }
}

impl Signature {
    /// The detached signify signature-file contents.
    pub fn to_file<'o>(&self, comment: &[u8], out: &'o mut [u8]) -> Result<&'o [u8]> {
        let mut raw = [0u8; 74];
        raw[..2].copy_from_slice(b"Ed");
        raw[2..10].copy_from_slice(&self.key_id);
        raw[10..].copy_from_slice(&self.sig);
        encode_file(&[comment], &raw, out)
    }
}

/// The set of trusted keys and how many must agree.
pub struct Keyring {
    /// Distinct trusted keys.
    pub keys: heapless::Vec<PublicKey, MAX_KEYS>,
    /// Distinct trusted signatures needed to accept a bundle (at least 1).
    pub threshold: u8,
}

/// What happened to one signature during verification.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SigStatus {
    /// Made by a trusted key and valid.
    Valid,
    /// A second valid signature by a key already counted.
    Duplicate,
    /// The key id is not in the keyring; ignored.
    Untrusted,
    /// Names a trusted key but was not checked, because too few trusted
    /// keys signed for the threshold to be met anyway.
    Unchecked,
    /// Names a trusted key and does not verify: tampering.
    Invalid,
}

impl SigStatus {
    /// The word used in output.
    pub fn word(self) -> &'static str {
        match self {
            SigStatus::Valid => "valid",
            SigStatus::Duplicate => "duplicate",
            SigStatus::Untrusted => "untrusted",
            SigStatus::Unchecked => "unchecked",
            SigStatus::Invalid => "invalid",
        }
    }
}

/// The outcome of checking a bundle's signatures against a keyring.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// One entry per signature in the bundle, in order.
    pub sigs: heapless::Vec<(KeyId, SigStatus), 4>,
    /// How many distinct trusted keys signed validly.
    pub valid: u8,
    /// How many distinct trusted keys are needed.
    pub threshold: u8,
}

impl Verdict {
    /// Accept or reject: any invalid trusted signature rejects, otherwise
    /// the distinct valid count must reach the threshold.
    pub fn result(&self) -> Result<()> {
        if self.sigs.iter().any(|s| s.1 == SigStatus::Invalid) {
            Err(Error::BadSignature)
        } else if self.valid < self.threshold {
            Err(Error::NotEnoughSignatures)
        } else {
            Ok(())
        }
    }
}

impl Keyring {
    /// An empty keyring with the given threshold.
    pub fn new(threshold: u8) -> Keyring {
        Keyring {
            keys: heapless::Vec::new(),
            threshold: threshold.max(1),
        }
    }

    /// Adds a key; a key already present is ignored. A keyring is full at
    /// [`MAX_KEYS`].
    pub fn add(&mut self, k: PublicKey) -> Result<()> {
        if self.keys.iter().any(|x| x.id == k.id && x.key == k.key) {
            return Ok(());
        }
        if self.keys.iter().any(|x| x.id == k.id) {
            return Err(Error::KeyFile(msg!(
                "two different trusted keys share one key id"
            )));
        }
        self.keys
            .push(k)
            .map_err(|_| Error::KeyFile(msg!("too many trusted keys (at most 16)")))
    }

    fn find(&self, id: &KeyId) -> Option<&PublicKey> {
        self.keys.iter().find(|k| &k.id == id)
    }

    /// Checks `sigs` (at most 4) over `msg`. Cheap checks first: if fewer
    /// distinct trusted key ids appear than the threshold needs, no curve
    /// arithmetic is done at all.
    pub fn check(&self, msg: &[u8], sigs: &[Signature]) -> Verdict {
        let mut v = Verdict {
            sigs: heapless::Vec::new(),
            valid: 0,
            threshold: self.threshold,
        };
        let claimed = sigs
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                self.find(&s.key_id).is_some() && !sigs[..*i].iter().any(|p| p.key_id == s.key_id)
            })
            .count();
        for s in sigs.iter().take(4) {
            let status = match self.find(&s.key_id) {
                None => SigStatus::Untrusted,
                Some(_) if claimed < self.threshold as usize => SigStatus::Unchecked,
                Some(k) => {
                    let pk = ed25519_compact::PublicKey::new(k.key);
                    let sig = ed25519_compact::Signature::new(s.sig);
                    if pk.verify(msg, &sig).is_err() {
                        SigStatus::Invalid
                    } else if v
                        .sigs
                        .iter()
                        .any(|(id, st)| id == &s.key_id && *st == SigStatus::Valid)
                    {
                        SigStatus::Duplicate
                    } else {
                        v.valid += 1;
                        SigStatus::Valid
                    }
                }
            };
            // Cannot fail: a bundle holds at most 4 signatures (MAX_SIGS).
            let _ = v.sigs.push((s.key_id, status));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32], [n; 8])
    }

    fn ring(keys: &[&SecretKey], threshold: u8) -> Keyring {
        let mut r = Keyring::new(threshold);
        for k in keys {
            r.add(k.public()).unwrap();
        }
        r
    }

    #[test]
    fn secret_and_public_files_round_trip() {
        let k = key(7);
        let mut buf = [0u8; 400];
        let f = k.to_file(b"test", &mut buf).unwrap().to_vec();
        assert!(f.starts_with(b"untrusted comment: test secret key\n"));
        let back = parse_secret(&f).unwrap();
        assert_eq!(back.key, k.key);
        assert_eq!(back.id, k.id);
        let p = k.public().to_file(b"test", &mut buf).unwrap().to_vec();
        assert_eq!(parse_public(&p).unwrap(), k.public());
    }

    #[test]
    fn secret_key_checksum_is_checked() {
        let mut buf = [0u8; 400];
        let f = key(7).to_file(b"x", &mut buf).unwrap().to_vec();
        let text = core::str::from_utf8(&f).unwrap();
        let b64 = text.lines().nth(1).unwrap().as_bytes();
        let mut raw = [0u8; 104];
        codec::b64_decode(b64, &mut raw).unwrap();
        raw[24] ^= 1;
        let mut enc = [0u8; 140];
        let enc = codec::b64_encode(&raw, &mut enc).unwrap();
        let mut bad = b"untrusted comment: x\n".to_vec();
        bad.extend_from_slice(enc);
        assert_eq!(
            parse_secret(&bad).err(),
            Some(Error::KeyFile(msg!(
                "secret key checksum mismatch (corrupted key file)"
            )))
        );
    }

    #[test]
    fn encrypted_secret_key_is_refused() {
        let mut raw = [0u8; 104];
        raw[..4].copy_from_slice(b"EdBK");
        raw[7] = 42;
        let mut enc = [0u8; 140];
        let enc = codec::b64_encode(&raw, &mut enc).unwrap();
        let mut f = b"untrusted comment: x\n".to_vec();
        f.extend_from_slice(enc);
        assert!(
            matches!(parse_secret(&f), Err(Error::KeyFile(m)) if m.text().contains("passphrase"))
        );
    }

    #[test]
    fn public_key_file_rejects_garbage() {
        assert!(parse_public(b"").is_err());
        assert!(parse_public(b"untrusted comment: x\n").is_err());
        assert!(parse_public(b"comment: x\nRWQ=\n").is_err());
        // A minisign key id/alg prefix other than Ed.
        let mut raw = [0u8; 42];
        raw[..2].copy_from_slice(b"ED");
        let mut enc = [0u8; 80];
        let enc = codec::b64_encode(&raw, &mut enc).unwrap();
        let mut f = b"untrusted comment: x\n".to_vec();
        f.extend_from_slice(enc);
        assert!(parse_public(&f).is_err());
    }

    #[test]
    fn small_order_public_key_is_refused() {
        // The identity point (0, 1) encodes as 01 00 .. 00: small order.
        let mut raw = [0u8; 42];
        raw[..2].copy_from_slice(b"Ed");
        raw[10] = 1;
        let mut enc = [0u8; 80];
        let enc = codec::b64_encode(&raw, &mut enc).unwrap();
        let mut f = b"untrusted comment: weak\n".to_vec();
        f.extend_from_slice(enc);
        f.push(b'\n');
        assert!(matches!(parse_public(&f), Err(Error::KeyFile(m)) if m.text().contains("weak")));
    }

    #[test]
    fn signature_file_round_trip() {
        let s = key(3).sign(b"manifest");
        let mut buf = [0u8; 300];
        let f = s.to_file(b"verify with x.pub", &mut buf).unwrap().to_vec();
        assert_eq!(parse_signature(&f).unwrap(), s);
        assert!(parse_signature(&f[..f.len() - 3]).is_err());
    }

    #[test]
    fn threshold_counts_distinct_trusted_keys() {
        let (a, b, c, d) = (key(1), key(2), key(3), key(4));
        let r = ring(&[&a, &b, &c], 2);
        let m = b"{}";
        // One trusted signature is not enough for 2-of-3, and nothing is
        // even checked.
        let v = r.check(m, &[a.sign(m)]);
        assert_eq!(v.result(), Err(Error::NotEnoughSignatures));
        assert_eq!(v.sigs[0].1, SigStatus::Unchecked);
        // The same key twice counts once.
        assert_eq!(
            r.check(m, &[a.sign(m), a.sign(m)]).result(),
            Err(Error::NotEnoughSignatures)
        );
        // An untrusted key does not count but is reported.
        let v = r.check(m, &[a.sign(m), d.sign(m)]);
        assert_eq!(v.result(), Err(Error::NotEnoughSignatures));
        assert_eq!(v.sigs[1].1, SigStatus::Untrusted);
        let v = r.check(m, &[a.sign(m), d.sign(m), c.sign(m), a.sign(m)]);
        assert_eq!(v.result(), Ok(()));
        assert_eq!(v.valid, 2);
        let _ = &b;
        assert_eq!(
            v.sigs.iter().map(|x| x.1).collect::<Vec<_>>(),
            [
                SigStatus::Valid,
                SigStatus::Untrusted,
                SigStatus::Valid,
                SigStatus::Duplicate
            ]
        );
    }

    #[test]
    fn a_bad_trusted_signature_rejects() {
        let (a, b) = (key(1), key(2));
        let r = ring(&[&a, &b], 1);
        let m = b"{\"a\":1}";
        let mut bad = b.sign(m);
        bad.sig[5] ^= 0x10;
        assert_eq!(
            r.check(m, &[a.sign(m), bad]).result(),
            Err(Error::BadSignature)
        );
        assert_eq!(
            r.check(b"{\"a\":2}", &[a.sign(m)]).result(),
            Err(Error::BadSignature)
        );
        assert_eq!(r.check(m, &[a.sign(m)]).result(), Ok(()));
    }

    #[test]
    fn non_canonical_s_is_rejected() {
        // s + L is the same scalar but not canonical; strict Ed25519 refuses.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let a = key(9);
        let r = ring(&[&a], 1);
        let m = b"msg";
        let mut s = a.sign(m);
        let mut carry = 0u16;
        for (b, l) in s.sig[32..].iter_mut().zip(L) {
            let v = *b as u16 + l as u16 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
        assert_eq!(r.check(m, &[s]).result(), Err(Error::BadSignature));
    }

    #[test]
    fn keyring_rejects_conflicting_ids() {
        let mut r = Keyring::new(1);
        r.add(key(1).public()).unwrap();
        r.add(key(1).public()).unwrap();
        assert_eq!(r.keys.len(), 1);
        let mut other = key(2).public();
        other.id = key(1).id;
        assert!(r.add(other).is_err());
    }
}
