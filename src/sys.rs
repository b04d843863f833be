//! The only module with `unsafe` operations: the process start-up (`rt0`),
//! the argument vector and the panic handler of the static musl build, raw
//! standard streams, the read-only mapping used by the `init_module`
//! fallback, process exit, and the clock. (The `main` that start-up calls
//! is in `main.rs`, which must name it `#[unsafe(no_mangle)]`: that
//! attribute, and the call handing argv to [`args`], are the only unsafe
//! items outside this module.)
//!
//! Everything here is a thin safe wrapper whose precondition is checked or
//! guaranteed right where the `unsafe` block sits.
#![allow(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

use core::ffi::CStr;
use rustix::fd::{AsFd, BorrowedFd};

/// A panic is a bug: keep the formatting machinery out of the image and exit
/// with the documented internal-error code.
#[cfg(all(target_env = "musl", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    die(b"klpctl: internal error (panic)\n")
}

// The static build links no C library: its start-up and the few C functions
// the compiler calls are in `rt0` (docs/architecture.md, "Entry point").
#[cfg(all(target_env = "musl", not(test)))]
mod rt0;

/// Makes sure fds 0, 1 and 2 are open, on `/dev/null` where the parent
/// left them closed. Otherwise the next file klpctl opens (a lock, a
/// record, a bundle being written) would become "standard output", and
/// messages would land in it. Rust's std does the same at start-up; the
/// musl build has no std, so its entry point calls this first.
pub fn open_std_fds() {
    use rustix::fs::{Mode, OFlags};
    for fd in 0..3 {
        // SAFETY: the fd is only passed to fcntl(F_GETFD), which reads its
        // flags or fails with EBADF when it is closed; nothing is read,
        // written or closed through the borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        if rustix::io::fcntl_getfd(fd) == Err(rustix::io::Errno::BADF) {
            // open returns the lowest free fd: this one, as every lower
            // one is open. It stays open for the life of the process.
            match rustix::fs::open(c"/dev/null", OFlags::RDWR, Mode::empty()) {
                Ok(null) => core::mem::forget(null),
                Err(_) => {
                    die(b"klpctl: a standard stream is closed and /dev/null cannot be opened\n")
                }
            }
        }
    }
}

/// Ignores SIGPIPE, as Rust's std does at start-up (the musl build has
/// no std): standard output a pipe whose reader is gone then fails the
/// write with EPIPE, which the command survives and reports ("cannot
/// write standard output", exit 1), instead of a kill part-way through a
/// command (an apply --dir between two bundles). klpctl runs no other
/// program, so no child inherits the disposition.
#[cfg(target_env = "musl")]
pub fn ignore_sigpipe() {
    /// `__NR_rt_sigaction`.
    #[cfg(target_arch = "x86_64")]
    const NR: usize = 13;
    #[cfg(target_arch = "aarch64")]
    const NR: usize = 134;
    const SIGPIPE: usize = 13;
    // The kernel's struct sigaction: handler (SIG_IGN = 1), flags,
    // restorer, mask; the same on x86_64 and aarch64. rustix keeps its
    // sigaction behind an unstable name, so the system call is made here.
    let act: [u64; 4] = [1, 0, 0, 0];
    // SAFETY: rt_sigaction(SIGPIPE, &act, NULL, 8) only reads `act`, which
    // lives across the call, and writes nothing (no old action asked
    // for); SIG_IGN runs no handler. Failure (never for SIGPIPE) would
    // leave the default, as before.
    unsafe { syscall4(NR, SIGPIPE, act.as_ptr() as usize, 0, 8) };
}

/// Stack klpctl may need: its buffers live on the stack (there is no
/// heap), `pack` the deepest at ~170 KiB.
const STACK: u64 = 1 << 20;

/// Lets the stack grow to [`STACK`]: raises the soft `RLIMIT_STACK` when
/// the hard limit allows, and otherwise stops with an error before any
/// command starts. A smaller limit would end in SIGSEGV part-way through
/// a command (a half-written output, an apply cut short). The main
/// thread's stack grows on demand up to the soft limit as it is when the
/// stack faults, so raising it now is enough.
pub fn reserve_stack() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Stack);
    if l.current.is_some_and(|c| c < STACK) {
        let raised = Rlimit {
            current: Some(l.maximum.map_or(STACK, |m| m.min(STACK))),
            maximum: l.maximum,
        };
        if raised.current < Some(STACK) || setrlimit(Resource::Stack, raised).is_err() {
            die(b"klpctl: the stack size limit (ulimit -s) is below 1024 KiB\n")
        }
    }
}

/// Most arguments klpctl accepts; more is a usage error.
pub const MAX_ARGS: usize = 96;

