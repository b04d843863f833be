//! Turning results into what a user sees: one-line errors, the events of a
//! long operation, and the human and JSON forms of manifests, verdicts,
//! and apply and disable results. (`status` has its own module.)
#![forbid(unsafe_code)]

use crate::error::{Error, Failure};
use crate::files::PathBuf;
use crate::json::Json;
use crate::kernel::transition::Blockers;
use crate::ops::apply::{Applied, Outcome};
use crate::ops::install::Installed;
use crate::ops::{Event, Stall};
use crate::out::Out;
use crate::trust::keys::Verdict;
use crate::trust::manifest::{self, Manifest};

/// Prints `klpctl: [ABOUT: ]message[: ERRNO][: DETAIL]` on stderr.
pub fn report(about: &[u8], f: &Failure) {
    let mut o = Out::stderr();
    o.s("klpctl: ");
    if !about.is_empty() {
        o.b(about).s(": ");
    }
    o.error(f.error);
    if !f.detail.bytes().is_empty() {
        o.s(": ").b(f.detail.bytes());
    }
    o.nl();
}

/// Tells an operation's event on stderr, as it happens.
pub fn event(ev: Event) {
    let mut o = Out::stderr();
    if let Event::KernelLog(line) = ev {
        o.s("  kernel: ").text(line).nl();
        return;
    }
    o.s("klpctl: ");
    match ev {
        Event::KernelLog(_) => {} // written above
        Event::LockWait => {
            o.s("waiting for another klpctl to finish\n");
        }
        Event::Stalled {
            name,
            stall,
            blockers,
        } => {
            let (before, after) = match stall {
                Stall::Apply => ("transition of ", "; reverting"),
                Stall::Earlier => ("an earlier run's transition of ", "; reverting"),
                Stall::Revert => ("the revert of ", " either"),
                Stall::Disable => ("disabling ", "; switching it back on"),
            };
            o.s(before)
                .b(name)
                .s(" did not finish in time")
                .s(after)
                .nl();
            blockers_human(&mut o, blockers);
        }
        Event::ReplacedBusy(m) => {
            o.s("warning: replaced module ").b(m).s(STILL_REFERENCED);
        }
        Event::ReplacedLeft => {
            o.s("warning: over 8 leftover modules; the rest stay loaded\n");
        }
        Event::ReplaceMismatch { name, kernel } => {
            o.s("warning: the kernel says ").b(name);
            if kernel {
                o.s(" replaced every other patch (their modules were removed) but was packed without --replace\n");
            } else {
                o.s(" does not replace other patches but was packed with --replace (nothing removed)\n");
            }
        }
        Event::RevertedLoaded(m) => {
            o.s("warning: reverted patch module ")
                .b(m)
                .s(STILL_REFERENCED);
        }
        Event::DisableFinished(m) => {
            o.s("the disable of ")
                .b(m)
                .s(" finished after all; removing it\n");
        }
        Event::Quarantined(e) => {
            o.s("quarantined ")
                .b(e.name)
                .s(" (stream ")
                .b(e.stream)
                .s(" version ")
                .b(e.version)
                .s("): boot ")
                .b(e.boot_id)
                .s(" ended before it was confirmed good")
                .nl();
        }
        Event::Released(m) => {
            o.b(m).s(": quarantine lifted (explicit apply)\n");
        }
        Event::SwitchedOff => {
            o.s("klpctl.enable=0 on the kernel command line: applying nothing\n");
        }
    }
}

/// A module klpctl left loaded because something still holds it.
const STILL_REFERENCED: &str = " is still referenced (not removed)\n";

/// klpctl's switches on the kernel command line cannot be read in full or
/// understood, so boot-time apply fails closed: why, on stderr.
pub fn switches_unreadable(why: crate::error::Msg) {
    Out::stderr()
        .s("klpctl: ")
        .s(why.text())
        .s(": failing closed (klpctl.enable=0)\n");
}

/// The tasks holding a transition up, one line each.
pub fn blockers_human(o: &mut Out, b: &Blockers) {
    for t in &b.list {
        o.s("  blocking task: pid ")
            .b(&t.tid)
            .s(" (")
            .text(&t.comm)
            .s(") in ")
            .text(&t.stack)
            .nl();
    }
    if b.total == 0 {
        // The kernel also waits for each CPU's idle task (swapper/N, pid
        // 0), which /proc does not list.
        o.s("  blocking task: swapper/N (per-CPU idle task, not in /proc)\n");
    }
    if b.total > b.list.len() {
        o.s("  ... and ")
            .u((b.total - b.list.len()) as u64)
            .s(" more blocking tasks")
            .nl();
    }
}

