//! klpctl's own records, kept apart from the kernel's truth:
//!
//! - `/run/klpctl/lock`: the lock every changing command takes;
//! - `/run/klpctl/patches/<name>`: one record per patch klpctl loaded this
//!   boot (stream, version, digest, keys, CVEs, time, and whether the load
//!   finished), written before `finit_module` so a killed klpctl leaves the
//!   truth behind;
//! - `/run/klpctl/streams/<stream>`: the rollback floor of each stream this
//!   boot: the newest version applied, and the newest cumulative one;
//! - `<state-dir>/streams/<stream>`: the same, persistent, when `--state-dir`
//!   is given.
//!
//! Every record carries the boot id, so records that survive a reboot on a
//! `/run` that is not tmpfs are ignored. Files are replaced atomically
//! (temp file, fsync, rename) and read defensively, never through a symlink
//! and never from anything but a regular file: an unreadable record is
//! treated as absent, never trusted, and an unreadable floor as damaged,
//! which refuses every downgrade (fail closed).
#![forbid(unsafe_code)]

use crate::error::{Context, Error, Result};
use crate::files::{self, AtomicFile, PathBuf};
use crate::out::Out;
use core::ffi::CStr;
use rustix::fd::{AsFd, OwnedFd};

/// Per-boot state directory.
pub const RUN_DIR: &[u8] = b"/run/klpctl";
/// Largest record file.
pub const MAX_RECORD: usize = 8192;

/// The lock held by a changing command; released when dropped (or when the
/// process dies, which is what makes `kill -9` safe).
pub struct Lock {
    _fd: OwnedFd,
}

/// Takes `/run/klpctl/lock`. Waits up to `wait_s` seconds for another
/// klpctl, calling `on_wait` once when it starts waiting, or fails at once
/// with [`Error::Locked`] when `wait_s` is 0.
pub fn lock(wait_s: u64, on_wait: &mut dyn FnMut()) -> Result<Lock> {
    use rustix::fs::{FlockOperation, Mode, OFlags};
    ensure_dirs()?;
    // Never through a symlink, never blocking on a FIFO planted there, and
    // only a regular file.
    let fd = rustix::fs::open(
        c"/run/klpctl/lock",
        OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::from_raw_mode(0o600),
    )
    .ctx(msg!("open /run/klpctl/lock"))?;
    files::regular_size(fd.as_fd(), msg!("open /run/klpctl/lock"))?;
    let start = crate::rt::now_ms();
    let mut said = false;
    loop {
        match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(Lock { _fd: fd }),
            Err(rustix::io::Errno::WOULDBLOCK) => {}
            // A minimal kernel (tinyconfig) can lack flock(2) altogether.
            Err(e @ rustix::io::Errno::NOSYS) => {
                return Err(Error::Io(
                    msg!(
                        "lock /run/klpctl/lock: this kernel has no file locking (CONFIG_FILE_LOCKING)"
                    ),
                    e,
                ));
            }
            Err(e) => return Err(Error::Io(msg!("lock /run/klpctl/lock"), e)),
        }
        if crate::rt::now_ms() - start >= wait_s * 1000 {
            return Err(Error::Locked);
        }
        if !said {
            on_wait();
            said = true;
        }
        crate::rt::sleep_ms(20);
    }
}

fn ensure_dirs() -> Result<()> {
    files::ensure_dir(c"/run/klpctl", msg!("create /run/klpctl"))?;
    files::ensure_dir(c"/run/klpctl/patches", msg!("create /run/klpctl/patches"))?;
    files::ensure_dir(c"/run/klpctl/streams", msg!("create /run/klpctl/streams"))
}

