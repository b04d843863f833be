//! Host integration tests: run the static musl `klpctl` binary and assert
//! the exact stdout, stderr and exit code of the trust commands (keygen,
//! pack, manifest, attach, sign, verify, info), and of what the kernel
//! commands do before they touch the kernel. One module per command or
//! topic; this file holds what they share.
//!
//! Every refused input is also shown to have changed nothing: the test
//! directory is snapshotted before the command and compared after it, so a
//! modified bundle, a half-written output or a `.klpctl-tmp` leftover fails.
//!
//! The binary is `$KLPCTL_BIN` or a release build for
//! x86_64-unknown-linux-musl made once per test process. The threshold test
//! builds a second binary with `KLPCTL_THRESHOLD=2` and three embedded keys
//! into `target/itest-threshold`. OpenBSD `signify-openbsd` and coreutils
//! `sha256sum` are required; without them the tests that use them fail.

#[path = "../common/mod.rs"]
mod common;

mod adversarial;
mod builds;
mod corpus;
mod escapes;
mod exit_codes;
mod guard;
mod help;
mod hostile;
mod install;
mod interop;
mod kernel;
mod keygen;
mod pack;
mod replace;
mod sign;
mod statefuzz;
mod status;
mod switches;
mod tamper;
mod vectors;
mod verify;

use common::*;

const NOT_ENOUGH: &str = "bundle rejected: not enough distinct trusted keys signed it";
const BAD_SIG: &str = "bundle rejected: a trusted key's signature does not verify";
const DIGEST: &str = "bundle rejected: payload does not match the SHA-256 in the signed manifest";
const TRUNCATED: &str = "bundle rejected: file is truncated";
const MANIFEST_JSON: &str = "manifest JSON: malformed, an unknown, duplicate or missing field, or too many cves or products";
const NOT_CANONICAL: &str = "manifest is not canonical";

/// `klpctl pack m.ko -o OUT --stream s --version 1 EXTRA...` in `d`.
fn pack_m(d: &TempDir, out: &str, extra: &[&str]) -> Run {
    let mut args = vec!["pack", "m.ko", "-o", out, "--stream", "s", "--version", "1"];
    args.extend_from_slice(extra);
    d.klpctl(&args)
}

/// Makes `NAME.pub` and `NAME.sec` with `klpctl keygen`; returns the key id.
fn keygen(dir: &TempDir, name: &str) -> String {
    let r = dir.klpctl(&[
        "keygen",
        "-p",
        &format!("{name}.pub"),
        "-s",
        &format!("{name}.sec"),
    ]);
    r.code(0);
    assert_eq!(r.err(), "");
    let id = r
        .out()
        .strip_prefix("key id ")
        .and_then(|s| s.strip_suffix('\n'))
        .expect("key id line");
    assert_eq!(id, key_id_hex(&dir.read_text(&format!("{name}.pub"))));
    id.to_owned()
}

/// A directory with key `k` (`k.pub`, `k.sec`, and `ring/k.pub` as the
/// keyring), the standard livepatch module `m.ko`, and `b.klp` packed from
/// it and signed by `k`.
struct Setup {
    dir: TempDir,
    key: String,
}

fn setup() -> Setup {
    let dir = TempDir::new();
    let key = keygen(&dir, "k");
    dir.mkdir("ring");
    dir.copy("k.pub", "ring/k.pub");
    dir.write("m.ko", livepatch_ko());
    dir.klpctl(&[
        "pack",
        "m.ko",
        "-o",
        "b.klp",
        "--stream",
        "s",
        "--version",
        "1",
        "-s",
        "k.sec",
        "--created",
        "1700000000",
    ])
    .expect(
        0,
        &format!("packed {MOD_NAME} stream s version 1 for {RELEASE} (1 signature)\n"),
        "",
    );
    Setup { dir, key }
}

/// What `verify` prints on stderr before the error line once signatures
/// were examined.
fn verdict(valid: usize, threshold: usize, sigs: &[(&str, &str)]) -> String {
    let mut s =
        format!("  signatures: {valid} valid distinct trusted key(s), threshold {threshold}\n");
    for (id, status) in sigs {
        s += &format!("    key {id} {status}\n");
    }
    s
}

/// The canonical manifest klpctl would write for `payload` with the
/// standard module and default options.
fn canonical_manifest(payload: &[u8]) -> String {
    format!(
        concat!(
            r#"{{"format":1,"name":"{}","stream":"s","version":1,"release":"{}","arch":"x86_64","replace":false,"#,
            r#""cves":[],"description":"","created":1700000000,"payload_size":{},"payload_sha256":"{}"}}"#
        ),
        MOD_NAME,
        RELEASE,
        payload.len(),
        sha256_hex(payload)
    )
}

const DESCRIPTION: &str = r#"fix "x" \ y, café"#;
const DESCRIPTION_STORED: &str = r#"fix \"x\" \\ y, café"#;
const BUILD_ID: &str = "00112233445566778899aabbccddeeff00112233";

/// Packs `m.ko` with every manifest option set.
fn pack_full(s: &Setup) {
    s.dir
        .klpctl(&[
            "pack",
            "m.ko",
            "-o",
            "full.klp",
            "--stream",
            "acme.live-1",
            "--version",
            "7",
            "--kernel-release",
            RELEASE,
            "--kernel-build-id",
            BUILD_ID,
            "--arch",
            "x86_64",
            "--replace",
            "--cve",
            "CVE-2024-1234",
            "--cve",
            "RHSA:2025.01",
            "--description",
            DESCRIPTION,
            "--created",
            "1764300000",
            "-s",
            "k.sec",
        ])
        .expect(
            0,
            &format!(
                "packed {MOD_NAME} stream acme.live-1 version 7 for {RELEASE} (1 signature)\n"
            ),
            "",
        );
}