/// The manifest as a JSON object.
pub fn manifest_json(j: &mut Json, m: &Manifest) {
    j.obj().key("name").str(m.name.as_bytes());
    j.key("stream").str(m.stream.as_bytes());
    j.key("version").u(m.version);
    j.key("release").str(m.release.as_bytes());
    j.key("build_id");
    if m.build_id.is_empty() {
        j.null();
    } else {
        j.hex(&m.build_id);
    }
    j.key("arch").str(m.arch.as_bytes());
    j.key("replace").bool(m.replace);
    for (k, list) in [("cves", &m.cves), ("products", &m.products)] {
        j.key(k).arr();
        for c in list {
            j.str(c.as_bytes());
        }
        j.end_arr();
    }
    // The stored description is already valid JSON string content.
    j.key("description").escaped(m.description);
    j.key("created").u(m.created);
    j.key("payload_size").u(m.payload_size);
    j.key("payload_sha256").hex(&m.payload_sha256).end_obj();
}

/// The manifest for people (`verify`, `info`).
pub fn manifest_human(o: &mut Out, m: &Manifest) {
    o.s("  kernel:  ").s(m.release).s(" ").s(m.arch);
    if !m.build_id.is_empty() {
        o.s(" build-id ").hex(&m.build_id);
    }
    o.nl();
    o.s("  replace: ")
        .s(if m.replace { "yes (cumulative)" } else { "no" })
        .nl();
    for (k, list) in [("  cves:   ", &m.cves), ("  products:", &m.products)] {
        if !list.is_empty() {
            o.s(k);
            for c in list {
                o.s(" ").s(c);
            }
            o.nl();
        }
    }
    if !m.description.is_empty() {
        o.s("  description: ");
        manifest::write_description(o, m.description);
        o.nl();
    }
    o.s("  created: ").u(m.created).nl();
    o.s("  payload: ")
        .u(m.payload_size)
        .s(" bytes, sha256 ")
        .hex(&m.payload_sha256)
        .nl();
}

/// The signature verdict as JSON members of the current object.
pub fn verdict_json(j: &mut Json, v: &Verdict) {
    j.key("threshold").u(v.threshold as u64);
    j.key("valid_keys").u(v.valid as u64);
    j.key("signatures").arr();
    for (id, st) in &v.sigs {
        j.obj().key("key_id").hex(id);
        j.key("status").str(st.word().as_bytes()).end_obj();
    }
    j.end_arr();
}

/// The signature verdict for people.
pub fn verdict_human(o: &mut Out, v: &Verdict) {
    o.s("  signatures: ")
        .u(v.valid as u64)
        .s(" valid distinct trusted key(s), threshold ")
        .u(v.threshold as u64)
        .nl();
    for (id, st) in &v.sigs {
        o.s("    key ").hex(id).s(" ").s(st.word()).nl();
    }
}

/// One bundle for people: `NAME: applied (...)`, or `already applied`, the
/// modules of replaced patches it removed, and for `install` where it is
/// stored.
pub fn done_human(path: &[u8], a: Option<&Applied>, inst: Option<&Installed>) {
    let mut o = Out::stdout();
    if let Some(a) = a {
        let already = a.outcome == Outcome::Already;
        o.s(&a.name).s(if already {
            ": already applied ("
        } else {
            ": applied ("
        });
        stream_version(&mut o, &a.stream, a.version);
        if !already {
            o.s(", ").u(a.ms).s(" ms");
        }
        o.s(")").nl();
        for r in &a.removed {
            o.s(&a.name).s(": removed replaced module ").s(r).nl();
        }
    }
    if let Some(p) = inst.and_then(|i| i.stored.as_ref()) {
        o.b(path).s(": installed as ").b(p.bytes());
        if a.is_none() {
            o.s(" (for another kernel: not applied now)");
        }
        o.nl();
    }
}

/// `stream S version V`, as each human form names a patch's place.
pub fn stream_version(o: &mut Out, stream: &str, version: u64) {
    o.s("stream ").s(stream).s(" version ").u(version);
}

