//! Human messages never carry a terminal's control sequences from a file
//! name: every byte a terminal would act on is shown as `\xNN`.

use super::*;

#[test]
fn a_file_name_cannot_retitle_the_terminal() {
    let d = TempDir::new();
    // An OSC title sequence, a newline that would fake a second message,
    // and a byte that is not UTF-8.
    let name = "\u{1b}]0;owned\u{7}\nklpctl: all good \u{9b}.klp";
    let keys = root().join("docs/vectors/keys");
    let keys = keys.to_str().unwrap();
    let r = d.klpctl_unchanged(&["verify", name, "--keyring", keys]);
    r.code(1);
    assert_eq!(
        r.err(),
        "klpctl: \\x1b]0;owned\\x07\\x0aklpctl: all good \\xc2\\x9b.klp: cannot open bundle: ENOENT\n"
    );
    // Negative: an ordinary name is shown as it is.
    d.klpctl_unchanged(&["verify", "caf\u{e9}.klp", "--keyring", keys])
        .fails(1, "klpctl: caf\u{e9}.klp: cannot open bundle: ENOENT");
}
