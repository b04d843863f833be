//! Embeds the trusted public keys at build time.
//!
//! `KLPCTL_TRUSTED_KEYS` is a `:`-separated list of signify/minisign `.pub`
//! files; `KLPCTL_THRESHOLD` (default 1) is how many distinct trusted keys
//! must sign a bundle. The result is `$OUT_DIR/trusted_keys.rs`, included by
//! `src/keys.rs`. A malformed key fails the build: a device must never ship
//! with a key it cannot use.

#[path = "src/codec.rs"]
#[allow(dead_code)]
mod codec;

use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-env-changed=KLPCTL_TRUSTED_KEYS");
    println!("cargo:rerun-if-env-changed=KLPCTL_THRESHOLD");
    println!("cargo:rerun-if-changed=src/codec.rs");
    let mut keys = Vec::new();
    if let Ok(list) = std::env::var("KLPCTL_TRUSTED_KEYS") {
        for path in list.split(':').filter(|p| !p.is_empty()) {
            println!("cargo:rerun-if-changed={path}");
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("KLPCTL_TRUSTED_KEYS: {path}: {e}"));
            let line = text
                .lines()
                .nth(1)
                .filter(|_| text.starts_with("untrusted comment: "))
                .unwrap_or_else(|| panic!("{path}: not a signify/minisign public key file"));
            let mut raw = [0u8; 42];
            let ok = codec::b64_decode(line.as_bytes(), &mut raw).map(|d| d.len()) == Some(42)
                && &raw[..2] == b"Ed";
            assert!(ok, "{path}: not an Ed25519 signify/minisign public key");
            let (id, key) = (raw[2..10].to_vec(), raw[10..42].to_vec());
            if !keys
                .iter()
                .any(|(i, k): &(Vec<u8>, Vec<u8>)| i == &id && k == &key)
            {
                keys.push((id, key));
            }
        }
    }
    assert!(keys.len() <= 16, "KLPCTL_TRUSTED_KEYS: at most 16 keys");
    let threshold: u8 = match std::env::var("KLPCTL_THRESHOLD") {
        Ok(t) => t.parse().expect("KLPCTL_THRESHOLD must be a number 1..=16"),
        Err(_) => 1,
    };
    assert!(
        (1..=16).contains(&threshold),
        "KLPCTL_THRESHOLD must be 1..=16"
    );
    assert!(
        keys.is_empty()
            || threshold as usize <= keys.len()
            || cfg!(not(feature = "no-runtime-keyring")),
        "KLPCTL_THRESHOLD exceeds the number of embedded keys and there is no runtime keyring"
    );
    let mut out = String::from("/// Keys embedded by build.rs: (key id, Ed25519 public key).\n");
    out.push_str("pub const EMBEDDED_KEYS: &[([u8; 8], [u8; 32])] = &[\n");
    for (id, key) in &keys {
        writeln!(out, "    ({id:?}, {key:?}),").unwrap();
    }
    out.push_str("];\n/// Distinct trusted signatures needed, from KLPCTL_THRESHOLD.\n");
    writeln!(out, "pub const THRESHOLD: u8 = {threshold};").unwrap();
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("trusted_keys.rs"), out).unwrap();
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl") {
        no_unwind_tables(&out_dir);
        link_with_rust_lld();
    }
}

/// Links the static musl binary with the LLD that ships with the pinned
/// Rust toolchain (the C compiler still drives the link, for both x86_64 and
/// aarch64): it folds functions whose code came out identical and merges
/// string tails (the flags are in `.cargo/config.toml`). Being the
/// toolchain's own, it needs no package and moves only with the pin.
fn link_with_rust_lld() {
    let rustc = std::env::var("RUSTC").unwrap();
    let out = std::process::Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    let sysroot = String::from_utf8(out.stdout).unwrap();
    let host = std::env::var("HOST").unwrap();
    // gcc-ld/ld.lld is the toolchain's wrapper around rust-lld; -B makes the
    // C compiler find it for -fuse-ld=lld.
    let dir = format!("{}/lib/rustlib/{host}/bin/gcc-ld", sysroot.trim());
    println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
    println!("cargo:rustc-link-arg-bins=-B{dir}");
}

/// The static musl binary is built with panic=abort and never unwinds, so
/// the unwind tables that the precompiled core objects carry are dead
/// weight (~13 KiB). This linker script keeps the linker's default script
/// (INSERT) and only discards `.eh_frame`, and the `.comment`
/// compiler-version notes nothing reads (strip keeps them).
fn no_unwind_tables(out_dir: &std::path::Path) {
    let script = out_dir.join("no-unwind.ld");
    let text = "SECTIONS\n{\n  /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) *(.comment) }\n}\nINSERT AFTER .text;\n";
    std::fs::write(&script, text).unwrap();
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
}