/// One bundle's entry in `apply --json`'s (or `install --json`'s)
/// `results`. An install says whether it was applied now (`applied`:
/// null for another kernel), where it is `stored` (null when it is live
/// but could not be stored: exit 10).
pub fn done_json(j: &mut Json, path: &[u8], a: Option<&Applied>, inst: Option<&Installed>) {
    j.obj().key("bundle").str(path).key("result");
    j.str(
        match (a.map(|a| a.outcome), inst.map(|i| i.stored.is_some())) {
            (_, Some(true)) => b"installed",
            (Some(Outcome::Applied), _) => b"applied",
            _ => b"already applied",
        },
    );
    if let Some(i) = inst {
        j.key("applied").opt_str(a.map(|a| {
            if a.outcome == Outcome::Applied {
                b"applied" as &[u8]
            } else {
                b"already applied"
            }
        }));
        j.key("stored")
            .opt_str(i.stored.as_ref().map(PathBuf::bytes));
    }
    j.key("removed").arr();
    for r in a.iter().flat_map(|a| a.removed.iter()) {
        j.str(r.as_bytes());
    }
    j.end_arr();
    // Live, but klpctl's state was not saved: say both.
    if let Some(e) = a.and_then(|a| a.unsaved) {
        j.key("exit").u(e.exit_code() as u64);
        j.key("warning").error(e);
    }
    j.end_obj();
}

/// One bundle that failed, in `apply --json`'s `results`.
pub fn failed_json(j: &mut Json, path: &[u8], f: &Failure) {
    j.obj().key("bundle").str(path).key("result").str(b"failed");
    j.key("exit").u(f.error.exit_code() as u64);
    j.key("error").error(f.error);
    j.key("detail").str(f.detail.bytes()).end_obj();
}

/// What follows the path of a bundle `apply --dir` skipped.
const SKIPPED: &str = ": skipped: ";

/// One file `apply --dir` skipped: `None` when there were more than 64
/// bundles. On stdout (a bundle for another kernel, unless JSON) or stderr,
/// and in the JSON results.
pub fn skipped(j: &mut Json, json: bool, path: &[u8], f: Option<&Failure>) {
    j.obj()
        .key("bundle")
        .str(path)
        .key("result")
        .str(b"skipped");
    let Some(f) = f else {
        const LIMIT: &str = "more than 64 bundles to apply";
        j.key("reason")
            .str(b"limit")
            .key("error")
            .str(LIMIT.as_bytes())
            .end_obj();
        Out::stderr()
            .s("klpctl: warning: ")
            .b(path)
            .s(SKIPPED)
            .s(LIMIT)
            .nl();
        return;
    };
    let other_kernel = f.error.exit_code() == 4;
    j.key("reason").str(match f.error {
        Error::Quarantined => b"quarantined",
        Error::SkippedBySwitch => b"klpctl.skip",
        _ if other_kernel => b"other kernel",
        _ => b"rejected",
    });
    j.key("error").error(f.error);
    j.key("detail").str(f.detail.bytes()).end_obj();
    if !other_kernel {
        report(path, f);
    } else if !json {
        Out::stdout()
            .b(path)
            .s(SKIPPED)
            .error(f.error)
            .s(": ")
            .b(f.detail.bytes())
            .nl();
    }
}

/// The closing members of an `apply --json` object, after its results.
pub fn apply_end_json(j: &mut Json, changed: bool, e: Option<&Error>) {
    j.end_arr().key("changed").bool(changed);
    j.key("exit").u(e.map_or(0, |e| e.exit_code()) as u64);
}

/// `disable`'s (and `uninstall`'s, with the bundles it `removed`) result,
/// human or JSON.
pub fn disabled(name: &[u8], r: &Result<bool, Error>, removed: Option<usize>, json: bool) {
    let word: &[u8] = match r {
        Ok(true) => b"disabled",
        Ok(false) => b"not applied",
        Err(_) => b"failed",
    };
    let mut o = Out::stdout();
    if json {
        let mut j = Json::new(&mut o);
        j.obj().key("name").str(name).key("result").str(word);
        if let Some(n) = removed {
            j.key("removed").u(n as u64);
        }
        j.key("changed")
            .bool(matches!(r, Ok(true)) || removed.is_some_and(|n| n > 0));
        j.key("exit")
            .u(r.map_or_else(|e| e.exit_code(), |_| 0) as u64);
        if let Err(e) = r {
            j.key("error").error(*e);
        }
        j.end_obj().nl();
    } else if r.is_ok() {
        if let Some(n) = removed {
            o.b(name)
                .s(": removed ")
                .u(n as u64)
                .s(" bundle(s) from the directory\n");
        }
        o.b(name).s(": ").b(word).nl();
    }
}
