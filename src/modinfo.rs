//! Reads a kernel module's `.modinfo` section: NUL-separated `key=value`
//! strings such as `name=`, `vermagic=` and `livepatch=Y`, plus the ELF
//! machine. Only the section headers and the section itself are read, each
//! bounded, so a huge or hostile file costs little.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crate::files::Source;

/// Largest `.modinfo` section accepted.
pub const MAX_MODINFO: usize = 64 * 1024;
/// Most section headers examined.
pub const MAX_SECTIONS: u16 = 4096;

const NOT_ELF: Error = Error::Module(msg!(
    "not a 64-bit little-endian ELF relocatable file (.ko)"
));
const NO_MODINFO: Error = Error::Module(msg!("module has no usable .modinfo section"));

/// What `pack` needs to know about a module.
#[derive(Debug, PartialEq, Eq)]
pub struct Modinfo<'a> {
    /// `name=`: the module name.
    pub name: &'a str,
    /// First word of `vermagic=`: the kernel release it was built for.
    pub release: &'a str,
    /// `livepatch=Y` present.
    pub livepatch: bool,
    /// Architecture from the ELF header, as `uname -m` spells it.
    pub arch: &'static str,
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64le(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// The 64-bit little-endian machines, as `uname -m` names them. (s390x is
/// big-endian: a little-endian module claiming it is no module at all.)
fn arch_of(machine: u16) -> Option<&'static str> {
    Some(match machine {
        62 => "x86_64",
        183 => "aarch64",
        21 => "ppc64le",
        243 => "riscv64",
        _ => return None,
    })
}

/// Finds `.modinfo` in the ELF file `src` and copies it into `buf`.
/// Returns the section bytes and the architecture.
pub fn read_section<'b, S: Source>(
    src: &S,
    buf: &'b mut [u8; MAX_MODINFO],
) -> Result<(&'b [u8], &'static str)> {
    let mut eh = [0u8; 64];
    src.read_at(0, &mut eh).map_err(|_| NOT_ELF)?;
    // ELFCLASS64, ELFDATA2LSB, ET_REL.
    if eh[..4] != *b"\x7fELF" || eh[4] != 2 || eh[5] != 1 || u16le(&eh, 16) != 1 {
        return Err(NOT_ELF);
    }
    let arch = arch_of(u16le(&eh, 18))
        .ok_or(Error::Module(msg!("module is for an unknown machine type")))?;
    let shoff = u64le(&eh, 0x28);
    let shentsize = u16le(&eh, 0x3a);
    let shnum = u16le(&eh, 0x3c);
    let shstrndx = u16le(&eh, 0x3e);
    if shentsize != 64 || shnum == 0 || shnum > MAX_SECTIONS || shstrndx >= shnum {
        return Err(NOT_ELF);
    }
    let section = |i: u16| -> Result<[u8; 64]> {
        let mut sh = [0u8; 64];
        let off = shoff.checked_add(i as u64 * 64).ok_or(NOT_ELF)?;
        src.read_at(off, &mut sh).map_err(|_| NOT_ELF)?;
        Ok(sh)
    };
    let strtab = section(shstrndx)?;
    let (str_off, str_size) = (u64le(&strtab, 24), u64le(&strtab, 32));
    // Read the section the kernel reads: it never looks at section 0, and
    // since 6.12 it refuses a module with two `.modinfo` sections (6.1 takes
    // the first one with SHF_ALLOC). So skip section 0 and refuse a second
    // one rather than check one `.modinfo` while the kernel loads another.
    let (mut found, mut this_module) = (None, None);
    for i in 1..shnum {
        let sh = section(i)?;
        // The name, or as much of it as the two compared below need.
        let name_off = u32le(&sh, 0) as u64;
        let mut name = [0u8; 26];
        let n = str_size.saturating_sub(name_off).min(26) as usize;
        let at = str_off.checked_add(name_off).ok_or(NOT_ELF)?;
        src.read_at(at, &mut name[..n]).map_err(|_| NOT_ELF)?;
        // A second one of either: the kernel refuses it since 6.12, 6.1
        // takes the first; never check one while the kernel takes another.
        let twice = if name == *b".gnu.linkonce.this_module\0" {
            this_module.replace(sh).is_some()
        } else {
            name.starts_with(b".modinfo\0") && found.replace(sh).is_some()
        };
        if twice {
            return Err(Error::Module(msg!(
                "module has a second .modinfo or struct module section"
            )));
        }
    }
    let sh = found.ok_or(NO_MODINFO)?;
    // SHT_NOBITS would have no file bytes.
    if u32le(&sh, 4) == 8 {
        return Err(NO_MODINFO);
    }
    let (off, size) = (u64le(&sh, 24), u64le(&sh, 32));
    if size == 0 || size > MAX_MODINFO as u64 {
        return Err(NO_MODINFO);
    }
    let out = &mut buf[..size as usize];
    src.read_at(off, out).map_err(|_| NO_MODINFO)?;
    // The kernel names the module, and its livepatch, after the name in
    // its struct module (64-bit: after a 4-byte state, padding and a
    // 16-byte list head), not after name=: the two must agree.
    if let Some(tm) = this_module {
        let mut name = [0u8; 56];
        let at = u64le(&tm, 24).checked_add(24).ok_or(NOT_ELF)?;
        src.read_at(at, &mut name).map_err(|_| NOT_ELF)?;
        let len = name.iter().position(|&c| c == 0).unwrap_or(56);
        if get(out, "name").map(str::as_bytes) != Some(&name[..len]) {
            return Err(Error::Module(msg!(
                "module name= differs from the name in its struct module"
            )));
        }
    }
    Ok((out, arch))
}

