//! `disable`: switch a patch off, wait for the reverse transition, remove
//! its module and its record.
#![forbid(unsafe_code)]

use super::{Event, Sink, Stall};
use crate::error::{Error, Result};
use crate::kernel::sysfs::{self, attr};
use crate::kernel::{loader, transition};
use crate::state;

/// Disables patch `name` (already checked to be a valid patch name) and
/// removes its module, waiting up to `timeout_ms`. Returns whether
/// anything changed.
pub fn disable(name: &str, timeout_ms: u64, ev: Sink) -> Result<bool> {
    let (sname, name) = (name, name.as_bytes());
    let mut deadline = crate::rt::now_ms() + timeout_ms;
    if !sysfs::active(name) {
        state::remove_record(sname);
        if !sysfs::loaded(name) {
            return Ok(false);
        }
        if !sysfs::is_livepatch_module(name) {
            return Err(Error::Conflict(msg!(
                "a module of this name is loaded and is not a livepatch"
            )));
        }
        // A module whose patch is already gone (replaced, or a disable that
        // was interrupted): finish the job.
        loader::unload(name, deadline)?;
        loader::audit(&[b"removed stale module ", name]);
        return Ok(true);
    }
    // EBUSY while another patch is in transition: wait for it, bounded.
    if sysfs::enabled(name)
        && !crate::rt::poll(deadline, || {
            sysfs::write(name, attr::ENABLED, b"0").is_ok() || !sysfs::enabled(name)
        })
    {
        return Err(Error::Conflict(msg!(
            "cannot start the disable: another livepatch stays in transition"
        )));
    }
    if !crate::rt::poll(deadline, || sysfs::disabled_now(name)) {
        ev(Event::Stalled {
            name,
            stall: Stall::Disable,
            blockers: &transition::blockers(0),
        });
        let wrote = sysfs::write(name, attr::ENABLED, b"1").is_ok();
        // A failed step is followed by a fresh look at the truth: the
        // reverse transition may have finished just as the time ran out,
        // and then the kernel refuses to switch the patch back on.
        match after_timeout(wrote, !wrote && sysfs::disabled_now(name)) {
            AfterTimeout::Finished => {}
            AfterTimeout::SwitchingBack
                if crate::rt::poll(crate::rt::now_ms() + timeout_ms.max(10_000), || {
                    sysfs::settled(name) && sysfs::enabled(name)
                }) =>
            {
                return Err(Error::DisableTimedOut);
            }
            _ => {
                return Err(Error::Stuck(msg!(
                    "disable timed out and re-enabling stalled too; still in transition (not forced)"
                )));
            }
        }
        ev(Event::DisableFinished(name));
        // Its sysfs directory goes asynchronously: a short grace to remove it.
        deadline = crate::rt::now_ms() + 5_000;
    }
    if loader::unload(name, deadline).is_err() {
        return Err(Error::Stuck(msg!(
            "the patch is disabled but its module is still referenced (not removed)"
        )));
    }
    state::remove_record(sname);
    loader::audit(&[b"disabled ", name]);
    Ok(true)
}

/// Where a disable that ran out of time stands after it tried to switch
/// the patch back on.
#[derive(Debug, PartialEq, Eq)]
enum AfterTimeout {
    /// The kernel took the `1`: the patch is on its way back on.
    SwitchingBack,
    /// The kernel refused, because the disable had just finished after
    /// all: finish the job (remove the module and the record).
    Finished,
    /// The kernel refused and the patch is still in transition.
    Stuck,
}

/// `wrote`: the kernel accepted `1` in `enabled`; `off`: a fresh look,
/// taken after a refusal, finds the patch disabled.
fn after_timeout(wrote: bool, off: bool) -> AfterTimeout {
    match (wrote, off) {
        (true, _) => AfterTimeout::SwitchingBack,
        (false, true) => AfterTimeout::Finished,
        (false, false) => AfterTimeout::Stuck,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disable that timed out just as its reverse transition finished:
    /// the kernel refuses the switch back on, and klpctl must report the
    /// patch as disabled (and remove it), not "still in transition".
    #[test]
    fn a_refused_switch_back_after_the_disable_finished_is_success() {
        assert_eq!(after_timeout(false, true), AfterTimeout::Finished);
        assert_eq!(after_timeout(false, false), AfterTimeout::Stuck);
        assert_eq!(after_timeout(true, false), AfterTimeout::SwitchingBack);
    }
}
