//! Everything klpctl does to an untrusted bundle before trusting it, on
//! arbitrary bytes: the container reader, the unverified manifest, signature
//! checks against a fixed keyring, the payload digest; and the manifest
//! parser on the raw input, which must only accept canonical manifests.
#![no_main]

use klpctl::files::Source;
use klpctl::trust::bundle::{self, HEADER, Header};
use klpctl::trust::keys::{self, Keyring};
use klpctl::trust::manifest::{self, MAX_MANIFEST};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The TEST ONLY vector key, so seeds packed with docs/vectors/test.sec get
/// past the signature check and reach the manifest and payload checks.
fn ring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        let key = keys::parse_public(include_bytes!("../../docs/vectors/keys/test.pub"))
            .expect("docs/vectors/keys/test.pub must parse");
        let mut r = Keyring::new(1);
        r.add(key).expect("empty keyring has room");
        r
    })
}

/// Whatever the manifest parser accepts must be the canonical form of what
/// it returns: writing it back gives the same bytes, and parsing those gives
/// the same manifest. Otherwise one signed manifest would have several
/// spellings.
fn manifest_round_trip(bytes: &[u8]) {
    let Ok(m) = manifest::parse(bytes) else { return };
    let mut out = [0u8; MAX_MANIFEST];
    let written = m.write(&mut out).expect("a parsed manifest fits when written back");
    assert_eq!(written, bytes, "manifest::parse accepted a non-canonical manifest");
    assert_eq!(manifest::parse(written).as_ref(), Ok(&m));
}

fuzz_target!(|data: &[u8]| {
    manifest_round_trip(data);

    let src: &[u8] = data;
    let mut mbuf = [0u8; MAX_MANIFEST];
    let Ok(u) = bundle::read(&src, &mut mbuf) else { return };
    // A bundle that reads is exactly as long as its header says, and its
    // header is the canonical encoding of what was parsed.
    assert_eq!(u.header.total_len(), src.size());
    assert_eq!(u.sigs.len(), u.header.sig_count);
    let mut h = [0u8; HEADER];
    h.copy_from_slice(&data[..HEADER]);
    assert_eq!(Header::parse(&h).map(|p| p.to_bytes()), Ok(h));
    manifest_round_trip(u.manifest);
    if let Ok(m) = u.manifest_unverified() {
        assert_eq!(m.payload_size, u.header.payload_len);
    }

    let n = u.sigs.len();
    let (verdict, signed) = u.authenticate(ring());
    assert_eq!(verdict.sigs.len(), n);
    assert!(verdict.valid as usize <= n);
    let Ok(s) = signed else { return };
    // Accepted means the verdict accepts too.
    assert_eq!(verdict.result(), Ok(()));
    assert!(s.verdict.valid >= 1);
    let _ = s.check_payload(&src);
});
