//! The command line: argument parsing, the trust commands (keygen, pack,
//! manifest, attach, sign, verify, info) and the kernel commands (apply,
//! disable, status), and their human and JSON output.
#![forbid(unsafe_code)]
// A device build (no `authoring` feature) keeps the authoring handlers'
// source but never calls them; the linker drops them.
#![cfg_attr(not(feature = "authoring"), allow(dead_code, unused_imports))]

use crate::error::{Context, Error, Result};
use crate::files::{self, AtomicFile};
use crate::files::{FileSource, Source};
use crate::out::Out;
use crate::trust::bundle;
use crate::trust::keys::{self, SecretKey, SigStatus, Signature, Verdict};
use crate::trust::manifest::{self, MAX_MANIFEST, Manifest};
use core::ffi::CStr;

const HELP_HEAD: &str = "\
klpctl - verify signed livepatch bundles and apply them to the running kernel

usage:
";

/// The authoring commands; a device build has none and does not list them.
#[cfg(feature = "authoring")]
const HELP_AUTHORING: &str = "  klpctl keygen -p KEY.pub -s KEY.sec [-c COMMENT]
  klpctl pack MODULE.ko -o BUNDLE --stream S --version N [--kernel-release R]
              [--kernel-build-id HEX | --kernel-notes FILE] [--arch A] [--replace]
              [--cve ID]... [--description TEXT] [--created SECS]
              (-s KEY.sec... | --unsigned)
  klpctl manifest BUNDLE           write the exact signed manifest bytes to stdout
  klpctl attach BUNDLE SIGFILE     add a signify signature made over those bytes
  klpctl sign BUNDLE -s KEY.sec [-x SIGFILE]   add a signature (co-sign)
";
#[cfg(not(feature = "authoring"))]
const HELP_AUTHORING: &str = "  (device build: no keygen, pack, manifest, attach or sign)\n";

const HELP_TAIL: &str = "  klpctl verify BUNDLE [--keyring DIR] [--json]
  klpctl info BUNDLE [--json]
  klpctl apply BUNDLE... [--timeout SECS] [--keyring DIR] [--allow-downgrade]
               [--state-dir DIR] [--no-wait] [--json]
  klpctl apply --dir DIR [same options]
  klpctl disable NAME [--timeout SECS] [--no-wait] [--json]
  klpctl status [--json]
  klpctl --help | --version

exit codes: 0 ok, 1 internal/I-O error, 2 usage, 3 bundle rejected,
4 not for this kernel, 5 refused by policy, 6 kernel refused the module,
7 transition timed out and reverted, 8 timed out and not reverted,
9 another klpctl holds the lock, 10 applied but state not saved
";

fn help(o: &mut Out) {
    o.s(HELP_HEAD).s(HELP_AUTHORING).s(HELP_TAIL);
}

/// Per-invocation context: what is being worked on, for error messages.
pub struct Cli {
    /// The file or object the current error is about (printed before it).
    pub ctx: heapless::Vec<u8, 256>,
    /// Specifics printed after the message, e.g. both sides of a mismatch.
    pub detail: heapless::Vec<u8, 256>,
}

impl Cli {
    /// Sets what the next error is about (truncated if too long).
    pub fn ctx(&mut self, what: &[u8]) {
        self.ctx.clear();
        let _ = self.ctx.extend_from_slice(&what[..what.len().min(256)]);
    }

    /// Sets the detail text from parts (truncated if too long).
    pub fn detail(&mut self, parts: &[&[u8]]) {
        self.detail.clear();
        for p in parts {
            for &c in *p {
                let _ = self.detail.push(c);
            }
        }
    }
}

/// Runs klpctl with `args` (including argv\[0\]) and returns the exit code.
pub fn run(args: &[&'static CStr]) -> i32 {
    let mut cli = Cli {
        ctx: heapless::Vec::new(),
        detail: heapless::Vec::new(),
    };
    match dispatch(&mut cli, args.get(1..).unwrap_or(&[])) {
        Ok(()) => 0,
        Err(e) => {
            report(&cli, e);
            e.exit_code() as i32
        }
    }
}

/// Prints `klpctl: [ctx: ]message[: ERRNO]` on stderr.
pub fn report(cli: &Cli, e: Error) {
    let mut o = Out::stderr();
    o.s("klpctl: ");
    if !cli.ctx.is_empty() {
        o.b(&cli.ctx).s(": ");
    }
    o.error(e);
    if !cli.detail.is_empty() {
        o.s(": ").b(&cli.detail);
    }
    o.nl();
}

/// A cursor over the arguments of one command.
pub struct Args<'a> {
    v: &'a [&'static CStr],
    i: usize,
}

