//! Unit tests of the crash-loop guard's file format and policy.
use super::*;

const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const BOOT: &str = "0b7c4f1e-8a2d-4c3b-9e5f-1a2b3c4d5e6f";

#[test]
fn what_klpctl_writes_parses_and_anything_else_does_not() {
    let good = [
        format!("boot {BOOT}\n"),
        format!("boot {BOOT}\ntry {SHA} klp_a s 3 17\ngood {SHA} s 3\n"),
        format!("boot {BOOT}\nquarantine {SHA} klp_a s 3 {BOOT} 1700000000\n"),
        // Older versions' lines.
        format!("boot {BOOT}\ntry {SHA} klp_a s 3\nok\ngood {SHA}\n"),
    ];
    for t in &good {
        assert!(valid(t.as_bytes()), "{t}");
    }
    let bad = [
        String::new(),
        "\n".to_string(),
        format!("boot {BOOT}"),
        format!("boot {BOOT}\n\n"),
        "boot x\n".to_string(),
        format!("boot {BOOT}\ntry {SHA} klp_a s 3 1\nboot {BOOT}\n"),
        format!("boot {BOOT}\ntry {SHA} klp_a s 3 1 9\n"),
        format!("boot {BOOT}\ntry {SHA} klp-a s 3 1\n"),
        format!("boot {BOOT}\ntry {SHA} klp_a s x 1\n"),
        format!("boot {BOOT}\ntry {SHA} klp_a s 3  1\n"),
        format!("boot {BOOT}\ngood {}\n", SHA.to_uppercase()),
        format!("boot {BOOT}\ngood {SHA} s\n"),
        format!("boot {BOOT}\nquarantine {SHA} klp_a s 3 {BOOT}\n"),
        format!("boot {BOOT}\nextra 1\n"),
        format!("boot {BOOT}\nok 1\n"),
    ];
    for t in &bad {
        assert!(!valid(t.as_bytes()), "{t:?}");
    }
}

