//! Host integration tests: run the static musl `klpctl` binary and assert
//! the exact stdout, stderr and exit code of the trust commands (keygen,
//! pack, manifest, attach, sign, verify, info).
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

mod common;

use common::*;
use std::ffi::OsStr;

const NOT_ENOUGH: &str = "bundle rejected: not enough distinct trusted keys signed the manifest";
const BAD_SIG: &str =
    "bundle rejected: a signature by a trusted key does not verify (manifest or signature altered)";
const DIGEST: &str = "bundle rejected: payload does not match the SHA-256 in the signed manifest";
const TRUNCATED: &str = "bundle rejected: file is truncated";
const MANIFEST_JSON: &str =
    "manifest JSON is malformed, has an unknown, duplicate or missing field, or too many cves";
const NOT_CANONICAL: &str =
    "manifest is not canonical: fields in specification order, no whitespace, no null build_id";

/// Makes `NAME.pub` and `NAME.sec` with `klpctl keygen`; returns the key id.
/// `klpctl pack m.ko -o OUT --stream s --version 1 EXTRA...` in `d`.
fn pack_m(d: &TempDir, out: &str, extra: &[&str]) -> Run {
    let mut args = vec!["pack", "m.ko", "-o", out, "--stream", "s", "--version", "1"];
    args.extend_from_slice(extra);
    d.klpctl(&args)
}

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
        s += &format!("    key {id} {status}");
        if *status == "untrusted" {
            s += " (not in keyring, ignored)";
        }
        s += "\n";
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

// ------------------------------------------------------------ basics

#[test]
fn help_version_and_no_command() {
    let d = TempDir::new();
    let help = d.klpctl(&["--help"]);
    help.code(0);
    assert!(
        help.out()
            .starts_with("klpctl - verify signed livepatch bundles"),
        "{}",
        help.out()
    );
    assert!(
        help.out()
            .contains("exit codes: 0 ok, 1 internal/I-O error, 2 usage, 3 bundle rejected,")
    );
    assert_eq!(help.err(), "");
    d.klpctl(&["-h"]).expect(0, help.out(), "");
    d.klpctl(&["--version"])
        .expect(0, &format!("klpctl {}\n", env!("CARGO_PKG_VERSION")), "");
    // No command: the help goes to stderr, followed by the error line.
    d.klpctl_unchanged(&[])
        .expect(2, "", &format!("{}klpctl: no command given\n", help.out()));
}

// ------------------------------------------------------------ keygen

#[test]
fn keygen_writes_signify_key_files() {
    let d = TempDir::new();
    let r = d.klpctl(&["keygen", "-p", "a.pub", "-s", "a.sec", "-c", "release 2026"]);
    r.code(0);
    assert_eq!(r.err(), "");
    let id = r
        .out()
        .strip_prefix("key id ")
        .and_then(|s| s.strip_suffix('\n'))
        .unwrap()
        .to_owned();
    assert!(
        id.len() == 16
            && id
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{id}"
    );

    let mode = |n: &str| std::fs::metadata(d.join(n)).unwrap().permissions().mode() & 0o777;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode("a.sec"), 0o600, "secret key must be private");
    assert_eq!(mode("a.pub") & 0o600, 0o600);

    let public = d.read_text("a.pub");
    assert!(
        public.starts_with("untrusted comment: release 2026 public key\n"),
        "{public}"
    );
    assert!(public.ends_with('\n') && public.lines().count() == 2);
    let raw = signify_payload(&public);
    assert_eq!(
        (raw.len(), &raw[..2], hex(&raw[2..10])),
        (42, &b"Ed"[..], id.clone())
    );

    let secret = d.read_text("a.sec");
    assert!(
        secret.starts_with("untrusted comment: release 2026 secret key\n"),
        "{secret}"
    );
    let raw = signify_payload(&secret);
    assert_eq!(raw.len(), 104);
    assert_eq!(
        &raw[..4],
        b"EdBK",
        "Ed25519 with the bcrypt KDF name, as signify writes it"
    );
    assert_eq!(raw[4..8], [0, 0, 0, 0], "zero KDF rounds: unencrypted");
    assert_eq!(hex(&raw[32..40]), id);
    assert_eq!(
        raw[72..104],
        signify_payload(&public)[10..42],
        "public half of the secret key"
    );

    // The modes are klpctl's own, not the umask's: with umask 000 the
    // secret key is still 0600, and the public key is 0644.
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "umask 000 && exec \"$0\" \"$@\""])
        .arg(klpctl_bin())
        .args(["keygen", "-p", "u.pub", "-s", "u.sec"])
        .current_dir(d.path());
    run(cmd).code(0);
    assert_eq!((mode("u.sec"), mode("u.pub")), (0o600, 0o644));

    // Two keys never share an id or a key.
    let id2 = keygen(&d, "b");
    assert_ne!(id, id2);
    assert_ne!(
        signify_payload(&d.read_text("b.pub"))[10..],
        signify_payload(&public)[10..]
    );

    // Usage errors create nothing.
    d.klpctl_unchanged(&["keygen", "-p", "c.pub"])
        .fails(2, "klpctl: keygen needs -p KEY.pub and -s KEY.sec");
    d.klpctl_unchanged(&["keygen", "-p", "c.pub", "-s", "c.sec", "-c", "two\nlines"])
        .fails(
            2,
            "klpctl: -c COMMENT must be one printable line of at most 1000 bytes",
        );
    d.klpctl_unchanged(&["keygen", "-p", "c.pub", "-s", "c.sec", "-x"])
        .fails(2, "klpctl: -x: unknown option (see klpctl --help)");
}

#[test]
fn keygen_never_overwrites_a_key() {
    let d = TempDir::new();
    keygen(&d, "k");
    // Both exist: the secret key is tried first and refused.
    d.klpctl_unchanged(&["keygen", "-p", "k.pub", "-s", "k.sec"])
        .fails(
            1,
            "klpctl: k.sec: cannot create file (klpctl never overwrites keys): EEXIST",
        );
    // Only the secret key exists: nothing is created either.
    d.klpctl_unchanged(&["keygen", "-p", "new.pub", "-s", "k.sec"])
        .fails(
            1,
            "klpctl: k.sec: cannot create file (klpctl never overwrites keys): EEXIST",
        );
}

/// `keygen -p EXISTING.pub -s NEW.sec` exits 1 and leaves no NEW.sec behind:
/// never a secret key whose public half was not written.
#[test]
fn keygen_refusal_leaves_no_orphan_secret_key() {
    let d = TempDir::new();
    d.write("k.pub", "someone else's public key\n");
    d.klpctl_unchanged(&["keygen", "-p", "k.pub", "-s", "new.sec"])
        .fails(
            1,
            "klpctl: k.pub: cannot create file (klpctl never overwrites keys): EEXIST",
        );
}

// ------------------------------------------------------------ pack, verify, info, manifest

