//! Every state file klpctl reads (the patch record, the per-boot and the
//! persistent rollback floors, the crash-loop guard, the VEX bookkeeping)
//! damaged one byte at a time on a fake machine with a live patch: no
//! damage makes the binary panic or die by a signal, and every `--json`
//! output stays one valid JSON object.

use super::common::fakekernel::Machine;
use super::common::ko::{fake_ko, modinfo};
use super::*;

const EM_X86_64: u16 = 62;

/// Mutations of `orig`: each byte replaced by a few telling values or
/// removed, the file cut at each length, and every run of digits replaced
/// by numbers at the edges of u64 (dates included). `step` thins the
/// per-byte ones.
fn mutations(orig: &[u8], step: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in (0..orig.len()).step_by(step) {
        for b in [0u8, b'\n', b' ', b'9', b'-', b',', 0x7f, 0xff] {
            let mut v = orig.to_vec();
            v[i] = b;
            out.push(v);
        }
        let mut v = orig.to_vec();
        v.remove(i);
        out.push(v);
        out.push(orig[..i].to_vec());
    }
    let text = String::from_utf8_lossy(orig).into_owned();
    let mut starts = Vec::new();
    let bytes = text.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()) {
            starts.push(i);
        }
    }
    for &s in &starts {
        let e = s + bytes[s..].iter().take_while(|c| c.is_ascii_digit()).count();
        for n in [
            "0",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
            "253402300799",
            "253402300800",
            "9223372036854775807",
        ] {
            let mut v = bytes[..s].to_vec();
            v.extend_from_slice(n.as_bytes());
            v.extend_from_slice(&bytes[e..]);
            out.push(v);
        }
    }
    out.push(Vec::new());
    out.push(vec![b'x'; 9000]);
    out
}

fn no_panic(r: &Run, json: bool) {
    assert!(
        r.code < 100 && !r.err().contains("internal error") && !r.err().contains("panicked"),
        "{}: exit {}: {}",
        r.what,
        r.code,
        r.err()
    );
    if json {
        Json::parse(r.out());
    }
}

#[test]
fn damaged_state_files_never_panic_and_json_stays_valid() {
    let Some(m) = Machine::new("statefuzz") else {
        return;
    };
    let vermagic = format!(
        "{} SMP preempt mod_unload modversions ",
        super::common::fakekernel::release()
    );
    m.dir.write(
        "store/f.ko",
        fake_ko(&modinfo("klp_f", &vermagic, true), EM_X86_64),
    );
    let r = m.dir.klpctl(&[
        "pack",
        "store/f.ko",
        "-o",
        "bundles/f.klp",
        "--stream",
        "fs",
        "--version",
        "7",
        "--replace",
        "-s",
        "k.sec",
        "--cve",
        "CVE-2024-1086",
        "--cve",
        "CVE-2025-1",
        "--product",
        "pkg:deb/debian/linux-image-x@1",
        "--created",
        "1764300000",
    ]);
    r.code(0);
    m.boot_apply(&[]).code(0);
    assert!(m.live("klp_f"));
    m.run(&[], &["vex"]).code(0);
    let st = m.state();
    let boot = m.boot_dir().to_path_buf();
    let files = [
        boot.join("run/klpctl/patches/klp_f"),
        boot.join("run/klpctl/streams/fs"),
        boot.join("run/klpctl/vex.doc"),
        m.dir.join("state/streams/fs"),
        m.dir.join("state/guard"),
    ];
    let saved: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let restore = || {
        for (f, b) in files.iter().zip(&saved) {
            std::fs::write(f, b).unwrap();
        }
    };
    let step: usize = std::env::var("KLPCTL_FUZZ_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(29);
    for (i, f) in files.iter().enumerate() {
        for bad in mutations(&saved[i], step) {
            restore();
            std::fs::write(f, &bad).unwrap();
            for (args, json) in [
                (vec!["status", "--json", "--state-dir", &st], true),
                (vec!["status", "--state-dir", &st], false),
                (vec!["vex"], true),
            ] {
                let r = m.run(&[], &args);
                no_panic(&r, json && !r.out().is_empty());
            }
            let r = m.boot_apply(&[]);
            no_panic(&r, true);
        }
    }
}
