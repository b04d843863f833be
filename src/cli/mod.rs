//! The command line: parsing arguments ([`args`]), the trust commands
//! ([`verify`], and [`author`] in the full build), the kernel commands
//! ([`kernel`]), and turning results into human text or JSON
//! ([`render`]). Nothing below this layer prints, except the keyring's
//! warnings about unusable key files.
#![forbid(unsafe_code)]

pub mod args;
#[cfg(feature = "authoring")]
pub mod author;
pub mod kernel;
pub mod render;
pub mod verify;
pub mod vex;

use crate::error::Error;
use crate::out::Out;
use args::{Args, Cli, Res, unknown};
use core::ffi::CStr;

const HELP_HEAD: &str = "\
klpctl - verify signed livepatch bundles and apply them to the running kernel

usage:
";

/// The authoring commands; a device build has none and does not list them.
#[cfg(feature = "authoring")]
const HELP_AUTHORING: &str = "  klpctl keygen -p KEY.pub -s KEY.sec [-c COMMENT]
  klpctl pack MODULE.ko -o BUNDLE --stream S --version N [--kernel-release R]
              [--kernel-build-id HEX | --kernel-notes FILE] [--arch A] [--replace]
              [--cve ID]... [--product PURL|CPE]... [--description TEXT]
              [--created SECS]
              (-s KEY.sec... | --unsigned)
  klpctl manifest BUNDLE           write the exact signed manifest bytes to stdout
  klpctl attach BUNDLE SIGFILE     add a signify signature made over those bytes
  klpctl sign BUNDLE -s KEY.sec [-x SIGFILE]   add a signature (co-sign)
  klpctl info BUNDLE [--json]      show the manifest without verifying it
";
#[cfg(not(feature = "authoring"))]
const HELP_AUTHORING: &str = "  (device build: no keygen, pack, manifest, attach, sign or info)\n";

const HELP_TAIL: &str = "  klpctl verify BUNDLE [--keyring DIR] [--json]
  klpctl apply BUNDLE... [--timeout SECS] [--keyring DIR] [--allow-downgrade]
               [--state-dir DIR] [--no-wait] [--json]
  klpctl apply --dir DIR [same options]
  klpctl install BUNDLE... --dir DIR [same options]
               stores each in DIR as NAME@RELEASE[@BUILDID].klp (written
               before it is applied) and removes versions of its stream
               older than the two newest cumulative ones
  klpctl disable NAME [--timeout SECS] [--no-wait] [--json]
  klpctl uninstall NAME --dir DIR [same options as disable]
  klpctl status [--state-dir DIR] [--json]
  klpctl vex [--no-wait]           OpenVEX of the CVEs live patches fix now
  klpctl confirm --state-dir DIR [--after SECS]
  klpctl unquarantine NAME --state-dir DIR
  klpctl --help | --version

exit codes: 0 ok, 1 internal/I-O error, 2 usage, 3 bundle rejected,
4 not for this kernel, 5 refused by policy, 6 kernel refused the module,
7 transition timed out and reverted, 8 timed out and not reverted,
9 another klpctl holds the lock, 10 applied but state not saved
";

fn help(o: &mut Out) {
    o.s(HELP_HEAD).s(HELP_AUTHORING).s(HELP_TAIL);
}

/// Runs klpctl with `args` (including argv\[0\]) and returns the exit code.
pub fn run(args: &[&'static CStr]) -> i32 {
    let mut cli = Cli {
        ctx: heapless::Vec::new(),
    };
    match dispatch(&mut cli, args.get(1..).unwrap_or(&[])) {
        Ok(()) => 0,
        Err(f) => {
            render::report(&cli.ctx, &f);
            f.error.exit_code() as i32
        }
    }
}

fn dispatch(cli: &mut Cli, argv: &[&'static CStr]) -> Res {
    let mut a = Args::new(argv);
    let Some(cmd) = a.arg() else {
        help(&mut Out::stderr());
        return Err(Error::Usage(msg!("no command given")).into());
    };
    // By position in one table: smaller than a match on byte strings.
    const CMDS: &[&[u8]] = &[
        b"--help",
        b"-h",
        b"help",
        b"--version",
        b"-V",
        b"keygen",
        b"pack",
        b"manifest",
        b"attach",
        b"sign",
        b"info",
        b"verify",
        b"apply",
        b"install",
        b"disable",
        b"uninstall",
        b"status",
        b"confirm",
        b"unquarantine",
        b"vex",
    ];
    match CMDS.iter().position(|c| *c == cmd) {
        Some(0..=2) => {
            help(&mut Out::stdout());
            Ok(())
        }
        Some(3 | 4) => {
            Out::stdout().s("klpctl ").s(env!("CARGO_PKG_VERSION")).nl();
            Ok(())
        }
        #[cfg(feature = "authoring")]
        Some(5) => Ok(author::keygen(cli, &mut a)?),
        #[cfg(feature = "authoring")]
        Some(6) => Ok(author::pack(cli, &mut a)?),
        #[cfg(feature = "authoring")]
        Some(7) => Ok(author::manifest_cmd(cli, &mut a)?),
        #[cfg(feature = "authoring")]
        Some(8) => Ok(author::attach(cli, &mut a)?),
        #[cfg(feature = "authoring")]
        Some(9) => Ok(author::sign(cli, &mut a)?),
        #[cfg(feature = "authoring")]
        Some(10) => verify::info(cli, &mut a),
        #[cfg(not(feature = "authoring"))]
        Some(5..=10) => Err(Error::Usage(
            msg!("this klpctl is a device build without the authoring commands (keygen, pack, manifest, attach, sign, info)"),
        )
        .into()),
        Some(11) => verify::verify(cli, &mut a),
        Some(12) => kernel::apply(cli, &mut a, false),
        Some(13) => kernel::apply(cli, &mut a, true),
        Some(14) => kernel::disable(cli, &mut a, false),
        Some(15) => kernel::disable(cli, &mut a, true),
        Some(16) => kernel::status(cli, &mut a),
        Some(17) => kernel::confirm(cli, &mut a),
        Some(18) => kernel::unquarantine(cli, &mut a),
        Some(19) => vex::vex(cli, &mut a),
        _ => Err(unknown(cli, cmd).into()),
    }
}
