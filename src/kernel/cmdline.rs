//! The kernel command line read the way the kernel reads it: split into
//! `param[=value]` arguments with its quoting rules, and booleans parsed as
//! its `kstrtobool` parses them. Written from the behaviour of the kernel's
//! `next_arg`, `parse_args` and `kstrtobool`, so a switch means here what
//! it would mean to the kernel.
#![forbid(unsafe_code)]

/// Whitespace as the kernel's `isspace` sees it: tab, newline, vertical
/// tab, form feed, carriage return, space, and 0xA0 (its ctype table is
/// Latin-1, where 0xA0 is the no-break space).
fn is_space(c: u8) -> bool {
    matches!(c, b'\t'..=b'\r' | b' ' | 0xa0)
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| is_space(c)).count();
    &s[n..]
}

/// The arguments of a kernel command line, in order, as `(param, value)`;
/// the value is `None` when the argument has no `=`. Rules:
/// - arguments are separated by whitespace outside double quotes;
/// - an argument may start with `"`, and then the quote closing it at its
///   end is dropped (`"a=b c"` is `a` = `b c`);
/// - a value may start with `"`, and then that quote and one at the very
///   end of the argument are dropped (`a="b c"` is `a` = `b c`);
/// - the first `=` after the argument's first byte splits it;
/// - a bare `--` ends the kernel's arguments: what follows is init's.
pub struct Args<'a> {
    rest: &'a [u8],
}

