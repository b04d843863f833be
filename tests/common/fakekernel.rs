//! A fake machine for kernel-facing host tests: klpctl runs under
//! `tests/fakekernel/fakekernel.c` (compiled here with the host's gcc), in
//! a private mount namespace whose `/run`, `/sys/kernel`, `/sys/module`,
//! `/proc/cmdline`, boot id, `/dev/kmsg` and `/proc/modules` are a
//! directory of one boot, and under ptrace, which answers the module
//! system calls the way the kernel would. docs/fake-kernel.md describes it.
//!
//! A [`Machine`] is a sequence of boots sharing one persistent state
//! directory and one bundle directory: [`Machine::reboot`] starts a new
//! boot (new boot id, empty `/run` and sysfs), as after a clean reboot or
//! a crash, the difference being whether `klpctl confirm` ran first.
//!
//! Needs root (mount namespaces), ptrace and gcc. Without them a test
//! fails under `CI=true` and is skipped, loudly, elsewhere.

use super::ko::{EM_X86_64, fake_ko, modinfo};
use super::runner::{Run, TempDir, klpctl_bin, root};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The compiled helper, or why it cannot run here.
fn helper() -> Result<&'static Path, String> {
    static HELPER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            let out_dir = root().join("target/fakekernel");
            std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
            let bin = out_dir.join(format!("fakekernel-{}", std::process::id()));
            let src = root().join("tests/fakekernel/fakekernel.c");
            let cc = Command::new("gcc")
                .args(["-O2", "-Wall", "-Werror", "-o"])
                .arg(&bin)
                .arg(&src)
                .output()
                .map_err(|e| format!("cannot run gcc: {e}"))?;
            if !cc.status.success() {
                return Err(format!(
                    "gcc failed:\n{}",
                    String::from_utf8_lossy(&cc.stderr)
                ));
            }
            // A probe boot: the namespace, the mounts and ptrace must work.
            let probe = TempDir::new();
            let m = Boot::create(probe.path(), 1, Some("probe"));
            let r = Command::new(&bin)
                .arg(&m)
                .args(["--", "/bin/true"])
                .output()
                .map_err(|e| e.to_string())?;
            if !r.status.success() {
                return Err(format!(
                    "the fake kernel does not run here (root, unshare -m and ptrace are needed): {}",
                    String::from_utf8_lossy(&r.stderr)
                ));
            }
            Ok(bin)
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// Whether the fake kernel runs here. When it does not, this fails the
/// test under `CI=true` and otherwise says why it is skipped.
pub fn available() -> bool {
    match helper() {
        Ok(_) => true,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("fake kernel unavailable under CI=true: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED (not under CI=true): fake kernel unavailable: {e}");
            false
        }
    }
}

struct Boot;

impl Boot {
    /// Makes the directory of boot `n` under `base`; `id` is its boot id
    /// (a UUID is derived from it), `None` for an unreadable boot id.
    fn create(base: &Path, n: usize, id: Option<&str>) -> PathBuf {
        let b = base.join(format!("boot{n}"));
        for d in ["run", "kernel/livepatch", "module"] {
            std::fs::create_dir_all(b.join(d)).unwrap();
        }
        let w = |f: &str, t: &str| std::fs::write(b.join(f), t).unwrap();
        w("cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda ro\n");
        w("kmsg", "");
        w("modules", "");
        w("empty", "");
        w("uptime", "5\n");
        if let Some(id) = id {
            w("boot_id", &format!("{}\n", uuid(id, n)));
        }
        b
    }
}

/// A boot id for boot `n` of test `seed`, shaped like the kernel's.
fn uuid(seed: &str, n: usize) -> String {
    let h: u64 = seed.bytes().fold(0xcbf29ce484222325, |h, c| {
        (h ^ c as u64).wrapping_mul(0x100000001b3)
    });
    let x = format!("{:016x}{:016x}", h, n as u64);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The running kernel's release, which bundles must name.
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_owned()
}

/// A fake machine: boots, a persistent state directory `state/`, a bundle
/// directory `bundles/`, a signing key and its keyring `ring/`.
pub struct Machine {
    /// The machine's files.
    pub dir: TempDir,
    boot: usize,
    name: String,
    boot_dir: PathBuf,
}

