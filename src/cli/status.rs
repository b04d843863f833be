//! `status`: one walk over what the kernel and klpctl's records say
//! ([`walk`]) tells each fact, in order, to one form: [`Human`] for people
//! or [`Json`] for `--json`. Only the form asked for is written.
#![forbid(unsafe_code)]

use super::render::{blockers_human, stream_version};
use crate::error::Result;
use crate::guard::{self, Entry};
use crate::json::Json;
use crate::kernel::transition::Blockers;
use crate::ops::status::{self, Facts, Patch};
use crate::out::Out;
use crate::state::Record;
use core::ffi::CStr;

/// `status`, in the form `--json` asks for, on stdout. A crash-loop guard
/// that cannot be read is an error once the rest is said.
pub fn status(f: &Facts, state_dir: Option<&CStr>, json: bool) -> Result<()> {
    let mut o = Out::stdout();
    if json {
        walk(f, state_dir, &mut Json::new(&mut o))
    } else {
        walk(f, state_dir, &mut Human(o))
    }
}

/// A form of `status`: what it writes for each fact, told by [`walk`] in
/// the order of the methods here. A group (the patches, a patch's objects,
/// an object's functions, ...) is closed by its [`End`].
trait Form {
    /// The running kernel: always first.
    fn kernel(&mut self, f: &Facts);
    /// A patch in `/sys/kernel/livepatch`; its objects follow.
    fn patch(&mut self, p: &Patch);
    /// An object (`vmlinux` or a module) the patch patches, and whether it
    /// is patched now (`None` before 6.1); its functions follow.
    fn object(&mut self, name: &[u8], patched: Option<bool>);
    /// A function (`name,sympos`) the patch replaces in the object.
    fn function(&mut self, func: &[u8]);
    /// After a patch's objects: what klpctl recorded of it, and the tasks
    /// holding up its transition. The patch is then all told.
    fn recorded(&mut self, p: &Patch);
    /// A part of the effective patch level, what `klpctl vex` claims: a
    /// live patch klpctl applied (applied, enabled, no transition). A
    /// cumulative stream has one; a non-cumulative one may have several.
    fn claim(&mut self, r: &Record);
    /// A livepatch module still loaded whose patch is gone.
    fn leftover(&mut self, name: &[u8]);
    /// The crash-loop guard (`--state-dir`): read, and its quarantined
    /// payloads follow; or it cannot be read, which is told, never shown
    /// as "none".
    fn guard(&mut self, read: Result<()>);
    /// A payload the crash-loop guard quarantined.
    fn quarantined(&mut self, e: &Entry);
    /// A group is all told.
    fn end(&mut self, group: End);
}

/// A group of facts [`walk`] has told in full.
enum End {
    /// An object's functions.
    Object,
    /// A patch's objects (what klpctl recorded of the patch follows).
    Objects,
    /// The patches: `n` of them.
    Patches(usize),
    /// The patch level: `n` claims.
    Claims(usize),
    /// The leftover modules.
    Leftovers,
    /// The quarantined payloads.
    Quarantine,
    /// All of `status`: always last.
    Status,
}

/// Tells every fact of `status` to `form`, in order. A patch list that
/// cannot be read ends it there; a crash-loop guard that cannot be read is
/// told, then returned.
fn walk(f: &Facts, state_dir: Option<&CStr>, form: &mut dyn Form) -> Result<()> {
    form.kernel(f);
    let mut n = 0;
    if f.livepatch {
        status::each_patch(&mut |p| {
            form.patch(p);
            status::each_object(p.name, &mut |ob, patched| {
                form.object(ob, patched);
                status::each_function(p.name, ob, &mut |func| form.function(func));
                form.end(End::Object);
            });
            form.end(End::Objects);
            form.recorded(p);
            n += 1;
        })?;
    }
    form.end(End::Patches(n));
    let mut n = 0;
    let _ = crate::ops::vex::each_claim(&mut |r| {
        form.claim(r);
        n += 1;
    });
    form.end(End::Claims(n));
    status::each_leftover(&mut |name| form.leftover(name));
    form.end(End::Leftovers);
    let mut result = Ok(());
    if let Some(sd) = state_dir {
        let mut buf = [0; guard::MAX_GUARD];
        match guard::load(sd.to_bytes(), &mut buf) {
            Ok(g) => {
                form.guard(Ok(()));
                for e in g.each_quarantined() {
                    form.quarantined(&e);
                }
                form.end(End::Quarantine);
            }
            Err(e) => {
                form.guard(Err(e));
                result = Err(e);
            }
        }
    }
    form.end(End::Status);
    result
}