/// Command-line arguments as NUL-terminated strings that live for the whole
/// process.
pub type Args = heapless::Vec<&'static CStr, MAX_ARGS>;

/// Collects `argv` into [`Args`], dropping anything past [`MAX_ARGS`] (the
/// CLI then reports a usage error because the count is checked there).
///
/// # Safety
/// `argv` must point to `argc` valid pointers to NUL-terminated strings that
/// stay valid and unmodified for the rest of the process, as the C runtime
/// guarantees for `main`'s arguments (and the kernel, for the initial
/// stack the static build reads them from).
pub unsafe fn args(argc: i32, argv: *const *const u8) -> Args {
    let mut out = Args::new();
    let n = if argc < 0 { 0 } else { argc as usize };
    for i in 0..n.min(MAX_ARGS) {
        // SAFETY: i < argc, so argv.add(i) is inside the argv array.
        let p = unsafe { *argv.add(i) };
        if p.is_null() {
            break;
        }
        // SAFETY: the caller guarantees each argv entry is a valid
        // NUL-terminated string that lives until exit.
        let s = unsafe { CStr::from_ptr(p.cast()) };
        if out.push(s).is_err() {
            break;
        }
    }
    if n > MAX_ARGS {
        // Make the overflow visible to the parser: a sentinel it rejects.
        out.pop();
        // Cannot fail: one was just popped.
        let _ = out.push(c"--too-many-arguments");
    }
    out
}

/// Standard output.
pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: fd 1 is opened by the parent process for the life of ours and
    // klpctl never closes it.
    unsafe { BorrowedFd::borrow_raw(1) }
}

/// Standard error.
pub fn stderr() -> BorrowedFd<'static> {
    // SAFETY: fd 2 is opened by the parent process for the life of ours and
    // klpctl never closes it.
    unsafe { BorrowedFd::borrow_raw(2) }
}

/// Writes all of `bytes` to `fd`, retrying on short writes and EINTR.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> rustix::io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(rustix::io::Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Prints `msg` on standard error and exits with status 1 without running
/// any destructors: for a panic, for standard streams that cannot be set
/// up, and for a stack size limit that cannot be raised far enough.
pub fn die(msg: &[u8]) -> ! {
    let _ = write_all(stderr(), msg);
    exit(1)
}

/// Ends the process with `status` at once: no destructors, no buffers to
/// flush (klpctl writes straight to its fds).
pub fn exit(status: i32) -> ! {
    /// `__NR_exit_group`.
    #[cfg(target_arch = "x86_64")]
    const NR: usize = 231;
    #[cfg(target_arch = "aarch64")]
    const NR: usize = 94;
    // SAFETY: exit_group(2) takes a plain int, touches no memory and does
    // not return, so nothing after it can run.
    unsafe {
        syscall4(NR, status as usize, 0, 0, 0);
        core::hint::unreachable_unchecked()
    }
}

