//! Helpers for the host integration tests in `tests/cli.rs`: the binary under
//! test, private temporary directories, a process runner that refuses to
//! mistake a signal for an exit code, and small std-only stand-ins for what
//! the tests need to build and inspect inputs (a fake `.ko`, the bundle
//! layout, base64, a JSON reader, signify and sha256sum).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The Rust target the device binary is built for.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary under test: `$KLPCTL_BIN`, or the static musl release build,
/// built once per test process. That is the binary that ships, so it is the
/// one tested, not a host build.
pub fn klpctl_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("KLPCTL_BIN") {
        Some(p) => PathBuf::from(p),
        None => build_device_binary(&root().join("target"), &[]),
    })
}

/// Builds the release musl binary into `target_dir` with the build-time
/// trust settings in `env` (`KLPCTL_TRUSTED_KEYS`, `KLPCTL_THRESHOLD`).
/// Settings from the caller's environment are removed first, so a binary
/// built here embeds exactly what the test asked for.
pub fn build_device_binary(target_dir: &Path, env: &[(&str, &OsStr)]) -> PathBuf {
    build_binary_with(target_dir, env, &[])
}

/// As [`build_device_binary`], with extra cargo arguments (features).
pub fn build_binary_with(target_dir: &Path, env: &[(&str, &OsStr)], extra: &[&str]) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "--release",
        "--target",
        TARGET,
        "--target-dir",
    ])
    .arg(target_dir)
    .args(extra)
    .current_dir(root())
    .env_remove("KLPCTL_TRUSTED_KEYS")
    .env_remove("KLPCTL_THRESHOLD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("cannot run cargo");
    assert!(
        out.status.success(),
        "cargo build --release --target {TARGET} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = target_dir.join(TARGET).join("release/klpctl");
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}

/// A finished process: exit code (never a signal) and captured output.
pub struct Run {
    /// What was run, for failure messages.
    pub what: String,
    /// The exit code.
    pub code: i32,
    /// Captured standard output.
    pub stdout: Vec<u8>,
    /// Captured standard error.
    pub stderr: Vec<u8>,
}

impl Run {
    fn from_output(what: String, out: Output) -> Run {
        let code = match (out.status.code(), out.status.signal()) {
            (Some(c), _) => c,
            (None, Some(sig)) => panic!(
                "{what}: killed by signal {sig} (a crash, not an exit code)\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            (None, None) => panic!("{what}: no exit status"),
        };
        Run {
            what,
            code,
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }

    /// Standard output as text.
    pub fn out(&self) -> &str {
        std::str::from_utf8(&self.stdout).expect("stdout is UTF-8")
    }

    /// Standard error as text.
    pub fn err(&self) -> &str {
        std::str::from_utf8(&self.stderr).expect("stderr is UTF-8")
    }

    fn context(&self) -> String {
        format!(
            "{}\n--- exit {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what,
            self.code,
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "exit code of {}", self.context());
        self
    }

    /// Asserts the exit code and exactly what was written to stdout and stderr.
    #[track_caller]
    pub fn expect(&self, code: i32, stdout: &str, stderr: &str) -> &Run {
        self.code(code);
        assert_eq!(self.out(), stdout, "stdout of {}", self.context());
        assert_eq!(self.err(), stderr, "stderr of {}", self.context());
        self
    }

    /// Asserts a failure reported as one `klpctl: ...` line on stderr and
    /// nothing on stdout.
    #[track_caller]
    pub fn fails(&self, code: i32, stderr_line: &str) -> &Run {
        assert!(
            stderr_line.starts_with("klpctl: ") && !stderr_line.contains('\n'),
            "bad expectation {stderr_line:?}"
        );
        self.expect(code, "", &format!("{stderr_line}\n"))
    }
}

/// Runs `cmd` to completion with no stdin.
pub fn run(mut cmd: Command) -> Run {
    let what = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    Run::from_output(what, out)
}

/// Runs `cmd` with no stdin like [`run`], but kills it and fails the test
/// if it has not exited after `secs` seconds: for inputs that used to make
/// klpctl hang.
pub fn run_bounded(mut cmd: Command, secs: u64) -> Run {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed().as_secs() >= secs {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs} s (hangs)");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Run::from_output(what, child.wait_with_output().expect("output"))
}

/// A private directory under the system temp dir, named by pid and a
/// counter, removed with everything in it on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory.
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("klpctl-itest-{}-{n}", std::process::id()));
        // A leftover from an earlier process that had our pid.
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        TempDir(p)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Absolute path inside the directory, as a string for argument lists.
    pub fn abs(&self, name: &str) -> String {
        self.join(name)
            .to_str()
            .expect("temp paths are UTF-8")
            .to_owned()
    }

    /// Writes a file (creating parent directories).
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// Reads a file.
    pub fn read(&self, name: &str) -> Vec<u8> {
        let p = self.join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// Reads a text file.
    pub fn read_text(&self, name: &str) -> String {
        String::from_utf8(self.read(name)).expect("text file")
    }

    /// Creates a subdirectory.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Copies `from` (relative to this directory) to `to`.
    pub fn copy(&self, from: &str, to: &str) {
        self.write(to, self.read(from));
    }

    /// Runs the binary under test with this directory as working directory.
    pub fn klpctl(&self, args: &[&str]) -> Run {
        self.run_bin(klpctl_bin(), args)
    }

    /// Runs `bin` with this directory as working directory.
    pub fn run_bin(&self, bin: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(bin);
        cmd.args(args).current_dir(&self.0);
        run(cmd)
    }

    /// Runs OpenBSD signify. It must be installed (Debian package
    /// `signify-openbsd`): the interop tests fail without it, never skip.
    pub fn signify(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("signify-openbsd");
        cmd.args(args).current_dir(&self.0).stdin(Stdio::null());
        let what = format!("{cmd:?}");
        match cmd.output() {
            Ok(out) => Run::from_output(what, out),
            Err(e) => panic!("signify-openbsd is required (apt-get install signify-openbsd): {e}"),
        }
    }

    /// Every file below this directory with its permission bits and bytes,
    /// so a test can show that a refused command changed nothing: no file
    /// changed, none appeared (outputs, `.klpctl-tmp` files), none vanished.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
        fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, (u32, Vec<u8>)>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let md = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(base).unwrap().to_path_buf();
                let mode = md.permissions().mode();
                if md.is_dir() {
                    out.insert(rel, (mode, Vec::new()));
                    walk(&p, base, out);
                } else if !md.is_file() {
                    // FIFOs, sockets, links: never read (a FIFO would block).
                    out.insert(rel, (mode, b"<not a regular file>".to_vec()));
                } else {
                    out.insert(rel, (mode, std::fs::read(&p).unwrap()));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.0, &self.0, &mut out);
        out
    }

    /// Runs klpctl and asserts that the directory is exactly as before.
    #[track_caller]
    pub fn klpctl_unchanged(&self, args: &[&str]) -> Run {
        let before = self.snapshot();
        let r = self.klpctl(args);
        assert_same(&before, &self.snapshot(), &r);
        r
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Asserts two snapshots are equal, naming what differs.
#[track_caller]
pub fn assert_same(
    before: &BTreeMap<PathBuf, (u32, Vec<u8>)>,
    after: &BTreeMap<PathBuf, (u32, Vec<u8>)>,
    r: &Run,
) {
    let mut diffs = Vec::new();
    for (p, v) in before {
        match after.get(p) {
            None => diffs.push(format!("removed {}", p.display())),
            Some(a) if a != v => diffs.push(format!("changed {}", p.display())),
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        diffs.push(format!("created {}", p.display()));
    }
    assert!(
        diffs.is_empty(),
        "{} (exit {}, stderr {:?}) changed the directory: {diffs:?}",
        r.what,
        r.code,
        r.err()
    );
}

// ---------------------------------------------------------------- fixtures

/// A minimal ELF64 little-endian relocatable, as `klpctl pack` reads a
/// kernel module: ELF header, a section-name table, a `.modinfo` section
/// holding `modinfo`, and three section headers (null, .shstrtab,
/// .modinfo). Not loadable; only what klpctl looks at.
pub fn fake_ko(modinfo: &[u8], machine: u16) -> Vec<u8> {
    const SHSTRTAB: &[u8] = b"\0.shstrtab\0.modinfo\0";
    let mut f = vec![0u8; 64];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // ELFCLASS64
    f[5] = 1; // ELFDATA2LSB
    f[6] = 1; // EV_CURRENT
    f[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
    f[18..20].copy_from_slice(&machine.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    let strtab_off = f.len();
    f.extend_from_slice(SHSTRTAB);
    let modinfo_off = f.len();
    f.extend_from_slice(modinfo);
    f.resize(f.len().next_multiple_of(8), 0);
    let shoff = f.len();
    // (name offset in .shstrtab, type, file offset, size)
    let headers = [
        (0u32, 0u32, 0usize, 0usize),
        (1, 3, strtab_off, SHSTRTAB.len()),
        (11, 1, modinfo_off, modinfo.len()),
    ];
    for (name, ty, off, size) in headers {
        let mut sh = [0u8; 64];
        sh[..4].copy_from_slice(&name.to_le_bytes());
        sh[4..8].copy_from_slice(&ty.to_le_bytes());
        sh[24..32].copy_from_slice(&(off as u64).to_le_bytes());
        sh[32..40].copy_from_slice(&(size as u64).to_le_bytes());
        sh[48..56].copy_from_slice(&1u64.to_le_bytes()); // sh_addralign
        f.extend_from_slice(&sh);
    }
    f[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
    f[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    f[0x3c..0x3e].copy_from_slice(&(headers.len() as u16).to_le_bytes());
    f[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes()); // e_shstrndx
    f
}

/// The module name the standard test module carries.
pub const MOD_NAME: &str = "klp_itest";
/// The kernel release in the standard test module's vermagic.
pub const RELEASE: &str = "6.1.0-41-amd64";

/// A livepatch module for x86-64 named [`MOD_NAME`] built for [`RELEASE`].
pub fn livepatch_ko() -> Vec<u8> {
    let info = format!(
        "license=GPL\0livepatch=Y\0name={MOD_NAME}\0vermagic={RELEASE} SMP preempt mod_unload modversions \0"
    );
    fake_ko(info.as_bytes(), 62)
}

/// Bundle container constants (see the top of src/bundle.rs).
pub const HEADER: usize = 24;
/// Size of one signature record in a bundle.
pub const SIG_RECORD: usize = 72;

/// Where the sections of a bundle are, from its header.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Manifest length.
    pub manifest_len: usize,
    /// Signature count.
    pub sig_count: usize,
    /// Payload length.
    pub payload_len: usize,
}

impl Layout {
    /// Reads the header of a well-formed bundle.
    pub fn of(b: &[u8]) -> Layout {
        assert_eq!(&b[..8], b"KLPBNDL\0");
        assert_eq!(u16::from_le_bytes([b[8], b[9]]), 1);
        Layout {
            sig_count: u16::from_le_bytes([b[10], b[11]]) as usize,
            manifest_len: u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize,
            payload_len: u64::from_le_bytes(b[16..24].try_into().unwrap()) as usize,
        }
    }
    /// Offset of the first signature record.
    pub fn sigs_offset(&self) -> usize {
        HEADER + self.manifest_len
    }
    /// Offset of the payload.
    pub fn payload_offset(&self) -> usize {
        self.sigs_offset() + SIG_RECORD * self.sig_count
    }
    /// Exact file length.
    pub fn total(&self) -> usize {
        self.payload_offset() + self.payload_len
    }
}

/// The manifest bytes of a bundle.
pub fn manifest_of(b: &[u8]) -> &[u8] {
    let l = Layout::of(b);
    &b[HEADER..l.sigs_offset()]
}

/// The signature records of a bundle.
pub fn sig_records_of(b: &[u8]) -> Vec<[u8; SIG_RECORD]> {
    let l = Layout::of(b);
    (0..l.sig_count)
        .map(|i| {
            b[l.sigs_offset() + i * SIG_RECORD..][..SIG_RECORD]
                .try_into()
                .unwrap()
        })
        .collect()
}

/// Assembles a bundle from its parts, with a header that matches them.
pub fn build_bundle(manifest: &[u8], sigs: &[[u8; SIG_RECORD]], payload: &[u8]) -> Vec<u8> {
    let mut b = b"KLPBNDL\0".to_vec();
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&(sigs.len() as u16).to_le_bytes());
    b.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
    b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    b.extend_from_slice(manifest);
    for s in sigs {
        b.extend_from_slice(s);
    }
    b.extend_from_slice(payload);
    b
}

/// The decoded second line of a signify file (key or signature).
pub fn signify_payload(text: &str) -> Vec<u8> {
    let mut lines = text.lines();
    let comment = lines.next().expect("comment line");
    assert!(comment.starts_with("untrusted comment: "), "{text:?}");
    b64_decode(lines.next().expect("base64 line"))
}

/// The key id of a signify public or secret key file, or of a signature
/// file, as lowercase hex.
pub fn key_id_hex(text: &str) -> String {
    let raw = signify_payload(text);
    let id = match raw.len() {
        42 | 74 => &raw[2..10],
        104 => &raw[32..40],
        n => panic!("not a signify key or signature ({n} bytes)"),
    };
    hex(id)
}

/// A bundle signature record (key id ‖ signature) from a signify signature file.
pub fn sig_record(sig_file: &str) -> [u8; SIG_RECORD] {
    let raw = signify_payload(sig_file);
    assert_eq!(
        (raw.len(), &raw[..2]),
        (74, &b"Ed"[..]),
        "not a signify signature"
    );
    raw[2..].try_into().unwrap()
}

/// A signify signature file from a bundle signature record.
pub fn sig_file(record: &[u8; SIG_RECORD]) -> String {
    let mut raw = b"Ed".to_vec();
    raw.extend_from_slice(record);
    format!(
        "untrusted comment: signature from a klpctl bundle\n{}\n",
        b64_encode(&raw)
    )
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn b64_encode(data: &[u8]) -> String {
    let mut s = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            s.push(if i <= chunk.len() {
                B64[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    s
}

/// Decodes standard padded base64; panics on anything else.
pub fn b64_decode(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(4), "base64 length {}", s.len());
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for &c in chunk {
            let v = if c == b'=' {
                pad += 1;
                0
            } else {
                assert_eq!(pad, 0, "base64 data after padding");
                B64.iter()
                    .position(|&x| x == c)
                    .unwrap_or_else(|| panic!("bad base64 {c}")) as u32
            };
            n = n << 6 | v;
        }
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}

/// SHA-256 as lowercase hex, from coreutils `sha256sum`: an oracle that
/// shares no code with klpctl.
pub fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils) is required");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

// ------------------------------------------------------------------ JSON

/// A JSON value, for checking klpctl's `--json` output.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as written.
    Num(String),
    /// A string, unescaped.
    Str(String),
    /// A string of bytes that are not UTF-8, written by klpctl with lone
    /// surrogates `\udc80`-`\udcff` for the bytes 0x80-0xff that are not
    /// part of a UTF-8 sequence (PEP 383 "surrogateescape"), unescaped back
    /// to those bytes.
    Bytes(Vec<u8>),
    /// An array.
    Arr(Vec<Json>),
    /// An object, members in order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses one JSON document; panics (failing the test) on anything that
    /// is not strictly valid JSON, including duplicate object keys.
    pub fn parse(text: &str) -> Json {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value(0);
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing bytes after JSON in {text:?}");
        v
    }

    /// An object member; panics if absent.
    #[track_caller]
    pub fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(m) => {
                &m.iter()
                    .find(|(k, _)| k == key)
                    .unwrap_or_else(|| panic!("no key {key:?} in {self:?}"))
                    .1
            }
            _ => panic!("not an object: {self:?}"),
        }
    }

    /// The member names of an object, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
            _ => panic!("not an object: {self:?}"),
        }
    }

    /// A string value.
    #[track_caller]
    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }

    /// The bytes of a string value, UTF-8 or not.
    #[track_caller]
    pub fn raw(&self) -> &[u8] {
        match self {
            Json::Str(s) => s.as_bytes(),
            Json::Bytes(b) => b,
            _ => panic!("not a string: {self:?}"),
        }
    }

    /// An unsigned integer value.
    #[track_caller]
    pub fn u64(&self) -> u64 {
        match self {
            Json::Num(n) => n.parse().unwrap_or_else(|_| panic!("not a u64: {n}")),
            _ => panic!("not a number: {self:?}"),
        }
    }

    /// A boolean value.
    #[track_caller]
    pub fn bool(&self) -> bool {
        match self {
            Json::Bool(b) => *b,
            _ => panic!("not a bool: {self:?}"),
        }
    }

    /// An array value.
    #[track_caller]
    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array: {self:?}"),
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| b" \t\r\n".contains(c)) {
            self.i += 1;
        }
    }

    fn peek(&self) -> u8 {
        *self
            .s
            .get(self.i)
            .unwrap_or_else(|| panic!("JSON ends early"))
    }

    fn eat(&mut self, lit: &str) {
        assert!(
            self.s[self.i..].starts_with(lit.as_bytes()),
            "expected {lit:?} at {}",
            self.i
        );
        self.i += lit.len();
    }

    fn value(&mut self, depth: usize) -> Json {
        assert!(depth < 64, "JSON nested too deeply");
        self.ws();
        match self.peek() {
            b'{' => {
                self.i += 1;
                let mut m: Vec<(String, Json)> = Vec::new();
                self.ws();
                if self.peek() == b'}' {
                    self.i += 1;
                    return Json::Obj(m);
                }
                loop {
                    self.ws();
                    let (k, raw) = self.string_bytes();
                    assert!(!raw, "object key with escaped bytes");
                    let k = String::from_utf8(k).expect("JSON key is UTF-8");
                    assert!(m.iter().all(|(x, _)| *x != k), "duplicate JSON key {k:?}");
                    self.ws();
                    self.eat(":");
                    let v = self.value(depth + 1);
                    m.push((k, v));
                    self.ws();
                    match self.peek() {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Json::Obj(m);
                        }
                        c => panic!("unexpected {:?} in object", c as char),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.peek() == b']' {
                    self.i += 1;
                    return Json::Arr(a);
                }
                loop {
                    a.push(self.value(depth + 1));
                    self.ws();
                    match self.peek() {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Json::Arr(a);
                        }
                        c => panic!("unexpected {:?} in array", c as char),
                    }
                }
            }
            b'"' => match self.string_bytes() {
                (b, true) => Json::Bytes(b),
                (b, false) => Json::Str(String::from_utf8(b).expect("JSON string is UTF-8")),
            },
            b't' => {
                self.eat("true");
                Json::Bool(true)
            }
            b'f' => {
                self.eat("false");
                Json::Bool(false)
            }
            b'n' => {
                self.eat("null");
                Json::Null
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.i += 1;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b".eE+-".contains(c))
                {
                    self.i += 1;
                }
                Json::Num(String::from_utf8(self.s[start..self.i].to_vec()).unwrap())
            }
            c => panic!("unexpected {:?} in JSON", c as char),
        }
    }

    /// A string's bytes, and whether it carried escaped non-UTF-8 bytes.
    fn string_bytes(&mut self) -> (Vec<u8>, bool) {
        self.eat("\"");
        let mut out = Vec::new();
        let mut raw = false;
        loop {
            let c = self.peek();
            self.i += 1;
            match c {
                b'"' => {
                    if !raw {
                        std::str::from_utf8(&out).expect("JSON string is UTF-8");
                    }
                    return (out, raw);
                }
                b'\\' => {
                    let e = self.peek();
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let h = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
                            let cp = u32::from_str_radix(h, 16).expect("\\u escape");
                            self.i += 4;
                            if (0xdc80..=0xdcff).contains(&cp) {
                                out.push((cp - 0xdc00) as u8);
                                raw = true;
                            } else {
                                let ch = char::from_u32(cp)
                                    .expect("no surrogates in klpctl output but \\udc80-\\udcff");
                                out.extend_from_slice(ch.to_string().as_bytes());
                            }
                        }
                        _ => panic!("bad escape \\{}", e as char),
                    }
                }
                0..=0x1f => panic!("raw control character in JSON string"),
                _ => out.push(c),
            }
        }
    }
}

/// Runs `f` on every item across a few threads; `f` also gets the index of
/// its thread, for naming scratch files. Results are in item order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(t, part)| {
                let f = &f;
                s.spawn(move || part.iter().map(|x| f(t, x)).collect::<Vec<R>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}