/// Builds `/sys/kernel/notes`-style content holding one GNU build-id note.
fn kernel_notes(build_id: &[u8]) -> Vec<u8> {
    let mut n = Vec::new();
    // An unrelated note first, as real kernels have (Xen, Linux notes).
    n.extend_from_slice(&6u32.to_le_bytes());
    n.extend_from_slice(&4u32.to_le_bytes());
    n.extend_from_slice(&1u32.to_le_bytes());
    n.extend_from_slice(b"Linux\0\0\0");
    n.extend_from_slice(&[1, 2, 3, 4]);
    n.extend_from_slice(&4u32.to_le_bytes());
    n.extend_from_slice(&(build_id.len() as u32).to_le_bytes());
    n.extend_from_slice(&3u32.to_le_bytes());
    n.extend_from_slice(b"GNU\0");
    n.extend_from_slice(build_id);
    n
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

#[test]
fn pack_verify_info_round_trip() {
    let s = setup();
    let d = &s.dir;
    pack_full(&s);
    let ko = livepatch_ko();
    let sha = sha256_hex(&ko);
    let details = format!(
        "  kernel:  {RELEASE} x86_64 build-id {BUILD_ID}\n  replace: yes (cumulative)\n  cves:    CVE-2024-1234 RHSA:2025.01\n  \
         description: {DESCRIPTION}\n  created: 1764300000\n  payload: {} bytes, sha256 {sha}\n",
        ko.len()
    );
    d.klpctl(&["verify", "full.klp", "--keyring", "ring"])
        .expect(
            0,
            &format!(
                "OK {MOD_NAME} stream acme.live-1 version 7\n{details}{}",
                verdict(1, 1, &[(&s.key, "valid")])
            ),
            "",
        );
    d.klpctl(&["info", "full.klp"]).expect(
        0,
        &format!(
            "UNVERIFIED {MOD_NAME} stream acme.live-1 version 7 (run klpctl verify to check signatures and payload)\n\
             {details}  signatures: 1\n    key {}\n",
            s.key
        ),
        "",
    );

    // The bundle is exactly header ‖ manifest ‖ signature ‖ module.
    let b = d.read("full.klp");
    let l = Layout::of(&b);
    assert_eq!(
        (l.sig_count, l.payload_len, l.total()),
        (1, ko.len(), b.len())
    );
    assert_eq!(&b[l.payload_offset()..], &ko[..]);

    // Defaults: no build-id, no replace, no cves, no description.
    d.klpctl(&["verify", "b.klp", "--keyring", "ring"]).expect(
        0,
        &format!(
            "OK {MOD_NAME} stream s version 1\n  kernel:  {RELEASE} x86_64\n  replace: no\n  created: 1700000000\n  \
             payload: {} bytes, sha256 {sha}\n{}",
            ko.len(),
            verdict(1, 1, &[(&s.key, "valid")])
        ),
        "",
    );

    // The build-id can come from a copy of /sys/kernel/notes instead.
    d.write("notes", kernel_notes(&[0xab; 20]));
    d.klpctl(&[
        "pack",
        "m.ko",
        "-o",
        "n.klp",
        "--stream",
        "s",
        "--version",
        "2",
        "--kernel-notes",
        "notes",
        "--unsigned",
    ])
    .expect(
        0,
        &format!("packed {MOD_NAME} stream s version 2 for {RELEASE} (0 signatures)\n"),
        "",
    );
    let info = d.klpctl(&["info", "n.klp"]);
    assert!(
        info.out().contains(&format!(
            "  kernel:  {RELEASE} x86_64 build-id {}\n",
            "ab".repeat(20)
        )),
        "{}",
        info.out()
    );
}

#[test]
fn verify_and_info_json() {
    let s = setup();
    let d = &s.dir;
    pack_full(&s);
    let ko = livepatch_ko();

    let check_manifest = |m: &Json| {
        assert_eq!(
            m.keys(),
            [
                "name",
                "stream",
                "version",
                "release",
                "build_id",
                "arch",
                "replace",
                "cves",
                "description",
                "created",
                "payload_size",
                "payload_sha256"
            ]
        );
        assert_eq!(m.get("name").str(), MOD_NAME);
        assert_eq!(m.get("stream").str(), "acme.live-1");
        assert_eq!(m.get("version").u64(), 7);
        assert_eq!(m.get("release").str(), RELEASE);
        assert_eq!(m.get("build_id").str(), BUILD_ID);
        assert_eq!(m.get("arch").str(), "x86_64");
        assert!(m.get("replace").bool());
        let cves: Vec<&str> = m.get("cves").arr().iter().map(Json::str).collect();
        assert_eq!(cves, ["CVE-2024-1234", "RHSA:2025.01"]);
        assert_eq!(
            m.get("description").str(),
            DESCRIPTION,
            "description must round-trip exactly"
        );
        assert_eq!(m.get("created").u64(), 1764300000);
        assert_eq!(m.get("payload_size").u64(), ko.len() as u64);
        assert_eq!(m.get("payload_sha256").str(), sha256_hex(&ko));
    };

    let r = d.klpctl(&["verify", "full.klp", "--keyring", "ring", "--json"]);
    r.code(0);
    assert_eq!(r.err(), "");
    assert!(
        r.out().ends_with("}\n") && r.out().lines().count() == 1,
        "one line of JSON: {}",
        r.out()
    );
    let v = Json::parse(r.out());
    assert_eq!(
        v.keys(),
        [
            "ok",
            "bundle",
            "manifest",
            "threshold",
            "valid_keys",
            "signatures"
        ]
    );
    assert!(v.get("ok").bool());
    assert_eq!(v.get("bundle").str(), "full.klp");
    check_manifest(v.get("manifest"));
    assert_eq!(v.get("threshold").u64(), 1);
    assert_eq!(v.get("valid_keys").u64(), 1);
    let sigs = v.get("signatures").arr();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].get("key_id").str(), s.key);
    assert_eq!(sigs[0].get("status").str(), "valid");

    let r = d.klpctl(&["info", "full.klp", "--json"]);
    r.code(0);
    assert_eq!(r.err(), "");
    let v = Json::parse(r.out());
    assert_eq!(v.keys(), ["verified", "bundle", "manifest", "signatures"]);
    assert!(!v.get("verified").bool());
    check_manifest(v.get("manifest"));
    assert_eq!(
        v.get("signatures"),
        &Json::Arr(vec![Json::Obj(vec![(
            "key_id".into(),
            Json::Str(s.key.clone())
        )])])
    );

    // Defaults come out as null build_id, empty cves and description.
    let v = Json::parse(d.klpctl(&["info", "b.klp", "--json"]).code(0).out());
    assert_eq!(v.get("manifest").get("build_id"), &Json::Null);
    assert_eq!(v.get("manifest").get("cves").arr(), []);
    assert_eq!(v.get("manifest").get("description").str(), "");

    // A rejected bundle under --json: the verdict on stdout as JSON, the
    // error line on stderr, exit 3.
    keygen(d, "other");
    d.mkdir("ring2");
    d.copy("other.pub", "ring2/other.pub");
    let before = d.snapshot();
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring2", "--json"]);
    assert_same(&before, &d.snapshot(), &r);
    r.code(3);
    assert_eq!(r.err(), format!("klpctl: b.klp: {NOT_ENOUGH}\n"));
    let v = Json::parse(r.out());
    assert_eq!(
        v.keys(),
        [
            "ok",
            "bundle",
            "exit",
            "error",
            "threshold",
            "valid_keys",
            "signatures"
        ]
    );
    assert!(!v.get("ok").bool());
    assert_eq!(v.get("exit").u64(), 3);
    assert_eq!(v.get("error").str(), NOT_ENOUGH);
    assert_eq!(v.get("valid_keys").u64(), 0);
    assert_eq!(
        v.get("signatures").arr()[0].get("status").str(),
        "untrusted"
    );

    // Rejected before any signature was looked at: no verdict members.
    d.write("junk.klp", b"KLPBNDL\0junk");
    let r = d.klpctl(&["verify", "junk.klp", "--keyring", "ring", "--json"]);
    r.code(3);
    assert_eq!(r.err(), format!("klpctl: junk.klp: {TRUNCATED}\n"));
    let v = Json::parse(r.out());
    assert_eq!(v.keys(), ["ok", "bundle", "exit", "error"]);
    assert_eq!(v.get("error").str(), TRUNCATED);
}

#[test]
fn manifest_prints_the_exact_signed_bytes() {
    let s = setup();
    let d = &s.dir;
    pack_full(&s);
    let ko = livepatch_ko();
    let want = format!(
        concat!(
            r#"{{"format":1,"name":"{}","stream":"acme.live-1","version":7,"release":"{}","build_id":"{}","arch":"x86_64","#,
            r#""replace":true,"cves":["CVE-2024-1234","RHSA:2025.01"],"description":"{}","created":1764300000,"#,
            r#""payload_size":{},"payload_sha256":"{}"}}"#
        ),
        MOD_NAME,
        RELEASE,
        BUILD_ID,
        DESCRIPTION_STORED,
        ko.len(),
        sha256_hex(&ko)
    );
    // No trailing newline: stdout is exactly the signed bytes.
    d.klpctl(&["manifest", "full.klp"]).expect(0, &want, "");
    let bundle = d.read("full.klp");
    assert_eq!(manifest_of(&bundle), want.as_bytes());
    d.klpctl(&["manifest", "b.klp"])
        .expect(0, &canonical_manifest(&ko), "");

    // The signature in the bundle is a plain Ed25519 signature over exactly
    // those bytes: signify agrees.
    d.write("m", &want);
    d.write("from-bundle.sig", sig_file(&sig_records_of(&bundle)[0]));
    d.signify(&[
        "-V",
        "-q",
        "-p",
        "k.pub",
        "-m",
        "m",
        "-x",
        "from-bundle.sig",
    ])
    .expect(0, "", "");
    d.write("m", format!("{want}\n"));
    d.signify(&[
        "-V",
        "-q",
        "-p",
        "k.pub",
        "-m",
        "m",
        "-x",
        "from-bundle.sig",
    ])
    .code(1);

    // manifest reads structure only: a corrupt container is refused.
    d.write("t.klp", &bundle[..bundle.len() - 1]);
    d.klpctl_unchanged(&["manifest", "t.klp"])
        .fails(3, &format!("klpctl: t.klp: {TRUNCATED}"));
}

