//! Every exit code and its one-line message: one table of refused command
//! lines, each with its exit code and the exact line on stderr, run in one
//! directory that no row may change.
//!
//! Refusals whose setup is their point (a key that must not be overwritten,
//! a bundle that already holds four signatures, a passphrase-protected key)
//! stay with their topic.

use super::*;

/// `klpctl pack m.ko -o out.klp --stream s --version 1 EXTRA...`
fn pack<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "pack",
        "m.ko",
        "-o",
        "out.klp",
        "--stream",
        "s",
        "--version",
        "1",
    ];
    args.extend_from_slice(extra);
    args
}

/// `klpctl pack MODULE -o out.klp --stream s --version 1 --unsigned`
fn pack_mod(module: &str) -> Vec<&str> {
    vec![
        "pack",
        module,
        "-o",
        "out.klp",
        "--stream",
        "s",
        "--version",
        "1",
        "--unsigned",
    ]
}

/// The directory every row runs in: [`setup`]'s key `k`, keyring `ring`,
/// module `m.ko` and bundle `b.klp`, plus the inputs the rows refuse.
fn fixture() -> Setup {
    let s = setup();
    let d = &s.dir;
    // pack: modules pack refuses, and a secret key file that is not one.
    d.write(
        "plain.ko",
        fake_ko(
            format!("name=plain\0vermagic={RELEASE} SMP \0livepatch=N\0").as_bytes(),
            62,
        ),
    );
    d.write(
        "dash.ko",
        fake_ko(
            format!("livepatch=Y\0name=klp-dash\0vermagic={RELEASE} \0").as_bytes(),
            62,
        ),
    );
    d.write("nover.ko", fake_ko(b"livepatch=Y\0name=klp_nover\0", 62));
    d.write("empty.ko", b"");
    d.write("bad.sec", "untrusted comment: x\nAAAA\n");
    // attach: an unsigned bundle.
    pack_m(d, "u.klp", &["--unsigned", "--created", "1700000000"]).code(0);
    // sign and attach: a second key, a detached signature by `k`, and
    // bundles with an altered payload, cut short, with a byte too many, and
    // with a manifest format klpctl does not read.
    keygen(d, "k2");
    d.klpctl(&["sign", "b.klp", "-s", "k.sec", "-x", "k.sig"])
        .code(0);
    let good = d.read("b.klp");
    let l = Layout::of(&good);
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    d.write("bad.klp", &bad);
    d.write("short.klp", &good[..l.payload_offset()]);
    let mut long = good.clone();
    long.push(0);
    d.write("long.klp", &long);
    let m = canonical_manifest(&livepatch_ko()).replace("\"format\":1", "\"format\":2");
    d.write("f2.klp", build_bundle(m.as_bytes(), &[], &livepatch_ko()));
    // manifest: a truncated bundle.
    d.write("t.klp", &good[..good.len() - 1]);
    // verify and info: a garbled key, an empty keyring, and bundles that
    // are empty, not bundles, of another format version, with too many
    // signatures, and with an empty payload.
    d.write("garbage.sec", "untrusted comment: x\nnot base64 at all\n");
    d.write("empty.klp", b"");
    d.write("elf.klp", livepatch_ko());
    d.mkdir("empty-ring");
    let mut b = d.read("b.klp");
    b[8] = 2;
    d.write("v2.klp", &b);
    let mut b = d.read("b.klp");
    b[10] = 5;
    d.write("5sig.klp", &b);
    let mut b = d.read("b.klp");
    b[16..24].copy_from_slice(&0u64.to_le_bytes());
    d.write("p0.klp", &b);
    s
}

