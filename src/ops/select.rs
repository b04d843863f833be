//! `apply --dir`: which bundles of a directory to apply, in which order.
#![forbid(unsafe_code)]

use crate::error::{Error, Failure};
use crate::files::{self, FileSource, PathBuf};
use crate::guard;
use crate::kernel::{Running, Switches};
use crate::ops::apply::{Options, check_floor};
use crate::trust::bundle;
use crate::trust::keys::Keyring;
use crate::trust::manifest::MAX_MANIFEST;
use core::ffi::CStr;

/// Most bundles `apply --dir` takes from one directory.
pub const MAX_BUNDLES: usize = 64;

/// A bundle found by `apply --dir`.
pub struct Candidate {
    /// Its path.
    pub path: PathBuf,
    /// Its stream.
    pub stream: heapless::String<64>,
    version: u64,
    replace: bool,
    /// A newer cumulative bundle of the same stream makes this one moot.
    superseded: bool,
}

/// The bundles in `dir` that target the running kernel, in the order to
/// apply them (see [`select`]). Every other file (not a valid, trusted
/// bundle, or for another kernel; dot files and directories are not looked
/// at) goes to `skip` with the reason, in directory order. So do bundles
/// named by `klpctl.skip=`, payloads quarantined by the crash-loop guard
/// (left out before the policy runs, so their stream falls back to the
/// newest bundle before them), and bundles the rollback floor refuses
/// (never picked only to be refused).
///
/// At most [`MAX_BUNDLES`] are kept, chosen by stream and version, never
/// by directory order: a first pass over the directory finds each
/// stream's newest cumulative version, so the bundles it makes moot never
/// take a place; only when every kept bundle is needed is one left out,
/// the oldest of the stream with the most (ties by stream and path), and
/// it goes to `skip` with `None` as the reason (the limit).
pub fn select_dir(
    dir: &CStr,
    ring: &Keyring,
    k: &Running,
    opts: &Options,
    switches: &Switches,
    skip: &mut dyn FnMut(&[u8], Option<&Failure>),
) -> Result<heapless::Vec<Candidate, MAX_BUNDLES>, Error> {
    // First pass: the newest cumulative version of each stream, so that
    // what it makes moot never takes a place, whatever the directory
    // order. (Past MAX_BUNDLES streams the rest are not noted; their moot
    // bundles then go when the list is full, as below.)
    let mut newest: heapless::Vec<(heapless::String<64>, u64), MAX_BUNDLES> = heapless::Vec::new();
    each_candidate(dir, ring, k, opts, switches, &mut |c| {
        let Ok(c) = c else { return };
        if !c.replace {
            return;
        }
        match newest.iter_mut().find(|(s, _)| *s == c.stream) {
            Some((_, v)) => *v = (*v).max(c.version),
            None => {
                let _ = newest.push((c.stream, c.version)); // see above
            }
        }
    })?;
    let mut all = heapless::Vec::new();
    each_candidate(dir, ring, k, opts, switches, &mut |c| match c {
        Ok(c) => {
            let moot = newest.iter().any(|(s, v)| *s == c.stream && *v > c.version);
            if !moot && let Some(out) = keep(&mut all, c) {
                skip(out.path.bytes(), None);
            }
        }
        Err((path, f)) => skip(path.bytes(), Some(&f)),
    })?;
    select(&mut all);
    Ok(all)
}

/// A bundle file of `dir`: a [`Candidate`], or its path and why it is not
/// one.
type Found<'p> = Result<Candidate, (&'p PathBuf, Failure)>;

/// Calls `f` with every bundle file of `dir` (see [`each_bundle_file`]).
fn each_candidate(
    dir: &CStr,
    ring: &Keyring,
    k: &Running,
    opts: &Options,
    switches: &Switches,
    f: &mut dyn FnMut(Found),
) -> Result<(), Error> {
    each_bundle_file(
        dir,
        &mut |path, _| match candidate(path, ring, k, opts, switches) {
            Ok(c) => f(Ok(c)),
            Err(e) => f(Err((path, e))),
        },
    )
}

/// Calls `f` with the path and the file name of every file of bundle
/// directory `dir` that `apply --dir` looks at: dot files (such as the
/// hidden copy of an install in progress) and directories are passed over.
pub fn each_bundle_file(dir: &CStr, f: &mut dyn FnMut(&PathBuf, &[u8])) -> Result<(), Error> {
    files::each_entry(dir, msg!("read bundle directory"), |name, ty| {
        let nb = name.to_bytes();
        if nb.starts_with(b".") || ty == rustix::fs::FileType::Directory {
            return Ok(());
        }
        if let Ok(path) = PathBuf::of(&[dir.to_bytes(), b"/", nb]) {
            f(&path, nb);
        }
        Ok(())
    })
}

/// How little candidate `x` is needed, in a stream of `n` candidates: the
/// greatest is left out first.
fn rank(x: &Candidate, n: usize) -> (usize, core::cmp::Reverse<u64>, &[u8], &[u8]) {
    (
        n,
        core::cmp::Reverse(x.version),
        x.stream.as_bytes(),
        x.path.bytes(),
    )
}