#[test]
fn pack_refuses_bad_input_and_leaves_no_output() {
    let s = setup();
    let d = &s.dir;
    d.write(
        "plain.ko",
        fake_ko(
            format!("name=plain\0vermagic={RELEASE} SMP \0livepatch=N\0").as_bytes(),
            62,
        ),
    );
    d.write(
        "arm.ko",
        fake_ko(
            format!("livepatch=Y\0name=klp_arm\0vermagic={RELEASE} SMP \0").as_bytes(),
            183,
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
    let pack = |extra: &[&str]| {
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
        d.klpctl_unchanged(&args)
    };
    let pack_mod = |module: &str| {
        d.klpctl_unchanged(&[
            "pack",
            module,
            "-o",
            "out.klp",
            "--stream",
            "s",
            "--version",
            "1",
            "--unsigned",
        ])
    };

    pack_mod("plain.ko").fails(
        2,
        "klpctl: plain.ko: not a livepatch module (.modinfo has no livepatch=Y)",
    );
    pack(&["--unsigned", "--kernel-release", "6.1.0-42-amd64"]).fails(
        2,
        "klpctl: m.ko: module vermagic names a different kernel release than --kernel-release",
    );
    pack(&["--unsigned", "--arch", "aarch64"])
        .fails(2, "klpctl: m.ko: module ELF machine differs from --arch");
    pack(&[]).fails(
        2,
        "klpctl: pack needs -s KEY.sec (or --unsigned to sign later with sign/attach)",
    );
    pack(&["--unsigned", "--cve", "CVE 2024"])
        .fails(2, "klpctl: CVE 2024: --cve: 1-32 of [A-Za-z0-9._:-]");
    pack(&["--unsigned", "--cve", &"C".repeat(33)]).fails(
        2,
        &format!("klpctl: {}: --cve: 1-32 of [A-Za-z0-9._:-]", "C".repeat(33)),
    );
    pack(&["--unsigned", "--cve", "CVE-1\"]"])
        .fails(2, "klpctl: CVE-1\"]: --cve: 1-32 of [A-Za-z0-9._:-]");
    pack(&["--unsigned", "--description", "two\nlines"]).fails(
        2,
        "klpctl: --description must not contain control characters",
    );
    pack(&["--unsigned", "--description", &"\"".repeat(513)])
        .fails(2, "klpctl: --description is too long (1024 bytes escaped)");
    pack(&["--unsigned", "--kernel-build-id", "xyz"])
        .fails(2, "klpctl: --kernel-build-id must be 2-64 hex digits");
    pack(&[
        "--unsigned",
        "--kernel-build-id",
        "00",
        "--kernel-build-id",
        "11",
    ])
    .fails(2, "klpctl: give --kernel-build-id or --kernel-notes once");
    pack(&["-s", "bad.sec"]).fails(2, "klpctl: bad.sec: not a signify Ed25519 secret key file");
    pack(&["-s", "k.pub"]).fails(2, "klpctl: k.pub: not a signify Ed25519 secret key file");
    pack(&["-s", "missing.sec"]).fails(1, "klpctl: missing.sec: cannot read secret key: ENOENT");
    for stream in [".hidden", "a/b", "", &"s".repeat(65)] {
        pack(&["--unsigned", "--stream", stream]).fails(
            2,
            "klpctl: --stream: 1-64 of [A-Za-z0-9._-], not starting with '.'",
        );
    }
    pack(&["--unsigned", "--version", "-1"])
        .fails(2, "klpctl: expected a non-negative decimal number");
    pack(&["--unsigned", "--version", "18446744073709551616"])
        .fails(2, "klpctl: expected a non-negative decimal number");
    pack(&["--unsigned", "--bogus"])
        .fails(2, "klpctl: --bogus: unknown option (see klpctl --help)");
    pack(&["--unsigned", "extra.ko"]).fails(
        2,
        "klpctl: extra.ko: unexpected argument (see klpctl --help)",
    );
    d.klpctl_unchanged(&[
        "pack",
        "m.ko",
        "--stream",
        "s",
        "--version",
        "1",
        "--unsigned",
    ])
    .fails(
        2,
        "klpctl: pack needs MODULE.ko, -o BUNDLE, --stream S and --version N",
    );
    // The architecture comes from the ELF machine.
    d.klpctl(&[
        "pack",
        "arm.ko",
        "-o",
        "arm.klp",
        "--stream",
        "s",
        "--version",
        "1",
        "--unsigned",
        "--arch",
        "aarch64",
    ])
    .code(0);
    let info = d.klpctl(&["info", "arm.klp"]);
    assert!(
        info.code(0)
            .out()
            .contains(&format!("  kernel:  {RELEASE} aarch64\n")),
        "{}",
        info.out()
    );
    pack_mod("dash.ko").fails(
        2,
        "klpctl: dash.ko: module name= is not a valid livepatch name ([A-Za-z0-9_], 1-55)",
    );
    pack_mod("nover.ko").fails(2, "klpctl: nover.ko: module .modinfo has no vermagic=");
    pack_mod("empty.ko").fails(
        2,
        "klpctl: empty.ko: not a 64-bit little-endian ELF relocatable file (.ko)",
    );
    pack_mod("k.pub").fails(
        2,
        "klpctl: k.pub: not a 64-bit little-endian ELF relocatable file (.ko)",
    );
    pack_mod("missing.ko").fails(1, "klpctl: missing.ko: cannot open module: ENOENT");

    // The same arguments without the mistakes work.
    pack_m(d, "out.klp", &["--unsigned"]).code(0);
}

#[test]
fn pack_signs_with_several_keys_once_each() {
    let s = setup();
    let d = &s.dir;
    let k2 = keygen(d, "k2");
    pack_m(
        d,
        "two.klp",
        &["-s", "k.sec", "-s", "k2.sec", "-s", "k.sec"],
    )
    .expect(
        0,
        &format!("packed {MOD_NAME} stream s version 1 for {RELEASE} (2 signatures)\n"),
        "",
    );
    d.copy("k2.pub", "ring/k2.pub");
    let r = d.klpctl(&["verify", "two.klp", "--keyring", "ring"]);
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(2, 1, &[(&s.key, "valid"), (&k2, "valid")])),
        "{}",
        r.out()
    );
    let args: Vec<&str> = [
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
    d.klpctl_unchanged(&args)
        .fails(2, "klpctl: at most 4 -s keys");
}

// ------------------------------------------------------------ sign, attach

#[test]
fn sign_co_signs_and_is_idempotent() {
    let s = setup();
    let d = &s.dir;
    let k2 = keygen(d, "k2");
    d.klpctl(&["sign", "b.klp", "-s", "k2.sec"])
        .expect(0, &format!("signed with key {k2}\n"), "");
    let once = d.read("b.klp");
    assert_eq!(Layout::of(&once).sig_count, 2);
    assert_eq!(
        manifest_of(&once),
        d.klpctl(&["manifest", "b.klp"]).stdout,
        "signing does not touch the manifest"
    );

    // Again, with either key: nothing changes.
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "k2.sec"])
        .expect(0, &format!("already signed by key {k2}\n"), "");
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "k.sec"])
        .expect(0, &format!("already signed by key {}\n", s.key), "");

    let info = d.klpctl(&["info", "b.klp"]);
    assert!(
        info.code(0).out().ends_with(&format!(
            "  signatures: 2\n    key {}\n    key {k2}\n",
            s.key
        )),
        "{}",
        info.out()
    );
    d.copy("k2.pub", "ring/k2.pub");
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring"]);
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(2, 1, &[(&s.key, "valid"), (&k2, "valid")])),
        "{}",
        r.out()
    );
    // With only the co-signer trusted, the first signature is reported and ignored.
    d.mkdir("ring2");
    d.copy("k2.pub", "ring2/k2.pub");
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring2"]);
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(1, 1, &[(&s.key, "untrusted"), (&k2, "valid")])),
        "{}",
        r.out()
    );
}

#[test]
fn attach_adds_a_signature_once() {
    let s = setup();
    let d = &s.dir;
    pack_m(d, "u.klp", &["--unsigned", "--created", "1700000000"]).expect(
        0,
        &format!("packed {MOD_NAME} stream s version 1 for {RELEASE} (0 signatures)\n"),
        "",
    );
    d.klpctl(&["verify", "u.klp", "--keyring", "ring"]).expect(
        3,
        "",
        &format!("{}klpctl: u.klp: {NOT_ENOUGH}\n", verdict(0, 1, &[])),
    );
    // A detached signature made by `sign -x` on one copy attaches to another.
    d.copy("u.klp", "signed.klp");
    d.klpctl(&["sign", "signed.klp", "-s", "k.sec", "-x", "k.sig"])
        .expect(0, &format!("signed with key {}\n", s.key), "");
    d.klpctl(&["attach", "u.klp", "k.sig"]).expect(
        0,
        &format!("attached signature by key {}\n", s.key),
        "",
    );
    assert_eq!(d.read("u.klp"), d.read("signed.klp"));
    assert_eq!(
        d.read("u.klp"),
        d.read("b.klp"),
        "attach and pack -s give the same bytes"
    );
    d.klpctl_unchanged(&["attach", "u.klp", "k.sig"]).expect(
        0,
        &format!("signature already present: key {}\n", s.key),
        "",
    );
    d.klpctl(&["verify", "u.klp", "--keyring", "ring"]).code(0);

    d.klpctl_unchanged(&["attach", "u.klp"])
        .fails(2, "klpctl: attach needs BUNDLE and SIGFILE");
    d.klpctl_unchanged(&["attach", "u.klp", "k.sig", "more"])
        .fails(2, "klpctl: more: unexpected argument (see klpctl --help)");
    d.klpctl_unchanged(&["attach", "u.klp", "k.pub"])
        .fails(2, "klpctl: k.pub: not a signify Ed25519 signature file");
    d.klpctl_unchanged(&["attach", "u.klp", "nope.sig"])
        .fails(1, "klpctl: nope.sig: cannot read signature file: ENOENT");
}

#[test]
fn sign_and_attach_refuse_bad_bundles_without_touching_them() {
    let s = setup();
    let d = &s.dir;
    keygen(d, "k2");
    d.klpctl(&["sign", "b.klp", "-s", "k.sec", "-x", "k.sig"])
        .code(0);
    let good = d.read("b.klp");
    let l = Layout::of(&good);

    // Payload altered: sign refuses to vouch for it (the manifest is still fine).
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    d.write("bad.klp", &bad);
    d.klpctl_unchanged(&["sign", "bad.klp", "-s", "k2.sec"])
        .fails(3, &format!("klpctl: bad.klp: {DIGEST}"));
    d.klpctl_unchanged(&["sign", "bad.klp", "-s", "k2.sec", "-x", "k2.sig"])
        .fails(3, &format!("klpctl: bad.klp: {DIGEST}"));

    // Structurally broken: both refuse.
    d.write("short.klp", &good[..l.payload_offset()]);
    d.klpctl_unchanged(&["sign", "short.klp", "-s", "k2.sec"])
        .fails(3, &format!("klpctl: short.klp: {TRUNCATED}"));
    d.klpctl_unchanged(&["attach", "short.klp", "k.sig"])
        .fails(3, &format!("klpctl: short.klp: {TRUNCATED}"));
    let mut long = good.clone();
    long.push(0);
    d.write("long.klp", &long);
    d.klpctl_unchanged(&["attach", "long.klp", "k.sig"]).fails(
        3,
        "klpctl: long.klp: bundle rejected: trailing bytes after the payload",
    );

    // A manifest klpctl would not accept is not signed either.
    let m = canonical_manifest(&livepatch_ko()).replace("\"format\":1", "\"format\":2");
    d.write("f2.klp", build_bundle(m.as_bytes(), &[], &livepatch_ko()));
    d.klpctl_unchanged(&["sign", "f2.klp", "-s", "k2.sec"])
        .fails(
            3,
            "klpctl: f2.klp: unsupported manifest format (this klpctl reads format 1)",
        );
    d.klpctl_unchanged(&["attach", "f2.klp", "k.sig"]).fails(
        3,
        "klpctl: f2.klp: unsupported manifest format (this klpctl reads format 1)",
    );

    // Four signatures is the limit.
    for k in ["k3", "k4", "k5"] {
        keygen(d, k);
    }
    for k in ["k2", "k3", "k4"] {
        d.klpctl(&["sign", "b.klp", "-s", &format!("{k}.sec")])
            .code(0);
    }
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "k5.sec"])
        .fails(2, "klpctl: b.klp: bundle already holds 4 signatures");

    // Bad key files and arguments.
    d.klpctl_unchanged(&["sign", "bad.klp", "-s", "k.pub"])
        .fails(2, "klpctl: k.pub: not a signify Ed25519 secret key file");
    d.klpctl_unchanged(&["sign", "b.klp"])
        .fails(2, "klpctl: sign needs -s KEY.sec");
    d.klpctl_unchanged(&["sign", "-s", "k.sec"])
        .fails(2, "klpctl: missing BUNDLE argument");
    d.klpctl_unchanged(&["sign", "nope.klp", "-s", "k.sec"])
        .fails(1, "klpctl: nope.klp: cannot open bundle: ENOENT");
}

