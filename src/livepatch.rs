//! The kernel side: loading livepatch modules through a sealed memfd,
//! driving `/sys/kernel/livepatch` transitions, reverting on timeout,
//! removing replaced modules, and the `apply`, `disable` and `status`
//! commands.
#![forbid(unsafe_code)]

use crate::cli::{self, Args, Cli};
use crate::error::{Context, Error, Result};
use crate::files::FileSource;
use crate::files::{self, PathBuf};
use crate::kernel::Running;
use crate::out::Out;
use crate::state;
use crate::trust::bundle::{self, Signed};
use crate::trust::keys::{KeyId, Keyring, SigStatus};
use crate::trust::manifest::MAX_MANIFEST;
use core::ffi::CStr;
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;

const LP: &[u8] = b"/sys/kernel/livepatch/";
const SYSMOD: &[u8] = b"/sys/module/";
/// How long a changing command waits for another klpctl's lock.
const LOCK_WAIT_S: u64 = 300;
/// Most blocking tasks listed.
const MAX_BLOCKERS: usize = 16;

fn lp_attr(name: &[u8], attr: &[u8]) -> Result<PathBuf> {
    if attr.is_empty() {
        PathBuf::of(&[LP, name])
    } else {
        PathBuf::of(&[LP, name, b"/", attr])
    }
}

fn mod_attr(name: &[u8], attr: &[u8]) -> Result<PathBuf> {
    PathBuf::of(&[SYSMOD, name, b"/", attr])
}

/// Whether `/sys/kernel/livepatch/<name>` exists.
fn active(name: &[u8]) -> bool {
    lp_attr(name, b"").is_ok_and(|p| files::exists(p.c()))
}

/// Whether a loadable module `name` is loaded (only loadable modules have
/// `refcnt`).
fn loaded(name: &[u8]) -> bool {
    mod_attr(name, b"refcnt").is_ok_and(|p| files::exists(p.c()))
}

fn read_attr(name: &[u8], attr: &[u8]) -> Option<i64> {
    files::read_i64(lp_attr(name, attr).ok()?.c())
}

/// The transition of patch `name` finished (or the patch vanished).
fn settled(name: &[u8]) -> bool {
    read_attr(name, b"transition") != Some(1)
}

/// Whether `name` is the only patch in `/sys/kernel/livepatch`.
fn only_patch(name: &[u8]) -> bool {
    let mut only = true;
    let _ = files::each_entry(c"/sys/kernel/livepatch", "livepatch", |n, _| {
        only &= n.to_bytes() == name;
        Ok(())
    });
    only
}

/// Is any patch in transition? Returns its name.
fn any_in_transition(buf: &mut [u8; 64]) -> Option<usize> {
    let mut found = None;
    let _ = files::each_entry(c"/sys/kernel/livepatch", "livepatch", |n, _| {
        if found.is_none() && read_attr(n.to_bytes(), b"transition") == Some(1) {
            let b = n.to_bytes();
            let len = b.len().min(64);
            buf[..len].copy_from_slice(&b[..len]);
            found = Some(len);
        }
        Ok(())
    });
    found
}

/// Lists the tasks whose `patch_state` differs from `target` (1 when
/// enabling, 0 when disabling): pid, comm, and the top frame of their
/// kernel stack. Writes human lines to `o` and, when `json` is given, a JSON
/// array. Returns how many were found.
fn list_blockers(o: &mut Out, target: i64, mut json: Option<&mut Out>) -> usize {
    let mut count = 0;
    if let Some(j) = json.as_deref_mut() {
        j.s("[");
    }
    let _ = files::each_entry(c"/proc", "proc", |pid, _| {
        let pb = pid.to_bytes();
        if !pb.iter().all(u8::is_ascii_digit) {
            return Ok(());
        }
        let Ok(tdir) = PathBuf::of(&[b"/proc/", pb, b"/task"]) else {
            return Ok(());
        };
        let _ = files::each_entry(tdir.c(), "task", |tid, _| {
            let tb = tid.to_bytes();
            let base = |attr: &[u8]| PathBuf::of(&[b"/proc/", pb, b"/task/", tb, b"/", attr]);
            let Ok(ps) = base(b"patch_state") else {
                return Ok(());
            };
            let st = files::read_i64(ps.c());
            if st.is_none_or(|s| s == -1 || s == target) {
                return Ok(());
            }
            count += 1;
            if count > MAX_BLOCKERS {
                return Ok(());
            }
            let mut comm = [0u8; 64];
            let comm = base(b"comm")
                .ok()
                .and_then(|p| files::read_small(p.c(), &mut comm, "comm").ok())
                .unwrap_or(b"?");
            let comm = comm.trim_ascii_end();
            let mut stack = [0u8; 4096];
            let stack = base(b"stack")
                .ok()
                .and_then(|p| files::read_small(p.c(), &mut stack, "stack").ok())
                .unwrap_or(b"");
            // The top three frames: the sleeping primitive alone rarely says
            // which patched function holds the task.
            let mut frames: heapless::Vec<u8, 256> = heapless::Vec::new();
            for f in stack
                .split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .take(3)
            {
                let f = f.trim_ascii();
                let f = f.iter().position(|&c| c == b' ').map_or(f, |i| &f[i + 1..]);
                if !frames.is_empty() {
                    let _ = frames.extend_from_slice(b" < ");
                }
                let _ = frames.extend_from_slice(&f[..f.len().min(80)]);
            }
            o.s("  blocking task: pid ")
                .b(tb)
                .s(" (")
                .text(comm)
                .s(") in ")
                .text(&frames)
                .nl();
            if let Some(j) = json.as_deref_mut() {
                j.s(if count > 1 { ",{\"pid\":" } else { "{\"pid\":" })
                    .b(tb);
                j.s(",\"comm\":")
                    .json_str(comm)
                    .s(",\"stack\":")
                    .json_str(&frames)
                    .s("}");
            }
            Ok(())
        });
        Ok(())
    });
    if count == 0 {
        // The kernel also waits for each CPU's idle task (swapper/N, pid
        // 0), which /proc does not list, and re-checks only once a second.
        o.s("  no task in /proc blocks it: per-CPU idle tasks (swapper/N, not in /proc) on busy CPUs do\n");
    }
    if count > MAX_BLOCKERS {
        o.s("  ... and ")
            .u((count - MAX_BLOCKERS) as u64)
            .s(" more blocking tasks")
            .nl();
    }
    if let Some(j) = json {
        j.s("]");
    }
    count
}

/// Reads `/sys/module/<name>/refcnt`.
fn refcnt(name: &[u8]) -> Option<i64> {
    files::read_i64(mod_attr(name, b"refcnt").ok()?.c())
}

