//! `klpctl keygen`: signify-compatible key files, their modes, and never
//! overwriting a key.

use super::*;

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
