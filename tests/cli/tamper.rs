//! Tampering: every bit flip, every truncation and trailing bytes are
//! rejected.

use super::*;

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
