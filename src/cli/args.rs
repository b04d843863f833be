//! Argument parsing: a cursor over argv, and the checks shared by several
//! commands.
#![forbid(unsafe_code)]

use crate::error::{Error, Failure, Result};
use core::ffi::CStr;

/// What a command returns: nothing, or an error with its detail.
pub type Res = core::result::Result<(), Failure>;

/// Per-invocation context: what is being worked on, for error messages.
pub struct Cli {
    /// The file or object the current error is about (printed before it).
    pub ctx: heapless::Vec<u8, 256>,
}

impl Cli {
    /// Sets what the next error is about (truncated if too long).
    pub fn ctx(&mut self, what: &[u8]) {
        self.ctx.clear();
        let _ = self.ctx.extend_from_slice(&what[..what.len().min(256)]);
    }
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
            .ok_or(Error::Usage(
                "an option is missing its value (see klpctl --help)",
            ))?;
        self.i += 1;
        Ok(a)
    }

    /// The value of the option just read.
    pub fn value(&mut self) -> Result<&'static [u8]> {
        self.value_c().map(|c| c.to_bytes())
    }

    /// The value as UTF-8.
    pub fn value_str(&mut self) -> Result<&'static str> {
        core::str::from_utf8(self.value()?).map_err(|_| Error::Usage("option values must be UTF-8"))
    }

    /// The value as a decimal u64.
    pub fn value_u64(&mut self) -> Result<u64> {
        crate::codec::parse_u64(self.value()?)
            .ok_or(Error::Usage("expected a non-negative decimal number"))
    }

    /// The argument just read, as a C string (for positional paths).
    pub fn current_c(&self) -> &'static CStr {
        self.v[self.i - 1]
    }
}

/// A usage error for an unexpected argument, which becomes the context.
pub fn unknown(cli: &mut Cli, arg: &'static [u8]) -> Error {
    cli.ctx(arg);
    if arg.starts_with(b"-") {
        Error::Usage("unknown option (see klpctl --help)")
    } else {
        Error::Usage("unexpected argument (see klpctl --help)")
    }
}

/// The one positional BUNDLE argument of a command; `extra` takes the
/// command's options (returning whether it took `arg`).
pub fn bundle_path(
    cli: &mut Cli,
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
            return Err(unknown(cli, arg));
        }
    }
    path.ok_or(Error::Usage("missing BUNDLE argument"))
}

/// `--timeout SECS`, 1 to 86400, in milliseconds.
pub fn timeout(a: &mut Args) -> Result<u64> {
    let s = a.value_u64()?;
    if s == 0 || s > 86_400 {
        return Err(Error::Usage("--timeout must be 1 to 86400 seconds"));
    }
    Ok(s * 1000)
}
