//! The kernel: facts about the running one (release and machine from
//! uname, the GNU build-id from `/sys/kernel/notes`, lockdown mode, taint
//! flags), and the mechanism klpctl drives it with: [`sysfs`] (what the
//! kernel shows of patches and modules), [`loader`] (loading and removing
//! modules) and [`transition`] (waiting, and who blocks).
#![forbid(unsafe_code)]

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
            msg!("cannot read /sys/kernel/notes"),
        ) && let Some(id) = build_id_from_notes(notes)
        {
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
        if m.release != self.release.as_str() {
            return Err(
                Error::WrongKernel(msg!("not for this kernel: release differs")).with(&[
                    b"bundle is for ",
                    m.release.as_bytes(),
                    b", running ",
                    self.release.as_bytes(),
                ]),
            );
        }
        if m.arch != self.machine.as_str() {
            return Err(
                Error::WrongKernel(msg!("not for this kernel: architecture differs")).with(&[
                    b"bundle is for ",
                    m.arch.as_bytes(),
                    b", running ",
                    self.machine.as_bytes(),
                ]),
            );
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
            return Err(Error::WrongKernel(msg!(
                "not for this kernel: build-id differs (another build of this release)"
            ))
            .with(&[b"bundle build-id ", ha, b", running ", hb]));
        }
        Ok(())
    }
}

/// klpctl's switches on the kernel command line, for boot-time
/// `apply --dir`: `klpctl.enable=0` applies nothing, `klpctl.skip=A,B`
/// skips the patches named.
pub struct Switches {
    /// `klpctl.enable=0` is set.
    pub off: bool,
    /// The value of the last `klpctl.skip=`, comma-separated names.
    pub skip: heapless::Vec<u8, 256>,
}

impl Switches {
    /// Reads `/proc/cmdline` (no switches when it cannot be read).
    pub fn read() -> Switches {
        let mut s = Switches {
            off: false,
            skip: heapless::Vec::new(),
        };
        let mut buf = [0u8; 4096];
        let line =
            crate::files::read_small(c"/proc/cmdline", &mut buf, msg!("cmdline")).unwrap_or(b"");
        for w in line.split(|c| c.is_ascii_whitespace()) {
            if let Some(v) = w.strip_prefix(b"klpctl.enable=") {
                s.off = v == b"0";
            } else if let Some(v) = w.strip_prefix(b"klpctl.skip=") {
                s.skip.clear();
                let _ = s.skip.extend_from_slice(&v[..v.len().min(256)]);
            }
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
        crate::files::read_small(c"/sys/kernel/security/lockdown", buf, msg!("lockdown")).ok()?;
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
        msg!("cannot read /proc/sys/kernel/tainted"),
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
            let f = running(R, machine)
                .check(&manifest(R, bundle))
                .expect_err("a bundle for another architecture must be refused");
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
