//! `apply`: one bundle onto the running kernel, as named steps. Verify it,
//! check it is for this kernel, treat an applied one as done, enforce the
//! rollback floor, make sure the state can be saved, clear the way, load
//! the sealed module, wait for its transition (or revert it), remove what
//! it replaced, and save the state.
#![forbid(unsafe_code)]

use super::{Event, Sink, Stall};
use crate::error::{Error, Failure, Result};
use crate::files::{self, FileSource};
use crate::guard;
use crate::kernel::sysfs::{self, attr};
use crate::kernel::transition;
use crate::kernel::{Running, loader};
use crate::state;
use crate::trust::bundle::{self, Signed};
use crate::trust::keys::{KeyId, Keyring, SigStatus};
use crate::trust::manifest::{MAX_MANIFEST, Manifest};
use core::ffi::CStr;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

type Res<T> = core::result::Result<T, Failure>;

/// How long a changing command waits for another klpctl's lock.
pub const LOCK_WAIT_S: u64 = 300;

/// What `apply` may do.
pub struct Options<'a> {
    /// Bound of every wait of one bundle, counted from its start.
    pub timeout_ms: u64,
    /// Apply below the rollback floor (and replace a damaged floor).
    pub allow_downgrade: bool,
    /// The persistent state directory, if any: rollback floors, and the
    /// crash-loop guard's journal.
    pub state_dir: Option<&'a CStr>,
    /// The operator named this bundle (`apply BUNDLE`, `install`), rather
    /// than `apply --dir` picking it: that lifts its quarantine.
    pub explicit: bool,
}

/// Whether the bundle was loaded now or found applied.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Loaded and enabled by this run.
    Applied,
    /// Already loaded and enabled, with the same payload.
    Already,
}

/// A module name.
pub type Name = heapless::String<56>;

/// How many leftover livepatch modules (those of the patches a replace
/// replaced, and any left from before) one apply removes; more stay
/// loaded, and are said ([`Event::ReplacedLeft`]).
pub const MAX_REMOVED: usize = 8;

/// A bundle that is applied now.
pub struct Applied {
    /// Loaded now, or found applied.
    pub outcome: Outcome,
    /// The patch (module) name.
    pub name: Name,
    /// Its stream.
    pub stream: heapless::String<64>,
    /// Its version.
    pub version: u64,
    /// Milliseconds this bundle took.
    pub ms: u64,
    /// Modules of replaced patches that were removed.
    pub removed: heapless::Vec<Name, MAX_REMOVED>,
    /// Set when the patch is live but klpctl's state could not be saved
    /// (exit 10).
    pub unsaved: Option<Error>,
}

/// Applies the bundle at `path`. Returns what is applied now, or why
/// nothing changed (or, for exit 8, what is stuck).
pub fn apply(path: &CStr, ring: &Keyring, k: &Running, opts: &Options, ev: Sink) -> Res<Applied> {
    let fd = files::open_ro(path, msg!("open bundle"))?;
    apply_open(&fd, ring, k, opts, ev)
}

/// Applies the bundle open at `fd`, as [`apply`]. Everything it verifies
/// and loads is read through this one descriptor, so a caller that has
/// verified and stored the file applies exactly that file (`install`).
pub fn apply_open(
    fd: &OwnedFd,
    ring: &Keyring,
    k: &Running,
    opts: &Options,
    ev: Sink,
) -> Res<Applied> {
    let t0 = crate::rt::now_ms();
    // One bound for every wait of this bundle (another transition, its own
    // transition, module removal), counted from here: time spent inside
    // finit_module, which cannot be interrupted, counts against it too.
    let deadline = t0 + opts.timeout_ms;
    let src = FileSource::new(fd, msg!("read bundle"))?;
    let mut mbuf = [0u8; MAX_MANIFEST];
    let signed = bundle::read_signed(&src, ring, &mut mbuf, false)?;
    let m = &signed.manifest;
    k.check(m)?;
    let name = m.name.as_bytes();
    let keys = valid_keys(&signed);
    let record = state::NewRecord {
        manifest: m,
        keys: &keys,
        time: crate::rt::unix_time(),
    };
    let mut done = Applied {
        outcome: Outcome::Applied,
        name: copy(m.name),
        stream: copy(m.stream),
        version: m.version,
        ms: 0,
        removed: heapless::Vec::new(),
        unsaved: None,
    };

    let mut hex = [0u8; 64];
    let sha = crate::codec::hex_encode(&m.payload_sha256, &mut hex).unwrap_or(b"");
    if sysfs::active(name) {
        signed.check_payload(&src)?;
        already_applied(&record, sha, deadline, opts, ev, &mut done)?;
        done.outcome = Outcome::Already;
        return Ok(done);
    }
    check_floor(m, sha, opts)?;
    state::check_writable(opts.state_dir)?;
    clear_stale_module(name, deadline)?;
    wait_for_other_transitions(deadline)?;
    if let Some(sd) = opts.state_dir.map(CStr::to_bytes) {
        if opts.explicit && guard::release(sd, name, Some(sha))? > 0 {
            ev(Event::Released(name));
        }
        // Just before the kernel sees it (after every wait, so that its
        // window counts from the load): if this boot dies now, the next
        // one knows what it was trying.
        guard::note_try(sd, sha, name, m.stream.as_bytes(), m.version)?;
    }

    state::write_record(&record, "loading")?;
    let loaded = load_sealed(&src, &signed, ev);
    if loaded.is_err() {
        state::remove_record(m.name);
    }
    loaded?;
    finish_transition(&record, deadline, opts.timeout_ms, Stall::Apply, ev)?;
    if !sysfs::enabled(name) {
        state::remove_record(m.name);
        return Err(Error::Conflict(msg!(
            "the patch was disabled by someone else while klpctl waited"
        ))
        .into());
    }
    if replaces(name, m.replace, ev) {
        remove_replaced(name, deadline, &mut done.removed, ev);
    }
    done.unsaved = save(&record, "applied", opts);
    audit_applied(m, sha, &keys);
    done.ms = crate::rt::now_ms() - t0;
    Ok(done)
}

