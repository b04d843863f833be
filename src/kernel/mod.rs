//! The kernel: facts about the running one (release and machine from
//! uname, the GNU build-id from `/sys/kernel/notes`, lockdown mode, taint
//! flags), and the mechanism klpctl drives it with: [`sysfs`] (what the
//! kernel shows of patches and modules), [`loader`] (loading and removing
//! modules) and [`transition`] (waiting, and who blocks).
#![forbid(unsafe_code)]

pub mod cmdline;
pub mod loader;
pub mod sysfs;
pub mod transition;

use crate::error::{Error, Failure, Result};
use crate::trust::manifest::Manifest;

/// Largest `/sys/kernel/notes` read.
pub const MAX_NOTES: usize = 4096;

/// Finds the GNU build-id (name `GNU`, type 3) in a sequence of ELF notes
/// as `/sys/kernel/notes` presents them: namesz, descsz, type (u32 LE),
/// then name and descriptor, each padded to 4 bytes.
pub fn build_id_from_notes(notes: &[u8]) -> Option<&[u8]> {
    let mut rest = notes;
    while rest.len() >= 12 {
        let word = |i: usize| {
            u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]) as usize
        };
        let (namesz, descsz, ty) = (word(0), word(4), word(8));
        let name_end = 12usize.checked_add(namesz.checked_add(3)? & !3)?;
        let desc_end = name_end.checked_add(descsz.checked_add(3)? & !3)?;
        if desc_end > rest.len() {
            return None;
        }
        if ty == 3 && namesz == 4 && &rest[12..16] == b"GNU\0" && descsz > 0 {
            return Some(&rest[name_end..name_end + descsz]);
        }
        rest = &rest[desc_end..];
    }
    None
}

/// The running kernel's identity.
pub struct Running {
    /// `uname -r`.
    pub release: heapless::String<65>,
    /// `uname -m`.
    pub machine: heapless::String<65>,
    /// GNU build-id, empty if the kernel does not expose one.
    pub build_id: heapless::Vec<u8, 64>,
}

fn to_string(c: &core::ffi::CStr) -> heapless::String<65> {
    let mut s = heapless::String::new();
    // Cannot fail: a utsname field is at most 65 bytes, its NUL included.
    let _ = s.push_str(c.to_str().unwrap_or("?"));
    s
}

impl Running {
    /// Reads uname and `/sys/kernel/notes`.
    pub fn read() -> Running {
        let u = rustix::system::uname();
        let mut build_id = heapless::Vec::new();
        let mut buf = [0u8; MAX_NOTES];
        if let Ok(notes) = crate::files::read_small(
            c"/sys/kernel/notes",
            &mut buf,
            msg!("read /sys/kernel/notes"),
        ) && let Some(id) = build_id_from_notes(notes)
        {
            // A build id over 64 bytes is none: a bundle that names one is
            // then refused as not for this kernel (the safe side).
            let _ = build_id.extend_from_slice(id);
        }
        Running {
            release: to_string(u.release()),
            machine: to_string(u.machine()),
            build_id,
        }
    }
}

impl Running {
    /// Whether bundle manifest `m` is for this kernel: release and
    /// architecture, and the build-id when the bundle names one. A mismatch
    /// names both sides.
    pub fn check(&self, m: &Manifest) -> core::result::Result<(), Failure> {
        for (bundle, running, differs) in [
            (m.release, &self.release, msg!("kernel: release differs")),
            (m.arch, &self.machine, msg!("kernel: architecture differs")),
        ] {
            if bundle != running.as_str() {
                return Err(Error::WrongKernel(differs).with(&[
                    b"bundle is for ",
                    bundle.as_bytes(),
                    b", running ",
                    running.as_bytes(),
                ]));
            }
        }
        if !m.build_id.is_empty() && m.build_id[..] != self.build_id[..] {
            let mut a = [0u8; 128];
            let mut b = [0u8; 128];
            let ha = crate::codec::hex_encode(&m.build_id, &mut a).unwrap_or(b"?");
            let hb = if self.build_id.is_empty() {
                b"unknown" as &[u8]
            } else {
                crate::codec::hex_encode(&self.build_id, &mut b).unwrap_or(b"?")
            };
            return Err(Error::WrongKernel(msg!("kernel: build-id differs")).with(&[
                b"bundle build-id ",
                ha,
                b", running ",
                hb,
            ]));
        }
        Ok(())
    }
}

