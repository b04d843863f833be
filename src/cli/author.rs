//! The authoring commands of the full build: `keygen`, `pack`, `manifest`,
//! `attach` and `sign`. A device build leaves this module out.
#![forbid(unsafe_code)]

use super::args::{Args, Cli, Res, bundle_path};
use super::verify::open_bundle;
use crate::error::{About, Context, Error, Failure, Result};
use crate::files::{self, AtomicFile, FileSource, Source};
use crate::out::Out;
use crate::trust::bundle;
use crate::trust::keys::{self, SecretKey, Signature};
use crate::trust::manifest::{self, MAX_MANIFEST, Manifest};
use core::ffi::CStr;
use rustix::fd::AsFd;

/// Creates a new file with `mode`, refusing to overwrite an existing one.
fn create_new(path: &CStr, mode: u32, bytes: &[u8]) -> Result<()> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )
    .ctx(msg!("create file (klpctl never overwrites keys)"))?;
    crate::sys::write_all(fd.as_fd(), bytes).ctx(msg!("write file"))?;
    rustix::fs::fsync(&fd).ctx(msg!("write file"))
}

/// `klpctl keygen`: a new signify key pair; never overwrites a file.
pub fn keygen(_: &mut Cli, a: &mut Args) -> Res {
    let (mut pubp, mut secp, mut comment): (Option<&CStr>, Option<&CStr>, &[u8]) =
        (None, None, b"klpctl");
    while let Some(arg) = a.arg() {
        match arg {
            b"-p" => pubp = Some(a.value_c()?),
            b"-s" => secp = Some(a.value_c()?),
            b"-c" => comment = a.value()?,
            _ => return Err(a.unexpected().into()),
        }
    }
    let (Some(pubp), Some(secp)) = (pubp, secp) else {
        return Err(Error::Usage(msg!("keygen needs -p KEY.pub and -s KEY.sec")).into());
    };
    keys::check_comment(comment)?;
    let mut rnd = [0u8; 40];
    rustix::rand::getrandom(&mut rnd, rustix::rand::GetRandomFlags::empty())
        .ctx(msg!("get random bytes"))?;
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&rnd[..32]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&rnd[32..]);
    let sk = SecretKey::from_seed(seed, id);
    let mut buf = [0u8; 1300];
    sk.to_file(comment, &mut buf)
        .and_then(|f| create_new(secp, 0o600, f))
        .about(secp.to_bytes())?;
    if let Err(e) = sk
        .public()
        .to_file(comment, &mut buf)
        .and_then(|p| create_new(pubp, 0o644, p))
    {
        // Both files or neither: a secret key without its public half is
        // an orphan nobody can trust.
        let _ = rustix::fs::unlink(secp);
        return Err(Failure::from(e).about(pubp.to_bytes()));
    }
    Out::stdout().s("key id ").hex(&id).nl();
    Ok(())
}

fn read_secret(path: &'static CStr) -> core::result::Result<SecretKey, Failure> {
    let mut buf = [0u8; keys::MAX_KEY_FILE];
    files::read_small(path, &mut buf, msg!("read secret key"))
        .and_then(keys::parse_secret)
        .about(path.to_bytes())
}

/// Refuses a module `pack` cannot bundle: not a livepatch, of `size`
/// out of bounds, or built for another release or machine than the
/// `--kernel-release` and `--arch` given.
fn check_module(
    info: &crate::modinfo::Modinfo,
    size: u64,
    release: Option<&str>,
    arch: Option<&str>,
) -> Result<()> {
    if !info.livepatch {
        return Err(Error::Module(msg!(
            "not a livepatch module (.modinfo has no livepatch=Y)"
        )));
    }
    if release.is_some_and(|r| r != info.release) {
        return Err(Error::Module(msg!(
            "module vermagic names a different kernel release than --kernel-release"
        )));
    }
    if arch.is_some_and(|x| x != info.arch) {
        return Err(Error::Module(msg!(
            "module ELF machine differs from --arch"
        )));
    }
    if size == 0 || size > manifest::MAX_PAYLOAD {
        return Err(Error::Module(msg!(
            "module size out of bounds (1 byte to 1 GiB)"
        )));
    }
    Ok(())
}

