#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Regenerate the hand-crafted malformed inputs in fuzz/regressions/.

Every bundle here must be rejected: `klpctl verify FILE` exits 3 whatever
keyring is used. Bundles that are meant to reach the manifest or payload
checks are signed with the TEST ONLY key docs/vectors/test.sec, so replaying
with `--keyring docs/vectors/keys` exercises those checks rather than
stopping at "not enough signatures". Every module here must make
`klpctl pack` exit 2.

Signing uses OpenBSD signify (`signify-openbsd`, Debian package
signify-openbsd): klpctl signatures are plain Ed25519 over the manifest
bytes, so signify signs arbitrary (even malformed) manifests for us.
Ed25519 is deterministic, so rerunning reproduces the same files.

usage: fuzz/make-regressions.py      (rewrites fuzz/regressions/{bundle,modinfo}/hand-*)
"""
import hashlib
import os
import base64
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SEC = os.path.join(REPO, "docs", "vectors", "test.sec")
SIGNIFY = os.environ.get("SIGNIFY", "signify-openbsd")
L = 2**252 + 27742317777372353535851937790883648493  # Ed25519 group order


def header(nsig, mlen, plen, magic=b"KLPBNDL\0", fmt=1):
    return magic + struct.pack("<HHIQ", fmt, nsig, mlen, plen)


def bundle(manifest, sigs, payload):
    return header(len(sigs), len(manifest), len(payload)) + manifest + b"".join(sigs) + payload


def sign(msg):
    """A 72-byte signature record (key id, Ed25519 signature) by SEC."""
    with tempfile.TemporaryDirectory() as d:
        m, x = os.path.join(d, "m"), os.path.join(d, "m.sig")
        with open(m, "wb") as f:
            f.write(msg)
        subprocess.run([SIGNIFY, "-S", "-s", SEC, "-m", m, "-x", x], check=True)
        raw = base64.b64decode(open(x, "rb").read().split(b"\n")[1])
    assert raw[:2] == b"Ed" and len(raw) == 74
    return raw[2:]


PAYLOAD = b"\x7fELF regression payload, not a real module\n"
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def manifest(**over):
    """Canonical manifest JSON text for PAYLOAD, with fields overridden
    (value None drops the field; values are raw JSON text)."""
    fields = [
        ("format", "1"),
        ("name", '"klp_regress"'),
        ("stream", '"regress"'),
        ("version", "1"),
        ("release", '"6.1.0-41-amd64"'),
        ("arch", '"x86_64"'),
        ("replace", "false"),
        ("cves", "[]"),
        ("description", '""'),
        ("created", "1764300000"),
        ("payload_size", str(len(PAYLOAD))),
        ("payload_sha256", '"%s"' % DIGEST),
    ]
    out = []
    for k, v in fields:
        v = over.pop(k, v)
        if v is not None:
            out.append('"%s":%s' % (k, v))
    assert not over, over
    return "{" + ",".join(out) + "}"


def signed(m, payload=PAYLOAD):
    m = m.encode() if isinstance(m, str) else m
    return bundle(m, [sign(m)], payload)


def bundles():
    good_m = manifest().encode()
    good = signed(good_m)
    hdr_end = 24 + len(good_m)
    yield "empty", b""
    yield "truncated-header", good[:10]
    yield "header-only", good[:24]
    yield "bad-magic", b"KLPBNDX\0" + good[8:]
    yield "format-version-2", good[:8] + struct.pack("<H", 2) + good[10:]
    yield "five-signatures", header(5, len(good_m), len(PAYLOAD)) + good[24:]
    yield "sig-count-65535", header(0xFFFF, len(good_m), len(PAYLOAD)) + good[24:]
    yield "manifest-len-0", header(1, 0, len(PAYLOAD)) + good[24:]
    yield "manifest-len-1", header(1, 1, len(PAYLOAD)) + good[24:]
    yield "manifest-len-16385", header(1, 16385, len(PAYLOAD)) + good[24:]
    yield "manifest-len-4g", header(1, 0xFFFFFFFF, len(PAYLOAD)) + good[24:]
    yield "payload-len-0", header(1, len(good_m), 0) + good[24:]
    yield "payload-len-1g-plus-1", header(1, len(good_m), 2**30 + 1) + good[24:]
    yield "payload-len-u64-max", header(1, len(good_m), 2**64 - 1) + good[24:]
    yield "truncated-payload", good[:-1]
    yield "truncated-in-signature", good[: hdr_end + 40]
    yield "trailing-byte", good + b"\0"
    yield "unsigned", bundle(good_m, [], PAYLOAD)
    bad = bytearray(good)
    bad[hdr_end + 8 + 20] ^= 1
    yield "bad-signature", bytes(bad)
    # The same signature with S + L: equal modulo L, so lax verifiers accept
    # it; strict Ed25519 must not.
    rec = sign(good_m)
    s = int.from_bytes(rec[40:], "little") + L
    yield "non-canonical-s", bundle(good_m, [rec[:40] + s.to_bytes(32, "little")], PAYLOAD)
    tampered = bytearray(good)
    tampered[-1] ^= 1
    yield "payload-digest-mismatch", bytes(tampered)
    yield "header-payload-len-differs", signed(manifest(payload_size=str(len(PAYLOAD) + 1)))
    # Manifest parser: signed by the test key, so only the parser rejects.
    yield "deep-json-array", signed(manifest(cves="[" * 15000 + "]" * 1))
    yield "deep-json-unknown-field", signed(
        manifest()[:-1] + ',"x":' + '{"a":' * 2500 + "1" + "}" * 2500 + "}"
    )
    yield "duplicate-key", signed(manifest()[:-1] + ',"name":"other"}')
    yield "duplicate-key-same-value", signed(manifest()[:-1] + ',"version":1}')
    yield "unknown-field", signed(manifest()[:-1] + ',"extra":1}')
    yield "missing-field", signed(manifest(arch=None))
    yield "whitespace-after-colon", signed(manifest(release=' "6.1.0-41-amd64"'))
    yield "whitespace-around-object", signed(" " + manifest() + "\n")
    yield "fields-reordered", signed('{"name":"klp_regress",' + manifest(name=None)[1:])
    yield "build-id-null", signed(manifest(release='"6.1.0-41-amd64","build_id":null'))
    yield "build-id-uppercase", signed(manifest(release='"6.1.0-41-amd64","build_id":"AABB"'))
    yield "escape-in-name", signed(manifest(name='"klp_regres\\u0073"'))
    yield "control-in-description", signed(manifest(description='"a\\nb"'))
    yield "leading-zero-number", signed(manifest(version="01"))
    yield "negative-number", signed(manifest(version="-1"))
    yield "number-too-big", signed(manifest(version="18446744073709551616"))
    yield "sixty-five-cves", signed(manifest(cves="[" + ",".join('"C%d"' % i for i in range(65)) + "]"))
    yield "name-with-dash", signed(manifest(name='"klp-regress"'))
    yield "stream-leading-dot", signed(manifest(stream='"..x"'))
    yield "format-2", signed(manifest(format="2"))
    yield "payload-size-0", signed(manifest(payload_size="0"))
    yield "trailing-object", signed(manifest() + "{}")
    yield "duplicate-cve-other-case", signed(manifest(cves='["CVE-2024-1234","cve-2024-1234"]'))
    yield "duplicate-product", signed(
        manifest(cves='[],"products":["pkg:generic/x@1","pkg:generic/x@1"]')
    )
    yield "invalid-utf8", signed(manifest(description='"\xff"').encode("latin-1"))
    # What the fuzzer first found, wrapped in a signed bundle: a manifest
    # that parsed but was not canonical.
    yield "fuzz-whitespace-manifest", signed(
        b'{"format":1,"name":"k","stream":"a","version":15,"release": "6","arch":"x_64",'
        b'"replace":true,"cves":["V"],"description":"iee","created":10,"payload_size":%d,'
        b'"payload_sha256":"%s"}' % (len(PAYLOAD), DIGEST.encode())
    )


def elf(modinfo=b"livepatch=Y\0name=klp_regress\0vermagic=6.1.0-41-amd64 SMP \0", machine=62, **hack):
    """A minimal ELF64 relocatable with .shstrtab and .modinfo; `hack`
    overrides header fields or the .modinfo section header."""
    shstr = b"\0.shstrtab\0.modinfo\0"
    body = bytearray(64) + shstr + modinfo
    while len(body) % 8:
        body.append(0)
    shoff = len(body)
    mi = dict(name=11, type=1, off=64 + len(shstr), size=len(modinfo))
    mi.update({k[3:]: v for k, v in hack.items() if k.startswith("mi_")})
    for name, typ, off, size in [(0, 0, 0, 0), (1, 3, 64, len(shstr)), (mi["name"], mi["type"], mi["off"], mi["size"])]:
        body += struct.pack("<IIQQQQIIQQ", name, typ, 0, 0, off, size, 0, 0, 1, 0)
    h = dict(ident=b"\x7fELF\x02\x01\x01", type=1, machine=machine, shoff=shoff, shentsize=64, shnum=3, shstrndx=1)
    h.update({k: v for k, v in hack.items() if not k.startswith("mi_")})
    body[0 : len(h["ident"])] = h["ident"]
    struct.pack_into("<HH", body, 16, h["type"], h["machine"])
    struct.pack_into("<Q", body, 0x28, h["shoff"])
    struct.pack_into("<HHH", body, 0x3A, h["shentsize"], h["shnum"], h["shstrndx"])
    return bytes(body)


def second_modinfo(ko, modinfo):
    """`ko` (from elf()) with a fourth section header, a copy of the
    .modinfo one pointing at `modinfo` appended after the table."""
    shoff, = struct.unpack_from("<Q", ko, 0x28)
    sh = bytearray(ko[shoff + 128 : shoff + 192])
    struct.pack_into("<QQ", sh, 24, len(ko) + 64, len(modinfo))
    body = bytearray(ko) + sh + modinfo
    struct.pack_into("<H", body, 0x3C, 4)
    return bytes(body)


def modules():
    yield "empty", b""
    yield "not-elf", b"this is not an ELF file\n"
    yield "truncated-ehdr", elf()[:40]
    yield "elf32", elf(ident=b"\x7fELF\x01\x01\x01")
    yield "big-endian", elf(ident=b"\x7fELF\x02\x02\x01")
    yield "executable-not-relocatable", elf(type=2)
    yield "unknown-machine", elf(machine=9999)
    yield "shentsize-40", elf(shentsize=40)
    yield "shnum-0", elf(shnum=0)
    yield "shnum-65535", elf(shnum=65535)
    yield "shstrndx-out-of-range", elf(shstrndx=7)
    yield "shoff-past-end", elf(shoff=2**40)
    yield "shoff-overflow", elf(shoff=2**64 - 64)
    yield "modinfo-past-end", elf(mi_off=2**62)
    yield "modinfo-size-huge", elf(mi_size=2**63)
    yield "modinfo-size-64k-plus-1", elf(mi_size=65537)
    yield "modinfo-nobits", elf(mi_type=8)
    yield "modinfo-name-offset-huge", elf(mi_name=0xFFFFFFFF)
    yield "no-name", elf(b"livepatch=Y\0vermagic=6.1.0-41-amd64 SMP \0")
    yield "no-vermagic", elf(b"livepatch=Y\0name=klp_regress\0")
    yield "bad-name", elf(b"livepatch=Y\0name=klp-regress\0vermagic=6.1.0 \0")
    yield "bad-release", elf(b"livepatch=Y\0name=klp_regress\0vermagic=../../x \0")
    yield "name-not-utf8", elf(b"livepatch=Y\0name=\xff\0vermagic=6.1.0 \0")
    yield "two-modinfo-sections", second_modinfo(
        elf(), b"livepatch=Y\0name=klp_other\0vermagic=6.1.0-99-amd64 SMP \0"
    )
    yield "not-livepatch", elf(b"livepatch=N\0name=klp_regress\0vermagic=6.1.0 \0")


def main():
    for sub, gen in (("bundle", bundles), ("modinfo", modules)):
        d = os.path.join(HERE, "regressions", sub)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.startswith("hand-"):
                os.remove(os.path.join(d, f))
        for name, data in gen():
            with open(os.path.join(d, "hand-" + name), "wb") as f:
                f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
