//! The crash-loop guard, kept in the persistent state directory
//! (`--state-dir`) so that a patch that crashes the machine is not applied
//! again at every boot. One text file, `<state-dir>/guard`, replaced
//! atomically (temporary file, fsync, rename, directory fsync) at every
//! change, one record per line:
//!
//! - `boot <id>`: the boot the journal lines below belong to (first line);
//! - `try <sha256> <name> <stream> <version>`: this boot tries that payload,
//!   written *before* its module is loaded;
//! - `ok`: this boot was confirmed good (`klpctl confirm`: at a clean
//!   shutdown, and after the confirmation window);
//! - `good <sha256>`: a payload that has been through a confirmed boot;
//! - `quarantine <sha256> <name> <stream> <version> <boot id> <time>`: a
//!   payload tried in a boot that ended without confirmation (a panic, a
//!   hang and reset, a power loss inside the window).
//!
//! At the first klpctl run of a boot ([`start_boot`]), an unconfirmed
//! journal of an earlier boot quarantines what that boot tried, except the
//! payloads already proven good. A clean shutdown, or a crash after the
//! window, finds the journal confirmed and quarantines nothing.
#![forbid(unsafe_code)]

use crate::error::{Context, Result};
use crate::files::{self, AtomicFile, PathBuf};
use crate::out::Out;

/// Largest guard file.
const MAX_GUARD: usize = 16 * 1024;

/// The guard file of state directory `sd`, read into `buf` (empty when
/// missing or unreadable: a damaged file holds nothing klpctl can trust).
fn load<'b>(sd: &[u8], buf: &'b mut [u8; MAX_GUARD]) -> &'b [u8] {
    PathBuf::of(&[sd, b"/guard"])
        .ok()
        .and_then(|p| files::open_own(p.c(), msg!("guard")).ok())
        .and_then(|fd| files::read_fd_small(&fd, &mut buf[..], msg!("guard")).ok())
        .unwrap_or(b"")
}

/// The file's non-empty lines, and each line's words.
fn lines(text: &[u8]) -> Lines<'_> {
    Lines(text)
}

/// The iterator of [`lines`]: one out-of-line `next` for the many loops
/// over the file (smaller binary than an inlined split and filter each).
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    #[inline(never)]
    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.0.is_empty() {
            let n = self.0.iter().position(|&c| c == b'\n');
            let line = &self.0[..n.unwrap_or(self.0.len())];
            self.0 = n.map_or(&[][..], |n| &self.0[n + 1..]);
            if !line.is_empty() {
                return Some(line);
            }
        }
        None
    }
}

fn words(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&c| c == b' ')
}

/// Writes a new guard file: the old lines that `keep` keeps, then what
/// `add` writes.
fn rewrite(
    sd: &[u8],
    old: &[u8],
    keep: &mut dyn FnMut(&[u8]) -> bool,
    add: &mut dyn FnMut(&mut Out),
) -> Result<()> {
    files::ensure_dir(
        PathBuf::of(&[sd])?.c(),
        msg!("cannot create state directory"),
    )?;
    let f = AtomicFile::create(PathBuf::of(&[sd, b"/guard"])?.bytes(), 0o600)?;
    {
        let mut o = Out::to(Some(f.fd()));
        for l in lines(old).filter(|l| keep(l)) {
            o.b(l).nl();
        }
        add(&mut o);
        o.finish().ctx(msg!("cannot write the crash-loop guard"))?;
    }
    f.commit()?;
    files::sync_dir(PathBuf::of(&[sd])?.c());
    Ok(())
}

/// Whether the file has the line `<kind> <sha> ...`.
fn has(text: &[u8], kind: &[u8], sha: &[u8]) -> bool {
    lines(text).any(|l| {
        let mut w = words(l);
        w.next() == Some(kind) && w.next() == Some(sha)
    })
}

/// Whether payload `sha` (hex) is quarantined.
pub fn quarantined(sd: &[u8], sha: &[u8]) -> bool {
    has(load(sd, &mut [0; MAX_GUARD]), b"quarantine", sha)
}

/// Whether payload `sha` (hex) has been through a confirmed boot.
pub fn good(sd: &[u8], sha: &[u8]) -> bool {
    has(load(sd, &mut [0; MAX_GUARD]), b"good", sha)
}

/// One quarantined payload.
pub struct Entry<'a> {
    /// Payload SHA-256, hex.
    pub sha256: &'a [u8],
    /// Patch name.
    pub name: &'a [u8],
    /// Stream.
    pub stream: &'a [u8],
    /// Version.
    pub version: &'a [u8],
    /// The boot that tried it and did not survive.
    pub boot_id: &'a [u8],
    /// When it was quarantined (Unix time).
    pub time: &'a [u8],
}

fn entry(line: &[u8]) -> Option<Entry<'_>> {
    let mut w = words(line);
    (w.next()? == b"quarantine").then_some(())?;
    Some(Entry {
        sha256: w.next()?,
        name: w.next()?,
        stream: w.next()?,
        version: w.next()?,
        boot_id: w.next()?,
        time: w.next()?,
    })
}