/// Unloads livepatch module `name` once its sysfs directory is gone and its
/// reference count is 0, as the kernel's own selftests do; waits until
/// `deadline`. `delete_module` is non-blocking (`O_NONBLOCK`), never forced.
fn unload(name: &[u8], deadline: u64) -> Result<()> {
    let cname = PathBuf::of(&[name])?;
    let ready = crate::rt::poll(deadline, || {
        !active(name) && refcnt(name).is_none_or(|r| r == 0)
    });
    if !ready {
        return Err(Error::Stuck(
            "module cannot be removed: its livepatch is still active or it is still referenced",
        ));
    }
    let flags = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    let mut last = Errno::BUSY;
    let ok = crate::rt::poll(deadline, || {
        match rustix::system::delete_module(cname.c(), flags) {
            Ok(()) | Err(Errno::NOENT) => true,
            Err(e) => {
                last = e;
                false
            }
        }
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Io("delete_module failed", last))
    }
}

/// Livepatch modules that are loaded but whose patch is no longer in
/// `/sys/kernel/livepatch`: what an atomic replace (or a disable that was
/// interrupted) leaves behind. Livepatch modules carry taint `K`.
fn leftovers(mut f: impl FnMut(&[u8])) {
    let _ = files::each_entry(c"/sys/module", "sysmodule", |m, _| {
        let mb = m.to_bytes();
        if is_livepatch_module(mb) && !active(mb) {
            f(mb);
        }
        Ok(())
    });
}

/// Whether loaded module `name` is a livepatch module (taint flag `K` in
/// `/sys/module/<name>/taint`). klpctl only ever unloads such modules, so
/// a name that collides with an ordinary driver never takes the driver out.
fn is_livepatch_module(name: &[u8]) -> bool {
    let mut buf = [0u8; 64];
    mod_attr(name, b"taint")
        .ok()
        .and_then(|p| files::read_small(p.c(), &mut buf, "taint").ok())
        .is_some_and(|t| t.contains(&b'K'))
}

/// `/dev/kmsg` positioned at its end, to quote what the kernel logs about a
/// failed load.
struct Kmsg(Option<OwnedFd>);

impl Kmsg {
    fn open() -> Kmsg {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::open(
            c"/dev/kmsg",
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok();
        if let Some(fd) = &fd {
            let _ = rustix::fs::seek(fd, rustix::fs::SeekFrom::End(0));
        }
        Kmsg(fd)
    }

    /// Prints the kernel log lines logged since `open` (the few
    /// milliseconds of the failed load; at most 16). Not every reason names
    /// the module ("Loading of unsigned module is rejected"), so nothing is
    /// filtered out.
    fn quote(&self, o: &mut Out) {
        let Some(fd) = &self.0 else { return };
        let mut rec = [0u8; 1024];
        for _ in 0..16 {
            let n = match rustix::io::read(fd, &mut rec) {
                Ok(n) => n,
                Err(Errno::PIPE) | Err(Errno::INTR) => continue,
                Err(_) => break,
            };
            let line = &rec[..n];
            let msg = line
                .iter()
                .position(|&c| c == b';')
                .map_or(line, |i| &line[i + 1..]);
            let msg = msg.split(|&c| c == b'\n').next().unwrap_or(b"");
            o.s("  kernel: ").text(msg).nl();
        }
    }
}

/// Writes one `klpctl: ...` audit line to the kernel log.
fn audit(parts: &[&[u8]]) {
    use rustix::fs::{Mode, OFlags};
    if let Ok(fd) = rustix::fs::open(
        c"/dev/kmsg",
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        let mut o = Out::to(Some(fd.as_fd()));
        o.s("klpctl: ");
        for p in parts {
            o.b(p);
        }
        o.nl();
    }
}

/// Copies the payload into a sealed memfd and checks the SHA-256 of
/// exactly the sealed bytes, so what the kernel loads is what was verified.
fn seal_payload(src: &FileSource<&OwnedFd>, signed: &Signed) -> Result<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let memfd = rustix::fs::memfd_create(
        c"klpctl-payload",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .ctx("memfd_create failed")?;
    let len = signed.header.payload_len;
    files::copy_range(
        src.fd,
        signed.header.payload_offset(),
        len,
        Error::Digest,
        "cannot read bundle",
        |c| crate::sys::write_all(memfd.as_fd(), c).ctx("cannot write memfd"),
    )?;
    rustix::fs::fcntl_add_seals(
        &memfd,
        SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
    )
    .ctx("cannot seal memfd")?;
    let sealed = files::sha256_range(&memfd, 0, len, Error::Digest, "cannot read memfd")?;
    let size = files::regular_size(&memfd, "cannot stat memfd")?;
    if sealed != signed.manifest.payload_sha256 || size != len {
        return Err(Error::Digest);
    }
    Ok(memfd)
}

/// Loads a sealed module image: `finit_module` on the memfd, or, where the
/// kernel will not load from a memfd, `init_module` on a read-only mapping
/// of the same sealed bytes.
fn load(memfd: &OwnedFd, len: u64) -> Result<()> {
    match rustix::system::finit_module(memfd, c"", 0) {
        Ok(()) => Ok(()),
        Err(Errno::NOSYS) | Err(Errno::BADF) | Err(Errno::NOTSUP) => {
            let len = usize::try_from(len).map_err(|_| Error::Digest)?;
            let map = crate::sys::Mapping::sealed_read_only(memfd, len).ctx("cannot map memfd")?;
            rustix::system::init_module(map.bytes(), c"").map_err(Error::KernelRefused)
        }
        Err(e) => Err(Error::KernelRefused(e)),
    }
}

/// Options of `apply`.
struct ApplyOpts {
    timeout_ms: u64,
    keyring: Option<&'static CStr>,
    allow_downgrade: bool,
    state_dir: Option<&'static CStr>,
    lock_wait_s: u64,
    json: bool,
}

/// What happened to one bundle.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    Already,
}

fn check_kernel(cli: &mut Cli, m: &crate::trust::manifest::Manifest, k: &Running) -> Result<()> {
    if m.release != k.release.as_str() {
        cli.detail(&[
            b"bundle is for ",
            m.release.as_bytes(),
            b", running ",
            k.release.as_bytes(),
        ]);
        return Err(Error::WrongKernel("not for this kernel: release differs"));
    }
    if m.arch != k.machine.as_str() {
        cli.detail(&[
            b"bundle is for ",
            m.arch.as_bytes(),
            b", running ",
            k.machine.as_bytes(),
        ]);
        return Err(Error::WrongKernel(
            "not for this kernel: architecture differs",
        ));
    }
    if !m.build_id.is_empty() && m.build_id[..] != k.build_id[..] {
        let mut a = [0u8; 128];
        let mut b = [0u8; 128];
        let ha = crate::codec::hex_encode(&m.build_id, &mut a).unwrap_or(b"?");
        let hb = if k.build_id.is_empty() {
            b"unknown" as &[u8]
        } else {
            crate::codec::hex_encode(&k.build_id, &mut b).unwrap_or(b"?")
        };
        cli.detail(&[b"bundle build-id ", ha, b", running ", hb]);
        return Err(Error::WrongKernel(
            "not for this kernel: build-id differs (another build of this release)",
        ));
    }
    Ok(())
}