impl<'a> Args<'a> {
    /// The arguments of `line`.
    pub fn new(line: &'a [u8]) -> Args<'a> {
        Args {
            rest: skip_spaces(line),
        }
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (arg, rest) = split_one(self.rest);
        self.rest = skip_spaces(rest);
        if arg == (b"--" as &[u8], None) {
            self.rest = b"";
            return None;
        }
        Some(arg)
    }
}

/// One argument off the front of `s` (which starts with a non-space), and
/// what follows it.
#[allow(clippy::type_complexity)]
fn split_one(s: &[u8]) -> ((&[u8], Option<&[u8]>), &[u8]) {
    let quoted = s.first() == Some(&b'"');
    let s = if quoted { &s[1..] } else { s };
    let mut in_quote = quoted;
    // The kernel keeps the split as an index where 0 means "none yet", so
    // an `=` as the very first byte does not split.
    let mut equals = 0;
    let mut end = 0;
    while end < s.len() && (in_quote || !is_space(s[end])) {
        if equals == 0 && s[end] == b'=' {
            equals = end;
        }
        if s[end] == b'"' {
            in_quote = !in_quote;
        }
        end += 1;
    }
    let rest = s.get(end + 1..).unwrap_or(b"");
    let ends_in_quote = end > 0 && s[end - 1] == b'"';
    if equals == 0 {
        let stop = if quoted && ends_in_quote {
            end - 1
        } else {
            end
        };
        return ((&s[..stop], None), rest);
    }
    // A value opened by a quote (or an argument opened by one) loses the
    // quote at its very end.
    let mut start = equals + 1;
    let mut strip = quoted;
    // (A value that is empty ends at the space or the end of the line,
    // never at a quote.)
    if start < end && s[start] == b'"' {
        start += 1;
        strip = true;
    }
    let stop = if strip && ends_in_quote { end - 1 } else { end };
    let val = s.get(start..stop.max(start)).unwrap_or(b"");
    ((&s[..equals], Some(val)), rest)
}

/// A boolean as every kernel klpctl supports (6.1 to 7.x) reads it with
/// its `kstrtobool`, from the first one or two bytes: `1`, `y`, `t`, `on`
/// (any case) are true; `0`, `n`, `f`, `d`, `of` (any case) are false;
/// anything else, the empty string included, is invalid (`None`). So
/// `yes`, `true` and `no`, `false`, `off` work, and so does `00`.
///
/// Kernels before 6.17 know only `YyTt1NnFf0` and `on`/`off`; 6.17 added
/// `e` (enabled) as true and `d` (disabled) as false. A value that a
/// supported kernel would reject never turns anything on, so `e...` is
/// invalid here; `d...` is false on the newer kernels and invalid on the
/// older ones, so it is off either way.
pub fn strtobool(v: &[u8]) -> Option<bool> {
    let first = v.first().map(u8::to_ascii_lowercase);
    let second = v.get(1).map(u8::to_ascii_lowercase);
    match (first?, second) {
        (b'1' | b'y' | b't', _) => Some(true),
        (b'0' | b'n' | b'f' | b'd', _) => Some(false),
        (b'o', Some(b'n')) => Some(true),
        (b'o', Some(b'f')) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Arg<'a> = (&'a [u8], Option<&'a [u8]>);

    fn args(line: &str) -> Vec<(String, Option<String>)> {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Args::new(line.as_bytes())
            .map(|(p, v): Arg| (s(p), v.map(s)))
            .collect()
    }

    fn a(p: &str, v: Option<&str>) -> (String, Option<String>) {
        (p.to_string(), v.map(str::to_string))
    }

    #[test]
    fn plain_arguments_split_on_whitespace() {
        assert_eq!(
            args("  ro  quiet\tx=1\n"),
            [a("ro", None), a("quiet", None), a("x", Some("1"))]
        );
        // Negative: a space inside an unquoted value still splits it.
        assert_eq!(args("x=a b"), [a("x", Some("a")), a("b", None)]);
    }

    #[test]
    fn every_kernel_space_separates() {
        for sp in [b'\t', b'\n', 0x0b, 0x0c, b'\r', b' ', 0xa0] {
            let line = [b'a', sp, b'b'];
            assert_eq!(Args::new(&line).count(), 2, "{sp:#x}");
        }
        // Negative: other control bytes and high bytes are not spaces.
        for c in [0x01u8, 0x1f, 0x7f, 0x85, 0xff] {
            let line = [b'a', c, b'b'];
            assert_eq!(Args::new(&line).count(), 1, "{c:#x}");
        }
    }

    #[test]
    fn a_quoted_argument_loses_its_quotes() {
        assert_eq!(args("\"klpctl.enable=0\""), [a("klpctl.enable", Some("0"))]);
        assert_eq!(args("\"a=b c\" d"), [a("a", Some("b c")), a("d", None)]);
        assert_eq!(args("\"flag\""), [a("flag", None)]);
        // Negative: a quote that does not end the argument stays.
        assert_eq!(args("\"a=b\"c"), [a("a", Some("b\"c"))]);
    }

    #[test]
    fn a_quoted_value_loses_its_quotes() {
        assert_eq!(args("klpctl.enable=\"0\""), [a("klpctl.enable", Some("0"))]);
        assert_eq!(args("klpctl.skip=\"a,b\""), [a("klpctl.skip", Some("a,b"))]);
        assert_eq!(args("x=\"a b\" y"), [a("x", Some("a b")), a("y", None)]);
        assert_eq!(args("x=\""), [a("x", Some(""))]);
        // Negative: a quote after the value's first byte is kept, and a
        // value opened by a quote keeps a text after its closing quote.
        assert_eq!(args("x=a\"b\""), [a("x", Some("a\"b\""))]);
        assert_eq!(args("x=\"a b\"c"), [a("x", Some("a b\"c"))]);
    }

    #[test]
    fn switches_inside_another_parameters_quotes_are_its_value() {
        assert_eq!(
            args("dyndbg=\"x klpctl.enable=1\" klpctl.enable=0"),
            [
                a("dyndbg", Some("x klpctl.enable=1")),
                a("klpctl.enable", Some("0"))
            ]
        );
        // An unclosed quote runs to the end of the line.
        assert_eq!(
            args("a=\"x klpctl.enable=0"),
            [a("a", Some("x klpctl.enable=0"))]
        );
        // Negative: once the quote closes, the next argument is one.
        assert_eq!(
            args("a=\"x\" klpctl.enable=0"),
            [a("a", Some("x")), a("klpctl.enable", Some("0"))]
        );
    }

    #[test]
    fn the_first_equals_splits_but_not_at_the_first_byte() {
        assert_eq!(args("a=b=c"), [a("a", Some("b=c"))]);
        assert_eq!(args("=x"), [a("=x", None)]);
        assert_eq!(args("=x=y"), [a("=x", Some("y"))]);
        assert_eq!(args("a="), [a("a", Some(""))]);
        // Negative: no `=` means no value at all, not an empty one.
        assert_eq!(args("a"), [a("a", None)]);
    }

    #[test]
    fn a_bare_double_dash_ends_the_kernels_arguments() {
        assert_eq!(args("ro -- klpctl.enable=0"), [a("ro", None)]);
        assert_eq!(args("ro \"--\" klpctl.enable=0"), [a("ro", None)]);
        // Negative: `--` with a value, or inside a longer word, does not.
        assert_eq!(args("--=1 x--"), [a("--", Some("1")), a("x--", None)]);
        assert_eq!(
            args("ro --x y"),
            [a("ro", None), a("--x", None), a("y", None)]
        );
    }

    #[test]
    fn empty_and_quote_only_lines() {
        assert!(args("").is_empty());
        assert!(args(" \n").is_empty());
        assert_eq!(args("\""), [a("", None)]);
        assert_eq!(args("\"\" x"), [a("", None), a("x", None)]);
    }

    #[test]
    fn strtobool_reads_what_the_kernel_reads() {
        for v in [
            "1", "y", "Y", "yes", "t", "true", "T", "on", "ON", "oN", "1x",
        ] {
            assert_eq!(strtobool(v.as_bytes()), Some(true), "{v}");
        }
        for v in [
            "0", "00", "n", "N", "no", "f", "false", "F", "d", "disable", "off", "OFF", "of",
        ] {
            assert_eq!(strtobool(v.as_bytes()), Some(false), "{v}");
        }
        // Negative: everything else is invalid, the empty value too.
        for v in ["", "o", "ox", "2", "-1", "maybe", " 0", "\"0\"", "x1"] {
            assert_eq!(strtobool(v.as_bytes()), None, "{v}");
        }
        // True only on 6.17 and later, invalid before: never on.
        for v in ["e", "E", "enable", "Enabled", "ENABLE"] {
            assert_eq!(strtobool(v.as_bytes()), None, "{v}");
        }
    }

    #[test]
    fn never_panics_on_any_short_line() {
        // Every line of up to 4 bytes over an alphabet of the bytes that
        // matter: the splitter must end, never panic, and only give back
        // arguments free of unquoted spaces.
        let alphabet = b" \"=-ax\t\xa0";
        let mut line = Vec::new();
        for n in 0..=4u32 {
            for mut k in 0..alphabet.len().pow(n) {
                line.clear();
                for _ in 0..n {
                    line.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                let mut count = 0;
                for (p, v) in Args::new(&line) {
                    assert!(p.len() + v.map_or(0, <[u8]>::len) <= line.len());
                    count += 1;
                }
                assert!(count <= line.len());
            }
        }
    }
}
