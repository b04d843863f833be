//! The format vectors' module: `docs/vectors/module.ko` is exactly what the
//! shared builder in `tests/common/ko.rs` makes, and the builder writes
//! modules for the scripts that need one.

use super::*;

#[test]
fn vector_module_comes_from_the_shared_builder() {
    let path = root().join("docs/vectors/module.ko");
    let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        committed == vector_ko(),
        "{} differs from vector_ko() in tests/common/ko.rs; \
         regenerate the vectors as docs/vectors/README.md says",
        path.display()
    );
}

/// Writes a module made by `tests/common/ko.rs` to `$KLPCTL_KO_OUT`, for
/// the scripts that need one (`docs/vectors/make-vectors.py`,
/// `tests/bench.sh`, `fuzz/seed.sh`). Optional settings:
///
/// - `KLPCTL_KO_NAME` (default `klp_vector`), `KLPCTL_KO_VERMAGIC` (default
///   the vector module's), `KLPCTL_KO_MACHINE` (ELF machine, default 62);
/// - `KLPCTL_KO_PLAIN=1`: no `livepatch=Y`;
/// - `KLPCTL_KO_PAD=BYTES`: a padding section of BYTES zeros, or random
///   bytes with `KLPCTL_KO_RANDOM=1`.
///
/// With none of them set it writes `docs/vectors/module.ko`'s bytes.
/// Run: `KLPCTL_KO_OUT=PATH cargo test --test cli -- --ignored --exact
/// vectors::write_module`.
#[test]
#[ignore = "a tool, not a test: writes the module $KLPCTL_KO_OUT"]
fn write_module() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let number = |name: &str, default: u64| {
        var(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
    };
    let out = var("KLPCTL_KO_OUT").expect("set KLPCTL_KO_OUT to the file to write");
    let name = var("KLPCTL_KO_NAME").unwrap_or_else(|| VECTOR_NAME.to_owned());
    let vermagic = var("KLPCTL_KO_VERMAGIC").unwrap_or_else(|| VECTOR_VERMAGIC.to_owned());
    let machine = u16::try_from(number("KLPCTL_KO_MACHINE", EM_X86_64.into()))
        .expect("KLPCTL_KO_MACHINE fits in 16 bits");
    let livepatch = var("KLPCTL_KO_PLAIN").is_none();
    let pad = number("KLPCTL_KO_PAD", 0);
    let mut fill: Box<dyn std::io::Read> = if var("KLPCTL_KO_RANDOM").is_some() {
        Box::new(std::fs::File::open("/dev/urandom").expect("/dev/urandom"))
    } else {
        Box::new(std::io::repeat(0))
    };
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&out).unwrap_or_else(|e| panic!("{out}: {e}")),
    );
    write_ko(
        &mut f,
        &modinfo(&name, &vermagic, livepatch),
        machine,
        pad,
        &mut fill,
    )
    .and_then(|()| std::io::Write::flush(&mut f))
    .unwrap_or_else(|e| panic!("{out}: {e}"));
}
