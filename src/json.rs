//! JSON output: one writer that places the commas and escapes the strings,
//! so no caller writes JSON punctuation by hand. Output is compact (no
//! whitespace), written as it goes into an [`Out`], with no buffer of its
//! own beyond one bit per nesting level.
#![forbid(unsafe_code)]

use crate::out::Out;

/// A JSON writer over `o`. Members are `key(...)` followed by one value;
/// array elements are values. Containers nest up to 63 levels.
pub struct Json<'o, 'w> {
    o: &'o mut Out<'w>,
    /// Bit `d`: the container at depth `d` already holds a member.
    filled: u64,
    depth: u32,
    /// A key was just written: the next value needs no comma.
    after_key: bool,
}

impl<'o, 'w> Json<'o, 'w> {
    /// A writer at the top level of `o`.
    pub fn new(o: &'o mut Out<'w>) -> Self {
        // JSON escapes its own strings; the writer adds nothing.
        o.exact();
        Json {
            o,
            filled: 0,
            depth: 0,
            after_key: false,
        }
    }

    /// The comma before a member or element, where one is due.
    fn sep(&mut self) -> &mut Out<'w> {
        if self.after_key {
            self.after_key = false;
        } else {
            let bit = 1u64 << self.depth;
            if self.filled & bit != 0 {
                self.o.b(b",");
            }
            self.filled |= bit;
        }
        self.o
    }

    fn open(&mut self, c: &[u8]) -> &mut Self {
        self.sep().b(c);
        self.depth += 1;
        self.filled &= !(1u64 << self.depth);
        self
    }

    fn close(&mut self, c: &[u8]) -> &mut Self {
        self.depth -= 1;
        self.o.b(c);
        self
    }

    /// Starts an object.
    pub fn obj(&mut self) -> &mut Self {
        self.open(b"{")
    }

    /// Ends the current object.
    pub fn end_obj(&mut self) -> &mut Self {
        self.close(b"}")
    }

    /// Starts an array.
    pub fn arr(&mut self) -> &mut Self {
        self.open(b"[")
    }

    /// Ends the current array.
    pub fn end_arr(&mut self) -> &mut Self {
        self.close(b"]")
    }

    /// A member's key; its value comes next.
    pub fn key(&mut self, k: &str) -> &mut Self {
        self.sep().b(b"\"").s(k).b(b"\":");
        self.after_key = true;
        self
    }

    /// A string value, escaped (see [`escape`]).
    pub fn str(&mut self, bytes: &[u8]) -> &mut Self {
        escape(self.sep(), bytes);
        self
    }

    /// An error's one-line description as a string value: its class and
    /// its message.
    pub fn error(&mut self, e: crate::error::Error) -> &mut Self {
        // A class is plain text that needs no escape.
        let o = self.sep().b(b"\"").s(e.class());
        escape_body(o, e.message().as_bytes());
        o.b(b"\"");
        self
    }

    /// A string value whose content is already valid, escaped JSON string
    /// text (a manifest description as stored).
    pub fn escaped(&mut self, text: &str) -> &mut Self {
        self.sep().b(b"\"").s(text).b(b"\"");
        self
    }

    /// A string value of lowercase hex.
    pub fn hex(&mut self, bytes: &[u8]) -> &mut Self {
        self.sep().b(b"\"").hex(bytes).b(b"\"");
        self
    }

    /// An unsigned number.
    pub fn u(&mut self, n: u64) -> &mut Self {
        self.sep().u(n);
        self
    }

    /// A signed number.
    pub fn i(&mut self, n: i64) -> &mut Self {
        self.sep().i(n);
        self
    }

    /// `true` or `false`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.sep().bool(v);
        self
    }

    /// `null`.
    pub fn null(&mut self) -> &mut Self {
        self.sep().b(b"null");
        self
    }

    /// A string, or `null` when `None`.
    pub fn opt_str(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(b) => self.str(b),
            None => self.null(),
        }
    }

    /// The line's end, after the top-level value.
    pub fn nl(&mut self) {
        self.o.nl();
    }
}

/// Writes a JSON string literal, escaping as needed. Input is bytes because
/// some strings come from outside (paths, task names), and a Linux path
/// need not be UTF-8. UTF-8 passes through; control characters are written
/// as `\u00XX`; a byte that is not part of a UTF-8 sequence (always
/// 0x80-0xff) is written as the lone surrogate `\udcXX`, PEP 383's
/// "surrogateescape", so the exact bytes can be recovered (in Python:
/// `os.fsencode(json.loads(...))`) and no byte is mistaken for a Latin-1
/// character.
pub fn escape(o: &mut Out, bytes: &[u8]) {
    o.b(b"\"");
    escape_body(o, bytes);
    o.b(b"\"");
}

/// What [`escape`] writes between the quotes.
fn escape_body(o: &mut Out, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for &c in chunk.valid().as_bytes() {
            match c {
                b'"' => o.b(b"\\\""),
                b'\\' => o.b(b"\\\\"),
                0..=0x1f | 0x7f => o.b(b"\\u00").b(&crate::codec::hex_pair(c)),
                _ => o.b(&[c]),
            };
        }
        for &c in chunk.invalid() {
            o.b(b"\\udc").b(&crate::codec::hex_pair(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(b: &[u8]) -> Vec<u8> {
        let mut o = Out::to(None);
        escape(&mut o, b);
        o.buffered().to_vec()
    }

    #[test]
    fn json_strings_are_always_valid_json() {
        assert_eq!(js(b"a\"b\\c"), br#""a\"b\\c""#);
        assert_eq!(js("café".as_bytes()), "\"café\"".as_bytes());
        assert_eq!(js(b"\x1b[0m\n"), br#""\u001b[0m\u000a""#);
        // Not UTF-8: each stray byte as a lone surrogate, UTF-8 around it
        // untouched, so "\xff" and "ÿ" stay apart.
        assert_eq!(js(b"bad \xff"), br#""bad \udcff""#);
        assert_eq!(js("ÿ".as_bytes()), "\"ÿ\"".as_bytes());
        assert_eq!(js(b"\xc3\xa9\xc3/\x80"), "\"é\\udcc3/\\udc80\"".as_bytes());
    }

    #[test]
    fn commas_go_between_members_and_elements_only() {
        let mut o = Out::to(None);
        let mut j = Json::new(&mut o);
        j.obj()
            .key("a")
            .arr()
            .end_arr()
            .key("b")
            .arr()
            .u(1)
            .obj()
            .end_obj()
            .str(b"x");
        j.end_arr()
            .key("c")
            .obj()
            .key("d")
            .null()
            .end_obj()
            .key("e")
            .bool(true)
            .end_obj();
        assert_eq!(
            o.buffered(),
            br#"{"a":[],"b":[1,{},"x"],"c":{"d":null},"e":true}"#
        );
    }
}