/// Most bytes of `/proc/cmdline` klpctl reads. A longer command line (the
/// kernel's own limit is 2048 on x86 and arm64, but a boot config can add
/// more) is not read at all: the switches fail closed.
pub const MAX_CMDLINE: usize = 4096;

/// Most bytes of a `klpctl.skip=` value; a longer one fails closed rather
/// than being cut, since a cut name could match a shorter one.
pub const MAX_SKIP: usize = 256;

/// klpctl's switches on the kernel command line, for boot-time
/// `apply --dir`: `klpctl.enable=` with a value the kernel's `kstrtobool`
/// reads as false applies nothing, and `klpctl.skip=A,B` skips the patches
/// named. The command line is split into parameters exactly as the kernel
/// splits its own (quotes, and `--` ending the kernel's part). Whatever
/// cannot be read in full or understood turns boot-time apply off
/// (fail closed), and [`Switches::why`] says why.
pub struct Switches {
    /// Boot-time apply applies nothing: `klpctl.enable` reads as off, or
    /// the switches could not be read in full or understood.
    pub off: bool,
    /// When `off` is a fail-closed decision rather than the operator's
    /// `klpctl.enable` value: the reason, to report.
    pub why: Option<crate::error::Msg>,
    /// The value of the last `klpctl.skip=`, comma-separated names.
    pub skip: heapless::Vec<u8, MAX_SKIP>,
}

impl Switches {
    /// Reads `/proc/cmdline`. A command line that cannot be read, or is
    /// longer than [`MAX_CMDLINE`], fails closed.
    pub fn read() -> Switches {
        let mut buf = [0u8; MAX_CMDLINE];
        match crate::files::read_small(c"/proc/cmdline", &mut buf, crate::files::UNSHOWN) {
            Ok(line) => Switches::parse(line),
            Err(_) => Switches::closed(msg!(
                "cannot read /proc/cmdline in full (unreadable, or over 4096 bytes)"
            )),
        }
    }

    fn closed(why: crate::error::Msg) -> Switches {
        Switches {
            off: true,
            why: Some(why),
            skip: heapless::Vec::new(),
        }
    }

    /// The switches in command line `line` (the contents of
    /// `/proc/cmdline`). For `klpctl.enable` the last valid value wins, as
    /// in the kernel, and no value means on; but an invalid value anywhere
    /// fails closed, so a typo never turns patching back on. For
    /// `klpctl.skip` the last value wins; one with no `=`, or longer than
    /// [`MAX_SKIP`], fails closed.
    pub fn parse(line: &[u8]) -> Switches {
        // The kernel's command line is a C string.
        let line = line.split(|&c| c == 0).next().unwrap_or(b"");
        // `/proc/cmdline` adds a newline that is not part of the command
        // line: inside an unclosed quote it would become part of the last
        // value (`klpctl.skip="a` would name `a\n`, never `a`).
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let mut s = Switches {
            off: false,
            why: None,
            skip: heapless::Vec::new(),
        };
        for (param, val) in cmdline::Args::new(line) {
            if param == b"klpctl.enable" {
                match cmdline::strtobool(val.unwrap_or(b"1")) {
                    Some(on) => s.off = !on,
                    None => {
                        s.why.get_or_insert(msg!(
                            "klpctl.enable on the kernel command line is neither on nor off"
                        ));
                    }
                }
            } else if param == b"klpctl.skip" {
                s.skip.clear();
                match val {
                    None => {
                        s.why.get_or_insert(msg!(
                            "klpctl.skip on the kernel command line has no value"
                        ));
                    }
                    Some(v) => {
                        if s.skip.extend_from_slice(v).is_err() {
                            s.why.get_or_insert(msg!(
                                "klpctl.skip on the kernel command line is longer than 256 bytes"
                            ));
                        }
                    }
                }
            }
        }
        if s.why.is_some() {
            s.off = true;
            s.skip.clear();
        }
        s
    }

