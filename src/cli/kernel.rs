//! The kernel commands: `apply`, `install`, `disable`, `uninstall`,
//! `status`, and the crash-loop guard's `confirm` and `unquarantine`. Each
//! parses its options, takes the lock where it changes something, calls
//! the operation, and renders what comes back.
#![forbid(unsafe_code)]

use super::args::{Args, Cli, Res, kernel_args, opt};
use super::render;
use crate::error::{About, Error, Failure};
use crate::json::Json;
use crate::kernel::{Running, Switches, sysfs};
use crate::ops::apply::{self, LOCK_WAIT_S, Options, Outcome};
use crate::ops::{self, Event, boot, install, select};
use crate::out::Out;
use crate::state;
use crate::trust::keyring;
use core::ffi::CStr;

/// Where events go: rendered on stderr as they happen.
fn on_event(ev: Event) {
    render::event(ev)
}

/// Takes klpctl's lock ([`state::lock`]), saying on stderr when it has to
/// wait for another klpctl.
fn lock(wait_s: u64) -> crate::error::Result<state::Lock> {
    state::lock(wait_s, &mut || on_event(Event::LockWait))
}

/// The one patch name a command takes, checked.
fn patch_name(args: &[&'static CStr], usage: crate::error::Msg) -> Result<&'static str, Failure> {
    let name = args.first().ok_or(Error::Usage(usage))?.to_bytes();
    core::str::from_utf8(name)
        .ok()
        .filter(|n| crate::trust::manifest::valid_name(n))
        .ok_or(Error::Usage(msg!(
            "invalid patch name ([A-Za-z0-9_], 1-55)"
        )))
        .about(name)
}

/// `klpctl apply BUNDLE... | --dir DIR`, and `klpctl install BUNDLE...
/// --dir DIR` (`install` true): the same options, the same lock, guard and
/// rendering; install stores each bundle in DIR, proven writable before
/// the bundle is applied (see [`install::install`]).
pub fn apply(cli: &mut Cli, a: &mut Args, install: bool) -> Res {
    let k = kernel_args(
        a,
        opt::TIMEOUT
            | opt::KEYRING
            | opt::DOWNGRADE
            | opt::STATE
            | opt::NO_WAIT
            | opt::JSON
            | opt::DIR
            | opt::MANY,
    )?;
    let (keyring, lock_wait_s, json, dir, paths) =
        (k.keyring, k.lock_wait_s, k.json, k.dir, k.args);
    if install && (paths.is_empty() || dir.is_none()) {
        return Err(Error::Usage(msg!("install needs BUNDLE... and --dir DIR")).into());
    }
    if !install && paths.is_empty() == dir.is_none() {
        return Err(Error::Usage(msg!("apply needs BUNDLE... or --dir DIR (not both)")).into());
    }
    // Naming a bundle is the operator's choice (it lifts a quarantine);
    // apply --dir picks them itself.
    let opts = Options {
        timeout_ms: k.timeout_ms,
        allow_downgrade: k.allow_downgrade,
        state_dir: k.state_dir,
        explicit: install || dir.is_none(),
    };
    let mut jo = Out::to(json.then(crate::sys::stdout));
    let mut j = Json::new(&mut jo);
    j.obj().key("results").arr();
    // Without livepatch support nothing can be applied, and a boot script
    // must be able to tell that from "nothing to do": exit 4 at once, for
    // --dir too. (install still stores bundles for other kernels.) That
    // error is about the kernel, so it names no file.
    // A failure before the first bundle ends the JSON object at once.
    let fail = |j: &mut Json, f: Failure| -> Res {
        render::apply_end_json(j, false, Some(&f.error));
        j.key("error").error(f.error).end_obj().nl();
        Err(f)
    };
    if !install && !sysfs::supported() {
        return fail(&mut j, Error::NoLivepatch.into());
    }
    let ring = match keyring::load(keyring) {
        Ok(ring) => ring,
        Err(e) => {
            let about = keyring.unwrap_or(keyring::KEYRING_DIR).to_bytes();
            return fail(&mut j, Failure::from(e).about(about));
        }
    };
    let held = lock(lock_wait_s).and_then(|held| {
        // The first run of a boot: the crash-loop guard's turn.
        boot::start(opts.state_dir, &mut on_event)?;
        Ok(held)
    });
    let _lock = match held {
        Ok(held) => held,
        Err(e) => return fail(&mut j, e.into()),
    };
    let k = Running::read();
    let mut changed = false;
    let mut one = |j: &mut Json, path: &CStr| -> Res {
        let r = match dir.filter(|_| install) {
            Some(d) => install::install(path, d, &ring, &k, &opts, &mut on_event)
                .map(|mut i| (i.applied.take(), Some(i))),
            None => apply::apply(path, &ring, &k, &opts, &mut on_event).map(|a| (Some(a), None)),
        };
        match r {
            Ok((done, inst)) => {
                changed |= done.as_ref().is_some_and(|d| d.outcome == Outcome::Applied);
                changed |= inst.as_ref().is_some_and(|i| i.stored.is_some());
                if !json {
                    render::done_human(path.to_bytes(), done.as_ref(), inst.as_ref());
                }
                render::done_json(j, path.to_bytes(), done.as_ref(), inst.as_ref());
                // Live, but klpctl's state was not saved (or, for install,
                // the bundle not stored): stop before loading anything
                // more.
                done.and_then(|d| d.unsaved)
                    .map_or(Ok(()), |e| Err(e.into()))
            }
            Err(f) => {
                // A stuck revert changed the system.
                changed |= f.error.exit_code() == 8;
                render::failed_json(j, path.to_bytes(), &f);
                Err(f)
            }
        }
    };
    let mut result = Ok(());
    if let Some(d) = dir.filter(|_| !install) {
        // Boot-time apply: the kernel command line has the last word.
        let switches = Switches::read();
        if let Some(why) = switches.why {
            // Failing closed: say why before the switch's own report.
            render::switches_unreadable(why);
        }
        if boot::switched_off(&switches, &mut on_event) {
            j.end_arr().key("switch").str(b"klpctl.enable=0");
            if let Some(why) = switches.why {
                j.key("why").str(why.text().as_bytes());
            }
            j.key("changed").bool(false).key("exit").u(0).end_obj().nl();
            return Ok(());
        }
        match select::select_dir(d, &ring, &k, &opts, &switches, &mut |path, f| {
            render::skipped(&mut j, json, path, f)
        }) {
            Ok(picked) => {
                // One stream's failure costs only the bundles stacked on
                // it in that stream; the others still apply. Only state
                // that cannot be saved stops everything.
                let mut failed: heapless::Vec<&str, { select::MAX_BUNDLES }> = heapless::Vec::new();
                for c in &picked {
                    if failed.contains(&c.stream.as_str()) {
                        let f = Error::Conflict(msg!(
                            "skipped: an earlier bundle of its stream failed"
                        ))
                        .with(&[b"stream ", c.stream.as_bytes()]);
                        render::skipped(&mut j, json, c.path.bytes(), Some(&f));
                        continue;
                    }
                    if let Err(f) = one(&mut j, c.path.c()) {
                        // Said now, about this bundle: later bundles still
                        // run, and the first failure is what is returned.
                        render::report(c.path.bytes(), &f);
                        cli.reported = true;
                        let stop = f.error.exit_code() == 10;
                        // Cannot fail: at most one entry per picked bundle.
                        let _ = failed.push(&c.stream);
                        result = result.and(Err(f));
                        if stop {
                            break;
                        }
                    }
                }
            }
            Err(e) => result = Err(Failure::from(e).about(d.to_bytes())),
        }
    } else {
        for p in &paths {
            result = one(&mut j, p).about(p.to_bytes());
            if result.is_err() {
                break;
            }
        }
    }
    super::vex::keep_current();
    render::apply_end_json(&mut j, changed, result.as_ref().err().map(|f| &f.error));
    j.end_obj().nl();
    result
}

/// `klpctl disable NAME` and `klpctl uninstall NAME --dir DIR` (`dir`
/// wanted): uninstall removes the patch's bundles from DIR first, so it
/// cannot come back at the next boot, then disables it.
pub fn disable(_: &mut Cli, a: &mut Args, uninstall: bool) -> Res {
    let dir = if uninstall { opt::DIR } else { 0 };
    let k = kernel_args(a, opt::TIMEOUT | opt::NO_WAIT | opt::JSON | opt::ONE | dir)?;
    let (timeout_ms, lock_wait_s, json, dir) = (k.timeout_ms, k.lock_wait_s, k.json, k.dir);
    let usage: crate::error::Msg = if uninstall {
        msg!("uninstall needs NAME and --dir DIR")
    } else {
        msg!("disable needs NAME")
    };
    if uninstall && dir.is_none() {
        return Err(Error::Usage(usage).into());
    }
    let sname = patch_name(&k.args, usage)?;
    let about = sname.as_bytes();
    let _lock = lock(lock_wait_s).about(about)?;
    let (removed, r) = match dir {
        Some(d) => match install::uninstall(sname, d, timeout_ms, &mut on_event) {
            Ok((n, done)) => (Some(n), Ok(done)),
            Err(e) => (None, Err(e)),
        },
        None => (
            None,
            ops::disable::disable(sname, timeout_ms, &mut on_event),
        ),
    };
    super::vex::keep_current();
    render::disabled(sname.as_bytes(), &r, removed, json);
    r.map(|_| ()).about(about)
}

/// `klpctl status [--state-dir DIR]`.
pub fn status(_: &mut Cli, a: &mut Args) -> Res {
    let k = kernel_args(a, opt::JSON | opt::STATE)?;
    let (json, sd) = (k.json, k.state_dir);
    super::status::status(&ops::status::facts(), sd, json)?;
    Ok(())
}

/// `klpctl confirm --state-dir DIR [--after SECS]`: this boot is good.
pub fn confirm(_: &mut Cli, a: &mut Args) -> Res {
    let k = kernel_args(a, opt::STATE | opt::AFTER)?;
    let (sd, after) = (k.state_dir, k.after_s);
    let sd = sd.ok_or(Error::Usage(msg!("confirm needs --state-dir DIR")))?;
    // The window passes before the lock is taken: nothing waits on it.
    boot::wait_until_up(after);
    let p = lock(LOCK_WAIT_S)
        .and_then(|_lock| boot::confirm(sd, after))
        .about(sd.to_bytes())?;
    let mut o = Out::stdout();
    o.s("confirmed: ")
        .u(p.tries as u64)
        .s(" bundle(s) tried, ")
        .u(p.good as u64)
        .s(" live and now good");
    if p.pending > 0 {
        o.s(", ")
            .u(p.pending as u64)
            .s(" tried less than ")
            .u(after)
            .s(" s ago (still suspects)");
    }
    o.nl();
    Ok(())
}

/// `klpctl unquarantine NAME --state-dir DIR`.
pub fn unquarantine(_: &mut Cli, a: &mut Args) -> Res {
    let k = kernel_args(a, opt::STATE | opt::ONE)?;
    let usage = msg!("unquarantine needs NAME and --state-dir DIR");
    let sd = k.state_dir.ok_or(Error::Usage(usage))?;
    let sname = patch_name(&k.args, usage)?;
    let n = lock(LOCK_WAIT_S)
        .and_then(|_lock| crate::guard::release(sd.to_bytes(), sname.as_bytes(), None))
        .about(sname.as_bytes())?;
    Out::stdout()
        .s(sname)
        .s(": ")
        .u(n as u64)
        .s(" payload(s) released from quarantine\n");
    Ok(())
}
