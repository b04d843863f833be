#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Differential check of klpctl's manifest parser against Python's json.

Hand-made manifests (every spelling rule of docs/bundle-format.md section 3:
whitespace, order, duplicate keys, escapes, number forms, nesting, bounds,
types) and random mutations of the two valid vectors' manifests are each
signed with the TEST ONLY vector key (docs/vectors/test.sec) and run through
`klpctl verify B --keyring docs/vectors/keys --json`. For every input:
  - the exit code is 0 or 3, and a rejection is exactly one line on stderr;
  - an accepted manifest parses with json.loads (no duplicate keys), to the
    values klpctl reports, with the fields in specification order, and
    re-serializing it canonically gives back exactly its bytes.
Exits 1 on any difference. Needs python3-cryptography (Ed25519).

usage: fuzz/differential.py [KLPCTL [N [SEED]]]
  KLPCTL defaults to target/x86_64-unknown-linux-musl/release/klpctl;
  N random mutations (default 3000), SEED for them (default 1).
"""
import base64
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KLPCTL = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else os.path.join(
    REPO, "target/x86_64-unknown-linux-musl/release/klpctl")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else 1
VEC = os.path.join(REPO, "docs/vectors")
sec = base64.b64decode(open(os.path.join(VEC, "test.sec"), "rb").read().split(b"\n")[1])
KEYID, KEY_SEED = sec[32:40], sec[40:72]
SK = Ed25519PrivateKey.from_private_bytes(KEY_SEED)
PAYLOAD = open(os.path.join(VEC, "module.ko"), "rb").read()

def bundle(m, plen):
    sig = SK.sign(m)
    return struct.pack("<8sHHIQ", b"KLPBNDL\0", 1, 1, len(m), plen) + m + KEYID + sig

def manifest_of(path):
    b = open(path, "rb").read()
    n, m, p = struct.unpack_from("<HIQ", b, 10)
    return b[24:24 + m]

BASES = [manifest_of(os.path.join(VEC, f)) for f in ("valid.klp", "valid-full.klp")]
ORDER = ["format","name","stream","version","release","build_id","arch","replace",
         "cves","products","description","created","payload_size","payload_sha256"]

def canon(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

INTERESTING = [b" ", b"\n", b"\t", b"\r", b"\\", b'"', b"\\u0041", b"\\/", b"\\n", b"\\\"",
               b"\\\\", b"\\ud800", b"\\udc00\\ud800", b"0", b"-", b"-0", b"e3", b".0", b"00",
               b"1e3", b"null", b"true", b"false", b"True", b"[]", b"{}", b"[", b"]", b"{", b"}",
               b",", b":", b"\x00", b"\x7f", b"\xc0\xaf", b"\xed\xa0\x80", b"\xef\xbb\xbf",
               b"\xc2\x9b", b"\xe2\x80\xae", b"\xe2\x80\xa8", b"\xc3\xa9", b"\xf4\x90\x80\x80",
               b"18446744073709551616", b"4294967296", b"99999999999999999999999", b"A", b"a", b"_",
               b"%2B", b"+", b"'", b"pkg:", b"cpe:", b"CVE-2024-1234", b"\"x\"", b"\"\"",
               b"\"description\":\"\"", b"\"build_id\":null,", b"\"products\":[],"]

def mutate(m, rnd):
    b = bytearray(m)
    for _ in range(rnd.choice([1, 1, 1, 2, 3])):
        op = rnd.randrange(6)
        i = rnd.randrange(len(b) + 1)
        tok = rnd.choice(INTERESTING)
        if op == 0 and b:
            del b[min(i, len(b) - 1)]
        elif op == 1:
            b[i:i] = tok
        elif op == 2 and b:
            j = min(len(b), i + rnd.randrange(1, 6))
            b[i:j] = tok
        elif op == 3:
            # swap a value: find "key":value and replace value
            ms = list(re.finditer(rb'"([a-z_0-9]+)":("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^,}]+)', bytes(b)))
            if ms:
                x = rnd.choice(ms)
                b[x.start(2):x.end(2)] = tok
        elif op == 4:
            # duplicate or move a field
            ms = list(re.finditer(rb'"[a-z_0-9]+":(?:"(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^,}]+),', bytes(b)))
            if ms:
                x = rnd.choice(ms)
                f = bytes(b[x.start():x.end()])
                if rnd.random() < 0.5:
                    del b[x.start():x.end()]
                pos = [y.start() for y in ms] + [1]
                p = rnd.choice(pos)
                p = min(p, len(b))
                b[p:p] = f
        else:
            # bit-ish flip of one byte to a nearby ASCII
            if b:
                i = min(i, len(b) - 1)
                b[i] = rnd.choice(b'09afAF{}[]",: \\-+.eEnutl\x00\x80\xff')
    return bytes(b)

def run(m, tmp):
    pm = re.search(rb'"payload_size":([0-9]+)[,}]', m)
    plen = 392
    if pm:
        try:
            v = int(pm.group(1))
            if 1 <= v <= 1 << 30:
                plen = v
        except ValueError:
            pass
    path = os.path.join(tmp, "b.klp")
    with open(path, "wb") as f:
        f.write(bundle(m, plen))
        if plen == 392:
            f.write(PAYLOAD)
        else:
            f.truncate(f.tell() + plen)
    r = subprocess.run([KLPCTL, "verify", path, "--keyring", os.path.join(VEC, "keys"), "--json"],
                       capture_output=True, timeout=20)
    return r

def check(m, tmp, stats, log):
    r = run(m, tmp)
    problems = []
    if r.returncode not in (0, 3):
        problems.append(f"exit {r.returncode}")
    if r.returncode == 3:
        if r.stderr.count(b"\n") != 1 or not r.stderr.endswith(b"\n"):
            problems.append(f"stderr not one line: {r.stderr[:200]!r}")
        stats["reject"] += 1
        reason = r.stderr.decode(errors="replace").strip()
        reason = re.sub(r"^klpctl: [^:]*: ", "", reason)
        stats.setdefault("reasons", {}).setdefault(reason[:100], 0)
        stats["reasons"][reason[:100]] += 1
    if r.returncode == 0:
        stats["accept"] += 1
        try:
            def no_dups(pairs):
                keys = [k for k, _ in pairs]
                if len(keys) != len(set(keys)):
                    raise ValueError("duplicate key " + repr(keys))
                return dict(pairs)
            obj = json.loads(m.decode("utf-8"), object_pairs_hook=no_dups)
        except Exception as e:
            problems.append(f"accepted but Python rejects: {e}")
            obj = None
        if obj is not None:
            keys = list(obj)
            if keys != [k for k in ORDER if k in keys]:
                problems.append(f"accepted with key order {keys}")
            if canon(obj) != m:
                problems.append("accepted but Python canonical form differs: " + canon(obj)[:300].decode(errors="replace"))
            cves = [c.lower() for c in obj.get("cves", [])]
            products = obj.get("products", [])
            if len(set(cves)) != len(cves) or len(set(products)) != len(products):
                problems.append("accepted a CVE id (in any case) or a product twice")
            rep = json.loads(r.stdout)["manifest"]
            for k in ORDER:
                if k == "format":
                    continue
                want = obj.get(k, {"build_id": None, "products": []}.get(k))
                if rep.get(k) != want:
                    problems.append(f"field {k}: klpctl reports {rep.get(k)!r}, Python reads {want!r}")
    if problems:
        stats["bad"] += 1
        log.append((m, r.returncode, r.stderr[:300], problems))

def hand_cases():
    """Manifests that each break (or sit exactly at) one rule."""
    F = BASES[1]
    cases = {}
    def w(name, base, old, new):
        assert old in base, (name, old)
        cases[name] = base.replace(old, new, 1)
    # whitespace / order / trailing / BOM
    w("ws-after-colon", F, b'"name":', b'"name": ')
    w("ws-before-comma", F, b',"stream"', b' ,"stream"')
    w("ws-in-array", F, b'["CVE', b'[ "CVE')
    w("ws-cr", F, b'"name":', b'"name":\r')
    w("bom", F, b'{"format"', b'\xef\xbb\xbf{"format"')
    cases["trailing-nl"] = F + b"\n"
    cases["trailing-nul"] = F + b"\x00"
    cases["trailing-obj"] = F + b"{}"
    w("reorder", F, b'"format":1,"name":"klp_vector",', b'"name":"klp_vector","format":1,')
    w("dup-key-same", F, b'"arch":"x86_64",', b'"arch":"x86_64","arch":"x86_64",')
    w("dup-key-diff", F, b'"arch":"x86_64",', b'"arch":"aarch64","arch":"x86_64",')
    w("dup-key-escaped", F, b'"arch":"x86_64",', b'"arch":"x86_64","\\u0061rch":"x86_64",')
    w("dup-format", F, b'"format":1,', b'"format":1,"format":1,')
    w("dup-products", F, b'"products":', b'"products":["pkg:a/b"],"products":')
    # escapes
    w("esc-u0041-name", F, b'klp_vector', b'klp_vector\\u0041')
    w("esc-slash-desc", F, b'fixes', b'fi\\/xes')
    w("esc-u-desc", F, b'fixes', b'\\u0066ixes')
    w("esc-n-desc", F, b'fixes', b'fixes\\n')
    w("esc-invalid-desc", F, b'fixes', b'fixes\\q')
    w("esc-surrogate", F, b'fixes', b'\\ud83d\\ude00')
    w("esc-lone-surrogate", F, b'fixes', b'\\ud800')
    w("raw-lone-surrogate", F, b'fixes', b'\xed\xa0\x80')
    w("overlong-slash", F, b'fixes', b'\xc0\xaf')
    w("overlong-nul", F, b'fixes', b'\xc0\x80')
    w("raw-nul-desc", F, b'fixes', b'fi\x00xes')
    w("raw-del-desc", F, b'fixes', b'fi\x7fxes')
    w("raw-tab-desc", F, b'fixes', b'fi\txes')
    w("c1-desc", F, b'fixes', b'fi\xc2\x9bxes')
    w("bidi-desc", F, b'fixes', b'fi\xe2\x80\xaexes')
    w("ls-desc", F, b'fixes', b'fi\xe2\x80\xa8xes')
    w("bs-end-desc", F, b'\\\\ y"', b'\\\\ y\\"')
    w("esc-quote-in-name", F, b'klp_vector', b'klp\\"vector')
    w("esc-in-key", F, b'"stream"', b'"str\\u0065am"')
    w("esc-cve", F, b'CVE-2024-1234', b'CVE\\u002d2024-1234')
    w("esc-product-slash", F, b'pkg:deb/debian', b'pkg:deb\\/debian')
    w("esc-sha", F, b'"4e09', b'"\\u0034e09')
    w("esc-build-id", F, b'"0011', b'"\\u00301')
    # numbers
    for k, v in [("lead0", b"01"), ("neg0", b"-0"), ("exp", b"1e0"), ("frac", b"1.0"), ("neg", b"-1"),
                 ("plus", b"+1"), ("huge", b"18446744073709551616"), ("hugeneg", b"-18446744073709551616"),
                 ("u32plus", b"4294967297"), ("str", b'"1"'), ("null", b"null"), ("bool", b"true"),
                 ("hex", b"0x1"), ("space", b" 1"), ("exp2", b"1E0"), ("zero", b"0"), ("max", b"18446744073709551615")]:
        w("format-" + k, F, b'"format":1,', b'"format":' + v + b",")
        w("version-" + k, F, b'"version":2,', b'"version":' + v + b",")
        w("created-" + k, F, b'"created":1764300000,', b'"created":' + v + b",")
    w("psize-lead0", F, b'"payload_size":392', b'"payload_size":0392')
    w("psize-frac", F, b'"payload_size":392', b'"payload_size":392.0')
    w("psize-exp", F, b'"payload_size":392', b'"payload_size":3.92e2')
    # booleans
    for k, v in [("True", b"True"), ("TRUE", b"TRUE"), ("1", b"1"), ("str", b'"true"'), ("null", b"null"), ("t", b"t"), ("truex", b"truee")]:
        w("replace-" + k, F, b'"replace":true', b'"replace":' + v)
    # nulls and wrong types
    for f, old in [("name", b'"klp_vector"'), ("cves", b'["CVE-2024-1234","CVE-2025-0001"]'),
                   ("products", b'["pkg:deb/debian/linux-image-6.1.0-41-amd64@6.1.158-1","cpe:2.3:o:linux:linux_kernel:6.1.158:*:*:*:*:*:*:*"]'),
                   ("description", b'"fixes \\"x\\" \\\\ y"'), ("build_id", b'"00112233445566778899aabbccddeeff00112233"')]:
        for k, v in [("null", b"null"), ("num", b"1"), ("obj", b"{}"), ("arr", b"[]"), ("str", b'"x"'), ("bool", b"false"), ("nested", b'[["a"]]')]:
            w(f"{f}-{k}", F, b'"' + f.encode() + b'":' + old, b'"' + f.encode() + b'":' + v)
    w("build_id-empty", F, b'"00112233445566778899aabbccddeeff00112233"', b'""')
    w("build_id-odd", F, b'"00112233445566778899aabbccddeeff00112233"', b'"001"')
    w("build_id-33", F, b'"00112233445566778899aabbccddeeff00112233"', b'"' + b"ab" * 33 + b'"')
    w("build_id-32", F, b'"00112233445566778899aabbccddeeff00112233"', b'"' + b"ab" * 32 + b'"')
    w("build_id-upper", F, b'"00112233445566778899aabbccddeeff00112233"', b'"00112233445566778899AABBCCDDEEFF00112233"')
    w("build_id-1", F, b'"00112233445566778899aabbccddeeff00112233"', b'"ab"')
    # missing fields
    for f in [b"format", b"name", b"stream", b"version", b"release", b"arch", b"replace", b"cves", b"description", b"created", b"payload_size", b"payload_sha256"]:
        m = re.search(b'"' + f + b'":(?:"(?:[^"\\\\]|\\\\.)*"|\\[[^\\]]*\\]|[^,}]+),?', F)
        cases["missing-" + f.decode()] = F[:m.start()] + F[m.end():]
    # arrays at bounds
    def cves(n, fmt="CVE-2024-{:05d}"):
        return b"[" + b",".join(b'"' + fmt.format(i).encode() + b'"' for i in range(n)) + b"]"
    w("cves-64", F, b'["CVE-2024-1234","CVE-2025-0001"]', cves(64))
    w("cves-65", F, b'["CVE-2024-1234","CVE-2025-0001"]', cves(65))
    w("cves-1000", F, b'["CVE-2024-1234","CVE-2025-0001"]', cves(1000))
    w("cves-empty", F, b'["CVE-2024-1234","CVE-2025-0001"]', b"[]")
    w("cves-trailing-comma", F, b'["CVE-2024-1234","CVE-2025-0001"]', b'["CVE-2024-1234",]')
    w("cves-dup", F, b'"CVE-2025-0001"', b'"CVE-2024-1234"')
    w("cves-dup-case", F, b'"CVE-2025-0001"', b'"cve-2024-1234"')
    w("cves-empty-str", F, b'"CVE-2025-0001"', b'""')
    w("cve-32", F, b'"CVE-2025-0001"', b'"' + b"C" * 32 + b'"')
    w("cve-33", F, b'"CVE-2025-0001"', b'"' + b"C" * 33 + b'"')
    P = b'["pkg:deb/debian/linux-image-6.1.0-41-amd64@6.1.158-1","cpe:2.3:o:linux:linux_kernel:6.1.158:*:*:*:*:*:*:*"]'
    def prods(n):
        return b"[" + b",".join(b'"pkg:deb/x' + str(i).encode() + b'"' for i in range(n)) + b"]"
    w("products-16", F, P, prods(16))
    w("products-17", F, P, prods(17))
    w("products-64", F, P, prods(64))
    w("products-65", F, P, prods(65))
    w("products-dup", F, P, b'["pkg:deb/x","pkg:deb/x"]')
    w("product-256", F, P, b'["pkg:' + b"a" * 252 + b'"]')
    w("product-257", F, P, b'["pkg:' + b"a" * 253 + b'"]')
    # strings at/past lengths
    w("name-55", F, b'"klp_vector"', b'"' + b"a" * 55 + b'"')
    w("name-56", F, b'"klp_vector"', b'"' + b"a" * 56 + b'"')
    w("name-empty", F, b'"klp_vector"', b'""')
    w("stream-64", F, b'"vectors"', b'"' + b"s" * 64 + b'"')
    w("stream-65", F, b'"vectors"', b'"' + b"s" * 65 + b'"')
    w("release-64", F, b'"6.1.0-41-amd64"', b'"' + b"r" * 64 + b'"')
    w("release-65", F, b'"6.1.0-41-amd64"', b'"' + b"r" * 65 + b'"')
    w("arch-16", F, b'"x86_64"', b'"' + b"x" * 16 + b'"')
    w("arch-17", F, b'"x86_64"', b'"' + b"x" * 17 + b'"')
    D = b'"fixes \\"x\\" \\\\ y"'
    w("desc-1024", F, D, b'"' + b"d" * 1024 + b'"')
    w("desc-1025", F, D, b'"' + b"d" * 1025 + b'"')
    w("desc-1024-escaped", F, D, b'"' + b"\\\\" * 512 + b'"')
    w("desc-1026-escaped", F, D, b'"' + b"\\\\" * 513 + b'"')
    w("desc-1023-plus-esc", F, D, b'"' + b"d" * 1023 + b'\\\\"')
    w("desc-utf8-1024", F, D, b'"' + "é".encode() * 512 + b'"')
    # nesting
    w("deep-cves", F, b'"cves":[', b'"cves":' + b"[" * 15000)
    w("deep-unknown", F, b'"arch":', b'"x":' + b"[" * 15000 + b',"arch":')
    w("deep-unknown-obj", F, b'"arch":', b'"x":' + b"{\"a\":" * 2500 + b',"arch":')
    w("deep-build", F, b'"build_id":', b'"build_id":' + b"[" * 15000)
    w("deep-products", F, b'"products":[', b'"products":[' + b"[" * 15000)
    cases["top-array"] = b"[" + F[1:-1] + b"]"
    cases["empty-obj"] = b"{}"
    cases["nested-top"] = b'{"a":' + F + b"}"
    return cases


def main():
    rnd = random.Random(SEED)
    stats = {"accept": 0, "reject": 0, "bad": 0}
    log = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in list(hand_cases().values()) + BASES:
            check(m, tmp, stats, log)
        for _ in range(N):
            check(mutate(rnd.choice(BASES), rnd), tmp, stats, log)
    for m, rc, err, p in log[:40]:
        print("PROBLEM", rc, m[:400], err, p)
    reasons = stats.pop("reasons", {})
    print(json.dumps(stats))
    for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:30]:
        print("  %6d %s" % (v, k))
    return 1 if stats["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
