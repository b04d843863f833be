//! Small output helpers. No `core::fmt`: each helper writes bytes into a
//! fixed buffer that is flushed to a file descriptor, which keeps the
//! formatting machinery out of the device binary.
#![forbid(unsafe_code)]

use rustix::fd::BorrowedFd;
use rustix::io::Errno;

/// A buffered writer to a file descriptor; flushes when full and on drop.
pub struct Out<'a> {
    fd: Option<BorrowedFd<'a>>,
    buf: [u8; 2048],
    len: usize,
    failed: Option<Errno>,
}

impl Out<'static> {
    /// A writer to standard output.
    pub fn stdout() -> Out<'static> {
        Out::to(Some(crate::sys::stdout()))
    }

    /// A writer to standard error.
    pub fn stderr() -> Out<'static> {
        Out::to(Some(crate::sys::stderr()))
    }
}

impl<'a> Out<'a> {
    /// A writer to `fd`, or a sink that discards everything when `None`.
    // Not inlined: one copy of the buffer's zeroing for all writers.
    #[inline(never)]
    pub fn to(fd: Option<BorrowedFd<'a>>) -> Out<'a> {
        Out {
            fd,
            buf: [0; 2048],
            len: 0,
            failed: None,
        }
    }

    /// Writes the buffered bytes. The first error is remembered for
    /// [`Out::finish`]; on the standard streams nobody is left to tell.
    #[inline(never)]
    pub fn flush(&mut self) {
        if let Some(fd) = self.fd
            && let Err(e) = crate::sys::write_all(fd, &self.buf[..self.len])
        {
            self.failed.get_or_insert(e);
        }
        self.len = 0;
    }

    /// Flushes and reports whether every write succeeded.
    pub fn finish(&mut self) -> rustix::io::Result<()> {
        self.flush();
        self.failed.map_or(Ok(()), Err)
    }

    /// Raw bytes.
    #[inline(never)]
    pub fn b(&mut self, bytes: &[u8]) -> &mut Self {
        for chunk in bytes.chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        self
    }

    /// Text from outside klpctl (task names, kernel log lines) for a
    /// terminal: anything but printable ASCII becomes `?`, so it cannot
    /// carry escape sequences.
    pub fn text(&mut self, bytes: &[u8]) -> &mut Self {
        for &c in bytes {
            self.b(if (0x20..0x7f).contains(&c) {
                core::slice::from_ref(&c)
            } else {
                b"?"
            });
        }
        self
    }

    /// A string.
    pub fn s(&mut self, s: &str) -> &mut Self {
        self.b(s.as_bytes())
    }

    /// A newline.
    pub fn nl(&mut self) -> &mut Self {
        self.b(b"\n")
    }

    /// An unsigned decimal number.
    #[inline(never)]
    pub fn u(&mut self, n: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        let s = crate::codec::fmt_u64(n, &mut tmp);
        self.b(s)
    }

    /// A signed decimal number.
    pub fn i(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.b(b"-");
        }
        self.u(n.unsigned_abs())
    }

    /// Lowercase hex of `bytes`.
    #[inline(never)]
    pub fn hex(&mut self, bytes: &[u8]) -> &mut Self {
        for &x in bytes {
            let pair = crate::codec::hex_pair(x);
            self.b(&pair);
        }
        self
    }

    /// `true` or `false`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.s(if v { "true" } else { "false" })
    }

    /// An error's one-line description: its message, then what it adds
    /// (the errno, or that a path is not a regular file).
    pub fn error(&mut self, e: crate::error::Error) -> &mut Self {
        use crate::error::Error;
        self.s(e.message());
        match e {
            Error::Io(_, n) => self.s(": ").errno(n),
            Error::StateNotSaved(what, n) => self.s(": ").s(what.text()).s(": ").errno(n),
            Error::NotRegular(_) => self.s(": not a regular file"),
            Error::KernelRefused(n) => self.s(" [").errno(n).s("]"),
            _ => self,
        }
    }

    /// The symbolic name of an errno, e.g. `EPERM`.
    pub fn errno(&mut self, e: Errno) -> &mut Self {
        match errno_name(e) {
            Some(n) => self.s(n),
            None => self.s("errno ").u(e.raw_os_error() as u64),
        }
    }
}

#[cfg(test)]
impl Out<'_> {
    /// What is buffered and not yet flushed (tests write to a sink).
    pub fn buffered(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Out<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Symbolic names for the errnos klpctl is likely to meet, as
/// `number name` pairs in one string: smaller than a table of pairs.
const ERRNO_NAMES: &str = "1 EPERM 2 ENOENT 3 ESRCH 4 EINTR 5 EIO 8 ENOEXEC 9 EBADF 11 EAGAIN 12 ENOMEM \
13 EACCES 14 EFAULT 16 EBUSY 17 EEXIST 19 ENODEV 20 ENOTDIR 21 EISDIR 22 EINVAL 23 ENFILE 24 EMFILE \
27 EFBIG 28 ENOSPC 30 EROFS 32 EPIPE 36 ENAMETOOLONG 38 ENOSYS 39 ENOTEMPTY 40 ELOOP 61 ENODATA 62 ETIME \
74 EBADMSG 75 EOVERFLOW 95 EOPNOTSUPP 110 ETIMEDOUT 126 ENOKEY 127 EKEYEXPIRED 129 EKEYREJECTED";

/// The symbolic name of `e`, if klpctl knows it.
pub fn errno_name(e: Errno) -> Option<&'static str> {
    let mut words = ERRNO_NAMES.split(' ');
    while let (Some(num), Some(name)) = (words.next(), words.next()) {
        if crate::codec::parse_u64(num.as_bytes()) == Some(e.raw_os_error() as u64) {
            return Some(name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(Errno::KEYREJECTED), Some("EKEYREJECTED"));
        assert_eq!(errno_name(Errno::PERM), Some("EPERM"));
        assert_eq!(errno_name(Errno::NOTSUP), Some("EOPNOTSUPP"));
        assert_eq!(errno_name(Errno::NOKEY), Some("ENOKEY"));
        assert_eq!(errno_name(Errno::NAMETOOLONG), Some("ENAMETOOLONG"));
        assert_eq!(errno_name(Errno::from_raw_os_error(4000)), None);
    }
}