/// Calls `f` with every quarantined payload.
pub fn each_quarantined(sd: &[u8], f: &mut dyn FnMut(&Entry)) {
    let mut buf = [0; MAX_GUARD];
    lines(load(sd, &mut buf))
        .filter_map(entry)
        .for_each(|e| f(&e));
}

/// Whether any payload of `stream` is quarantined.
pub fn stream_quarantined(sd: &[u8], stream: &[u8]) -> bool {
    let mut found = false;
    each_quarantined(sd, &mut |e| found |= e.stream == stream);
    found
}

/// The start of a boot, at the first klpctl run of it with this state
/// directory: an earlier boot's journal that was never confirmed
/// quarantines what that boot tried (except payloads proven good), and a
/// new journal starts. `quarantine` gets each new entry. Later runs in the
/// same boot change nothing.
pub fn start_boot(sd: &[u8], quarantine: &mut dyn FnMut(&Entry)) -> Result<()> {
    let now = crate::state::boot_id();
    let mut buf = [0; MAX_GUARD];
    let old = load(sd, &mut buf);
    let boot = lines(old)
        .find_map(|l| l.strip_prefix(b"boot "))
        .unwrap_or(b"");
    if boot == now.as_bytes() {
        return Ok(());
    }
    let crashed = !lines(old).any(|l| l == b"ok");
    let mut tm = [0u8; 20];
    let time = crate::codec::fmt_u64(crate::rt::unix_time(), &mut tm);
    // The journal of the old boot goes; what was learnt stays.
    let mut keep = |l: &[u8]| l.starts_with(b"good ") || l.starts_with(b"quarantine ");
    let mut add = |o: &mut Out| {
        o.s("boot ").s(&now).nl();
        for l in lines(old).filter(|_| crashed) {
            let Some(t) = l.strip_prefix(b"try ") else {
                continue;
            };
            let mut w = words(t);
            let (Some(sha), Some(name), Some(stream), Some(version)) =
                (w.next(), w.next(), w.next(), w.next())
            else {
                continue;
            };
            if has(old, b"good", sha) || has(old, b"quarantine", sha) {
                continue;
            }
            o.s("quarantine ").b(t).s(" ").b(boot).s(" ").b(time).nl();
            quarantine(&Entry {
                sha256: sha,
                name,
                stream,
                version,
                boot_id: boot,
                time,
            });
        }
    };
    rewrite(sd, old, &mut keep, &mut add)
}

/// Records, before its module is loaded, that this boot tries payload
/// `sha` (hex) of patch `name`.
pub fn note_try(sd: &[u8], sha: &[u8], name: &[u8], stream: &[u8], version: u64) -> Result<()> {
    let mut buf = [0; MAX_GUARD];
    let old = load(sd, &mut buf);
    rewrite(sd, old, &mut |_| true, &mut |o| {
        o.s("try ")
            .b(sha)
            .s(" ")
            .b(name)
            .s(" ")
            .b(stream)
            .s(" ")
            .u(version)
            .nl();
    })
}

/// Confirms this boot good: every payload it tried is marked good, and the
/// journal says `ok`, so no later boot quarantines them. Returns how many
/// payloads it tried (0, changing nothing, when no klpctl run of this boot
/// used this state directory).
pub fn confirm(sd: &[u8]) -> Result<usize> {
    let mut buf = [0; MAX_GUARD];
    let old = load(sd, &mut buf);
    let now = crate::state::boot_id();
    if lines(old).find_map(|l| l.strip_prefix(b"boot ")) != Some(now.as_bytes()) {
        return Ok(0);
    }
    let mut n = 0;
    rewrite(sd, old, &mut |l| l != b"ok", &mut |o| {
        for t in lines(old).filter_map(|l| l.strip_prefix(b"try ")) {
            let sha = words(t).next().unwrap_or(b"");
            if !has(old, b"good", sha) {
                o.s("good ").b(sha).nl();
            }
            n += 1;
        }
        o.s("ok\n");
    })?;
    Ok(n)
}

/// Lifts the quarantine of every payload of patch `name`, or of the one
/// payload `sha` when given. Returns how many were lifted.
pub fn release(sd: &[u8], name: &[u8], sha: Option<&[u8]>) -> usize {
    let mut buf = [0; MAX_GUARD];
    let old = load(sd, &mut buf);
    let hit = |l: &[u8]| entry(l).is_some_and(|e| sha.map_or(e.name == name, |s| s == e.sha256));
    let n = lines(old).filter(|l| hit(l)).count();
    if n > 0 && rewrite(sd, old, &mut |l| !hit(l), &mut |_| {}).is_err() {
        return 0;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_the_non_empty_lines() {
        for text in [
            &b""[..],
            b"\n",
            b"a",
            b"a\n",
            b"\n\na\n\nbb c\n",
            b"boot x\ntry 1 2\nok",
        ] {
            let want: Vec<&[u8]> = text
                .split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(lines(text).collect::<Vec<_>>(), want);
        }
    }
}
