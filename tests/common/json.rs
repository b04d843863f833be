//! A strict JSON reader for checking klpctl's `--json` output.

/// A JSON value, for checking klpctl's `--json` output.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as written.
    Num(String),
    /// A string, unescaped.
    Str(String),
    /// A string of bytes that are not UTF-8, written by klpctl with lone
    /// surrogates `\udc80`-`\udcff` for the bytes 0x80-0xff that are not
    /// part of a UTF-8 sequence (PEP 383 "surrogateescape"), unescaped back
    /// to those bytes.
    Bytes(Vec<u8>),
    /// An array.
    Arr(Vec<Json>),
    /// An object, members in order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses one JSON document; panics (failing the test) on anything that
    /// is not strictly valid JSON, including duplicate object keys.
    pub fn parse(text: &str) -> Json {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value(0);
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing bytes after JSON in {text:?}");
        v
    }

    /// An object member; panics if absent.
    #[track_caller]
    pub fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(m) => {
                &m.iter()
                    .find(|(k, _)| k == key)
                    .unwrap_or_else(|| panic!("no key {key:?} in {self:?}"))
                    .1
            }
            _ => panic!("not an object: {self:?}"),
        }
    }

    /// The member names of an object, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
            _ => panic!("not an object: {self:?}"),
        }
    }

    /// A string value.
    #[track_caller]
    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }

    /// The bytes of a string value, UTF-8 or not.
    #[track_caller]
    pub fn raw(&self) -> &[u8] {
        match self {
            Json::Str(s) => s.as_bytes(),
            Json::Bytes(b) => b,
            _ => panic!("not a string: {self:?}"),
        }
    }

    /// An unsigned integer value.
    #[track_caller]
    pub fn u64(&self) -> u64 {
        match self {
            Json::Num(n) => n.parse().unwrap_or_else(|_| panic!("not a u64: {n}")),
            _ => panic!("not a number: {self:?}"),
        }
    }

    /// A boolean value.
    #[track_caller]
    pub fn bool(&self) -> bool {
        match self {
            Json::Bool(b) => *b,
            _ => panic!("not a bool: {self:?}"),
        }
    }

    /// An array value.
    #[track_caller]
    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array: {self:?}"),
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| b" \t\r\n".contains(c)) {
            self.i += 1;
        }
    }

    fn peek(&self) -> u8 {
        *self
            .s
            .get(self.i)
            .unwrap_or_else(|| panic!("JSON ends early"))
    }

    fn eat(&mut self, lit: &str) {
        assert!(
            self.s[self.i..].starts_with(lit.as_bytes()),
            "expected {lit:?} at {}",
            self.i
        );
        self.i += lit.len();
    }

    fn value(&mut self, depth: usize) -> Json {
        assert!(depth < 64, "JSON nested too deeply");
        self.ws();
        match self.peek() {
            b'{' => {
                self.i += 1;
                let mut m: Vec<(String, Json)> = Vec::new();
                self.ws();
                if self.peek() == b'}' {
                    self.i += 1;
                    return Json::Obj(m);
                }
                loop {
                    self.ws();
                    let (k, raw) = self.string_bytes();
                    assert!(!raw, "object key with escaped bytes");
                    let k = String::from_utf8(k).expect("JSON key is UTF-8");
                    assert!(m.iter().all(|(x, _)| *x != k), "duplicate JSON key {k:?}");
                    self.ws();
                    self.eat(":");
                    let v = self.value(depth + 1);
                    m.push((k, v));
                    self.ws();
                    match self.peek() {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Json::Obj(m);
                        }
                        c => panic!("unexpected {:?} in object", c as char),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.peek() == b']' {
                    self.i += 1;
                    return Json::Arr(a);
                }
                loop {
                    a.push(self.value(depth + 1));
                    self.ws();
                    match self.peek() {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Json::Arr(a);
                        }
                        c => panic!("unexpected {:?} in array", c as char),
                    }
                }
            }
            b'"' => match self.string_bytes() {
                (b, true) => Json::Bytes(b),
                (b, false) => Json::Str(String::from_utf8(b).expect("JSON string is UTF-8")),
            },
            b't' => {
                self.eat("true");
                Json::Bool(true)
            }
            b'f' => {
                self.eat("false");
                Json::Bool(false)
            }
            b'n' => {
                self.eat("null");
                Json::Null
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.i += 1;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b".eE+-".contains(c))
                {
                    self.i += 1;
                }
                Json::Num(String::from_utf8(self.s[start..self.i].to_vec()).unwrap())
            }
            c => panic!("unexpected {:?} in JSON", c as char),
        }
    }

    /// A string's bytes, and whether it carried escaped non-UTF-8 bytes.
    fn string_bytes(&mut self) -> (Vec<u8>, bool) {
        self.eat("\"");
        let mut out = Vec::new();
        let mut raw = false;
        loop {
            let c = self.peek();
            self.i += 1;
            match c {
                b'"' => {
                    if !raw {
                        std::str::from_utf8(&out).expect("JSON string is UTF-8");
                    }
                    return (out, raw);
                }
                b'\\' => {
                    let e = self.peek();
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let h = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
                            let cp = u32::from_str_radix(h, 16).expect("\\u escape");
                            self.i += 4;
                            if (0xdc80..=0xdcff).contains(&cp) {
                                out.push((cp - 0xdc00) as u8);
                                raw = true;
                            } else {
                                let ch = char::from_u32(cp)
                                    .expect("no surrogates in klpctl output but \\udc80-\\udcff");
                                out.extend_from_slice(ch.to_string().as_bytes());
                            }
                        }
                        _ => panic!("bad escape \\{}", e as char),
                    }
                }
                0..=0x1f => panic!("raw control character in JSON string"),
                _ => out.push(c),
            }
        }
    }
}
