//! The kernel side: loading livepatch modules and driving
//! `/sys/kernel/livepatch`.
#![forbid(unsafe_code)]

use rustix::io::Errno;

/// What a module-load errno means for a livepatch, and what to do about it.
pub fn explain_load_errno(e: Errno) -> &'static str {
    match e {
        Errno::KEYREJECTED | Errno::NOKEY | Errno::KEYEXPIRED | Errno::PERM => {
            "kernel refused the module: module signatures are enforced (module.sig_enforce or lockdown); sign the .ko with a key in the kernel's keyring"
        }
        Errno::BUSY => {
            "kernel refused the module: busy (another patch is in transition, kernel.ftrace_enabled=0, or a kprobe with a post handler sits on a patched function)"
        }
        Errno::INVAL => {
            "kernel refused the module: invalid livepatch (malformed patch, missing livepatch=Y, or incompatible klp_state with the patches already applied)"
        }
        Errno::NOEXEC => "kernel refused the module: not loadable here (wrong format, or kernel without CONFIG_LIVEPATCH)",
        Errno::EXIST => "kernel refused the module: a module of this name is already loaded",
        Errno::NOMEM => "kernel refused the module: out of memory",
        _ => "kernel refused the module (a pre-patch callback may have failed; see the kernel log below)",
    }
}

use crate::cli::{Args, Cli};
use crate::error::{Error, Result};

/// `klpctl apply`.
pub fn apply_cmd(_cli: &mut Cli, _a: &mut Args) -> Result<()> {
    Err(Error::Usage("apply: not implemented yet"))
}

/// `klpctl disable`.
pub fn disable_cmd(_cli: &mut Cli, _a: &mut Args) -> Result<()> {
    Err(Error::Usage("disable: not implemented yet"))
}

/// `klpctl status`.
pub fn status_cmd(_cli: &mut Cli, _a: &mut Args) -> Result<()> {
    Err(Error::Usage("status: not implemented yet"))
}
