//! The crash-loop guard, kept in the persistent state directory
//! (`--state-dir`) so that a patch that crashes the machine is not applied
//! again at every boot. One text file, `<state-dir>/guard`, replaced
//! atomically (temporary file, fsync, rename, directory fsync) at every
//! change: a first line naming its format ([`HEADER`]), one record per
//! line, and a last line that seals it, `end <sha256>`, the SHA-256 (hex)
//! of every byte before that line. The seal makes a file cut at a line
//! boundary, or changed inside a record, unreadable rather than a file
//! that quietly knows less. The records:
//!
//! - `boot <id>`: the boot the `try` lines belong to (one line);
//! - `try <sha256> <name> <stream> <version> <at>`: this boot tries that
//!   payload, written *before* its module is loaded, `at` seconds after
//!   boot (`CLOCK_BOOTTIME`). A try is a suspect until it is proven: by a
//!   clean shutdown, or by its own confirmation window after it;
//! - `good <sha256> <stream> <version>`: a payload that was live (enabled,
//!   transition over) when a try of it was proven;
//! - `quarantine <sha256> <name> <stream> <version> <boot id> <time>`: a
//!   payload tried in a boot that ended while the try was still a suspect
//!   (a panic, a hang and reset, a power loss inside its window).
//!
//! Bounded by construction: one `boot` line, one `try` per payload (a new
//! try of the same payload replaces it), at most one `quarantine` per
//! payload, the `try` lines of an earlier boot go at the next boot's
//! start, at most one `good` per payload (proven again, it moves to the
//! end), pruned at every change (see [`Guard::needed`]): only the
//! [`KEEP_GOOD`] proven last stay, plus those a fallback needs. A
//! file that cannot be read in full (a symlink, a FIFO, over
//! [`MAX_GUARD`], a missing or wrong seal, a line klpctl does not write)
//! is never taken as empty and never replaced: every command that needs it
//! fails with [`Error::Guard`], so boot-time apply applies nothing (fail
//! closed). The operator resets it by moving the file aside after reading
//! it.
//!
//! At the first klpctl run of a boot ([`start_boot`]), the suspects of an
//! earlier boot are quarantined, except the payloads already proven good.
//! Files written by older klpctl versions (no header, no seal) are read
//! too, and rewritten in this format at the next change, which every
//! boot's first run makes (`ok`: every try before it was confirmed; `try`
//! without `at`; `good` without stream and version).
#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crate::files::{self, PathBuf};
use crate::out::Out;
use crate::trust::manifest::{valid_name, valid_stream};

/// Largest guard file.
pub const MAX_GUARD: usize = 16 * 1024;

/// The first line of the guard file: its format.
const HEADER: &[u8] = b"klpctl-guard 2\n";

/// The length of its last line, `end <sha256, 64 hex digits>\n`.
const SEAL: usize = 69;

/// How many of the most recently proven `good` payloads a change keeps,
/// besides those a fallback needs: `apply --dir` applies at most 64
/// bundles in a boot, and those stay proven as long as each boot proves
/// them again.
pub const KEEP_GOOD: usize = 64;

/// The guard file of one state directory, read in full and every line
/// checked ([`load`]).
#[derive(Clone, Copy)]
pub struct Guard<'b>(&'b [u8]);

/// The guard file of state directory `sd`, read into `buf`: empty when
/// there is none, [`Error::Guard`] when there is one that cannot be read in
/// full, is not sealed, or holds a line klpctl does not write.
pub fn load<'b>(sd: &[u8], buf: &'b mut [u8; MAX_GUARD]) -> Result<Guard<'b>> {
    let p = PathBuf::of(&[sd, b"/guard"])?;
    let text = match files::open_own(p.c(), crate::files::UNSHOWN) {
        Err(Error::Io(_, rustix::io::Errno::NOENT)) => return Ok(Guard(b"")),
        Err(_) => None,
        Ok(fd) => files::read_fd_small(&fd, &mut buf[..], crate::files::UNSHOWN).ok(),
    };
    match text.and_then(records) {
        Some(t) => Ok(Guard(t)),
        None => Err(Error::Guard(msg!(
            "the crash-loop guard file cannot be read in full"
        ))),
    }
}

