//! Hex, base64 (RFC 4648, standard alphabet, padded) and decimal numbers,
//! strict in both directions: decoding rejects anything a canonical encoder
//! would not produce. Also used by build.rs through `#[path]`, so it depends on
//! nothing but core.
#![forbid(unsafe_code)]

const HEX: &[u8; 16] = b"0123456789abcdef";
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The two lowercase hex digits of `x`.
pub fn hex_pair(x: u8) -> [u8; 2] {
    [HEX[(x >> 4) as usize], HEX[(x & 15) as usize]]
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex (either case) into `out`, returning the used prefix. `None`
/// on odd length, a non-hex digit, or too little room.
pub fn hex_decode<'o>(s: &[u8], out: &'o mut [u8]) -> Option<&'o [u8]> {
    if !s.len().is_multiple_of(2) || s.len() / 2 > out.len() {
        return None;
    }
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = hex_val(pair[0])? << 4 | hex_val(pair[1])?;
    }
    Some(&out[..s.len() / 2])
}

/// Encodes `bytes` as lowercase hex into `out`; `None` if it does not fit.
pub fn hex_encode<'o>(bytes: &[u8], out: &'o mut [u8]) -> Option<&'o [u8]> {
    let out = out.get_mut(..bytes.len() * 2)?;
    for (i, &x) in bytes.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&hex_pair(x));
    }
    Some(out)
}

fn b64_val(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes padded base64 into `out`, returning the used prefix. Rejects
/// missing or misplaced padding, characters outside the alphabet, non-zero
/// trailing bits, and output that does not fit.
pub fn b64_decode<'o>(s: &[u8], out: &'o mut [u8]) -> Option<&'o [u8]> {
    if s.is_empty() || !s.len().is_multiple_of(4) {
        return None;
    }
    let pad = s.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let n = s.len() / 4 * 3 - pad;
    if n > out.len() {
        return None;
    }
    let mut o = 0;
    for (q, quad) in s.chunks_exact(4).enumerate() {
        let last = q == s.len() / 4 - 1;
        let mut v = [0u8; 4];
        for (i, &c) in quad.iter().enumerate() {
            v[i] = if last && i >= 4 - pad { 0 } else { b64_val(c)? };
        }
        let word = (v[0] as u32) << 18 | (v[1] as u32) << 12 | (v[2] as u32) << 6 | v[3] as u32;
        let bytes = [(word >> 16) as u8, (word >> 8) as u8, word as u8];
        let take = if last { 3 - pad } else { 3 };
        // Canonical form: the bits that padding covers must be zero.
        if last && pad > 0 && (word & ((1u32 << (8 * pad)) - 1)) != 0 {
            return None;
        }
        out[o..o + take].copy_from_slice(&bytes[..take]);
        o += take;
    }
    Some(&out[..n])
}

/// Encodes `bytes` as padded base64 into `out`; `None` if it does not fit.
pub fn b64_encode<'o>(bytes: &[u8], out: &'o mut [u8]) -> Option<&'o [u8]> {
    let n = bytes.len().div_ceil(3) * 4;
    let out = out.get_mut(..n)?;
    for (i, chunk) in bytes.chunks(3).enumerate() {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let word = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for j in 0..4 {
            out[4 * i + j] = if j > chunk.len() {
                b'='
            } else {
                B64[(word >> (18 - 6 * j) & 63) as usize]
            };
        }
    }
    Some(out)
}

