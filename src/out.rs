//! Small output helpers. No `core::fmt`: each helper writes bytes into a
//! fixed buffer that is flushed to a file descriptor, which keeps the
//! formatting machinery out of the device binary.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicBool, Ordering};
use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

/// Cleared when a write to standard output failed (a full disk, a closed
/// pipe): the command's output is incomplete, so it must not exit 0.
/// (Starting out true keeps it in `.data`, beside klpctl's other static:
/// a `.bss` section of its own would cost a section header.)
static STDOUT_WHOLE: AtomicBool = AtomicBool::new(true);

/// Whether some of what was written to standard output was lost.
pub fn stdout_lost() -> bool {
    !STDOUT_WHOLE.load(Ordering::Relaxed)
}

/// A buffered writer to a file descriptor; flushes when full and on drop.
pub struct Out<'a> {
    fd: Option<BorrowedFd<'a>>,
    /// Or a memory sink, and how much of it is written.
    mem: Option<&'a mut [u8]>,
    mem_len: usize,
    buf: [u8; 2048],
    len: usize,
    failed: Option<Errno>,
    /// Written for people (the standard streams): [`Out::b`] escapes what
    /// a terminal would act on. Off for files and for JSON.
    human: bool,
    /// A UTF-8 character begun by [`Out::b`] and not yet complete.
    pend: [u8; 4],
    plen: usize,
}

impl Out<'static> {
    /// A writer to standard output.
    pub fn stdout() -> Out<'static> {
        Out::new(Some(crate::sys::stdout()), true)
    }

    /// A writer to standard error.
    pub fn stderr() -> Out<'static> {
        Out::new(Some(crate::sys::stderr()), true)
    }
}

impl<'a> Out<'a> {
    /// A writer to `fd`, or a sink that discards everything when `None`.
    pub fn to(fd: Option<BorrowedFd<'a>>) -> Out<'a> {
        Out::new(fd, false)
    }

    /// A writer to `fd`, for people or not (see `human`).
    // Not inlined: one copy of the buffer's zeroing for all writers.
    #[inline(never)]
    fn new(fd: Option<BorrowedFd<'a>>, human: bool) -> Out<'a> {
        Out {
            fd,
            mem: None,
            mem_len: 0,
            buf: [0; 2048],
            len: 0,
            failed: None,
            human,
            pend: [0; 4],
            plen: 0,
        }
    }

    /// A writer into `mem`. What does not fit is an error at
    /// [`Out::finish`] (`ENOSPC`), and [`Out::written`] then says nothing.
    pub fn into_slice(mem: &'a mut [u8]) -> Out<'a> {
        let mut o = Out::to(None);
        o.mem = Some(mem);
        o
    }

    /// How many bytes were flushed into the memory sink.
    pub fn written(&self) -> usize {
        self.mem_len
    }

    /// From here on, bytes as they are: a machine form (JSON, which
    /// escapes its own strings) or an exact copy follows.
    pub fn exact(&mut self) -> &mut Self {
        self.human = false;
        self
    }

    /// Writes the buffered bytes. The first error is remembered for
    /// [`Out::finish`]; on the standard streams nobody is left to tell.
    pub fn flush(&mut self) {
        self.escape_pending();
        if let Some(fd) = self.fd
            && let Err(e) = crate::sys::write_all(fd, &self.buf[..self.len])
        {
            self.failed.get_or_insert(e);
            if fd.as_raw_fd() == 1 {
                STDOUT_WHOLE.store(false, Ordering::Relaxed);
            }
        }
        if let Some(m) = &mut self.mem {
            match m.get_mut(self.mem_len..self.mem_len + self.len) {
                Some(d) => {
                    d.copy_from_slice(&self.buf[..self.len]);
                    self.mem_len += self.len;
                }
                None => {
                    self.failed.get_or_insert(Errno::NOSPC);
                }
            }
        }
        self.len = 0;
    }

    /// Flushes and reports whether every write succeeded.
    pub fn finish(&mut self) -> rustix::io::Result<()> {
        self.flush();
        self.failed.map_or(Ok(()), Err)
    }

    /// Bytes as they are (klpctl's own text, digits, hex).
    fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.escape_pending();
        for chunk in bytes.chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        self
    }

    /// Bytes, which may come from outside klpctl (paths, file names,
    /// names, details). Written for people, every byte a terminal could
    /// act on is shown as `\xNN`: control bytes (newline and tab too),
    /// DEL, the C1 controls U+0080..U+009F, and bytes that are not part of
    /// valid UTF-8. Other UTF-8 text is written as it is, also when a
    /// character arrives a byte per call. In machine forms, as is.
    pub fn b(&mut self, bytes: &[u8]) -> &mut Self {
        if !self.human {
            return self.raw(bytes);
        }
        for &x in bytes {
            if self.plen > 0 && x & 0xc0 == 0x80 {
                self.pend[self.plen] = x;
                self.plen += 1;
                let n = match self.pend[0] {
                    0xc2..=0xdf => 2,
                    0xe0..=0xef => 3,
                    _ => 4,
                };
                if self.plen == n {
                    let ch = self.pend;
                    let c1 = ch[0] == 0xc2 && ch[1] < 0xa0;
                    if core::str::from_utf8(&ch[..n]).is_ok() && !c1 {
                        self.plen = 0;
                        self.raw(&ch[..n]);
                    } else {
                        self.escape_pending();
                    }
                }
                continue;
            }
            self.escape_pending();
            match x {
                0x20..=0x7e => {
                    self.raw(&[x]);
                }
                0xc2..=0xf4 => {
                    self.pend[0] = x;
                    self.plen = 1;
                }
                _ => {
                    self.raw(b"\\x").raw(&crate::codec::hex_pair(x));
                }
            }
        }
        self
    }

    /// The start of a character that never completed, escaped.
    fn escape_pending(&mut self) {
        let (p, n) = (self.pend, self.plen);
        self.plen = 0;
        for &x in &p[..n] {
            self.raw(b"\\x").raw(&crate::codec::hex_pair(x));
        }
    }

    /// Text from outside klpctl (task names, kernel log lines) for a
    /// terminal: anything but printable ASCII becomes `?`, so it cannot
    /// carry escape sequences.
    pub fn text(&mut self, bytes: &[u8]) -> &mut Self {
        for &c in bytes {
            self.raw(if (0x20..0x7f).contains(&c) {
                core::slice::from_ref(&c)
            } else {
                b"?"
            });
        }
        self
    }

    /// A string.
    pub fn s(&mut self, s: &str) -> &mut Self {
        self.raw(s.as_bytes())
    }

    /// A newline.
    pub fn nl(&mut self) -> &mut Self {
        self.raw(b"\n")
    }

    /// An unsigned decimal number.
    pub fn u(&mut self, n: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        let s = crate::codec::fmt_u64(n, &mut tmp);
        self.raw(s)
    }

    /// A signed decimal number.
    pub fn i(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.raw(b"-");
        }
        self.u(n.unsigned_abs())
    }

    /// Lowercase hex of `bytes`.
    pub fn hex(&mut self, bytes: &[u8]) -> &mut Self {
        for &x in bytes {
            let pair = crate::codec::hex_pair(x);
            self.raw(&pair);
        }
        self
    }

    /// `true` or `false`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.s(if v { "true" } else { "false" })
    }