impl Args<'_> {
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

fn dispatch(cli: &mut Cli, argv: &[&'static CStr]) -> Result<()> {
    let mut a = Args { v: argv, i: 0 };
    let Some(cmd) = a.arg() else {
        help(&mut Out::stderr());
        return Err(Error::Usage("no command given"));
    };
    match cmd {
        b"--help" | b"-h" | b"help" => {
            help(&mut Out::stdout());
            Ok(())
        }
        b"--version" | b"-V" => {
            Out::stdout().s("klpctl ").s(env!("CARGO_PKG_VERSION")).nl();
            Ok(())
        }
        #[cfg(feature = "authoring")]
        b"keygen" => keygen(cli, &mut a),
        #[cfg(feature = "authoring")]
        b"pack" => pack(cli, &mut a),
        #[cfg(feature = "authoring")]
        b"manifest" => manifest_cmd(cli, &mut a),
        #[cfg(feature = "authoring")]
        b"attach" => attach(cli, &mut a),
        #[cfg(feature = "authoring")]
        b"sign" => sign(cli, &mut a),
        #[cfg(not(feature = "authoring"))]
        b"keygen" | b"pack" | b"manifest" | b"attach" | b"sign" => Err(Error::Usage(
            "this klpctl is a device build without the authoring commands (keygen, pack, manifest, attach, sign)",
        )),
        b"verify" => verify(cli, &mut a),
        b"info" => info(cli, &mut a),
        b"apply" => crate::livepatch::apply_cmd(cli, &mut a),
        b"disable" => crate::livepatch::disable_cmd(cli, &mut a),
        b"status" => crate::livepatch::status_cmd(cli, &mut a),
        _ => Err(unknown(cli, cmd)),
    }
}

/// Creates a new file with `mode`, refusing to overwrite an existing one.
fn create_new(path: &CStr, mode: u32, bytes: &[u8]) -> Result<()> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )
    .ctx("cannot create file (klpctl never overwrites keys)")?;
    crate::sys::write_all(fd.as_fd(), bytes).ctx("cannot write file")?;
    rustix::fs::fsync(&fd).ctx("cannot write file")
}

use rustix::fd::AsFd;

fn keygen(cli: &mut Cli, a: &mut Args) -> Result<()> {
    let (mut pubp, mut secp, mut comment): (Option<&CStr>, Option<&CStr>, &[u8]) =
        (None, None, b"klpctl");
    while let Some(arg) = a.arg() {
        match arg {
            b"-p" => pubp = Some(a.value_c()?),
            b"-s" => secp = Some(a.value_c()?),
            b"-c" => comment = a.value()?,
            _ => return Err(unknown(cli, arg)),
        }
    }
    let (Some(pubp), Some(secp)) = (pubp, secp) else {
        return Err(Error::Usage("keygen needs -p KEY.pub and -s KEY.sec"));
    };
    keys::check_comment(comment)?;
    let mut rnd = [0u8; 40];
    rustix::rand::getrandom(&mut rnd, rustix::rand::GetRandomFlags::empty())
        .ctx("getrandom failed")?;
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&rnd[..32]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&rnd[32..]);
    let sk = SecretKey::from_seed(seed, id);
    let mut buf = [0u8; 1300];
    cli.ctx(secp.to_bytes());
    create_new(secp, 0o600, sk.to_file(comment, &mut buf)?)?;
    cli.ctx(pubp.to_bytes());
    if let Err(e) = sk
        .public()
        .to_file(comment, &mut buf)
        .and_then(|p| create_new(pubp, 0o644, p))
    {
        // Both files or neither: a secret key without its public half is
        // an orphan nobody can trust.
        let _ = rustix::fs::unlink(secp);
        return Err(e);
    }
    Out::stdout().s("key id ").hex(&id).nl();
    Ok(())
}

fn read_secret(cli: &mut Cli, path: &'static CStr) -> Result<SecretKey> {
    cli.ctx(path.to_bytes());
    let mut buf = [0u8; keys::MAX_KEY_FILE];
    let k = keys::parse_secret(files::read_small(path, &mut buf, "cannot read secret key")?)?;
    cli.ctx(b"");
    Ok(k)
}

