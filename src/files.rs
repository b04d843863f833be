//! File helpers over rustix: bounded reads into caller buffers, positioned
//! reads, streaming SHA-256 through a fixed buffer, and atomic replacement
//! (temp file, fsync, rename). No heap: paths are built in [`PathBuf`].
#![forbid(unsafe_code)]

use crate::error::{Context, Error, Result};
use core::ffi::CStr;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use sha2::Digest;

/// Size of the streaming buffer used for payload I/O and hashing.
pub const CHUNK: usize = 64 * 1024;

/// A NUL-terminated path built in a fixed buffer.
pub struct PathBuf {
    buf: [u8; 512],
    len: usize,
}

impl PathBuf {
    /// An empty path.
    pub fn new() -> PathBuf {
        PathBuf {
            buf: [0; 512],
            len: 0,
        }
    }

    /// Starts from `parts` concatenated.
    pub fn of(parts: &[&[u8]]) -> Result<PathBuf> {
        let mut p = PathBuf::new();
        for part in parts {
            p.push(part)?;
        }
        Ok(p)
    }

    /// Appends bytes (no separator is added). Refuses interior NULs and
    /// overlong paths.
    pub fn push(&mut self, bytes: &[u8]) -> Result<&mut Self> {
        if bytes.contains(&0) || self.len + bytes.len() >= self.buf.len() {
            return Err(Error::Usage(msg!("path too long or contains NUL")));
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(self)
    }

    /// The path as a C string.
    pub fn c(&self) -> &CStr {
        // The constructor guarantees no interior NUL and room for this one.
        CStr::from_bytes_until_nul(&self.buf[..self.len + 1]).unwrap_or(c"")
    }

    /// The path bytes without the NUL.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for PathBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// Opens a file read-only (close-on-exec, no controlling tty) without
/// blocking: opening a FIFO must not wait for a writer. Callers check the
/// type (`regular_size`, `read_fd_small`) before reading anything.
pub fn open_ro(path: &CStr, what: crate::error::Msg) -> Result<OwnedFd> {
    open_flags(path, OFlags::empty(), what)
}

/// Opens one of klpctl's own files (records, floors) like [`open_ro`], but
/// never through a symlink: a link planted there is refused (`ELOOP`).
pub fn open_own(path: &CStr, what: crate::error::Msg) -> Result<OwnedFd> {
    open_flags(path, OFlags::NOFOLLOW, what)
}

fn open_flags(path: &CStr, extra: OFlags, what: crate::error::Msg) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK | extra,
        Mode::empty(),
    )
    .ctx(what)
}

/// File size from fstat; refuses anything that is not a regular file
/// ([`Error::NotRegular`]).
pub fn regular_size(fd: rustix::fd::BorrowedFd<'_>, what: crate::error::Msg) -> Result<u64> {
    let st = rustix::fs::fstat(fd).ctx(what)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(Error::NotRegular(what));
    }
    Ok(st.st_size as u64)
}

/// Reads exactly `buf.len()` bytes at `off`; a short file is `Truncated`
/// (reported as the caller's `short` error).
pub fn pread_exact(
    fd: impl AsFd,
    mut off: u64,
    mut buf: &mut [u8],
    short: Error,
    what: crate::error::Msg,
) -> Result<()> {
    while !buf.is_empty() {
        match rustix::io::pread(&fd, &mut *buf, off) {
            Ok(0) => return Err(short),
            Ok(n) => {
                off += n as u64;
                buf = &mut buf[n..];
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::Io(what, e)),
        }
    }
    Ok(())
}

/// Reads a whole small file into `buf`; larger than `buf` is an error.
pub fn read_small<'b>(path: &CStr, buf: &'b mut [u8], what: crate::error::Msg) -> Result<&'b [u8]> {
    let fd = open_ro(path, what)?;
    read_fd_small(&fd, buf, what)
}

/// Reads from `fd` until EOF into `buf`; more than fits is an error, and so
/// is anything but a regular file (checked before the first read).
pub fn read_fd_small(fd: impl AsFd, buf: &mut [u8], what: crate::error::Msg) -> Result<&[u8]> {
    regular_size(fd.as_fd(), what)?;
    let mut n = 0;
    loop {
        if n == buf.len() {
            let mut probe = [0u8; 1];
            return match rustix::io::read(&fd, &mut probe) {
                Ok(0) => Ok(&buf[..n]),
                _ => Err(Error::Io(what, rustix::io::Errno::FBIG)),
            };
        }
        match rustix::io::read(&fd, &mut buf[n..]) {
            Ok(0) => return Ok(&buf[..n]),
            Ok(k) => n += k,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::Io(what, e)),
        }
    }
}