/// The records of guard file `t`: those between its header and its seal,
/// or the whole of a file of the previous format (no header). `None` when
/// the last line is not the seal of every byte before it, or a record is
/// not [`valid`].
fn records(t: &[u8]) -> Option<&[u8]> {
    if !t.starts_with(HEADER) {
        return valid(t).then_some(t);
    }
    let (sealed, end) = t.split_at_checked(t.len().checked_sub(SEAL)?)?;
    let body = sealed.get(HEADER.len()..)?;
    (end == seal(sealed) && (body.is_empty() || valid(body))).then_some(body)
}

/// The last line of a guard file whose bytes before it are `t`.
fn seal(t: &[u8]) -> [u8; SEAL] {
    use sha2::Digest;
    let mut s = [b'\n'; SEAL];
    let (end, digits) = s.split_at_mut(4);
    end.copy_from_slice(b"end ");
    // 32 bytes are 64 digits: the newline after them stays.
    let _ = crate::codec::hex_encode(&sha2::Sha256::digest(t), digits);
    s
}

/// Whether `t` is a run of records as klpctl writes them: lines ended by a
/// newline, each one a record of a known kind, at most one `boot`.
fn valid(t: &[u8]) -> bool {
    let Some(body) = t.strip_suffix(b"\n") else {
        return false;
    };
    let mut boots = 0;
    body.split(|&c| c == b'\n').all(|l| match parse(l) {
        Some(Line::Boot(_)) => {
            boots += 1;
            boots == 1
        }
        Some(_) => true,
        None => false,
    })
}