/// Looks up `key` in `.modinfo` contents. The first occurrence wins; a
/// value that is not UTF-8 is treated as absent.
pub fn get<'a>(section: &'a [u8], key: &str) -> Option<&'a str> {
    section.split(|&c| c == 0).find_map(|entry| {
        let rest = entry.strip_prefix(key.as_bytes())?.strip_prefix(b"=")?;
        core::str::from_utf8(rest).ok()
    })
}

/// Parses a module: `.modinfo` must carry `name=` and `vermagic=`.
pub fn parse<'b, S: Source>(src: &S, buf: &'b mut [u8; MAX_MODINFO]) -> Result<Modinfo<'b>> {
    let (section, arch) = read_section(src, buf)?;
    let name = get(section, "name").ok_or(Error::Module(msg!(
        "module .modinfo has no name= (built by an old kernel?)"
    )))?;
    let vermagic =
        get(section, "vermagic").ok_or(Error::Module(msg!("module .modinfo has no vermagic=")))?;
    let release = vermagic.split(' ').next().unwrap_or("");
    if !crate::trust::manifest::valid_name(name) {
        return Err(Error::Module(msg!(
            "module name= is not a valid livepatch name ([A-Za-z0-9_], 1-55)"
        )));
    }
    if !crate::trust::manifest::valid_release(release) {
        return Err(Error::Module(msg!(
            "module vermagic= does not start with a valid kernel release"
        )));
    }
    let livepatch = get(section, "livepatch") == Some("Y");
    Ok(Modinfo {
        name,
        release,
        livepatch,
        arch,
    })
}

/// Unit tests, and the fake module builder other tests share.
#[cfg(test)]
pub mod tests {
    use super::*;

    /// The fake module builder that the integration tests and the format
    /// vectors use too (std only). `include!`, because a `#[path]` here
    /// would be relative to the directory `src/modinfo/tests/`.
    mod ko {
        include!("../tests/common/ko.rs");
    }
    pub use ko::fake_ko;

    const INFO: &[u8] =
        b"license=GPL\0livepatch=Y\0\0name=klp_basic\0vermagic=6.1.0-41-amd64 SMP preempt mod_unload modversions \0";

    fn parse_vec(v: &[u8]) -> Result<(String, String, bool, &'static str)> {
        let s: &[u8] = v;
        let mut buf = [0u8; MAX_MODINFO];
        let m = parse(&s, &mut buf)?;
        Ok((
            m.name.to_string(),
            m.release.to_string(),
            m.livepatch,
            m.arch,
        ))
    }