/// SHA-256 of `len` bytes of `fd` starting at `off`, streamed through one
/// fixed buffer. A file shorter than `len` is `short`.
pub fn sha256_range(
    fd: impl AsFd,
    off: u64,
    len: u64,
    short: Error,
    what: crate::error::Msg,
) -> Result<[u8; 32]> {
    let mut h = sha2::Sha256::new();
    copy_range(&fd, off, len, short, what, |chunk| {
        h.update(chunk);
        Ok(())
    })?;
    Ok(h.finalize().into())
}

/// Streams `len` bytes of `fd` from `off` to `sink` in chunks of at most
/// [`CHUNK`] bytes.
pub fn copy_range(
    fd: impl AsFd,
    off: u64,
    len: u64,
    short: Error,
    what: crate::error::Msg,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    copy_range_dyn(fd.as_fd(), off, len, short, what, &mut sink)
}

// One copy of the loop for every caller (`dyn`): smaller binary.
fn copy_range_dyn(
    fd: rustix::fd::BorrowedFd<'_>,
    mut off: u64,
    len: u64,
    short: Error,
    what: crate::error::Msg,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut buf = [0u8; CHUNK];
    let mut left = len;
    let _ = rustix::fs::fadvise(
        fd,
        off,
        core::num::NonZeroU64::new(len),
        rustix::fs::Advice::Sequential,
    );
    while left > 0 {
        let want = left.min(CHUNK as u64) as usize;
        let n = match rustix::io::pread(fd, &mut buf[..want], off) {
            Ok(0) => return Err(short),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::Io(what, e)),
        };
        sink(&buf[..n])?;
        off += n as u64;
        left -= n as u64;
    }
    Ok(())
}

/// A file being written next to its final name, renamed over it on
/// [`AtomicFile::commit`]; removed if dropped uncommitted.
pub struct AtomicFile {
    fd: OwnedFd,
    tmp: PathBuf,
    dst: PathBuf,
    done: bool,
}

impl AtomicFile {
    /// Creates `<path>.klpctl-tmp` exclusively with `mode`.
    pub fn create(path: &[u8], mode: u32) -> Result<AtomicFile> {
        Self::with_tmp(
            PathBuf::of(&[path])?,
            PathBuf::of(&[path, b".klpctl-tmp"])?,
            mode,
        )
    }

    /// Creates `<dir>/.<name>.klpctl-tmp`, renamed to `<dir>/<name>`: a
    /// dot file, which a directory reader such as `apply --dir` skips, so
    /// the directory never shows a half-written file.
    pub fn create_hidden(dir: &[u8], name: &[u8], mode: u32) -> Result<AtomicFile> {
        Self::with_tmp(
            PathBuf::of(&[dir, b"/", name])?,
            PathBuf::of(&[dir, b"/.", name, b".klpctl-tmp"])?,
            mode,
        )
    }

    fn with_tmp(dst: PathBuf, tmp: PathBuf, mode: u32) -> Result<AtomicFile> {
        let _ = rustix::fs::unlink(tmp.c());
        let fd = rustix::fs::open(
            tmp.c(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .ctx(msg!("create output file"))?;
        Ok(AtomicFile {
            fd,
            tmp,
            dst,
            done: false,
        })
    }

    /// The file being written.
    pub fn fd(&self) -> rustix::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Sets the file's mode to exactly `mode`: `create` gives `mode` less
    /// the umask, which is right for what an operator asks for and wrong
    /// for a file others are promised to read.
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(mode))
            .ctx(msg!("set the mode of output file"))
    }

    /// Appends bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        crate::sys::write_all(self.fd.as_fd(), bytes).ctx(msg!("write output file"))
    }

    /// The temporary file's path, to read back what was written.
    pub fn tmp_path(&self) -> &CStr {
        self.tmp.c()
    }

    /// fsyncs and renames into place. What the rename moved must be this
    /// file (the same inode): one put at the temporary name meanwhile
    /// would stand in for it, so the commit fails (`ESTALE`).
    pub fn commit(mut self) -> Result<()> {
        const MOVE: crate::error::Msg = msg!("rename output file into place");
        rustix::fs::fsync(&self.fd).ctx(msg!("fsync output file"))?;
        rustix::fs::rename(self.tmp.c(), self.dst.c()).ctx(MOVE)?;
        self.done = true;
        let ino = |st: rustix::io::Result<rustix::fs::Stat>| st.map(|s| s.st_ino).ok();
        if ino(rustix::fs::fstat(&self.fd)) != ino(rustix::fs::lstat(self.dst.c())) {
            return Err(Error::Io(MOVE, rustix::io::Errno::STALE));
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = rustix::fs::unlink(self.tmp.c());
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &[u8], bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = AtomicFile::create(path, mode)?;
    f.write(bytes)?;
    f.commit()
}

/// Calls `f` with the name and type of every entry of directory `dir`
/// except `.` and `..`. Names are NUL-terminated and borrowed only for the
/// call.
pub fn each_entry(
    dir: &CStr,
    what: crate::error::Msg,
    mut f: impl FnMut(&CStr, rustix::fs::FileType) -> Result<()>,
) -> Result<()> {
    each_entry_dyn(dir, what, &mut f)
}

// One copy of the loop for every caller (`dyn`): smaller binary.
fn each_entry_dyn(
    dir: &CStr,
    what: crate::error::Msg,
    f: &mut dyn FnMut(&CStr, rustix::fs::FileType) -> Result<()>,
) -> Result<()> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(what)?;
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut it = rustix::fs::RawDir::new(&fd, &mut buf);
    while let Some(e) = it.next() {
        let e = e.ctx(what)?;
        let name = e.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        f(name, e.file_type())?;
    }
    Ok(())
}