fn valid_keys(v: &crate::trust::keys::Verdict) -> heapless::Vec<KeyId, 4> {
    v.sigs
        .iter()
        .filter(|s| s.1 == SigStatus::Valid)
        .map(|s| s.0)
        .collect()
}

/// Applies one verified bundle. Prints human progress on stdout unless
/// JSON was asked for; returns the outcome and the modules it removed. A
/// failure to save klpctl's own state after the patch went live does not
/// make the apply fail: it lands in `unsaved` (exit 10), because the patch
/// is live and saying otherwise would be a lie.
fn apply_one(
    cli: &mut Cli,
    path: &CStr,
    ring: &Keyring,
    k: &Running,
    opts: &ApplyOpts,
    removed: &mut heapless::Vec<heapless::String<56>, 8>,
    unsaved: &mut Option<Error>,
) -> Result<Outcome> {
    let t0 = crate::rt::now_ms();
    // One bound for every wait of this bundle (another transition, its own
    // transition, module removal), counted from here: time spent inside
    // finit_module, which cannot be interrupted, counts against it too.
    let deadline = t0 + opts.timeout_ms;
    cli.ctx(path.to_bytes());
    let fd = files::open_ro(path, "cannot open bundle")?;
    let src = FileSource::new(&fd, "cannot read bundle")?;
    let mut mbuf = [0u8; MAX_MANIFEST];
    let (_, signed) = bundle::read(&src, &mut mbuf)?.authenticate(ring);
    let signed = signed?;
    let m = &signed.manifest;
    check_kernel(cli, m, k)?;
    let name = m.name.as_bytes();
    let keys = valid_keys(&signed.verdict);
    let record = state::NewRecord {
        manifest: m,
        keys: &keys,
        time: crate::rt::unix_time(),
    };
    let save = |state: &str, unsaved: &mut Option<Error>| {
        if let Err(e) = state::write_record(&record, state).and_then(|_| {
            state::raise_floor(
                m.stream,
                m.version,
                m.replace,
                opts.state_dir,
                opts.allow_downgrade,
            )
        }) {
            *unsaved = Some(e.unsaved());
        }
    };

    // Idempotence and conflicts.
    if active(name) {
        let mut rbuf = [0u8; state::MAX_RECORD];
        let rec = state::read_record(m.name, &mut rbuf);
        let loading = rec.as_ref().is_some_and(|r| r.state == "loading");
        let same = rec.is_some_and(|r| {
            let mut hex = [0u8; 64];
            crate::codec::hex_encode(&m.payload_sha256, &mut hex)
                .is_some_and(|h| h == r.sha256.as_bytes())
        });
        // "Already applied" must still mean "this bundle verifies", payload
        // included, exactly as verify would say.
        signed.check_payload(&src)?;
        if !same {
            // No valid record of this boot that says it is this payload: a
            // damaged record proves nothing, so it counts as none.
            let mut hex = [0u8; 64];
            cli.detail(&[
                b"bundle sha256 ",
                crate::codec::hex_encode(&m.payload_sha256, &mut hex).unwrap_or(b""),
            ]);
            return Err(Error::Conflict(
                "a livepatch of this name is loaded without a valid klpctl record of this payload; disable it first",
            ));
        }
        if read_attr(name, b"enabled") != Some(1) {
            return Err(Error::Conflict(
                "this livepatch is being disabled right now; retry when that finishes",
            ));
        }
        wait_or_revert(
            name,
            deadline,
            opts.timeout_ms,
            " (from an earlier run) did not finish; reverting",
        )?;
        if loading {
            // An earlier klpctl was killed before it could finish: finish
            // its cleanup and its record.
            if m.replace {
                remove_replaced(name, deadline, removed);
            }
            save("applied", unsaved);
        } else if let Err(e) = state::raise_floor(
            m.stream,
            m.version,
            m.replace,
            opts.state_dir,
            opts.allow_downgrade,
        ) {
            *unsaved = Some(e.unsaved());
        }
        if !opts.json {
            let mut o = Out::stdout();
            o.b(name)
                .s(": already applied (stream ")
                .s(m.stream)
                .s(" version ")
                .u(m.version)
                .s(")")
                .nl();
        }
        return Ok(Outcome::Already);
    }
    // Rollback protection, before anything is touched. A floor that cannot
    // be read refuses like a downgrade would: never "no floor".
    if !opts.allow_downgrade {
        match state::floor(m.stream, opts.state_dir) {
            Err(state::Damaged(base)) => {
                cli.detail(&[
                    b"stream ",
                    m.stream.as_bytes(),
                    b": damaged floor file ",
                    base,
                    b"/streams/",
                    m.stream.as_bytes(),
                ]);
                return Err(Error::DamagedFloor);
            }
            Ok(Some(f)) if m.version < f.bound(m.replace) => {
                let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
                cli.detail(&[
                    b"stream ",
                    m.stream.as_bytes(),
                    b": bundle version ",
                    crate::codec::fmt_u64(m.version, &mut a),
                    if m.replace {
                        b" < applied "
                    } else {
                        b" < applied cumulative "
                    },
                    crate::codec::fmt_u64(f.bound(m.replace), &mut b),
                ]);
                return Err(Error::Downgrade);
            }
            _ => {}
        }
    }
    // The state must be writable before the kernel is touched.
    state::check_writable(opts.state_dir)?;

    if loaded(name) {
        if !is_livepatch_module(name) {
            return Err(Error::Conflict(
                "a module of this name is loaded and it is not a livepatch",
            ));
        }
        // A stale module of the same name whose patch is gone (replaced or
        // disabled earlier): it must go before the new one can load.
        unload(name, deadline)?;
        state::remove_record(m.name);
    }

    // One transition at a time.
    let mut other = [0u8; 64];
    if any_in_transition(&mut other).is_some()
        && !crate::rt::poll(deadline, || any_in_transition(&mut [0u8; 64]).is_none())
    {
        let n = any_in_transition(&mut other).unwrap_or(0);
        cli.detail(&[b"in transition: ", &other[..n]]);
        return Err(Error::Conflict("another livepatch is still in transition"));
    }

    state::write_record(&record, "loading")?;
    let memfd =
        match seal_payload(&src, &signed).and_then(|fd| check_module(cli, &fd, m).map(|_| fd)) {
            Ok(fd) => fd,
            Err(e) => {
                state::remove_record(m.name);
                return Err(e);
            }
        };
    let kmsg = Kmsg::open();
    let mut newest = [0u8; 64];
    let before = newest_module(&mut newest);
    if let Err(e) = load(&memfd, signed.header.payload_len) {
        state::remove_record(m.name);
        let mut o = Out::stderr();
        kmsg.quote(&mut o);
        if let Error::KernelRefused(Errno::EXIST) = e {
            return Err(Error::Conflict(
                "a module of this name appeared while loading; nothing was changed",
            ));
        }
        return Err(e);
    }
    drop(memfd);
    if !active(name) {
        // A livepatch registers /sys/kernel/livepatch/<name> from its init,
        // before finit_module returns. A module that did not must not stay
        // loaded: unload what the kernel actually loaded (the newest entry
        // of /proc/modules, when it changed), not what the manifest says.
        state::remove_record(m.name);
        let mut now = [0u8; 64];
        let loaded_name = newest_module(&mut now)
            .filter(|n| Some(*n) != before)
            .unwrap_or(name);
        let gone = PathBuf::of(&[loaded_name]).is_ok_and(|p| {
            rustix::system::delete_module(p.c(), rustix::fs::OFlags::NONBLOCK.bits() as i32).is_ok()
        });
        if !gone {
            cli.detail(&[b"module ", loaded_name]);
            return Err(Error::Stuck(
                "the module registered no livepatch and could not be unloaded",
            ));
        }
        return Err(Error::NotALivepatch(
            "the module is not a livepatch: it loaded but registered none under the manifest's name, so klpctl unloaded it",
        ));
    }

    wait_or_revert(
        name,
        deadline,
        opts.timeout_ms,
        " did not finish in time; reverting",
    )?;
    if read_attr(name, b"enabled") != Some(1) {
        state::remove_record(m.name);
        return Err(Error::Conflict(
            "the patch was disabled by someone else while klpctl waited",
        ));
    }

    if m.replace {
        remove_replaced(name, deadline, removed);
    }

    save("applied", unsaved);
    let (mut vb, mut hx, mut kb) = ([0u8; 20], [0u8; 64], [0u8; 80]);
    let mut kn = 0;
    for (i, id) in keys.iter().enumerate() {
        if i > 0 {
            kb[kn] = b',';
            kn += 1;
        }
        let _ = crate::codec::hex_encode(id, &mut kb[kn..kn + 16]);
        kn += 16;
    }
    audit(&[
        b"applied ",
        name,
        b" stream=",
        m.stream.as_bytes(),
        b" version=",
        crate::codec::fmt_u64(m.version, &mut vb),
        b" sha256=",
        crate::codec::hex_encode(&m.payload_sha256, &mut hx).unwrap_or(b""),
        b" keys=",
        &kb[..kn],
    ]);
    if !opts.json {
        let mut o = Out::stdout();
        o.b(name)
            .s(": applied (stream ")
            .s(m.stream)
            .s(" version ")
            .u(m.version)
            .s(", ")
            .u(crate::rt::now_ms() - t0)
            .s(" ms)")
            .nl();
        for r in removed.iter() {
            o.b(name).s(": removed replaced module ").s(r).nl();
        }
    }
    Ok(Outcome::Applied)
}