/// A read-only, shared mapping of a sealed memfd, unmapped on drop.
pub struct Mapping {
    ptr: *mut core::ffi::c_void,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of `fd` read-only. `fd` must be sealed against
    /// writes and shrinking (checked by the caller through `F_GET_SEALS`), so
    /// the mapped bytes cannot change or vanish under us.
    pub fn sealed_read_only(fd: impl AsFd, len: usize) -> rustix::io::Result<Mapping> {
        use rustix::mm::{MapFlags, ProtFlags};
        if len == 0 {
            return Err(rustix::io::Errno::INVAL);
        }
        let seals = rustix::fs::fcntl_get_seals(&fd)?;
        let need = rustix::fs::SealFlags::WRITE | rustix::fs::SealFlags::SHRINK;
        if !seals.contains(need) {
            return Err(rustix::io::Errno::PERM);
        }
        // SAFETY: a fresh mapping at an address of the kernel's choosing
        // (null hint) cannot alias any Rust object; the length is non-zero
        // and the fd is sealed so the file cannot shrink below `len` (the
        // caller sized it) and its contents cannot be written.
        let ptr = unsafe {
            rustix::mm::mmap(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        Ok(Mapping { ptr, len })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: ptr/len describe a live read-only mapping owned by self
        // (unmapped only in Drop) of a memfd sealed against writes and
        // shrinking, so the bytes are valid and immutable for &self.
        unsafe { core::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap in sealed_read_only and
        // no slice borrowed from it outlives &self.
        let _ = unsafe { rustix::mm::munmap(self.ptr, self.len) };
    }
}

/// The C library's `struct timespec` on 64-bit Linux.
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// Reads `clock` (0 = CLOCK_REALTIME, 1 = CLOCK_MONOTONIC, 7 =
/// CLOCK_BOOTTIME) as (seconds, nanoseconds), through the raw system call:
/// klpctl reads the clock a few times per poll step at most, so the vDSO
/// buys nothing, and rustix's vDSO lookup would cost ~2 KiB.
pub fn clock(clock: i32) -> (u64, u64) {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if clock_gettime(clock, &mut ts) != 0 {
        return (0, 0);
    }
    (ts.tv_sec.max(0) as u64, ts.tv_nsec.max(0) as u64)
}

fn clock_gettime(clock: i32, ts: &mut Timespec) -> isize {
    /// `__NR_clock_gettime`.
    #[cfg(target_arch = "x86_64")]
    const NR: usize = 228;
    #[cfg(target_arch = "aarch64")]
    const NR: usize = 113;
    // SAFETY: clock_gettime(2) writes one `struct timespec` through its
    // second argument, which is a valid, exclusively borrowed Timespec; it
    // touches no other memory.
    unsafe { syscall4(NR, clock as usize, core::ptr::from_mut(ts) as usize, 0, 0) }
}

/// System call `nr` with up to four arguments (unused ones 0); returns
/// the kernel's result (a negative errno on failure).
///
/// # Safety
/// The arguments must be what system call `nr` expects: any pointer among
/// them valid for what the call reads or writes through it.
#[cfg(target_arch = "x86_64")]
unsafe fn syscall4(nr: usize, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let rc: isize;
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers rcx
    // and r11 and nothing else, and needs no stack.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => rc,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            in("r10") a3,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    rc
}

/// As on x86_64: the number goes in x8, the result comes back in x0.
///
/// # Safety
/// As for the x86_64 version.
#[cfg(target_arch = "aarch64")]
unsafe fn syscall4(nr: usize, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let rc: isize;
    // SAFETY: the caller vouches for the arguments; `svc #0` preserves
    // every register but x0 and needs no stack.
    unsafe {
        core::arch::asm!(
            "svc #0",
            in("x8") nr,
            inlateout("x0") a0 as isize => rc,
            in("x1") a1,
            in("x2") a2,
            in("x3") a3,
            options(nostack),
        );
    }
    rc
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{MemfdFlags, SealFlags};

    fn memfd_with(data: &[u8]) -> rustix::fd::OwnedFd {
        let fd = rustix::fs::memfd_create(
            c"klpctl-test",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .unwrap();
        write_all(fd.as_fd(), data).unwrap();
        fd
    }

    #[test]
    fn sealed_memfd_maps_read_only_with_the_same_bytes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let fd = memfd_with(&data);
        rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW)
            .unwrap();
        let map = Mapping::sealed_read_only(&fd, data.len()).unwrap();
        assert_eq!(map.bytes(), &data[..]);
        // Sealed: the bytes under the mapping cannot be changed any more.
        assert!(rustix::io::pwrite(&fd, b"x", 0).is_err());
    }

    #[test]
    fn an_unsealed_memfd_is_refused() {
        let fd = memfd_with(b"module bytes");
        assert_eq!(
            Mapping::sealed_read_only(&fd, 12).err(),
            Some(rustix::io::Errno::PERM)
        );
        rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE).unwrap();
        // Writes sealed but not shrinking: still refused.
        assert_eq!(
            Mapping::sealed_read_only(&fd, 12).err(),
            Some(rustix::io::Errno::PERM)
        );
        assert_eq!(
            Mapping::sealed_read_only(&fd, 0).err(),
            Some(rustix::io::Errno::INVAL)
        );
    }
}

/// A static message (error texts): a thin pointer to a NUL-terminated
/// string that lives for the whole program: a literal made by the `msg!`
/// macro, or a command-line argument an error quotes. Half the size of a
/// `&str`, so
/// an `Error` is 16 bytes rather than 24, which makes every `?` and every
/// error construction cheaper; and unlike a `&&str` it needs no 16-byte
/// slice per message in `.rodata`.
#[derive(Clone, Copy)]
pub struct Msg(*const core::ffi::c_char);

impl Msg {
    /// The message `s`.
    pub const fn new(s: &'static CStr) -> Msg {
        Msg(s.as_ptr())
    }

    /// The text.
    pub fn text(self) -> &'static str {
        core::str::from_utf8(self.bytes()).unwrap_or("?")
    }

    /// The bytes, as they are (a command-line argument need not be UTF-8).
    pub fn bytes(self) -> &'static [u8] {
        // SAFETY: the pointer comes from a `&'static CStr` (`Msg::new`, the
        // only constructor), so it points at a NUL-terminated string that
        // lives, unchanged, for the whole program.
        unsafe { CStr::from_ptr(self.0) }.to_bytes()
    }
}

impl PartialEq for Msg {
    fn eq(&self, other: &Msg) -> bool {
        self.text() == other.text()
    }
}

impl Eq for Msg {}

impl core::fmt::Debug for Msg {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        f.write_str(self.text())
    }
}