/// `klpctl pack`: a module into a bundle, signed or `--unsigned`.
pub fn pack(_: &mut Cli, a: &mut Args) -> Res {
    let mut module: Option<&'static CStr> = None;
    let mut output: Option<&'static [u8]> = None;
    let (mut stream, mut version, mut release, mut arch) = (None, None, None, None);
    let mut build_id: heapless::Vec<u8, { manifest::MAX_BUILD_ID }> = heapless::Vec::new();
    let (mut replace, mut unsigned, mut created) = (false, false, None);
    let mut cves: heapless::Vec<&str, { manifest::MAX_CVES }> = heapless::Vec::new();
    let mut products: heapless::Vec<&str, { manifest::MAX_CVES }> = heapless::Vec::new();
    let mut desc_raw: &[u8] = b"";
    let mut secrets: heapless::Vec<&'static CStr, 4> = heapless::Vec::new();
    while let Some(arg) = a.arg() {
        match arg {
            b"-o" => output = Some(a.value()?),
            b"--stream" => stream = Some(a.value_str()?),
            b"--version" => version = Some(a.value_u64()?),
            b"--kernel-release" => release = Some(a.value_str()?),
            b"--arch" => arch = Some(a.value_str()?),
            b"--kernel-build-id" | b"--kernel-notes" if !build_id.is_empty() => {
                return Err(
                    Error::Usage(msg!("give --kernel-build-id or --kernel-notes once")).into(),
                );
            }
            b"--kernel-build-id" => {
                let mut tmp = [0u8; manifest::MAX_BUILD_ID];
                let id = crate::codec::hex_decode(a.value()?, &mut tmp)
                    .filter(|d| !d.is_empty())
                    .ok_or(Error::Usage(msg!(
                        "--kernel-build-id must be 2-64 hex digits"
                    )))?;
                // Cannot fail: decoded into a buffer of the same capacity.
                let _ = build_id.extend_from_slice(id);
            }
            b"--kernel-notes" => {
                let p = a.value_c()?;
                let mut buf = [0u8; crate::kernel::MAX_NOTES];
                let id = files::read_small(p, &mut buf, msg!("read kernel notes file"))
                    .and_then(|notes| {
                        crate::kernel::build_id_from_notes(notes)
                            .filter(|id| id.len() <= manifest::MAX_BUILD_ID)
                            .ok_or(Error::Usage(msg!(
                                "no GNU build-id note in the kernel notes file"
                            )))
                    })
                    .about(p.to_bytes())?;
                // Cannot fail: longer ids were filtered out above.
                let _ = build_id.extend_from_slice(id);
            }
            b"--replace" => replace = true,
            b"--unsigned" => unsigned = true,
            b"--created" => created = Some(a.value_u64()?),
            b"--cve" => {
                let c = a.value_str()?;
                if !manifest::valid_cve(c) {
                    return Err(Error::Usage(msg!("--cve: 1-32 of [A-Za-z0-9._:-]")))
                        .about(c.as_bytes());
                }
                // Vulnerability ids compare without case (CVE-1 is cve-1):
                // each would be its own VEX statement.
                if cves.iter().any(|x| x.eq_ignore_ascii_case(c)) {
                    return Err(Error::Usage(msg!("--cve: each given once"))).about(c.as_bytes());
                }
                cves.push(c)
                    .map_err(|_| Error::Usage(msg!("at most 64 --cve")))?;
            }
            b"--product" => {
                let p = a.value_str()?;
                if !manifest::valid_product(p) {
                    return Err(Error::Usage(msg!(
                        "--product: a pkg: or cpe: identifier of 5-256 URL characters; write '+' as %2B in a purl"
                    )))
                    .about(p.as_bytes());
                }
                if products.len() == manifest::MAX_PRODUCTS || products.contains(&p) {
                    return Err(Error::Usage(msg!("--product: at most 16, each given once")).into());
                }
                // Cannot fail: the length was checked above.
                let _ = products.push(p);
            }
            b"--description" => desc_raw = a.value()?,
            b"-s" => secrets
                .push(a.value_c()?)
                .map_err(|_| Error::Usage(msg!("at most 4 -s keys")))?,
            _ if module.is_none() && !arg.starts_with(b"-") => module = Some(a.current_c()),
            _ => return Err(a.unexpected().into()),
        }
    }
    let (Some(module), Some(output), Some(stream), Some(version)) =
        (module, output, stream, version)
    else {
        return Err(Error::Usage(msg!(
            "pack needs MODULE.ko, -o BUNDLE, --stream S and --version N"
        ))
        .into());
    };
    if secrets.is_empty() && !unsigned {
        return Err(Error::Usage(msg!(
            "pack needs -s KEY.sec (or --unsigned to sign later with sign/attach)"
        ))
        .into());
    }
    if !manifest::valid_stream(stream) {
        return Err(Error::Usage(msg!(
            "--stream: 1-64 of [A-Za-z0-9._-], not starting with '.'"
        ))
        .into());
    }
    let mut sks: heapless::Vec<SecretKey, 4> = heapless::Vec::new();
    for p in &secrets {
        let _ = sks.push(read_secret(p)?); // one per -s: at most 4, as sks
    }
    let mut dbuf = [0u8; manifest::MAX_DESCRIPTION + 8];
    let description = manifest::escape_description(desc_raw, &mut dbuf)?;

    // What goes wrong from here to the output file is about the module.
    let mo = module.to_bytes();
    let fd = files::open_ro(module, msg!("open module")).about(mo)?;
    let src = FileSource::new(&fd, msg!("read module")).about(mo)?;
    let mut mibuf = [0u8; crate::modinfo::MAX_MODINFO];
    let info = crate::modinfo::parse(&src, &mut mibuf).about(mo)?;
    let size = src.size();
    check_module(&info, size, release, arch).about(mo)?;
    let digest = src.sha256(0, size).about(mo)?;
    let m = Manifest {
        name: info.name,
        stream,
        version,
        release: info.release,
        build_id,
        arch: info.arch,
        replace,
        cves,
        products,
        description,
        created: created.unwrap_or_else(crate::rt::unix_time),
        payload_size: size,
        payload_sha256: digest,
    };
    let mut mbuf = [0u8; MAX_MANIFEST];
    let mbytes = m.write(&mut mbuf).about(mo)?;
    // Our own writer must produce what our own parser accepts.
    manifest::parse(mbytes).about(mo)?;
    let mut sigs: heapless::Vec<Signature, 4> = heapless::Vec::new();
    for k in &sks {
        if !sigs.iter().any(|s| s.key_id == k.id) {
            let _ = sigs.push(k.sign(mbytes)); // one per key: at most 4
        }
    }
    AtomicFile::create(output, 0o644)
        .and_then(|mut outf| {
            bundle::write(&mut outf, mbytes, &sigs, &fd, 0, size)?;
            outf.commit()
        })
        .about(output)?;
    let mut o = Out::stdout();
    o.s("packed ")
        .s(m.name)
        .s(" stream ")
        .s(m.stream)
        .s(" version ")
        .u(m.version)
        .s(" for ")
        .s(m.release);
    o.s(" (")
        .u(sigs.len() as u64)
        .s(" signature")
        .s(if sigs.len() == 1 { "" } else { "s" })
        .s(")")
        .nl();
    Ok(())
}