/// `s` in a string of capacity `N`. Every caller's `s` fits: a
/// manifest's name (55 bytes at most) and stream (64), or a module name
/// from `/sys/module` (the kernel's limit is 55).
fn copy<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    let _ = out.push_str(s);
    out
}

fn valid_keys(signed: &Signed) -> heapless::Vec<KeyId, 4> {
    signed
        .verdict
        .sigs
        .iter()
        .filter(|s| s.1 == SigStatus::Valid)
        .map(|s| s.0)
        .collect()
}

/// The patch of this name is live, and the bundle verifies, payload
/// included (the caller checked). It counts as this bundle only with a
/// valid record of this boot naming the same payload `ours` (a damaged
/// record proves nothing, so it counts as none). A transition an earlier,
/// killed klpctl left running is finished here, and so is its cleanup.
fn already_applied(
    record: &state::NewRecord,
    ours: &[u8],
    deadline: u64,
    opts: &Options,
    ev: Sink,
    done: &mut Applied,
) -> Res<()> {
    let m = record.manifest;
    let name = m.name.as_bytes();
    let mut rbuf = [0u8; state::MAX_RECORD];
    let rec = state::read_record(m.name, &mut rbuf);
    let loading = rec.as_ref().is_some_and(|r| r.state == "loading");
    let same = rec.is_some_and(|r| r.sha256.as_bytes() == ours);
    if !same {
        return Err(Error::Conflict(msg!(
            "a livepatch of this name is loaded without a klpctl record of this payload"
        ))
        .with(&[b"bundle sha256 ", ours]));
    }
    if !sysfs::enabled(name) {
        return Err(Error::Conflict(msg!("this livepatch is being disabled right now")).into());
    }
    finish_transition(record, deadline, opts.timeout_ms, Stall::Earlier, ev)?;
    if loading {
        if replaces(name, m.replace, ev) {
            remove_replaced(name, deadline, &mut done.removed, ev);
        }
        done.unsaved = save(record, "applied", opts);
    } else if let Err(e) = raise_floor(m, opts) {
        done.unsaved = Some(e.unsaved());
    }
    Ok(())
}

/// Rollback protection, before anything is touched. A floor that cannot
/// be read refuses like a downgrade would: never "no floor". One exception:
/// when a newer payload of the stream, the one that raised the floor, is
/// quarantined, the newest version below it proven good on this machine
/// (`sha`) is the way back (see [`guard::Guard::fallback_allowed`]).
/// `apply --dir` asks this too, so it never picks a bundle it would refuse.
pub fn check_floor(m: &Manifest, sha: &[u8], opts: &Options) -> Res<()> {
    if opts.allow_downgrade {
        return Ok(());
    }
    let f = match state::floor(m.stream, opts.state_dir) {
        Err(state::Damaged(base)) => {
            return Err(Error::DamagedFloor.with(&[
                b"stream ",
                m.stream.as_bytes(),
                b": damaged floor file ",
                base,
                b"/streams/",
                m.stream.as_bytes(),
            ]));
        }
        Ok(None) => return Ok(()),
        Ok(Some(f)) => f,
    };
    let bound = f.bound(m.replace);
    if m.version >= bound {
        return Ok(());
    }
    if let Some(sd) = opts.state_dir {
        let mut buf = [0; guard::MAX_GUARD];
        let g = guard::load(sd.to_bytes(), &mut buf)?;
        if g.fallback_allowed(m.stream.as_bytes(), sha, m.version, bound) {
            return Ok(());
        }
    }
    let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
    Err(Error::Downgrade.with(&[
        b"stream ",
        m.stream.as_bytes(),
        b": bundle version ",
        crate::codec::fmt_u64(m.version, &mut a),
        if m.replace {
            b" < applied "
        } else {
            b" < applied cumulative "
        },
        crate::codec::fmt_u64(bound, &mut b),
    ]))
}

