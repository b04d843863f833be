//! Key and signature files (signify format) and the strict base64 and hex
//! codecs under them, on arbitrary bytes.
#![no_main]

use klpctl::codec;
use klpctl::trust::keys::{self, Keyring};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = keys::parse_public(data) {
        // A key that parses writes back to a file that parses to it.
        let mut buf = [0u8; 1300];
        let f = k.to_file(b"fuzz", &mut buf).expect("short comment fits");
        assert_eq!(keys::parse_public(f), Ok(k));
    }
    if let Ok(sk) = keys::parse_secret(data) {
        // A secret key that parses signs what its public half verifies.
        let mut r = Keyring::new(1);
        r.add(sk.public()).expect("empty keyring has room");
        let sig = sk.sign(data);
        assert_eq!(r.check(data, &[sig]).result(), Ok(()));
    }
    if let Ok(s) = keys::parse_signature(data) {
        let mut buf = [0u8; 1300];
        let f = s.to_file(b"fuzz", &mut buf).expect("short comment fits");
        assert_eq!(keys::parse_signature(f), Ok(s));
    }

    // The codecs are strict: whatever decodes is the canonical encoding of
    // what it decoded to (hex in either case).
    let mut dec = [0u8; 1024];
    let mut enc = [0u8; 2048];
    if let Some(d) = codec::b64_decode(data, &mut dec) {
        assert_eq!(codec::b64_encode(d, &mut enc), Some(data));
    }
    if let Some(d) = codec::hex_decode(data, &mut dec) {
        let e = codec::hex_encode(d, &mut enc).expect("twice the decoded length fits");
        assert!(e.eq_ignore_ascii_case(data));
    }
});