/// Checks, before the kernel sees it, that the sealed module is what the
/// signed manifest says: the same module name (the kernel registers the
/// patch under the module's own name, and klpctl finds, records and
/// removes it by the manifest's), the same kernel release and architecture,
/// and `livepatch=Y`.
fn check_module(
    cli: &mut Cli,
    memfd: &OwnedFd,
    m: &crate::trust::manifest::Manifest,
) -> Result<()> {
    let src = FileSource::new(memfd, "cannot stat memfd")?;
    let mut buf = [0u8; crate::modinfo::MAX_MODINFO];
    let (section, arch) = crate::modinfo::read_section(&src, &mut buf)
        .map_err(|_| Error::Bundle("bundle rejected: the payload has no readable .modinfo"))?;
    let get = |key| crate::modinfo::get(section, key).unwrap_or("");
    let name = get("name");
    let release = get("vermagic").split(' ').next().unwrap_or("");
    if name != m.name || release != m.release || arch != m.arch {
        cli.detail(&[
            b"manifest ",
            m.name.as_bytes(),
            b" for ",
            m.release.as_bytes(),
            b" ",
            m.arch.as_bytes(),
            b", module ",
            name.as_bytes(),
            b" for ",
            release.as_bytes(),
            b" ",
            arch.as_bytes(),
        ]);
        return Err(Error::Bundle(
            "bundle rejected: the module is not the one the manifest names",
        ));
    }
    if get("livepatch") != "Y" {
        return Err(Error::NotALivepatch(
            "not a livepatch (no livepatch=Y in .modinfo); not loaded",
        ));
    }
    Ok(())
}

/// The name of the most recently loaded module: the kernel lists the
/// newest first in `/proc/modules`.
fn newest_module(buf: &mut [u8; 64]) -> Option<&[u8]> {
    let fd = files::open_ro(c"/proc/modules", "modules").ok()?;
    let n = rustix::io::read(&fd, &mut buf[..]).ok()?;
    let name = buf[..n].split(|&c| c == b' ').next()?;
    (name.len() < n).then_some(name)
}

/// After an atomic-replace patch completed: unload the modules of the
/// patches it replaced (their sysfs directories are gone, their modules
/// stay until someone removes them) and drop their records.
fn remove_replaced(
    name: &[u8],
    deadline: u64,
    removed: &mut heapless::Vec<heapless::String<56>, 8>,
) {
    // The kernel frees the replaced patches' sysfs directories
    // asynchronously after the transition: wait (bounded) until only the
    // new patch is left, or a replaced module would still look active.
    crate::rt::poll(deadline, || only_patch(name));
    let mut stale: heapless::Vec<heapless::String<56>, 8> = heapless::Vec::new();
    leftovers(|mb| {
        let mut s = heapless::String::new();
        if let Ok(t) = core::str::from_utf8(mb)
            && s.push_str(t).is_ok()
        {
            let _ = stale.push(s);
        }
    });
    for s in &stale {
        match unload(s.as_bytes(), deadline) {
            Ok(()) => {
                state::remove_record(s);
                let _ = removed.push(s.clone());
            }
            Err(_) => {
                Out::stderr()
                    .s("klpctl: warning: replaced module ")
                    .s(s)
                    .s(" could not be removed yet (still referenced)\n");
            }
        }
    }
}

/// Waits until `deadline` for the transition of `name` to finish; if it
/// does not, lists the tasks blocking it and reverts (exit 7, or 8), the
/// revert getting `timeout_ms` (at least 10 s) of its own.
fn wait_or_revert(name: &[u8], deadline: u64, timeout_ms: u64, why: &str) -> Result<()> {
    // The last look comes after the deadline: a transition that finished
    // just then is done, not timed out.
    if crate::rt::poll(deadline, || settled(name)) || settled(name) {
        return Ok(());
    }
    {
        let mut o = Out::stderr();
        o.s("klpctl: transition of ").b(name).s(why).nl();
        list_blockers(&mut o, 1, None);
        // Flushed here, before revert prints its own list.
    }
    Err(revert(name, timeout_ms))
}