/// Adds `c` to `all`; when full, first drops what [`select`] would drop
/// anyway, and if still full, returns the least needed candidate (the
/// oldest of the stream with the most candidates; `c` itself when that is
/// it), which is left out.
fn keep(all: &mut heapless::Vec<Candidate, MAX_BUNDLES>, c: Candidate) -> Option<Candidate> {
    if all.is_full() {
        select(all);
    }
    let Err(c) = all.push(c) else { return None };
    // Every kept one is needed: the one left out is the oldest of the
    // stream with the most candidates (`c` counted), so every stream keeps
    // its newest; ties go by stream and path, never by the order they came
    // in.
    let n = |s: &str| all.iter().filter(|x| x.stream == s).count() + usize::from(c.stream == s);
    let mut out = None;
    let mut worst = rank(&c, n(&c.stream));
    for (i, x) in all.iter().enumerate() {
        let r = rank(x, n(&x.stream));
        if r > worst {
            worst = r;
            out = Some(i);
        }
    }
    let Some(i) = out else { return Some(c) };
    let dropped = all.remove(i);
    let _ = all.push(c); // cannot fail: one was just removed
    Some(dropped)
}

fn candidate(
    path: &PathBuf,
    ring: &Keyring,
    k: &Running,
    opts: &Options,
    switches: &Switches,
) -> Result<Candidate, Failure> {
    let fd = files::open_ro(path.c(), msg!("open bundle"))?;
    let src = FileSource::new(&fd, msg!("read bundle"))?;
    let mut mbuf = [0u8; MAX_MANIFEST];
    let m = bundle::read_signed(&src, ring, &mut mbuf, false)?.manifest;
    k.check(&m)?;
    if switches.skips(m.name.as_bytes()) {
        return Err(Error::SkippedBySwitch.into());
    }
    let mut hex = [0u8; 64];
    let sha = crate::codec::hex_encode(&m.payload_sha256, &mut hex).unwrap_or(b"");
    if let Some(sd) = opts.state_dir {
        let mut buf = [0; guard::MAX_GUARD];
        if guard::load(sd.to_bytes(), &mut buf)?.quarantined(sha) {
            return Err(Error::Quarantined.with(&[b"sha256 ", sha]));
        }
    }
    check_floor(&m, sha, opts)?;
    let mut stream = heapless::String::new();
    // Cannot fail: a valid stream name is at most 64 bytes.
    let _ = stream.push_str(m.stream);
    Ok(Candidate {
        path: PathBuf::of(&[path.bytes()])?,
        stream,
        version: m.version,
        replace: m.replace,
        superseded: false,
    })
}

fn key(c: &Candidate) -> (&str, u64, &[u8]) {
    (&c.stream, c.version, c.path.bytes())
}

/// The `apply --dir` policy over the candidates that target this kernel:
/// sorted by (stream, version, path); per stream, the newest cumulative
/// bundle and every bundle after it, in version order. A cumulative bundle
/// contains every fix before it, so what precedes it is moot (and would be
/// refused by the rollback floor once it is applied); the non-cumulative
/// bundles after it stack on top of it.
pub fn select(all: &mut heapless::Vec<Candidate, MAX_BUNDLES>) {
    // Insertion sort by (stream, version, path): at most 64 entries, and
    // far smaller code than the generic sort.
    for i in 1..all.len() {
        let mut j = i;
        while j > 0 && key(&all[j - 1]) > key(&all[j]) {
            all.swap(j - 1, j);
            j -= 1;
        }
    }
    // Per stream (now contiguous, in version order): drop what comes
    // before its newest cumulative bundle.
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].stream == all[i].stream {
            j += 1;
        }
        if let Some(last) = all[i..j].iter().rposition(|c| c.replace) {
            for c in &mut all[i..i + last] {
                c.superseded = true;
            }
        }
        i = j;
    }
    all.retain(|c| !c.superseded);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(stream: &str, version: u64, replace: bool) -> Candidate {
        let mut s = heapless::String::new();
        s.push_str(stream).unwrap();
        let path = PathBuf::of(&[stream.as_bytes(), b"-", &[b'0' + version as u8]]).unwrap();
        Candidate {
            path,
            stream: s,
            version,
            replace,
            superseded: false,
        }
    }

    fn picked(list: &[(&str, u64, bool)]) -> Vec<(String, u64)> {
        let mut v: heapless::Vec<Candidate, 64> = heapless::Vec::new();
        for &(s, n, r) in list {
            let _ = v.push(cand(s, n, r));
        }
        select(&mut v);
        v.iter()
            .map(|c| (c.stream.to_string(), c.version))
            .collect()
    }

    #[test]
    fn newest_cumulative_wins_per_stream() {
        let got = picked(&[
            ("a", 2, true),
            ("a", 3, true),
            ("a", 1, true),
            ("b", 1, false),
        ]);
        assert_eq!(got, [("a".to_string(), 3), ("b".to_string(), 1)]);
    }

    #[test]
    fn non_cumulative_streams_apply_all_in_version_order() {
        let got = picked(&[("s", 3, false), ("s", 1, false), ("s", 2, false)]);
        assert_eq!(
            got,
            [
                ("s".to_string(), 1),
                ("s".to_string(), 2),
                ("s".to_string(), 3)
            ]
        );
    }

    #[test]
    fn a_newest_non_cumulative_bundle_keeps_the_older_ones() {
        // Only a cumulative newest bundle makes the older ones moot.
        let got = picked(&[("s", 1, true), ("s", 2, false)]);
        assert_eq!(got, [("s".to_string(), 1), ("s".to_string(), 2)]);
    }

    #[test]
    fn fixes_after_the_newest_cumulative_bundle_stack_on_it() {
        let got = picked(&[
            ("s", 3, false),
            ("s", 1, false),
            ("s", 2, true),
            ("s", 4, false),
        ]);
        assert_eq!(
            got,
            [
                ("s".to_string(), 2),
                ("s".to_string(), 3),
                ("s".to_string(), 4)
            ]
        );
    }

    #[test]
    fn empty_directory_selects_nothing() {
        assert!(picked(&[]).is_empty());
    }
}