/// One record of the guard file.
enum Line<'a> {
    Boot(&'a [u8]),
    Try(Try<'a>),
    /// Legacy: every try before it was confirmed.
    Ok,
    Good {
        sha: &'a [u8],
        /// Stream and version; `None` in files of older versions.
        of: Option<(&'a [u8], u64)>,
    },
    Quarantine(Entry<'a>),
}

/// A `try` line.
struct Try<'a> {
    sha: &'a [u8],
    name: &'a [u8],
    stream: &'a [u8],
    version: &'a [u8],
    /// Seconds after boot; 0 in files of older versions.
    at: u64,
}

fn is_sha(w: &[u8]) -> bool {
    w.len() == 64 && w.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_name(w: &[u8]) -> bool {
    core::str::from_utf8(w).is_ok_and(valid_name)
}

fn is_stream(w: &[u8]) -> bool {
    core::str::from_utf8(w).is_ok_and(valid_stream)
}

fn num(w: &[u8]) -> Option<u64> {
    // Digits only: parse_u64 alone would also take surrounding blanks.
    w.iter()
        .all(u8::is_ascii_digit)
        .then(|| crate::codec::parse_u64(w))?
}

/// A boot id as the kernel prints it (a UUID); never empty.
pub fn is_boot_id(w: &[u8]) -> bool {
    w.len() == 36
        && w.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Whether words 1 to 4 of a line name a payload, as `try` and
/// `quarantine` lines do: sha256, name, stream, version.
fn names_payload(w: &[&[u8]]) -> bool {
    is_sha(w[1]) && is_name(w[2]) && is_stream(w[3]) && num(w[4]).is_some()
}

/// Parses one line; `None` for anything klpctl does not write.
fn parse(l: &[u8]) -> Option<Line<'_>> {
    let mut w = [&b""[..]; 8];
    let mut n = 0;
    for x in l.split(|&c| c == b' ') {
        *w.get_mut(n)? = x;
        n += 1;
    }
    Some(match (w[0], n) {
        (b"boot", 2) if is_boot_id(w[1]) => Line::Boot(w[1]),
        (b"ok", 1) => Line::Ok,
        (b"try", 5 | 6) if names_payload(&w) => Line::Try(Try {
            sha: w[1],
            name: w[2],
            stream: w[3],
            version: w[4],
            at: if n == 6 { num(w[5])? } else { 0 },
        }),
        (b"good", 2) if is_sha(w[1]) => Line::Good {
            sha: w[1],
            of: None,
        },
        (b"good", 4) if is_sha(w[1]) && is_stream(w[2]) => Line::Good {
            sha: w[1],
            of: Some((w[2], num(w[3])?)),
        },
        (b"quarantine", 7) if names_payload(&w) && is_boot_id(w[5]) => {
            num(w[6])?;
            Line::Quarantine(Entry {
                sha256: w[1],
                name: w[2],
                stream: w[3],
                version: w[4],
                boot_id: w[5],
                time: w[6],
            })
        }
        _ => return None,
    })
}

/// The records of a guard file, in order.
struct Lines<'b>(&'b [u8]);

impl<'b> Iterator for Lines<'b> {
    type Item = Line<'b>;

    fn next(&mut self) -> Option<Line<'b>> {
        while !self.0.is_empty() {
            let end = self.0.iter().position(|&c| c == b'\n');
            let (l, rest) = self.0.split_at(end.unwrap_or(self.0.len()));
            self.0 = rest.get(1..).unwrap_or(b"");
            // An empty line parses as nothing.
            if let Some(x) = parse(l) {
                return Some(x);
            }
        }
        None
    }
}

impl<'b> Guard<'b> {
    /// The records (the file was checked when it was loaded).
    fn lines(self) -> Lines<'b> {
        Lines(self.0)
    }

    fn boot(self) -> Option<&'b [u8]> {
        self.lines().find_map(|l| match l {
            Line::Boot(b) => Some(b),
            _ => None,
        })
    }

    fn tries(self) -> impl Iterator<Item = Try<'b>> {
        self.lines().filter_map(|l| match l {
            Line::Try(t) => Some(t),
            _ => None,
        })
    }

    /// The tries never proven. Files of older versions: an `ok` line
    /// proved the tries before it, not those after it.
    fn suspects(self) -> impl Iterator<Item = Try<'b>> {
        self.lines().enumerate().filter_map(move |(i, l)| match l {
            Line::Try(t) if !self.lines().skip(i + 1).any(|x| matches!(x, Line::Ok)) => Some(t),
            _ => None,
        })
    }

    /// Whether payload `sha` (hex) is quarantined.
    pub fn quarantined(self, sha: &[u8]) -> bool {
        self.each_quarantined().any(|e| e.sha256 == sha)
    }

    /// Whether payload `sha` (hex) was live through a proven try.
    pub fn good(self, sha: &[u8]) -> bool {
        self.lines()
            .any(|l| matches!(l, Line::Good { sha: s, .. } if s == sha))
    }

    /// The versions of `stream` proven good.
    fn good_versions(self, stream: &[u8]) -> impl Iterator<Item = u64> {
        self.lines().filter_map(move |l| match l {
            Line::Good {
                of: Some((s, v)), ..
            } if s == stream => Some(v),
            _ => None,
        })
    }

    /// Every quarantined payload.
    pub fn each_quarantined(self) -> impl Iterator<Item = Entry<'b>> {
        self.lines().filter_map(|l| match l {
            Line::Quarantine(e) => Some(e),
            _ => None,
        })
    }

    /// Whether record `l`, followed by the records `after`, is kept at a
    /// change. Every record is, except a `good` line with [`KEEP_GOOD`] or
    /// more `good` lines after it (those proven since), unless a fallback
    /// needs it or may come to: it is the newest good version below a
    /// quarantined one of its stream, or below a suspect (which the change
    /// itself, or a later boot, may quarantine). A payload pruned is no
    /// longer proven: a new try of it is a suspect again, which is the
    /// safe direction.
    fn needed(self, l: &[u8], after: &[u8]) -> bool {
        let Some(Line::Good { sha, of }) = parse(l) else {
            return true;
        };
        let newer = Lines(after).filter(|x| matches!(x, Line::Good { .. }));
        newer.count() < KEEP_GOOD || of.is_some_and(|(s, v)| self.way_back(s, sha, v, 0, true))
    }

    /// Whether version `version` (payload `sha`) of `stream` may go below
    /// the stream's rollback floor `bound`: only as the way back from a
    /// newer quarantined payload that is at or above the floor (the one
    /// that raised it), and only to the newest version proven good below
    /// that payload.
    pub fn fallback_allowed(self, stream: &[u8], sha: &[u8], version: u64, bound: u64) -> bool {
        self.way_back(stream, sha, version, bound, false)
    }

    /// [`Guard::fallback_allowed`], from a quarantined payload, or also
    /// from a suspect (a `try` line) when `tries`.
    fn way_back(self, stream: &[u8], sha: &[u8], version: u64, bound: u64, tries: bool) -> bool {
        self.good(sha)
            && self.lines().any(|l| {
                let (s, qv) = match l {
                    Line::Quarantine(q) => (q.stream, q.version),
                    Line::Try(t) if tries => (t.stream, t.version),
                    _ => return false,
                };
                let qv = num(qv).unwrap_or(0);
                s == stream
                    && qv >= bound
                    && qv > version
                    && self.good_versions(stream).all(|v| v <= version || v >= qv)
            })
    }
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