/// Reverts a patch whose transition timed out: disable, wait for the
/// reverse transition, unload. Exit 7 when the system is back as it was,
/// 8 when the revert itself stalls.
fn revert(name: &[u8], timeout_ms: u64) -> Error {
    let Ok(enabled) = lp_attr(name, b"enabled") else {
        return Error::Internal("patch name too long");
    };
    if files::write_existing(enabled.c(), b"0", "cannot write enabled").is_err() && active(name) {
        return Error::Stuck(
            "transition timed out and the revert could not start; the patch is still in transition (see klpctl status)",
        );
    }
    if let Ok(n) = core::str::from_utf8(name) {
        state::mark(n, "reverting");
    }
    let deadline = crate::rt::now_ms() + timeout_ms.max(10_000);
    if !crate::rt::poll(deadline, || !active(name)) {
        let mut o = Out::stderr();
        o.s("klpctl: the revert of ")
            .b(name)
            .s(" did not finish in time either")
            .nl();
        list_blockers(&mut o, 0, None);
        return Error::Stuck(
            "transition timed out and the revert stalled too; the patch is still in transition back to unpatched (not forced; see klpctl status, retry klpctl disable later)",
        );
    }
    if unload(name, deadline).is_err() {
        Out::stderr()
            .s("klpctl: warning: reverted patch module ")
            .b(name)
            .s(" is still loaded (referenced)\n");
    }
    if let Ok(n) = core::str::from_utf8(name) {
        state::remove_record(n);
    }
    audit(&[b"reverted ", name, b" after transition timeout"]);
    Error::TimedOutReverted
}

fn parse_timeout(a: &mut Args) -> Result<u64> {
    let s = a.value_u64()?;
    if s == 0 || s > 86_400 {
        return Err(Error::Usage("--timeout must be 1 to 86400 seconds"));
    }
    Ok(s * 1000)
}

fn key(c: &Candidate) -> (&str, u64, &[u8]) {
    (&c.stream, c.version, c.path.bytes())
}

/// A bundle found by `apply --dir`.
struct Candidate {
    path: PathBuf,
    stream: heapless::String<64>,
    version: u64,
    replace: bool,
    /// A newer cumulative bundle of the same stream makes this one moot.
    superseded: bool,
}

/// `klpctl apply`.
pub fn apply_cmd(cli: &mut Cli, a: &mut Args) -> Result<()> {
    let mut opts = ApplyOpts {
        timeout_ms: 60_000,
        keyring: None,
        allow_downgrade: false,
        state_dir: None,
        lock_wait_s: LOCK_WAIT_S,
        json: false,
    };
    let mut paths: heapless::Vec<&'static CStr, 64> = heapless::Vec::new();
    let mut dir = None;
    while let Some(arg) = a.arg() {
        match arg {
            b"--timeout" => opts.timeout_ms = parse_timeout(a)?,
            b"--keyring" => opts.keyring = Some(a.value_c()?),
            b"--allow-downgrade" => opts.allow_downgrade = true,
            b"--state-dir" => opts.state_dir = Some(a.value_c()?),
            b"--no-wait" => opts.lock_wait_s = 0,
            b"--json" => opts.json = true,
            b"--dir" => dir = Some(a.value_c()?),
            _ if !arg.starts_with(b"-") => paths
                .push(a.current_c())
                .map_err(|_| Error::Usage("at most 64 bundles"))?,
            _ => return Err(cli::unknown(cli, arg)),
        }
    }
    if paths.is_empty() == dir.is_none() {
        return Err(Error::Usage(
            "apply needs BUNDLE... or --dir DIR (not both)",
        ));
    }
    let mut json = Out::to(if opts.json {
        Some(crate::sys::stdout())
    } else {
        None
    });
    json.s("{\"results\":[");
    cli.ctx(
        opts.keyring
            .map_or(crate::trust::keyring::KEYRING_DIR.to_bytes(), |k| {
                k.to_bytes()
            }),
    );
    // Without livepatch support nothing can be applied, and a boot script
    // must be able to tell that from "nothing to do": exit 4 at once, for
    // --dir too.
    let early = if files::exists(c"/sys/kernel/livepatch") {
        crate::trust::keyring::load(opts.keyring).and_then(|ring| {
            cli.ctx(b"");
            Ok((ring, state::lock(opts.lock_wait_s)?))
        })
    } else {
        Err(Error::NoLivepatch)
    };
    let (ring, _lock) = match early {
        Ok(x) => {
            cli.ctx(b"");
            x
        }
        Err(e) => {
            json.s("],\"changed\":false,\"exit\":")
                .u(e.exit_code() as u64);
            json.s(",\"error\":")
                .json_str(e.message().as_bytes())
                .s("}\n");
            return Err(e);
        }
    };
    let k = Running::read();
    let mut acc = Acc {
        n: 0,
        changed: false,
    };
    let mut result = Ok(());
    if let Some(d) = dir {
        match select_dir(cli, d, &ring, &k, &mut json, &mut acc, opts.json) {
            Ok(list) => {
                for c in &list {
                    result = apply_reported(cli, c.path.c(), &ring, &k, &opts, &mut json, &mut acc);
                    if result.is_err() {
                        break;
                    }
                }
            }
            Err(e) => result = Err(e),
        }
    } else {
        for p in &paths {
            result = apply_reported(cli, p, &ring, &k, &opts, &mut json, &mut acc);
            if result.is_err() {
                break;
            }
        }
    }
    let code = result.map_or_else(|e| e.exit_code(), |_| 0);
    json.s("],\"changed\":")
        .bool(acc.changed)
        .s(",\"exit\":")
        .u(code as u64)
        .s("}\n");
    result
}

/// Running totals of an `apply` run.
struct Acc {
    n: usize,
    changed: bool,
}

impl Acc {
    /// Starts the next JSON result object with its bundle path.
    fn entry(&mut self, json: &mut Out, path: &[u8]) {
        json.s(if self.n > 0 {
            ",{\"bundle\":"
        } else {
            "{\"bundle\":"
        })
        .json_str(path);
        self.n += 1;
    }
}