/// When the `-x` signature file cannot be written, `sign` exits 1 and the
/// bundle has not gained the signature.
#[test]
fn sign_with_unwritable_sig_file_leaves_bundle_unchanged() {
    let s = setup();
    let d = &s.dir;
    keygen(d, "k2");
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "k2.sec", "-x", "no-such-dir/k2.sig"])
        .fails(
            1,
            "klpctl: no-such-dir/k2.sig: cannot create output file: ENOENT",
        );
}

/// Ed25519 is deterministic, so a different signature by a key that already
/// signed was made over other bytes: `attach` refuses it and leaves the
/// bundle (which still verifies) as it was.
#[test]
fn attach_does_not_replace_a_signature_by_the_same_key() {
    let s = setup();
    let d = &s.dir;
    d.klpctl(&[
        "pack",
        "m.ko",
        "-o",
        "v2.klp",
        "--stream",
        "s",
        "--version",
        "2",
        "-s",
        "k.sec",
    ])
    .code(0);
    d.write("v2.sig", sig_file(&sig_records_of(&d.read("v2.klp"))[0]));
    d.klpctl(&["verify", "b.klp", "--keyring", "ring"]).code(0);
    let r = d.klpctl_unchanged(&["attach", "b.klp", "v2.sig"]);
    assert_ne!(
        r.code,
        0,
        "attach replaced a valid signature with one over other bytes: {}",
        r.out()
    );
    d.klpctl(&["verify", "b.klp", "--keyring", "ring"]).code(0);
}

// ------------------------------------------------------------ exit codes and messages

#[test]
fn every_exit_code_so_far() {
    let s = setup();
    let d = &s.dir;
    // 0
    d.klpctl(&["verify", "b.klp", "--keyring", "ring"]).code(0);
    // 1: I/O
    d.klpctl_unchanged(&["verify", "missing.klp", "--keyring", "ring"])
        .fails(1, "klpctl: missing.klp: cannot open bundle: ENOENT");
    d.klpctl_unchanged(&["info", "missing.klp"])
        .fails(1, "klpctl: missing.klp: cannot open bundle: ENOENT");
    d.klpctl_unchanged(&["verify", "b.klp", "--keyring", "no-ring"])
        .fails(1, "klpctl: no-ring: cannot open keyring directory: ENOENT");
    d.klpctl_unchanged(&["verify", "ring", "--keyring", "ring"])
        .fails(1, "klpctl: ring: cannot read bundle: not a regular file");
    // 2: usage and bad key files
    d.klpctl_unchanged(&["frobnicate"]).fails(
        2,
        "klpctl: frobnicate: unexpected argument (see klpctl --help)",
    );
    d.klpctl_unchanged(&["verify", "b.klp", "--frob"])
        .fails(2, "klpctl: --frob: unknown option (see klpctl --help)");
    d.klpctl_unchanged(&["verify", "--keyring", "ring"])
        .fails(2, "klpctl: missing BUNDLE argument");
    d.klpctl_unchanged(&["verify", "b.klp", "--keyring"]).fails(
        2,
        "klpctl: an option is missing its value (see klpctl --help)",
    );
    d.klpctl_unchanged(&["info", "b.klp", "c.klp"])
        .fails(2, "klpctl: c.klp: unexpected argument (see klpctl --help)");
    d.write("garbage.sec", "untrusted comment: x\nnot base64 at all\n");
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "garbage.sec"])
        .fails(
            2,
            "klpctl: garbage.sec: not a signify Ed25519 secret key file",
        );
    // 3: rejected
    d.write("empty.klp", b"");
    d.klpctl_unchanged(&["verify", "empty.klp", "--keyring", "ring"])
        .fails(3, &format!("klpctl: empty.klp: {TRUNCATED}"));
    d.write("elf.klp", livepatch_ko());
    d.klpctl_unchanged(&["verify", "elf.klp", "--keyring", "ring"])
        .fails(
            3,
            "klpctl: elf.klp: bundle rejected: not a klpctl bundle (bad magic)",
        );
    d.klpctl_unchanged(&["info", "elf.klp"]).fails(
        3,
        "klpctl: elf.klp: bundle rejected: not a klpctl bundle (bad magic)",
    );
    d.mkdir("empty-ring");
    d.klpctl_unchanged(&["verify", "b.klp", "--keyring", "empty-ring"]).fails(
        3,
        "klpctl: empty-ring: bundle rejected: no trusted keys (embed them with KLPCTL_TRUSTED_KEYS or add .pub files to /etc/klpctl/keys.d)",
    );
    let mut b = d.read("b.klp");
    b[8] = 2;
    d.write("v2.klp", &b);
    d.klpctl_unchanged(&["verify", "v2.klp", "--keyring", "ring"])
        .fails(
            3,
            "klpctl: v2.klp: bundle rejected: unsupported bundle format version",
        );
    let mut b = d.read("b.klp");
    b[10] = 5;
    d.write("5sig.klp", &b);
    d.klpctl_unchanged(&["verify", "5sig.klp", "--keyring", "ring"])
        .fails(
            3,
            "klpctl: 5sig.klp: bundle rejected: more than 4 signatures",
        );
    let mut b = d.read("b.klp");
    b[16..24].copy_from_slice(&0u64.to_le_bytes());
    d.write("p0.klp", &b);
    d.klpctl_unchanged(&["verify", "p0.klp", "--keyring", "ring"])
        .fails(
            3,
            "klpctl: p0.klp: bundle rejected: payload length out of bounds (1..2^30)",
        );
}

#[test]
fn keyring_skips_malformed_key_files() {
    let s = setup();
    let d = &s.dir;
    d.write("ring/bad.pub", "untrusted comment: x\nAAAA\n");
    // The identity point: a weak key that could never verify anything.
    let mut weak = b"Ed".to_vec();
    weak.extend_from_slice(&[7; 8]);
    weak.push(1);
    weak.extend_from_slice(&[0; 31]);
    d.write(
        "ring/weak.pub",
        format!("untrusted comment: weak\n{}\n", b64_encode(&weak)),
    );
    d.write("ring/ignored.txt", "not a key, not read");
    d.write("ring/.hidden.pub", "not read either");
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring"]);
    r.code(0);
    // Directory order decides the order of the warnings.
    let mut warnings: Vec<&str> = r.err().lines().collect();
    warnings.sort();
    assert_eq!(
        warnings,
        [
            "klpctl: warning: ignoring key file bad.pub: not a signify/minisign Ed25519 public key file",
            "klpctl: warning: ignoring key file weak.pub: public key is not a valid Ed25519 point (weak or malformed key)",
        ]
    );
}

// ------------------------------------------------------------ tampering

