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
        return Err(Error::Usage("no command given").into());
    };
    match cmd {
        b"--help" | b"-h" | b"help" => {
            help(&mut Out::stdout());
            Ok(())
        }
        b"--version" | b"-V" => {
            Out::stdout().s("klpctl ").s(env!("CARGO_PKG_VERSION")).nl();
            Ok(())
        }
        #[cfg(feature = "authoring")]
        b"keygen" => Ok(author::keygen(cli, &mut a)?),
        #[cfg(feature = "authoring")]
        b"pack" => Ok(author::pack(cli, &mut a)?),
        #[cfg(feature = "authoring")]
        b"manifest" => Ok(author::manifest_cmd(cli, &mut a)?),
        #[cfg(feature = "authoring")]
        b"attach" => Ok(author::attach(cli, &mut a)?),
        #[cfg(feature = "authoring")]
        b"sign" => Ok(author::sign(cli, &mut a)?),
        #[cfg(not(feature = "authoring"))]
        b"keygen" | b"pack" | b"manifest" | b"attach" | b"sign" | b"info" => Err(Error::Usage(
            "this klpctl is a device build without the authoring commands (keygen, pack, manifest, attach, sign, info)",
        )
        .into()),
        b"verify" => verify::verify(cli, &mut a),
        #[cfg(feature = "authoring")]
        b"info" => verify::info(cli, &mut a),
        b"apply" => kernel::apply(cli, &mut a, false),
        b"install" => kernel::apply(cli, &mut a, true),
        b"disable" => kernel::disable(cli, &mut a, false),
        b"uninstall" => kernel::disable(cli, &mut a, true),
        b"status" => kernel::status(cli, &mut a),
        b"vex" => vex::vex(cli, &mut a),
        b"confirm" => kernel::confirm(cli, &mut a),
        b"unquarantine" => kernel::unquarantine(cli, &mut a),
        _ => Err(unknown(cli, cmd).into()),
    }
}