/// A stale module of the same name whose patch is gone (replaced, or
/// disabled earlier) must go before the new one can load; a module of that
/// name that is no livepatch is left alone.
fn clear_stale_module(name: &[u8], deadline: u64) -> Res<()> {
    if !sysfs::loaded(name) {
        return Ok(());
    }
    if !sysfs::is_livepatch_module(name) {
        return Err(Error::Conflict(msg!(
            "a module of this name is loaded and is not a livepatch"
        ))
        .into());
    }
    loader::unload(name, deadline)?;
    if let Ok(n) = core::str::from_utf8(name) {
        state::remove_record(n);
    }
    Ok(())
}

/// One transition at a time: waits for another patch's to finish.
fn wait_for_other_transitions(deadline: u64) -> Res<()> {
    // poll looks before it first sleeps: no transition, no wait.
    if !crate::rt::poll(deadline, || sysfs::in_transition(&mut [0u8; 64]).is_none()) {
        let mut other = [0u8; 64];
        let n = sysfs::in_transition(&mut other).unwrap_or(b"");
        return Err(
            Error::Conflict(msg!("another livepatch is still in transition"))
                .with(&[b"in transition: ", n]),
        );
    }
    Ok(())
}

/// Streams the payload into a sealed memfd, checks it is the module the
/// manifest names, and loads it. A module that registers no livepatch
/// under its name is unloaded again at once, under the name the kernel
/// actually loaded it as.
fn load_sealed(src: &FileSource<&OwnedFd>, signed: &Signed, ev: Sink) -> Res<()> {
    let m = &signed.manifest;
    let name = m.name.as_bytes();
    let memfd = loader::seal_payload(src, signed)?;
    loader::check_module(&memfd, m)?;
    let kmsg = loader::Kmsg::open();
    let mut newest = [0u8; 64];
    let before = loader::newest_module(&mut newest);
    if let Err(e) = loader::load(&memfd, signed.header.payload_len) {
        kmsg.each_line(&mut |l| ev(Event::KernelLog(l)));
        if let Error::KernelRefused(Errno::EXIST) = e {
            return Err(
                Error::Conflict(msg!("a module of this name appeared while loading")).into(),
            );
        }
        return Err(e.into());
    }
    drop(memfd);
    if sysfs::active(name) {
        return Ok(());
    }
    // A livepatch registers /sys/kernel/livepatch/<name> from its init,
    // before finit_module returns. A module that did not must not stay
    // loaded: unload what the kernel actually loaded (the newest entry of
    // /proc/modules, when it changed), not what the manifest says.
    let mut now = [0u8; 64];
    let loaded_name = loader::newest_module(&mut now)
        .filter(|n| Some(*n) != before)
        .unwrap_or(name);
    if loader::delete(loaded_name).is_err() {
        return Err(Error::Stuck(msg!(
            "the module registered no livepatch and could not be unloaded"
        ))
        .with(&[b"module ", loaded_name]));
    }
    Err(Error::NotALivepatch(msg!(
        "not a livepatch: it loaded but registered none under its name (unloaded again)"
    ))
    .into())
}

/// Waits for the transition of the patch of `record`; if it does not
/// finish in time, tells who blocks it and reverts (exit 7, or 8).
fn finish_transition(
    record: &state::NewRecord,
    deadline: u64,
    timeout_ms: u64,
    stall: Stall,
    ev: Sink,
) -> Result<()> {
    let name = record.manifest.name.as_bytes();
    if transition::wait(name, deadline) {
        return Ok(());
    }
    ev(Event::Stalled {
        name,
        stall,
        blockers: &transition::blockers(1),
    });
    Err(revert(record, timeout_ms, ev))
}