    #[test]
    fn reads_name_vermagic_livepatch() {
        let (name, rel, lp, arch) = parse_vec(&fake_ko(INFO, 62)).unwrap();
        assert_eq!(
            (name.as_str(), rel.as_str(), lp, arch),
            ("klp_basic", "6.1.0-41-amd64", true, "x86_64")
        );
    }

    #[test]
    fn plain_module_is_not_livepatch() {
        let info = b"name=plain\0vermagic=6.1.0-41-amd64 SMP \0";
        assert!(!parse_vec(&fake_ko(info, 62)).unwrap().2);
        // "livepatch=N" or a prefix match must not count.
        let info = b"name=plain\0livepatch=N\0livepatchx=Y\0vermagic=6.1 \0";
        assert!(!parse_vec(&fake_ko(info, 62)).unwrap().2);
    }

    #[test]
    fn rejects_non_elf_and_missing_fields() {
        assert_eq!(parse_vec(b"not an elf").unwrap_err(), NOT_ELF);
        assert!(parse_vec(&fake_ko(b"vermagic=6.1 \0", 62)).is_err());
        assert!(parse_vec(&fake_ko(b"name=x\0", 62)).is_err());
        assert!(parse_vec(&fake_ko(b"name=bad-name\0vermagic=6.1 \0", 62)).is_err());
        assert!(parse_vec(&fake_ko(INFO, 9999)).is_err());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let ko = fake_ko(INFO, 62);
        for n in 0..ko.len() - 1 {
            let _ = parse_vec(&ko[..n]);
        }
        let mut h = ko.clone();
        h[0x2f] = 0x7f; // section headers far past the end of the file
        assert_eq!(parse_vec(&h).unwrap_err(), NOT_ELF);
        let mut h = ko.clone();
        h[0x3e] = 9; // name table index out of range
        assert_eq!(parse_vec(&h).unwrap_err(), NOT_ELF);
    }

    /// The machine is read for the byte order the header declares (little
    /// endian, the only one accepted): each machine klpctl knows, and no
    /// machine that exists only big-endian (s390x, 22) or as 32-bit ARM (40).
    #[test]
    fn the_machine_names_only_little_endian_64_bit_kernels() {
        for (machine, arch) in [
            (62, Some("x86_64")),
            (183, Some("aarch64")),
            (21, Some("ppc64le")),
            (243, Some("riscv64")),
            (22, None),
            (40, None),
            (3, None),
        ] {
            assert_eq!(
                parse_vec(&fake_ko(INFO, machine)).ok().map(|m| m.3),
                arch,
                "e_machine {machine}"
            );
        }
        // aarch64_be: a big-endian header is not read at all.
        let mut be = fake_ko(INFO, 183u16.swap_bytes());
        be[5] = 2;
        assert_eq!(parse_vec(&be).unwrap_err(), NOT_ELF);
    }

    #[test]
    fn reads_the_format_vector_module() {
        let (name, rel, lp, arch) = parse_vec(&ko::vector_ko()).unwrap();
        assert_eq!(
            (name.as_str(), rel.as_str(), lp, arch),
            ("klp_vector", "6.1.0-41-amd64", true, "x86_64")
        );
    }

    /// `ko` with the header of its `.modinfo` (section 2) copied to
    /// section `at` (0, or a new last one), pointing at `info` appended to
    /// the file. The section header table is the end of a fake module.
    fn with_second_modinfo(ko: &[u8], at: u16, info: &[u8]) -> Vec<u8> {
        let (shoff, shnum) = (u64le(ko, 0x28) as usize, u16le(ko, 0x3c));
        assert_eq!(shoff + 64 * shnum as usize, ko.len());
        let mut v = ko.to_vec();
        let mut sh = v[shoff + 128..shoff + 192].to_vec();
        let new = if at == 0 { 0 } else { shnum };
        let info_off = v.len() + if at == 0 { 0 } else { 64 };
        sh[8..16].copy_from_slice(&2u64.to_le_bytes()); // SHF_ALLOC
        sh[24..32].copy_from_slice(&(info_off as u64).to_le_bytes());
        sh[32..40].copy_from_slice(&(info.len() as u64).to_le_bytes());
        if at == 0 {
            v[shoff..shoff + 64].copy_from_slice(&sh);
        } else {
            v.extend_from_slice(&sh);
            v[0x3c..0x3e].copy_from_slice(&(shnum + 1).to_le_bytes());
        }
        assert_eq!(new == 0, at == 0);
        v.extend_from_slice(info);
        v
    }

