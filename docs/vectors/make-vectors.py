#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Regenerate the test vectors in docs/vectors/ (see docs/bundle-format.md).

The keys are fixed (keys/test.pub, test.sec, untrusted.*; TEST ONLY), the
module is synthetic and deterministic (written by the fake module builder
tests/common/ko.rs, through `cargo test`), `--created` is fixed and Ed25519 is
deterministic, so rerunning reproduces every file byte for byte. Rejected
vectors whose manifest must be *signed* but malformed are signed with OpenBSD
signify (`signify-openbsd`), which signs arbitrary bytes with the same key
files: klpctl signatures are plain Ed25519 over the manifest bytes.

usage: docs/vectors/make-vectors.py KLPCTL
Writes module.ko, valid*.klp, reject/*.klp, expected.txt and the expected
`klpctl verify` outputs (*.out, *.json). Needs python3, cargo and
signify-openbsd.
"""
import base64
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEC = "test.sec"
UNTRUSTED_SEC = "untrusted.sec"
CREATED = "1764300000"
L = 2**252 + 27742317777372353535851937790883648493  # Ed25519 group order


def run(*args, **kw):
    return subprocess.run(args, cwd=HERE, check=True, **kw)


def parse(b):
    """(header fields, manifest, [signature records], payload) of a bundle."""
    assert b[:8] == b"KLPBNDL\0"
    fmt, n, m, p = struct.unpack_from("<HHIQ", b, 8)
    man = b[24 : 24 + m]
    sigs = [b[24 + m + 72 * i : 24 + m + 72 * (i + 1)] for i in range(n)]
    return man, sigs, b[24 + m + 72 * n :]


def build(man, sigs, payload, nsig=None, mlen=None, plen=None, magic=b"KLPBNDL\0", fmt=1):
    h = magic + struct.pack(
        "<HHIQ",
        fmt,
        len(sigs) if nsig is None else nsig,
        len(man) if mlen is None else mlen,
        len(payload) if plen is None else plen,
    )
    return h + man + b"".join(sigs) + payload


def signify_sign(msg, sec=SEC):
    with tempfile.TemporaryDirectory() as d:
        m, x = os.path.join(d, "m"), os.path.join(d, "m.sig")
        open(m, "wb").write(msg)
        run("signify-openbsd", "-S", "-s", sec, "-m", m, "-x", x)
        raw = base64.b64decode(open(x, "rb").read().split(b"\n")[1])
    assert raw[:2] == b"Ed" and len(raw) == 74
    return raw[2:]


def write_module(path):
    """module.ko from tests/common/ko.rs, the builder the tests use; the
    test vectors::vector_module_comes_from_the_shared_builder keeps the
    committed file equal to it."""
    env = dict(os.environ, KLPCTL_KO_OUT=path)
    for k in ("NAME", "VERMAGIC", "MACHINE", "PLAIN", "PAD", "RANDOM"):
        env.pop("KLPCTL_KO_" + k, None)
    run("cargo", "test", "--quiet", "--release", "--test", "cli", "--",
        "--ignored", "--exact", "vectors::write_module", env=env, stdout=subprocess.DEVNULL)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    klpctl = os.path.abspath(sys.argv[1])
    os.makedirs(os.path.join(HERE, "reject"), exist_ok=True)
    for f in os.listdir(os.path.join(HERE, "reject")):
        os.remove(os.path.join(HERE, "reject", f))
    write_module(os.path.join(HERE, "module.ko"))

    def pack(out, *extra):
        if os.path.exists(os.path.join(HERE, out)):
            os.remove(os.path.join(HERE, out))
        run(klpctl, "pack", "module.ko", "-o", out, "--stream", "vectors", "--version", "1",
            "--created", CREATED, *extra, stdout=subprocess.DEVNULL)
        return open(os.path.join(HERE, out), "rb").read()

    valid = pack("valid.klp", "-s", SEC)
    full = pack("valid-full.klp", "--version", "2", "--kernel-build-id",
                "00112233445566778899aabbccddeeff00112233", "--replace",
                "--cve", "CVE-2024-1234", "--cve", "CVE-2025-0001",
                "--product", "pkg:deb/debian/linux-image-6.1.0-41-amd64@6.1.158-1",
                "--product", "cpe:2.3:o:linux:linux_kernel:6.1.158:*:*:*:*:*:*:*",
                "--description", 'fixes "x" \\ y', "-s", SEC, "-s", UNTRUSTED_SEC)
    man, sigs, payload = parse(valid)
    dup = build(man, sigs * 2, payload)
    open(os.path.join(HERE, "valid-duplicate.klp"), "wb").write(dup)
    # Same manifest signed by the untrusted key only.
    untrusted = pack("reject/untrusted-only.klp", "-s", UNTRUSTED_SEC)

    def signed(m):
        return build(m, [signify_sign(m)], payload)

    rejects = []  # (name, bytes, reason substring, why)

    def reject(name, data, reason, why):
        rejects.append((name, data, reason, why))

    def flip(b, i, bit=1):
        b = bytearray(b)
        b[i] ^= bit
        return bytes(b)

    sig_off = 24 + len(man)
    mtext = man.decode()
    reject("bad-magic", b"KLPBNDX\0" + valid[8:], "bad magic", "magic is KLPBNDX\\0, not KLPBNDL\\0")
    reject("format-2", valid[:8] + struct.pack("<H", 2) + valid[10:], "format version",
           "container format 2 is unknown")
    reject("five-signatures", build(man, sigs, payload, nsig=5), "more than 4 signatures",
           "signature count 5 > 4")
    reject("manifest-too-long", build(man, sigs, payload, mlen=16385), "manifest length",
           "manifest length 16385 > 16384")
    reject("payload-length-zero", build(man, sigs, payload, plen=0), "payload length",
           "payload length 0")
    reject("truncated", valid[:-1], "truncated", "file one byte shorter than the header says")
    reject("trailing-byte", valid + b"\0", "trailing bytes", "file one byte longer than the header says")
    reject("unsigned", build(man, [], payload), "not enough", "no signatures")
    rejects.append(("untrusted-only", untrusted, "not enough", "only signature is by a key not in the keyring"))
    reject("bad-signature", flip(valid, sig_off + 8 + 40), "does not verify",
           "one bit of S flipped in the only signature")
    reject("valid-and-invalid", build(man, [sigs[0], flip(sigs[0], 8 + 5)], payload), "does not verify",
           "a valid signature plus an invalid one by the same trusted key")
    s = int.from_bytes(sigs[0][40:], "little") + L
    reject("non-canonical-s", build(man, [sigs[0][:40] + s.to_bytes(32, "little")], payload),
           "does not verify", "S replaced by S + L (accepted by lax verifiers, not strict ones)")
    i = mtext.index('"version":1') + len('"version":')
    reject("manifest-altered", valid[: 24 + i] + b"2" + valid[25 + i :], "does not verify",
           'manifest "version":1 changed to 2 after signing')
    reject("payload-tampered", flip(valid, len(valid) - 1), "payload does not match",
           "last payload byte changed; signatures still valid")
    # Signed, so only the manifest rules reject these.
    reject("manifest-whitespace", signed(man.replace(b'"name":', b'"name": ')), "not canonical",
           "signed manifest with a space after a colon")
    reject("manifest-reordered", signed(b'{"name":"klp_vector","format":1,' + man[len(b'{"format":1,"name":"klp_vector",'):]),
           "not canonical", "signed manifest with name before format")
    reject("manifest-duplicate-field", signed(man[:-1] + b',"name":"klp_other"}'), "duplicate",
           "signed manifest with name twice")
    reject("manifest-unknown-field", signed(man[:-1] + b',"extra":true}'), "unknown",
           "signed manifest with an extra field")
    reject("manifest-bad-name", signed(man.replace(b'"klp_vector"', b'"klp-vector"')), "field name",
           "signed manifest whose name has a dash")
    reject("manifest-uppercase-digest", signed(_upper_digest(man)), "payload_sha256",
           "signed manifest with the digest in uppercase hex")
    with_cves = b'"cves":[],'
    assert with_cves in man
    reject("manifest-products-empty", signed(man.replace(with_cves, with_cves + b'"products":[],')),
           "not canonical", "signed manifest with an empty products list (canonically omitted)")
    reject("manifest-products-plus", signed(man.replace(
        with_cves, with_cves + b'"products":["pkg:deb/debian/linux-image-6.12.1+deb12-amd64@6.12.1-1"],')),
        "field products", "signed manifest with a literal '+' in a purl (must be %2B)")
    reject("manifest-products-misplaced", signed(man.replace(
        with_cves, b'"products":["pkg:generic/x@1"],' + with_cves)),
        "not canonical", "signed manifest with products before cves")
    reject("manifest-duplicate-cve", signed(man.replace(
        with_cves, b'"cves":["CVE-2024-1234","CVE-2024-1234"],')),
        "at most once", "signed manifest that lists one CVE id twice")
    reject("manifest-duplicate-cve-case", signed(man.replace(
        with_cves, b'"cves":["CVE-2024-1234","cve-2024-1234"],')),
        "at most once", "signed manifest that lists one CVE id twice, in two cases")
    reject("manifest-duplicate-product", signed(man.replace(
        with_cves, with_cves + b'"products":["pkg:generic/x@1","pkg:generic/x@1"],')),
        "at most once", "signed manifest that lists one product twice")
    big = man.replace(b'"payload_size":%d' % len(payload), b'"payload_size":%d' % (len(payload) + 1))
    reject("size-mismatch", signed(big), "header payload length differs",
           "signed manifest payload_size is one more than the header's payload length")

    with open(os.path.join(HERE, "expected.txt"), "w") as idx:
        idx.write("# FILE EXIT REASON: `klpctl verify FILE --keyring keys` (run in docs/vectors)\n")
        idx.write("# exits EXIT; for exit 3 its stderr contains REASON. Made by make-vectors.py.\n")
        for name in ("valid.klp", "valid-full.klp", "valid-duplicate.klp"):
            idx.write("%s 0 -\n" % name)
        for name, data, reason, why in rejects:
            path = "reject/%s.klp" % name
            open(os.path.join(HERE, path), "wb").write(data)
            idx.write("%s 3 %s\n" % (path, reason))
    for name in ("valid.klp", "valid-full.klp", "valid-duplicate.klp"):
        for ext, extra in ((".out", []), (".json", ["--json"])):
            out = run(klpctl, "verify", name, "--keyring", "keys", *extra, stdout=subprocess.PIPE).stdout
            open(os.path.join(HERE, name[:-4] + ext), "wb").write(out)
    with open(os.path.join(HERE, "reject", "README"), "w") as r:
        r.write("Bundles klpctl must reject (exit 3); see docs/bundle-format.md.\n\n")
        for name, _, _, why in rejects:
            r.write("%-28s %s\n" % (name + ".klp", why))
    return 0


def _upper_digest(man):
    key = b'"payload_sha256":"'
    i = man.index(key) + len(key)
    return man[:i] + man[i : i + 64].upper() + man[i + 64 :]


if __name__ == "__main__":
    sys.exit(main())
