//! The layering of `src/` (docs/architecture.md), checked on the source:
//! every module belongs to a layer, no file imports from a layer above its
//! own, and no files import each other in a circle.
//!
//! Imports are found as text: `crate::a::b` paths, `super::x` paths, and,
//! in a `mod.rs`, paths through its own child modules (`args::Cli`). Unit
//! test modules at the end of a file (`#[cfg(test)] mod tests`) are left
//! out: they may use anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use its own layer and the ones
/// below it. Keep in step with docs/architecture.md.
const LAYERS: &[(&str, u8)] = &[
    ("sys", 0),
    ("codec", 0),
    ("error", 1),
    ("rt", 1),
    ("files", 2),
    ("out", 2),
    ("json", 2),
    ("modinfo", 3),
    ("trust", 3),
    ("kernel", 4),
    ("state", 4),
    ("guard", 4),
    ("ops", 5),
    ("cli", 6),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, as paths relative to `src/`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p.strip_prefix(src()).expect("under src").to_path_buf());
        }
    }
}

/// The top-level module a file belongs to (`kernel/sysfs.rs` -> `kernel`).
fn group(file: &Path) -> String {
    let first = file.components().next().expect("non-empty path");
    let s = first.as_os_str().to_str().expect("UTF-8 path");
    s.strip_suffix(".rs").unwrap_or(s).to_string()
}

/// The file a module path names: `["kernel", "sysfs", ...]` is
/// `kernel/sysfs.rs` if that exists, else `kernel/mod.rs` or `kernel.rs`.
fn file_of(segments: &[&str]) -> Option<PathBuf> {
    let root = src();
    for n in (1..=segments.len().min(2)).rev() {
        let base: PathBuf = segments[..n].iter().collect();
        for cand in [base.with_extension("rs"), base.join("mod.rs")] {
            if root.join(&cand).is_file() {
                return Some(cand);
            }
        }
    }
    None
}

/// Source text without its trailing unit-test module.
fn code_of(text: &str) -> &str {
    let mut at = text.len();
    let mut search = 0;
    while let Some(i) = text[search..].find("#[cfg(test)]") {
        let i = search + i;
        if text[i..]
            .trim_start_matches("#[cfg(test)]")
            .trim_start()
            .starts_with("mod tests")
            || text[i..]
                .trim_start_matches("#[cfg(test)]")
                .trim_start()
                .starts_with("pub mod tests")
        {
            at = i;
            break;
        }
        search = i + 1;
    }
    &text[..at]
}

fn idents_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut segs = Vec::new();
        let mut r = rest;
        loop {
            let n = r
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            if n == 0 {
                // `crate::{a, b}` and `super::{x, y}`: each item.
                if let Some(inner) = r.strip_prefix('{') {
                    let end = inner.find('}').unwrap_or(inner.len());
                    for item in inner[..end].split(',') {
                        let item = item.trim();
                        let head: String = item
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if !head.is_empty() {
                            let mut s = segs.clone();
                            s.push(head);
                            out.push(s);
                        }
                    }
                }
                break;
            }
            segs.push(r[..n].to_string());
            r = &r[n..];
            match r.strip_prefix("::") {
                Some(x) => r = x,
                None => break,
            }
        }
        if !segs.is_empty() {
            out.push(segs);
        }
    }
    out
}