    #[test]
    fn reads_the_modinfo_the_kernel_reads() {
        let evil = b"livepatch=Y\0name=klp_other\0vermagic=6.1.0-99-amd64 \0";
        let ko = fake_ko(INFO, 62);
        // Two .modinfo sections: a 6.1 kernel reads the first with
        // SHF_ALLOC, a 6.12 one refuses the module; klpctl must not check
        // one while the kernel loads the other.
        assert_eq!(
            parse_vec(&with_second_modinfo(&ko, 3, evil)).unwrap_err(),
            Error::Module(msg!(
                "module has a second .modinfo or struct module section"
            ))
        );
        // Section 0 is never a section to the kernel.
        assert_eq!(
            parse_vec(&with_second_modinfo(&ko, 0, evil)).unwrap(),
            parse_vec(&ko).unwrap()
        );
    }

    /// A module of `.modinfo` `info` and one `.gnu.linkonce.this_module`
    /// per entry of `names`, each a struct module named so.
    fn with_struct_module(info: &[u8], names: &[&str]) -> Vec<u8> {
        let strtab = b"\0.shstrtab\0.modinfo\0.gnu.linkonce.this_module\0";
        let mut v = fake_ko(info, 62)[..64].to_vec();
        let (str_off, info_off) = (v.len(), v.len() + strtab.len());
        v.extend_from_slice(strtab);
        v.extend_from_slice(info);
        let mut sections = vec![(0u32, 0u32, 0usize, 0usize), (1, 3, str_off, strtab.len())];
        sections.push((11, 1, info_off, info.len()));
        for name in names {
            let mut m = [0u8; 80];
            m[24..24 + name.len()].copy_from_slice(name.as_bytes());
            sections.push((20, 1, v.len(), m.len()));
            v.extend_from_slice(&m);
        }
        let shoff = v.len() as u64;
        for (name, ty, off, size) in &sections {
            let mut sh = [0u8; 64];
            sh[..4].copy_from_slice(&name.to_le_bytes());
            sh[4..8].copy_from_slice(&ty.to_le_bytes());
            sh[24..32].copy_from_slice(&(*off as u64).to_le_bytes());
            sh[32..40].copy_from_slice(&(*size as u64).to_le_bytes());
            v.extend_from_slice(&sh);
        }
        v[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        v[0x3c..0x3e].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        v[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        v
    }

    #[test]
    fn name_is_the_name_in_the_struct_module() {
        // The kernel names a module (and its livepatch) after its struct
        // module; a name= that says otherwise is refused.
        let ok = with_struct_module(INFO, &["klp_basic"]);
        assert_eq!(parse_vec(&ok).unwrap().0, "klp_basic");
        assert_eq!(
            parse_vec(&with_struct_module(INFO, &["klp_other"])).unwrap_err(),
            Error::Module(msg!(
                "module name= differs from the name in its struct module"
            ))
        );
        assert!(parse_vec(&with_struct_module(INFO, &["klp_basic_"])).is_err());
        assert!(parse_vec(&with_struct_module(INFO, &["klp_basi"])).is_err());
        assert_eq!(
            parse_vec(&with_struct_module(INFO, &["klp_basic", "klp_basic"])).unwrap_err(),
            Error::Module(msg!(
                "module has a second .modinfo or struct module section"
            ))
        );
    }

    #[test]
    fn a_padding_section_changes_nothing() {
        let info = ko::modinfo("klp_pad", "6.1.0-41-amd64 SMP ", true);
        let mut padded = Vec::new();
        ko::write_ko(&mut padded, &info, 62, 1000, &mut std::io::repeat(0xa5)).unwrap();
        assert_eq!(
            parse_vec(&padded).unwrap(),
            parse_vec(&fake_ko(&info, 62)).unwrap()
        );
        // Without livepatch=Y it is a plain module.
        let plain = ko::modinfo("plain", "6.1.0-41-amd64 SMP ", false);
        assert!(!parse_vec(&fake_ko(&plain, 62)).unwrap().2);
    }
}
