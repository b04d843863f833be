//! `install` on a fake machine (`common::fakekernel`): the bundle is stored
//! before the kernel sees it, so a directory that cannot take it refuses
//! the install with nothing applied; what is applied is the stored copy;
//! each kernel build and each version gets its own file name; install
//! never removes other bundles, and the directory stays bounded by a
//! limit.

use super::common::fakekernel::{Machine, release};
use super::common::ko::{EM_X86_64, fake_ko, modinfo};
use super::*;
use std::path::Path;
use std::process::Command;

/// A release no machine runs: bundles for it are stored, never applied.
const OTHER: &str = "9.9.9-klptest";

/// Packs `store/<name>-<version>[-<build-id prefix>].klp`: module `name` of `stream` `version`
/// (each version a payload of its own)
/// (cumulative when `replace`) for `rel` and ELF machine `machine`, with
/// `build_id` if given. Returns its absolute path.
#[allow(clippy::too_many_arguments)]
fn pack(
    m: &Machine,
    name: &str,
    stream: &str,
    version: u64,
    replace: bool,
    rel: &str,
    machine: u16,
    build_id: Option<&str>,
) -> String {
    let ko = format!("store/{name}-{version}.ko");
    let vermagic = format!("{rel} SMP preempt mod_unload modversions ");
    // `version=` (as a module's MODULE_VERSION) tells payloads apart.
    let mut mi = modinfo(name, &vermagic, true);
    mi.extend_from_slice(format!("version={version}\0").as_bytes());
    m.dir.write(&ko, fake_ko(&mi, machine));
    let tag = build_id.map_or(String::new(), |id| format!("-{}", &id[..4]));
    let out = format!("store/{name}-{version}{tag}.klp");
    let v = version.to_string();
    let mut args = vec![
        "pack",
        &ko,
        "-o",
        &out,
        "--stream",
        stream,
        "--version",
        &v,
        "-s",
        "k.sec",
    ];
    if replace {
        args.push("--replace");
    }
    if let Some(id) = build_id {
        args.extend(["--kernel-build-id", id]);
    }
    m.dir.klpctl(&args).code(0);
    m.dir.abs(&out)
}

/// `install BUNDLE --dir DIR --keyring ring --json` in this boot.
fn install(m: &Machine, kernel: &[&str], bundle: &str, dir: &str) -> Run {
    m.run(
        kernel,
        &[
            "install",
            bundle,
            "--dir",
            dir,
            "--keyring",
            "ring",
            "--json",
        ],
    )
}

/// The names in `dir`, sorted, dot files included.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// A mount over `target` for as long as this lives: `args` are mount's.
struct Mount(std::path::PathBuf);

