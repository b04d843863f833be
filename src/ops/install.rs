//! `install` and `uninstall`: a bundle directory for later boots, kept
//! consistent with what is applied now.
#![forbid(unsafe_code)]

use super::Sink;
use super::apply::{self, Applied, Options};
use crate::error::{Context, Error, Failure, Result};
use crate::files::{self, AtomicFile, FileSource, PathBuf, Source};
use crate::kernel::{Running, sysfs};
use crate::trust::bundle;
use crate::trust::keys::Keyring;
use crate::trust::manifest::MAX_MANIFEST;
use core::ffi::CStr;

/// A bundle installed.
pub struct Installed {
    /// What applying it now did; `None` when it is for another kernel.
    pub applied: Option<Applied>,
    /// Where it is stored: `<dir>/<name>@<release>.klp`.
    pub stored: PathBuf,
}

/// Verifies the bundle at `path` (signatures and payload), applies it now
/// when it is for the running kernel, then stores it in `dir` for later
/// boots: written to a hidden temporary file, verified again from there,
/// fsynced and renamed into place, so `dir` never holds a half-written or
/// unverified file. A bundle that fails to apply is not stored.
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
    let applied = if sysfs::supported() && k.check(m).is_ok() {
        Some(apply::apply(path, ring, k, opts, ev)?)
    } else {
        None
    };
    let name = PathBuf::of(&[m.name.as_bytes(), b"@", m.release.as_bytes(), b".klp"])?;
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
    let stored = PathBuf::of(&[dir.to_bytes(), b"/", name.bytes()])?;
    out.commit()?;
    files::sync_dir(dir);
    Ok(Installed { applied, stored })
}

/// The copy verifies as the original did.
fn verify_copy(path: &CStr, ring: &Keyring) -> Result<()> {
    let mut mbuf = [0u8; MAX_MANIFEST];
    let fd = files::open_ro(path, msg!("cannot read the copy"))?;
    let src = FileSource::new(&fd, msg!("cannot read the copy"))?;
    bundle::read_signed(&src, ring, &mut mbuf, true).map(drop)
}

/// Removes every bundle of patch `name` from `dir` (whatever kernel it is
/// for; files that are not bundles are left alone), then disables the
/// patch. Returns how many files were removed and whether the patch was
/// disabled now.
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
