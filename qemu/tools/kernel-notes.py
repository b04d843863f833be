#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Print the bytes the kernel exposes as /sys/kernel/notes, read from a bzImage.

/sys/kernel/notes is the kernel's .notes section verbatim (a run of ELF notes).
A bzImage carries vmlinux compressed; the x86 boot header tells us where:
setup_sects at 0x1f1, payload_offset/payload_length at 0x248/0x24c (boot
protocol 2.08+), relative to the start of the protected-mode code.

usage: kernel-notes.py VMLINUZ NOTES_OUT BUILD_ID_OUT
"""
import bz2
import gzip
import lzma
import struct
import subprocess
import sys


def payload(image: bytes) -> bytes:
    if image[0x202:0x206] != b"HdrS":
        sys.exit("not a bzImage: no HdrS signature")
    version = struct.unpack_from("<H", image, 0x206)[0]
    if version < 0x208:
        sys.exit(f"boot protocol {version:#x} predates payload_offset")
    setup_sects = image[0x1F1] or 4
    start = (setup_sects + 1) * 512
    off, length = struct.unpack_from("<II", image, 0x248)
    return image[start + off : start + off + length]


def decompress(data: bytes) -> bytes:
    # The kernel build appends the uncompressed size (4 bytes) to most
    # payloads, so every decoder here must tolerate trailing bytes.
    if data.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)
    if data.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=__import__("io").BytesIO(data)).read1(1 << 31)
    if data.startswith(b"\x5d\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(data)
    if data.startswith(b"BZh"):
        return bz2.BZ2Decompressor().decompress(data)
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        # Decode only the first frame; zstd(1) stops at the size trailer with
        # an error but has already written the whole frame to stdout.
        out = subprocess.run(["zstd", "-d", "-c", "-q"], input=data,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return out.stdout
    sys.exit(f"unknown payload compression, magic {data[:6].hex()}")


def notes_section(elf: bytes) -> bytes:
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        sys.exit("payload is not a little-endian ELF64 vmlinux")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def shdr(i):
        # name, type, flags, addr, offset, size
        return struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize)

    strtab = shdr(shstrndx)
    for i in range(shnum):
        name_off, _, _, _, off, size = shdr(i)
        start = strtab[4] + name_off
        name = elf[start : elf.index(b"\x00", start)]
        if name == b".notes":
            return elf[off : off + size]
    sys.exit("vmlinux has no .notes section")


def gnu_build_id(notes: bytes) -> bytes:
    pos = 0
    align = lambda n: (n + 3) & ~3
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
        name = notes[pos + 12 : pos + 12 + namesz]
        desc_at = pos + 12 + align(namesz)
        if name == b"GNU\x00" and ntype == 3:
            return notes[desc_at : desc_at + descsz]
        pos = desc_at + align(descsz)
    sys.exit("no GNU build-id note in .notes")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as f:
        image = f.read()
    notes = notes_section(decompress(payload(image)))
    build_id = gnu_build_id(notes)
    with open(sys.argv[2], "wb") as f:
        f.write(notes)
    with open(sys.argv[3], "w") as f:
        f.write(build_id.hex() + "\n")


if __name__ == "__main__":
    main()