    /// An error's one-line description: its class and message, then what it adds
    /// (the errno, or that a path is not a regular file).
    pub fn error(&mut self, e: crate::error::Error) -> &mut Self {
        use crate::error::Error;
        // The argument is said as a subject is: an empty one names
        // nothing, so it is not said at all.
        if let Error::Argument(arg) = e
            && !arg.bytes().is_empty()
        {
            self.b(arg.bytes()).s(": ");
        }
        self.s(e.class()).s(e.message());
        match e {
            Error::Io(_, n) => self.s(": ").errno(n),
            Error::StateNotSaved(what, n) => self.s(": cannot ").s(what.text()).s(": ").errno(n),
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

    fn people(bytes: &[u8]) -> Vec<u8> {
        let mut o = Out::new(None, true);
        o.b(bytes);
        // What flush would add: a character left incomplete at the end.
        o.escape_pending();
        o.buffered().to_vec()
    }

    #[test]
    fn text_for_people_cannot_steer_a_terminal() {
        // An OSC title sequence, CSI, newline, tab, DEL, C1 CSI (U+009B),
        // and bytes that are not UTF-8.
        assert_eq!(people(b"\x1b]0;owned\x07.klp"), b"\\x1b]0;owned\\x07.klp");
        assert_eq!(
            people(b"a\nklpctl: fake\tx\x7f"),
            b"a\\x0aklpctl: fake\\x09x\\x7f"
        );
        assert_eq!(people("\u{9b}31m".as_bytes()), b"\\xc2\\x9b31m");
        assert_eq!(people(b"\xff\xc3(\xe2\x82"), b"\\xff\\xc3(\\xe2\\x82");
        // Negative: printable ASCII and other UTF-8 pass unchanged, and so
        // does everything in a machine form.
        let fine = "bundles/klp_a@6.1.0-41-amd64.klp caf\u{e9} \u{a0}\u{2603} a\\b \u{1f600}";
        assert_eq!(people(fine.as_bytes()), fine.as_bytes());
        // Also a byte per call, as a decoder hands them over.
        let mut o = Out::new(None, true);
        for b in fine.bytes() {
            o.b(&[b]);
        }
        assert_eq!(o.buffered(), fine.as_bytes());
        // A character cut short by klpctl's own text is escaped.
        let mut o = Out::new(None, true);
        o.b(b"\xe2\x82").s("!");
        assert_eq!(o.buffered(), b"\\xe2\\x82!");
        let mut o = Out::to(None);
        o.b(b"\x1b]0;x\x07\n");
        assert_eq!(o.buffered(), b"\x1b]0;x\x07\n");
        let mut o = Out::new(None, true);
        o.exact().b(b"\x1b\n");
        assert_eq!(o.buffered(), b"\x1b\n");
        // klpctl's own text keeps its newlines.
        let mut o = Out::new(None, true);
        o.s("one\n").nl();
        assert_eq!(o.buffered(), b"one\n\n");
    }

    /// Any byte string: never a panic, and what comes out is printable
    /// ASCII or UTF-8 above U+009F, with no control byte at all.
    #[test]
    fn escaping_is_total() {
        let mut x = 0x1234_5678_9abc_def1u64;
        for n in 0..5000 {
            let bytes: Vec<u8> = (0..n % 40)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let out = people(&bytes);
            let text = core::str::from_utf8(&out).expect("UTF-8");
            assert!(
                text.chars().all(|c| !c.is_control()),
                "{bytes:?} -> {text:?}"
            );
        }
    }

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