/// `klpctl manifest`: the exact signed manifest bytes, for external signers.
pub fn manifest_cmd(_: &mut Cli, a: &mut Args) -> Res {
    let path = bundle_path(a, &mut |_, _| Ok(false))?;
    let mut mbuf = [0u8; MAX_MANIFEST];
    let manifest = signed_bytes(path, &mut mbuf).about(path.to_bytes())?;
    // Byte for byte: what an external signer signs.
    Out::stdout().exact().b(manifest);
    Ok(())
}

/// The manifest bytes of the bundle at `path`, as signed (read into
/// `mbuf`).
fn signed_bytes<'m>(path: &'static CStr, mbuf: &'m mut [u8; MAX_MANIFEST]) -> Result<&'m [u8]> {
    let b = open_bundle(path)?;
    let src = FileSource::new(&b.fd, msg!("read bundle"))?;
    Ok(bundle::read(&src, mbuf)?.manifest)
}

/// Rewrites the bundle at `path` with `sig` added. Adding a signature that
/// is already there changes nothing. Returns whether the file changed.
/// `before_write` runs once the bundle is known good and before it is
/// rewritten (`sign -x` writes its signature file there).
fn add_signature(
    path: &'static CStr,
    sig: Signature,
    from_key: bool,
    before_write: impl FnOnce() -> core::result::Result<(), Failure>,
) -> core::result::Result<bool, Failure> {
    let about = path.to_bytes();
    let b = open_bundle(path).about(about)?;
    let src = FileSource::new(&b.fd, msg!("read bundle")).about(about)?;
    let mut mbuf = [0u8; MAX_MANIFEST];
    let u = bundle::read(&src, &mut mbuf).about(about)?;
    let m = u.manifest_unverified().about(about)?;
    if from_key {
        // Never put a signature on a payload that does not match.
        let d = src
            .sha256(u.header.payload_offset(), u.header.payload_len)
            .about(about)?;
        if d != m.payload_sha256 {
            return Err(Error::Digest).about(about);
        }
    }
    before_write()?;
    if u.sigs.contains(&sig) {
        return Ok(false);
    }
    let mut sigs = u.sigs.clone();
    if let Some(old) = sigs.iter_mut().find(|s| s.key_id == sig.key_id) {
        if !from_key {
            // Ed25519 is deterministic: a different signature by the same
            // key was made over other bytes. `sign` (which signs these very
            // bytes) may repair a bad one; `attach` must not replace a
            // possibly good one with it.
            return Err(Error::Bundle(msg!(
                "attach refused: the bundle already has a different signature by this key, so this one was made over other bytes"
            )))
            .about(about);
        }
        *old = sig;
    } else {
        sigs.push(sig)
            .map_err(|_| Error::Usage(msg!("bundle already holds 4 signatures")))
            .about(about)?;
    }
    AtomicFile::create(about, 0o644)
        .and_then(|mut outf| {
            bundle::write(
                &mut outf,
                u.manifest,
                &sigs,
                &b.fd,
                u.header.payload_offset(),
                u.header.payload_len,
            )?;
            outf.commit()
        })
        .about(about)?;
    Ok(true)
}

