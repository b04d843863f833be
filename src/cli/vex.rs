//! `klpctl vex`: prints the OpenVEX 0.2.0 document [`crate::ops::vex`]
//! builds from the live patches klpctl claims right now. `apply` and
//! `disable` keep the same document in `/run/klpctl/vex.json`, replaced
//! atomically; `klpctl vex` writes that file and prints the same bytes. When nothing
//! is claimed there is no document (OpenVEX requires a statement): the
//! file is removed and `klpctl vex` prints nothing on stdout.
#![forbid(unsafe_code)]

use super::args::{Args, Cli, Res, kernel_args, opt};
use crate::error::{Context, Error, Result};
use crate::files::AtomicFile;
use crate::ops::vex;
use crate::out::Out;
use rustix::io::Errno;

/// `klpctl vex [--no-wait]`: prints the document, and brings
/// `/run/klpctl/vex.json` up to date with it.
pub fn vex(_: &mut Cli, a: &mut Args) -> Res {
    let k = kernel_args(a, opt::NO_WAIT)?;
    let _lock = crate::state::lock(k.lock_wait_s, &mut || {
        super::render::event(crate::ops::Event::LockWait)
    })?;
    Ok(refresh(true)?)
}

/// After `apply` or `disable`, under their lock: rewrites
/// `/run/klpctl/vex.json`. When it cannot, it removes the file, so a
/// scanner never reads claims that no longer hold, and warns.
pub fn keep_current() {
    if let Err(e) = refresh(false) {
        let gone = matches!(rustix::fs::unlink(vex::FILE), Ok(()) | Err(Errno::NOENT));
        Out::stderr()
            .s("klpctl: warning: ")
            .b(vex::FILE.to_bytes())
            .s(" not updated")
            .s(if gone {
                " (removed): "
            } else {
                " and not removed: "
            })
            .error(e)
            .nl();
    }
}

fn refresh(stdout: bool) -> Result<()> {
    let mut buf = [0u8; vex::MAX_DOCUMENT];
    let document = match write_current(&mut buf) {
        Ok(d) => d,
        Err(e) => {
            // Whatever stopped the new document (too many claims, a full
            // /run, a damaged vex.doc), the old one may claim a patch that
            // is no longer live: no file rather than a stale one.
            let _ = rustix::fs::unlink(vex::FILE);
            return Err(e);
        }
    };
    match document {
        None if stdout => {
            Out::stderr().s("klpctl: no VEX document: no live patch klpctl applied fixes a CVE\n");
        }
        Some(d) if stdout => {
            crate::sys::write_all(crate::sys::stdout(), d).ctx(msg!("write the VEX document"))?;
        }
        _ => {}
    }
    Ok(())
}

/// Replaces `/run/klpctl/vex.json` with the document of the claims that
/// hold now ([`vex::current`]), or removes the file when there is no
/// statement to make. The document, if any.
fn write_current(buf: &mut [u8; vex::MAX_DOCUMENT]) -> Result<Option<&[u8]>> {
    let Some(document) = vex::current(buf)? else {
        // No statement to make, and OpenVEX has no empty document: no
        // file, so nothing stale is left for a scanner to believe.
        match rustix::fs::unlink(vex::FILE) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(Error::Io(msg!("remove /run/klpctl/vex.json"), e)),
        }
        return Ok(None);
    };
    // World-readable for scanners, whatever the umask.
    let mut f = AtomicFile::create(vex::FILE.to_bytes(), 0o644)?;
    f.set_mode(0o644)?;
    f.write(document)?;
    f.commit()?;
    Ok(Some(document))
}