/// Writes a new guard file: its header, the old records that `keep` keeps
/// and the guard still needs ([`Guard::needed`]), what `add` writes, and
/// its seal. A file that would not fit [`MAX_GUARD`] (so could not be read
/// back) is not written: [`Error::Guard`].
fn rewrite(
    sd: &[u8],
    old: Guard,
    keep: &mut dyn FnMut(&[u8]) -> bool,
    add: &mut dyn FnMut(&mut Out),
) -> Result<()> {
    let dir = PathBuf::of(&[sd])?;
    files::ensure_dir(dir.c(), msg!("create state directory"))?;
    let mut mem = [0u8; MAX_GUARD];
    let n = {
        // Room is left for the seal.
        let mut o = Out::into_slice(&mut mem[..MAX_GUARD - SEAL]);
        o.b(HEADER);
        let mut rest = old.0;
        while let Some(end) = rest.iter().position(|&c| c == b'\n') {
            let (l, r) = rest.split_at(end);
            rest = r.get(1..).unwrap_or(b"");
            if keep(l) && old.needed(l, rest) {
                o.b(l).nl();
            }
        }
        add(&mut o);
        if o.finish().is_err() {
            return Err(Error::Guard(msg!(
                "the crash-loop guard file would grow past 16 KiB"
            )));
        }
        o.written()
    };
    let (text, rest) = mem.split_at_mut(n);
    let s = seal(text);
    rest[..SEAL].copy_from_slice(&s);
    let path = PathBuf::of(&[sd, b"/guard"])?;
    files::write_atomic(path.bytes(), &mem[..n + SEAL], 0o600).map_err(|e| match e {
        Error::Io(_, n) => Error::Io(msg!("write the crash-loop guard"), n),
        other => other,
    })?;
    files::sync_dir(dir.c());
    Ok(())
}

/// Writes one record: its kind, then each word after a blank.
fn record(o: &mut Out, kind: &str, words: &[&[u8]]) {
    o.s(kind);
    for w in words {
        o.s(" ").b(w);
    }
    o.nl();
}

/// This boot's id, or [`Error::Guard`]: without it the guard cannot tell
/// one boot from the next, so it refuses rather than guess.
fn this_boot() -> Result<heapless::String<40>> {
    let now = crate::state::boot_id();
    if is_boot_id(now.as_bytes()) {
        Ok(now)
    } else {
        Err(Error::Guard(msg!(
            "cannot read the kernel's boot id, which the crash-loop guard needs"
        )))
    }
}

/// Seconds since boot, suspend included.
pub fn uptime() -> u64 {
    crate::sys::clock(7).0
}

/// The start of a boot, at the first klpctl run of it with this state
/// directory: the suspects of an earlier boot (its tries never proven) are
/// quarantined, except payloads proven good, and a new journal starts.
/// `quarantine` gets each new entry. Later runs in the same boot change
/// nothing.
pub fn start_boot(sd: &[u8], quarantine: &mut dyn FnMut(&Entry)) -> Result<()> {
    let now = this_boot()?;
    let mut buf = [0; MAX_GUARD];
    let old = load(sd, &mut buf)?;
    let boot = old.boot().unwrap_or(b"");
    if boot == now.as_bytes() {
        return Ok(());
    }
    let mut tm = [0u8; 20];
    let time = crate::codec::fmt_u64(crate::rt::unix_time(), &mut tm);
    // The journal of the old boot goes; what was learnt stays.
    let mut keep = |l: &[u8]| matches!(parse(l), Some(Line::Good { .. } | Line::Quarantine(_)));
    let mut add = |o: &mut Out| {
        o.s("boot ").s(&now).nl();
        for t in old.suspects() {
            if old.good(t.sha) || old.quarantined(t.sha) {
                continue;
            }
            record(
                o,
                "quarantine",
                &[t.sha, t.name, t.stream, t.version, boot, time],
            );
            quarantine(&Entry {
                sha256: t.sha,
                name: t.name,
                stream: t.stream,
                version: t.version,
                boot_id: boot,
                time,
            });
        }
    };
    rewrite(sd, old, &mut keep, &mut add)
}