/// Applies one bundle and reports it in the JSON result list (and, for an
/// already-applied bundle, on stdout).
fn apply_reported(
    cli: &mut Cli,
    path: &CStr,
    ring: &Keyring,
    k: &Running,
    opts: &ApplyOpts,
    json: &mut Out,
    acc: &mut Acc,
) -> Result<()> {
    let mut removed = heapless::Vec::new();
    let mut unsaved = None;
    let r = apply_one(cli, path, ring, k, opts, &mut removed, &mut unsaved);
    acc.entry(json, path.to_bytes());
    match r {
        Ok(out) => {
            acc.changed |= out == Outcome::Applied;
            json.s(",\"result\":\"").s(if out == Outcome::Applied {
                "applied"
            } else {
                "already applied"
            });
            json.s("\",\"removed\":[");
            for (i, r) in removed.iter().enumerate() {
                if i > 0 {
                    json.s(",");
                }
                json.json_str(r.as_bytes());
            }
            json.s("]");
            // Live, but klpctl's state was not saved: say both, exit 10,
            // and stop before loading anything more.
            if let Some(e) = unsaved {
                cli.ctx(path.to_bytes());
                json.s(",\"exit\":")
                    .u(e.exit_code() as u64)
                    .s(",\"warning\":")
                    .json_str(e.message().as_bytes());
                json.s("}");
                return Err(e);
            }
            json.s("}");
            Ok(())
        }
        Err(e) => {
            // A stuck revert changed the system; so did removing modules.
            acc.changed |= !removed.is_empty() || e.exit_code() == 8;
            json.s(",\"result\":\"failed\",\"exit\":")
                .u(e.exit_code() as u64);
            json.s(",\"error\":")
                .json_str(e.message().as_bytes())
                .s(",\"detail\":")
                .json_str(&cli.detail)
                .s("}");
            Err(e)
        }
    }
}

/// Picks the bundles in `dir` that target the running kernel: per stream,
/// the newest when it is cumulative (replace), otherwise each one in
/// version order. Files that are not valid, trusted bundles are reported
/// and skipped; bundles for other kernels are skipped quietly (listed in
/// JSON).
fn select_dir(
    cli: &mut Cli,
    dir: &CStr,
    ring: &Keyring,
    k: &Running,
    json: &mut Out,
    acc: &mut Acc,
    json_mode: bool,
) -> Result<heapless::Vec<Candidate, 64>> {
    let mut all: heapless::Vec<Candidate, 64> = heapless::Vec::new();
    cli.ctx(dir.to_bytes());
    files::each_entry(dir, "cannot read bundle directory", |name, ty| {
        let nb = name.to_bytes();
        if nb.starts_with(b".") || ty == rustix::fs::FileType::Directory {
            return Ok(());
        }
        let Ok(path) = PathBuf::of(&[dir.to_bytes(), b"/", nb]) else {
            return Ok(());
        };
        let mut probe = Cli {
            ctx: heapless::Vec::new(),
            detail: heapless::Vec::new(),
        };
        probe.ctx(path.bytes());
        let r = (|| -> Result<Candidate> {
            let fd = files::open_ro(path.c(), "cannot open bundle")?;
            let src = FileSource::new(&fd, "cannot read bundle")?;
            let mut mbuf = [0u8; MAX_MANIFEST];
            let (_, signed) = bundle::read(&src, &mut mbuf)?.authenticate(ring);
            let m = signed?.manifest;
            check_kernel(&mut probe, &m, k)?;
            let mut stream = heapless::String::new();
            let _ = stream.push_str(m.stream);
            Ok(Candidate {
                path: PathBuf::of(&[path.bytes()])?,
                stream,
                version: m.version,
                replace: m.replace,
                superseded: false,
            })
        })();
        match r {
            Ok(c) => {
                if all.push(c).is_err() {
                    acc.entry(json, path.bytes());
                    json.s(",\"result\":\"skipped\",\"error\":\"more than 64 bundles\"}");
                    Out::stderr()
                        .s("klpctl: ")
                        .b(path.bytes())
                        .s(": skipped: more than 64 bundles in directory\n");
                }
            }
            Err(e) => {
                acc.entry(json, path.bytes());
                let word = if e.exit_code() == 4 {
                    "other kernel"
                } else {
                    "rejected"
                };
                json.s(",\"result\":\"skipped\",\"reason\":\"")
                    .s(word)
                    .s("\",\"error\":")
                    .json_str(e.message().as_bytes());
                json.s(",\"detail\":").json_str(&probe.detail).s("}");
                if e.exit_code() == 4 {
                    let mut o = Out::to(if json_mode {
                        None
                    } else {
                        Some(crate::sys::stdout())
                    });
                    o.b(path.bytes())
                        .s(": skipped: ")
                        .s(e.message())
                        .s(": ")
                        .b(&probe.detail)
                        .nl();
                } else {
                    crate::cli::report(&probe, e);
                }
            }
        }
        Ok(())
    })?;
    select(&mut all);
    Ok(all)
}

/// The `apply --dir` policy over the candidates that target this kernel:
/// sorted by (stream, version, path); per stream, the newest cumulative
/// bundle and every bundle after it, in version order. A cumulative bundle
/// contains every fix before it, so what precedes it is moot (and would be
/// refused by the rollback floor once it is applied); the non-cumulative
/// bundles after it stack on top of it.
fn select(all: &mut heapless::Vec<Candidate, 64>) {
    // Insertion sort by (stream, version, path): at most 64 entries, and
    // far smaller code than the generic sort.
    for i in 1..all.len() {
        let mut j = i;
        while j > 0 && key(&all[j - 1]) > key(&all[j]) {
            all.swap(j - 1, j);
            j -= 1;
        }
    }
    // Per stream (now contiguous, in version order): drop what comes
    // before its newest cumulative bundle.
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].stream == all[i].stream {
            j += 1;
        }
        if let Some(last) = all[i..j].iter().rposition(|c| c.replace) {
            for c in &mut all[i..i + last] {
                c.superseded = true;
            }
        }
        i = j;
    }
    all.retain(|c| !c.superseded);
}

/// `klpctl disable NAME`.
pub fn disable_cmd(cli: &mut Cli, a: &mut Args) -> Result<()> {
    let (mut timeout_ms, mut lock_wait_s, mut json, mut name) = (60_000, LOCK_WAIT_S, false, None);
    while let Some(arg) = a.arg() {
        match arg {
            b"--timeout" => timeout_ms = parse_timeout(a)?,
            b"--no-wait" => lock_wait_s = 0,
            b"--json" => json = true,
            _ if name.is_none() && !arg.starts_with(b"-") => name = Some(arg),
            _ => return Err(cli::unknown(cli, arg)),
        }
    }
    let name = name.ok_or(Error::Usage("disable needs NAME"))?;
    cli.ctx(name);
    let sname = core::str::from_utf8(name)
        .ok()
        .filter(|n| crate::trust::manifest::valid_name(n));
    let sname = sname.ok_or(Error::Usage("invalid patch name ([A-Za-z0-9_], 1-55)"))?;
    let _lock = state::lock(lock_wait_s)?;
    let r = disable(name, sname, timeout_ms);
    let word = match r {
        Ok(true) => "disabled",
        Ok(false) => "not applied",
        Err(_) => "failed",
    };
    if json {
        let mut o = Out::stdout();
        o.s("{\"name\":")
            .json_str(name)
            .s(",\"result\":\"")
            .s(word)
            .s("\",\"changed\":")
            .bool(r.is_ok_and(|c| c));
        o.s(",\"exit\":")
            .u(r.map_or_else(|e| e.exit_code(), |_| 0) as u64);
        if let Err(e) = r {
            o.s(",\"error\":").json_str(e.message().as_bytes());
        }
        o.s("}\n");
    } else if r.is_ok() {
        Out::stdout().b(name).s(": ").s(word).nl();
    }
    r.map(|_| ())
}

