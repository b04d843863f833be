#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Make deliberately broken copies of a klpctl bundle for the rejection tests.

usage: bundle-mutate.py MODE IN OUT
       bundle-mutate.py swap-payload IN OUT MODULE.ko NAME
  payload     flip one bit in the last payload byte (digest mismatch)
  signature   flip one bit inside the first signature's Ed25519 bytes
  manifest    flip one bit inside the manifest's JSON, keeping it printable
  truncate    keep only the first half of the file
  swap-payload  an UNSIGNED bundle with IN's manifest, but MODULE.ko as the
              payload and NAME as the name (size and digest updated), for a
              trusted key to sign with `klpctl sign`: how a bundle whose
              payload is not a livepatch gets past pack's own refusal

Layout (see src/bundle.rs): 24-byte header "KLPBNDL\\0", u16 format,
u16 signature count, u32 manifest length, u64 payload length; then the
manifest, 72-byte signature records (8-byte key id, 64-byte signature), and
the payload.
"""
import hashlib
import json
import struct
import sys


def swap_payload(data, mlen, ko_path, name):
    manifest = json.loads(bytes(data[24:24 + mlen]))
    ko = open(ko_path, "rb").read()
    manifest["name"] = name
    manifest["payload_size"] = len(ko)
    manifest["payload_sha256"] = hashlib.sha256(ko).hexdigest()
    # The canonical form: fields in order, no whitespace.
    m = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()
    header = b"KLPBNDL\x00" + struct.pack("<HHIQ", 1, 0, len(m), len(ko))
    return bytearray(header + m + ko)


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "swap-payload":
        src, dst, ko, name = sys.argv[2:]
        data = bytearray(open(src, "rb").read())
        _fmt, _nsig, mlen, _plen = struct.unpack_from("<HHIQ", data, 8)
        open(dst, "wb").write(swap_payload(data, mlen, ko, name))
        return
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    mode, src, dst = sys.argv[1:]
    data = bytearray(open(src, "rb").read())
    if data[:8] != b"KLPBNDL\x00":
        sys.exit(f"{src}: not a klpctl bundle")
    _fmt, nsig, mlen, plen = struct.unpack_from("<HHIQ", data, 8)
    sigs = 24 + mlen
    if mode == "payload":
        data[-1] ^= 0x01
    elif mode == "signature":
        if nsig == 0:
            sys.exit(f"{src}: has no signature to corrupt")
        data[sigs + 8 + 20] ^= 0x01
    elif mode == "manifest":
        # Change a digit or letter in the middle to another of its kind so
        # the JSON still parses and only the signature can catch it.
        i = 24 + mlen // 2
        while not chr(data[i]).isalnum():
            i += 1
        data[i] = ord("1") if data[i] == ord("0") else (ord("0") if chr(data[i]).isdigit()
                  else (ord("b") if data[i] == ord("a") else ord("a")))
    elif mode == "truncate":
        del data[len(data) // 2:]
    else:
        sys.exit(f"unknown mode {mode}")
    open(dst, "wb").write(data)


if __name__ == "__main__":
    main()