/// Whether `path` exists (any type).
pub fn exists(path: &CStr) -> bool {
    rustix::fs::access(path, rustix::fs::Access::EXISTS).is_ok()
}

/// The `what` of reads whose error is never shown (only whether they
/// succeed counts): one shared text.
pub const UNSHOWN: crate::error::Msg = msg!("read");

/// Reads a small text file (sysfs attribute) and parses it as a decimal
/// integer, allowing a leading `-`. `None` if missing or malformed.
pub fn read_i64(path: &CStr) -> Option<i64> {
    let mut buf = [0u8; 32];
    let t = read_small(path, &mut buf, UNSHOWN).ok()?.trim_ascii();
    match t.strip_prefix(b"-") {
        Some(rest) => crate::codec::parse_u64(rest)
            .and_then(|v| i64::try_from(v).ok())
            .map(|v| -v),
        None => crate::codec::parse_u64(t).and_then(|v| i64::try_from(v).ok()),
    }
}

/// Writes `bytes` to an existing file (a sysfs attribute) in one write.
pub fn write_existing(path: &CStr, bytes: &[u8], what: crate::error::Msg) -> Result<()> {
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()).ctx(what)?;
    crate::sys::write_all(fd.as_fd(), bytes).ctx(what)
}

/// Creates directory `path` with mode 0700 unless it exists.
pub fn ensure_dir(path: &CStr, what: crate::error::Msg) -> Result<()> {
    match rustix::fs::mkdir(path, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(Error::Io(what, e)),
    }
}

/// fsyncs a directory so a rename inside it is durable.
pub fn sync_dir(path: &CStr) {
    if let Ok(fd) = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        let _ = rustix::fs::fsync(&fd);
    }
}

/// Where a bundle's or a module's bytes come from: files in the binary,
/// byte slices in tests and fuzzing.
pub trait Source {
    /// Total length in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from `off`; reading past the end is [`Error::Bundle`]
    /// "truncated".
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<()>;
    /// SHA-256 of `len` bytes from `off`.
    fn sha256(&self, off: u64, len: u64) -> Result<[u8; 32]>;
}

/// Reading past the end of a [`Source`].
pub const TRUNCATED: Error = Error::Bundle(msg!("file is truncated"));

/// A bundle file opened for reading.
pub struct FileSource<F: AsFd> {
    /// The open file.
    pub fd: F,
    len: u64,
}

impl<F: AsFd> FileSource<F> {
    /// Wraps an open regular file; `what` names the failure otherwise.
    pub fn new(fd: F, what: crate::error::Msg) -> Result<Self> {
        let len = regular_size(fd.as_fd(), what)?;
        Ok(FileSource { fd, len })
    }
}

impl<F: AsFd> Source for FileSource<F> {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        pread_exact(&self.fd, off, buf, TRUNCATED, msg!("read bundle"))
    }
    fn sha256(&self, off: u64, len: u64) -> Result<[u8; 32]> {
        sha256_range(&self.fd, off, len, TRUNCATED, msg!("read bundle"))
    }
}

impl Source for &[u8] {
    fn size(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        let start = usize::try_from(off).map_err(|_| TRUNCATED)?;
        let src = self
            .get(start..)
            .and_then(|s| s.get(..buf.len()))
            .ok_or(TRUNCATED)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn sha256(&self, off: u64, len: u64) -> Result<[u8; 32]> {
        use sha2::Digest;
        let start = usize::try_from(off).map_err(|_| TRUNCATED)?;
        let n = usize::try_from(len).map_err(|_| TRUNCATED)?;
        let src = self
            .get(start..)
            .and_then(|s| s.get(..n))
            .ok_or(TRUNCATED)?;
        Ok(sha2::Sha256::digest(src).into())
    }
}
