//! The crash-loop guard, kept in the persistent state directory
//! (`--state-dir`), so that a patch that crashes the machine is not applied
//! again at every boot.
//!
//! - `<state-dir>/boot`: this boot's journal. `boot <id>` first; then one
//!   `try <sha256> <name> <stream> <version>` line per bundle, written and
//!   fsynced *before* its module is loaded; and `ok` once the boot is
//!   confirmed good (`klpctl confirm`: at a clean shutdown, and after the
//!   confirmation window).
//! - `<state-dir>/good/<sha256>`: a payload that has been through a
//!   confirmed boot.
//! - `<state-dir>/quarantine/<sha256>`: a payload that was tried in a boot
//!   that ended without confirmation (a panic, a hang and reset, a power
//!   loss inside the window): `<name> <stream> <version> <boot id> <time>`.
//!
//! At the first klpctl run of a boot ([`start_boot`]), an unconfirmed
//! journal of an earlier boot quarantines what that boot tried, except the
//! payloads already proven good in an earlier confirmed boot. A clean
//! shutdown, or a crash after the window, finds the journal confirmed and
//! quarantines nothing.
#![forbid(unsafe_code)]

use crate::error::{Context, Error, Result};
use crate::files::{self, AtomicFile, PathBuf};
use crate::out::Out;

/// Largest journal: a boot tries at most 64 bundles of a directory.
const MAX_JOURNAL: usize = 8192;

/// `<state-dir>/<sub>[/<name>]`.
fn path(sd: &[u8], sub: &[u8], name: &[u8]) -> Result<PathBuf> {
    if name.is_empty() {
        PathBuf::of(&[sd, b"/", sub])
    } else {
        PathBuf::of(&[sd, b"/", sub, b"/", name])
    }
}

fn read<'b>(p: &PathBuf, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let fd = files::open_own(p.c(), "guard").ok()?;
    files::read_fd_small(&fd, buf, "guard").ok()
}

/// Replaces `<state-dir>/<sub>/<name>` (or `<state-dir>/<sub>`) with
/// `bytes`, durably.
fn write(sd: &[u8], sub: &[u8], name: &[u8], bytes: &[u8]) -> Result<()> {
    let dir = if name.is_empty() {
        PathBuf::of(&[sd])?
    } else {
        let d = path(sd, sub, b"")?;
        files::ensure_dir(d.c(), "cannot create state directory")?;
        d
    };
    files::write_atomic(path(sd, sub, name)?.bytes(), bytes, 0o600)?;
    files::sync_dir(dir.c());
    Ok(())
}

fn exists(sd: &[u8], sub: &[u8], sha: &[u8]) -> bool {
    path(sd, sub, sha).is_ok_and(|p| files::exists(p.c()))
}

/// Whether payload `sha` (hex) is quarantined.
pub fn quarantined(sd: &[u8], sha: &[u8]) -> bool {
    exists(sd, b"quarantine", sha)
}

