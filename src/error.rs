//! One flat error type for the whole program. Every variant says what went
//! wrong: its class, its subject and the fact, with both sides of a
//! mismatch; what to do about it is in docs/commands.md ("Errors and what
//! to do"). Every variant belongs to one exit-code class (see
//! [`Error::exit_code`]).
#![forbid(unsafe_code)]

use rustix::io::Errno;

pub use crate::sys::Msg;

/// Everything that can go wrong in klpctl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    // ---- exit 1: internal or I/O ----
    /// A system call on a named object failed. The text says what could
    /// not be done (`open bundle`); [`Error::class`] adds `cannot `.
    Io(Msg, Errno),
    /// A fixed-size buffer was too small for data we produced ourselves.
    Internal(Msg),
    /// A path that must name a regular file names something else (a FIFO,
    /// a device, a directory); it was refused before anything was read.
    /// Worded as [`Error::Io`] is.
    NotRegular(Msg),

    // ---- exit 2: usage ----
    /// The command line is wrong; the text says how.
    Usage(Msg),
    /// An argument the command does not take, which it carries: an
    /// unknown option (it starts with `-`) or an argument too many.
    /// Worded `ARG: unknown option` or `ARG: unexpected argument`.
    Argument(Msg),
    /// A key or signature file is malformed or of an unsupported kind.
    KeyFile(Msg),
    /// A module file given to `pack` is unusable.
    Module(Msg),

    // ---- exit 3: bundle rejected ----
    /// The bundle's structure is wrong (magic, version, lengths, truncation).
    Bundle(Msg),
    /// The manifest is not valid manifest JSON or a field is out of bounds.
    Manifest(Msg),
    /// A manifest field is out of bounds; the text names the field and
    /// its bounds (`name: 1-55 of [A-Za-z0-9_]`).
    ManifestField(Msg),
    /// Not enough distinct trusted keys signed the manifest.
    NotEnoughSignatures,
    /// A signature by a trusted key does not verify.
    BadSignature,
    /// The payload's SHA-256 or size differs from the manifest.
    Digest,

    // ---- exit 4: not for this kernel ----
    /// The bundle targets another kernel (release, build-id or arch). The
    /// text follows [`Error::class`]'s `not for this ` (`kernel: ...`).
    WrongKernel(Msg),
    /// The running kernel has no livepatch support.
    NoLivepatch,

    // ---- exit 5: refused by policy ----
    /// A lower version than one already applied in the same stream.
    Downgrade,
    /// Something else of the same name is already loaded.
    Conflict(Msg),
    /// The stream's rollback floor exists but cannot be read or parsed, so
    /// a downgrade cannot be ruled out.
    DamagedFloor,
    /// `apply --dir` leaves out a payload quarantined by the crash-loop
    /// guard.
    Quarantined,
    /// `apply --dir` leaves out a patch named by `klpctl.skip=`.
    SkippedBySwitch,
    /// The crash-loop guard cannot do its job (its file cannot be read in
    /// full, would outgrow its bound, or the boot id is unreadable), so
    /// nothing is done with the state directory (fail closed).
    Guard(Msg),
    /// `install` would leave more bundles for one kernel release in the
    /// bundle directory than `apply --dir` takes.
    TooManyBundles,

    // ---- exit 6: the kernel refused the module ----
    /// `finit_module`/`init_module` failed; the errno is the kernel's reason.
    KernelRefused(Errno),
    /// The module is not a livepatch (no `livepatch=Y`, refused before
    /// loading), or it loaded and registered no livepatch under its name
    /// (unloaded again); the text says which.
    NotALivepatch(Msg),

    // ---- exit 7 / 8: transitions ----
    /// The transition did not finish in time and was reverted.
    TimedOutReverted,
    /// A disable did not finish in time; the patch was re-enabled.
    DisableTimedOut,
    /// The transition did not finish and the revert did not either.
    Stuck(Msg),

    // ---- exit 9 ----
    /// Another klpctl holds the lock and `--no-wait` was given.
    Locked,

    // ---- exit 10 ----
    /// The patch is applied and live, but klpctl could not write its own
    /// state afterwards (record or rollback floor): what failed, and why.
    StateNotSaved(Msg, Errno),
}

