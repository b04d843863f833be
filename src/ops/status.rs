//! `status`: what the kernel and klpctl's records say, as values. The
//! patches, their objects and functions are handed out one at a time
//! (visitors), so a long list needs no buffer.
#![forbid(unsafe_code)]

use crate::error::Result;
use crate::files::{self, PathBuf};
use crate::kernel::sysfs::{self, attr};
use crate::kernel::transition::{self, Blockers};
use crate::kernel::{self, Running};
use crate::state::{self, Record};

/// The running kernel, as `status` describes it.
pub struct Facts {
    /// uname and build-id.
    pub kernel: Running,
    /// Whether `/sys/kernel/livepatch` exists.
    pub livepatch: bool,
    /// The lockdown mode, when the kernel has the lockdown LSM.
    pub lockdown: Option<heapless::String<32>>,
    /// `/proc/sys/kernel/tainted` (0 when unreadable).
    pub taint: u64,
    /// The taint bits as the kernel's letters, in bit order.
    pub taint_flags: heapless::Vec<u8, 32>,
}

/// Reads the kernel's facts.
pub fn facts() -> Facts {
    let mut lbuf = [0u8; 128];
    let lockdown = kernel::lockdown(&mut lbuf).map(|l| {
        let mut s = heapless::String::new();
        let _ = s.push_str(l); // a mode name ("integrity"): far under 32
        s
    });
    let taint = kernel::taint().unwrap_or(0);
    let mut taint_flags = heapless::Vec::new();
    for (i, &c) in kernel::TAINT_LETTERS.iter().enumerate() {
        if taint & (1 << i) != 0 {
            let _ = taint_flags.push(c); // 19 letters at most, room for 32
        }
    }
    Facts {
        kernel: Running::read(),
        livepatch: sysfs::supported(),
        lockdown,
        taint,
        taint_flags,
    }
}

/// One patch in `/sys/kernel/livepatch`.
pub struct Patch<'a> {
    /// Its name (the module name).
    pub name: &'a [u8],
    /// `enabled` reads 1.
    pub enabled: bool,
    /// `transition` reads 1.
    pub transition: bool,
    /// `transition` reads 0: the transition is known to be over. Not the
    /// same as `!transition`: an attribute that cannot be read, or reads
    /// anything else, is neither.
    pub settled: bool,
    /// `replace`, where the kernel has it.
    pub replace: Option<bool>,
    /// `stack_order`, where the kernel has it.
    pub stack_order: Option<i64>,
    /// klpctl's record of this boot, if valid.
    pub record: Option<Record<'a>>,
    /// The tasks holding up its transition, while it is in one.
    pub blockers: Option<Blockers>,
}

/// Calls `f` with every patch of `/sys/kernel/livepatch`.
pub fn each_patch(f: &mut dyn FnMut(&Patch)) -> Result<()> {
    sysfs::each_patch(&mut |name| {
        let enabled = sysfs::enabled(name);
        let t = sysfs::read(name, attr::TRANSITION);
        let transition = t == Some(1);
        let mut rbuf = [0u8; state::MAX_RECORD];
        let record = core::str::from_utf8(name)
            .ok()
            .and_then(|n| state::read_record(n, &mut rbuf));
        f(&Patch {
            name,
            enabled,
            transition,
            settled: t == Some(0),
            replace: sysfs::read(name, attr::REPLACE).map(|r| r == 1),
            stack_order: sysfs::read(name, attr::STACK_ORDER),
            record,
            blockers: transition.then(|| transition::blockers(enabled as i64)),
        })
    })
}

/// Calls `f` with each object (`vmlinux` or a module) patch `name`
/// patches, and whether it is patched now (`None` before 6.1).
pub fn each_object(name: &[u8], f: &mut dyn FnMut(&[u8], Option<bool>)) {
    let Ok(dir) = sysfs::lp_path(name, b"") else {
        return;
    };
    let _ = files::each_entry(dir.c(), crate::files::UNSHOWN, |obj, ty| {
        if ty == rustix::fs::FileType::Directory {
            let ob = obj.to_bytes();
            let patched = PathBuf::of(&[dir.bytes(), b"/", ob, b"/", attr::PATCHED])
                .ok()
                .and_then(|p| files::read_i64(p.c()));
            f(ob, patched.map(|v| v == 1));
        }
        Ok(())
    });
}

/// Calls `f` with each function (`name,sympos`) patch `name` replaces in
/// object `obj`.
pub fn each_function(name: &[u8], obj: &[u8], f: &mut dyn FnMut(&[u8])) {
    let Ok(dir) = sysfs::lp_path(name, b"") else {
        return;
    };
    if let Ok(od) = PathBuf::of(&[dir.bytes(), b"/", obj]) {
        let _ = files::each_entry(od.c(), crate::files::UNSHOWN, |func, ty| {
            if ty == rustix::fs::FileType::Directory {
                f(func.to_bytes());
            }
            Ok(())
        });
    }
}

/// Calls `f` with each leftover module: a livepatch module still loaded
/// whose patch is gone.
pub fn each_leftover(f: &mut dyn FnMut(&[u8])) {
    sysfs::leftovers(f)
}