#[test]
fn every_bit_flip_is_rejected() {
    let s = setup();
    let d = &s.dir;
    let good = d.read("b.klp");
    let l = Layout::of(&good);
    // Every bit of every byte: header, manifest, signature record (key id
    // and signature) and payload. About 6000 runs, a few seconds.
    assert!((l.sig_count, l.payload_len) == (1, livepatch_ko().len()));
    let flips: Vec<(usize, u8)> = (0..good.len())
        .flat_map(|i| (0..8).map(move |b| (i, b)))
        .collect();
    let failures: Vec<String> = par_map(&flips, |t, &(i, bit)| {
        let name = format!("flip{t}.klp");
        let mut b = good.clone();
        b[i] ^= 1 << bit;
        d.write(&name, &b);
        let r = d.klpctl(&["verify", &name, "--keyring", "ring"]);
        let last = r.err().lines().last().unwrap_or("");
        let ok = r.code == 3
            && r.stdout.is_empty()
            && last.starts_with(&format!("klpctl: {name}: bundle rejected: "));
        (!ok).then(|| format!("byte {i} bit {bit}: exit {} stderr {:?}", r.code, r.err()))
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(
        failures.is_empty(),
        "{} of {} flips not rejected:\n{}",
        failures.len(),
        flips.len(),
        failures.join("\n")
    );
    // The original still verifies, so every rejection above was the flip's doing.
    d.klpctl(&["verify", "b.klp", "--keyring", "ring"]).code(0);
}

#[test]
fn every_truncation_and_a_trailing_byte_are_rejected() {
    let s = setup();
    let d = &s.dir;
    let good = d.read("b.klp");
    let l = Layout::of(&good);
    let boundaries = [
        0,
        8,
        10,
        12,
        16,
        HEADER,
        l.sigs_offset(),
        l.sigs_offset() + 8,
        l.payload_offset(),
        l.total(),
    ];
    let mut lengths: Vec<usize> = boundaries
        .iter()
        .flat_map(|&b| [b.saturating_sub(1), b, b + 1])
        .filter(|&n| n < good.len())
        .collect();
    // And every other length in between, it is cheap.
    lengths.extend(0..good.len());
    lengths.sort();
    lengths.dedup();
    let failures: Vec<String> = par_map(&lengths, |t, &n| {
        let name = format!("cut{t}.klp");
        d.write(&name, &good[..n]);
        let r = d.klpctl(&["verify", &name, "--keyring", "ring"]);
        let want = format!("klpctl: {name}: {TRUNCATED}\n");
        (r.code != 3 || !r.stdout.is_empty() || r.err() != want)
            .then(|| format!("length {n}: exit {} {:?}", r.code, r.err()))
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(
        failures.is_empty(),
        "truncations not rejected:\n{}",
        failures.join("\n")
    );

    let mut long = good.clone();
    long.push(0);
    d.write("long.klp", &long);
    d.klpctl(&["verify", "long.klp", "--keyring", "ring"])
        .fails(
            3,
            "klpctl: long.klp: bundle rejected: trailing bytes after the payload",
        );
    long.extend_from_slice(&good);
    d.write("long.klp", &long);
    d.klpctl(&["verify", "long.klp", "--keyring", "ring"])
        .fails(
            3,
            "klpctl: long.klp: bundle rejected: trailing bytes after the payload",
        );
}

#[test]
fn unknown_key_and_unsigned_bundles_are_rejected() {
    let s = setup();
    let d = &s.dir;
    let other = keygen(d, "other");
    pack_m(d, "o.klp", &["-s", "other.sec"]).code(0);
    d.klpctl_unchanged(&["verify", "o.klp", "--keyring", "ring"])
        .expect(
            3,
            "",
            &format!(
                "{}klpctl: o.klp: {NOT_ENOUGH}\n",
                verdict(0, 1, &[(&other, "untrusted")])
            ),
        );
    pack_m(d, "u.klp", &["--unsigned"]).code(0);
    d.klpctl_unchanged(&["verify", "u.klp", "--keyring", "ring"])
        .expect(
            3,
            "",
            &format!("{}klpctl: u.klp: {NOT_ENOUGH}\n", verdict(0, 1, &[])),
        );
    // info does not judge trust, it says so instead.
    assert!(
        d.klpctl(&["info", "u.klp"])
            .code(0)
            .out()
            .starts_with("UNVERIFIED ")
    );

    // The same signature twice counts once.
    let rec = sig_records_of(&d.read("b.klp"))[0];
    d.write(
        "twice.klp",
        build_bundle(manifest_of(&d.read("b.klp")), &[rec, rec], &livepatch_ko()),
    );
    let r = d.klpctl(&["verify", "twice.klp", "--keyring", "ring"]);
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(1, 1, &[(&s.key, "valid"), (&s.key, "duplicate")])),
        "{}",
        r.out()
    );

    // A trusted key id in front of a signature it did not make.
    let mut b = d.read("o.klp");
    let at = Layout::of(&b).sigs_offset();
    b[at..at + 8].copy_from_slice(&d.read("b.klp")[at..at + 8]);
    d.write("forged.klp", &b);
    d.klpctl_unchanged(&["verify", "forged.klp", "--keyring", "ring"])
        .expect(
            3,
            "",
            &format!(
                "{}klpctl: forged.klp: {BAD_SIG}\n",
                verdict(0, 1, &[(&s.key, "invalid")])
            ),
        );
    // An invalid signature by a trusted key rejects even next to a valid one.
    let mut recs = sig_records_of(&d.read("b.klp"));
    recs.push(sig_records_of(&b)[0]);
    let ko = livepatch_ko();
    d.write(
        "mixed.klp",
        build_bundle(manifest_of(&d.read("b.klp")), &recs, &ko),
    );
    d.klpctl_unchanged(&["verify", "mixed.klp", "--keyring", "ring"])
        .expect(
            3,
            "",
            &format!(
                "{}klpctl: mixed.klp: {BAD_SIG}\n",
                verdict(1, 1, &[(&s.key, "valid"), (&s.key, "invalid")])
            ),
        );
}

// ------------------------------------------------------------ hostile manifests

/// A directory with a signify key `x` (trusted through `ring/x.pub`) and
/// a helper to build bundles whose manifest signify signed, so klpctl
/// authenticates them and must reject them on content alone.
struct Crafted {
    dir: TempDir,
    key: String,
}

impl Crafted {
    fn new() -> Crafted {
        let dir = TempDir::new();
        dir.signify(&[
            "-G",
            "-n",
            "-c",
            "itest signify key",
            "-p",
            "x.pub",
            "-s",
            "x.sec",
        ])
        .code(0);
        dir.mkdir("ring");
        dir.copy("x.pub", "ring/x.pub");
        let key = key_id_hex(&dir.read_text("x.pub"));
        Crafted { dir, key }
    }

    /// Writes `name`: a bundle of `manifest` signed by `x`, and `payload`.
    fn bundle(&self, name: &str, manifest: &[u8], payload: &[u8]) {
        let m = format!("{name}.m");
        let sig = format!("{name}.sig");
        self.dir.write(&m, manifest);
        self.dir
            .signify(&["-S", "-s", "x.sec", "-m", &m, "-x", &sig])
            .code(0);
        let rec = sig_record(&self.dir.read_text(&sig));
        self.dir
            .write(name, build_bundle(manifest, &[rec], payload));
    }

    fn verify(&self, name: &str) -> Run {
        self.dir
            .klpctl_unchanged(&["verify", name, "--keyring", "ring"])
    }

    /// Asserts a signed bundle is rejected after authentication with `msg`.
    #[track_caller]
    fn rejects(&self, name: &str, manifest: &[u8], payload: &[u8], msg: &str) {
        self.bundle(name, manifest, payload);
        self.verify(name).expect(
            3,
            "",
            &format!(
                "{}klpctl: {name}: {msg}\n",
                verdict(1, 1, &[(&self.key, "valid")])
            ),
        );
        // info parses the same manifest without any signature.
        self.dir
            .klpctl_unchanged(&["info", name])
            .fails(3, &format!("klpctl: {name}: {msg}"));
    }
}

#[test]
fn signed_but_malformed_manifests_are_rejected() {
    let c = Crafted::new();
    let ko = livepatch_ko();
    let good = canonical_manifest(&ko);
    // Control: the crafting itself yields a bundle klpctl accepts.
    c.bundle("good.klp", good.as_bytes(), &ko);
    c.verify("good.klp").code(0);

    let with = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        good.replacen(from, to, 1).into_bytes()
    };
    let name_field = format!("\"name\":\"{MOD_NAME}\"");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dup.klp",
            with(",\"arch\"", &format!(",{name_field},\"arch\"")),
            MANIFEST_JSON,
        ),
        (
            "dup-other.klp",
            with(",\"arch\"", ",\"name\":\"klp_evil\",\"arch\""),
            MANIFEST_JSON,
        ),
        (
            "unknown.klp",
            with(",\"arch\"", ",\"extra\":1,\"arch\""),
            MANIFEST_JSON,
        ),
        (
            "unknown-nested.klp",
            with(",\"arch\"", ",\"extra\":{\"a\":[[[1]]]},\"arch\""),
            MANIFEST_JSON,
        ),
        (
            "missing.klp",
            with(",\"arch\":\"x86_64\"", ""),
            MANIFEST_JSON,
        ),
        (
            "escape.klp",
            with(&name_field, "\"name\":\"klp_\\u0069test\""),
            "manifest field name: 1-55 of [A-Za-z0-9_]",
        ),
        (
            "escape2.klp",
            with(&name_field, "\"name\":\"klp\\\"itest\""),
            "manifest field name: 1-55 of [A-Za-z0-9_]",
        ),
        (
            "stream.klp",
            with("\"stream\":\"s\"", "\"stream\":\"../../etc\""),
            "manifest field stream: 1-64 of [A-Za-z0-9._-], not starting with '.'",
        ),
        (
            "desc.klp",
            with("\"description\":\"\"", "\"description\":\"a\\nb\""),
            "manifest field description: at most 1024 bytes, no control characters, only \\\" and \\\\ escapes",
        ),
        (
            "format.klp",
            with("\"format\":1", "\"format\":2"),
            "unsupported manifest format (this klpctl reads format 1)",
        ),
        (
            "space.klp",
            format!(" {good}").into_bytes(),
            "manifest must be exactly one JSON object with nothing before or after it",
        ),
        (
            "newline.klp",
            format!("{good}\n").into_bytes(),
            "manifest must be exactly one JSON object with nothing before or after it",
        ),
        (
            "two.klp",
            format!("{good}{{}}").into_bytes(),
            "manifest has trailing bytes after the JSON object",
        ),
        // Other spellings of the same manifest: one signed manifest has one byte form.
        ("ws.klp", with(",\"arch\"", ", \"arch\""), NOT_CANONICAL),
        (
            "order.klp",
            with(
                &format!("\"format\":1,{name_field}"),
                &format!("{name_field},\"format\":1"),
            ),
            NOT_CANONICAL,
        ),
        (
            "null.klp",
            with(",\"arch\"", ",\"build_id\":null,\"arch\""),
            NOT_CANONICAL,
        ),
        (
            "upper.klp",
            good.replacen(&sha256_hex(&ko), &sha256_hex(&ko).to_uppercase(), 1)
                .into_bytes(),
            "manifest field payload_sha256: 64 lowercase hex digits",
        ),
        (
            "negative.klp",
            with("\"version\":1", "\"version\":-1"),
            "manifest JSON: a field has the wrong type or number format",
        ),
        (
            "size.klp",
            with(
                &format!("\"payload_size\":{}", ko.len()),
                &format!("\"payload_size\":{}", ko.len() + 1),
            ),
            "bundle rejected: header payload length differs from the manifest",
        ),
    ];
    for (name, manifest, msg) in &cases {
        c.rejects(name, manifest, &ko, msg);
    }

    // Correctly signed, but the payload is not the one the manifest names.
    let mut other = ko.clone();
    other[70] ^= 0x20;
    c.bundle("swapped.klp", good.as_bytes(), &other);
    c.verify("swapped.klp").expect(
        3,
        "",
        &format!(
            "{}klpctl: swapped.klp: {DIGEST}\n",
            verdict(1, 1, &[(&c.key, "valid")])
        ),
    );
}

