//! Boot safety: the crash-loop guard's start of a boot and its
//! confirmation, and the switches on the kernel command line.
#![forbid(unsafe_code)]

use super::{Event, Sink};
use crate::error::Result;
use crate::guard;
use crate::kernel::{Switches, loader};
use core::ffi::CStr;

/// The first klpctl run of a boot with a state directory: an earlier boot
/// that tried payloads and ended without confirmation quarantines them.
/// Each one is told as an event and logged to the kernel log.
#[inline(never)]
pub fn start(state_dir: Option<&CStr>, ev: Sink) -> Result<()> {
    let Some(sd) = state_dir else { return Ok(()) };
    guard::start_boot(sd.to_bytes(), &mut |e| {
        loader::audit(&[
            b"quarantined ",
            e.name,
            b" stream=",
            e.stream,
            b" version=",
            e.version,
            b" sha256=",
            e.sha256,
            b": boot ",
            e.boot_id,
            b" ended before it was confirmed good",
        ]);
        ev(Event::Quarantined(e));
    })
}

/// `klpctl.enable=0` on the kernel command line: boot-time `apply --dir`
/// applies nothing, and says so (and logs it).
pub fn switched_off(sw: &Switches, ev: Sink) -> bool {
    if sw.off {
        loader::audit(&[b"klpctl.enable=0 on the kernel command line: applying nothing"]);
        ev(Event::SwitchedOff);
    }
    sw.off
}

/// Confirms this boot good, once it has been up `after_s` seconds (waiting
/// for that). Returns how many payloads the boot tried.
#[inline(never)]
pub fn confirm(sd: &CStr, after_s: u64) -> Result<usize> {
    // CLOCK_BOOTTIME: seconds since boot, suspend included.
    let up = crate::sys::clock(7).0;
    if after_s > up {
        crate::rt::sleep_ms((after_s - up) * 1000);
    }
    let n = guard::confirm(sd.to_bytes())?;
    loader::audit(&[b"boot confirmed good"]);
    Ok(n)
}
