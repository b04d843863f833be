//! The fuzzers' regression corpus, replayed.

use super::*;

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
