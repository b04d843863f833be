//! Time: the clocks, sleeping, and the one bounded polling loop every wait
//! in klpctl uses.
#![forbid(unsafe_code)]

/// Milliseconds on the monotonic clock.
pub fn now_ms() -> u64 {
    let (s, ns) = crate::sys::clock(1);
    s * 1000 + ns / 1_000_000
}

/// Seconds since the Unix epoch.
pub fn unix_time() -> u64 {
    crate::sys::clock(0).0
}

/// Sleeps for `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    let ts = rustix::thread::Timespec {
        tv_sec: (ms / 1000) as i64,
        tv_nsec: ((ms % 1000) * 1_000_000) as i64,
    };
    let _ = rustix::thread::nanosleep(&ts);
}

/// The longest sleep between two looks. It bounds how late klpctl notices
/// that a transition finished: the kernel tells no one (no event on the
/// sysfs file), so the time between the kernel's "patching complete" and
/// klpctl's exit is up to one step. 10 ms is what a hand-written loader
/// polls at; a look is one small sysfs read, so 100 looks a second during
/// a long transition cost nothing worth saving.
pub const POLL_MAX_MS: u64 = 10;

/// Polls until `done()` holds, backing off from 1 ms to [`POLL_MAX_MS`],
/// or until `deadline` (monotonic ms). Returns whether `done()` held.
pub fn poll(deadline: u64, mut done: impl FnMut() -> bool) -> bool {
    poll_dyn(deadline, &mut done)
}

// One copy of the loop for every caller (`dyn`): smaller binary.
fn poll_dyn(deadline: u64, done: &mut dyn FnMut() -> bool) -> bool {
    let mut step = 1;
    loop {
        if done() {
            return true;
        }
        if now_ms() >= deadline {
            return false;
        }
        sleep_ms(step.min(deadline.saturating_sub(now_ms())).max(1));
        step = next_step(step);
    }
}

/// The sleep after one of `step` ms: doubled, up to [`POLL_MAX_MS`].
fn next_step(step: u64) -> u64 {
    (step * 2).min(POLL_MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_starts_at_1_ms_and_never_passes_the_cap() {
        let mut step = 1;
        let mut seen = [0u64; 8];
        for s in seen.iter_mut() {
            *s = step;
            step = next_step(step);
        }
        assert_eq!(seen, [1, 2, 4, 8, 10, 10, 10, 10]);
        assert_eq!(next_step(POLL_MAX_MS), POLL_MAX_MS);
    }

    #[test]
    fn poll_returns_at_once_when_done_and_at_the_deadline_when_not() {
        let mut looks = 0;
        assert!(poll(now_ms() + 1000, || {
            looks += 1;
            true
        }));
        assert_eq!(looks, 1);
        let start = now_ms();
        assert!(!poll(start + 30, || false));
        assert!(now_ms() >= start + 30);
    }
}
