//! The trust commands every build has: `verify` (signatures and payload)
//! and `info` (the manifest, unverified).
#![forbid(unsafe_code)]

use super::args::{Args, Cli, Res, bundle_path};
use super::render;
use crate::error::{About, Error, Failure, Result};
use crate::files::{self, FileSource};
use crate::json::Json;
use crate::out::Out;
use crate::trust::keys::{Keyring, Verdict};
use crate::trust::manifest::MAX_MANIFEST;
use crate::trust::{bundle, keyring};
use core::ffi::CStr;

/// An open bundle file.
pub struct Opened {
    /// The open file.
    pub fd: rustix::fd::OwnedFd,
}

/// Opens the bundle at `path`.
pub fn open_bundle(path: &'static CStr) -> Result<Opened> {
    Ok(Opened {
        fd: files::open_ro(path, msg!("open bundle"))?,
    })
}

/// Options shared by verify-like commands.
struct VerifyOpts {
    keyring: Option<&'static CStr>,
    json: bool,
}

/// `klpctl verify BUNDLE`.
pub fn verify(_: &mut Cli, a: &mut Args) -> Res {
    let mut opts = VerifyOpts {
        keyring: None,
        json: false,
    };
    let path = bundle_path(a, &mut |a, arg| {
        match arg {
            b"--keyring" => opts.keyring = Some(a.value_c()?),
            b"--json" => opts.json = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let dir = opts
        .keyring
        .map_or(keyring::KEYRING_DIR.to_bytes(), |k| k.to_bytes());
    let mut mbuf = [0u8; MAX_MANIFEST];
    let mut verdict = None;
    let result = keyring::load(opts.keyring).about(dir).and_then(|ring| {
        verify_file(path, &ring, opts.json, &mut mbuf, &mut verdict).about(path.to_bytes())
    });
    // --json promises one JSON object on stdout, also when the keyring or
    // the file cannot be used at all.
    if let Err(f) = &result {
        if opts.json {
            verify_err_json(path, f.error, verdict.as_ref());
        } else if let Some(v) = &verdict {
            render::verdict_human(&mut Out::stderr(), v);
        }
    }
    result
}

/// Verifies the bundle at `path` against `ring` and prints what it holds;
/// `verdict` keeps the signature verdict for the error report.
fn verify_file(
    path: &'static CStr,
    ring: &Keyring,
    json: bool,
    mbuf: &mut [u8; MAX_MANIFEST],
    verdict: &mut Option<Verdict>,
) -> Result<()> {
    let b = open_bundle(path)?;
    let src = FileSource::new(&b.fd, msg!("read bundle"))?;
    let (v, signed) = bundle::read(&src, mbuf)?.authenticate(ring);
    let s = verdict.insert(v);
    let signed = signed?;
    signed.check_payload(&src)?;
    let m = &signed.manifest;
    let mut o = Out::stdout();
    if json {
        let mut j = Json::new(&mut o);
        j.obj()
            .key("ok")
            .bool(true)
            .key("bundle")
            .str(path.to_bytes());
        j.key("manifest");
        render::manifest_json(&mut j, m);
        render::verdict_json(&mut j, s);
        j.end_obj().nl();
    } else {
        o.s("OK ").s(m.name).s(" ");
        render::stream_version(&mut o, m.stream, m.version);
        o.nl();
        render::manifest_human(&mut o, m);
        render::verdict_human(&mut o, s);
    }
    Ok(())
}

/// The `verify --json` object of a bundle that did not verify.
fn verify_err_json(path: &CStr, e: Error, verdict: Option<&Verdict>) {
    let mut o = Out::stdout();
    let mut j = Json::new(&mut o);
    j.obj()
        .key("ok")
        .bool(false)
        .key("bundle")
        .str(path.to_bytes());
    j.key("exit").u(e.exit_code() as u64);
    j.key("error").error(e);
    if let Some(v) = verdict {
        render::verdict_json(&mut j, v);
    }
    j.end_obj().nl();
}

/// `klpctl info BUNDLE`: the manifest, without trusting it.
pub fn info(_: &mut Cli, a: &mut Args) -> Res {
    let mut json = false;
    let path = bundle_path(a, &mut |_, arg| {
        json |= arg == b"--json";
        Ok(arg == b"--json")
    })?;
    let b = open_bundle(path);
    let mut mbuf = [0u8; MAX_MANIFEST];
    let read = b.and_then(|b| {
        let src = FileSource::new(&b.fd, msg!("read bundle"))?;
        let u = bundle::read(&src, &mut mbuf)?;
        let m = u.manifest_unverified()?;
        Ok((u.sigs, m))
    });
    // --json promises one JSON object on stdout, also when the file is
    // not a bundle at all.
    let (sigs, m) = match read {
        Ok(x) => x,
        Err(e) => {
            if json {
                let mut o = Out::stdout();
                let mut j = Json::new(&mut o);
                j.obj().key("verified").bool(false);
                j.key("bundle").str(path.to_bytes());
                j.key("exit").u(e.exit_code() as u64);
                j.key("error").error(e);
                j.end_obj().nl();
            }
            return Err(Failure::from(e).about(path.to_bytes()));
        }
    };
    let mut o = Out::stdout();
    if json {
        let mut j = Json::new(&mut o);
        j.obj()
            .key("verified")
            .bool(false)
            .key("bundle")
            .str(path.to_bytes());
        j.key("manifest");
        render::manifest_json(&mut j, &m);
        j.key("signatures").arr();
        for s in &sigs {
            j.obj().key("key_id").hex(&s.key_id).end_obj();
        }
        j.end_arr().end_obj().nl();
    } else {
        o.s("UNVERIFIED ").s(m.name).s(" ");
        render::stream_version(&mut o, m.stream, m.version);
        o.s(" (run klpctl verify to check signatures and payload)")
            .nl();
        render::manifest_human(&mut o, &m);
        o.s("  signatures: ").u(sigs.len() as u64).nl();
        for s in &sigs {
            o.s("    key ").hex(&s.key_id).nl();
        }
    }
    Ok(())
}