/// `status` for people. The ends of groups have no text of their own but
/// where a group was empty; an unreadable guard is the error klpctl
/// reports on stderr.
struct Human(Out<'static>);

impl Form for Human {
    fn kernel(&mut self, f: &Facts) {
        let (h, k) = (&mut self.0, &f.kernel);
        h.s("kernel: ")
            .s(&k.release)
            .s(" ")
            .s(&k.machine)
            .s(" build-id ");
        if k.build_id.is_empty() {
            h.s("unknown");
        } else {
            h.hex(&k.build_id);
        }
        h.nl()
            .s("livepatch: ")
            .s(if f.livepatch {
                "supported"
            } else {
                "not supported"
            })
            .s(", lockdown: ")
            .s(f.lockdown.as_ref().map_or("n/a", |l| l.as_str()));
        h.s(", taint: ").u(f.taint);
        if !f.taint_flags.is_empty() {
            h.s(" (").b(&f.taint_flags).s(")");
        }
        h.nl();
    }

    fn patch(&mut self, p: &Patch) {
        let h = &mut self.0;
        h.s("patch ")
            .b(p.name)
            .s(": ")
            .s(if p.enabled { "enabled" } else { "disabled" });
        if p.transition {
            h.s(", in transition");
        }
        if p.replace == Some(true) {
            h.s(", replace");
        }
        if let Some(o) = p.stack_order {
            h.s(", stack order ").i(o);
        }
        h.nl();
    }

    fn object(&mut self, name: &[u8], patched: Option<bool>) {
        self.0.s("  object ").b(name).s(match patched {
            Some(true) => ": patched",
            Some(false) => ": not loaded",
            None => "",
        });
        self.0.s(", functions:");
    }

    fn function(&mut self, func: &[u8]) {
        self.0.s(" ").b(func);
    }

    fn claim(&mut self, r: &Record) {
        let h = &mut self.0;
        h.s("patch level: ");
        stream_version(h, r.stream, r.version);
        h.s(" (").s(r.name).s("), fixes ").s(if r.cves.is_empty() {
            "no listed CVE"
        } else {
            r.cves
        });
        h.nl();
    }

    fn leftover(&mut self, name: &[u8]) {
        self.0
            .s("leftover module (its patch is gone): ")
            .b(name)
            .nl();
    }

    fn quarantined(&mut self, e: &Entry) {
        self.0
            .s("quarantined: ")
            .b(e.name)
            .s(" stream ")
            .b(e.stream)
            .s(" version ")
            .b(e.version)
            .s(", sha256 ")
            .b(e.sha256)
            .s(" (boot ")
            .b(e.boot_id)
            .s(" crashed)\n");
    }

    fn guard(&mut self, _: Result<()>) {}

    fn recorded(&mut self, p: &Patch) {
        record_human(&mut self.0, p)
    }

    fn end(&mut self, group: End) {
        let h = &mut self.0;
        match group {
            End::Object => {
                h.nl();
            }
            End::Patches(0) => {
                h.s("no livepatches applied").nl();
            }
            End::Claims(0) => {
                h.s("patch level: no patch applied by klpctl is live").nl();
            }
            _ => {}
        }
    }
}

/// What klpctl recorded of patch `p`, and the tasks holding up its
/// transition, for people.
fn record_human(h: &mut Out, p: &Patch) {
    match &p.record {
        Some(r) => {
            h.s("  klpctl: ");
            stream_version(h, r.stream, r.version);
            h.s(", sha256 ").s(r.sha256).s(", keys ").s(r.keys);
            if !r.cves.is_empty() {
                h.s(", cves ").s(r.cves);
            }
            h.s(", applied at ")
                .u(r.time)
                .s(" (")
                .s(r.state)
                .s(")")
                .nl();
        }
        None => {
            h.s("  klpctl: no record this boot").nl();
        }
    }
    if let Some(b) = &p.blockers {
        blockers_human(h, b);
    }
}

/// `status --json`: all the facts make one object.
impl Form for Json<'_, '_> {
    fn kernel(&mut self, f: &Facts) {
        let (j, k) = (self, &f.kernel);
        j.obj().key("kernel").obj();
        j.key("release").str(k.release.as_bytes());
        j.key("machine").str(k.machine.as_bytes());
        j.key("build_id");
        if k.build_id.is_empty() {
            j.null();
        } else {
            j.hex(&k.build_id);
        }
        j.key("livepatch").bool(f.livepatch);
        j.key("lockdown")
            .opt_str(f.lockdown.as_ref().map(|l| l.as_bytes()));
        j.key("taint").u(f.taint);
        j.key("taint_flags").str(&f.taint_flags);
        j.end_obj().key("patches").arr();
    }

    fn patch(&mut self, p: &Patch) {
        let j = self;
        j.obj().key("name").str(p.name);
        j.key("enabled").bool(p.enabled);
        j.key("transition").bool(p.transition);
        j.key("replace");
        match p.replace {
            Some(r) => j.bool(r),
            None => j.null(),
        };
        j.key("stack_order");
        match p.stack_order {
            Some(o) => j.i(o),
            None => j.null(),
        };
        j.key("objects").arr();
    }

    fn object(&mut self, name: &[u8], patched: Option<bool>) {
        self.obj().key("name").str(name).key("patched");
        match patched {
            Some(v) => self.bool(v),
            None => self.null(),
        };
        self.key("functions").arr();
    }

    fn function(&mut self, func: &[u8]) {
        self.str(func);
    }

    fn claim(&mut self, r: &Record) {
        let j = self;
        j.obj().key("stream").str(r.stream.as_bytes());
        j.key("version").u(r.version).key("patch");
        j.str(r.name.as_bytes()).key("cves");
        list(j, r.cves);
        j.end_obj();
    }

    fn leftover(&mut self, name: &[u8]) {
        self.str(name);
    }

    fn guard(&mut self, read: Result<()>) {
        match read {
            Ok(()) => self.key("quarantined").arr(),
            Err(e) => self.key("guard_error").error(e),
        };
    }

    fn quarantined(&mut self, e: &Entry) {
        let num = |b: &[u8]| crate::codec::parse_u64(b).unwrap_or(0);
        let j = self;
        j.obj().key("name").str(e.name).key("stream").str(e.stream);
        j.key("version")
            .u(num(e.version))
            .key("sha256")
            .str(e.sha256);
        j.key("boot_id")
            .str(e.boot_id)
            .key("time")
            .u(num(e.time))
            .end_obj();
    }

    fn recorded(&mut self, p: &Patch) {
        record_json(self, p)
    }

    fn end(&mut self, group: End) {
        // Each group but the whole is an array; the next member follows.
        if let End::Status = group {
            self.end_obj().nl();
            return;
        }
        self.end_arr();
        match group {
            End::Object => {
                self.end_obj();
            }
            End::Patches(_) => {
                self.key("patch_level").arr();
            }
            End::Claims(_) => {
                self.key("leftover").arr();
            }
            _ => {}
        }
    }
}

/// The rest of patch `p`'s JSON object, after its objects: what klpctl
/// recorded of it, and the tasks holding up its transition.
fn record_json(j: &mut Json, p: &Patch) {
    j.key("record");
    match &p.record {
        Some(r) => {
            j.obj().key("stream").str(r.stream.as_bytes());
            j.key("version").u(r.version);
            j.key("sha256").str(r.sha256.as_bytes());
            j.key("keys");
            list(j, r.keys);
            j.key("cves");
            list(j, r.cves);
            j.key("replace").bool(r.replace);
            j.key("time").u(r.time);
            j.key("state").str(r.state.as_bytes()).end_obj();
        }
        None => {
            j.null();
        }
    }
    j.key("blocking");
    blockers(j, p.blockers.as_ref());
    j.end_obj();
}

/// The tasks holding a transition up, as a JSON array.
fn blockers(j: &mut Json, b: Option<&Blockers>) {
    j.arr();
    for t in b.iter().flat_map(|b| b.list.iter()) {
        j.obj().key("pid");
        // tid is decimal digits, as /proc names it.
        j.i(crate::codec::parse_u64(&t.tid).unwrap_or(0) as i64);
        j.key("comm")
            .str(&t.comm)
            .key("stack")
            .str(&t.stack)
            .end_obj();
    }
    j.end_arr();
}

/// A comma-separated list as a JSON array of strings.
fn list(j: &mut Json, list: &str) {
    j.arr();
    for x in list.split(',').filter(|x| !x.is_empty()) {
        j.str(x.as_bytes());
    }
    j.end_arr();
}
