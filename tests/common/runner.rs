//! Running the binary under test: where it is (or building it), a process
//! runner that refuses to mistake a signal for an exit code, bounded runs
//! for inputs that used to hang, private temporary directories, and
//! snapshots that show a refused command changed nothing.

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
        TempDir::new_in(&std::env::temp_dir())
    }

    /// A new empty directory in `base`.
    pub fn new_in(base: &Path) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = base.join(format!("klpctl-itest-{}-{n}", std::process::id()));
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