/// The kernel's boot id, or empty if unavailable.
pub fn boot_id() -> heapless::String<40> {
    let mut buf = [0u8; 64];
    let mut s = heapless::String::new();
    if let Ok(t) = files::read_small(
        c"/proc/sys/kernel/random/boot_id",
        &mut buf,
        crate::files::UNSHOWN,
    ) && let Ok(t) = core::str::from_utf8(t.trim_ascii())
    {
        // A UUID is 36 bytes; anything longer is not one and stays empty
        // (no boot id: the guard then refuses, failing closed).
        let _ = s.push_str(t);
    }
    s
}

/// A patch record as stored: one `key value` pair per line, the keys in
/// the order of these fields, lists comma-separated. klpctl writes it and
/// reads it back defensively (any unknown, missing or misplaced key, or
/// malformed value, discards the record).
#[derive(Debug)]
pub struct Record<'a> {
    /// Boot the record belongs to.
    pub boot_id: &'a str,
    /// Module / patch name.
    pub name: &'a str,
    /// Stream.
    pub stream: &'a str,
    /// Version in the stream.
    pub version: u64,
    /// Payload SHA-256, hex.
    pub sha256: &'a str,
    /// Key ids that signed, hex, comma-separated.
    pub keys: &'a str,
    /// CVEs, comma-separated.
    pub cves: &'a str,
    /// Products (purls, CPEs) from the manifest, space-separated; empty in
    /// records written before klpctl knew them.
    pub products: &'a str,
    /// Unix time of the apply.
    pub time: u64,
    /// Atomic-replace patch.
    pub replace: bool,
    /// `loading` until the transition finished, then `applied`;
    /// `reverting` after a timeout while the patch is being backed out.
    pub state: &'a str,
}

fn record_path(name: &str) -> Result<PathBuf> {
    if !crate::trust::manifest::valid_name(name) {
        return Err(Error::Usage(msg!(
            "invalid patch name ([A-Za-z0-9_], 1-55)"
        )));
    }
    PathBuf::of(&[RUN_DIR, b"/patches/", name.as_bytes()])
}

/// The `key value` lines of a record, in the order klpctl writes them.
struct Fields<'a>(core::iter::Peekable<core::str::Lines<'a>>);

impl<'a> Fields<'a> {
    /// The value of the next line, when its key is `key`; `None` (and the
    /// line left for the next key) otherwise.
    fn take(&mut self, key: &str) -> Option<&'a str> {
        let line = *self.0.peek()?;
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        self.0.next_if(|_| k == key).map(|_| v)
    }
}

/// Hex digits, comma-separated.
fn hex_list(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_hexdigit() || c == b',')
}

/// A list, `sep`-separated, as a manifest holds one: each item `valid`,
/// none twice (`distinct`), at most `N`. What no manifest can hold is
/// damage: a VEX document made from it would claim more than any bundle
/// said.
fn manifest_list<const N: usize>(
    s: &str,
    sep: char,
    valid: fn(&str) -> bool,
    distinct: fn(&[&str]) -> bool,
) -> bool {
    let mut items: heapless::Vec<&str, N> = heapless::Vec::new();
    for x in s.split(sep).filter(|x| !x.is_empty()) {
        if !valid(x) || items.push(x).is_err() {
            return false;
        }
    }
    distinct(&items)
}

