//! The self-built kernel tier: a real CVE fixed live.
//!
//! `qemu/selfbuilt/run-cve.sh` builds (or finds in the cache) an x86_64
//! kernel from Debian's newest linux-source-7.x with the CVE-2024-1086 check
//! removed, and the live patch the kernel's own `klp-build` makes from the
//! upstream fix; packs it with the real CVE id and a product naming that
//! kernel build, signs it with the test key, and boots the kernel twice:
//!
//! * `cve`: the reproducer says `vulnerable`, `klpctl apply` succeeds, the
//!   reproducer says `fixed`, `status` shows the patch level with the CVE,
//!   `klpctl vex` claims exactly that CVE (validated here against the
//!   OpenVEX schema and klpctl's), and `disable` brings `vulnerable` back;
//! * `lockdown`: booted with `module.sig_enforce=1 lockdown=integrity`, the
//!   module without the kernel's signature is refused with nothing loaded,
//!   and signed with the kernel's own key it applies.
//!
//! The cases each boot must pass are read from the guest script
//! (`qemu/selfbuilt/guest-cve.sh`, its `begin NAME` lines), so a case added
//! there is required here. Like `tests/qemu.rs`, this test never skips on
//! its own; `KLPCTL_SKIP_QEMU=1` skips it for local loops, except under
//! `CI=true`, where that variable is itself a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const GUEST: &str = "qemu/selfbuilt/guest-cve.sh";
const BUILD: &str = "qemu/selfbuilt/build-cve.sh";
const SCENARIOS: &[&str] = &["cve", "lockdown"];

fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The cases a scenario must pass: `env` (the rig's init checks the booted
/// kernel and its notes), then every `begin <scenario>_...` of the guest
/// script, in order.
fn plan(guest: &str, scenario: &str) -> Vec<String> {
    let prefix = format!("{scenario}_");
    let mut v = vec!["env".to_string()];
    for line in guest.lines() {
        if let Some(name) = line.trim().strip_prefix("begin ")
            && name.starts_with(&prefix)
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            v.push(name.to_string());
        }
    }
    v
}

/// What one boot's console log says: the problems with it against the plan,
/// and the VEX documents it printed (`KLPTEST-VEX <label> <json>`).
fn check_log(log: &str, plan: &[String]) -> (Vec<String>, Vec<(String, String)>) {
    let mut problems = Vec::new();
    let mut passed = Vec::new();
    let mut vex = Vec::new();
    let mut done = false;
    for raw in log.lines() {
        let line = raw.trim_end_matches('\r');
        if let Some(at) = line.find("KLPTEST-VEX ") {
            let rest = &line[at + "KLPTEST-VEX ".len()..];
            let (label, doc) = rest.split_once(' ').unwrap_or((rest, ""));
            vex.push((label.to_string(), doc.to_string()));
        } else if line.starts_with("KLPTEST-DONE") {
            done = true;
        } else if let Some(rest) = line.strip_prefix("KLPTEST ") {
            let mut w = rest.splitn(3, ' ');
            let (case, verdict) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            match verdict {
                "PASS" => passed.push(case.to_string()),
                "FAIL" => problems.push(format!("{case} failed: {}", w.next().unwrap_or(""))),
                _ => problems.push(format!("malformed marker: {line}")),
            }
        }
    }
    for case in plan {
        if !passed.contains(case) {
            problems.push(format!("no KLPTEST {case} PASS"));
        }
    }
    for case in &passed {
        if !plan.contains(case) {
            problems.push(format!("{case} passed but is not in the plan"));
        }
    }
    if !done {
        problems.push("no KLPTEST-DONE marker: the guest crashed or hung".into());
    }
    (problems, vex)
}

