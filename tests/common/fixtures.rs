//! What the tests build and inspect: the standard livepatch module, the
//! bundle layout, signify key and signature files, base64, hex, and
//! SHA-256 from coreutils.

use super::ko::{EM_X86_64, fake_ko, modinfo};
use std::process::{Command, Stdio};

/// The module name the standard test module carries.
pub const MOD_NAME: &str = "klp_itest";
/// The kernel release in the standard test module's vermagic.
pub const RELEASE: &str = "6.1.0-41-amd64";

/// A livepatch module for x86-64 named [`MOD_NAME`] built for [`RELEASE`].
pub fn livepatch_ko() -> Vec<u8> {
    let vermagic = format!("{RELEASE} SMP preempt mod_unload modversions ");
    fake_ko(&modinfo(MOD_NAME, &vermagic, true), EM_X86_64)
}

/// Bundle container constants (see the top of src/bundle.rs).
pub const HEADER: usize = 24;
/// Size of one signature record in a bundle.
pub const SIG_RECORD: usize = 72;

/// Where the sections of a bundle are, from its header.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Manifest length.
    pub manifest_len: usize,
    /// Signature count.
    pub sig_count: usize,
    /// Payload length.
    pub payload_len: usize,
}

impl Layout {
    /// Reads the header of a well-formed bundle.
    pub fn of(b: &[u8]) -> Layout {
        assert_eq!(&b[..8], b"KLPBNDL\0");
        assert_eq!(u16::from_le_bytes([b[8], b[9]]), 1);
        Layout {
            sig_count: u16::from_le_bytes([b[10], b[11]]) as usize,
            manifest_len: u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize,
            payload_len: u64::from_le_bytes(b[16..24].try_into().unwrap()) as usize,
        }
    }
    /// Offset of the first signature record.
    pub fn sigs_offset(&self) -> usize {
        HEADER + self.manifest_len
    }
    /// Offset of the payload.
    pub fn payload_offset(&self) -> usize {
        self.sigs_offset() + SIG_RECORD * self.sig_count
    }
    /// Exact file length.
    pub fn total(&self) -> usize {
        self.payload_offset() + self.payload_len
    }
}

/// The manifest bytes of a bundle.
pub fn manifest_of(b: &[u8]) -> &[u8] {
    let l = Layout::of(b);
    &b[HEADER..l.sigs_offset()]
}

/// The signature records of a bundle.
pub fn sig_records_of(b: &[u8]) -> Vec<[u8; SIG_RECORD]> {
    let l = Layout::of(b);
    (0..l.sig_count)
        .map(|i| {
            b[l.sigs_offset() + i * SIG_RECORD..][..SIG_RECORD]
                .try_into()
                .unwrap()
        })
        .collect()
}

/// Assembles a bundle from its parts, with a header that matches them.
pub fn build_bundle(manifest: &[u8], sigs: &[[u8; SIG_RECORD]], payload: &[u8]) -> Vec<u8> {
    let mut b = b"KLPBNDL\0".to_vec();
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&(sigs.len() as u16).to_le_bytes());
    b.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
    b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    b.extend_from_slice(manifest);
    for s in sigs {
        b.extend_from_slice(s);
    }
    b.extend_from_slice(payload);
    b
}

/// The decoded second line of a signify file (key or signature).
pub fn signify_payload(text: &str) -> Vec<u8> {
    let mut lines = text.lines();
    let comment = lines.next().expect("comment line");
    assert!(comment.starts_with("untrusted comment: "), "{text:?}");
    b64_decode(lines.next().expect("base64 line"))
}

/// The key id of a signify public or secret key file, or of a signature
/// file, as lowercase hex.
pub fn key_id_hex(text: &str) -> String {
    let raw = signify_payload(text);
    let id = match raw.len() {
        42 | 74 => &raw[2..10],
        104 => &raw[32..40],
        n => panic!("not a signify key or signature ({n} bytes)"),
    };
    hex(id)
}

/// A bundle signature record (key id ‖ signature) from a signify signature file.
pub fn sig_record(sig_file: &str) -> [u8; SIG_RECORD] {
    let raw = signify_payload(sig_file);
    assert_eq!(
        (raw.len(), &raw[..2]),
        (74, &b"Ed"[..]),
        "not a signify signature"
    );
    raw[2..].try_into().unwrap()
}

/// A signify signature file from a bundle signature record.
pub fn sig_file(record: &[u8; SIG_RECORD]) -> String {
    let mut raw = b"Ed".to_vec();
    raw.extend_from_slice(record);
    format!(
        "untrusted comment: signature from a klpctl bundle\n{}\n",
        b64_encode(&raw)
    )
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn b64_encode(data: &[u8]) -> String {
    let mut s = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            s.push(if i <= chunk.len() {
                B64[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    s
}

/// Decodes standard padded base64; panics on anything else.
pub fn b64_decode(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(4), "base64 length {}", s.len());
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for &c in chunk {
            let v = if c == b'=' {
                pad += 1;
                0
            } else {
                assert_eq!(pad, 0, "base64 data after padding");
                B64.iter()
                    .position(|&x| x == c)
                    .unwrap_or_else(|| panic!("bad base64 {c}")) as u32
            };
            n = n << 6 | v;
        }
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}

/// SHA-256 as lowercase hex, from coreutils `sha256sum`: an oracle that
/// shares no code with klpctl.
pub fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils) is required");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}