/// Parses a decimal number with optional surrounding whitespace.
pub fn parse_u64(t: &[u8]) -> Option<u64> {
    let t = t.trim_ascii();
    if t.is_empty() || t.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in t {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// Formats `n` in decimal into `tmp`, returning the used tail.
pub fn fmt_u64(mut n: u64, tmp: &mut [u8; 20]) -> &[u8] {
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &tmp[i..]
}

/// The last second RFC 3339 can write (four-digit years):
/// 9999-12-31T23:59:59Z.
pub const RFC3339_MAX: u64 = 253_402_300_799;

/// `t` (Unix seconds) as RFC 3339 UTC: `YYYY-MM-DDTHH:MM:SSZ`. RFC 3339
/// has four-digit years only, so a time past [`RFC3339_MAX`] (a damaged or
/// hostile record, say) is written as that last second rather than as a
/// wrong or malformed date. Defined for every `u64`.
pub fn rfc3339(t: u64, out: &mut [u8; 20]) -> &[u8] {
    let t = t.min(RFC3339_MAX);
    // Days to a civil date, counting in 400-year eras from 0000-03-01 so
    // that the leap day ends a year. With `t` bounded as above, every value
    // here fits in 32 bits and the year has at most four digits.
    let days = (t / 86400) as u32 + 719_468;
    let (era, doe) = (days / 146_097, days % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + (month <= 2) as u32;
    let secs = (t % 86400) as u32;
    *out = *b"0000-00-00T00:00:00Z";
    // Each field's digits, right to left from its last byte; a field
    // never writes more digits than it has room for.
    for (v, last, width) in [
        (year, 3, 4),
        (month, 6, 2),
        (day, 9, 2),
        (secs / 3600, 12, 2),
        (secs / 60 % 60, 15, 2),
        (secs % 60, 18, 2),
    ] {
        let mut v = v;
        for i in 0..width {
            out[last - i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    &out[..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let mut b = [0u8; 20];
        for (t, s) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_764_300_000, "2025-11-28T03:20:00Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (RFC3339_MAX, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(t, &mut b), s.as_bytes(), "{t}");
        }
        // Negative: past year 9999 the date does not grow a fifth digit
        // or wrap around; it stays at the last second RFC 3339 can write.
        for t in [
            RFC3339_MAX + 1,
            253_402_300_800 * 40,
            u32::MAX as u64 * 86400,
            u64::MAX,
        ] {
            assert_eq!(rfc3339(t, &mut b), b"9999-12-31T23:59:59Z", "{t}");
        }
    }

    /// Every u64 shape (each bit alone, runs of ones, a pseudo-random
    /// walk): never a panic, always 20 bytes of the RFC 3339 form, and
    /// monotonic in `t`.
    #[test]
    fn rfc3339_is_total_and_well_formed() {
        let mut times: Vec<u64> = (0..64).flat_map(|i| [1u64 << i, (1u64 << i) - 1]).collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            times.push(x >> (x % 64));
        }
        times.push(u64::MAX);
        times.sort_unstable();
        let mut prev = Vec::new();
        for t in times {
            let mut b = [0u8; 20];
            let s = rfc3339(t, &mut b).to_vec();
            assert_eq!(s.len(), 20);
            for (i, &c) in s.iter().enumerate() {
                let want_digit = !matches!(i, 4 | 7 | 10 | 13 | 16 | 19);
                assert_eq!(c.is_ascii_digit(), want_digit, "{t}: {s:?}");
            }
            assert!(s >= prev, "{t}");
            prev = s;
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"32768\n"), Some(32768));
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"99999999999999999999"), None);
    }

    #[test]
    fn decimal() {
        let mut t = [0u8; 20];
        assert_eq!(fmt_u64(0, &mut t), b"0");
        assert_eq!(fmt_u64(u64::MAX, &mut t), b"18446744073709551615");
    }

    #[test]
    fn base64_rfc4648_vectors() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"fooba", b"Zm9vYmE="),
            (b"foobar", b"Zm9vYmFy"),
        ];
        for (plain, enc) in cases {
            let mut o = [0u8; 16];
            assert_eq!(b64_encode(plain, &mut o).unwrap(), *enc);
            let mut d = [0u8; 16];
            assert_eq!(b64_decode(enc, &mut d).unwrap(), *plain);
        }
    }

    #[test]
    fn base64_rejects_noncanonical() {
        let mut d = [0u8; 16];
        assert!(b64_decode(b"Zh==", &mut d).is_none()); // trailing bits set
        assert!(b64_decode(b"Zm9", &mut d).is_none()); // not a multiple of 4
        assert!(b64_decode(b"Zm=v", &mut d).is_none()); // padding inside
        assert!(b64_decode(b"Z===", &mut d).is_none()); // too much padding
        assert!(b64_decode(b"Zm9v\n", &mut d).is_none());
        assert!(b64_decode(b"", &mut d).is_none());
        let mut small = [0u8; 2];
        assert!(b64_decode(b"Zm9v", &mut small).is_none());
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let mut o = [0u8; 8];
        assert_eq!(hex_decode(b"00ffA5", &mut o).unwrap(), &[0, 0xff, 0xa5]);
        assert!(hex_decode(b"0", &mut o).is_none());
        assert!(hex_decode(b"0g", &mut o).is_none());
        let mut e = [0u8; 6];
        assert_eq!(hex_encode(&[0, 0xff, 0xa5], &mut e).unwrap(), b"00ffa5");
    }
}
