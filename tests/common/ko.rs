//! A fake kernel module builder.

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