impl Machine {
    /// A machine in its first boot, or `None` when the fake kernel cannot
    /// run here (see [`available`]). `name` makes its boot ids unique.
    pub fn new(name: &str) -> Option<Machine> {
        if !available() {
            return None;
        }
        // On tmpfs when there is one: klpctl fsyncs its state, and a
        // scenario is many runs (milliseconds each on tmpfs, tens on disk).
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            TempDir::new_in(shm)
        } else {
            TempDir::new()
        };
        dir.mkdir("ring");
        dir.mkdir("bundles");
        dir.mkdir("store");
        let r = dir.klpctl(&["keygen", "-p", "ring/k.pub", "-s", "k.sec"]);
        assert_eq!(r.code, 0, "keygen: {}", r.err());
        let boot_dir = Boot::create(dir.path(), 1, Some(name));
        Some(Machine {
            dir,
            boot: 1,
            name: name.to_owned(),
            boot_dir,
        })
    }

    /// The next boot: a new boot id, empty `/run` and sysfs.
    pub fn reboot(&mut self) {
        self.boot += 1;
        self.boot_dir = Boot::create(self.dir.path(), self.boot, Some(&self.name));
    }

    /// The next boot, with no readable boot id.
    pub fn reboot_without_boot_id(&mut self) {
        self.boot += 1;
        self.boot_dir = Boot::create(self.dir.path(), self.boot, None);
    }

    /// This boot's directory.
    pub fn boot_dir(&self) -> &Path {
        &self.boot_dir
    }

    /// Sets how long this boot has been up (CLOCK_BOOTTIME) at klpctl's
    /// next start.
    pub fn set_uptime(&self, secs: u64) {
        std::fs::write(self.boot_dir.join("uptime"), format!("{secs}\n")).unwrap();
    }

    /// The persistent state directory.
    pub fn state(&self) -> String {
        self.dir.abs("state")
    }

    /// The guard file's text ("" when there is none).
    pub fn guard(&self) -> String {
        std::fs::read_to_string(self.dir.join("state/guard")).unwrap_or_default()
    }

    /// Packs bundle `store/<name>-<version>.klp` for the running kernel:
    /// module `name`, `stream`, `version`, cumulative when `replace`.
    /// Returns its path.
    pub fn bundle(&self, name: &str, stream: &str, version: u64, replace: bool) -> String {
        let ko = format!("store/{name}-{version}.ko");
        let vermagic = format!("{} SMP preempt mod_unload modversions ", release());
        self.dir
            .write(&ko, fake_ko(&modinfo(name, &vermagic, true), EM_X86_64));
        let out = format!("store/{name}-{version}.klp");
        let v = version.to_string();
        let mut args = vec![
            "pack",
            &ko,
            "-o",
            &out,
            "--stream",
            stream,
            "--version",
            &v,
            "-s",
            "k.sec",
        ];
        if replace {
            args.push("--replace");
        }
        let r = self.dir.klpctl(&args);
        assert_eq!(r.code, 0, "pack: {}", r.err());
        self.dir.abs(&out)
    }

    /// Copies a bundle made by [`Machine::bundle`] into `bundles/`.
    pub fn install(&self, bundle: &str) {
        let name = Path::new(bundle).file_name().unwrap();
        std::fs::copy(bundle, self.dir.join("bundles").join(name)).unwrap();
    }

    /// Runs klpctl with `args` in this boot. `kernel` are the fake
    /// kernel's options (`-l NAME=ACTION`, `-r`, `-k N`).
    pub fn run(&self, kernel: &[&str], args: &[&str]) -> Run {
        self.run_bin(klpctl_bin(), kernel, args)
    }

    /// As [`Machine::run`], with another build of klpctl.
    pub fn run_bin(&self, bin: &Path, kernel: &[&str], args: &[&str]) -> Run {
        let mut cmd = Command::new(helper().expect("checked by Machine::new"));
        cmd.arg(&self.boot_dir)
            .args(kernel)
            .arg("--")
            .arg(bin)
            .args(args)
            .current_dir(self.dir.path());
        let out = cmd.output().expect("cannot run the fake kernel");
        let r = Run {
            what: format!("fakekernel {kernel:?} -- klpctl {args:?}"),
            code: out.status.code().expect("fakekernel exits"),
            stdout: out.stdout,
            stderr: out.stderr,
        };
        assert_ne!(r.code, 125, "the fake kernel failed: {}", r.err());
        r
    }

    /// `apply --dir bundles --state-dir state --keyring ring` (boot time).
    pub fn boot_apply(&self, kernel: &[&str]) -> Run {
        let st = self.state();
        self.run(
            kernel,
            &[
                "apply",
                "--dir",
                "bundles",
                "--state-dir",
                &st,
                "--keyring",
                "ring",
                "--json",
            ],
        )
    }

    /// `apply BUNDLE --state-dir state --keyring ring`.
    pub fn apply(&self, kernel: &[&str], bundle: &str) -> Run {
        let st = self.state();
        self.run(
            kernel,
            &["apply", bundle, "--state-dir", &st, "--keyring", "ring"],
        )
    }

    /// `confirm --state-dir state` plus `extra`.
    pub fn confirm(&self, extra: &[&str]) -> Run {
        let st = self.state();
        let mut args = vec!["confirm", "--state-dir", &st];
        args.extend_from_slice(extra);
        self.run(&[], &args)
    }

    /// A snapshot of the machine's files (see [`TempDir::snapshot`]) but
    /// the boots' `/run`, where every changing command takes its lock, and
    /// kernel log, where klpctl logs what it refused.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
        let mut s = self.dir.snapshot();
        s.retain(|p, _| !p.components().any(|c| c.as_os_str() == "run") && !p.ends_with("kmsg"));
        s
    }

    /// Whether patch `name` is live in this boot (enabled, no transition).
    pub fn live(&self, name: &str) -> bool {
        let lp = self.boot_dir.join("kernel/livepatch").join(name);
        let read = |a: &str| std::fs::read_to_string(lp.join(a)).unwrap_or_default();
        read("enabled").trim() == "1" && read("transition").trim() == "0"
    }

    /// The patches in this boot's `/sys/kernel/livepatch`, sorted.
    pub fn patches(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.boot_dir.join("kernel/livepatch"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}
