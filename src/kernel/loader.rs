//! Loading and removing livepatch modules: the payload streamed into a
//! sealed memfd and checked against the signed manifest, `finit_module`
//! (with its `init_module` fallback), `delete_module`, the kernel log
//! around a load, and klpctl's audit lines.
#![forbid(unsafe_code)]

use crate::error::{Context, Error, Failure, Result};
use crate::files::{self, FileSource, PathBuf};
use crate::kernel::sysfs;
use crate::out::Out;
use crate::trust::bundle::Signed;
use crate::trust::manifest::Manifest;
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;

/// Copies the payload into a sealed memfd and checks the SHA-256 of
/// exactly the sealed bytes, so what the kernel loads is what was verified.
pub fn seal_payload(src: &FileSource<&OwnedFd>, signed: &Signed) -> Result<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let memfd = rustix::fs::memfd_create(
        c"klpctl-payload",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .ctx(msg!("create memfd"))?;
    let len = signed.header.payload_len;
    files::copy_range(
        src.fd,
        signed.header.payload_offset(),
        len,
        Error::Digest,
        msg!("read bundle"),
        |c| crate::sys::write_all(memfd.as_fd(), c).ctx(msg!("write memfd")),
    )?;
    rustix::fs::fcntl_add_seals(
        &memfd,
        SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
    )
    .ctx(msg!("seal memfd"))?;
    let sealed = files::sha256_range(&memfd, 0, len, Error::Digest, msg!("read memfd"))?;
    let size = files::regular_size(memfd.as_fd(), msg!("stat memfd"))?;
    if sealed != signed.manifest.payload_sha256 || size != len {
        return Err(Error::Digest);
    }
    Ok(memfd)
}

/// Checks, before the kernel sees it, that the sealed module is what the
/// signed manifest says: the same module name (the kernel registers the
/// patch under the module's own name, and klpctl finds, records and
/// removes it by the manifest's), the same kernel release and architecture,
/// and `livepatch=Y`.
pub fn check_module(memfd: &OwnedFd, m: &Manifest) -> core::result::Result<(), Failure> {
    let src = FileSource::new(memfd, msg!("stat memfd"))?;
    let mut buf = [0u8; crate::modinfo::MAX_MODINFO];
    let (section, arch) = crate::modinfo::read_section(&src, &mut buf)
        .map_err(|_| Error::Bundle(msg!("the payload has no single readable .modinfo section")))?;
    let get = |key| crate::modinfo::get(section, key).unwrap_or("");
    let name = get("name");
    let release = get("vermagic").split(' ').next().unwrap_or("");
    if name != m.name || release != m.release || arch != m.arch {
        return Err(
            Error::Bundle(msg!("the module is not the one the manifest names")).with(&[
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
            ]),
        );
    }
    if get("livepatch") != "Y" {
        return Err(
            Error::NotALivepatch(msg!("not a livepatch (no livepatch=Y in .modinfo)")).into(),
        );
    }
    Ok(())
}

/// Loads a sealed module image: `finit_module` on the memfd, or, where the
/// kernel will not load from a memfd, `init_module` on a read-only mapping
/// of the same sealed bytes.
pub fn load(memfd: &OwnedFd, len: u64) -> Result<()> {
    match rustix::system::finit_module(memfd, c"", 0) {
        Ok(()) => Ok(()),
        Err(Errno::NOSYS) | Err(Errno::BADF) | Err(Errno::NOTSUP) => {
            let len = usize::try_from(len).map_err(|_| Error::Digest)?;
            let map = crate::sys::Mapping::sealed_read_only(memfd, len).ctx(msg!("map memfd"))?;
            rustix::system::init_module(map.bytes(), c"").map_err(Error::KernelRefused)
        }
        Err(e) => Err(Error::KernelRefused(e)),
    }
}

/// The name of the most recently loaded module: the kernel lists the
/// newest first in `/proc/modules`.
pub fn newest_module(buf: &mut [u8; 64]) -> Option<&[u8]> {
    let fd = files::open_ro(c"/proc/modules", crate::files::UNSHOWN).ok()?;
    let n = rustix::io::read(&fd, &mut buf[..]).ok()?;
    let name = buf[..n].split(|&c| c == b' ').next()?;
    (name.len() < n).then_some(name)
}

/// `delete_module` without waiting (`O_NONBLOCK`) and never forced.
pub fn delete(name: &[u8]) -> Result<()> {
    rustix::system::delete_module(
        PathBuf::of(&[name])?.c(),
        rustix::fs::OFlags::NONBLOCK.bits() as i32,
    )
    .map_err(|e| Error::Io(msg!("unload the module"), e))
}

/// Unloads livepatch module `name` once its sysfs directory is gone and its
/// reference count is 0, as the kernel's own selftests do; waits until
/// `deadline`.
pub fn unload(name: &[u8], deadline: u64) -> Result<()> {
    let ready = crate::rt::poll(deadline, || {
        !sysfs::active(name) && sysfs::refcnt(name).is_none_or(|r| r == 0)
    });
    if !ready {
        return Err(Error::Stuck(msg!(
            "module cannot be removed: its livepatch is active or it is referenced"
        )));
    }
    let mut last = Error::Io(msg!("unload the module"), Errno::BUSY);
    let ok = crate::rt::poll(deadline, || match delete(name) {
        Ok(()) | Err(Error::Io(_, Errno::NOENT)) => true,
        Err(e) => {
            last = e;
            false
        }
    });
    if ok { Ok(()) } else { Err(last) }
}

/// `/dev/kmsg` positioned at its end, to quote what the kernel logs about a
/// failed load.
pub struct Kmsg(Option<OwnedFd>);

impl Kmsg {
    /// Opens the kernel log at its current end.
    pub fn open() -> Kmsg {
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

    /// Calls `f` with each message logged since `open` (the few
    /// milliseconds of the failed load; at most 16). Not every reason names
    /// the module ("Loading of unsigned module is rejected"), so nothing is
    /// filtered out.
    pub fn each_line(&self, f: &mut dyn FnMut(&[u8])) {
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
            f(msg.split(|&c| c == b'\n').next().unwrap_or(b""));
        }
    }
}

/// Writes one `klpctl: ...` audit line to the kernel log.
pub fn audit(parts: &[&[u8]]) {
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
