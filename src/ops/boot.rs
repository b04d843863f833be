//! Boot safety: the crash-loop guard's start of a boot and its
//! confirmation, and the switches on the kernel command line.
#![forbid(unsafe_code)]

use super::{Event, Sink};
use crate::error::Result;
use crate::guard;
use crate::kernel::{Switches, loader, sysfs};
use core::ffi::CStr;

/// The first klpctl run of a boot with a state directory: an earlier boot
/// that tried payloads and ended before they were proven quarantines them.
/// Each one is told as an event and logged to the kernel log. A guard that
/// cannot be used (see [`guard::load`]) is an error, logged too: nothing is
/// applied.
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
    .inspect_err(|e| {
        // Said on stderr by the caller; the kernel log keeps it too.
        loader::audit(&[
            b"applying nothing: ",
            e.class().as_bytes(),
            e.message().as_bytes(),
        ]);
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

/// Waits until the system has been up `after_s` seconds, without holding
/// anything.
pub fn wait_until_up(after_s: u64) {
    let up = guard::uptime();
    if after_s > up {
        crate::rt::sleep_ms((after_s - up) * 1000);
    }
}

/// Where payload `sha` (hex) of patch `name` stands now. Live: enabled, its
/// transition over, and klpctl's record of this boot names that payload as
/// applied; only such a payload is proven good by a confirmation. Loading:
/// the patch is loaded but not live, or klpctl cannot tell whose payload it
/// is (a missing or damaged record): a window does not prove it. Gone: not
/// loaded, or the record names another payload.
fn now_of(name: &[u8], sha: &[u8]) -> guard::Now {
    let Ok(n) = core::str::from_utf8(name) else {
        return guard::Now::Gone;
    };
    if !sysfs::active(name) {
        return guard::Now::Gone;
    }
    let mut buf = [0u8; crate::state::MAX_RECORD];
    match crate::state::read_record(n, &mut buf) {
        Some(r) if r.sha256.as_bytes() != sha => guard::Now::Gone,
        Some(r) if r.state == "applied" && sysfs::enabled(name) && sysfs::settled(name) => {
            guard::Now::Live
        }
        _ => guard::Now::Loading,
    }
}

/// Proves this boot's tries made at least `window` seconds ago (all of
/// them when 0: a clean shutdown). Logs to the kernel log when it proved
/// something.
#[inline(never)]
pub fn confirm(sd: &CStr, window: u64) -> Result<guard::Proven> {
    let p = guard::confirm(sd.to_bytes(), window, &mut now_of)?;
    if p.tries > 0 {
        loader::audit(&[b"boot confirmed good for the bundles it tried"]);
    }
    Ok(p)
}
