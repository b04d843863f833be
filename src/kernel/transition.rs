//! Livepatch transitions as the kernel shows them: waiting for one to
//! finish, and finding the tasks that hold one up.
//!
//! A task blocks a transition while its `/proc/<pid>/task/<tid>/patch_state`
//! differs from the target (1 when enabling, 0 when disabling; -1 when no
//! transition runs). The kernel also waits for each CPU's idle task
//! (`swapper/N`, pid 0), which `/proc` does not list.
#![forbid(unsafe_code)]

use crate::files::{self, PathBuf};
use crate::kernel::sysfs;

/// Most blocking tasks described; the rest are only counted.
pub const MAX_BLOCKERS: usize = 16;

/// One task that holds a transition up.
pub struct Blocker {
    /// Thread id, as in `/proc/<pid>/task/<tid>`.
    pub tid: heapless::Vec<u8, 20>,
    /// `comm`, or `?` when it could not be read.
    pub comm: heapless::Vec<u8, 64>,
    /// The top three frames of its kernel stack, `frame < frame < frame`.
    pub stack: heapless::Vec<u8, 256>,
}

/// The tasks holding a transition up.
pub struct Blockers {
    /// The first [`MAX_BLOCKERS`] found.
    pub list: heapless::Vec<Blocker, MAX_BLOCKERS>,
    /// How many there are in all.
    pub total: usize,
}

/// Waits until `deadline` for the transition of `name` to finish. The last
/// look comes after the deadline: a transition that finished just then is
/// done, not timed out.
pub fn wait(name: &[u8], deadline: u64) -> bool {
    crate::rt::poll(deadline, || sysfs::settled(name)) || sysfs::settled(name)
}

/// The tasks whose `patch_state` differs from `target` (1 when enabling, 0
/// when disabling), with their name and where their kernel stack is.
pub fn blockers(target: i64) -> Blockers {
    let mut out = Blockers {
        list: heapless::Vec::new(),
        total: 0,
    };
    let _ = files::each_entry(c"/proc", crate::files::UNSHOWN, |pid, _| {
        let pb = pid.to_bytes();
        if !pb.iter().all(u8::is_ascii_digit) {
            return Ok(());
        }
        let Ok(tdir) = PathBuf::of(&[b"/proc/", pb, b"/task"]) else {
            return Ok(());
        };
        let _ = files::each_entry(tdir.c(), crate::files::UNSHOWN, |tid, _| {
            let tb = tid.to_bytes();
            let base = |attr: &[u8]| PathBuf::of(&[b"/proc/", pb, b"/task/", tb, b"/", attr]);
            let Ok(ps) = base(b"patch_state") else {
                return Ok(());
            };
            let st = files::read_i64(ps.c());
            if st.is_none_or(|s| s == -1 || s == target) {
                return Ok(());
            }
            out.total += 1;
            if out.list.is_full() {
                return Ok(());
            }
            let mut b = Blocker {
                tid: heapless::Vec::new(),
                comm: heapless::Vec::new(),
                stack: heapless::Vec::new(),
            };
            // Bounded here, and below: comm by its 64-byte read, the stack
            // by three frames of at most 80 bytes and two separators.
            let _ = b.tid.extend_from_slice(&tb[..tb.len().min(20)]);
            let mut buf = [0u8; 4096];
            let comm = base(b"comm")
                .ok()
                .and_then(|p| files::read_small(p.c(), &mut buf[..64], crate::files::UNSHOWN).ok())
                .unwrap_or(b"?")
                .trim_ascii_end();
            let _ = b.comm.extend_from_slice(comm);
            let stack = base(b"stack")
                .ok()
                .and_then(|p| files::read_small(p.c(), &mut buf, crate::files::UNSHOWN).ok())
                .unwrap_or(b"");
            // The top three frames: the sleeping primitive alone rarely says
            // which patched function holds the task.
            for f in stack
                .split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .take(3)
            {
                let f = f.trim_ascii();
                let f = f.iter().position(|&c| c == b' ').map_or(f, |i| &f[i + 1..]);
                if !b.stack.is_empty() {
                    let _ = b.stack.extend_from_slice(b" < ");
                }
                let _ = b.stack.extend_from_slice(&f[..f.len().min(80)]);
            }
            let _ = out.list.push(b); // not full: checked above
            Ok(())
        });
        Ok(())
    });
    out
}