/// Disables and unloads a patch. Returns whether anything changed.
fn disable(name: &[u8], sname: &str, timeout_ms: u64) -> Result<bool> {
    let deadline = crate::rt::now_ms() + timeout_ms;
    if !active(name) {
        state::remove_record(sname);
        if !loaded(name) {
            return Ok(false);
        }
        if !is_livepatch_module(name) {
            return Err(Error::Conflict(
                "a module of this name is loaded but it is not a livepatch; klpctl leaves it alone",
            ));
        }
        // A module whose patch is already gone (replaced, or a disable that
        // was interrupted): finish the job.
        unload(name, deadline)?;
        audit(&[b"removed stale module ", name]);
        return Ok(true);
    }
    let enabled = lp_attr(name, b"enabled")?;
    if read_attr(name, b"enabled") == Some(1) {
        // EBUSY while another patch is in transition: wait for it, bounded.
        let started = crate::rt::poll(deadline, || {
            files::write_existing(enabled.c(), b"0", "enabled").is_ok()
                || read_attr(name, b"enabled") != Some(1)
        });
        if !started {
            return Err(Error::Conflict(
                "cannot start the disable: another livepatch stays in transition",
            ));
        }
    }
    let mut deadline = deadline;
    if !crate::rt::poll(deadline, || disabled_now(name)) {
        let mut o = Out::stderr();
        o.s("klpctl: disabling ")
            .b(name)
            .s(" did not finish in time; switching it back on")
            .nl();
        list_blockers(&mut o, 0, None);
        o.flush();
        let wrote = files::write_existing(enabled.c(), b"1", "enabled").is_ok();
        // A failed step is followed by a fresh look at the truth: the
        // reverse transition may have finished just as the time ran out,
        // and then the kernel refuses to switch the patch back on.
        match after_disable_timeout(wrote, !wrote && disabled_now(name)) {
            AfterTimeout::Finished => {}
            AfterTimeout::SwitchingBack
                if crate::rt::poll(crate::rt::now_ms() + timeout_ms.max(10_000), || {
                    settled(name) && read_attr(name, b"enabled") == Some(1)
                }) =>
            {
                return Err(Error::DisableTimedOut);
            }
            _ => {
                return Err(Error::Stuck(
                    "disable timed out and switching the patch back on stalled too; it is still in transition (not forced; see klpctl status)",
                ));
            }
        }
        o.s("klpctl: the disable of ")
            .b(name)
            .s(" finished after all; removing it")
            .nl();
        // Its sysfs directory goes asynchronously: a short grace to remove it.
        deadline = crate::rt::now_ms() + 5_000;
    }
    if unload(name, deadline).is_err() {
        return Err(Error::Stuck(
            "the patch is disabled but its module is still referenced and could not be removed",
        ));
    }
    state::remove_record(sname);
    audit(&[b"disabled ", name]);
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
fn after_disable_timeout(wrote: bool, off: bool) -> AfterTimeout {
    match (wrote, off) {
        (true, _) => AfterTimeout::SwitchingBack,
        (false, true) => AfterTimeout::Finished,
        (false, false) => AfterTimeout::Stuck,
    }
}

/// The patch is off: gone from sysfs, or its transition to disabled is
/// over and only its directory is still going away.
fn disabled_now(name: &[u8]) -> bool {
    !active(name) || (settled(name) && read_attr(name, b"enabled") == Some(0))
}

/// `klpctl status`.
pub fn status_cmd(cli: &mut Cli, a: &mut Args) -> Result<()> {
    let mut json = false;
    while let Some(arg) = a.arg() {
        match arg {
            b"--json" => json = true,
            _ => return Err(cli::unknown(cli, arg)),
        }
    }
    let k = Running::read();
    let lp = files::exists(c"/sys/kernel/livepatch");
    let mut lbuf = [0u8; 128];
    let lockdown = crate::kernel::lockdown(&mut lbuf);
    let taint = crate::kernel::taint().unwrap_or(0);
    let mut letters: heapless::Vec<u8, 64> = heapless::Vec::new();
    for (i, &c) in crate::kernel::TAINT_LETTERS.iter().enumerate() {
        if taint & (1 << i) != 0 {
            let _ = letters.push(c);
        }
    }
    let (mut j, mut h) = if json {
        (Out::stdout(), Out::to(None))
    } else {
        (Out::to(None), Out::stdout())
    };
    j.s("{\"kernel\":{\"release\":")
        .json_str(k.release.as_bytes())
        .s(",\"machine\":")
        .json_str(k.machine.as_bytes());
    j.s(",\"build_id\":");
    if k.build_id.is_empty() {
        j.s("null");
    } else {
        j.s("\"").hex(&k.build_id).s("\"");
    }
    j.s(",\"livepatch\":").bool(lp).s(",\"lockdown\":");
    match lockdown {
        Some(l) => j.json_str(l.as_bytes()),
        None => j.s("null"),
    };
    j.s(",\"taint\":")
        .u(taint)
        .s(",\"taint_flags\":")
        .json_str(&letters)
        .s("},\"patches\":[");
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
        .s(if lp { "supported" } else { "not supported" })
        .s(", lockdown: ")
        .s(lockdown.unwrap_or("n/a"));
    h.s(", taint: ").u(taint);
    if !letters.is_empty() {
        h.s(" (").b(&letters).s(")");
    }
    h.nl();
    let mut n = 0;
    if lp {
        files::each_entry(
            c"/sys/kernel/livepatch",
            "cannot read /sys/kernel/livepatch",
            |p, _| {
                patch_status(p.to_bytes(), n, &mut j, &mut h);
                n += 1;
                Ok(())
            },
        )?;
    }
    if n == 0 {
        h.s("no livepatches applied").nl();
    }
    j.s("],\"leftover\":[");
    let mut m = 0;
    leftovers(|name| {
        j.s(if m > 0 { "," } else { "" }).json_str(name);
        h.s("leftover module (patch gone, module still loaded): ")
            .b(name)
            .nl();
        m += 1;
    });
    j.s("]}\n");
    Ok(())
}

/// One patch of `status`, as JSON into `j` and human text into `h`.
fn patch_status(name: &[u8], index: usize, j: &mut Out, h: &mut Out) {
    let enabled = read_attr(name, b"enabled");
    let transition = read_attr(name, b"transition") == Some(1);
    let replace = read_attr(name, b"replace");
    let order = read_attr(name, b"stack_order");
    j.s(if index > 0 {
        ",{\"name\":"
    } else {
        "{\"name\":"
    })
    .json_str(name);
    j.s(",\"enabled\":")
        .bool(enabled == Some(1))
        .s(",\"transition\":")
        .bool(transition);
    j.s(",\"replace\":");
    match replace {
        Some(r) => j.bool(r == 1),
        None => j.s("null"),
    };
    j.s(",\"stack_order\":");
    match order {
        Some(o) => j.i(o),
        None => j.s("null"),
    };
    h.s("patch ").b(name).s(": ").s(if enabled == Some(1) {
        "enabled"
    } else {
        "disabled"
    });
    h.s(if transition {
        ", in transition"
    } else {
        ", transition complete"
    });
    if replace == Some(1) {
        h.s(", replace");
    }
    if let Some(o) = order {
        h.s(", stack order ").i(o);
    }
    h.nl();
    j.s(",\"objects\":[");
    let mut no = 0;
    if let Ok(dir) = lp_attr(name, b"") {
        let _ = files::each_entry(dir.c(), "patch", |obj, ty| {
            if ty != rustix::fs::FileType::Directory {
                return Ok(());
            }
            let ob = obj.to_bytes();
            let patched = PathBuf::of(&[dir.bytes(), b"/", ob, b"/patched"])
                .ok()
                .and_then(|p| files::read_i64(p.c()));
            j.s(if no > 0 { ",{\"name\":" } else { "{\"name\":" })
                .json_str(ob)
                .s(",\"patched\":");
            match patched {
                Some(v) => j.bool(v == 1),
                None => j.s("null"),
            };
            h.s("  object ").b(ob).s(match patched {
                Some(1) => ": patched",
                Some(_) => ": not patched (not loaded)",
                None => "",
            });
            h.s(", functions:");
            j.s(",\"functions\":[");
            let mut nf = 0;
            if let Ok(od) = PathBuf::of(&[dir.bytes(), b"/", ob]) {
                let _ = files::each_entry(od.c(), "object", |f, ty| {
                    if ty == rustix::fs::FileType::Directory {
                        j.s(if nf > 0 { "," } else { "" }).json_str(f.to_bytes());
                        h.s(" ").b(f.to_bytes());
                        nf += 1;
                    }
                    Ok(())
                });
            }
            j.s("]}");
            h.nl();
            no += 1;
            Ok(())
        });
    }
    j.s("],\"record\":");
    let mut rbuf = [0u8; state::MAX_RECORD];
    match core::str::from_utf8(name)
        .ok()
        .and_then(|n| state::read_record(n, &mut rbuf))
    {
        Some(r) => {
            j.s("{\"stream\":")
                .json_str(r.stream.as_bytes())
                .s(",\"version\":")
                .u(r.version);
            j.s(",\"sha256\":")
                .json_str(r.sha256.as_bytes())
                .s(",\"keys\":");
            h.s("  klpctl: stream ")
                .s(r.stream)
                .s(" version ")
                .u(r.version)
                .s(", sha256 ")
                .s(r.sha256)
                .s(", keys ")
                .s(r.keys);
            list_json(j, r.keys);
            j.s(",\"cves\":");
            list_json(j, r.cves);
            if !r.cves.is_empty() {
                h.s(", cves ").s(r.cves);
            }
            j.s(",\"replace\":")
                .bool(r.replace)
                .s(",\"time\":")
                .u(r.time)
                .s(",\"state\":")
                .json_str(r.state.as_bytes())
                .s("}");
            h.s(", applied at ")
                .u(r.time)
                .s(" (")
                .s(r.state)
                .s(")")
                .nl();
        }
        None => {
            j.s("null");
            h.s("  klpctl: no record (not applied by klpctl this boot)")
                .nl();
        }
    }
    j.s(",\"blocking\":");
    if transition {
        let target = if enabled == Some(1) { 1 } else { 0 };
        list_blockers(h, target, Some(j));
    } else {
        j.s("[]");
    }
    j.s("}");
}

/// A comma-separated list as a JSON array of strings.
fn list_json(j: &mut Out, list: &str) {
    j.s("[");
    for (i, x) in list.split(',').filter(|x| !x.is_empty()).enumerate() {
        j.s(if i > 0 { "," } else { "" }).json_str(x.as_bytes());
    }
    j.s("]");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(stream: &str, version: u64, replace: bool) -> Candidate {
        let mut s = heapless::String::new();
        s.push_str(stream).unwrap();
        let path = PathBuf::of(&[stream.as_bytes(), b"-", &[b'0' + version as u8]]).unwrap();
        Candidate {
            path,
            stream: s,
            version,
            replace,
            superseded: false,
        }
    }

    fn picked(list: &[(&str, u64, bool)]) -> Vec<(String, u64)> {
        let mut v: heapless::Vec<Candidate, 64> = heapless::Vec::new();
        for &(s, n, r) in list {
            let _ = v.push(cand(s, n, r));
        }
        select(&mut v);
        v.iter()
            .map(|c| (c.stream.to_string(), c.version))
            .collect()
    }

    #[test]
    fn newest_cumulative_wins_per_stream() {
        let got = picked(&[
            ("a", 2, true),
            ("a", 3, true),
            ("a", 1, true),
            ("b", 1, false),
        ]);
        assert_eq!(got, [("a".to_string(), 3), ("b".to_string(), 1)]);
    }

    #[test]
    fn non_cumulative_streams_apply_all_in_version_order() {
        let got = picked(&[("s", 3, false), ("s", 1, false), ("s", 2, false)]);
        assert_eq!(
            got,
            [
                ("s".to_string(), 1),
                ("s".to_string(), 2),
                ("s".to_string(), 3)
            ]
        );
    }

    #[test]
    fn a_newest_non_cumulative_bundle_keeps_the_older_ones() {
        // Only a cumulative newest bundle makes the older ones moot.
        let got = picked(&[("s", 1, true), ("s", 2, false)]);
        assert_eq!(got, [("s".to_string(), 1), ("s".to_string(), 2)]);
    }

    #[test]
    fn fixes_after_the_newest_cumulative_bundle_stack_on_it() {
        let got = picked(&[
            ("s", 3, false),
            ("s", 1, false),
            ("s", 2, true),
            ("s", 4, false),
        ]);
        assert_eq!(
            got,
            [
                ("s".to_string(), 2),
                ("s".to_string(), 3),
                ("s".to_string(), 4)
            ]
        );
    }

    /// A disable that timed out just as its reverse transition finished:
    /// the kernel refuses the switch back on, and klpctl must report the
    /// patch as disabled (and remove it), not "still in transition".
    #[test]
    fn a_refused_switch_back_after_the_disable_finished_is_success() {
        assert_eq!(after_disable_timeout(false, true), AfterTimeout::Finished);
        assert_eq!(after_disable_timeout(false, false), AfterTimeout::Stuck);
        assert_eq!(
            after_disable_timeout(true, false),
            AfterTimeout::SwitchingBack
        );
    }

    #[test]
    fn empty_directory_selects_nothing() {
        assert!(picked(&[]).is_empty());
    }
}
