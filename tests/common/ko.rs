// The fake kernel module builder: the smallest ELF64 little-endian
// relocatable that `klpctl pack` accepts. It is not loadable; it has only
// what klpctl reads (the ELF header, a section-name table, a `.modinfo`
// section and the section headers), plus optional padding so payloads of
// any size can be made.
//
// One builder serves the library's unit tests (`src/modinfo.rs` includes
// this file with `include!`), the host integration tests, and the format
// vectors (`docs/vectors/module.ko` is `vector_ko()`, checked byte for byte
// by `tests/cli/vectors.rs`). So it uses only std, never the crate, and
// has plain comments rather than `//!`: `include!` takes no inner attributes.
//
// Layout: ELF header (64) | `.shstrtab` | `.modinfo` | [`.klp_pad`] |
// section headers (null, `.shstrtab`, `.modinfo`[, `.klp_pad`]), each part
// after `.modinfo` 8-byte aligned.

use std::io::{self, Read, Write};

/// Section names. `.klp_pad` is named even when there is no padding
/// section, as the format vectors were first written.
const SHSTRTAB: &[u8] = b"\0.shstrtab\0.modinfo\0.klp_pad\0";
/// Offsets of the names in [`SHSTRTAB`].
const NAME_SHSTRTAB: u32 = 1;
const NAME_MODINFO: u32 = 11;
const NAME_PAD: u32 = 20;
/// Section types.
const SHT_PROGBITS: u32 = 1;
const SHT_STRTAB: u32 = 3;

/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;
/// The module name of the format vector module.
pub const VECTOR_NAME: &str = "klp_vector";
/// The vermagic of the format vector module.
pub const VECTOR_VERMAGIC: &str = "6.1.0-41-amd64 SMP preempt mod_unload modversions ";

/// `.modinfo` as the kernel build writes it for a module: `license=GPL`,
/// `livepatch=Y` for a livepatch, `name=` and `vermagic=`, each ended by NUL.
pub fn modinfo(name: &str, vermagic: &str, livepatch: bool) -> Vec<u8> {
    let mut m = b"license=GPL\0".to_vec();
    if livepatch {
        m.extend_from_slice(b"livepatch=Y\0");
    }
    m.extend_from_slice(format!("name={name}\0vermagic={vermagic}\0").as_bytes());
    m
}

/// A module holding `modinfo` for ELF machine `machine`, without padding.
pub fn fake_ko(modinfo: &[u8], machine: u16) -> Vec<u8> {
    let mut f = Vec::new();
    write_ko(&mut f, modinfo, machine, 0, &mut io::empty()).expect("writing to a Vec");
    f
}

/// `docs/vectors/module.ko`: the livepatch [`VECTOR_NAME`] for x86-64 with
/// [`VECTOR_VERMAGIC`].
pub fn vector_ko() -> Vec<u8> {
    fake_ko(&modinfo(VECTOR_NAME, VECTOR_VERMAGIC, true), EM_X86_64)
}

/// Writes a module holding `modinfo` for ELF machine `machine` to `out`.
/// With `pad` > 0 it also has a section `.klp_pad` of `pad` bytes read from
/// `fill`, streamed, so payloads of any size need no memory.
pub fn write_ko(
    out: &mut dyn Write,
    modinfo: &[u8],
    machine: u16,
    pad: u64,
    fill: &mut dyn Read,
) -> io::Result<()> {
    let align8 = |n: u64| n.next_multiple_of(8);
    let strtab_off = 64u64;
    let modinfo_off = strtab_off + SHSTRTAB.len() as u64;
    let modinfo_end = modinfo_off + modinfo.len() as u64;
    let pad_off = align8(modinfo_end);
    let shoff = align8(pad_off + pad);
    // (name, type, file offset, size, alignment)
    let mut sections: Vec<(u32, u32, u64, u64, u64)> = vec![
        (0, 0, 0, 0, 1),
        (
            NAME_SHSTRTAB,
            SHT_STRTAB,
            strtab_off,
            SHSTRTAB.len() as u64,
            1,
        ),
        (
            NAME_MODINFO,
            SHT_PROGBITS,
            modinfo_off,
            modinfo.len() as u64,
            1,
        ),
    ];
    if pad > 0 {
        sections.push((NAME_PAD, SHT_PROGBITS, pad_off, pad, 8));
    }

    let mut h = [0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // ELFCLASS64
    h[5] = 1; // ELFDATA2LSB
    h[6] = 1; // EV_CURRENT
    h[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes()); // e_version
    h[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    h[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    h[0x3c..0x3e].copy_from_slice(&(sections.len() as u16).to_le_bytes());
    h[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes()); // e_shstrndx
    out.write_all(&h)?;
    out.write_all(SHSTRTAB)?;
    out.write_all(modinfo)?;
    out.write_all(&vec![0; (pad_off - modinfo_end) as usize])?;
    let copied = io::copy(&mut Read::take(&mut *fill, pad), out)?;
    if copied != pad {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "padding source ended early",
        ));
    }
    out.write_all(&vec![0; (shoff - pad_off - pad) as usize])?;
    for (name, ty, off, size, align) in sections {
        let mut sh = [0u8; 64];
        sh[..4].copy_from_slice(&name.to_le_bytes());
        sh[4..8].copy_from_slice(&ty.to_le_bytes());
        sh[24..32].copy_from_slice(&off.to_le_bytes());
        sh[32..40].copy_from_slice(&size.to_le_bytes());
        sh[48..56].copy_from_slice(&align.to_le_bytes()); // sh_addralign
        out.write_all(&sh)?;
    }
    Ok(())
}
