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
pub mod status;
pub mod verify;
pub mod vex;

use crate::error::Error;
use crate::out::Out;
use args::{Args, Cli, Res};
use core::ffi::CStr;

const HELP_HEAD: &str = "\
klpctl - verify signed livepatch bundles and apply them to the running kernel

usage: klpctl COMMAND [ARGS]
";

/// The authoring commands; a device build has none and does not list them.
#[cfg(feature = "authoring")]
const HELP_AUTHORING: &str = "  keygen -p KEY.pub -s KEY.sec [-c COMMENT]
  pack MODULE.ko -o BUNDLE --stream S --version N [--kernel-release R]
       [--kernel-build-id HEX | --kernel-notes FILE] [--arch A] [--replace]
       [--cve ID]... [--product PURL|CPE]... [--description TEXT]
       [--created SECS]
       (-s KEY.sec... | --unsigned)
  manifest BUNDLE           write the exact signed manifest bytes to stdout
  attach BUNDLE SIGFILE     add a signify signature made over those bytes
  sign BUNDLE -s KEY.sec [-x SIGFILE]   add a signature (co-sign)
  info BUNDLE [--json]      show the manifest without verifying it
";
#[cfg(not(feature = "authoring"))]
const HELP_AUTHORING: &str = "  (device build: no authoring commands)\n";

const HELP_TAIL: &str = "  verify BUNDLE [--keyring DIR] [--json]
  apply BUNDLE... [--timeout SECS] [--keyring DIR] [--allow-downgrade]
        [--state-dir DIR] [--no-wait] [--json]
  apply --dir DIR [same options]
  install BUNDLE... --dir DIR [same options]
  disable NAME [--timeout SECS] [--no-wait] [--json]
  uninstall NAME --dir DIR [same options as disable]
  status [--state-dir DIR] [--json]
  vex [--no-wait]           OpenVEX of the CVEs live patches fix now
  confirm --state-dir DIR [--after SECS]
  unquarantine NAME --state-dir DIR
  --help | --version

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
    let mut cli = Cli { reported: false };
    match dispatch(&mut cli, args.get(1..).unwrap_or(&[])) {
        // What it said is incomplete: not a success.
        Ok(()) if crate::out::stdout_lost() => {
            crate::sys::die(b"klpctl: cannot write standard output\n")
        }
        Ok(()) => 0,
        Err(f) => {
            if !cli.reported {
                render::report(f.about, &f);
            }
            f.error.exit_code() as i32
        }
    }
}

/// A command: what it does with the arguments after its name.
type Handler = fn(&mut Cli, &mut Args) -> Res;

/// Every command by name (with the authoring ones in [`AUTHORING`]).
const COMMANDS: &[(&[u8], Handler)] = &[
    (b"--help", help_cmd),
    (b"-h", help_cmd),
    (b"help", help_cmd),
    (b"--version", version),
    (b"-V", version),
    (b"verify", verify::verify),
    (b"apply", |c, a| kernel::apply(c, a, false)),
    (b"install", |c, a| kernel::apply(c, a, true)),
    (b"disable", |c, a| kernel::disable(c, a, false)),
    (b"uninstall", |c, a| kernel::disable(c, a, true)),
    (b"status", kernel::status),
    (b"confirm", kernel::confirm),
    (b"unquarantine", kernel::unquarantine),
    (b"vex", vex::vex),
];

/// The authoring commands.
#[cfg(feature = "authoring")]
const AUTHORING: &[(&[u8], Handler)] = &[
    (b"keygen", author::keygen),
    (b"pack", author::pack),
    (b"manifest", author::manifest_cmd),
    (b"attach", author::attach),
    (b"sign", author::sign),
    (b"info", verify::info),
];

/// A device build knows the authoring commands' names only to say they
/// are not in it.
#[cfg(not(feature = "authoring"))]
const AUTHORING: &[(&[u8], Handler)] = &[
    (b"keygen", device_build),
    (b"pack", device_build),
    (b"manifest", device_build),
    (b"attach", device_build),
    (b"sign", device_build),
    (b"info", device_build),
];

#[cfg(not(feature = "authoring"))]
fn device_build(_: &mut Cli, _: &mut Args) -> Res {
    Err(Error::Usage(msg!(
        "this klpctl is a device build without the authoring commands"
    ))
    .into())
}

fn help_cmd(_: &mut Cli, _: &mut Args) -> Res {
    help(&mut Out::stdout());
    Ok(())
}

fn version(_: &mut Cli, _: &mut Args) -> Res {
    Out::stdout().s("klpctl ").s(env!("CARGO_PKG_VERSION")).nl();
    Ok(())
}

fn dispatch(cli: &mut Cli, argv: &[&'static CStr]) -> Res {
    let mut a = Args::new(argv);
    let Some(cmd) = a.arg() else {
        help(&mut Out::stderr());
        return Err(Error::Usage(msg!("no command given")).into());
    };
    match COMMANDS
        .iter()
        .chain(AUTHORING)
        .find(|(name, _)| *name == cmd)
    {
        Some((_, run)) => run(cli, &mut a),
        None => Err(a.unexpected().into()),
    }
}