#[test]
fn every_exit_code_so_far() {
    let s = fixture();
    let d = &s.dir;
    // 0
    d.klpctl(&["verify", "b.klp", "--keyring", "ring"]).code(0);

    let c33 = "C".repeat(33);
    let c33_line = format!("klpctl: {c33}: --cve: 1-32 of [A-Za-z0-9._:-]");
    let quotes = "\"".repeat(513);
    let s65 = "s".repeat(65);
    let too_many_keys: Vec<&str> = [
        "pack",
        "m.ko",
        "-o",
        "x.klp",
        "--stream",
        "s",
        "--version",
        "1",
    ]
    .into_iter()
    .chain(["-s", "k.sec"].repeat(5))
    .collect();
    let rows: &[(&[&str], i32, &str)] = &[
        // keygen: usage errors create nothing.
        (
            &["keygen", "-p", "c.pub"],
            2,
            "klpctl: keygen needs -p KEY.pub and -s KEY.sec",
        ),
        (
            &["keygen", "-p", "c.pub", "-s", "c.sec", "-c", "two\nlines"],
            2,
            "klpctl: -c COMMENT must be one printable line of at most 1000 bytes",
        ),
        (
            &["keygen", "-p", "c.pub", "-s", "c.sec", "-x"],
            2,
            "klpctl: -x: unknown option",
        ),
        // pack
        (
            &pack_mod("plain.ko"),
            2,
            "klpctl: plain.ko: not a livepatch module (.modinfo has no livepatch=Y)",
        ),
        (
            &pack(&["--unsigned", "--kernel-release", "6.1.0-42-amd64"]),
            2,
            "klpctl: m.ko: module vermagic names a different kernel release than --kernel-release",
        ),
        (
            &pack(&["--unsigned", "--arch", "aarch64"]),
            2,
            "klpctl: m.ko: module ELF machine differs from --arch",
        ),
        (
            &pack(&[]),
            2,
            "klpctl: pack needs -s KEY.sec (or --unsigned to sign later with sign/attach)",
        ),
        (
            &pack(&["--unsigned", "--cve", "CVE 2024"]),
            2,
            "klpctl: CVE 2024: --cve: 1-32 of [A-Za-z0-9._:-]",
        ),
        (&pack(&["--unsigned", "--cve", &c33]), 2, &c33_line),
        (
            &pack(&["--unsigned", "--cve", "CVE-1\"]"]),
            2,
            "klpctl: CVE-1\"]: --cve: 1-32 of [A-Za-z0-9._:-]",
        ),
        (
            &pack(&[
                "--unsigned",
                "--product",
                "pkg:deb/debian/linux-image-6.12.1+deb12-amd64",
            ]),
            2,
            "klpctl: pkg:deb/debian/linux-image-6.12.1+deb12-amd64: --product: a pkg: or cpe: identifier of 5-256 URL characters; write '+' as %2B in a purl",
        ),
        (
            &pack(&["--unsigned", "--product", "https://example.com/x"]),
            2,
            "klpctl: https://example.com/x: --product: a pkg: or cpe: identifier of 5-256 URL characters; write '+' as %2B in a purl",
        ),
        (
            &pack(&["--unsigned", "--product", "pkg:a/b\"c"]),
            2,
            "klpctl: pkg:a/b\"c: --product: a pkg: or cpe: identifier of 5-256 URL characters; write '+' as %2B in a purl",
        ),
        (
            &pack(&["--unsigned", "--product", "pkg:a/b", "--product", "pkg:a/b"]),
            2,
            "klpctl: --product: at most 16, each given once",
        ),
        (
            &pack(&["--unsigned", "--description", "two\nlines"]),
            2,
            "klpctl: --description must not contain control characters",
        ),
        (
            &pack(&["--unsigned", "--description", &quotes]),
            2,
            "klpctl: --description is too long (1024 bytes escaped)",
        ),
        (
            &pack(&["--unsigned", "--kernel-build-id", "xyz"]),
            2,
            "klpctl: --kernel-build-id must be 2-64 hex digits",
        ),
        (
            &pack(&[
                "--unsigned",
                "--kernel-build-id",
                "00",
                "--kernel-build-id",
                "11",
            ]),
            2,
            "klpctl: give --kernel-build-id or --kernel-notes once",
        ),
        (
            &pack(&["-s", "bad.sec"]),
            2,
            "klpctl: bad.sec: not a signify Ed25519 secret key file",
        ),
        (
            &pack(&["-s", "k.pub"]),
            2,
            "klpctl: k.pub: not a signify Ed25519 secret key file",
        ),
        (
            &pack(&["-s", "missing.sec"]),
            1,
            "klpctl: missing.sec: cannot read secret key: ENOENT",
        ),
        (
            &pack(&["--unsigned", "--stream", ".hidden"]),
            2,
            "klpctl: --stream: 1-64 of [A-Za-z0-9._-], not starting with '.'",
        ),
        (
            &pack(&["--unsigned", "--stream", "a/b"]),
            2,
            "klpctl: --stream: 1-64 of [A-Za-z0-9._-], not starting with '.'",
        ),
        (
            &pack(&["--unsigned", "--stream", ""]),
            2,
            "klpctl: --stream: 1-64 of [A-Za-z0-9._-], not starting with '.'",
        ),
        (
            &pack(&["--unsigned", "--stream", &s65]),
            2,
            "klpctl: --stream: 1-64 of [A-Za-z0-9._-], not starting with '.'",
        ),
        (
            &pack(&["--unsigned", "--version", "-1"]),
            2,
            "klpctl: expected a non-negative decimal number",
        ),
        (
            &pack(&["--unsigned", "--version", "18446744073709551616"]),
            2,
            "klpctl: expected a non-negative decimal number",
        ),
        (
            &pack(&["--unsigned", "--bogus"]),
            2,
            "klpctl: --bogus: unknown option",
        ),
        (
            &pack(&["--unsigned", "extra.ko"]),
            2,
            "klpctl: extra.ko: unexpected argument",
        ),
        (
            &[
                "pack",
                "m.ko",
                "--stream",
                "s",
                "--version",
                "1",
                "--unsigned",
            ],
            2,
            "klpctl: pack needs MODULE.ko, -o BUNDLE, --stream S and --version N",
        ),
        (
            &pack_mod("dash.ko"),
            2,
            "klpctl: dash.ko: module name= is not a valid livepatch name ([A-Za-z0-9_], 1-55)",
        ),
        (
            &pack_mod("nover.ko"),
            2,
            "klpctl: nover.ko: module .modinfo has no vermagic=",
        ),
        (
            &pack_mod("empty.ko"),
            2,
            "klpctl: empty.ko: not a 64-bit little-endian ELF relocatable file (.ko)",
        ),
        (
            &pack_mod("k.pub"),
            2,
            "klpctl: k.pub: not a 64-bit little-endian ELF relocatable file (.ko)",
        ),
        (
            &pack_mod("missing.ko"),
            1,
            "klpctl: missing.ko: cannot open module: ENOENT",
        ),
        (&too_many_keys, 2, "klpctl: at most 4 -s keys"),
        // manifest reads structure only: a corrupt container is refused.
        (
            &["manifest", "t.klp"],
            3,
            &format!("klpctl: t.klp: {TRUNCATED}"),
        ),
        // attach
        (
            &["attach", "u.klp"],
            2,
            "klpctl: attach needs BUNDLE and SIGFILE",
        ),
        (
            &["attach", "u.klp", "k.sig", "more"],
            2,
            "klpctl: more: unexpected argument",
        ),
        (
            &["attach", "u.klp", "k.pub"],
            2,
            "klpctl: k.pub: not a signify Ed25519 signature file",
        ),
        (
            &["attach", "u.klp", "nope.sig"],
            1,
            "klpctl: nope.sig: cannot read signature file: ENOENT",
        ),
        // sign and attach refuse bad bundles without touching them. Payload
        // altered: sign refuses to vouch for it (the manifest is still fine).
        (
            &["sign", "bad.klp", "-s", "k2.sec"],
            3,
            &format!("klpctl: bad.klp: {DIGEST}"),
        ),
        (
            &["sign", "bad.klp", "-s", "k2.sec", "-x", "k2.sig"],
            3,
            &format!("klpctl: bad.klp: {DIGEST}"),
        ),
        // Structurally broken: both refuse.
        (
            &["sign", "short.klp", "-s", "k2.sec"],
            3,
            &format!("klpctl: short.klp: {TRUNCATED}"),
        ),
        (
            &["attach", "short.klp", "k.sig"],
            3,
            &format!("klpctl: short.klp: {TRUNCATED}"),
        ),
        (
            &["attach", "long.klp", "k.sig"],
            3,
            "klpctl: long.klp: bundle rejected: trailing bytes after the payload",
        ),
        // A manifest klpctl would not accept is not signed either.
        (
            &["sign", "f2.klp", "-s", "k2.sec"],
            3,
            "klpctl: f2.klp: manifest format unsupported (this klpctl reads format 1)",
        ),
        (
            &["attach", "f2.klp", "k.sig"],
            3,
            "klpctl: f2.klp: manifest format unsupported (this klpctl reads format 1)",
        ),
        // Bad key files and arguments.
        (
            &["sign", "bad.klp", "-s", "k.pub"],
            2,
            "klpctl: k.pub: not a signify Ed25519 secret key file",
        ),
        (&["sign", "b.klp"], 2, "klpctl: sign needs -s KEY.sec"),
        (
            &["sign", "-s", "k.sec"],
            2,
            "klpctl: missing BUNDLE argument",
        ),
        (
            &["sign", "nope.klp", "-s", "k.sec"],
            1,
            "klpctl: nope.klp: cannot open bundle: ENOENT",
        ),
        // 1: I/O
        (
            &["verify", "missing.klp", "--keyring", "ring"],
            1,
            "klpctl: missing.klp: cannot open bundle: ENOENT",
        ),
        (
            &["info", "missing.klp"],
            1,
            "klpctl: missing.klp: cannot open bundle: ENOENT",
        ),
        (
            &["verify", "b.klp", "--keyring", "no-ring"],
            1,
            "klpctl: no-ring: cannot open keyring directory: ENOENT",
        ),
        (
            &["verify", "ring", "--keyring", "ring"],
            1,
            "klpctl: ring: cannot read bundle: not a regular file",
        ),
        // 2: usage and bad key files
        (
            &["frobnicate"],
            2,
            "klpctl: frobnicate: unexpected argument",
        ),
        (&["vex", "--json"], 2, "klpctl: --json: unknown option"),
        (&["vex", "now"], 2, "klpctl: now: unexpected argument"),
        // An empty argument names nothing: the line has no empty subject.
        (&[""], 2, "klpctl: unexpected argument"),
        (&["info", "b.klp", ""], 2, "klpctl: unexpected argument"),
        (&["status", ""], 2, "klpctl: unexpected argument"),
        (&["disable", "a", ""], 2, "klpctl: unexpected argument"),
        (
            &["verify", "b.klp", "--frob"],
            2,
            "klpctl: --frob: unknown option",
        ),
        (
            &["verify", "--keyring", "ring"],
            2,
            "klpctl: missing BUNDLE argument",
        ),
        (
            &["verify", "b.klp", "--keyring"],
            2,
            "klpctl: an option is missing its value",
        ),
        (
            &["info", "b.klp", "c.klp"],
            2,
            "klpctl: c.klp: unexpected argument",
        ),
        (
            &["sign", "b.klp", "-s", "garbage.sec"],
            2,
            "klpctl: garbage.sec: not a signify Ed25519 secret key file",
        ),
        // 3: rejected
        (
            &["verify", "empty.klp", "--keyring", "ring"],
            3,
            &format!("klpctl: empty.klp: {TRUNCATED}"),
        ),
        (
            &["verify", "elf.klp", "--keyring", "ring"],
            3,
            "klpctl: elf.klp: bundle rejected: not a klpctl bundle (bad magic)",
        ),
        (
            &["info", "elf.klp"],
            3,
            "klpctl: elf.klp: bundle rejected: not a klpctl bundle (bad magic)",
        ),
        (
            &["verify", "b.klp", "--keyring", "empty-ring"],
            3,
            "klpctl: empty-ring: bundle rejected: no trusted keys",
        ),
        (
            &["verify", "v2.klp", "--keyring", "ring"],
            3,
            "klpctl: v2.klp: bundle rejected: unsupported bundle format version",
        ),
        (
            &["verify", "5sig.klp", "--keyring", "ring"],
            3,
            "klpctl: 5sig.klp: bundle rejected: more than 4 signatures",
        ),
        (
            &["verify", "p0.klp", "--keyring", "ring"],
            3,
            "klpctl: p0.klp: bundle rejected: payload length out of bounds (1..2^30)",
        ),
    ];
    for (args, code, stderr_line) in rows {
        d.klpctl_unchanged(args).fails(*code, stderr_line);
    }
}