fn pack(cli: &mut Cli, a: &mut Args) -> Result<()> {
    let mut module: Option<&'static CStr> = None;
    let mut output: Option<&'static [u8]> = None;
    let (mut stream, mut version, mut release, mut arch) = (None, None, None, None);
    let mut build_id: heapless::Vec<u8, { manifest::MAX_BUILD_ID }> = heapless::Vec::new();
    let (mut replace, mut unsigned, mut created) = (false, false, None);
    let mut cves: heapless::Vec<&str, { manifest::MAX_CVES }> = heapless::Vec::new();
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
                return Err(Error::Usage(
                    "give --kernel-build-id or --kernel-notes once",
                ));
            }
            b"--kernel-build-id" => {
                let mut tmp = [0u8; manifest::MAX_BUILD_ID];
                let id = crate::codec::hex_decode(a.value()?, &mut tmp)
                    .filter(|d| !d.is_empty())
                    .ok_or(Error::Usage("--kernel-build-id must be 2-64 hex digits"))?;
                let _ = build_id.extend_from_slice(id);
            }
            b"--kernel-notes" => {
                let p = a.value_c()?;
                cli.ctx(p.to_bytes());
                let mut buf = [0u8; crate::kernel::MAX_NOTES];
                let notes = files::read_small(p, &mut buf, "cannot read kernel notes file")?;
                let id = crate::kernel::build_id_from_notes(notes)
                    .filter(|id| id.len() <= manifest::MAX_BUILD_ID)
                    .ok_or(Error::Usage(
                        "no GNU build-id note in the kernel notes file",
                    ))?;
                let _ = build_id.extend_from_slice(id);
                cli.ctx(b"");
            }
            b"--replace" => replace = true,
            b"--unsigned" => unsigned = true,
            b"--created" => created = Some(a.value_u64()?),
            b"--cve" => {
                let c = a.value_str()?;
                if !manifest::valid_cve(c) {
                    cli.ctx(c.as_bytes());
                    return Err(Error::Usage("--cve: 1-32 of [A-Za-z0-9._:-]"));
                }
                cves.push(c).map_err(|_| Error::Usage("at most 64 --cve"))?;
            }
            b"--description" => desc_raw = a.value()?,
            b"-s" => secrets
                .push(a.value_c()?)
                .map_err(|_| Error::Usage("at most 4 -s keys"))?,
            _ if module.is_none() && !arg.starts_with(b"-") => module = Some(a.current_c()),
            _ => return Err(unknown(cli, arg)),
        }
    }
    let (Some(module), Some(output), Some(stream), Some(version)) =
        (module, output, stream, version)
    else {
        return Err(Error::Usage(
            "pack needs MODULE.ko, -o BUNDLE, --stream S and --version N",
        ));
    };
    if secrets.is_empty() && !unsigned {
        return Err(Error::Usage(
            "pack needs -s KEY.sec (or --unsigned to sign later with sign/attach)",
        ));
    }
    if !manifest::valid_stream(stream) {
        return Err(Error::Usage(
            "--stream: 1-64 of [A-Za-z0-9._-], not starting with '.'",
        ));
    }
    let mut sks: heapless::Vec<SecretKey, 4> = heapless::Vec::new();
    for p in &secrets {
        let _ = sks.push(read_secret(cli, p)?);
    }
    let mut dbuf = [0u8; manifest::MAX_DESCRIPTION + 8];
    let description = manifest::escape_description(desc_raw, &mut dbuf)?;

    cli.ctx(module.to_bytes());
    let fd = files::open_ro(module, "cannot open module")?;
    let src = FileSource::new(&fd, "not a regular file")?;
    let mut mibuf = [0u8; crate::modinfo::MAX_MODINFO];
    let info = crate::modinfo::parse(&src, &mut mibuf)?;
    if !info.livepatch {
        return Err(Error::Module(
            "not a livepatch module (.modinfo has no livepatch=Y)",
        ));
    }
    if release.is_some_and(|r| r != info.release) {
        return Err(Error::Module(
            "module vermagic names a different kernel release than --kernel-release",
        ));
    }
    if arch.is_some_and(|x| x != info.arch) {
        return Err(Error::Module("module ELF machine differs from --arch"));
    }
    let size = src.size();
    if size == 0 || size > manifest::MAX_PAYLOAD {
        return Err(Error::Module("module size out of bounds (1 byte to 1 GiB)"));
    }
    let digest = src.sha256(0, size)?;
    let m = Manifest {
        name: info.name,
        stream,
        version,
        release: info.release,
        build_id,
        arch: info.arch,
        replace,
        cves,
        description,
        created: created.unwrap_or_else(crate::rt::unix_time),
        payload_size: size,
        payload_sha256: digest,
    };
    let mut mbuf = [0u8; MAX_MANIFEST];
    let mbytes = m.write(&mut mbuf)?;
    // Our own writer must produce what our own parser accepts.
    manifest::parse(mbytes)?;
    let mut sigs: heapless::Vec<Signature, 4> = heapless::Vec::new();
    for k in &sks {
        if !sigs.iter().any(|s| s.key_id == k.id) {
            let _ = sigs.push(k.sign(mbytes));
        }
    }
    cli.ctx(output);
    let mut outf = AtomicFile::create(output, 0o644)?;
    bundle::write(&mut outf, mbytes, &sigs, &fd, 0, size)?;
    outf.commit()?;
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

