//! The QEMU test rig shared by the x86_64 kernel matrix (tests/qemu.rs) and
//! the arm64 tier (tests/qemu_arm64.rs), which include this directory as a
//! module:
//!
//! - [`cases`]: the case files of `qemu/guest/cases/`, the scenarios they
//!   run in, and the plan each guest must print;
//! - [`boot`]: one boot with `qemu/run.sh`, and the markers of its log;
//! - [`checks`]: what a boot must show to pass.

mod boot;
mod cases;
mod checks;

pub(crate) use boot::*;
pub(crate) use cases::*;
pub(crate) use checks::*;
