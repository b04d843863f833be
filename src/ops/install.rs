//! `install` and `uninstall`: a bundle directory for later boots, kept
//! consistent with what is applied now, and bounded.
//!
//! Install stores before it applies: the copy is written, fsynced and
//! verified under a hidden name first, so a directory that is missing, not
//! a directory, read-only or full refuses the install before the kernel is
//! touched. The copy is renamed into place once the apply succeeded (or at
//! once, for a bundle for another kernel of this machine), and removed when
//! the apply is refused. Only the rename itself can still fail after a
//! patch went live; that is reported as exit 10 (live, not stored).
#![forbid(unsafe_code)]

use super::apply::{self, Applied, Options};
use super::select::MAX_BUNDLES;
use super::{Event, Sink};
use crate::error::{Context, Error, Failure, Result};
use crate::files::{self, AtomicFile, FileSource, PathBuf, Source};
use crate::guard;
use crate::kernel::{Running, sysfs};
use crate::trust::bundle;
use crate::trust::keys::Keyring;
use crate::trust::manifest::{MAX_MANIFEST, Manifest};
use core::ffi::CStr;

/// A bundle installed.
pub struct Installed {
    /// What applying it now did; `None` when it is for another kernel.
    pub applied: Option<Applied>,
    /// Where it is stored (see [`stored_name`]); `None` when it was
    /// applied but could not be renamed into place (`applied.unsaved`
    /// says why).
    pub stored: Option<PathBuf>,
    /// How many superseded bundles of its stream and kernel were removed.
    pub pruned: usize,
}

/// Verifies the bundle at `path` (signatures and payload) and refuses it
/// when it is for another architecture (it can never apply on this
/// machine). Then, before anything changes: plans what to prune (see
/// [`keep_from`]) and refuses the install when the directory would hold
/// more than [`MAX_BUNDLES`] bundles for its kernel release; writes the
/// copy to a hidden temporary file, verified again from there and fsynced.
/// Then applies it when it is for the running kernel (a refused apply
/// removes the copy: nothing is stored), renames the copy into place, and
/// removes the superseded bundles of its stream and kernel.
#[inline(never)]
pub fn install(
    path: &CStr,
    dir: &CStr,
    ring: &Keyring,
    k: &Running,
    opts: &Options,
    ev: Sink,
) -> core::result::Result<Installed, Failure> {
    let mut mbuf = [0u8; MAX_MANIFEST];
    let fd = files::open_ro(path, msg!("cannot open bundle"))?;
    let src = FileSource::new(&fd, msg!("cannot read bundle"))?;
    let signed = bundle::read_signed(&src, ring, &mut mbuf, true)?;
    let m = &signed.manifest;
    if m.arch != k.machine.as_str() {
        return Err(Error::WrongKernel(msg!(
            "not for this machine: architecture differs (install keeps bundles for this machine's later boots)"
        ))
        .with(&[
            b"bundle is for ",
            m.arch.as_bytes(),
            b", this machine is ",
            k.machine.as_bytes(),
        ]));
    }
    let name = stored_name(m)?;
    let keep = keep_from(dir, ring, m, name.bytes(), opts.state_dir)?;
    check_room(dir, ring, m, name.bytes(), keep)?;
    let stored = PathBuf::of(&[dir.to_bytes(), b"/", name.bytes()])?;
    if rustix::fs::lstat(stored.c()).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
    }) {
        return Err(Error::NotRegular(msg!("cannot store the bundle")).with(&[stored.bytes()]));
    }
    let mut out = AtomicFile::create_hidden(dir.to_bytes(), name.bytes(), 0o644)?;
    files::copy_range(
        &fd,
        0,
        src.size(),
        Error::Digest,
        msg!("cannot read bundle"),
        |c| out.write(c),
    )?;
    rustix::fs::fsync(out.fd()).ctx(msg!("cannot fsync output file"))?;
    verify_copy(out.tmp_path(), ring)?;
    // Dropping `out` on a refused apply removes the copy.
    let mut applied = if sysfs::supported() && k.check(m).is_ok() {
        Some(apply::apply(path, ring, k, opts, ev)?)
    } else {
        None
    };
    if let Err(e) = out.commit() {
        let Some(a) = applied.as_mut() else {
            return Err(e.into());
        };
        // Live now, but a later boot will not find it: exit 10.
        let not_stored = match e {
            Error::Io(_, n) => Error::StateNotSaved(
                msg!("the bundle is not stored, so later boots will not apply it"),
                n,
            ),
            other => other,
        };
        a.unsaved = a.unsaved.or(Some(not_stored));
        return Ok(Installed {
            applied,
            stored: None,
            pruned: 0,
        });
    }
    files::sync_dir(dir);
    let pruned = keep.map_or(0, |v| prune(dir, ring, m, name.bytes(), v, ev));
    Ok(Installed {
        applied,
        stored: Some(stored),
        pruned,
    })
}