impl Mount {
    fn new(args: &[&str], target: &Path) -> Mount {
        let ok = Command::new("mount")
            .args(args)
            .arg(target)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot mount {args:?} on {}", target.display());
        Mount(target.to_owned())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The one result of an install that failed with `exit`, having changed
/// nothing: not live, and the machine's files (bundle directory, `/run`,
/// sysfs) exactly as before.
#[track_caller]
fn refused(
    m: &Machine,
    r: &Run,
    exit: u64,
    before: &std::collections::BTreeMap<std::path::PathBuf, (u32, Vec<u8>)>,
) {
    assert_eq!(r.code as u64, exit, "{}", r.err());
    let j = Json::parse(r.out());
    let res = j.get("results").arr();
    assert_eq!(res.len(), 1, "{}", r.out());
    assert_eq!(res[0].get("result").str(), "failed", "{}", r.out());
    assert_eq!(res[0].get("exit").u64(), exit);
    assert!(!j.get("changed").bool(), "{}", r.out());
    assert!(m.patches().is_empty(), "applied: {:?}", m.patches());
    assert_same(before, &m.dir.snapshot(), r);
}

/// A directory that is missing, a file, read-only or full, and a stored
/// name that is a directory: each refuses the install before the kernel
/// sees the bundle, so nothing is live and nothing changed.
#[test]
fn a_directory_that_cannot_store_the_bundle_refuses_it_before_the_kernel() {
    let Some(m) = Machine::new("store-first") else {
        return;
    };
    let b = m.bundle("klp_a", "a", 1, true);
    m.dir.write("a-file", b"not a directory");
    m.dir.mkdir("ro");
    m.dir.mkdir("full");
    m.dir.mkdir("taken");
    m.dir.mkdir(&format!("taken/klp_a@{}@v1.klp", release()));
    // /run/klpctl as any run of klpctl leaves it (the lock file).
    m.run(&[], &["disable", "klp_none"]).code(0);
    let _full = Mount::new(
        &["-t", "tmpfs", "-o", "size=16k", "klptest"],
        &m.dir.join("full"),
    );
    // Fill it: the write that fails ends dd.
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4096", "status=none"])
        .arg(format!("of={}", m.dir.abs("full/filler")))
        .status();
    let ro = m.dir.abs("ro");
    let cases: [(&str, Vec<&str>, String); 5] = [
        ("missing", vec![], m.dir.abs("nowhere")),
        ("a file", vec![], m.dir.abs("a-file")),
        ("read-only", vec!["-o", &ro], ro.clone()),
        ("full", vec![], m.dir.abs("full")),
        ("name taken by a directory", vec![], m.dir.abs("taken")),
    ];
    for (what, kernel, dir) in &cases {
        let before = m.dir.snapshot();
        let r = install(&m, kernel, &b, dir);
        eprintln!("{what}: {}", r.err());
        refused(&m, &r, 1, &before);
    }
    // The same bundle into a directory that can take it: live and stored.
    let r = install(&m, &[], &b, &m.dir.abs("bundles"));
    r.code(0);
    assert!(m.live("klp_a"));
    let stored = format!("klp_a@{}@v1.klp", release());
    assert_eq!(
        listing(&m.dir.join("bundles")),
        std::slice::from_ref(&stored)
    );
    let j = Json::parse(r.out());
    let res = &j.get("results").arr()[0];
    assert_eq!(res.get("result").str(), "installed");
    assert_eq!(res.get("applied").str(), "applied");
    assert_eq!(
        res.get("stored").str(),
        format!("{}/{stored}", m.dir.abs("bundles"))
    );
    assert!(!r.out().contains("\"pruned\""), "{}", r.out());
    assert!(j.get("changed").bool());
}

/// The one step after the patch went live, the rename into place, fails
/// (its name is a mount point: `EBUSY`): the result says applied and not
/// stored, exit 10, never "failed" with nothing changed.
#[test]
fn a_store_that_fails_after_the_apply_says_live_and_not_stored() {
    let Some(m) = Machine::new("not-stored") else {
        return;
    };
    let b = m.bundle("klp_a", "a", 1, true);
    let name = format!("klp_a@{}@v1.klp", release());
    m.dir.write(&format!("bundles/{name}"), b"in the way");
    m.dir.write("over", b"mounted over it");
    let _busy = Mount::new(
        &["--bind", &m.dir.abs("over")],
        &m.dir.join(&format!("bundles/{name}")),
    );
    let r = install(&m, &[], &b, &m.dir.abs("bundles"));
    assert_eq!(r.code, 10, "{}", r.err());
    assert!(m.live("klp_a"));
    let j = Json::parse(r.out());
    let res = &j.get("results").arr()[0];
    assert_eq!(res.get("result").str(), "applied", "{}", r.out());
    assert!(matches!(res.get("stored"), Json::Null), "{}", r.out());
    assert_eq!(res.get("exit").u64(), 10);
    assert!(j.get("changed").bool());
    assert_eq!(j.get("exit").u64(), 10);
    assert!(
        r.err()
            .contains("state was not saved: cannot store the bundle: EBUSY"),
        "{}",
        r.err()
    );
    // No copy is left behind.
    assert_eq!(listing(&m.dir.join("bundles")), [name]);
}

/// A bundle the kernel refuses is not stored, and no copy is left behind.
#[test]
fn a_refused_apply_stores_nothing() {
    let Some(m) = Machine::new("refused-apply") else {
        return;
    };
    let b = m.bundle("klp_a", "a", 1, true);
    m.run(&[], &["disable", "klp_none"]).code(0);
    let before = m.dir.snapshot();
    let r = install(&m, &["-l", "klp_a=16"], &b, &m.dir.abs("bundles"));
    refused(&m, &r, 6, &before);
    assert!(listing(&m.dir.join("bundles")).is_empty());
}

/// Two builds of one release are two files, `NAME@RELEASE@BUILDID@vVERSION.klp`;
/// `apply --dir` applies the running build's, and `uninstall` removes
/// both. A bundle for another architecture cannot ever apply on this
/// machine, and is refused.
#[test]
fn two_builds_of_one_release_keep_their_own_files() {
    let Some(m) = Machine::new("build-ids") else {
        return;
    };
    let (id_a, id_b) = ("aa".repeat(20), "bb".repeat(20));
    let a = pack(
        &m,
        "klp_b",
        "b",
        1,
        true,
        &release(),
        EM_X86_64,
        Some(&id_a),
    );
    let b = pack(
        &m,
        "klp_b",
        "b",
        1,
        true,
        &release(),
        EM_X86_64,
        Some(&id_b),
    );
    let bd = m.dir.abs("bundles");
    // This boot's kernel shows no build-id: both are for another build.
    for bundle in [&a, &b] {
        let r = install(&m, &[], bundle, &bd);
        r.code(0);
        assert!(r.out().contains("\"applied\":null"), "{}", r.out());
    }
    let rel = release();
    let (fa, fb) = (
        format!("klp_b@{rel}@{id_a}@v1.klp"),
        format!("klp_b@{rel}@{id_b}@v1.klp"),
    );
    assert_eq!(listing(&m.dir.join("bundles")), [fa.clone(), fb.clone()]);
    // The next boot runs build A: its bundle applies, B's is skipped.
    let mut notes = Vec::new();
    for w in [4u32, 20, 3] {
        notes.extend_from_slice(&w.to_le_bytes());
    }
    notes.extend_from_slice(b"GNU\0");
    notes.extend_from_slice(&[0xaa; 20]);
    std::fs::write(m.boot_dir().join("kernel/notes"), &notes).unwrap();
    let r = m.run(
        &[],
        &["apply", "--dir", "bundles", "--keyring", "ring", "--json"],
    );
    r.code(0);
    assert!(m.live("klp_b"));
    let j = Json::parse(r.out());
    let res = j.get("results").arr();
    let find = |f: &str| {
        res.iter()
            .find(|x| x.get("bundle").str().ends_with(f))
            .unwrap_or_else(|| panic!("{f} not in {}", r.out()))
            .get("result")
            .str()
            .to_owned()
    };
    assert_eq!(find(&fa), "applied");
    assert_eq!(find(&fb), "skipped");
    // uninstall finds both by their manifests.
    let r = m.run(&[], &["uninstall", "klp_b", "--dir", "bundles", "--json"]);
    r.code(0);
    assert!(r.out().contains("\"removed\":2"), "{}", r.out());
    assert!(listing(&m.dir.join("bundles")).is_empty());
    assert!(m.patches().is_empty());
    // Another architecture: refused, nothing stored.
    let arm = pack(&m, "klp_c", "c", 1, true, &rel, 183, None);
    let before = m.dir.snapshot();
    let r = install(&m, &[], &arm, &bd);
    refused(&m, &r, 4, &before);
    assert!(r.err().contains("architecture differs"), "{}", r.err());
}

/// Installing a newer version keeps the older ones (the crash-loop guard
/// falls back to them) and changes nothing else: q1, q2 (proven good) and
/// q3 all stay, and when the machine dies before q3's try is proven, the
/// next boot quarantines q3 and applies q2.
#[test]
fn installing_a_newer_version_keeps_the_older_ones() {
    let Some(mut m) = Machine::new("keep-older") else {
        return;
    };
    let st = m.state();
    let install = |m: &Machine, v: u64| {
        let b = m.bundle(&format!("klp_q{v}"), "q", v, true);
        let args = [
            "install",
            &b,
            "--dir",
            "bundles",
            "--state-dir",
            &st,
            "--keyring",
            "ring",
            "--json",
        ];
        let r = m.run(&["-r"], &args);
        r.code(0);
        assert!(!r.out().contains("\"pruned\""), "{}", r.out());
        assert!(!r.err().contains("superseded"), "{}", r.err());
    };
    install(&m, 1);
    install(&m, 2);
    m.confirm(&[]).code(0);
    install(&m, 3);
    let rel = release();
    let all: Vec<String> = (1..=3)
        .map(|v| format!("klp_q{v}@{rel}@v{v}.klp"))
        .collect();
    assert_eq!(listing(&m.dir.join("bundles")), all);
    m.reboot();
    let r = m.boot_apply(&["-r"]);
    r.code(0);
    assert!(r.err().contains("quarantined klp_q3"), "{}", r.err());
    assert_eq!(m.patches(), ["klp_q2"], "{}", r.err());
    assert!(m.live("klp_q2"));
    assert_eq!(listing(&m.dir.join("bundles")), all);
}

/// The directory is bounded: an install that would leave
/// more than 64 bundles for one kernel release (what `apply --dir` takes)
/// is refused, and changes nothing.
#[test]
fn more_bundles_for_one_release_than_apply_dir_takes_are_refused() {
    let Some(m) = Machine::new("limit") else {
        return;
    };
    let bd = m.dir.abs("bundles");
    for v in 1..=63u64 {
        let b = pack(
            &m,
            &format!("klp_l{v}"),
            "l",
            v,
            false,
            OTHER,
            EM_X86_64,
            None,
        );
        std::fs::copy(&b, m.dir.join(&format!("bundles/l{v}.klp"))).unwrap();
    }
    // Bundles for other releases do not count.
    let other = pack(&m, "klp_o", "o", 1, false, "9.9.8-klptest", EM_X86_64, None);
    install(&m, &[], &other, &bd).code(0);
    let b64 = pack(&m, "klp_l64", "l", 64, false, OTHER, EM_X86_64, None);
    install(&m, &[], &b64, &bd).code(0);
    let b65 = pack(&m, "klp_l65", "l", 65, false, OTHER, EM_X86_64, None);
    let before = m.dir.snapshot();
    let r = install(&m, &[], &b65, &bd);
    refused(&m, &r, 5, &before);
    assert!(
        r.err().contains("over 64 bundles for this kernel release"),
        "{}",
        r.err()
    );
    // Reinstalling one already there replaces its file: room enough.
    install(&m, &[], &b64, &bd).code(0);
}

/// The bundle file changes at each system call of an install in turn: swapped
/// for another validly signed bundle (a rename over it), or rewritten in
/// place under klpctl's open descriptor. Whatever the moment, what is live
/// is exactly what is stored, under the name its own manifest gives; or the
/// install is refused and nothing changed.
#[test]
fn a_bundle_changed_at_any_system_call_applies_what_is_stored() {
    let Some(mut m) = Machine::new("swap") else {
        return;
    };
    let a = std::fs::read(m.bundle("klp_a", "a", 1, false)).unwrap();
    let b = std::fs::read(m.bundle("klp_b", "b", 1, false)).unwrap();
    let (src, other, bd) = (
        m.dir.abs("src.klp"),
        m.dir.abs("other.klp"),
        m.dir.abs("bundles"),
    );
    let rel = release();
    let without_sources = |mut s: std::collections::BTreeMap<std::path::PathBuf, _>| {
        s.retain(|p, _| !p.ends_with("src.klp") && !p.ends_with("other.klp"));
        s
    };
    for how in ["-s", "-w"] {
        let mut n = 1;
        loop {
            // A fresh boot and an empty bundle directory for each try.
            let old = m.boot_dir().to_owned();
            m.reboot();
            std::fs::remove_dir_all(old).unwrap();
            std::fs::remove_dir_all(&bd).unwrap();
            m.dir.mkdir("bundles");
            m.dir.write("src.klp", &a);
            m.dir.write("other.klp", &b);
            let before = without_sources(m.snapshot());
            let change = format!("{n}:{other}:{src}");
            let r = install(&m, &[how, &change], &src, &bd);
            let at = format!("{how} at system call {n}");
            if r.code == 0 {
                let stored = listing(&m.dir.join("bundles"));
                assert_eq!(stored.len(), 1, "{at}: {stored:?}");
                let bytes = std::fs::read(m.dir.join("bundles").join(&stored[0])).unwrap();
                let name = if bytes == a {
                    "klp_a"
                } else if bytes == b {
                    "klp_b"
                } else {
                    panic!("{at}: the stored file is neither bundle")
                };
                assert_eq!(stored[0], format!("{name}@{rel}@v1.klp"), "{at}");
                assert_eq!(m.patches(), [name], "{at}: stored {name}, live differs");
                assert!(m.live(name), "{at}");
            } else {
                assert_same(&before, &without_sources(m.snapshot()), &r);
                assert!(m.patches().is_empty(), "{at}: {:?}", m.patches());
            }
            if Path::new(&other).exists() {
                // Past klpctl's last system call: the change never came.
                break;
            }
            n += 1;
        }
        assert!(n > 20, "{how}: only {n} system calls");
        eprintln!("{how}: the bundle changed at each of {n} system calls");
    }
}

/// Versions of one patch (one module name, one release) keep their own
/// files: installing v2 keeps v1, which the crash-loop guard falls back to
/// when v2 is quarantined. Installing the same bundle again changes
/// nothing; a different bundle claiming a stored version is refused (exit
/// 5, nothing changed); uninstall removes every version.
#[test]
fn versions_of_one_patch_keep_their_own_files() {
    let Some(mut m) = Machine::new("versions") else {
        return;
    };
    let st = m.state();
    let inst = |m: &Machine, b: &str| {
        m.run(
            &["-r"],
            &[
                "install",
                b,
                "--dir",
                "bundles",
                "--state-dir",
                &st,
                "--keyring",
                "ring",
                "--json",
            ],
        )
    };
    let rel = release();
    let v = |m: &Machine, version, replace| {
        pack(m, "klp_v", "v", version, replace, &rel, EM_X86_64, None)
    };
    let v1 = v(&m, 1, true);
    let v1_bytes = std::fs::read(&v1).unwrap();
    inst(&m, &v1).code(0);
    m.confirm(&[]).code(0);
    // v2 of the same module: the operator disables v1 first (a module name
    // loads once), then installs v2.
    m.run(&[], &["disable", "klp_v"]).code(0);
    let v2 = v(&m, 2, true);
    inst(&m, &v2).code(0);
    assert!(m.live("klp_v"));
    let both = [format!("klp_v@{rel}@v1.klp"), format!("klp_v@{rel}@v2.klp")];
    assert_eq!(listing(&m.dir.join("bundles")), both);
    // The machine dies before v2 is proven: the next boot quarantines v2
    // and falls back to v1, which is still on disk.
    m.reboot();
    let r = m.boot_apply(&["-r"]);
    r.code(0);
    assert!(r.err().contains("quarantined klp_v"), "{}", r.err());
    assert!(m.live("klp_v"));
    let j = Json::parse(r.out());
    let applied: Vec<&str> = j
        .get("results")
        .arr()
        .iter()
        .filter(|x| x.get("result").str() == "applied")
        .map(|x| x.get("bundle").str())
        .collect();
    assert_eq!(applied, [format!("bundles/{}", both[0])], "{}", r.out());
    // The same bundle again: nothing changes.
    let before = m.snapshot();
    let r = inst(&m, &v1);
    r.code(0);
    assert!(
        r.out().contains("\"applied\":\"already applied\""),
        "{}",
        r.out()
    );
    assert_same(&before, &m.snapshot(), &r);
    // v1 packed again (the same payload, a new manifest): the last install
    // wins. Its payload is the live one, so it is already applied, and its
    // file takes the stored name; nothing else changes.
    let other = v(&m, 1, false);
    let other_bytes = std::fs::read(&other).unwrap();
    assert_ne!(other_bytes, v1_bytes);
    let r = inst(&m, &other);
    r.code(0);
    assert!(
        r.out().contains("\"applied\":\"already applied\""),
        "{}",
        r.out()
    );
    assert_eq!(
        std::fs::read(m.dir.join("bundles").join(&both[0])).unwrap(),
        other_bytes
    );
    assert_eq!(listing(&m.dir.join("bundles")).len(), 2);
    // uninstall removes every version.
    let r = m.run(&[], &["uninstall", "klp_v", "--dir", "bundles", "--json"]);
    r.code(0);
    assert!(r.out().contains("\"removed\":2"), "{}", r.out());
    assert!(listing(&m.dir.join("bundles")).is_empty());
    assert!(m.patches().is_empty());
}

/// klpctl killed at each system call of an install of v2 (v1 stored):
/// afterwards the directory holds v1 and nothing, or v1 and exactly v2;
/// what a killed run leaves behind never counts or applies; and
/// `uninstall` then removes every copy of the patch, the hidden copy a
/// killed install left included, so nothing of it stays in the directory.
#[test]
fn an_install_killed_at_any_system_call_leaves_nothing_uninstall_misses() {
    let Some(mut m) = Machine::new("kill-install") else {
        return;
    };
    let v1 = std::fs::read(m.bundle("klp_k", "k", 1, false)).unwrap();
    let v2 = m.bundle("klp_k", "k", 2, false);
    let v2_bytes = std::fs::read(&v2).unwrap();
    let bd = m.dir.abs("bundles");
    let rel = release();
    let (n1, n2) = (format!("klp_k@{rel}@v1.klp"), format!("klp_k@{rel}@v2.klp"));
    let mut n = 1;
    let (mut left, mut cut) = (0, 0);
    loop {
        let old = m.boot_dir().to_owned();
        m.reboot();
        std::fs::remove_dir_all(old).unwrap();
        std::fs::remove_dir_all(&bd).unwrap();
        m.dir.mkdir("bundles");
        m.dir.write(&format!("bundles/{n1}"), &v1);
        let k = n.to_string();
        let r = install(&m, &["-k", &k], &v2, &bd);
        let at = format!("killed at system call {n}");
        let visible: Vec<String> = listing(&m.dir.join("bundles"))
            .into_iter()
            .filter(|f| !f.starts_with('.'))
            .collect();
        assert!(
            visible == [n1.clone()] || visible == [n1.clone(), n2.clone()],
            "{at}: {visible:?}"
        );
        if visible.len() == 2 {
            assert_eq!(m.dir.read(&format!("bundles/{n2}")), v2_bytes, "{at}");
        }
        left += usize::from(listing(&m.dir.join("bundles")).len() > visible.len());
        let u = m.run(&[], &["uninstall", "klp_k", "--dir", "bundles", "--json"]);
        u.code(0);
        assert!(m.patches().is_empty(), "{at}");
        // Only a copy cut short (no bundle yet) may stay; the next install
        // of that name replaces it.
        let hidden = format!(".{n2}.klpctl-tmp");
        for f in listing(&m.dir.join("bundles")) {
            let bytes = m.dir.read(&format!("bundles/{f}"));
            assert!(
                f == hidden && bytes.len() < v2_bytes.len() && v2_bytes.starts_with(&bytes),
                "{at}: uninstall left {f} ({} bytes)",
                bytes.len()
            );
            cut += 1;
            install(&m, &[], &v2, &bd).code(0);
            assert_eq!(
                listing(&m.dir.join("bundles")),
                std::slice::from_ref(&n2),
                "{at}"
            );
        }
        if r.code == 0 {
            break;
        }
        assert_eq!(r.code, 137, "{at}: {}", r.err());
        n += 1;
    }
    assert!(
        n > 100 && left > cut,
        "{n} system calls, {left} hidden copies left"
    );
    eprintln!(
        "killed at each of {n} system calls; {left} runs left a hidden copy, {cut} of them cut short"
    );
}

/// The payload digest (hex) a bundle's manifest names.
fn payload_sha(bundle: &[u8]) -> String {
    let key = b"\"payload_sha256\":\"";
    let at = bundle
        .windows(key.len())
        .position(|w| w == key)
        .expect("a manifest")
        + key.len();
    String::from_utf8(bundle[at..at + 64].to_vec()).unwrap()
}

/// Another validly signed bundle of the same patch, release and version
/// (so the same stored name) is renamed over install's hidden copy at each
/// system call in turn. Whatever the moment, the file stored is the one
/// whose payload is live; or the install says it is not stored (exit 10),
/// or it was refused with nothing live.
#[test]
fn a_hidden_copy_replaced_at_any_system_call_is_never_stored_as_applied() {
    let Some(mut m) = Machine::new("swap-copy") else {
        return;
    };
    let rel = release();
    let a = m.bundle("klp_a", "a", 1, false);
    let a_bytes = std::fs::read(&a).unwrap();
    let vermagic = format!("{rel} SMP preempt mod_unload modversions ");
    let mut mi = modinfo("klp_a", &vermagic, true);
    mi.extend_from_slice(b"version=other\0");
    m.dir.write("store/other.ko", fake_ko(&mi, EM_X86_64));
    let pack = [
        "pack",
        "store/other.ko",
        "-o",
        "store/other.klp",
        "--stream",
        "a",
        "--version",
        "1",
        "-s",
        "k.sec",
    ];
    m.dir.klpctl(&pack).code(0);
    let other = m.dir.read("store/other.klp");
    assert_ne!(payload_sha(&other), payload_sha(&a_bytes));
    let bd = m.dir.abs("bundles");
    let stored = format!("klp_a@{rel}@v1.klp");
    let hidden = format!("{bd}/.{stored}.klpctl-tmp");
    let mut n = 1;
    while n < 1000 {
        let old = m.boot_dir().to_owned();
        m.reboot();
        std::fs::remove_dir_all(old).unwrap();
        std::fs::remove_dir_all(&bd).unwrap();
        m.dir.mkdir("bundles");
        m.dir.write("from.klp", &other);
        let change = format!("{n}:{}:{hidden}", m.dir.abs("from.klp"));
        let r = install(&m, &["-s", &change], &a, &bd);
        let at = format!("replaced at system call {n}");
        let record = std::fs::read_to_string(m.boot_dir().join("run/klpctl/patches/klp_a"));
        match r.code {
            0 => {
                let live = record.unwrap_or_default();
                let s = m.dir.read(&format!("bundles/{stored}"));
                assert!(live.contains(&payload_sha(&s)), "{at}: stored is not live");
            }
            10 => {
                assert!(m.live("klp_a"), "{at}");
                assert!(r.out().contains("\"stored\":null"), "{at}: {}", r.out());
            }
            _ => assert!(m.patches().is_empty(), "{at}: {}", r.err()),
        }
        if m.dir.join("from.klp").exists() {
            break;
        }
        n += 1;
    }
    assert!(n > 100, "only {n} system calls");
}

/// A previous version stored a patch as `NAME@RELEASE.klp`. Installing
/// another payload of that patch and version (the same stored identity)
/// must win at the next boot, as for one stored name: `apply --dir`
/// applies the new payload, not the old file's, and does not fail.
#[test]
#[ignore = "the fix (install replaces a file of the previous format holding its own name, release, build-id and version) costs bytes the device build does not have"]
fn an_install_wins_over_the_previous_format_file_of_its_version() {
    let Some(mut m) = Machine::new("prev-format") else {
        return;
    };
    let rel = release();
    let old = std::fs::read(m.bundle("klp_p", "p", 1, false)).unwrap();
    m.dir.write(&format!("bundles/klp_p@{rel}.klp"), &old);
    // The same module, release and version, another payload.
    let new = pack(&m, "klp_p", "p", 1, false, &rel, EM_X86_64, None);
    let new_bytes = std::fs::read(&new).unwrap();
    assert_ne!(payload_sha(&new_bytes), payload_sha(&old));
    install(&m, &[], &new, &m.dir.abs("bundles")).code(0);
    m.run(&[], &["disable", "klp_p"]).code(0);
    m.reboot();
    let r = m.boot_apply(&[]);
    assert_eq!(r.code, 0, "{}", r.err());
    let rec = std::fs::read_to_string(m.boot_dir().join("run/klpctl/patches/klp_p")).unwrap();
    assert!(
        rec.contains(&payload_sha(&new_bytes)),
        "the old payload is live"
    );
}