#[test]
fn a_legacy_ok_proves_only_the_tries_before_it() {
    let dir = std::env::temp_dir().join(format!("klpctl-legacy-ok-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    let text = format!("boot {BOOT}\ntry {a} klp_a s 1\nok\ngood {a}\ntry {b} klp_b s 2\n");
    std::fs::write(dir.join("guard"), &text).unwrap();
    let mut got = Vec::new();
    let sd = dir.to_str().unwrap().as_bytes();
    start_boot(sd, &mut |e| {
        got.push(String::from_utf8_lossy(e.name).into_owned())
    })
    .unwrap();
    assert_eq!(got, ["klp_b"]);
    let now = std::fs::read_to_string(dir.join("guard")).unwrap();
    assert!(
        now.contains(&format!("quarantine {b} klp_b s 2 {BOOT} ")),
        "{now}"
    );
    assert!(!now.contains(&format!("quarantine {a}")), "{now}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_fallback_goes_only_from_a_newer_quarantine_to_the_newest_good_below_it() {
    let sha = |c: char| c.to_string().repeat(64);
    let text = format!(
        "boot {BOOT}\nquarantine {} klp_1 s 1 {BOOT} 1\ngood {} s 2\ngood {} s 3\nquarantine {} klp_5 s 5 {BOOT} 1\ngood {} s 4\n",
        sha('1'),
        sha('2'),
        sha('3'),
        sha('5'),
        sha('4'),
    );
    let g = Guard(text.as_bytes());
    // v5 raised the floor to 5 and is quarantined: back to v4.
    assert!(g.fallback_allowed(b"s", sha('4').as_bytes(), 4, 5));
    // Not further than the newest good below it.
    assert!(!g.fallback_allowed(b"s", sha('3').as_bytes(), 3, 5));
    // The old quarantine of v1 opens nothing once v3 set the floor.
    assert!(!g.fallback_allowed(b"s", sha('2').as_bytes(), 2, 3));
    // Nor does a quarantine in another stream, or a payload not good.
    assert!(!g.fallback_allowed(b"t", sha('4').as_bytes(), 4, 5));
    assert!(!g.fallback_allowed(b"s", sha('9').as_bytes(), 4, 5));
}

fn sealed(body: &str) -> Vec<u8> {
    let t = [HEADER, body.as_bytes()].concat();
    [&t[..], &seal(&t)[..]].concat()
}

#[test]
fn only_a_whole_sealed_file_is_read() {
    let body =
        format!("boot {BOOT}\ngood {SHA} s 3\nquarantine {SHA} klp_a s 4 {BOOT} 1700000000\n");
    let t = sealed(&body);
    assert_eq!(records(&t), Some(body.as_bytes()));
    assert_eq!(records(&sealed("")), Some(&b""[..]));
    // The previous format, read as it is.
    assert_eq!(records(body.as_bytes()), Some(body.as_bytes()));
    // Cut at every line boundary: nothing parses.
    for (i, _) in t[..t.len() - 1]
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'\n')
    {
        assert_eq!(records(&t[..i + 1]), None, "{i}");
    }
    let mut bad = vec![
        Vec::new(),
        // A record lost, the seal kept.
        [&t[..t.len() - SEAL - 65 - 14], &t[t.len() - SEAL..]].concat(),
        // Anything after the seal.
        [&t[..], b"end \n"].concat(),
        [&t[..], &seal(&t)[..]].concat(),
    ];
    // One digit of a sha changed, still 64 hex digits; and in the seal.
    for at in [HEADER.len() + 42 + 5, t.len() - 2] {
        let mut x = t.clone();
        x[at] = if x[at] == b'0' { b'1' } else { b'0' };
        bad.push(x);
    }
    for x in &bad {
        assert_eq!(records(x), None, "{}", String::from_utf8_lossy(x));
    }
}

#[test]
fn pruning_keeps_the_last_proofs_and_every_fallback() {
    let dir = std::env::temp_dir().join(format!("klpctl-prune-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sha = |i: usize| format!("{i:064x}");
    // Stream s: v99 proven, v100 crashed; then 70 proofs in stream t.
    let mut text = format!(
        "boot {BOOT}\ngood {} s 50\ngood {} s 99\nquarantine {} klp_s s 100 {BOOT} 1\n",
        sha(50),
        sha(99),
        sha(100)
    );
    for i in 1..=70 {
        text.push_str(&format!("good {} t {i}\n", sha(1000 + i)));
    }
    std::fs::write(dir.join("guard"), &text).unwrap();
    let sd = dir.to_str().unwrap().as_bytes();
    start_boot(sd, &mut |_| {}).unwrap();
    let mut buf = [0; MAX_GUARD];
    let g = load(sd, &mut buf).unwrap();
    let kept: Vec<String> = g
        .lines()
        .filter_map(|l| match l {
            Line::Good {
                of: Some((s, v)), ..
            } => Some(format!("{} {v}", String::from_utf8_lossy(s))),
            _ => None,
        })
        .collect();
    let want: Vec<String> = ["s 99".to_string()]
        .into_iter()
        .chain((7..=70).map(|i| format!("t {i}")))
        .collect();
    assert_eq!(kept, want);
    assert!(g.fallback_allowed(b"s", sha(99).as_bytes(), 99, 100));
    assert!(g.quarantined(sha(100).as_bytes()));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("klpctl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_boot_that_quarantines_keeps_the_way_back() {
    let dir = scratch("fallback-kept");
    let sha = |i: usize| format!("{i:064x}");
    // v2 of stream s proven, then 64 proofs in stream t, then v3 of s
    // tried by a boot that died: the next boot quarantines v3, and v2 is
    // its way back however old its proof is.
    let mut text = format!("boot {BOOT}\ngood {} s 2\n", sha(2));
    for i in 1..=64 {
        text.push_str(&format!("good {} t {i}\n", sha(1000 + i)));
    }
    text.push_str(&format!("try {} klp_s s 3 10\n", sha(3)));
    std::fs::write(dir.join("guard"), &text).unwrap();
    let sd = dir.to_str().unwrap().as_bytes();
    start_boot(sd, &mut |_| {}).unwrap();
    let mut buf = [0; MAX_GUARD];
    let g = load(sd, &mut buf).unwrap();
    assert!(g.quarantined(sha(3).as_bytes()));
    assert!(g.fallback_allowed(b"s", sha(2).as_bytes(), 2, 3));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_payload_proven_at_every_boot_stays_proven() {
    let dir = scratch("reproven");
    let sha = |i: usize| format!("{i:064x}");
    let now = crate::state::boot_id();
    // P was first proven long ago (63 proofs since) and is tried, and
    // proven live, again in this boot, with one new payload.
    let mut text = format!("boot {now}\ngood {} s 1\n", sha(1));
    for i in 1..=63 {
        text.push_str(&format!("good {} t {i}\n", sha(1000 + i)));
    }
    text.push_str(&format!("try {} klp_p s 1 0\n", sha(1)));
    text.push_str(&format!("try {} klp_u u 1 0\n", sha(7)));
    std::fs::write(dir.join("guard"), &text).unwrap();
    let sd = dir.to_str().unwrap().as_bytes();
    confirm(sd, 0, &mut |_, _| Now::Live).unwrap();
    // The next change still knows P is proven: it was proven last.
    note_try(sd, sha(9).as_bytes(), b"klp_x", b"x", 1).unwrap();
    let mut buf = [0; MAX_GUARD];
    let g = load(sd, &mut buf).unwrap();
    assert!(g.good(sha(7).as_bytes()));
    assert!(
        g.good(sha(1).as_bytes()),
        "a payload proven in this boot was pruned"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_cut_and_every_byte_changed_fails_closed() {
    let body = format!(
        "boot {BOOT}\ntry {SHA} klp_a s 3 7\ngood {SHA} s 3\nquarantine {SHA} klp_a s 4 {BOOT} 1700000000\n"
    );
    let t = sealed(&body);
    for n in 0..t.len() {
        assert_eq!(records(&t[..n]), None, "cut at {n}");
    }
    for at in 0..t.len() {
        for b in 0..=255u8 {
            if b == t[at] {
                continue;
            }
            let mut x = t.clone();
            x[at] = b;
            assert_eq!(records(&x), None, "byte {at} set to {b}");
        }
    }
    // The previous format cannot be made of a sealed file's pieces, nor
    // hide the header later, behind blanks, a BOM, or CRLF.
    let hdr = "klpctl-guard 2\n";
    for x in [
        format!("{body}{hdr}"),
        format!(" {hdr}{body}"),
        format!("\u{feff}{hdr}{body}"),
        format!("klpctl-guard 2\r\n{body}"),
        body.replace('\n', "\r\n"),
        String::new(),
        "\n".to_string(),
    ] {
        assert_eq!(records(x.as_bytes()), None, "{x:?}");
    }
    // At the 16 KiB bound, with the seal: read; one byte more: not.
    // `good <sha> <stream> 3` lines of 74 to 137 bytes fill it exactly.
    let mut big = String::new();
    loop {
        let rem = MAX_GUARD - HEADER.len() - big.len() - SEAL;
        let k = match rem {
            0 => break,
            1..=137 => rem - 73,
            138..211 => rem - 147,
            _ => 64,
        };
        big.push_str(&format!("good {SHA} {} 3\n", "s".repeat(k)));
    }
    let t = sealed(&big);
    assert_eq!(t.len(), MAX_GUARD);
    assert!(records(&t).is_some());
    let dir = scratch("at-bound");
    let sd = dir.to_str().unwrap().as_bytes();
    std::fs::write(dir.join("guard"), &t).unwrap();
    let mut buf = [0; MAX_GUARD];
    assert!(load(sd, &mut buf).is_ok());
    std::fs::write(dir.join("guard"), [&t[..], b"\n"].concat()).unwrap();
    assert!(load(sd, &mut buf).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