/// Parses record text as [`write_record`] writes it: every key once, in
/// its order, each value valid for its key. `products` may be missing:
/// records written before klpctl knew products lack it (they have none).
/// Anything else (a key missing, twice, unknown or out of place, a value
/// not valid) is `None`: a damaged record is no record.
pub fn parse_record(text: &str) -> Option<Record<'_>> {
    use crate::trust::manifest::{self as m, MAX_CVES, MAX_PRODUCTS};
    let cves = |v: &&str| manifest_list::<MAX_CVES>(v, ',', m::valid_cve, m::distinct_cves);
    let products =
        |v| manifest_list::<MAX_PRODUCTS>(v, ' ', m::valid_product, m::distinct_products);
    let mut f = Fields(text.lines().peekable());
    let num = |v: Option<&str>| crate::codec::parse_u64(v?.as_bytes());
    let r = Record {
        boot_id: f.take("boot_id")?,
        name: f.take("name").filter(|v| m::valid_name(v))?,
        stream: f.take("stream").filter(|v| m::valid_stream(v))?,
        version: num(f.take("version"))?,
        sha256: f.take("sha256").filter(|v| v.len() == 64 && hex_list(v))?,
        keys: f.take("keys").filter(|v| hex_list(v))?,
        cves: f.take("cves").filter(cves)?,
        products: f
            .take("products")
            .map_or(Some(""), |v| products(v).then_some(v))?,
        time: num(f.take("time"))?,
        replace: num(f.take("replace"))? == 1,
        state: f
            .take("state")
            .filter(|v| matches!(*v, "loading" | "applied" | "reverting"))?,
    };
    f.0.next().is_none().then_some(r)
}

/// Reads the record for `name` into `buf`. `None` when absent, unreadable,
/// malformed, from another boot, or about another name.
pub fn read_record<'b>(name: &str, buf: &'b mut [u8; MAX_RECORD]) -> Option<Record<'b>> {
    let p = record_path(name).ok()?;
    let fd = files::open_own(p.c(), crate::files::UNSHOWN).ok()?;
    let bytes = files::read_fd_small(&fd, buf, crate::files::UNSHOWN).ok()?;
    let r = parse_record(core::str::from_utf8(bytes).ok()?)?;
    (r.name == name && r.boot_id == boot_id().as_str()).then_some(r)
}

/// Everything a record holds, from the verified bundle.
pub struct NewRecord<'a> {
    /// The verified manifest.
    pub manifest: &'a crate::trust::manifest::Manifest<'a>,
    /// Key ids that signed validly.
    pub keys: &'a [crate::trust::keys::KeyId],
    /// Unix time.
    pub time: u64,
}

/// Writes (atomically replaces) the record for a patch, in the format
/// [`parse_record`] reads.
pub fn write_record(r: &NewRecord, state: &str) -> Result<()> {
    let m = r.manifest;
    let p = record_path(m.name)?;
    let f = AtomicFile::create(p.bytes(), 0o600)?;
    {
        let mut o = Out::to(Some(f.fd()));
        o.s("boot_id ")
            .s(&boot_id())
            .s("\nname ")
            .s(m.name)
            .s("\nstream ")
            .s(m.stream);
        o.s("\nversion ")
            .u(m.version)
            .s("\nsha256 ")
            .hex(&m.payload_sha256)
            .s("\nkeys ");
        for (i, k) in r.keys.iter().enumerate() {
            o.s(if i > 0 { "," } else { "" }).hex(k);
        }
        o.s("\ncves ");
        for (i, c) in m.cves.iter().enumerate() {
            o.s(if i > 0 { "," } else { "" }).s(c);
        }
        o.s("\nproducts");
        for p in &m.products {
            o.s(" ").s(p);
        }
        o.s("\ntime ").u(r.time).s("\nreplace ").u(m.replace as u64);
        o.s("\nstate ").s(state).nl();
        o.finish().ctx(msg!("write klpctl record"))?;
    }
    f.commit()
}

/// Removes the record for `name` (absent is fine).
pub fn remove_record(name: &str) {
    if let Ok(p) = record_path(name) {
        let _ = rustix::fs::unlink(p.c());
    }
}

fn stream_path(base: &[u8], stream: &str) -> Result<PathBuf> {
    if !crate::trust::manifest::valid_stream(stream) {
        return Err(Error::Internal(msg!("invalid stream name")));
    }
    PathBuf::of(&[base, b"/streams/", stream.as_bytes()])
}

