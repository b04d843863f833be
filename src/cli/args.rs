//! Argument parsing: a cursor over argv, and the checks shared by several
//! commands.
#![forbid(unsafe_code)]

use crate::error::{Error, Failure, Msg, Result};
use core::ffi::CStr;

/// What a command returns: nothing, or an error with its detail.
pub type Res = core::result::Result<(), Failure>;

/// Per-invocation state of the command line.
pub struct Cli {
    /// The error returned has been said on stderr already, with its own
    /// subject (`apply --dir` says each bundle's failure as it happens).
    pub reported: bool,
}

/// A cursor over the arguments of one command.
pub struct Args<'a> {
    v: &'a [&'static CStr],
    i: usize,
}

impl<'a> Args<'a> {
    /// A cursor at the first of `v`.
    pub fn new(v: &'a [&'static CStr]) -> Self {
        Args { v, i: 0 }
    }

    /// The next argument.
    pub fn arg(&mut self) -> Option<&'static [u8]> {
        let a = self.v.get(self.i)?;
        self.i += 1;
        Some(a.to_bytes())
    }

    /// The value of the option just read, as a C string.
    /// A value that starts with `--` is taken for a forgotten value
    /// followed by the next option (`--dir --json`), and refused.
    pub fn value_c(&mut self) -> Result<&'static CStr> {
        let a = self
            .v
            .get(self.i)
            .filter(|v| !v.to_bytes().starts_with(b"--"))
            .ok_or(Error::Usage(msg!("an option is missing its value")))?;
        self.i += 1;
        Ok(a)
    }

    /// The value of the option just read.
    pub fn value(&mut self) -> Result<&'static [u8]> {
        self.value_c().map(|c| c.to_bytes())
    }

    /// The value as UTF-8.
    pub fn value_str(&mut self) -> Result<&'static str> {
        core::str::from_utf8(self.value()?)
            .map_err(|_| Error::Usage(msg!("option values must be UTF-8")))
    }

    /// The value as a decimal u64.
    pub fn value_u64(&mut self) -> Result<u64> {
        crate::codec::parse_u64(self.value()?)
            .ok_or(Error::Usage(msg!("expected a non-negative decimal number")))
    }

    /// The argument just read, as a C string (for positional paths).
    pub fn current_c(&self) -> &'static CStr {
        self.v[self.i - 1]
    }

    /// The usage error for the argument just read: the command does not
    /// take it.
    pub fn unexpected(&self) -> Error {
        Error::Argument(Msg::new(self.current_c()))
    }
}

/// The one positional BUNDLE argument of a command; `extra` takes the
/// command's options (returning whether it took `arg`).
pub fn bundle_path(
    a: &mut Args,
    extra: &mut dyn FnMut(&mut Args, &'static [u8]) -> Result<bool>,
) -> Result<&'static CStr> {
    let mut path = None;
    while let Some(arg) = a.arg() {
        if extra(a, arg)? {
            continue;
        }
        if path.is_none() && !arg.starts_with(b"-") {
            path = Some(a.current_c());
        } else {
            return Err(a.unexpected());
        }
    }
    path.ok_or(Error::Usage(msg!("missing BUNDLE argument")))
}

/// `--timeout SECS`, 1 to 86400, in milliseconds.
pub fn timeout(a: &mut Args) -> Result<u64> {
    let s = a.value_u64()?;
    if s == 0 || s > 86_400 {
        return Err(Error::Usage(msg!("--timeout must be 1 to 86400 seconds")));
    }
    Ok(s * 1000)
}

/// Which options a kernel command takes (see [`kernel_args`]).
pub mod opt {
    /// `--timeout SECS`
    pub const TIMEOUT: u16 = 1;
    /// `--keyring DIR`
    pub const KEYRING: u16 = 2;
    /// `--allow-downgrade`
    pub const DOWNGRADE: u16 = 4;
    /// `--state-dir DIR`
    pub const STATE: u16 = 8;
    /// `--no-wait`
    pub const NO_WAIT: u16 = 16;
    /// `--json`
    pub const JSON: u16 = 32;
    /// `--dir DIR`
    pub const DIR: u16 = 64;
    /// `--after SECS`
    pub const AFTER: u16 = 128;
    /// One positional argument (a patch name).
    pub const ONE: u16 = 256;
    /// Any number of positional arguments (bundles).
    pub const MANY: u16 = 512;
}

/// The options of the kernel commands, parsed once for all of them.
pub struct KernelArgs {
    /// `--timeout`, in milliseconds (default 60 s).
    pub timeout_ms: u64,
    /// `--keyring`.
    pub keyring: Option<&'static CStr>,
    /// `--allow-downgrade`.
    pub allow_downgrade: bool,
    /// `--state-dir`.
    pub state_dir: Option<&'static CStr>,
    /// How long to wait for the lock: 300 s, or 0 with `--no-wait`.
    pub lock_wait_s: u64,
    /// `--json`.
    pub json: bool,
    /// `--dir`.
    pub dir: Option<&'static CStr>,
    /// `--after`, seconds.
    pub after_s: u64,
    /// The positional arguments (bundles, or one patch name).
    pub args: heapless::Vec<&'static CStr, 64>,
}

/// The kernel commands' options by name.
const OPTIONS: [(&[u8], u16); 8] = [
    (b"--timeout", opt::TIMEOUT),
    (b"--keyring", opt::KEYRING),
    (b"--allow-downgrade", opt::DOWNGRADE),
    (b"--state-dir", opt::STATE),
    (b"--no-wait", opt::NO_WAIT),
    (b"--json", opt::JSON),
    (b"--dir", opt::DIR),
    (b"--after", opt::AFTER),
];

/// Parses a kernel command's options; one that is not in `allowed`, a
/// positional argument without [`opt::ONE`] or [`opt::MANY`], or a second
/// one without [`opt::MANY`], is a usage error.
pub fn kernel_args(a: &mut Args, allowed: u16) -> Result<KernelArgs> {
    let mut k = KernelArgs {
        timeout_ms: 60_000,
        keyring: None,
        allow_downgrade: false,
        state_dir: None,
        lock_wait_s: 300,
        json: false,
        dir: None,
        after_s: 0,
        args: heapless::Vec::new(),
    };
    while let Some(arg) = a.arg() {
        let flag = match OPTIONS.iter().find(|o| o.0 == arg) {
            Some(o) => o.1,
            None if !arg.starts_with(b"-")
                && (allowed & opt::MANY != 0 || allowed & opt::ONE != 0 && k.args.is_empty()) =>
            {
                k.args
                    .push(a.current_c())
                    .map_err(|_| Error::Usage(msg!("at most 64 bundles")))?;
                continue;
            }
            None => 0,
        };
        match flag & allowed {
            opt::TIMEOUT => k.timeout_ms = timeout(a)?,
            opt::KEYRING => k.keyring = Some(a.value_c()?),
            opt::DOWNGRADE => k.allow_downgrade = true,
            opt::STATE => k.state_dir = Some(a.value_c()?),
            opt::NO_WAIT => k.lock_wait_s = 0,
            opt::JSON => k.json = true,
            opt::DIR => k.dir = Some(a.value_c()?),
            opt::AFTER => k.after_s = a.value_u64()?.min(86_400),
            _ => return Err(a.unexpected()),
        }
    }
    Ok(k)
}
