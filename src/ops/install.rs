//! `install` and `uninstall`: a bundle directory for later boots, kept
//! consistent with what is applied now, and bounded: install never
//! removes other bundles, and refuses past [`MAX_BUNDLES`] for a release
//! (`uninstall` removes).
//!
//! Install stores before it applies: the copy is written, fsynced and
//! verified under a hidden name first, so a directory that is missing, not
//! a directory, read-only or full refuses the install before the kernel is
//! touched. What is applied is that verified copy, read through the
//! descriptor that verified it: never the caller's path again, which may
//! have changed since. The copy is renamed into place once the apply
//! succeeded (or at once, for a bundle for another kernel of this
//! machine), and removed when the apply is refused. Only the rename itself
//! can still fail after a patch went live (or move another file than the
//! copy, which it then reports); that is exit 10 (live, not stored).
#![forbid(unsafe_code)]

use super::Sink;
use super::apply::{self, Applied, Options};
use super::select::{self, MAX_BUNDLES};
use crate::error::{Context, Error, Failure, Result};
use crate::files::{self, AtomicFile, FileSource, PathBuf, Source};
use crate::kernel::{Running, sysfs};
use crate::trust::bundle;
use crate::trust::keys::Keyring;
use crate::trust::manifest::{MAX_MANIFEST, Manifest};
use core::ffi::CStr;
use rustix::fd::OwnedFd;

/// A bundle installed.
pub struct Installed {
    /// What applying it now did; `None` when it is for another kernel.
    pub applied: Option<Applied>,
    /// Where it is stored (see [`stored_name`]); `None` when it was
    /// applied but could not be renamed into place (`applied.unsaved`
    /// says why).
    pub stored: Option<PathBuf>,
}

/// Verifies the bundle at `path` (signatures and payload) and refuses it
/// when it is for another architecture (it can never apply on this
/// machine). Then, before anything changes: refuses the install when the
/// directory would hold more than [`MAX_BUNDLES`] bundles for its kernel
/// release; writes the
/// copy to a hidden temporary file, fsynced and verified again from there.
/// Then applies that copy, through the descriptor its verification read,
/// when it is for the running kernel (a refused apply removes the copy:
/// nothing is stored), and renames the copy into place.
/// Other bundles are never removed.
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
    let fd = files::open_ro(path, msg!("open bundle"))?;
    let src = FileSource::new(&fd, msg!("read bundle"))?;
    let signed = bundle::read_signed(&src, ring, &mut mbuf, true)?;
    let m = &signed.manifest;
    if m.arch != k.machine.as_str() {
        return Err(
            Error::WrongKernel(msg!("machine: architecture differs")).with(&[
                b"bundle is for ",
                m.arch.as_bytes(),
                b", this machine is ",
                k.machine.as_bytes(),
            ]),
        );
    }
    let name = stored_name(m)?;
    check_room(dir, ring, m, name.bytes())?;
    let stored = PathBuf::of(&[dir.to_bytes(), b"/", name.bytes()])?;
    if rustix::fs::lstat(stored.c()).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
    }) {
        return Err(Error::NotRegular(msg!("store the bundle")).with(&[stored.bytes()]));
    }
    let mut out = AtomicFile::create_hidden(dir.to_bytes(), name.bytes(), 0o644)?;
    files::copy_range(
        &fd,
        0,
        src.size(),
        Error::Digest,
        msg!("read bundle"),
        |c| out.write(c),
    )?;
    rustix::fs::fsync(out.fd()).ctx(msg!("fsync output file"))?;
    let copy = verify_copy(out.tmp_path(), ring, signed.raw_manifest)?;
    // Applied from the copy, never from `path` again: what goes live is
    // what was verified and stored, even if `path` changes meanwhile.
    // Dropping `out` on a refused apply removes the copy.
    let mut applied = if sysfs::supported() && k.check(m).is_ok() {
        Some(apply::apply_open(&copy, ring, k, opts, ev)?)
    } else {
        None
    };
    // The commit fails if what it moved into place is not this copy.
    if let Err(e) = out.commit() {
        let Some(a) = applied.as_mut() else {
            return Err(e.into());
        };
        // Live now, but a later boot will not find it: exit 10.
        let not_stored = match e {
            Error::Io(_, n) => Error::StateNotSaved(msg!("store the bundle"), n),
            other => other,
        };
        a.unsaved = a.unsaved.or(Some(not_stored));
        return Ok(Installed {
            applied,
            stored: None,
        });
    }
    files::sync_dir(dir);
    Ok(Installed {
        applied,
        stored: Some(stored),
    })
}