/// Result type used throughout klpctl.
pub type Result<T> = core::result::Result<T, Error>;

/// The specifics that make an error actionable, such as both sides of a
/// mismatch (`bundle is for 6.1.0-41-amd64, running 6.12.117+deb12-amd64`).
/// A fixed buffer (longer text is cut), so errors need no heap.
#[derive(Clone)]
pub struct Detail(heapless::Vec<u8, 256>);

impl Detail {
    /// No detail.
    pub const fn none() -> Detail {
        Detail(heapless::Vec::new())
    }

    /// `parts` concatenated.
    pub fn of(parts: &[&[u8]]) -> Detail {
        let mut d = Detail::none();
        for p in parts {
            let room = d.0.capacity() - d.0.len();
            let _ = d.0.extend_from_slice(&p[..p.len().min(room)]);
        }
        d
    }

    /// The text.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// An error together with its [`Detail`]: what the operations return, so
/// the detail travels with the error up to whoever renders it.
#[derive(Clone)]
pub struct Failure {
    /// What went wrong.
    pub error: Error,
    /// What it is about: the file, directory, patch name or argument the
    /// command was working on (printed before the error); empty when it is
    /// about nothing in particular (the lock, the kernel). Every subject is
    /// a command-line argument or a constant, so a reference suffices.
    pub about: &'static [u8],
    /// The specifics, possibly empty.
    pub detail: Detail,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            error,
            about: b"",
            detail: Detail::none(),
        }
    }
}

impl Error {
    /// This error with a detail made of `parts`.
    pub fn with(self, parts: &[&[u8]]) -> Failure {
        Failure {
            error: self,
            about: b"",
            detail: Detail::of(parts),
        }
    }
}

impl Failure {
    /// This failure about `subject`, unless it already names a subject of
    /// its own (the nearer one wins).
    pub fn about(mut self, subject: &'static [u8]) -> Failure {
        if self.about.is_empty() {
            self.about = subject;
        }
        self
    }
}

/// Says what a failure is about, where a command knows it.
pub trait About<T> {
    /// The error, if any, as a [`Failure`] about `subject` (see
    /// [`Failure::about`]).
    fn about(self, subject: &'static [u8]) -> core::result::Result<T, Failure>;
}

impl<T, E: Into<Failure>> About<T> for core::result::Result<T, E> {
    fn about(self, subject: &'static [u8]) -> core::result::Result<T, Failure> {
        self.map_err(|e| e.into().about(subject))
    }
}

impl Error {
    /// The documented exit code of this error's class.
    pub fn exit_code(self) -> u8 {
        match self {
            Error::Io(..) | Error::Internal(_) | Error::NotRegular(_) => 1,
            Error::Usage(_) | Error::Argument(_) | Error::KeyFile(_) | Error::Module(_) => 2,
            Error::Bundle(_)
            | Error::Manifest(_)
            | Error::ManifestField(_)
            | Error::NotEnoughSignatures
            | Error::BadSignature
            | Error::Digest => 3,
            Error::WrongKernel(_) | Error::NoLivepatch => 4,
            Error::Downgrade
            | Error::Conflict(_)
            | Error::DamagedFloor
            | Error::Quarantined
            | Error::SkippedBySwitch
            | Error::Guard(_)
            | Error::TooManyBundles => 5,
            Error::KernelRefused(_) | Error::NotALivepatch(_) => 6,
            Error::TimedOutReverted | Error::DisableTimedOut => 7,
            Error::Stuck(_) => 8,
            Error::Locked => 9,
            Error::StateNotSaved(..) => 10,
        }
    }