    /// Whether `klpctl.skip=` names patch `name`.
    pub fn skips(&self, name: &[u8]) -> bool {
        self.skip.split(|&c| c == b',').any(|n| n == name)
    }
}

/// The active lockdown mode (`none`, `integrity`, `confidentiality`), or
/// `None` when the kernel has no lockdown LSM or securityfs is not mounted.
pub fn lockdown(buf: &mut [u8; 128]) -> Option<&str> {
    let text =
        crate::files::read_small(c"/sys/kernel/security/lockdown", buf, crate::files::UNSHOWN)
            .ok()?;
    let start = text.iter().position(|&c| c == b'[')? + 1;
    let len = text[start..].iter().position(|&c| c == b']')?;
    core::str::from_utf8(&text[start..start + len]).ok()
}

/// The taint bit mask from `/proc/sys/kernel/tainted`.
pub fn taint() -> Result<u64> {
    let mut buf = [0u8; 32];
    let t = crate::files::read_small(
        c"/proc/sys/kernel/tainted",
        &mut buf,
        msg!("read /proc/sys/kernel/tainted"),
    )?;
    Ok(crate::codec::parse_u64(t).unwrap_or(0))
}

/// Taint letters in bit order, as the kernel's documentation lists them.
pub const TAINT_LETTERS: &[u8; 19] = b"PFSRMBUDAWCIOELKXTN";

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], ty: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(name);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn finds_gnu_build_id_after_other_notes() {
        let id: Vec<u8> = (1..=20).collect();
        let mut notes = note(b"Xen\0", 6, b"abcdef");
        notes.extend(note(b"GNU\0", 1, b"1234"));
        notes.extend(note(b"GNU\0", 3, &id));
        assert_eq!(build_id_from_notes(&notes), Some(&id[..]));
    }

    fn sw(line: &str) -> Switches {
        Switches::parse(line.as_bytes())
    }

    #[test]
    fn every_kernel_false_value_turns_boot_apply_off() {
        for v in [
            "0", "00", "n", "N", "no", "off", "OFF", "false", "F", "disable",
        ] {
            let s = sw(&format!("ro klpctl.enable={v} quiet"));
            assert!(s.off && s.why.is_none(), "{v}");
        }
        // Negative: true values, no value, and no switch at all leave it on.
        for line in [
            "klpctl.enable=1",
            "klpctl.enable=yes",
            "klpctl.enable=on",
            "klpctl.enable",
            "ro",
        ] {
            let s = sw(line);
            assert!(!s.off && s.why.is_none(), "{line}");
        }
    }

    #[test]
    fn the_last_valid_value_wins_but_an_invalid_one_fails_closed() {
        assert!(!sw("klpctl.enable=0 klpctl.enable=1").off);
        assert!(sw("klpctl.enable=1 klpctl.enable=0").off);
        for line in [
            "klpctl.enable=0 klpctl.enable=maybe",
            "klpctl.enable=maybe klpctl.enable=1",
            "klpctl.enable=",
            "klpctl.enable=o",
        ] {
            let s = sw(line);
            assert!(s.off && s.why.is_some(), "{line}");
        }
    }

    #[test]
    fn switches_are_read_after_the_kernels_tokenizer() {
        assert!(sw("\"klpctl.enable=0\"").off);
        assert!(sw("klpctl.enable=\"0\"").off);
        assert!(sw("klpctl.skip=\"a,b\"").skips(b"b"));
        // Negative: init's arguments, another parameter's quoted value, a
        // different name or case are not switches.
        for line in [
            "ro -- klpctl.enable=0",
            "dyndbg=\"x klpctl.enable=0\"",
            "KLPCTL.ENABLE=0",
            "klpctl.enabled=0",
            "xklpctl.enable=0",
        ] {
            assert!(!sw(line).off, "{line}");
        }
        assert!(!sw("ro -- klpctl.skip=a").skips(b"a"));
        // A NUL ends the line, as it ends the kernel's string.
        assert!(!sw("ro\0klpctl.enable=0").off);
    }

    #[test]
    fn skip_names_whole_names_only() {
        let s = sw("klpctl.skip=klp_a,klp_b klpctl.enable=1");
        assert!(s.skips(b"klp_a") && s.skips(b"klp_b") && !s.off);
        // Negative: no prefix, no other name, and the last value wins.
        assert!(!s.skips(b"klp") && !s.skips(b"klp_c") && !s.skips(b""));
        let s = sw("klpctl.skip=klp_a klpctl.skip=klp_b");
        assert!(!s.skips(b"klp_a") && s.skips(b"klp_b"));
        assert!(!sw("klpctl.skip=").off);
    }

    #[test]
    fn the_newline_proc_cmdline_adds_is_not_part_of_a_value() {
        // An unclosed quote runs to the end of the kernel's line, which
        // ends before the newline /proc/cmdline prints after it.
        let s = sw("ro klpctl.skip=\"klp_a\n");
        assert!(s.skips(b"klp_a") && !s.off, "{:?}", s.skip);
        assert!(sw("\"klpctl.skip=klp_a,klp_b\n").skips(b"klp_b"));
        assert!(sw("klpctl.enable=\"0\n").off);
        // Negative: only that one newline goes; one inside a quoted value
        // before it stays.
        assert!(!sw("klpctl.skip=\"klp_a\n\n").skips(b"klp_a"));
        assert!(sw("klpctl.skip=\"klp_a\nklp_b\"\n").skips(b"klp_a\nklp_b"));
    }

    #[test]
    fn skip_values_that_cannot_be_kept_whole_fail_closed() {
        let fits = "a".repeat(MAX_SKIP);
        let s = sw(&format!("klpctl.skip={fits}"));
        assert!(!s.off && s.skips(fits.as_bytes()));
        // One byte more: off, nothing kept, so no cut name can match.
        let long = format!("{fits}x");
        let s = sw(&format!("klpctl.skip={long}"));
        assert!(s.off && s.why.is_some() && !s.skips(fits.as_bytes()));
        // A later value does not reopen it; neither does a bare name.
        assert!(sw(&format!("klpctl.skip={long} klpctl.skip=a")).off);
        assert!(sw("klpctl.skip").off);
    }

    #[test]
    fn malformed_notes_yield_none() {
        assert_eq!(build_id_from_notes(b""), None);
        let mut n = note(b"GNU\0", 3, &[7; 20]);
        n.truncate(n.len() - 1);
        assert_eq!(build_id_from_notes(&n), None);
        let mut huge = note(b"GNU\0", 3, &[7; 20]);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(build_id_from_notes(&huge), None);
    }

    fn running(release: &str, machine: &str) -> Running {
        let mut r = Running {
            release: heapless::String::new(),
            machine: heapless::String::new(),
            build_id: heapless::Vec::new(),
        };
        r.release.push_str(release).unwrap();
        r.machine.push_str(machine).unwrap();
        r
    }

    fn manifest<'a>(release: &'a str, arch: &'a str) -> Manifest<'a> {
        Manifest {
            name: "klp_test",
            stream: "s",
            version: 1,
            release,
            build_id: heapless::Vec::new(),
            arch,
            replace: false,
            cves: heapless::Vec::new(),
            products: heapless::Vec::new(),
            description: "",
            created: 0,
            payload_size: 1,
            payload_sha256: [0; 32],
        }
    }

    /// A bundle for the other architecture of the same release is refused
    /// with exit 4, and the message names both, either way round.
    #[test]
    fn another_architecture_is_another_kernel() {
        const R: &str = "7.3.4-klp";
        for (bundle, machine) in [("x86_64", "aarch64"), ("aarch64", "x86_64")] {
            let Err(f) = running(R, machine).check(&manifest(R, bundle)) else {
                panic!("a bundle for {bundle} on {machine} must be refused");
            };
            assert_eq!(f.error.exit_code(), 4, "{bundle} on {machine}");
            let detail = core::str::from_utf8(f.detail.bytes()).unwrap();
            assert_eq!(
                detail,
                format!("bundle is for {bundle}, running {machine}"),
                "{bundle} on {machine}"
            );
            assert!(running(R, machine).check(&manifest(R, machine)).is_ok());
        }
    }
}