/// Every VEX document must be valid against both schemas (tests/vex/).
fn vex_problems(docs: &[(String, String)]) -> Vec<String> {
    let mut p = Vec::new();
    if !docs.iter().any(|(l, _)| l == "cve_fixed") {
        p.push("no KLPTEST-VEX cve_fixed document".into());
        return p;
    }
    let dir = repo().join("target/qemu/vex/selfbuilt-cve");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create target/qemu/vex/selfbuilt-cve");
    let mut files = Vec::new();
    for (i, (label, doc)) in docs.iter().enumerate() {
        let f = dir.join(format!("{i:02}-{label}.json"));
        std::fs::write(&f, doc).expect("write a VEX document");
        files.push(f);
    }
    let python = std::env::var("KLPCTL_VEX_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    for schema in ["openvex-0.2.0.schema.json", "klpctl-vex.schema.json"] {
        match Command::new(&python)
            .arg(repo().join("tests/vex/validate.py"))
            .arg(repo().join("tests/vex").join(schema))
            .args(&files)
            .output()
        {
            Ok(o) if o.status.success() => {
                say(&format!(
                    "selfbuilt: {} VEX document(s) valid against {schema}",
                    files.len()
                ));
            }
            Ok(o) => p.push(format!(
                "VEX documents in {} fail {schema}: {}{}",
                dir.display(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => p.push(format!("cannot run tests/vex/validate.py: {e}")),
        }
    }
    p
}

#[test]
fn selfbuilt_cve_tier() {
    if std::env::var("KLPCTL_SKIP_QEMU").is_ok_and(|v| v == "1") {
        assert!(
            !is_ci(),
            "KLPCTL_SKIP_QEMU=1 is set under CI=true: the self-built kernel tier must run in CI"
        );
        say("selfbuilt: KLPCTL_SKIP_QEMU=1, skipping the self-built kernel tier (local runs only)");
        return;
    }
    let guest = std::fs::read_to_string(repo().join(GUEST)).expect("read the guest script");
    // The tier's lock, held until the logs are read: another run in this
    // clone (the demo) waits instead of replacing them.
    std::fs::create_dir_all(repo().join("target/qemu")).expect("create target/qemu");
    let lock = std::fs::File::create(repo().join("target/qemu/.selfbuilt.lock"))
        .expect("create the tier's lock file");
    lock.lock().expect("take the tier's lock");
    let start = Instant::now();
    let status = Command::new("bash")
        .arg(repo().join("qemu/selfbuilt/run-cve.sh"))
        .arg("-q")
        .args(SCENARIOS)
        .env("KLPCTL_SELFBUILT_LOCKED", "1")
        .status()
        .expect("cannot run qemu/selfbuilt/run-cve.sh");
    say(&format!(
        "selfbuilt: run-cve.sh exited {status} after {:.1}s",
        start.elapsed().as_secs_f64()
    ));
    let mut problems = Vec::new();
    if !status.success() {
        problems.push(format!("run-cve.sh: {status}"));
    }
    for scenario in SCENARIOS {
        let path = repo().join(format!("target/qemu/logs/selfbuilt-{scenario}.log"));
        let log = std::fs::read(&path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let plan = plan(&guest, scenario);
        assert!(plan.len() > 1, "{GUEST} has no {scenario}_ cases");
        let (p, vex) = check_log(&log, &plan);
        if *scenario == "cve" {
            problems.extend(vex_problems(&vex));
        }
        if p.is_empty() {
            say(&format!(
                "selfbuilt: {scenario}: {} cases passed",
                plan.len()
            ));
        }
        problems.extend(
            p.into_iter()
                .map(|x| format!("{scenario}: {x} (log {})", path.display())),
        );
    }
    if status.success() {
        problems.extend(damaged_entry_problems());
        problems.extend(second_run_problems());
    }
    drop(lock);
    assert!(
        problems.is_empty(),
        "self-built kernel tier:\n  {}",
        problems.join("\n  ")
    );
}

/// A second run of the tier while this one holds its lock waits, and
/// leaves this run's logs and bundles alone.
fn second_run_problems() -> Vec<String> {
    use std::os::unix::process::CommandExt;
    let watched = [
        "target/qemu/logs/selfbuilt-cve.log",
        "target/qemu/selfbuilt/bundles",
    ];
    let stamp = |p: &str| {
        std::fs::metadata(repo().join(p))
            .and_then(|m| m.modified())
            .ok()
    };
    let before: Vec<_> = watched.iter().map(|p| stamp(p)).collect();
    let err = repo().join("target/qemu/selfbuilt-second-run.err");
    let mut child = Command::new("bash")
        .arg(repo().join("qemu/selfbuilt/run-cve.sh"))
        .args(["-q", "cve"])
        .env_remove("KLPCTL_SELFBUILT_LOCKED")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).expect("create the second run's stderr"))
        .process_group(0)
        .spawn()
        .expect("start a second run-cve.sh");
    let t = Instant::now();
    let mut waited = false;
    while t.elapsed().as_secs() < 20 && child.try_wait().ok().flatten().is_none() {
        waited = std::fs::read_to_string(&err).is_ok_and(|e| e.contains("waiting for"));
        if waited {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The whole group: bash and the flock(1) it waits in.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
    let mut p = Vec::new();
    if !waited {
        p.push(format!(
            "a second run-cve.sh did not wait for the first: {}",
            std::fs::read_to_string(&err).unwrap_or_default()
        ));
    }
    let after: Vec<_> = watched.iter().map(|p| stamp(p)).collect();
    if before != after || before.iter().any(Option::is_none) {
        p.push(format!("a second run-cve.sh changed {watched:?}"));
    }
    p
}

fn skip_without_qemu(what: &str) -> bool {
    if std::env::var("KLPCTL_SKIP_QEMU").is_ok_and(|v| v == "1") {
        assert!(
            !is_ci(),
            "KLPCTL_SKIP_QEMU=1 is set under CI=true: the self-built kernel tier must run in CI"
        );
        say(&format!("selfbuilt: KLPCTL_SKIP_QEMU=1, skipping {what}"));
        return true;
    }
    false
}

fn cache_dir() -> PathBuf {
    std::env::var_os("KLPCTL_CACHE").map_or_else(|| "/var/cache/klpctl-test".into(), PathBuf::from)
}

/// `build-cve.sh --cached` of the script at `script` against cache `cache`:
/// the entry it would use, if any. It never builds.
fn cached_entry(script: &Path, cache: &Path) -> Option<String> {
    let o = Command::new("bash")
        .arg(script)
        .arg("--cached")
        .env("KLPCTL_CACHE", cache)
        .output()
        .expect("run build-cve.sh --cached");
    let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !out.is_empty()).then_some(out)
}

type Damage<'a> = &'a dyn Fn(&Path);

/// A cache entry with any file missing, truncated or changed is never
/// used: checked on a scratch copy of the entry the tier just used (the
/// shared cache is only read).
fn damaged_entry_problems() -> Vec<String> {
    let script = repo().join(BUILD);
    let real = cache_dir();
    let Some(entry) = cached_entry(&script, &real) else {
        return vec!["build-cve.sh --cached finds no intact entry right after the tier ran".into()];
    };
    let entry = PathBuf::from(entry);
    let name = entry.file_name().expect("entry name").to_owned();
    let scratch = repo().join("target/qemu/selfbuilt-cache-test");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("selfbuilt")).expect("create the scratch cache");
    // The source tree and apt's lists are only read (found, not built).
    for link in ["selfbuilt/source", "apt-trixie-backports"] {
        std::os::unix::fs::symlink(real.join(link), scratch.join(link))
            .expect("link into the scratch cache");
    }
    let copy = scratch.join("selfbuilt").join(&name);
    let fresh = || {
        let _ = std::fs::remove_dir_all(&copy);
        let ok = Command::new("cp")
            .arg("-a")
            .arg(&entry)
            .arg(&copy)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "copy {} into the scratch cache", entry.display());
    };
    let mut p = Vec::new();
    fresh();
    if cached_entry(&script, &scratch).as_deref() != copy.to_str() {
        p.push(format!("an intact copy of {} is not used", entry.display()));
    }
    let mut files: Vec<String> = std::fs::read_dir(&entry)
        .expect("list the entry")
        .map(|e| {
            e.expect("entry file")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the entry has only {files:?}");
    let truncate = |p: &Path| {
        let len = std::fs::metadata(p).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
    };
    let flip = |p: &Path| {
        let mut b = std::fs::read(p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 1;
        std::fs::write(p, b).unwrap();
    };
    let mut cases: Vec<(String, &str, Damage)> = Vec::new();
    let remove = |p: &Path| std::fs::remove_file(p).unwrap();
    // Each file is listed in SHA256SUMS, so a missing one is caught like
    // these three.
    let sums = std::fs::read_to_string(entry.join("SHA256SUMS")).unwrap_or_default();
    for f in files
        .iter()
        .filter(|f| !["SHA256SUMS", "complete"].contains(&f.as_str()))
    {
        if !sums
            .lines()
            .any(|l| l.split_once("  ").is_some_and(|(_, n)| n == f))
        {
            p.push(format!("{f} is not in the entry's SHA256SUMS"));
        }
    }
    for f in ["complete", "SHA256SUMS", "bzImage"] {
        cases.push((f.into(), "missing", &remove));
    }
    for f in ["bzImage", "livepatch-cve-2024-1086.signed.ko", "SHA256SUMS"] {
        cases.push((f.into(), "truncated", &truncate));
    }
    for f in ["bzImage", "livepatch-cve-2024-1086.ko", "notes"] {
        cases.push((f.into(), "one byte changed", &flip));
    }
    for (f, how, damage) in cases {
        fresh();
        damage(&copy.join(&f));
        if let Some(used) = cached_entry(&script, &scratch) {
            p.push(format!("an entry with {f} {how} is used: {used}"));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if p.is_empty() {
        say("selfbuilt: damaged cache entries are refused");
    }
    p
}

/// The files of the rig an entry is built from: every `$SELF_DIR/...` that
/// build-cve.sh and config.sh read, except lib.sh, trixie.sh and source.sh,
/// which only find things (the source is keyed by its Debian version).
fn key_inputs() -> Vec<String> {
    let mut v = vec!["build-cve.sh".to_string()];
    for script in ["build-cve.sh", "config.sh"] {
        let text = std::fs::read_to_string(repo().join("qemu/selfbuilt").join(script))
            .expect("read a selfbuilt script");
        for (at, _) in text.match_indices("$SELF_DIR/") {
            let rest = &text[at + "$SELF_DIR/".len()..];
            let end = rest.find(['"', ' ', '\n', ')']).unwrap_or(rest.len());
            let f = rest[..end]
                .replace("${PATCH_NAME}", "cve-2024-1086")
                .replace("$arch", "x86_64");
            // "$f": the key's own loop over its inputs.
            if f == "$f" {
                continue;
            }
            assert!(
                !f.contains('$'),
                "{script} reads $SELF_DIR/{f}: name it here"
            );
            if !["../lib.sh", "../trixie.sh", "source.sh"].contains(&f.as_str()) && !v.contains(&f)
            {
                v.push(f);
            }
        }
    }
    v
}

#[test]
fn the_cache_key_covers_every_input() {
    if skip_without_qemu("the cache key check") {
        return;
    }
    let inputs = key_inputs();
    assert!(inputs.len() >= 8, "too few inputs found: {inputs:?}");
    let scratch = repo().join("target/qemu/selfbuilt-key-test");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("create the scratch dir");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(repo().join("qemu"))
        .arg(&scratch)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "copy qemu/ to {}", scratch.display());
    let dir = scratch.join("qemu/selfbuilt");
    let key = || {
        let o = Command::new("bash")
            .arg(dir.join("build-cve.sh"))
            .arg("--key")
            .output()
            .expect("run build-cve.sh --key");
        assert!(
            o.status.success(),
            "build-cve.sh --key: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let base = key();
    assert!(
        base.contains("/selfbuilt/x86_64-cve-"),
        "odd entry path {base}"
    );
    assert_eq!(base, key(), "the key changes with nothing changed");
    let mut same = Vec::new();
    for f in &inputs {
        let path = dir.join(f);
        let orig = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut changed = orig.clone();
        changed.extend_from_slice(b"\n#\n");
        std::fs::write(&path, &changed).expect("change an input");
        let k = key();
        std::fs::write(&path, &orig).expect("restore an input");
        if k == base {
            same.push(f.clone());
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        same.is_empty(),
        "the cache key ignores changes to {same:?} (inputs {inputs:?})"
    );
}

#[test]
fn the_plan_comes_from_the_guest_script() {
    let g = "    begin cve_vulnerable\n    begin cve_apply\nbegin lockdown_env\n# begin cve_x\n";
    assert_eq!(plan(g, "cve"), ["env", "cve_vulnerable", "cve_apply"]);
    assert_eq!(plan(g, "lockdown"), ["env", "lockdown_env"]);
    let real = std::fs::read_to_string(repo().join(GUEST)).expect("read the guest script");
    for s in SCENARIOS {
        assert!(plan(&real, s).len() > 2, "{s}: no cases found in {GUEST}");
    }
}

#[test]
fn markers_are_checked_strictly() {
    let plan = vec!["env".to_string(), "cve_apply".to_string()];
    let ok =
        "\x1b[0mKLPTEST-BOOT x\r\nKLPTEST env PASS\r\nKLPTEST cve_apply PASS\nKLPTEST-DONE rc=0\n";
    assert!(check_log(ok, &plan).0.is_empty());
    // A failure, a missing case, a case outside the plan, no final marker.
    let bad = "KLPTEST env PASS\nKLPTEST cve_apply FAIL klpctl exited 6\nKLPTEST other PASS\n";
    let (p, _) = check_log(bad, &plan);
    assert_eq!(
        p,
        [
            "cve_apply failed: klpctl exited 6",
            "no KLPTEST cve_apply PASS",
            "other passed but is not in the plan",
            "no KLPTEST-DONE marker: the guest crashed or hung"
        ]
    );
    let (_, vex) = check_log("x KLPTEST-VEX cve_fixed {\"a\":1}\r\n", &plan);
    assert_eq!(vex, [("cve_fixed".to_string(), "{\"a\":1}".to_string())]);
}

/// Creates the reproducer's table in this network namespace, then runs the
/// command line it is given. `owned`: the table belongs to this helper's
/// netlink socket (NFT_TABLE_F_OWNER), which it holds meanwhile, so every
/// other socket's change to it is refused with EPERM. `plain`: an ordinary
/// table, which must still be there afterwards (exit 3 if it is gone).
const TABLE_HELPER: &str = r#"
import socket, struct, subprocess, sys
def attr(t, d):
    n = 4 + len(d)
    return struct.pack("=HH", n, t) + d + b"\0" * (-n % 4)
def msg(t, flags, seq, res_id, payload=b""):
    body = struct.pack("=BBH", 2, 0, socket.htons(res_id)) + payload
    return struct.pack("=IHHII", 16 + len(body), t, flags, seq, 0) + body
def newtable(flags):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
    t = attr(1, b"klpctl_cve_2024_1086\0") + attr(2, struct.pack("!I", flags))
    # batch begin, NEWTABLE with CREATE|EXCL|ACK, batch end
    s.sendto(msg(16, 1, 1, 10) + msg(10 << 8, 0x605, 2, 0, t) + msg(17, 1, 3, 10), (0, 0))
    return s, -struct.unpack_from("=i", s.recv(8192), 16)[0]
owned = sys.argv[1] == "owned"
s, err = newtable(2 if owned else 0)
if err:
    sys.exit("cannot make the table: errno %d" % err)
if not owned:
    s.close()
r = subprocess.run(sys.argv[2:], capture_output=True, text=True)
sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)
if not owned and newtable(0)[1] != 17:  # EEXIST: still there
    sys.stderr.write("the table that was there before is gone\n")
    sys.exit(3)
sys.exit(r.returncode)
"#;

/// The reproducer on the host's kernel (which has the fix), each run in a
/// network namespace of its own: it says `fixed` only on the kernel's
/// EINVAL, and anything it cannot judge is exit 2 with nothing on stdout
/// and the kernel's own answer in its last line.
#[test]
fn the_reproducer_says_fixed_only_on_evidence() {
    if skip_without_qemu("the reproducer on the host kernel") {
        return;
    }
    let dir = repo().join("target/qemu/repro-host");
    std::fs::create_dir_all(&dir).expect("create target/qemu/repro-host");
    let repro = dir.join("repro-cve-2024-1086");
    let ok = Command::new("gcc")
        .args(["-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&repro)
        .arg(repo().join("qemu/selfbuilt/repro-cve-2024-1086.c"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cannot build the reproducer with gcc -static");
    let run = |pre: &[&str]| {
        let o = Command::new(pre[0])
            .args(&pre[1..])
            .arg(&repro)
            .output()
            .expect("run the reproducer");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            err,
        )
    };
    let (code, out, err) = run(&["unshare", "-rn"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "fixed\n"),
        "a fresh namespace: {err}"
    );
    assert!(
        err.contains("EINVAL and accepted the same rule with DROP"),
        "{err}"
    );
    // Without CAP_NET_ADMIN: the kernel answers nothing but EPERM.
    let (code, out, err) = run(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (Some(2), ""),
        "without CAP_NET_ADMIN: {err}"
    );
    // The table exists, owned by another socket: every message is refused.
    let (code, out, err) = run(&["unshare", "-rn", "python3", "-c", TABLE_HELPER, "owned"]);
    assert_eq!((code, out.as_str()), (Some(2), ""), "owned table: {err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.contains("Operation not permitted") && last.contains("cannot tell"),
        "owned table: the verdict line does not say what the kernel answered: {err}"
    );
    // A table of that name was there before: no verdict, and it stays.
    let (code, out, err) = run(&["unshare", "-rn", "python3", "-c", TABLE_HELPER, "plain"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(2), ""),
        "a table there before: {err}"
    );
}
