//! `--help`, `--version` and no command.

use super::*;

#[test]
fn help_version_and_no_command() {
    let d = TempDir::new();
    let help = d.klpctl(&["--help"]);
    help.code(0);
    assert!(
        help.out()
            .starts_with("klpctl - verify signed livepatch bundles"),
        "{}",
        help.out()
    );
    assert!(
        help.out()
            .contains("exit codes: 0 ok, 1 internal/I-O error, 2 usage, 3 bundle rejected,")
    );
    assert_eq!(help.err(), "");
    d.klpctl(&["-h"]).expect(0, help.out(), "");
    d.klpctl(&["--version"])
        .expect(0, &format!("klpctl {}\n", env!("CARGO_PKG_VERSION")), "");
    // No command: the help goes to stderr, followed by the error line.
    d.klpctl_unchanged(&[])
        .expect(2, "", &format!("{}klpctl: no command given\n", help.out()));
}