/// Records, before its module is loaded, that this boot tries payload
/// `sha` (hex) of patch `name`, now: a suspect until proven. An earlier
/// try of the same payload is replaced (its proof, if any, did not cover
/// this try).
pub fn note_try(sd: &[u8], sha: &[u8], name: &[u8], stream: &[u8], version: u64) -> Result<()> {
    this_boot()?;
    let mut buf = [0; MAX_GUARD];
    let old = load(sd, &mut buf)?;
    let same = |l: &[u8]| matches!(parse(l), Some(Line::Try(t)) if t.sha == sha);
    let (mut v, mut at) = ([0u8; 20], [0u8; 20]);
    let v = crate::codec::fmt_u64(version, &mut v);
    let at = crate::codec::fmt_u64(uptime(), &mut at);
    rewrite(sd, old, &mut |l| !same(l), &mut |o| {
        record(o, "try", &[sha, name, stream, v, at]);
    })
}

/// What a confirmation proved.
#[derive(Default, Clone, Copy)]
pub struct Proven {
    /// Tries proven.
    pub tries: usize,
    /// Of those, payloads live now and so marked good.
    pub good: usize,
    /// Tries still inside their own window, left suspects.
    pub pending: usize,
}

/// Where a tried payload stands when a confirmation looks at it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Now {
    /// Live: enabled, its transition over, recorded as applied.
    Live,
    /// Loaded but not (yet) live: in transition, or its record unfinished.
    /// Its window has not run with it live, so it proves nothing yet.
    Loading,
    /// Not loaded: refused, reverted, disabled, or replaced.
    Gone,
}

/// Proves this boot's tries made at least `window` seconds ago (every try
/// when `window` is 0: a clean shutdown), except, for a window, the tries
/// whose payload is still [`Now::Loading`]: they stay suspects. A proven
/// try leaves the journal; its payload is marked good only when `now` says
/// it is live (a try that failed to load, timed out, or was disabled
/// proves nothing). The file is not rewritten when nothing is proven.
pub fn confirm(
    sd: &[u8],
    window: u64,
    now_of: &mut dyn FnMut(&[u8], &[u8]) -> Now,
) -> Result<Proven> {
    let now = this_boot()?;
    let mut buf = [0; MAX_GUARD];
    let old = load(sd, &mut buf)?;
    let mut p = Proven::default();
    if old.boot() != Some(now.as_bytes()) {
        return Ok(p);
    }
    let up = uptime();
    // A window proves a try only once it ran through it with its payload
    // settled; a clean shutdown proves every try.
    let now_of = core::cell::RefCell::new(now_of);
    let proven = |t: &Try| {
        window == 0
            || t.at.saturating_add(window) <= up
                && (now_of.borrow_mut())(t.name, t.sha) != Now::Loading
    };
    for t in old.tries() {
        if proven(&t) {
            p.tries += 1;
        } else {
            p.pending += 1;
        }
    }
    if p.tries == 0 {
        return Ok(p);
    }
    // A payload proven live is good from now: its `good` line, if it had
    // one, moves to the end, among the proofs that pruning keeps longest.
    let good_now = |t: &Try| proven(t) && (now_of.borrow_mut())(t.name, t.sha) == Now::Live;
    let gone = |l: &[u8]| match parse(l) {
        Some(Line::Try(t)) => proven(&t),
        Some(Line::Good { sha, .. }) => old.tries().any(|t| t.sha == sha && good_now(&t)),
        _ => false,
    };
    rewrite(sd, old, &mut |l| !gone(l), &mut |o| {
        for t in old.tries().filter(good_now) {
            record(o, "good", &[t.sha, t.stream, t.version]);
            p.good += 1;
        }
    })?;
    Ok(p)
}

/// Lifts the quarantine of every payload of patch `name`, or of the one
/// payload `sha` when given. Returns how many were lifted; a guard that
/// cannot be read or written is an error, never "none".
pub fn release(sd: &[u8], name: &[u8], sha: Option<&[u8]>) -> Result<usize> {
    let mut buf = [0; MAX_GUARD];
    let old = load(sd, &mut buf)?;
    let hit = |l: &[u8]| matches!(parse(l), Some(Line::Quarantine(e)) if sha.map_or(e.name == name, |s| s == e.sha256));
    let n = old.0.split(|&c| c == b'\n').filter(|l| hit(l)).count();
    if n > 0 {
        rewrite(sd, old, &mut |l| !hit(l), &mut |_| {})?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
