//! `klpctl pack`: the bundle it writes, what `verify` and `info` show of
//! it, the inputs it refuses, and signing with several keys.

use super::*;

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
fn pack_refuses_bad_input_and_leaves_no_output() {
    let s = setup();
    let d = &s.dir;
    d.write(
        "arm.ko",
        fake_ko(
            format!("livepatch=Y\0name=klp_arm\0vermagic={RELEASE} SMP \0").as_bytes(),
            183,
        ),
    );
    // The refusals, and that they leave no output, are rows of the table in
    // exit_codes.rs, which run in a directory holding the same inputs.

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

    // The same arguments without the mistakes work.
    pack_m(d, "out.klp", &["--unsigned"]).code(0);
}

#[test]
fn pack_products_are_signed_and_shown() {
    let s = setup();
    let d = &s.dir;
    let purl = "pkg:deb/debian/linux-image-6.12.117%2Bdeb12-amd64@6.12.117-1~bpo12%2B1";
    let cpe = "cpe:2.3:o:linux:linux_kernel:6.12.117:*:*:*:*:*:*:*";
    pack_m(
        d,
        "p.klp",
        &["--unsigned", "--product", purl, "--product", cpe],
    )
    .code(0);
    let man = d.klpctl(&["manifest", "p.klp"]);
    let text = man.code(0).out();
    assert!(
        text.contains(&format!(
            r#""cves":[],"products":["{purl}","{cpe}"],"description""#
        )),
        "{text}"
    );
    let info = d.klpctl(&["info", "p.klp", "--json"]);
    assert!(
        info.code(0)
            .out()
            .contains(&format!(r#""products":["{purl}","{cpe}"]"#)),
        "{}",
        info.out()
    );
    let info = d.klpctl(&["info", "p.klp"]);
    assert!(
        info.code(0)
            .out()
            .contains(&format!("  products: {purl} {cpe}\n")),
        "{}",
        info.out()
    );
    // Without --product the field is absent: the manifest an earlier klpctl
    // wrote, byte for byte.
    pack_m(d, "none.klp", &["--unsigned"]).code(0);
    let none = d.klpctl(&["manifest", "none.klp"]);
    assert!(!none.code(0).out().contains("products"), "{}", none.out());
    // 16 are allowed, a 17th is refused and writes nothing.
    let many: Vec<String> = (0..17).map(|i| format!("pkg:generic/p{i}@1")).collect();
    let mut args = vec!["--unsigned"];
    for p in &many[..16] {
        args.extend(["--product", p.as_str()]);
    }
    pack_m(d, "16.klp", &args).code(0);
    args.extend(["--product", many[16].as_str()]);
    pack_m(d, "17.klp", &args).fails(2, "klpctl: --product: at most 16, each given once");
    assert!(!d.join("17.klp").exists());
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
}

/// A CVE given twice (in any case) would become two identical VEX
/// statements: refused like a repeated --product, writing nothing.
#[test]
fn pack_refuses_a_repeated_cve() {
    let s = setup();
    let d = &s.dir;
    for (a, b) in [
        ("CVE-2024-1086", "CVE-2024-1086"),
        ("CVE-2024-1086", "cve-2024-1086"),
    ] {
        let args = [
            "pack",
            "m.ko",
            "-o",
            "dup.klp",
            "--stream",
            "s",
            "--version",
            "1",
        ];
        let mut args = args.to_vec();
        args.extend(["--unsigned", "--cve", a, "--cve", "CVE-2023-1", "--cve", b]);
        d.klpctl_unchanged(&args)
            .fails(2, &format!("klpctl: {b}: --cve: each given once"));
    }
    // Negative: distinct CVEs are all kept, in order.
    pack_m(
        d,
        "two.klp",
        &[
            "--unsigned",
            "--cve",
            "CVE-2024-1086",
            "--cve",
            "CVE-2024-1087",
        ],
    )
    .code(0);
    let man = d.klpctl(&["manifest", "two.klp"]);
    assert!(
        man.code(0)
            .out()
            .contains(r#""cves":["CVE-2024-1086","CVE-2024-1087"]"#),
        "{}",
        man.out()
    );
}