#[test]
fn oversized_and_deeply_nested_manifests_are_rejected() {
    let c = Crafted::new();
    let d = &c.dir;
    let ko = livepatch_ko();
    let good = canonical_manifest(&ko);
    const LEN_BOUNDS: &str = "bundle rejected: manifest length out of bounds (2..16384)";

    // Over the limit, even when signed: refused from the header alone.
    let padded = |n: usize| {
        format!(
            "{}{}",
            &good[..good.len() - 1],
            " ".repeat(n - good.len()) + "}"
        )
    };
    for (name, m) in [
        ("big.klp", padded(16385)),
        ("deep.klp", "[".repeat(100_000)),
        (
            "deep-obj.klp",
            format!("{{\"x\":{}", "{\"a\":".repeat(100_000)),
        ),
    ] {
        c.bundle(name, m.as_bytes(), &ko);
        c.verify(name)
            .fails(3, &format!("klpctl: {name}: {LEN_BOUNDS}"));
        d.klpctl_unchanged(&["info", name])
            .fails(3, &format!("klpctl: {name}: {LEN_BOUNDS}"));
        d.klpctl_unchanged(&["manifest", name])
            .fails(3, &format!("klpctl: {name}: {LEN_BOUNDS}"));
    }
    // A header claiming more than the limit, whatever follows.
    let mut b = build_bundle(good.as_bytes(), &[], &ko);
    b[12..16].copy_from_slice(&16385u32.to_le_bytes());
    d.write("hdr.klp", &b);
    c.verify("hdr.klp")
        .fails(3, &format!("klpctl: hdr.klp: {LEN_BOUNDS}"));
    b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    d.write("hdr.klp", &b);
    c.verify("hdr.klp")
        .fails(3, &format!("klpctl: hdr.klp: {LEN_BOUNDS}"));

    // Exactly at the limit and signed: the parser itself sees it. Nesting
    // that fills the whole manifest must be an error, never a crash.
    let fill = |prefix: &str| {
        let mut s = prefix.to_owned();
        s.push_str(&"[".repeat(16383 - prefix.len()));
        s.push('}');
        assert_eq!(s.len(), 16384);
        s
    };
    let at = good.find("\"cves\":").unwrap() + "\"cves\":".len();
    let nested = [
        ("n-cves.klp", fill(&good[..at])),
        ("n-unknown.klp", fill("{\"x\":")),
        ("n-first.klp", fill("{\"format\":")),
        ("n-obj.klp", {
            let mut s = "{\"x\":".to_owned();
            while s.len() + 5 <= 16383 {
                s.push_str("{\"a\":");
            }
            s.push_str(&"}".repeat(16384 - s.len()));
            s
        }),
    ];
    for (name, m) in &nested {
        assert!(m.len() <= 16384);
        c.bundle(name, m.as_bytes(), &ko);
        let r = c.verify(name);
        r.code(3);
        assert!(
            r.err().starts_with(&verdict(1, 1, &[(&c.key, "valid")])),
            "{}",
            r.err()
        );
        let last = r.err().lines().last().unwrap();
        assert!(
            last.starts_with(&format!("klpctl: {name}: manifest")),
            "{last}"
        );
        let info = d.klpctl_unchanged(&["info", name]);
        info.code(3);
        assert_eq!(info.err(), format!("{last}\n"));
    }
    // Exactly the limit passes the header check; the padding inside the
    // object is then refused as a second spelling of the manifest.
    c.rejects("max.klp", padded(16384).as_bytes(), &ko, NOT_CANONICAL);
}

// ------------------------------------------------------------ threshold

#[test]
fn threshold_two_of_three() {
    let d = TempDir::new();
    let a = keygen(&d, "a");
    let b = keygen(&d, "b");
    let c = keygen(&d, "c");
    let x = keygen(&d, "x"); // never trusted by the build
    let keys = format!("{}:{}:{}", d.abs("a.pub"), d.abs("b.pub"), d.abs("c.pub"));
    let bin = build_device_binary(
        &root().join("target/itest-threshold"),
        &[
            ("KLPCTL_THRESHOLD", OsStr::new("2")),
            ("KLPCTL_TRUSTED_KEYS", OsStr::new(&keys)),
        ],
    );
    // No runtime keys: only the three embedded ones are trusted.
    d.mkdir("none");
    d.write("m.ko", livepatch_ko());
    let pack = |out: &str, keys: &[&str]| {
        let mut args = vec!["pack", "m.ko", "-o", out, "--stream", "s", "--version", "1"];
        for k in keys {
            args.extend(["-s", k]);
        }
        d.klpctl(&args).code(0);
    };
    let verify = |name: &str, ring: &str| {
        let before = d.snapshot();
        let r = d.run_bin(&bin, &["verify", name, "--keyring", ring]);
        assert_same(&before, &d.snapshot(), &r);
        r
    };

    pack("a.klp", &["a.sec"]);
    verify("a.klp", "none").expect(
        3,
        "",
        &format!(
            "{}klpctl: a.klp: {NOT_ENOUGH}\n",
            verdict(0, 2, &[(&a, "unchecked")])
        ),
    );
    // The normal build (threshold 1) takes the same bundle from the same key.
    d.mkdir("ring-a");
    d.copy("a.pub", "ring-a/a.pub");
    d.klpctl(&["verify", "a.klp", "--keyring", "ring-a"])
        .code(0);

    pack("ab.klp", &["a.sec", "b.sec"]);
    let r = verify("ab.klp", "none");
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(2, 2, &[(&a, "valid"), (&b, "valid")])),
        "{}",
        r.out()
    );
    pack("cb.klp", &["c.sec", "b.sec"]);
    verify("cb.klp", "none").code(0);

    // The same key twice counts once (pack and sign never write that, so
    // the second record is added by hand).
    let one = d.read("a.klp");
    let rec = sig_records_of(&one)[0];
    d.write(
        "aa.klp",
        build_bundle(manifest_of(&one), &[rec, rec], &livepatch_ko()),
    );
    verify("aa.klp", "none").expect(
        3,
        "",
        &format!(
            "{}klpctl: aa.klp: {NOT_ENOUGH}\n",
            verdict(0, 2, &[(&a, "unchecked"), (&a, "unchecked")])
        ),
    );

    // An untrusted key does not make up the difference, and is reported.
    pack("ax.klp", &["a.sec", "x.sec"]);
    verify("ax.klp", "none").expect(
        3,
        "",
        &format!(
            "{}klpctl: ax.klp: {NOT_ENOUGH}\n",
            verdict(0, 2, &[(&a, "unchecked"), (&x, "untrusted")])
        ),
    );
    let r = d.run_bin(&bin, &["verify", "ax.klp", "--keyring", "none", "--json"]);
    r.code(3);
    let v = Json::parse(r.out());
    assert_eq!(
        (v.get("threshold").u64(), v.get("valid_keys").u64()),
        (2, 0)
    );
    let statuses: Vec<(&str, &str)> = v
        .get("signatures")
        .arr()
        .iter()
        .map(|s| (s.get("key_id").str(), s.get("status").str()))
        .collect();
    assert_eq!(
        statuses,
        [(a.as_str(), "unchecked"), (x.as_str(), "untrusted")]
    );

    // Three of three is more than enough; a runtime key counts toward the
    // embedded threshold.
    pack("abc.klp", &["a.sec", "b.sec", "c.sec"]);
    verify("abc.klp", "none").code(0);
    d.mkdir("ring-x");
    d.copy("x.pub", "ring-x/x.pub");
    let r = verify("ax.klp", "ring-x");
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(2, 2, &[(&a, "valid"), (&x, "valid")])),
        "{}",
        r.out()
    );

    // A bad signature by a trusted key rejects even above the threshold.
    let ab = d.read("ab.klp");
    let mut bad = ab.clone();
    let at = Layout::of(&ab).sigs_offset() + SIG_RECORD + 8 + 5;
    bad[at] ^= 1;
    d.write("abad.klp", &bad);
    d.write("abc-bad.klp", {
        let mut recs = sig_records_of(&d.read("abc.klp"));
        recs[1] = sig_records_of(&bad)[1];
        build_bundle(manifest_of(&ab), &recs, &livepatch_ko())
    });
    verify("abad.klp", "none").expect(
        3,
        "",
        &format!(
            "{}klpctl: abad.klp: {BAD_SIG}\n",
            verdict(1, 2, &[(&a, "valid"), (&b, "invalid")])
        ),
    );
    verify("abc-bad.klp", "none").expect(
        3,
        "",
        &format!(
            "{}klpctl: abc-bad.klp: {BAD_SIG}\n",
            verdict(2, 2, &[(&a, "valid"), (&b, "invalid"), (&c, "valid")])
        ),
    );
}

// ------------------------------------------------------------ signify interop

