//! Every exit code and its one-line message.

use super::*;

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