/// The files each file imports from (other than itself).
fn graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut g = BTreeMap::new();
    for f in &files {
        let name = f.to_str().expect("UTF-8");
        if name == "lib.rs" || name == "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(src().join(f)).expect("read source");
        let code = code_of(&text);
        let dir: Vec<String> = f
            .parent()
            .map(|p| {
                p.components()
                    .map(|c| c.as_os_str().to_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let mut deps = BTreeSet::new();
        for segs in idents_after(code, "crate::") {
            let s: Vec<&str> = segs.iter().map(String::as_str).collect();
            if let Some(t) = file_of(&s) {
                deps.insert(t);
            }
        }
        if !dir.is_empty() {
            for segs in idents_after(code, "super::") {
                let mut s: Vec<&str> = dir.iter().map(String::as_str).collect();
                s.extend(segs.iter().map(String::as_str));
                if let Some(t) = file_of(&s) {
                    deps.insert(t);
                }
            }
            // A mod.rs reaches its children by their bare names.
            if f.file_name().is_some_and(|n| n == "mod.rs") {
                let parent = src().join(f.parent().unwrap());
                for e in std::fs::read_dir(&parent).unwrap() {
                    let child = e.unwrap().path();
                    let stem = child.file_stem().unwrap().to_str().unwrap().to_string();
                    if stem == "mod" {
                        continue;
                    }
                    let uses = code.contains(&format!("use {stem}::"))
                        || code.contains(&format!(" {stem}::"))
                        || code.contains(&format!("({stem}::"));
                    if uses {
                        deps.insert(f.parent().unwrap().join(format!("{stem}.rs")));
                    }
                }
            }
        }
        deps.remove(f);
        g.insert(f.clone(), deps);
    }
    g
}

/// The layering violations and one import circle, if any.
fn check(
    g: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    rank: &dyn Fn(&str) -> Option<u8>,
) -> Vec<String> {
    let mut bad = Vec::new();
    for (f, deps) in g {
        let Some(rf) = rank(&group(f)) else {
            bad.push(format!(
                "{} is in no layer (add its module to LAYERS)",
                f.display()
            ));
            continue;
        };
        for d in deps {
            match rank(&group(d)) {
                Some(rd) if rd > rf => bad.push(format!(
                    "{} (layer {rf}) imports {} (layer {rd}), a higher layer",
                    f.display(),
                    d.display()
                )),
                _ => {}
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &PathBuf,
        g: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<PathBuf, u8>,
        stack: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for d in g.get(n).into_iter().flatten() {
            match state.get(d) {
                Some(1) => {
                    let i = stack.iter().position(|x| x == d).unwrap();
                    let mut c = stack[i..].to_vec();
                    c.push(d.clone());
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(d, g, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if !state.contains_key(n)
            && let Some(c) = visit(n, g, &mut state, &mut Vec::new())
        {
            let names: Vec<String> = c.iter().map(|p| p.display().to_string()).collect();
            bad.push(format!("import circle: {}", names.join(" -> ")));
            break;
        }
    }
    bad
}

fn layer(name: &str) -> Option<u8> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

#[test]
fn src_imports_only_downward_and_without_circles() {
    let g = graph();
    let edges: usize = g.values().map(BTreeSet::len).sum();
    // Not vacuous: the scan finds the imports that are there.
    assert!(g.len() >= 25, "only {} files scanned", g.len());
    assert!(edges >= 60, "only {edges} imports found");
    assert!(
        g[Path::new("ops/apply.rs")].contains(Path::new("kernel/sysfs.rs")),
        "the scan misses crate:: paths"
    );
    assert!(
        g[Path::new("cli/kernel.rs")].contains(Path::new("cli/args.rs")),
        "the scan misses super:: paths"
    );
    let bad = check(&g, &layer);
    assert!(bad.is_empty(), "layering broken:\n{}", bad.join("\n"));
}

#[test]
fn the_check_catches_an_upward_import_and_a_circle() {
    let mut g = graph();
    // sys calling up into cli, as it once did.
    g.get_mut(Path::new("sys.rs"))
        .unwrap()
        .insert(PathBuf::from("cli/mod.rs"));
    let bad = check(&g, &layer);
    assert!(
        bad.iter()
            .any(|b| b.starts_with("sys.rs (layer 0) imports cli/mod.rs")),
        "{bad:?}"
    );
    assert!(
        bad.iter().any(|b| b.starts_with("import circle:")),
        "{bad:?}"
    );
    // And a module nobody placed in a layer.
    g.insert(PathBuf::from("newthing.rs"), BTreeSet::new());
    assert!(
        check(&g, &layer)
            .iter()
            .any(|b| b.contains("newthing.rs is in no layer"))
    );
}
