//! The documentation agrees with the code:
//!
//! - the exit codes in the README's table, in `klpctl --help` and in
//!   `Error::exit_code` (src/error.rs) are the same set, and each README row
//!   starts with the words `--help` uses for that code;
//! - no source file under `src/` is over 700 lines, and no file under
//!   `tests/` over 1,000.
//!
//! Reads the files as text; `--help` comes from the built binary.

// Only the binary lookup is used here.
#[allow(dead_code, unused_imports)]
#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// The README's `| code | meaning |` rows: code -> meaning.
fn readme_codes(readme: &str) -> BTreeMap<u8, String> {
    let table = readme
        .split("| code | meaning |")
        .nth(1)
        .expect("README has an exit-code table");
    table
        .lines()
        .skip(2) // the header's separator row, after the rest of its line
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let code = cells[0].parse().unwrap_or_else(|_| panic!("row {l}"));
            (code, cells[1].to_owned())
        })
        .collect()
}

/// `--help`'s `exit codes: 0 ok, 1 ..., 10 ...` paragraph: code -> words.
fn help_codes(help: &str) -> BTreeMap<u8, String> {
    let text = help
        .split("exit codes:")
        .nth(1)
        .expect("--help lists the exit codes")
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace('\n', " ");
    text.split(',')
        .map(|item| {
            let (code, words) = item.trim().split_once(' ').expect("CODE WORDS");
            (code.parse().expect("a code"), words.trim().to_owned())
        })
        .collect()
}

/// The codes `Error::exit_code` returns (its `=> N` arms), and 0.
fn error_rs_codes(src: &str) -> Vec<u8> {
    let body = src
        .split("pub fn exit_code(self) -> u8 {")
        .nth(1)
        .expect("Error::exit_code in src/error.rs")
        .split("\n    }\n")
        .next()
        .unwrap_or_default();
    let mut codes: Vec<u8> = body
        .split("=> ")
        .skip(1)
        .map(|s| {
            s.split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .parse()
                .expect("a code")
        })
        .collect();
    codes.push(0);
    codes.sort();
    codes.dedup();
    codes
}

#[test]
fn exit_codes_agree_in_readme_help_and_error_rs() {
    let readme = readme_codes(&read("README.md"));
    let out = Command::new(common::runner::klpctl_bin())
        .arg("--help")
        .output()
        .expect("run klpctl --help");
    let help = help_codes(&String::from_utf8(out.stdout).expect("UTF-8 help"));
    let code = error_rs_codes(&read("src/error.rs"));

    let keys = |m: &BTreeMap<u8, String>| m.keys().copied().collect::<Vec<u8>>();
    assert_eq!(keys(&readme), code, "README table vs src/error.rs");
    assert_eq!(keys(&help), code, "--help vs src/error.rs");
    for (c, words) in &help {
        assert!(
            readme[c].starts_with(words.as_str()),
            "exit {c}: README says {:?}, --help {words:?}",
            readme[c]
        );
    }
}

#[test]
fn the_parsers_see_what_is_there() {
    // The checks above would pass on empty tables; these show they parse.
    let readme = readme_codes(
        "x\n| code | meaning |\n|---|---|\n| 0 | ok |\n| 3 | bundle rejected: bad |\n\n",
    );
    assert_eq!(readme.len(), 2);
    assert_eq!(readme[&3], "bundle rejected: bad");
    let help = help_codes("usage\n\nexit codes: 0 ok, 1 internal/I-O\nerror, 2 usage\n");
    assert_eq!(help[&1], "internal/I-O error");
    let code = error_rs_codes(
        "    pub fn exit_code(self) -> u8 {\n        match self {\n            A => 1,\n            B | C => 7,\n        }\n    }\n",
    );
    assert_eq!(code, vec![0, 1, 7]);
}

/// The files under `dir` (recursively) that `keep` selects and that are
/// over `limit` lines, as "path: N lines".
fn over_limit(dir: &str, limit: usize, keep: fn(&Path) -> bool) -> Vec<String> {
    fn walk(dir: &Path, limit: usize, keep: fn(&Path) -> bool, long: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, limit, keep, long);
            } else if keep(&p) {
                let bytes =
                    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
                let n = String::from_utf8_lossy(&bytes).lines().count();
                if n > limit {
                    long.push(format!("{}: {n} lines", p.display()));
                }
            }
        }
    }
    let mut long = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        limit,
        keep,
        &mut long,
    );
    long
}

#[test]
fn no_source_file_is_over_700_lines() {
    let long = over_limit("src", 700, |p| p.extension().is_some_and(|x| x == "rs"));
    assert!(long.is_empty(), "split these: {long:?}");
}

#[test]
fn no_test_file_is_over_1000_lines() {
    let long = over_limit("tests", 1000, |_| true);
    assert!(long.is_empty(), "split these: {long:?}");
}
