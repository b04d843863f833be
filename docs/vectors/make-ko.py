#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Write a synthetic kernel module: the smallest ELF64 little-endian
relocatable that `klpctl pack` accepts. It is not loadable; it only has what
klpctl reads (ELF header, section headers, a section-name table and a
`.modinfo` section), plus optional filler so payloads of any size can be made.

usage: make-ko.py OUT [--name N] [--vermagic V] [--no-livepatch]
                      [--machine 62] [--pad BYTES] [--random]

  --pad BYTES   add a PROGBITS section `.klp_pad` of BYTES bytes (zeros, or
                random bytes with --random) before the section headers
  --random      fill the padding from os.urandom instead of zeros

Layout: ELF header (64) | .shstrtab | .modinfo | [.klp_pad] | section
headers (null, .shstrtab, .modinfo[, .klp_pad]), 8-byte aligned.
"""
import argparse
import os
import struct
import sys


def section_header(name, sh_type, offset, size, align=1):
    # Elf64_Shdr: name, type, flags, addr, offset, size, link, info,
    # addralign, entsize.
    return struct.pack("<IIQQQQIIQQ", name, sh_type, 0, 0, offset, size, 0, 0, align, 0)


def main():
    ap = argparse.ArgumentParser(description="synthetic .ko for klpctl tests")
    ap.add_argument("out")
    ap.add_argument("--name", default="klp_vector")
    ap.add_argument("--vermagic", default="6.1.0-41-amd64 SMP preempt mod_unload modversions ")
    ap.add_argument("--no-livepatch", action="store_true")
    ap.add_argument("--machine", type=int, default=62)
    ap.add_argument("--pad", type=int, default=0)
    ap.add_argument("--random", action="store_true")
    a = ap.parse_args()

    modinfo = b"license=GPL\0"
    if not a.no_livepatch:
        modinfo += b"livepatch=Y\0"
    modinfo += b"name=" + a.name.encode() + b"\0vermagic=" + a.vermagic.encode() + b"\0"
    shstr = b"\0.shstrtab\0.modinfo\0.klp_pad\0"
    NAME_SHSTRTAB, NAME_MODINFO, NAME_PAD = 1, 11, 20

    def align8(n):
        return (n + 7) & ~7

    str_off = 64
    mi_off = str_off + len(shstr)
    pad_off = align8(mi_off + len(modinfo))
    shoff = align8(pad_off + a.pad)
    shnum = 4 if a.pad else 3

    ehdr = bytearray(64)
    ehdr[0:4] = b"\x7fELF"
    ehdr[4] = 2  # ELFCLASS64
    ehdr[5] = 1  # ELFDATA2LSB
    ehdr[6] = 1  # EV_CURRENT
    struct.pack_into("<HHI", ehdr, 16, 1, a.machine, 1)  # ET_REL, machine, version
    struct.pack_into("<Q", ehdr, 0x28, shoff)
    struct.pack_into("<HHHHHH", ehdr, 0x34, 64, 0, 0, 64, shnum, 1)

    with open(a.out, "wb") as f:
        f.write(ehdr)
        f.write(shstr)
        f.write(modinfo)
        f.write(b"\0" * (pad_off - (mi_off + len(modinfo))))
        left = a.pad
        zeros = b"\0" * (1 << 20)
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n) if a.random else zeros[:n])
            left -= n
        f.write(b"\0" * (shoff - (pad_off + a.pad)))
        f.write(section_header(0, 0, 0, 0))
        f.write(section_header(NAME_SHSTRTAB, 3, str_off, len(shstr)))
        f.write(section_header(NAME_MODINFO, 1, mi_off, len(modinfo)))
        if a.pad:
            f.write(section_header(NAME_PAD, 1, pad_off, a.pad, 8))
    return 0


if __name__ == "__main__":
    sys.exit(main())