/// Whether payload `sha` (hex) has been through a confirmed boot.
pub fn good(sd: &[u8], sha: &[u8]) -> bool {
    exists(sd, b"good", sha)
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

/// Calls `f` with every quarantined payload.
pub fn each_quarantined(sd: &[u8], mut f: impl FnMut(&Entry)) {
    let Ok(dir) = path(sd, b"quarantine", b"") else {
        return;
    };
    let _ = files::each_entry(dir.c(), "quarantine", |n, _| {
        let mut buf = [0u8; 256];
        let sha = n.to_bytes();
        if let Ok(p) = path(sd, b"quarantine", sha)
            && let Some(t) = read(&p, &mut buf)
        {
            let mut w = t.trim_ascii().split(|&c| c == b' ');
            let mut next = || w.next().unwrap_or(b"?");
            f(&Entry {
                sha256: sha,
                name: next(),
                stream: next(),
                version: next(),
                boot_id: next(),
                time: next(),
            });
        }
        Ok(())
    });
}

/// Whether any payload of `stream` is quarantined.
pub fn stream_quarantined(sd: &[u8], stream: &[u8]) -> bool {
    let mut found = false;
    each_quarantined(sd, |e| found |= e.stream == stream);
    found
}

/// The start of a boot, at the first klpctl run of it with this state
/// directory: an earlier boot's journal that was never confirmed
/// quarantines what that boot tried (except payloads proven good before),
/// and a new journal starts. `quarantine` gets each new entry. Later runs
/// in the same boot change nothing.
#[inline(never)]
pub fn start_boot(sd: &[u8], mut quarantine: impl FnMut(&Entry)) -> Result<()> {
    let now = crate::state::boot_id();
    let jp = path(sd, b"boot", b"")?;
    let mut buf = [0u8; MAX_JOURNAL];
    let journal = read(&jp, &mut buf).unwrap_or(b"");
    let mut lines = journal.split(|&c| c == b'\n');
    let boot = lines
        .next()
        .and_then(|l| l.strip_prefix(b"boot "))
        .unwrap_or(b"");
    if boot == now.as_bytes() {
        return Ok(());
    }
    if !journal.split(|&c| c == b'\n').any(|l| l == b"ok") {
        let mut tm = [0u8; 20];
        let time = crate::codec::fmt_u64(crate::rt::unix_time(), &mut tm);
        for l in lines {
            let Some(t) = l.strip_prefix(b"try ") else {
                continue;
            };
            let mut w = t.split(|&c| c == b' ');
            let (Some(sha), Some(name), Some(stream), Some(version)) =
                (w.next(), w.next(), w.next(), w.next())
            else {
                continue;
            };
            if sha.len() != 64 || !sha.iter().all(u8::is_ascii_hexdigit) {
                continue;
            }
            if good(sd, sha) || quarantined(sd, sha) {
                continue;
            }
            let mut rec = [0u8; 256];
            let mut n = 0;
            for part in [
                name, b" ", stream, b" ", version, b" ", boot, b" ", time, b"\n",
            ] {
                if let Some(dst) = rec.get_mut(n..n + part.len()) {
                    dst.copy_from_slice(part);
                    n += part.len();
                }
            }
            write(sd, b"quarantine", sha, &rec[..n])?;
            quarantine(&Entry {
                sha256: sha,
                name,
                stream,
                version,
                boot_id: boot,
                time,
            });
        }
    }
    let mut head = [0u8; 64];
    let n = 5 + now.len() + 1;
    head[..5].copy_from_slice(b"boot ");
    head[5..n - 1].copy_from_slice(now.as_bytes());
    head[n - 1] = b'\n';
    write(sd, b"boot", b"", &head[..n])
}

/// Appends `line` to this boot's journal, durably.
fn append(sd: &[u8], line: &[&[u8]]) -> Result<()> {
    let jp = path(sd, b"boot", b"")?;
    let mut buf = [0u8; MAX_JOURNAL];
    let old = read(&jp, &mut buf).unwrap_or(b"");
    let f = AtomicFile::create(jp.bytes(), 0o600)?;
    {
        let mut o = Out::to(Some(f.fd()));
        o.b(old);
        for p in line {
            o.b(p);
        }
        o.nl().finish().ctx("cannot write the boot journal")?;
    }
    f.commit()?;
    files::sync_dir(PathBuf::of(&[sd])?.c());
    Ok(())
}

/// Records, before its module is loaded, that this boot tries payload
/// `sha` (hex) of patch `name`.
pub fn note_try(sd: &[u8], sha: &[u8], name: &[u8], stream: &[u8], version: u64) -> Result<()> {
    let mut v = [0u8; 20];
    let version = crate::codec::fmt_u64(version, &mut v);
    append(sd, &[b"try ", sha, b" ", name, b" ", stream, b" ", version])
}

/// Confirms this boot good: every payload it tried is marked good, and the
/// journal says `ok`, so no later boot quarantines them. Returns how many
/// payloads it tried.
pub fn confirm(sd: &[u8]) -> Result<usize> {
    let jp = path(sd, b"boot", b"")?;
    let mut buf = [0u8; MAX_JOURNAL];
    let journal = read(&jp, &mut buf).unwrap_or(b"");
    let now = crate::state::boot_id();
    let mut lines = journal.split(|&c| c == b'\n');
    if lines.next().and_then(|l| l.strip_prefix(b"boot ")) != Some(now.as_bytes()) {
        return Err(Error::Usage(
            "nothing to confirm: no klpctl apply with this --state-dir in this boot",
        ));
    }
    let mut n = 0;
    let mut ok = false;
    for l in lines {
        ok |= l == b"ok";
        if let Some(sha) = l
            .strip_prefix(b"try ")
            .and_then(|t| t.split(|&c| c == b' ').next())
        {
            write(sd, b"good", sha, b"")?;
            n += 1;
        }
    }
    if !ok {
        append(sd, &[b"ok"])?;
    }
    Ok(n)
}

/// Lifts the quarantine of every payload of patch `name`, or of the one
/// payload `sha` when given. Returns how many were lifted.
pub fn release(sd: &[u8], name: &[u8], sha: Option<&[u8]>) -> usize {
    let mut gone: heapless::Vec<[u8; 64], 16> = heapless::Vec::new();
    each_quarantined(sd, |e| {
        if sha.map_or(e.name == name, |s| s == e.sha256)
            && let Ok(h) = <[u8; 64]>::try_from(e.sha256)
        {
            let _ = gone.push(h);
        }
    });
    for h in &gone {
        if let Ok(p) = path(sd, b"quarantine", h) {
            let _ = rustix::fs::unlink(p.c());
        }
    }
    gone.len()
}