#[test]
fn signify_key_signs_for_klpctl_attach() {
    let d = TempDir::new();
    d.signify(&["-G", "-n", "-p", "x.pub", "-s", "x.sec"])
        .code(0);
    let x = key_id_hex(&d.read_text("x.pub"));
    d.mkdir("ring");
    d.copy("x.pub", "ring/x.pub");
    d.write("m.ko", livepatch_ko());
    pack_m(&d, "b.klp", &["--unsigned"]).code(0);
    let m = d.klpctl(&["manifest", "b.klp"]);
    m.code(0);
    d.write("m", &m.stdout);
    d.signify(&["-S", "-s", "x.sec", "-m", "m", "-x", "m.sig"])
        .expect(0, "", "");
    d.klpctl(&["attach", "b.klp", "m.sig"]).expect(
        0,
        &format!("attached signature by key {x}\n"),
        "",
    );
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring"]);
    r.code(0);
    assert!(
        r.out().ends_with(&verdict(1, 1, &[(&x, "valid")])),
        "{}",
        r.out()
    );
    assert_eq!(
        sig_records_of(&d.read("b.klp"))[0],
        sig_record(&d.read_text("m.sig"))
    );

    // A signify signature over other bytes attaches, but never verifies.
    d.klpctl(&[
        "pack",
        "m.ko",
        "-o",
        "c.klp",
        "--stream",
        "s",
        "--version",
        "2",
        "--unsigned",
    ])
    .code(0);
    d.klpctl(&["attach", "c.klp", "m.sig"]).code(0);
    d.klpctl_unchanged(&["verify", "c.klp", "--keyring", "ring"])
        .expect(
            3,
            "",
            &format!(
                "{}klpctl: c.klp: {BAD_SIG}\n",
                verdict(0, 1, &[(&x, "invalid")])
            ),
        );
}

#[test]
fn klpctl_sign_writes_a_signify_signature() {
    let d = TempDir::new();
    let k = keygen(&d, "k");
    d.write("m.ko", livepatch_ko());
    pack_m(&d, "b.klp", &["--unsigned"]).code(0);
    d.klpctl(&["sign", "b.klp", "-s", "k.sec", "-x", "k.sig"])
        .expect(0, &format!("signed with key {k}\n"), "");
    let sig = d.read_text("k.sig");
    assert!(
        sig.starts_with("untrusted comment: ") && sig.ends_with('\n') && sig.lines().count() == 2,
        "{sig}"
    );
    d.write("m", d.klpctl(&["manifest", "b.klp"]).code(0).stdout.clone());
    d.signify(&["-V", "-p", "k.pub", "-m", "m", "-x", "k.sig"])
        .expect(0, "Signature Verified\n", "");
    // signify really checks: one changed byte of the message fails.
    let mut m = d.read("m");
    m[10] ^= 1;
    d.write("m2", &m);
    assert_ne!(
        d.signify(&["-V", "-q", "-p", "k.pub", "-m", "m2", "-x", "k.sig"])
            .code,
        0
    );
    // -x again for a bundle already signed by that key: same signature file.
    d.klpctl(&["sign", "b.klp", "-s", "k.sec", "-x", "k2.sig"])
        .expect(0, &format!("already signed by key {k}\n"), "");
    assert_eq!(
        signify_payload(&d.read_text("k2.sig")),
        signify_payload(&sig)
    );
}

#[test]
fn key_files_work_in_both_tools() {
    let d = TempDir::new();
    // A klpctl secret key signs with signify, and signify verifies with the
    // klpctl public key; klpctl accepts the result.
    let k = keygen(&d, "k");
    d.write("m.ko", livepatch_ko());
    pack_m(&d, "b.klp", &["--unsigned"]).code(0);
    d.write("m", d.klpctl(&["manifest", "b.klp"]).code(0).stdout.clone());
    d.signify(&["-S", "-s", "k.sec", "-m", "m", "-x", "s.sig"])
        .expect(0, "", "");
    d.signify(&["-V", "-p", "k.pub", "-m", "m", "-x", "s.sig"])
        .expect(0, "Signature Verified\n", "");
    d.klpctl(&["attach", "b.klp", "s.sig"]).expect(
        0,
        &format!("attached signature by key {k}\n"),
        "",
    );
    d.mkdir("ring-k");
    d.copy("k.pub", "ring-k/k.pub");
    d.klpctl(&["verify", "b.klp", "--keyring", "ring-k"])
        .code(0);
    // Ed25519 is deterministic: klpctl's own signature is the same bytes.
    d.copy("b.klp", "c.klp");
    d.klpctl(&["sign", "c.klp", "-s", "k.sec", "-x", "k.sig"])
        .expect(0, &format!("already signed by key {k}\n"), "");
    assert_eq!(
        signify_payload(&d.read_text("k.sig")),
        signify_payload(&d.read_text("s.sig"))
    );

    // A signify secret key packs and signs with klpctl; signify verifies.
    d.signify(&["-G", "-n", "-p", "x.pub", "-s", "x.sec"])
        .code(0);
    let x = key_id_hex(&d.read_text("x.pub"));
    pack_m(&d, "x.klp", &["-s", "x.sec"]).code(0);
    d.klpctl(&["sign", "b.klp", "-s", "x.sec", "-x", "x.sig"])
        .expect(0, &format!("signed with key {x}\n"), "");
    d.mkdir("ring-x");
    d.copy("x.pub", "ring-x/x.pub");
    d.klpctl(&["verify", "x.klp", "--keyring", "ring-x"])
        .code(0);
    d.write(
        "xm",
        d.klpctl(&["manifest", "x.klp"]).code(0).stdout.clone(),
    );
    d.write(
        "from-bundle.sig",
        sig_file(&sig_records_of(&d.read("x.klp"))[0]),
    );
    d.signify(&["-V", "-p", "x.pub", "-m", "xm", "-x", "from-bundle.sig"])
        .expect(0, "Signature Verified\n", "");
    d.signify(&["-V", "-p", "x.pub", "-m", "m", "-x", "x.sig"])
        .expect(0, "Signature Verified\n", "");
    // Both keys on b.klp now; either alone is enough at threshold 1.
    let r = d.klpctl(&["verify", "b.klp", "--keyring", "ring-x"]);
    r.code(0);
    assert!(
        r.out()
            .ends_with(&verdict(1, 1, &[(&k, "untrusted"), (&x, "valid")])),
        "{}",
        r.out()
    );

    // A passphrase-protected key (non-zero KDF rounds) is refused clearly.
    let mut raw = signify_payload(&d.read_text("x.sec"));
    raw[4..8].copy_from_slice(&42u32.to_be_bytes());
    d.write(
        "enc.sec",
        format!("untrusted comment: encrypted\n{}\n", b64_encode(&raw)),
    );
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "enc.sec"]).fails(
        2,
        "klpctl: enc.sec: secret key is passphrase-protected; klpctl needs an unencrypted key (signify -G -n)",
    );
    // A corrupted secret key is caught by its checksum.
    let mut raw = signify_payload(&d.read_text("x.sec"));
    raw[50] ^= 1;
    d.write(
        "bad.sec",
        format!("untrusted comment: corrupted\n{}\n", b64_encode(&raw)),
    );
    d.klpctl_unchanged(&["sign", "b.klp", "-s", "bad.sec"])
        .fails(
            2,
            "klpctl: bad.sec: secret key checksum mismatch (corrupted key file)",
        );
}

// ------------------------------------------------------------ regression corpus

/// Replays the fuzzers' regression corpus: every file in
/// `fuzz/regressions/bundle/` must be rejected by `verify` with exit 3, and
/// every file in `fuzz/regressions/modinfo/` refused by `pack` with exit 2,
/// never a signal, and without leaving anything behind. A missing directory
/// is fine (nothing to replay yet).
#[test]
fn regression_corpus_replay() {
    let d = TempDir::new();
    keygen(&d, "k");
    d.mkdir("ring");
    d.copy("k.pub", "ring/k.pub");
    // The fuzzers' test key, so corpus bundles signed with it reach the
    // manifest and payload checks.
    if let Ok(entries) = std::fs::read_dir(root().join("docs/vectors/keys")) {
        for e in entries.flatten() {
            let name = e.file_name().into_string().unwrap();
            if name.ends_with(".pub") {
                d.write(&format!("ring/{name}"), std::fs::read(e.path()).unwrap());
            }
        }
    }
    let corpus = |kind: &str| -> Vec<std::path::PathBuf> {
        let Ok(entries) = std::fs::read_dir(root().join("fuzz/regressions").join(kind)) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        files
    };
    // Runs klpctl on one corpus file; describes what went wrong, if anything.
    let check = |args: &[&str], codes: &[i32]| -> Option<String> {
        let before = d.snapshot();
        let r = d.klpctl(args);
        let changed = before != d.snapshot();
        let _ = std::fs::remove_file(d.join("out.klp"));
        let stray_output = r.code != 0 && !r.stdout.is_empty();
        (!codes.contains(&r.code) || stray_output || changed).then(|| {
            format!(
                "{}: exit {} (want {codes:?}), changed files: {changed}, stderr {:?}",
                args.join(" "),
                r.code,
                r.err()
            )
        })
    };
    let mut failures = Vec::new();
    for f in corpus("bundle") {
        let p = f.to_str().unwrap();
        failures.extend(check(&["verify", p, "--keyring", "ring"], &[3]));
        // info and manifest do not check signatures, so they may accept
        // what verify rejects; they must not crash or fail otherwise.
        failures.extend(check(&["info", p], &[0, 3]));
        failures.extend(check(&["manifest", p], &[0, 3]));
    }
    for f in corpus("modinfo") {
        let p = f.to_str().unwrap();
        failures.extend(check(
            &[
                "pack",
                p,
                "-o",
                "out.klp",
                "--stream",
                "s",
                "--version",
                "1",
                "--unsigned",
            ],
            &[2],
        ));
    }
    assert!(
        failures.is_empty(),
        "regression corpus:\n{}",
        failures.join("\n")
    );
}

