//! The kernel commands: `apply`, `disable` and `status`. Each parses its
//! options, takes the lock where it changes something, calls the
//! operation, and renders what comes back.
#![forbid(unsafe_code)]

use super::args::{self, Args, Cli, Res, unknown};
use super::render;
use crate::error::{Error, Failure};
use crate::json::Json;
use crate::kernel::{Running, sysfs};
use crate::ops::apply::{self, LOCK_WAIT_S, Options, Outcome};
use crate::ops::select;
use crate::ops::{self, Event};
use crate::out::Out;
use crate::state;
use crate::trust::keyring;
use core::ffi::CStr;

/// Where events go: rendered on stderr as they happen.
fn on_event(ev: Event) {
    render::event(ev)
}

/// `klpctl apply BUNDLE... | --dir DIR`.
pub fn apply(cli: &mut Cli, a: &mut Args) -> Res {
    let mut opts = Options {
        timeout_ms: 60_000,
        allow_downgrade: false,
        state_dir: None,
    };
    let (mut keyring, mut lock_wait_s, mut json) = (None, LOCK_WAIT_S, false);
    let mut paths: heapless::Vec<&'static CStr, 64> = heapless::Vec::new();
    let mut dir = None;
    while let Some(arg) = a.arg() {
        match arg {
            b"--timeout" => opts.timeout_ms = args::timeout(a)?,
            b"--keyring" => keyring = Some(a.value_c()?),
            b"--allow-downgrade" => opts.allow_downgrade = true,
            b"--state-dir" => opts.state_dir = Some(a.value_c()?),
            b"--no-wait" => lock_wait_s = 0,
            b"--json" => json = true,
            b"--dir" => dir = Some(a.value_c()?),
            _ if !arg.starts_with(b"-") => paths
                .push(a.current_c())
                .map_err(|_| Error::Usage("at most 64 bundles"))?,
            _ => return Err(unknown(cli, arg).into()),
        }
    }
    if paths.is_empty() == dir.is_none() {
        return Err(Error::Usage("apply needs BUNDLE... or --dir DIR (not both)").into());
    }
    let mut jo = Out::to(json.then(crate::sys::stdout));
    let mut j = Json::new(&mut jo);
    j.obj().key("results").arr();
    cli.ctx(keyring.map_or(keyring::KEYRING_DIR.to_bytes(), |k| k.to_bytes()));
    // Without livepatch support nothing can be applied, and a boot script
    // must be able to tell that from "nothing to do": exit 4 at once, for
    // --dir too.
    let early = if sysfs::supported() {
        keyring::load(keyring).and_then(|ring| {
            cli.ctx(b"");
            let lock = state::lock(lock_wait_s, || on_event(Event::LockWait))?;
            Ok((ring, lock))
        })
    } else {
        Err(Error::NoLivepatch)
    };
    let (ring, _lock) = match early {
        Ok(x) => x,
        Err(e) => {
            render::apply_end_json(&mut j, false, Some(&e));
            j.key("error").str(e.message().as_bytes()).end_obj().nl();
            return Err(e.into());
        }
    };
    let k = Running::read();
    let mut changed = false;
    let mut one = |cli: &mut Cli, j: &mut Json, path: &CStr| -> Res {
        cli.ctx(path.to_bytes());
        let r = apply::apply(path, &ring, &k, &opts, &mut on_event);
        match r {
            Ok(done) => {
                changed |= done.outcome == Outcome::Applied;
                if !json {
                    render::applied_human(&done);
                }
                render::applied_json(j, path.to_bytes(), &done);
                // Live, but klpctl's state was not saved: stop before
                // loading anything more.
                done.unsaved.map_or(Ok(()), |e| Err(e.into()))
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
    let picked;
    let mut todo: heapless::Vec<&CStr, 64> = paths;
    if let Some(d) = dir {
        cli.ctx(d.to_bytes());
        match select::select_dir(d, &ring, &k, &mut |path, f| {
            render::skipped(&mut j, json, path, f)
        }) {
            Ok(list) => {
                picked = list;
                todo = picked.iter().map(|c| c.path.c()).collect();
            }
            Err(e) => result = Err(Failure::from(e)),
        }
    }
    for p in &todo {
        result = one(cli, &mut j, p);
        if result.is_err() {
            break;
        }
    }
    render::apply_end_json(&mut j, changed, result.as_ref().err().map(|f| &f.error));
    j.end_obj().nl();
    result
}

/// `klpctl disable NAME`.
pub fn disable(cli: &mut Cli, a: &mut Args) -> Res {
    let (mut timeout_ms, mut lock_wait_s, mut json, mut name) = (60_000, LOCK_WAIT_S, false, None);
    while let Some(arg) = a.arg() {
        match arg {
            b"--timeout" => timeout_ms = args::timeout(a)?,
            b"--no-wait" => lock_wait_s = 0,
            b"--json" => json = true,
            _ if name.is_none() && !arg.starts_with(b"-") => name = Some(arg),
            _ => return Err(unknown(cli, arg).into()),
        }
    }
    let name = name.ok_or(Error::Usage("disable needs NAME"))?;
    cli.ctx(name);
    let sname = core::str::from_utf8(name)
        .ok()
        .filter(|n| crate::trust::manifest::valid_name(n))
        .ok_or(Error::Usage("invalid patch name ([A-Za-z0-9_], 1-55)"))?;
    let _lock = state::lock(lock_wait_s, || on_event(Event::LockWait))?;
    let r = ops::disable::disable(sname, timeout_ms, &mut on_event);
    render::disabled(name, &r, json);
    r.map(|_| ()).map_err(Failure::from)
}

/// `klpctl status`.
pub fn status(cli: &mut Cli, a: &mut Args) -> Res {
    let mut json = false;
    while let Some(arg) = a.arg() {
        match arg {
            b"--json" => json = true,
            _ => return Err(unknown(cli, arg).into()),
        }
    }
    render::status(&ops::status::facts(), json)?;
    Ok(())
}