/// An open bundle with its manifest bytes read into a buffer.
struct Opened {
    fd: rustix::fd::OwnedFd,
}

fn open_bundle(cli: &mut Cli, path: &'static CStr) -> Result<Opened> {
    cli.ctx(path.to_bytes());
    Ok(Opened {
        fd: files::open_ro(path, "cannot open bundle")?,
    })
}

fn bundle_path(
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

fn manifest_cmd(cli: &mut Cli, a: &mut Args) -> Result<()> {
    let path = bundle_path(cli, a, &mut |_, _| Ok(false))?;
    let b = open_bundle(cli, path)?;
    let src = FileSource::new(&b.fd, "cannot read bundle")?;
    let mut mbuf = [0u8; MAX_MANIFEST];
    let u = bundle::read(&src, &mut mbuf)?;
    Out::stdout().b(u.manifest);
    Ok(())
}

/// Rewrites the bundle at `path` with `sig` added. Adding a signature that
/// is already there changes nothing. Returns whether the file changed.
/// `before_write` runs once the bundle is known good and before it is
/// rewritten (`sign -x` writes its signature file there).
fn add_signature(
    cli: &mut Cli,
    path: &'static CStr,
    sig: Signature,
    from_key: bool,
    before_write: impl FnOnce(&mut Cli) -> Result<()>,
) -> Result<bool> {
    let b = open_bundle(cli, path)?;
    let src = FileSource::new(&b.fd, "cannot read bundle")?;
    let mut mbuf = [0u8; MAX_MANIFEST];
    let u = bundle::read(&src, &mut mbuf)?;
    let m = u.manifest_unverified()?;
    if from_key {
        // Never put a signature on a payload that does not match.
        let d = src.sha256(u.header.payload_offset(), u.header.payload_len)?;
        if d != m.payload_sha256 {
            return Err(Error::Digest);
        }
    }
    before_write(cli)?;
    cli.ctx(path.to_bytes());
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
            return Err(Error::Bundle(
                "attach refused: the bundle already has a different signature by this key, so this one was made over other bytes",
            ));
        }
        *old = sig;
    } else {
        sigs.push(sig)
            .map_err(|_| Error::Usage("bundle already holds 4 signatures"))?;
    }
    let mut outf = AtomicFile::create(path.to_bytes(), 0o644)?;
    bundle::write(
        &mut outf,
        u.manifest,
        &sigs,
        &b.fd,
        u.header.payload_offset(),
        u.header.payload_len,
    )?;
    outf.commit()?;
    Ok(true)
}