/// Runs klpctl with `args` in `d`, its standard output `stdout`; returns
/// its exit code and what it said on stderr.
fn code_and_stderr(
    d: &TempDir,
    args: &[&str],
    stdout: impl Into<std::process::Stdio>,
) -> (Option<i32>, String) {
    let out = std::process::Command::new(klpctl_bin())
        .args(args)
        .current_dir(d.path())
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Output that cannot be written in full (standard output on a full
/// disk) is no success: exit 1, said on stderr. The same commands with
/// room for their output exit 0 and say nothing on stderr.
#[test]
fn output_lost_to_a_full_disk_is_not_a_success() {
    let d = TempDir::new();
    for args in [&["--help"][..], &["--version"], &["help"]] {
        for (sink, code, err) in [
            ("/dev/full", 1, "klpctl: cannot write standard output\n"),
            ("/dev/null", 0, ""),
        ] {
            assert_eq!(
                code_and_stderr(&d, args, std::fs::File::create(sink).unwrap()),
                (Some(code), err.to_string()),
                "klpctl {args:?} > {sink}"
            );
        }
    }
}

/// Standard output a pipe whose reader is gone (`klpctl ... | head -0`
/// once head has exited): the write fails with EPIPE, so the command exits
/// 1 and says so, as with a full disk; it is not killed by SIGPIPE
/// part-way through (an apply --dir between two bundles). A failing
/// command keeps its own code.
#[test]
fn output_to_a_closed_pipe_is_said_not_a_kill() {
    let d = TempDir::new();
    for (args, code, err) in [
        (&["--help"][..], 1, "klpctl: cannot write standard output\n"),
        (&["--version"], 1, "klpctl: cannot write standard output\n"),
        (
            &["verify", "b.klp", "--json", "--keyring", "."],
            3,
            "klpctl: .: bundle rejected: no trusted keys\n",
        ),
    ] {
        std::fs::write(d.path().join("b.klp"), b"x").unwrap();
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        assert_eq!(
            code_and_stderr(&d, args, writer),
            (Some(code), err.to_string()),
            "klpctl {args:?} | (closed)"
        );
    }
}
