//! `klpctl vex`: an OpenVEX 0.2.0 document of the CVEs the live patches
//! klpctl claims (see [`crate::ops::vex`]) fix right now, one `fixed`
//! statement per CVE and patch. `apply` and `disable` keep the same
//! document in `/run/klpctl/vex.json`, replaced atomically. When nothing
//! is claimed there is no document (OpenVEX requires a statement): the
//! file is removed and `klpctl vex` prints nothing on stdout.
#![forbid(unsafe_code)]

use super::args::{Args, Cli, Res, kernel_args, opt};
use crate::codec::rfc3339;
use crate::error::{Context, Error, Result};
use crate::files::{self, AtomicFile};
use crate::kernel::Running;
use crate::ops::vex::{self, Doc};
use crate::out::Out;
use crate::state::Record;
use rustix::io::Errno;

/// `klpctl vex [--no-wait]`: prints the document, and brings
/// `/run/klpctl/vex.json` up to date with it.
pub fn vex(cli: &mut Cli, a: &mut Args) -> Res {
    let k = kernel_args(cli, a, opt::NO_WAIT)?;
    if let Some(x) = k.args.first() {
        return Err(super::args::unknown(cli, x.to_bytes()).into());
    }
    let _lock = crate::state::lock(k.lock_wait_s, &mut || {
        super::render::event(crate::ops::Event::LockWait)
    })?;
    Ok(refresh(true)?)
}

/// After `apply` or `disable`, under their lock: rewrites
/// `/run/klpctl/vex.json`, or warns that it could not.
pub fn keep_current() {
    if let Err(e) = refresh(false) {
        Out::stderr()
            .s("klpctl: warning: /run/klpctl/vex.json not updated: ")
            .error(e)
            .nl();
    }
}

#[inline(never)]
fn refresh(stdout: bool) -> Result<()> {
    let d = vex::doc()?;
    if d.statements == 0 {
        // No statement to make, and OpenVEX has no empty document: no
        // file, so nothing stale is left for a scanner to believe.
        match rustix::fs::unlink(vex::FILE) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(Error::Io(msg!("cannot remove /run/klpctl/vex.json"), e)),
        }
        if stdout {
            Out::stderr()
                .s("klpctl: no CVE fixed by a live patch klpctl applied: no VEX document\n");
        }
        return Ok(());
    }
    let f = AtomicFile::create(vex::FILE.to_bytes(), 0o644)?;
    {
        let mut o = Out::to(Some(f.fd()));
        write(&mut o, &d, &Running::read())?;
        o.finish().ctx(msg!("cannot write /run/klpctl/vex.json"))?;
    }
    f.commit()?;
    if stdout {
        // The file as written, so stdout is the same document byte for byte
        // without a second look at sysfs.
        let what = msg!("cannot read /run/klpctl/vex.json");
        let fd = files::open_own(vex::FILE, what)?;
        let size = files::regular_size(&fd, what)?;
        files::copy_range(&fd, 0, size, Error::Io(what, Errno::IO), what, |c| {
            crate::sys::write_all(crate::sys::stdout(), c)
                .ctx(msg!("cannot write the VEX document"))
        })?;
    }
    Ok(())
}

/// The document, one line of JSON. Every string in it is built from
/// validated identifiers (names, streams, CVEs, products, hex, dates), none
/// of which can hold `"`, `\` or a control character, so it is written as
/// it is, in large constant pieces.
#[inline(never)]
fn write(o: &mut Out, d: &Doc, k: &Running) -> Result<()> {
    let (mut t1, mut t2) = ([0u8; 20], [0u8; 20]);
    o.s("{\"@context\":\"https://openvex.dev/ns/v0.2.0\",\"@id\":\"urn:uuid:")
        .s(&d.boot_id)
        .s("\",\"author\":\"klpctl\",\"timestamp\":\"")
        .b(rfc3339(d.issued, &mut t1))
        .s("\",\"last_updated\":\"")
        .b(rfc3339(d.updated, &mut t1))
        .s("\",\"version\":")
        .u(d.version)
        .s(concat!(
            ",\"tooling\":\"klpctl ",
            env!("CARGO_PKG_VERSION"),
            "\",\"statements\":["
        ));
    let mut sep = "";
    vex::each_claim(&mut |r: &Record| {
        let applied = rfc3339(r.time, &mut t2);
        for cve in r.cves.split(',').filter(|c| !c.is_empty()) {
            o.s(sep)
                .s("{\"vulnerability\":{\"name\":\"")
                .s(cve)
                .s("\"},\"timestamp\":\"")
                .b(applied)
                // The running kernel as SBOM tools name an installed kernel,
                // percent-encoded as a purl version ('+' as %2B).
                .s("\",\"products\":[{\"@id\":\"pkg:generic/linux-kernel@");
            for &c in k.release.as_bytes() {
                if c.is_ascii_alphanumeric() || b"._-~".contains(&c) {
                    o.b(&[c]);
                } else {
                    let hex = b"0123456789ABCDEF";
                    o.b(&[b'%', hex[c as usize >> 4], hex[c as usize & 15]]);
                }
            }
            for p in r.products.split(' ').filter(|p| !p.is_empty()) {
                o.s("\"},{\"@id\":\"").s(p);
            }
            o.s("\"}],\"status\":\"fixed\",\"status_notes\":\"Fixed in the running kernel by live patch ")
                .s(r.name)
                .s(" (stream ")
                .s(r.stream)
                .s(", version ")
                .u(r.version)
                .s("; payload sha256 ")
                .s(r.sha256)
                .s("), applied by klpctl at ")
                .b(applied)
                .s(" to kernel build-id ");
            if k.build_id.is_empty() {
                o.s("unknown");
            }
            o.hex(&k.build_id).s(
                ". A live patch does not persist across reboot: after one, this holds only once the patch is applied again.\"}",
            );
            sep = ",";
        }
    })?;
    o.s("]}").nl();
    Ok(())
}
