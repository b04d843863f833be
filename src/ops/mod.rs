//! Operations: what `apply`, `apply --dir`, `disable` and `status` decide
//! and do, over the mechanism in [`crate::kernel`], [`crate::state`] and
//! [`crate::trust`]. They print nothing: they return values, and report
//! what happens during a long wait as [`Event`]s, which the command line
//! renders.
#![forbid(unsafe_code)]

pub mod apply;
pub mod boot;
pub mod disable;
pub mod install;
pub mod select;
pub mod status;
pub mod vex;

use crate::guard::Entry;
use crate::kernel::transition::Blockers;

/// Which wait ran out of time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stall {
    /// The transition of a patch klpctl just loaded; it is reverted next.
    Apply,
    /// A transition an earlier, killed klpctl left running; reverted next.
    Earlier,
    /// The revert of a timed-out patch.
    Revert,
    /// A disable; the patch is switched back on next.
    Disable,
}

/// Something that happened while an operation ran, worth telling at once.
pub enum Event<'a> {
    /// Another klpctl holds the lock; this one waits for it.
    LockWait,
    /// A transition did not finish in time, held up by these tasks.
    Stalled {
        /// The patch.
        name: &'a [u8],
        /// Which wait it was.
        stall: Stall,
        /// Who holds it up.
        blockers: &'a Blockers,
    },
    /// A line the kernel logged while it refused a module.
    KernelLog(&'a [u8]),
    /// A replaced patch's module is still referenced and stays loaded.
    ReplacedBusy(&'a [u8]),
    /// After a replace, more leftover livepatch modules (of the patches it
    /// replaced, or left from before) than one apply removes
    /// ([`apply::MAX_REMOVED`]): the others stay loaded, and `status` lists
    /// them as leftovers.
    ReplacedLeft,
    /// The kernel says the patch does (`kernel`) or does not replace the
    /// others, and its bundle says the opposite; the kernel's word was
    /// followed.
    ReplaceMismatch {
        /// The patch.
        name: &'a [u8],
        /// Whether the kernel says it replaces.
        kernel: bool,
    },
    /// A reverted patch's module is still referenced and stays loaded.
    RevertedLoaded(&'a [u8]),
    /// A disable that had run out of time finished after all.
    DisableFinished(&'a [u8]),
    /// The crash-loop guard quarantined a payload the last boot tried.
    Quarantined(&'a Entry<'a>),
    /// An explicit apply lifted the quarantine of this patch's payload.
    Released(&'a [u8]),
    /// `klpctl.enable=0` on the kernel command line: `apply --dir` applies
    /// nothing.
    SwitchedOff,
}

/// Where operations send their events.
pub type Sink<'s> = &'s mut dyn FnMut(Event<'_>);