/// The file name a bundle is stored under: `NAME@RELEASE.klp`, or
/// `NAME@RELEASE@BUILDID.klp` (the build-id in lower-case hex) when the
/// manifest names a build-id, so two builds of one release never share a
/// name. The architecture is always this machine's ([`install`] refuses
/// others), so these name every kernel target apart.
pub fn stored_name(m: &Manifest) -> Result<PathBuf> {
    let mut hex = [0u8; 2 * crate::trust::manifest::MAX_BUILD_ID];
    let id = crate::codec::hex_encode(&m.build_id, &mut hex).unwrap_or(b"");
    let at: &[u8] = if id.is_empty() { b"" } else { b"@" };
    PathBuf::of(&[
        m.name.as_bytes(),
        b"@",
        m.release.as_bytes(),
        at,
        id,
        b".klp",
    ])
}

/// The copy verifies as the original did.
fn verify_copy(path: &CStr, ring: &Keyring) -> Result<()> {
    let mut mbuf = [0u8; MAX_MANIFEST];
    let fd = files::open_ro(path, msg!("cannot read the copy"))?;
    let src = FileSource::new(&fd, msg!("cannot read the copy"))?;
    bundle::read_signed(&src, ring, &mut mbuf, true).map(drop)
}

/// Calls `f` with the file name and manifest of every trusted bundle in
/// `dir` (its signatures checked as `apply --dir` checks them), except
/// `skip`. Dot files, directories, and files that are not trusted bundles
/// are not counted, kept or removed: `apply --dir` does not take them
/// either.
fn each_bundle(
    dir: &CStr,
    ring: &Keyring,
    skip: &[u8],
    f: &mut dyn FnMut(&[u8], &Manifest),
) -> Result<()> {
    files::each_entry(dir, msg!("cannot read bundle directory"), |file, ty| {
        let fb = file.to_bytes();
        if fb.starts_with(b".") || ty == rustix::fs::FileType::Directory || fb == skip {
            return Ok(());
        }
        let Ok(p) = PathBuf::of(&[dir.to_bytes(), b"/", fb]) else {
            return Ok(());
        };
        let mut mbuf = [0u8; MAX_MANIFEST];
        let Ok(fd) = files::open_ro(p.c(), msg!("bundle")) else {
            return Ok(());
        };
        let Ok(src) = FileSource::new(&fd, msg!("bundle")) else {
            return Ok(());
        };
        if let Ok(s) = bundle::read_signed(&src, ring, &mut mbuf, false) {
            f(fb, &s.manifest);
        }
        Ok(())
    })
}

/// Whether `a` and `b` are for the same kernel (release, architecture and
/// build-id, none being a target of its own) and of the same stream.
fn same_stream_and_kernel(a: &Manifest, b: &Manifest) -> bool {
    a.stream == b.stream && a.release == b.release && a.arch == b.arch && a.build_id == b.build_id
}

/// The oldest version of `new`'s stream and kernel that install keeps in
/// `dir` (`new` counted, the file `skip` it replaces not). A boot applies
/// the newest cumulative bundle and what follows it. If that one is
/// quarantined, the crash-loop guard falls back to the newest version
/// proven good below it, and the non-cumulative bundles after that stack
/// on it. So install keeps every version from the second newest cumulative
/// one, or from the newest proven good cumulative one below the newest if
/// that is older; what precedes it is superseded. `None` (keep
/// everything): fewer than two cumulative versions (a non-cumulative
/// stream needs all its bundles), or a guard file that cannot be read
/// (what it proves is unknown).
fn keep_from(
    dir: &CStr,
    ring: &Keyring,
    new: &Manifest,
    skip: &[u8],
    state_dir: Option<&CStr>,
) -> Result<Option<u64>> {
    let mut gbuf = [0; guard::MAX_GUARD];
    let guard = match state_dir.map(|sd| guard::load(sd.to_bytes(), &mut gbuf)) {
        Some(Err(_)) => return Ok(None),
        g => g.and_then(|g| g.ok()),
    };
    // The two newest distinct cumulative versions, and the two newest of
    // those proven good, newest first.
    let mut top = [None, None];
    let mut good = [None, None];
    let mut note = |m: &Manifest| {
        if !m.replace {
            return;
        }
        let mut hex = [0u8; 64];
        let sha = crate::codec::hex_encode(&m.payload_sha256, &mut hex).unwrap_or(b"");
        newest_two(&mut top, m.version);
        if guard.is_some_and(|g| g.good(sha)) {
            newest_two(&mut good, m.version);
        }
    };
    note(new);
    each_bundle(dir, ring, skip, &mut |_, m| {
        if same_stream_and_kernel(m, new) {
            note(m)
        }
    })?;
    let (Some(newest), Some(second)) = (top[0], top[1]) else {
        return Ok(None);
    };
    let fallback = good.into_iter().flatten().find(|&v| v < newest);
    Ok(Some(fallback.map_or(second, |g| g.min(second))))
}