/// The locked-down appliance build: no authoring commands, no runtime
/// keyring, one embedded key. It trusts exactly the embedded key, refuses
/// `--keyring`, and says plainly that it cannot pack.
#[test]
fn locked_down_device_build() {
    let d = TempDir::new();
    keygen(&d, "a");
    keygen(&d, "x");
    let bin = build_binary_with(
        &root().join("target/itest-lockdown"),
        &[("KLPCTL_TRUSTED_KEYS", OsStr::new(&d.abs("a.pub")))],
        &["--no-default-features", "--features", "no-runtime-keyring"],
    );
    d.write("m.ko", livepatch_ko());
    pack_m(&d, "a.klp", &["-s", "a.sec"]).code(0);
    pack_m(&d, "x.klp", &["-s", "x.sec"]).code(0);
    d.mkdir("ring-x");
    d.copy("x.pub", "ring-x/x.pub");

    // The embedded key is trusted without any keyring directory.
    let r = d.run_bin(&bin, &["verify", "a.klp"]);
    r.code(0);
    assert!(r.out().starts_with("OK "), "{}", r.out());

    // Another key is not, and no directory can add it.
    let before = d.snapshot();
    let r = d.run_bin(&bin, &["verify", "x.klp"]);
    assert_same(&before, &d.snapshot(), &r);
    r.code(3);
    let r = d.run_bin(&bin, &["verify", "x.klp", "--keyring", "ring-x"]);
    assert_same(&before, &d.snapshot(), &r);
    r.code(2);
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("built without a runtime keyring"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );

    // No authoring commands on the device.
    for args in [
        &[
            "pack",
            "m.ko",
            "-o",
            "y.klp",
            "--stream",
            "s",
            "--version",
            "1",
            "-s",
            "a.sec",
        ][..],
        &["keygen", "-p", "n.pub", "-s", "n.sec"][..],
        &["sign", "a.klp", "-s", "a.sec"][..],
    ] {
        let r = d.run_bin(&bin, args);
        assert_same(&before, &d.snapshot(), &r);
        r.code(2);
        assert!(
            String::from_utf8_lossy(&r.stderr)
                .contains("device build without the authoring commands")
        );
    }
}

/// The kernel commands refuse bad command lines with exit 2 before they
/// look at the kernel, take the lock, or write any state. (Nothing here may
/// ever load a module into the machine running the tests.)
#[test]
fn kernel_commands_refuse_bad_usage_before_touching_anything() {
    let d = TempDir::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["apply"],
            "klpctl: apply needs BUNDLE... or --dir DIR (not both)",
        ),
        (
            &["apply", "a.klp", "--dir", "d"],
            "klpctl: apply needs BUNDLE... or --dir DIR (not both)",
        ),
        (
            &["apply", "--dir", "--json"],
            "klpctl: an option is missing its value (see klpctl --help)",
        ),
        (
            &["apply", "a.klp", "--timeout", "0"],
            "klpctl: --timeout must be 1 to 86400 seconds",
        ),
        (
            &["apply", "a.klp", "--timeout", "86401"],
            "klpctl: --timeout must be 1 to 86400 seconds",
        ),
        (
            &["apply", "a.klp", "--timeout", "-1"],
            "klpctl: expected a non-negative decimal number",
        ),
        (
            &["apply", "a.klp", "--force"],
            "klpctl: --force: unknown option (see klpctl --help)",
        ),
        (&["disable"], "klpctl: disable needs NAME"),
        (
            &["disable", "klp-bad"],
            "klpctl: klp-bad: invalid patch name ([A-Za-z0-9_], 1-55)",
        ),
        (
            &["disable", "../x"],
            "klpctl: ../x: invalid patch name ([A-Za-z0-9_], 1-55)",
        ),
        (
            &["disable", "a", "b"],
            "klpctl: b: unexpected argument (see klpctl --help)",
        ),
        (
            &["status", "--verbose"],
            "klpctl: --verbose: unknown option (see klpctl --help)",
        ),
    ];
    for (args, err) in cases {
        let before = d.snapshot();
        let r = d.klpctl(args);
        assert_same(&before, &d.snapshot(), &r);
        r.fails(2, err);
    }
}

/// `status` only reads; on the test machine it must describe the running
/// kernel as uname does, as valid JSON with the documented members.
#[test]
fn status_json_describes_the_running_kernel() {
    let d = TempDir::new();
    let before = d.snapshot();
    let r = d.klpctl(&["status", "--json"]);
    assert_same(&before, &d.snapshot(), &r);
    r.code(0);
    let j = Json::parse(r.out().trim_end());
    assert_eq!(j.keys(), ["kernel", "patches", "leftover"]);
    let k = j.get("kernel");
    assert_eq!(
        k.keys(),
        [
            "release",
            "machine",
            "build_id",
            "livepatch",
            "lockdown",
            "taint",
            "taint_flags"
        ]
    );
    let uname = |flag: &str| {
        let out = std::process::Command::new("uname")
            .arg(flag)
            .output()
            .expect("uname");
        String::from_utf8(out.stdout)
            .expect("uname output")
            .trim()
            .to_string()
    };
    assert_eq!(k.get("release").str(), uname("-r"));
    assert_eq!(k.get("machine").str(), uname("-m"));
    let tainted = std::fs::read_to_string("/proc/sys/kernel/tainted").expect("tainted");
    assert_eq!(
        k.get("taint").u64(),
        tainted.trim().parse::<u64>().expect("taint number")
    );
    assert_eq!(
        k.get("livepatch").bool(),
        std::path::Path::new("/sys/kernel/livepatch").is_dir()
    );
}

/// Makes a FIFO at `path` (mkfifo(1), so the tests need no libc crate).
fn mkfifo(path: &std::path::Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
}

/// klpctl with `args` in `d`, killed (and the test failed) if it has not
/// exited after 10 s, and shown to have changed nothing in `d`.
fn klpctl_bounded_unchanged(d: &TempDir, args: &[&str]) -> Run {
    let before = d.snapshot();
    let mut cmd = std::process::Command::new(klpctl_bin());
    cmd.args(args).current_dir(d.path());
    let r = run_bounded(cmd, 10);
    assert_same(&before, &d.snapshot(), &r);
    r
}

/// A FIFO (or any file that is not a regular file) given as a bundle is
/// refused before anything is read. Opening one used to block until a
/// writer came, which never happens: klpctl hung forever.
#[test]
fn a_fifo_given_as_a_bundle_is_refused_at_once() {
    let s = setup();
    let d = &s.dir;
    mkfifo(&d.join("f.klp"));
    for cmd in ["verify", "info"] {
        klpctl_bounded_unchanged(
            d,
            &[cmd, "f.klp", "--keyring", "ring"][..if cmd == "info" { 2 } else { 4 }],
        )
        .fails(1, "klpctl: f.klp: cannot read bundle: not a regular file");
    }
    let r = klpctl_bounded_unchanged(d, &["verify", "f.klp", "--keyring", "ring", "--json"]);
    r.code(1);
    let j = Json::parse(r.out().trim_end());
    assert_eq!(j.get("ok"), &Json::Bool(false));
    assert_eq!(j.get("exit").u64(), 1);
    // /dev/null is a character device: the same.
    klpctl_bounded_unchanged(d, &["verify", "/dev/null", "--keyring", "ring"]).fails(
        1,
        "klpctl: /dev/null: cannot read bundle: not a regular file",
    );
}

/// A FIFO named like a key in the keyring is skipped with a warning, like
/// any other unreadable key file, instead of blocking; the real key in the
/// same directory still verifies the bundle.
#[test]
fn a_fifo_in_the_keyring_is_skipped_not_waited_for() {
    let s = setup();
    let d = &s.dir;
    mkfifo(&d.join("ring/evil.pub"));
    let r = klpctl_bounded_unchanged(d, &["verify", "b.klp", "--keyring", "ring"]);
    r.code(0);
    assert!(
        r.out()
            .starts_with(&format!("OK {MOD_NAME} stream s version 1\n"))
    );
    assert_eq!(
        r.err(),
        "klpctl: warning: ignoring key file evil.pub: cannot read key file: not a regular file\n"
    );
    // A FIFO as the secret key of an authoring command: refused, no hang.
    mkfifo(&d.join("f.sec"));
    klpctl_bounded_unchanged(d, &["sign", "b.klp", "-s", "f.sec"]).fails(
        1,
        "klpctl: f.sec: cannot read secret key: not a regular file",
    );
}

/// Paths that are not UTF-8 cannot be carried exactly by JSON strings.
/// `--json` writes each byte that is not part of a UTF-8 sequence as a lone
/// surrogate `\udc80`-`\udcff` (PEP 383), which gives back the exact bytes,
/// and never confuses byte 0xff with the character U+00FF.
#[test]
fn json_paths_that_are_not_utf8_round_trip() {
    use std::os::unix::ffi::OsStrExt;
    let s = setup();
    let d = &s.dir;
    // "b", byte 0xff, "ÿ" (U+00FF as UTF-8), ".klp"
    let name: &[u8] = b"b\xff\xc3\xbf.klp";
    std::fs::copy(d.join("b.klp"), d.path().join(OsStr::from_bytes(name))).unwrap();
    let mut cmd = std::process::Command::new(klpctl_bin());
    cmd.arg("verify")
        .arg(OsStr::from_bytes(name))
        .args(["--keyring", "ring", "--json"])
        .current_dir(d.path());
    let r = run(cmd);
    r.code(0);
    assert!(
        r.out().contains(r#""bundle":"b\udcffÿ.klp""#),
        "{}",
        r.out()
    );
    let j = Json::parse(r.out().trim_end());
    assert_eq!(j.get("bundle").raw(), name);
}
