//! Helpers for the host integration tests in `tests/cli/`, by kind:
//!
//! - [`runner`]: the binary under test, private temporary directories, a
//!   process runner that refuses to mistake a signal for an exit code, and
//!   snapshots that show a refused command changed nothing;
//! - [`fixtures`]: std-only stand-ins for what the tests need to build and
//!   inspect inputs (the standard module, the bundle layout, signify files,
//!   base64, sha256sum);
//! - [`json`]: a strict JSON reader for `--json` output;
//! - [`ko`]: the fake kernel module builder, shared with the library's unit
//!   tests and the format vectors;
//! - [`fakekernel`]: a fake machine (mount namespace and a ptrace stand-in
//!   for the module loader) for the kernel commands' scenarios.

pub mod fakekernel;
pub mod fixtures;
pub mod json;
pub mod ko;
pub mod runner;

pub use fixtures::*;
pub use json::*;
pub use ko::*;
pub use runner::*;