fn attach(cli: &mut Cli, a: &mut Args) -> Result<()> {
    let mut pos: heapless::Vec<&'static CStr, 2> = heapless::Vec::new();
    while let Some(arg) = a.arg() {
        if arg.starts_with(b"-") || pos.push(a.current_c()).is_err() {
            return Err(unknown(cli, arg));
        }
    }
    let [path, sigpath] = pos[..] else {
        return Err(Error::Usage("attach needs BUNDLE and SIGFILE"));
    };
    cli.ctx(sigpath.to_bytes());
    let mut buf = [0u8; keys::MAX_KEY_FILE];
    let sig = keys::parse_signature(files::read_small(
        sigpath,
        &mut buf,
        "cannot read signature file",
    )?)?;
    let changed = add_signature(cli, path, sig, false, |_| Ok(()))?;
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

fn sign(cli: &mut Cli, a: &mut Args) -> Result<()> {
    let (mut key, mut sigout) = (None, None);
    let path = bundle_path(cli, a, &mut |a, arg| {
        match arg {
            b"-s" => key = Some(a.value_c()?),
            b"-x" => sigout = Some(a.value()?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let key = key.ok_or(Error::Usage("sign needs -s KEY.sec"))?;
    let sk = read_secret(cli, key)?;
    let sig = {
        let b = open_bundle(cli, path)?;
        let src = FileSource::new(&b.fd, "cannot read bundle")?;
        let mut mbuf = [0u8; MAX_MANIFEST];
        let u = bundle::read(&src, &mut mbuf)?;
        sk.sign(u.manifest)
    };
    // The signature file goes after every check and before the bundle is
    // rewritten: a refused bundle leaves no file, and a failed file leaves
    // the bundle as it was.
    let changed = add_signature(cli, path, sig, true, |cli| {
        let Some(x) = sigout else { return Ok(()) };
        cli.ctx(x);
        let mut buf = [0u8; 400];
        files::write_atomic(
            x,
            sig.to_file(b"verify with the klpctl bundle's signer key", &mut buf)?,
            0o644,
        )
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

/// Options shared by verify-like commands.
struct VerifyOpts {
    keyring: Option<&'static CStr>,
    json: bool,
}

fn verify(cli: &mut Cli, a: &mut Args) -> Result<()> {
    let mut opts = VerifyOpts {
        keyring: None,
        json: false,
    };
    let path = bundle_path(cli, a, &mut |a, arg| {
        match arg {
            b"--keyring" => opts.keyring = Some(a.value_c()?),
            b"--json" => opts.json = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    cli.ctx(
        opts.keyring
            .map_or(crate::trust::keyring::KEYRING_DIR.to_bytes(), |k| {
                k.to_bytes()
            }),
    );
    // --json promises one JSON object on stdout, also when the keyring or
    // the file cannot be used at all.
    let early = crate::trust::keyring::load(opts.keyring).and_then(|ring| {
        let b = open_bundle(cli, path)?;
        FileSource::new(&b.fd, "cannot read bundle")?;
        Ok((ring, b))
    });
    let (ring, b) = early.inspect_err(|&e| {
        if opts.json {
            verify_err_json(path, e, None);
        }
    })?;
    let src = FileSource::new(&b.fd, "cannot read bundle")?;
    let mut mbuf = [0u8; MAX_MANIFEST];
    let mut verdict = None;
    let result = bundle::read(&src, &mut mbuf).and_then(|u| {
        let (v, signed) = u.authenticate(&ring);
        verdict = Some(v);
        let s = signed?;
        s.check_payload(&src)?;
        Ok(s)
    });
    match (&result, opts.json) {
        (Ok(s), true) => {
            let mut o = Out::stdout();
            o.s("{\"ok\":true,\"bundle\":")
                .json_str(path.to_bytes())
                .s(",\"manifest\":");
            manifest_json(&mut o, &s.manifest);
            o.s(",");
            verdict_json(&mut o, &s.verdict);
            o.s("}").nl();
        }
        (Ok(s), false) => {
            let mut o = Out::stdout();
            o.s("OK ")
                .s(s.manifest.name)
                .s(" stream ")
                .s(s.manifest.stream)
                .s(" version ")
                .u(s.manifest.version)
                .nl();
            manifest_human(&mut o, &s.manifest);
            verdict_human(&mut o, &s.verdict);
        }
        (Err(e), true) => verify_err_json(path, *e, verdict.as_ref()),
        (Err(_), false) => {
            if let Some(v) = &verdict {
                verdict_human(&mut Out::stderr(), v);
            }
        }
    }
    result.map(|_| ())
}

/// The `verify --json` object of a bundle that did not verify.
fn verify_err_json(path: &CStr, e: Error, verdict: Option<&Verdict>) {
    let mut o = Out::stdout();
    o.s("{\"ok\":false,\"bundle\":")
        .json_str(path.to_bytes())
        .s(",\"exit\":")
        .u(e.exit_code() as u64);
    o.s(",\"error\":").json_str(e.message().as_bytes());
    if let Some(v) = verdict {
        o.s(",");
        verdict_json(&mut o, v);
    }
    o.s("}").nl();
}

fn info(cli: &mut Cli, a: &mut Args) -> Result<()> {
    let mut json = false;
    let path = bundle_path(cli, a, &mut |_, arg| {
        json |= arg == b"--json";
        Ok(arg == b"--json")
    })?;
    let b = open_bundle(cli, path)?;
    let src = FileSource::new(&b.fd, "cannot read bundle")?;
    let mut mbuf = [0u8; MAX_MANIFEST];
    let u = bundle::read(&src, &mut mbuf)?;
    let m = u.manifest_unverified()?;
    let mut o = Out::stdout();
    if json {
        o.s("{\"verified\":false,\"bundle\":")
            .json_str(path.to_bytes())
            .s(",\"manifest\":");
        manifest_json(&mut o, &m);
        o.s(",\"signatures\":[");
        for (i, s) in u.sigs.iter().enumerate() {
            o.s(if i > 0 {
                ",{\"key_id\":\""
            } else {
                "{\"key_id\":\""
            })
            .hex(&s.key_id)
            .s("\"}");
        }
        o.s("]}").nl();
    } else {
        o.s("UNVERIFIED ")
            .s(m.name)
            .s(" stream ")
            .s(m.stream)
            .s(" version ")
            .u(m.version);
        o.s(" (run klpctl verify to check signatures and payload)")
            .nl();
        manifest_human(&mut o, &m);
        o.s("  signatures: ").u(u.sigs.len() as u64).nl();
        for s in &u.sigs {
            o.s("    key ").hex(&s.key_id).nl();
        }
    }
    Ok(())
}

/// The manifest as a JSON object.
pub fn manifest_json(o: &mut Out, m: &Manifest) {
    o.s("{\"name\":").json_str(m.name.as_bytes());
    o.s(",\"stream\":").json_str(m.stream.as_bytes());
    o.s(",\"version\":").u(m.version);
    o.s(",\"release\":").json_str(m.release.as_bytes());
    o.s(",\"build_id\":");
    if m.build_id.is_empty() {
        o.s("null");
    } else {
        o.s("\"").hex(&m.build_id).s("\"");
    }
    o.s(",\"arch\":").json_str(m.arch.as_bytes());
    o.s(",\"replace\":").bool(m.replace);
    o.s(",\"cves\":[");
    for (i, c) in m.cves.iter().enumerate() {
        if i > 0 {
            o.s(",");
        }
        o.json_str(c.as_bytes());
    }
    // The stored description is already valid JSON string content.
    o.s("],\"description\":\"").s(m.description).s("\"");
    o.s(",\"created\":").u(m.created);
    o.s(",\"payload_size\":").u(m.payload_size);
    o.s(",\"payload_sha256\":\"")
        .hex(&m.payload_sha256)
        .s("\"}");
}

fn manifest_human(o: &mut Out, m: &Manifest) {
    o.s("  kernel:  ").s(m.release).s(" ").s(m.arch);
    if !m.build_id.is_empty() {
        o.s(" build-id ").hex(&m.build_id);
    }
    o.nl();
    o.s("  replace: ")
        .s(if m.replace { "yes (cumulative)" } else { "no" })
        .nl();
    if !m.cves.is_empty() {
        o.s("  cves:   ");
        for c in &m.cves {
            o.s(" ").s(c);
        }
        o.nl();
    }
    if !m.description.is_empty() {
        o.s("  description: ");
        manifest::write_description(o, m.description);
        o.nl();
    }
    o.s("  created: ").u(m.created).nl();
    o.s("  payload: ")
        .u(m.payload_size)
        .s(" bytes, sha256 ")
        .hex(&m.payload_sha256)
        .nl();
}

/// The signature verdict as JSON members (no braces).
pub fn verdict_json(o: &mut Out, v: &Verdict) {
    o.s("\"threshold\":")
        .u(v.threshold as u64)
        .s(",\"valid_keys\":")
        .u(v.valid as u64)
        .s(",\"signatures\":[");
    for (i, (id, st)) in v.sigs.iter().enumerate() {
        o.s(if i > 0 {
            ",{\"key_id\":\""
        } else {
            "{\"key_id\":\""
        })
        .hex(id);
        o.s("\",\"status\":\"").s(st.word()).s("\"}");
    }
    o.s("]");
}

fn verdict_human(o: &mut Out, v: &Verdict) {
    o.s("  signatures: ")
        .u(v.valid as u64)
        .s(" valid distinct trusted key(s), threshold ")
        .u(v.threshold as u64)
        .nl();
    for (id, st) in &v.sigs {
        o.s("    key ").hex(id).s(" ").s(st.word());
        if *st == SigStatus::Untrusted {
            o.s(" (not in keyring, ignored)");
        }
        o.nl();
    }
}