    /// The class a message belongs to, said here once rather than in each
    /// message: `cannot ` (I/O), `bundle rejected: `, `manifest [field ]`,
    /// `not for this `, `kernel refused the module: `, or nothing. The
    /// one-line message is the class followed by [`Error::message`].
    // Out of line: inlined into each renderer it cost about 500 bytes.
    #[inline(never)]
    pub fn class(self) -> &'static str {
        match self {
            Error::Bundle(_) | Error::NotEnoughSignatures | Error::BadSignature | Error::Digest => {
                "bundle rejected: "
            }
            Error::Manifest(_) => "manifest ",
            Error::ManifestField(_) => "manifest field ",
            Error::Io(..) | Error::NotRegular(_) => "cannot ",
            Error::WrongKernel(_) => "not for this ",
            Error::KernelRefused(_) => "kernel refused the module: ",
            _ => "",
        }
    }

    /// The message after its [`Error::class`] (a detail such as an errno
    /// string may follow).
    pub fn message(self) -> &'static str {
        match self {
            Error::Io(what, _) => what.text(),
            Error::Internal(what) | Error::NotRegular(what) => what.text(),
            Error::Usage(m) | Error::KeyFile(m) | Error::Module(m) => m.text(),
            Error::Argument(a) if a.bytes().starts_with(b"-") => "unknown option",
            Error::Argument(_) => "unexpected argument",
            Error::Bundle(m) | Error::Manifest(m) | Error::ManifestField(m) => m.text(),
            Error::NotEnoughSignatures => "not enough distinct trusted keys signed it",
            Error::BadSignature => "a trusted key's signature does not verify",
            Error::Digest => "payload does not match the SHA-256 in the signed manifest",
            Error::WrongKernel(m) => m.text(),
            Error::NoLivepatch => {
                "no livepatch support in this kernel (/sys/kernel/livepatch missing)"
            }
            Error::Downgrade => "refusing downgrade: a newer version of this stream was applied",
            Error::Conflict(m) => m.text(),
            Error::DamagedFloor => "refusing: this stream's rollback floor is damaged",
            Error::Quarantined => {
                "quarantined: a boot that tried it crashed before it was confirmed good"
            }
            Error::SkippedBySwitch => "skipped: klpctl.skip= on the kernel command line names it",
            Error::Guard(m) => m.text(),
            Error::TooManyBundles => {
                "refusing install: over 64 bundles for this kernel release in the directory (the apply --dir limit)"
            }
            Error::KernelRefused(e) => explain_load_errno(e),
            Error::NotALivepatch(m) => m.text(),
            Error::TimedOutReverted => {
                "transition timed out; patch reverted and unloaded, system unchanged"
            }
            Error::DisableTimedOut => "disable timed out; patch switched back on, system unchanged",
            Error::Stuck(m) => m.text(),
            Error::Locked => "another klpctl is running (lock /run/klpctl/lock is held)",
            Error::StateNotSaved(..) => "applied and live, but its state was not saved",
        }
    }
}

/// What a module-load errno means for a livepatch, and what to do about it.
fn explain_load_errno(e: Errno) -> &'static str {
    match e {
        Errno::KEYREJECTED | Errno::NOKEY | Errno::KEYEXPIRED => {
            "its signature is missing or untrusted"
        }
        Errno::PERM => {
            "not permitted (lockdown wants signed modules, modules_disabled or no CAP_SYS_MODULE)"
        }
        Errno::BUSY => "busy (a transition, ftrace_enabled=0 or a kprobe)",
        Errno::INVAL => "invalid livepatch (malformed or klp_state conflict)",
        Errno::NOEXEC => "wrong format or no CONFIG_LIVEPATCH",
        Errno::EXIST => "a module of this name is already loaded",
        Errno::NOMEM => "out of memory",
        _ => "its init or pre-patch callback failed",
    }
}

/// Adds a description of the failed operation to an errno.
pub trait Context<T> {
    /// Maps an `Errno` into [`Error::Io`] naming `what` failed.
    fn ctx(self, what: Msg) -> Result<T>;
}

impl Error {
    /// The same failure, reclassified as "the patch is live but its state
    /// was not saved" when it is an I/O error (exit 10).
    pub fn unsaved(self) -> Error {
        match self {
            Error::Io(what, e) => Error::StateNotSaved(what, e),
            other => other,
        }
    }
}

impl<T> Context<T> for rustix::io::Result<T> {
    fn ctx(self, what: Msg) -> Result<T> {
        self.map_err(|e| Error::Io(what, e))
    }
}