/// The file name a bundle is stored under: `NAME@RELEASE@vVERSION.klp`,
/// or `NAME@RELEASE@BUILDID@vVERSION.klp` (the build-id in lower-case
/// hex) when the manifest names a build-id, so neither two builds of one
/// release nor two versions of one patch share a name. The architecture
/// is always this machine's ([`install`] refuses others), so these name
/// every kernel target apart.
pub fn stored_name(m: &Manifest) -> Result<PathBuf> {
    let mut hex = [0u8; 2 * crate::trust::manifest::MAX_BUILD_ID];
    let id = crate::codec::hex_encode(&m.build_id, &mut hex).unwrap_or(b"");
    let at: &[u8] = if id.is_empty() { b"" } else { b"@" };
    let mut v = [0u8; 20];
    PathBuf::of(&[
        m.name.as_bytes(),
        b"@",
        m.release.as_bytes(),
        at,
        id,
        b"@v",
        crate::codec::fmt_u64(m.version, &mut v),
        b".klp",
    ])
}

/// Opens the copy and verifies it in full, as the original was. It must
/// carry the very manifest the original did, which named and placed it
/// (the original may have been rewritten while it was copied). Returns the
/// open copy, from which the bundle is applied.
fn verify_copy(path: &CStr, ring: &Keyring, manifest: &[u8]) -> Result<OwnedFd> {
    let mut mbuf = [0u8; MAX_MANIFEST];
    let fd = files::open_ro(path, msg!("read the copy"))?;
    let src = FileSource::new(&fd, msg!("read the copy"))?;
    if bundle::read_signed(&src, ring, &mut mbuf, true)?.raw_manifest != manifest {
        return Err(Error::Bundle(msg!("the file changed while it was read")));
    }
    Ok(fd)
}

/// Checks `dir` can take a bundle under its stored name `name`, reading
/// every trusted bundle in it (signatures checked as `apply --dir` checks
/// them; dot files, directories, and files that are not trusted bundles
/// are passed over: `apply --dir` does not take them either).
///
/// Refuses the install when `dir` would hold more than [`MAX_BUNDLES`]
/// trusted bundles for `m`'s kernel release and architecture after it
/// (the file it replaces not counted): more than `apply --dir` takes for
/// one kernel. Counting every build-id of the release makes the bound hold
/// for each build.
fn check_room(
    dir: &CStr,
    ring: &Keyring,
    m: &Manifest,
    name: &[u8],
) -> core::result::Result<(), Failure> {
    let mut n = 1;
    select::each_bundle_file(dir, &mut |p, file| {
        let mut mbuf = [0u8; MAX_MANIFEST];
        let Ok(fd) = files::open_ro(p.c(), crate::files::UNSHOWN) else {
            return;
        };
        let Ok(src) = FileSource::new(&fd, crate::files::UNSHOWN) else {
            return;
        };
        let Ok(s) = bundle::read_signed(&src, ring, &mut mbuf, false) else {
            return;
        };
        let o = &s.manifest;
        if file != name && o.release == m.release && o.arch == m.arch {
            n += 1;
        }
    })?;
    if n > MAX_BUNDLES {
        return Err(Error::TooManyBundles.with(&[b"kernel release ", m.release.as_bytes()]));
    }
    Ok(())
}

/// Removes every bundle of patch `name` from `dir` (whatever kernel it is
/// for, whatever its file name, dot files included: the hidden copy an
/// install that was killed left; files that are not bundles are left
/// alone), then disables the patch. Returns how many files were removed
/// and whether the patch was disabled now.
#[inline(never)]
pub fn uninstall(name: &str, dir: &CStr, timeout_ms: u64, ev: Sink) -> Result<(usize, bool)> {
    let mut removed = 0;
    files::each_entry(dir, msg!("read bundle directory"), |f, _| {
        let fb = f.to_bytes();
        let p = PathBuf::of(&[dir.to_bytes(), b"/", fb])?;
        if !is_bundle_of(&p, name) {
            return Ok(());
        }
        rustix::fs::unlink(p.c()).ctx(msg!("remove bundle"))?;
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
    let Ok(fd) = files::open_ro(p.c(), crate::files::UNSHOWN) else {
        return false;
    };
    let Ok(src) = FileSource::new(&fd, crate::files::UNSHOWN) else {
        return false;
    };
    bundle::read(&src, &mut mbuf)
        .and_then(|u| u.manifest_unverified())
        .is_ok_and(|m| m.name == name)
}
