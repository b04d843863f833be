//! `klpctl vex`: an OpenVEX 0.2.0 document of the CVEs the live patches
//! klpctl claims (see [`crate::ops::vex`]) fix right now, one `fixed`
//! statement per CVE and patch. `apply` and `disable` keep the same
//! document in `/run/klpctl/vex.json`, replaced atomically. When nothing
//! is claimed there is no document (OpenVEX requires a statement): the
//! file is removed and `klpctl vex` prints nothing on stdout.
#![forbid(unsafe_code)]

use super::args::{Args, Cli, Res, kernel_args, opt};
use crate::error::{Context, Error, Result};
use crate::files::AtomicFile;
use crate::json::Json;
use crate::kernel::Running;
use crate::ops::vex::{self, Doc};
use crate::out::Out;
use crate::state::Record;

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
        match rustix::fs::unlink(c"/run/klpctl/vex.json") {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(Error::Io("cannot remove /run/klpctl/vex.json", e)),
        }
        if stdout {
            Out::stderr()
                .s("klpctl: no CVE fixed by a live patch klpctl applied: no VEX document\n");
        }
        return Ok(());
    }
    let k = Running::read();
    let f = AtomicFile::create(vex::FILE, 0o644)?;
    {
        let mut o = Out::to(Some(f.fd()));
        write(&mut o, &d, &k)?;
        o.finish().ctx("cannot write /run/klpctl/vex.json")?;
    }
    f.commit()?;
    if stdout {
        write(&mut Out::stdout(), &d, &k)?;
    }
    Ok(())
}

/// `t` (Unix seconds) as RFC 3339 UTC: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(t: u64, out: &mut [u8; 20]) -> &[u8] {
    // Days to a civil date, counting in 400-year eras from 0000-03-01 so
    // that the leap day ends a year.
    let days = t / 86400 + 719_468;
    let (era, doe) = (days / 146_097, days % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + (month <= 2) as u64;
    let secs = t % 86400;
    *out = *b"0000-00-00T00:00:00Z";
    // Each field's digits, right to left from the byte before its end.
    for (mut v, mut at) in [
        (year, 3),
        (month, 6),
        (day, 9),
        (secs / 3600, 12),
        (secs / 60 % 60, 15),
        (secs % 60, 18),
    ] {
        while v > 0 {
            out[at] = b'0' + (v % 10) as u8;
            v /= 10;
            at -= 1;
        }
    }
    &out[..]
}

/// One JSON string made of `parts` (all plain ASCII that needs no escape,
/// or escaped as one).
fn joined(j: &mut Json, parts: &[&[u8]]) {
    let mut b: heapless::Vec<u8, 768> = heapless::Vec::new();
    for p in parts {
        let _ = b.extend_from_slice(p);
    }
    j.str(&b);
}

/// The document, one line of JSON.
#[inline(never)]
fn write(o: &mut Out, d: &Doc, k: &Running) -> Result<()> {
    let (mut t1, mut t2) = ([0u8; 20], [0u8; 20]);
    let mut j = Json::new(o);
    j.obj()
        .key("@context")
        .str(b"https://openvex.dev/ns/v0.2.0");
    j.key("@id");
    joined(&mut j, &[b"urn:uuid:", d.boot_id.as_bytes()]);
    j.key("author").str(b"klpctl");
    j.key("timestamp").str(rfc3339(d.issued, &mut t1));
    j.key("last_updated").str(rfc3339(d.updated, &mut t1));
    j.key("version").u(d.version);
    j.key("tooling")
        .str(concat!("klpctl ", env!("CARGO_PKG_VERSION")).as_bytes());
    // The running kernel as SBOM tools name an installed kernel; a purl
    // version spells '+' as %2B.
    let mut kp: heapless::Vec<u8, 160> = heapless::Vec::new();
    let _ = kp.extend_from_slice(b"pkg:generic/linux-kernel@");
    for &c in k.release.as_bytes() {
        let _ = match c {
            b'+' => kp.extend_from_slice(b"%2B"),
            _ => kp.extend_from_slice(&[c]),
        };
    }
    let mut bid = [0u8; 128];
    let build_id = crate::codec::hex_encode(&k.build_id, &mut bid)
        .filter(|b| !b.is_empty())
        .unwrap_or(b"unknown");
    j.key("statements").arr();
    vex::each_claim(&mut |r: &Record| {
        let applied = rfc3339(r.time, &mut t2);
        let mut vb = [0u8; 20];
        let version = crate::codec::fmt_u64(r.version, &mut vb);
        for cve in r.cves.split(',').filter(|c| !c.is_empty()) {
            j.obj().key("vulnerability").obj().key("name");
            j.str(cve.as_bytes()).end_obj();
            j.key("timestamp").str(applied);
            j.key("products").arr();
            j.obj().key("@id").str(&kp).end_obj();
            for p in r.products.split(' ').filter(|p| !p.is_empty()) {
                j.obj().key("@id").str(p.as_bytes()).end_obj();
            }
            j.end_arr().key("status").str(b"fixed");
            j.key("status_notes");
            joined(
                &mut j,
                &[
                    b"Fixed in the running kernel by live patch ",
                    r.name.as_bytes(),
                    b" (stream ",
                    r.stream.as_bytes(),
                    b", version ",
                    version,
                    b"; payload sha256 ",
                    r.sha256.as_bytes(),
                    b"), applied by klpctl at ",
                    applied,
                    b" to kernel build-id ",
                    build_id,
                    b". A live patch does not persist across reboot: after one, this holds only once the patch is applied again.",
                ],
            );
            j.end_obj();
        }
    })?;
    j.end_arr().end_obj().nl();
    o.finish().ctx("cannot write the VEX document")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let mut b = [0u8; 20];
        for (t, s) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_764_300_000, "2025-11-28T03:20:00Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
        ] {
            assert_eq!(rfc3339(t, &mut b), s.as_bytes(), "{t}");
        }
    }
}