/// Reverts a patch whose transition timed out: disable, wait for the
/// reverse transition (`timeout_ms`, at least 10 s), unload. Exit 7 when
/// the system is back as it was, 8 when the revert itself stalls.
fn revert(record: &state::NewRecord, timeout_ms: u64, ev: Sink) -> Error {
    let name = record.manifest.name.as_bytes();
    if sysfs::write(name, attr::ENABLED, b"0").is_err() && sysfs::active(name) {
        return Error::Stuck(msg!(
            "transition timed out and the revert could not start; still in transition"
        ));
    }
    let sname = record.manifest.name;
    let _ = state::write_record(record, "reverting");
    let deadline = crate::rt::now_ms() + timeout_ms.max(10_000);
    if !crate::rt::poll(deadline, || !sysfs::active(name)) {
        ev(Event::Stalled {
            name,
            stall: Stall::Revert,
            blockers: &transition::blockers(0),
        });
        return Error::Stuck(msg!(
            "transition and its revert both timed out; still in transition (not forced)"
        ));
    }
    if loader::unload(name, deadline).is_err() {
        ev(Event::RevertedLoaded(name));
    }
    state::remove_record(sname);
    loader::audit(&[b"reverted ", name, b" after transition timeout"]);
    Error::TimedOutReverted
}

/// Whether the patch that just went live replaced the others. The kernel's
/// word (sysfs `replace`, 6.11+) wins over the manifest's: klp-build
/// compiles atomic replace in by default and nothing in `.modinfo` says so,
/// so a bundle packed without `--replace` can still have replaced every
/// other patch, whose modules must then go like any replaced patch's; and a
/// bundle that claims `--replace` for a module that does not replace must
/// not wait for the others to vanish. A mismatch is reported either way.
fn replaces(name: &[u8], manifest: bool, ev: Sink) -> bool {
    match sysfs::read(name, attr::REPLACE) {
        Some(r) => {
            let kernel = r == 1;
            if kernel != manifest {
                ev(Event::ReplaceMismatch { name, kernel });
            }
            kernel
        }
        None => manifest,
    }
}

/// After an atomic-replace patch completed: unload the modules of the
/// patches it replaced (their sysfs directories are gone, their modules
/// stay until someone removes them) and drop their records.
fn remove_replaced(
    name: &[u8],
    deadline: u64,
    removed: &mut heapless::Vec<Name, MAX_REMOVED>,
    ev: Sink,
) {
    // The kernel frees the replaced patches' sysfs directories
    // asynchronously after the transition: wait (bounded) until only the
    // new patch is left, or a replaced module would still look active.
    crate::rt::poll(deadline, || sysfs::only_patch(name));
    let mut stale: heapless::Vec<Name, MAX_REMOVED> = heapless::Vec::new();
    let mut more = false;
    sysfs::leftovers(&mut |mb| {
        if let Ok(t) = core::str::from_utf8(mb) {
            more |= stale.push(copy(t)).is_err();
        }
    });
    if more {
        ev(Event::ReplacedLeft);
    }
    for s in stale {
        if loader::unload(s.as_bytes(), deadline).is_ok() {
            state::remove_record(&s);
            // Cannot fail: `removed` holds as many as `stale`.
            let _ = removed.push(s);
        } else {
            ev(Event::ReplacedBusy(s.as_bytes()));
        }
    }
}

fn raise_floor(m: &Manifest, opts: &Options) -> Result<()> {
    state::raise_floor(
        m.stream,
        m.version,
        m.replace,
        opts.state_dir,
        opts.allow_downgrade,
    )
}

/// Writes the record and raises the floors. A failure here comes after the
/// patch went live, so it is not the apply's failure: it is returned as
/// the reason the state is not saved (exit 10).
fn save(record: &state::NewRecord, st: &str, opts: &Options) -> Option<Error> {
    state::write_record(record, st)
        .and_then(|_| raise_floor(record.manifest, opts))
        .err()
        .map(Error::unsaved)
}

fn audit_applied(m: &Manifest, sha: &[u8], keys: &[KeyId]) {
    let (mut vb, mut kb) = ([0u8; 20], [0u8; 80]);
    let mut kn = 0;
    for (i, id) in keys.iter().enumerate() {
        if i > 0 {
            kb[kn] = b',';
            kn += 1;
        }
        let _ = crate::codec::hex_encode(id, &mut kb[kn..kn + 16]);
        kn += 16;
    }
    loader::audit(&[
        b"applied ",
        m.name.as_bytes(),
        b" stream=",
        m.stream.as_bytes(),
        b" version=",
        crate::codec::fmt_u64(m.version, &mut vb),
        b" sha256=",
        sha,
        b" keys=",
        &kb[..kn],
    ]);
}