/// The rollback floor of a stream: the newest version applied, and the
/// newest version of a cumulative (`replace`) bundle applied.
///
/// A cumulative bundle replaces every patch of its stream, so one older
/// than the newest version applied would take newer fixes away. A
/// non-cumulative bundle only adds its own fix beside the others, so it is
/// a downgrade only when a newer cumulative bundle already contains it; the
/// older members of a non-cumulative stream stay applicable, which is what
/// lets `apply --dir` restore the whole set after a reboot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Floor {
    /// Newest version applied, cumulative or not.
    pub newest: u64,
    /// Newest cumulative version applied (0 when none was).
    pub cumulative: u64,
}

impl Floor {
    /// The version below which `replace`-ness `replace` is a downgrade.
    pub fn bound(&self, replace: bool) -> u64 {
        if replace {
            self.newest
        } else {
            self.cumulative
        }
    }

    /// The floor after applying `version`.
    pub fn raised(self, version: u64, replace: bool) -> Floor {
        Floor {
            newest: self.newest.max(version),
            cumulative: if replace {
                self.cumulative.max(version)
            } else {
                self.cumulative
            },
        }
    }

    fn max(self, o: Floor) -> Floor {
        Floor {
            newest: self.newest.max(o.newest),
            cumulative: self.cumulative.max(o.cumulative),
        }
    }
}

/// Parses a floor file: `newest N` and `cumulative M` lines. A file of one
/// number, as klpctl 0.1 wrote it, did not say whether that version was
/// cumulative: it is taken as both (fail closed). Anything else is `None`.
pub fn parse_floor(t: &[u8]) -> Option<Floor> {
    let t = core::str::from_utf8(t).ok()?;
    if let Some(v) = crate::codec::parse_u64(t.as_bytes()) {
        return Some(Floor {
            newest: v,
            cumulative: v,
        });
    }
    let mut lines = t.strip_suffix('\n')?.split('\n');
    let mut field = |key: &str| {
        let v = lines.next()?.strip_prefix(key)?.strip_prefix(' ')?;
        crate::codec::parse_u64(v.as_bytes()).filter(|_| !v.starts_with(' '))
    };
    let f = Floor {
        newest: field("newest")?,
        cumulative: field("cumulative")?,
    };
    (lines.next().is_none() && f.cumulative <= f.newest).then_some(f)
}

/// A floor file that exists but cannot be trusted: the state directory
/// it is in (`<base>/streams/<stream>`).
pub struct Damaged<'a>(pub &'a [u8]);

/// The floor in `base`: `Ok(None)` when there is no file, `Err` when there
/// is one that cannot be read or parsed (a symlink, a FIFO, junk).
fn read_floor<'a>(
    base: &'a [u8],
    stream: &str,
) -> core::result::Result<Option<Floor>, Damaged<'a>> {
    let p = stream_path(base, stream).map_err(|_| Damaged(base))?;
    let fd = match files::open_own(p.c(), crate::files::UNSHOWN) {
        // No file, or no streams directory for one to be in (whether the
        // state can be written is checked apart, before anything loads).
        Err(Error::Io(_, rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR)) => {
            return Ok(None);
        }
        Err(_) => return Err(Damaged(base)),
        Ok(fd) => fd,
    };
    let mut buf = [0u8; 64];
    match files::read_fd_small(&fd, &mut buf, crate::files::UNSHOWN).map(parse_floor) {
        Ok(Some(f)) => Ok(Some(f)),
        _ => Err(Damaged(base)),
    }
}

/// The floor of `stream`: this boot's, combined with the persistent one in
/// `state_dir` when given (the larger of each). A damaged file in either
/// place is an error naming it.
pub fn floor<'a>(
    stream: &str,
    state_dir: Option<&'a CStr>,
) -> core::result::Result<Option<Floor>, Damaged<'a>> {
    let boot = read_floor(RUN_DIR, stream)?;
    let persistent = match state_dir {
        Some(d) => read_floor(d.to_bytes(), stream)?,
        None => None,
    };
    Ok(match (boot, persistent) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    })
}