/// Puts `v` into `top`, the two newest distinct versions seen, newest
/// first.
fn newest_two(top: &mut [Option<u64>; 2], v: u64) {
    if top.contains(&Some(v)) {
    } else if top[0].is_none_or(|t| v > t) {
        *top = [Some(v), top[0]];
    } else if top[1].is_none_or(|t| v > t) {
        top[1] = Some(v);
    }
}

/// Refuses the install when `dir` would hold more than [`MAX_BUNDLES`]
/// trusted bundles for `new`'s kernel release and architecture after it
/// (the replaced file `skip` and the bundles below `keep` pruned): more
/// than `apply --dir` takes for one kernel. Counting every build-id of
/// the release makes the bound hold for each build.
fn check_room(
    dir: &CStr,
    ring: &Keyring,
    new: &Manifest,
    skip: &[u8],
    keep: Option<u64>,
) -> core::result::Result<(), Failure> {
    let mut n = 1;
    each_bundle(dir, ring, skip, &mut |_, m| {
        let pruned = same_stream_and_kernel(m, new) && keep.is_some_and(|v| m.version < v);
        if m.release == new.release && m.arch == new.arch && !pruned {
            n += 1;
        }
    })?;
    if n > MAX_BUNDLES {
        return Err(Error::TooManyBundles.with(&[b"kernel release ", new.release.as_bytes()]));
    }
    Ok(())
}

/// Removes the bundles of `new`'s stream and kernel older than `keep`
/// from `dir` (never `skip`, the bundle just stored), each reported as an
/// event. Returns how many were removed; one that cannot be removed is
/// reported and left (the next install counts it again).
fn prune(dir: &CStr, ring: &Keyring, new: &Manifest, skip: &[u8], keep: u64, ev: Sink) -> usize {
    let mut n = 0;
    let r = each_bundle(dir, ring, skip, &mut |fb, m| {
        if !same_stream_and_kernel(m, new) || m.version >= keep {
            return;
        }
        let Ok(p) = PathBuf::of(&[dir.to_bytes(), b"/", fb]) else {
            return;
        };
        let error = rustix::fs::unlink(p.c()).err();
        n += usize::from(error.is_none());
        ev(Event::Pruned {
            path: p.bytes(),
            version: m.version,
            error,
        });
    });
    if r.is_ok() && n > 0 {
        files::sync_dir(dir);
    }
    n
}

/// Removes every bundle of patch `name` from `dir` (whatever kernel it is
/// for, whatever its file name; files that are not bundles are left
/// alone), then disables the patch. Returns how many files were removed
/// and whether the patch was disabled now.
#[inline(never)]
pub fn uninstall(name: &str, dir: &CStr, timeout_ms: u64, ev: Sink) -> Result<(usize, bool)> {
    let mut removed = 0;
    files::each_entry(dir, msg!("cannot read bundle directory"), |f, _| {
        let fb = f.to_bytes();
        let p = PathBuf::of(&[dir.to_bytes(), b"/", fb])?;
        if fb.starts_with(b".") || !is_bundle_of(&p, name) {
            return Ok(());
        }
        rustix::fs::unlink(p.c()).ctx(msg!("cannot remove bundle"))?;
        removed += 1;
        Ok(())
    })?;
    files::sync_dir(dir);
    let disabled = super::disable::disable(name, timeout_ms, ev)?;
    Ok((removed, disabled))
}

/// Whether the file at `p` is a bundle whose manifest names patch `name`
/// (read without verifying: only to find what to remove).
fn is_bundle_of(p: &PathBuf, name: &str) -> bool {
    let mut mbuf = [0u8; MAX_MANIFEST];
    let Ok(fd) = files::open_ro(p.c(), msg!("bundle")) else {
        return false;
    };
    let Ok(src) = FileSource::new(&fd, msg!("bundle")) else {
        return false;
    };
    bundle::read(&src, &mut mbuf)
        .and_then(|u| u.manifest_unverified())
        .is_ok_and(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::newest_two;

    fn top(versions: &[u64]) -> [Option<u64>; 2] {
        let mut t = [None, None];
        for &v in versions {
            newest_two(&mut t, v);
        }
        t
    }

    #[test]
    fn the_two_newest_distinct_versions_in_any_order() {
        assert_eq!(top(&[]), [None, None]);
        assert_eq!(top(&[4]), [Some(4), None]);
        assert_eq!(top(&[1, 5, 3]), [Some(5), Some(3)]);
        assert_eq!(top(&[5, 1, 3]), [Some(5), Some(3)]);
        // A second file of the same version is not a second version.
        assert_eq!(top(&[5, 5, 2]), [Some(5), Some(2)]);
        assert_eq!(top(&[3, 5, 3, 5]), [Some(5), Some(3)]);
        assert_eq!(top(&[0, u64::MAX]), [Some(u64::MAX), Some(0)]);
    }
}
