//! What the kernel shows of livepatches and modules in sysfs:
//! `/sys/kernel/livepatch/<patch>/` and `/sys/module/<module>/`.
//!
//! The kernel differences klpctl meets are named here, once, with the
//! release that introduced each attribute (see [`attr`]); every reader
//! treats a missing attribute as "this kernel is older", never as an error.
#![forbid(unsafe_code)]

use crate::error::Result;
use crate::files::{self, PathBuf};

const LP: &[u8] = b"/sys/kernel/livepatch/";
const SYSMOD: &[u8] = b"/sys/module/";

/// The livepatch sysfs attributes, with the kernel that introduced them.
pub mod attr {
    /// `<patch>/enabled`, read/write (3.19).
    pub const ENABLED: &[u8] = b"enabled";
    /// `<patch>/transition`, 1 while the patch is in transition (4.12).
    pub const TRANSITION: &[u8] = b"transition";
    /// `<patch>/replace`, whether it is an atomic-replace patch (6.11).
    pub const REPLACE: &[u8] = b"replace";
    /// `<patch>/stack_order`, 1-based position in the stack (6.14).
    pub const STACK_ORDER: &[u8] = b"stack_order";
    /// `<patch>/<object>/patched`, whether the object is patched (6.1).
    pub const PATCHED: &[u8] = b"patched";
}

/// Whether the running kernel has livepatch support at all.
pub fn supported() -> bool {
    files::exists(c"/sys/kernel/livepatch")
}

/// `/sys/kernel/livepatch/<name>[/<attr>]`.
pub fn lp_path(name: &[u8], attr: &[u8]) -> Result<PathBuf> {
    if attr.is_empty() {
        PathBuf::of(&[LP, name])
    } else {
        PathBuf::of(&[LP, name, b"/", attr])
    }
}

fn mod_path(name: &[u8], attr: &[u8]) -> Result<PathBuf> {
    PathBuf::of(&[SYSMOD, name, b"/", attr])
}

/// Whether `/sys/kernel/livepatch/<name>` exists.
pub fn active(name: &[u8]) -> bool {
    lp_path(name, b"").is_ok_and(|p| files::exists(p.c()))
}

/// Whether a loadable module `name` is loaded (only loadable modules have
/// `refcnt`).
pub fn loaded(name: &[u8]) -> bool {
    mod_path(name, b"refcnt").is_ok_and(|p| files::exists(p.c()))
}

/// A numeric attribute of patch `name`; `None` if absent (older kernel, or
/// the patch is gone) or malformed.
pub fn read(name: &[u8], attr: &[u8]) -> Option<i64> {
    files::read_i64(lp_path(name, attr).ok()?.c())
}

/// Writes `value` to an attribute of patch `name`.
pub fn write(name: &[u8], attr: &[u8], value: &[u8]) -> Result<()> {
    files::write_existing(
        lp_path(name, attr)?.c(),
        value,
        msg!("write livepatch attribute"),
    )
}

/// The transition of patch `name` finished (or the patch vanished).
pub fn settled(name: &[u8]) -> bool {
    read(name, attr::TRANSITION) != Some(1)
}

/// The patch is on and its transition is over.
pub fn enabled(name: &[u8]) -> bool {
    read(name, attr::ENABLED) == Some(1)
}

/// The patch is off: gone from sysfs, or its transition to disabled is
/// over and only its directory is still going away.
pub fn disabled_now(name: &[u8]) -> bool {
    !active(name) || (settled(name) && read(name, attr::ENABLED) == Some(0))
}

/// Calls `f` with the name of every patch in `/sys/kernel/livepatch`.
pub fn each_patch(f: &mut dyn FnMut(&[u8])) -> Result<()> {
    files::each_entry(
        c"/sys/kernel/livepatch",
        msg!("read /sys/kernel/livepatch"),
        |n, _| {
            f(n.to_bytes());
            Ok(())
        },
    )
}

/// Whether `name` is the only patch in `/sys/kernel/livepatch`.
pub fn only_patch(name: &[u8]) -> bool {
    let mut only = true;
    let _ = each_patch(&mut |n| only &= n == name);
    only
}

/// The name of a patch in transition, if any, copied into `buf`.
pub fn in_transition(buf: &mut [u8; 64]) -> Option<&[u8]> {
    let mut found = 0;
    let _ = each_patch(&mut |n| {
        if found == 0 && !settled(n) {
            found = n.len().min(64);
            buf[..found].copy_from_slice(&n[..found]);
        }
    });
    (found > 0).then_some(&buf[..found])
}

/// `/sys/module/<name>/refcnt`.
pub fn refcnt(name: &[u8]) -> Option<i64> {
    files::read_i64(mod_path(name, b"refcnt").ok()?.c())
}

/// Whether loaded module `name` is a livepatch module (taint flag `K` in
/// `/sys/module/<name>/taint`). klpctl only ever unloads such modules, so
/// a name that collides with an ordinary driver never takes the driver out.
pub fn is_livepatch_module(name: &[u8]) -> bool {
    let mut buf = [0u8; 64];
    mod_path(name, b"taint")
        .ok()
        .and_then(|p| files::read_small(p.c(), &mut buf, crate::files::UNSHOWN).ok())
        .is_some_and(|t| t.contains(&b'K'))
}

/// Livepatch modules that are loaded but whose patch is no longer in
/// `/sys/kernel/livepatch`: what an atomic replace (or a disable that was
/// interrupted) leaves behind. Livepatch modules carry taint `K`.
pub fn leftovers(f: &mut dyn FnMut(&[u8])) {
    let _ = files::each_entry(c"/sys/module", crate::files::UNSHOWN, |m, _| {
        let mb = m.to_bytes();
        if is_livepatch_module(mb) && !active(mb) {
            f(mb);
        }
        Ok(())
    });
}