/// Creates `<base>/streams` (and `base`) if missing; returns its path.
fn streams_dir(base: &[u8]) -> Result<PathBuf> {
    files::ensure_dir(PathBuf::of(&[base])?.c(), msg!("create state directory"))?;
    let dir = PathBuf::of(&[base, b"/streams"])?;
    files::ensure_dir(dir.c(), msg!("create state directory"))?;
    Ok(dir)
}

/// Proves, before the kernel is touched, that the floors can be written
/// this boot and in `state_dir`: creates the directories and a probe file
/// (removed again). A patch that goes live must not be reported as failed
/// because its state could not be saved afterwards.
pub fn check_writable(state_dir: Option<&CStr>) -> Result<()> {
    let probe = |base: &[u8]| -> Result<()> {
        let dir = streams_dir(base)?;
        let p = PathBuf::of(&[dir.bytes(), b"/.probe"])?;
        AtomicFile::create(p.bytes(), 0o600)
            .map(drop)
            .map_err(|e| match e {
                Error::Io(_, n) => Error::Io(msg!("write the state directory"), n),
                other => other,
            })
    };
    probe(RUN_DIR)?;
    if let Some(d) = state_dir {
        probe(d.to_bytes())?;
    }
    Ok(())
}

/// Raises the floor of `stream` for an applied `version` (never lowers
/// it) this boot and, when given, in `state_dir`. A damaged floor is left
/// as it is, still refusing downgrades, unless `reset` (the operator's
/// `--allow-downgrade`) replaces it.
pub fn raise_floor(
    stream: &str,
    version: u64,
    replace: bool,
    state_dir: Option<&CStr>,
    reset: bool,
) -> Result<()> {
    let set = |base: &[u8]| -> Result<()> {
        let cur = match read_floor(base, stream) {
            Ok(cur) => cur,
            Err(_) if reset => None,
            Err(_) => return Ok(()),
        };
        let new = cur.unwrap_or_default().raised(version, replace);
        if cur == Some(new) {
            return Ok(());
        }
        let dir = streams_dir(base)?;
        let p = stream_path(base, stream)?;
        let f = AtomicFile::create(p.bytes(), 0o600)?;
        Out::to(Some(f.fd()))
            .s("newest ")
            .u(new.newest)
            .s("\ncumulative ")
            .u(new.cumulative)
            .nl()
            .finish()
            .ctx(msg!("write rollback floor"))?;
        f.commit()?;
        files::sync_dir(dir.c());
        Ok(())
    };
    set(RUN_DIR)?;
    if let Some(d) = state_dir {
        set(d.to_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "boot_id b\nname klp_a\nstream s\nversion 3\nsha256 \
        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nkeys 0011223344556677\n\
        cves CVE-1,CVE-2\ntime 5\nreplace 1\nstate applied\n";

    /// `GOOD` with a `products` line where [`write_record`] puts it.
    fn with_products(p: &str) -> String {
        GOOD.replace("time 5\n", &format!("products {p}\ntime 5\n"))
    }

    #[test]
    fn record_round_trip_fields() {
        let r = parse_record(GOOD).unwrap();
        assert_eq!(
            (r.name, r.stream, r.version, r.time, r.replace, r.state),
            ("klp_a", "s", 3, 5, true, "applied")
        );
        assert_eq!(r.cves, "CVE-1,CVE-2");
        // Records from before products existed have none.
        assert_eq!(r.products, "");
        let p = "pkg:deb/debian/linux-image-x@1 cpe:2.3:o:linux:linux_kernel:6.1";
        let with = with_products(p);
        assert_eq!(parse_record(&with).unwrap().products, p);
        // `products` with no value, as written for a manifest without any.
        let bare = GOOD.replace("time 5", "products\ntime 5");
        assert!(parse_record(&bare).is_some_and(|r| r.products.is_empty()));
        assert!(parse_record(&with_products("pkg:a+b")).is_none());
        assert!(parse_record(&with_products("http://x")).is_none());
        assert!(parse_record(&with_products(&format!("{p}\nproducts {p}"))).is_none());
    }

    /// Every key is found by its name: each one missing, twice, renamed or
    /// with an empty value discards the record, as it did when keys were
    /// looked up in a table by position; `products` alone may be missing.
    #[test]
    fn each_key_is_required_once_by_its_name() {
        let full = with_products("pkg:deb/debian/p@1");
        assert!(parse_record(&full).is_some());
        let lines: Vec<&str> = full.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let key = line.split(' ').next().unwrap();
            let without = full.replace(&format!("{line}\n"), "");
            assert_eq!(parse_record(&without).is_some(), key == "products", "{key}");
            let mut twice = lines.clone();
            twice.insert(i, line);
            assert!(parse_record(&(twice.join("\n") + "\n")).is_none(), "{key}");
            let renamed = full.replace(&format!("{key} "), &format!("{key}x "));
            assert!(parse_record(&renamed).is_none(), "{key}");
            let may_be_empty = ["boot_id", "keys", "cves", "products"].contains(&key);
            assert_eq!(
                parse_record(&full.replace(*line, key)).is_some(),
                may_be_empty
            );
        }
    }

    /// The keys come in the order [`write_record`] writes them, which every
    /// klpctl that wrote this format used: a record with two keys swapped
    /// was written by no klpctl, and is damaged (no record).
    #[test]
    fn keys_out_of_their_order_discard_the_record() {
        let full = with_products("pkg:deb/debian/p@1");
        let lines: Vec<&str> = full.lines().collect();
        for i in 0..lines.len() - 1 {
            let mut swapped = lines.clone();
            swapped.swap(i, i + 1);
            let text = swapped.join("\n") + "\n";
            assert!(parse_record(&text).is_none(), "{text}");
        }
        // What readers always allowed stays: CRLF line ends, and no
        // newline after the last line.
        assert!(parse_record(&full.replace('\n', "\r\n")).is_some());
        assert!(parse_record(full.trim_end()).is_some());
        assert!(parse_record(&format!("{full}\n")).is_none());
    }

    /// Record contents from a pseudo-random walk of edits (byte flips,
    /// cuts, inserted digits, times up to u64::MAX): parsing never panics,
    /// and whatever parses renders as a date without panicking.
    #[test]
    fn any_record_contents_parse_and_render_without_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut parsed = 0;
        for round in 0..20_000 {
            let mut t = GOOD.replace("time 5", &format!("time {}", next() >> (round % 64)));
            let mut b = std::mem::take(&mut t).into_bytes();
            for _ in 0..(next() % 4) {
                let i = (next() as usize) % (b.len() + 1);
                match next() % 4 {
                    0 if i < b.len() => b[i] = next() as u8,
                    1 => b.truncate(i),
                    2 => b.insert(i, b"0123456789 \n"[(next() % 12) as usize]),
                    _ => {}
                }
            }
            let Ok(text) = core::str::from_utf8(&b) else {
                continue;
            };
            if let Some(r) = parse_record(text) {
                parsed += 1;
                let mut d = [0u8; 20];
                assert_eq!(crate::codec::rfc3339(r.time, &mut d).len(), 20);
            }
        }
        // The walk reaches records that parse, huge times among them.
        assert!(parsed > 1000, "{parsed}");
        let huge = GOOD.replace("time 5", &format!("time {}", u64::MAX));
        let r = parse_record(&huge).unwrap();
        assert_eq!(
            crate::codec::rfc3339(r.time, &mut [0; 20]),
            b"9999-12-31T23:59:59Z"
        );
    }

    #[test]
    fn damaged_records_are_discarded() {
        assert!(parse_record(&GOOD.replace("state applied", "state weird")).is_none());
        assert!(parse_record(&GOOD.replace("version 3", "version x")).is_none());
        assert!(parse_record(&GOOD.replace("time 5\n", "")).is_none());
        assert!(parse_record(&format!("{GOOD}time 6\n")).is_none());
        assert!(parse_record(&format!("{GOOD}extra 1\n")).is_none());
        assert!(parse_record(&GOOD.replace("name klp_a", "name ../x")).is_none());
        assert!(parse_record(&GOOD.replace("sha256 e3", "sha256 zz")).is_none());
        assert!(parse_record("").is_none());
    }

    #[test]
    fn records_no_manifest_could_give_are_discarded() {
        let cves = |n: usize| {
            (1..=n)
                .map(|i| format!("CVE-{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let with_cves = |n| GOOD.replace("cves CVE-1,CVE-2", &format!("cves {}", cves(n)));
        assert!(parse_record(&with_cves(64)).is_some());
        assert!(parse_record(&with_cves(65)).is_none());
        assert!(parse_record(&GOOD.replace("CVE-2", "cve-1")).is_none());
        assert!(parse_record(&GOOD.replace("CVE-2", "CVE-1")).is_none());
        let products = |n: usize| {
            let p: Vec<String> = (1..=n).map(|i| format!("pkg:deb/debian/p{i}@1")).collect();
            with_products(&p.join(" "))
        };
        assert!(parse_record(&products(16)).is_some());
        assert!(parse_record(&products(17)).is_none());
        // A product listed twice: no manifest holds one (the reader refuses
        // it), and a VEX statement would list it twice.
        let twice = with_products("pkg:deb/debian/p@1 cpe:x:y pkg:deb/debian/p@1");
        assert!(parse_record(&twice).is_none());
    }

    #[test]
    fn floors_parse_strictly() {
        let f = |n, c| {
            Some(Floor {
                newest: n,
                cumulative: c,
            })
        };
        assert_eq!(parse_floor(b"newest 5\ncumulative 3\n"), f(5, 3));
        // klpctl 0.1's single number: taken as cumulative too (fail closed).
        assert_eq!(parse_floor(b"4\n"), f(4, 4));
        for junk in [
            &b""[..],
            b"junk",
            b"newest 5\n",
            b"newest 5\ncumulative 3",
            b"newest 5\ncumulative 6\n",
            b"newest 5\ncumulative 3\nextra 1\n",
            b"cumulative 3\nnewest 5\n",
            b"newest  5\ncumulative 3\n",
            b"newest -5\ncumulative 3\n",
            b"\xff\n",
        ] {
            assert_eq!(
                parse_floor(junk),
                None,
                "{:?}",
                String::from_utf8_lossy(junk)
            );
        }
    }

    #[test]
    fn a_non_cumulative_stream_keeps_its_older_members() {
        // ns v1 and v2, both non-cumulative, were applied: at the next boot
        // v1 is not a downgrade, it is half of the set.
        let fl = Floor::default().raised(1, false).raised(2, false);
        assert_eq!(
            fl,
            Floor {
                newest: 2,
                cumulative: 0
            }
        );
        assert!(1 >= fl.bound(false));
        // A cumulative v1 would replace v2: a downgrade.
        assert!(1 < fl.bound(true));
    }

    #[test]
    fn a_cumulative_bundle_raises_the_floor_for_both_kinds() {
        let fl = Floor::default().raised(3, true).raised(4, false);
        assert_eq!(
            fl,
            Floor {
                newest: 4,
                cumulative: 3
            }
        );
        // Older than the cumulative v3: contained in it, refused either way.
        assert!(2 < fl.bound(false) && 2 < fl.bound(true));
        // Between v3 and v4: a non-cumulative fix may join; a cumulative
        // one would drop v4.
        assert!(3 >= fl.bound(false));
        assert!(3 < fl.bound(true));
        assert_eq!(fl.bound(true), 4);
    }
}