/// `klpctl attach`: adds a signify signature made over the manifest.
pub fn attach(_: &mut Cli, a: &mut Args) -> Res {
    let mut pos: heapless::Vec<&'static CStr, 2> = heapless::Vec::new();
    while let Some(arg) = a.arg() {
        if arg.starts_with(b"-") || pos.push(a.current_c()).is_err() {
            return Err(a.unexpected().into());
        }
    }
    let [path, sigpath] = pos[..] else {
        return Err(Error::Usage(msg!("attach needs BUNDLE and SIGFILE")).into());
    };
    let mut buf = [0u8; keys::MAX_KEY_FILE];
    let sig = files::read_small(sigpath, &mut buf, msg!("read signature file"))
        .and_then(keys::parse_signature)
        .about(sigpath.to_bytes())?;
    let changed = add_signature(path, sig, false, || Ok(()))?;
    let mut o = Out::stdout();
    o.s(if changed {
        "attached signature by key "
    } else {
        "signature already present: key "
    })
    .hex(&sig.key_id)
    .nl();
    Ok(())
}

/// `klpctl sign`: signs the manifest with a key (co-signing).
pub fn sign(_: &mut Cli, a: &mut Args) -> Res {
    let (mut key, mut sigout) = (None, None);
    let path = bundle_path(a, &mut |a, arg| {
        match arg {
            b"-s" => key = Some(a.value_c()?),
            b"-x" => sigout = Some(a.value()?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let key = key.ok_or(Error::Usage(msg!("sign needs -s KEY.sec")))?;
    let sk = read_secret(key)?;
    let mut mbuf = [0u8; MAX_MANIFEST];
    let sig = sk.sign(signed_bytes(path, &mut mbuf).about(path.to_bytes())?);
    // The signature file goes after every check and before the bundle is
    // rewritten: a refused bundle leaves no file, and a failed file leaves
    // the bundle as it was.
    let changed = add_signature(path, sig, true, || {
        let Some(x) = sigout else { return Ok(()) };
        let mut buf = [0u8; 400];
        sig.to_file(b"verify with the klpctl bundle's signer key", &mut buf)
            .and_then(|f| files::write_atomic(x, f, 0o644))
            .about(x)
    })?;
    let mut o = Out::stdout();
    o.s(if changed {
        "signed with key "
    } else {
        "already signed by key "
    })
    .hex(&sk.id)
    .nl();
    Ok(())
}
