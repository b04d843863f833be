//! klpctl: verify signed livepatch bundles and apply them to the running
//! kernel. See README.md for the command line and docs/bundle-format.md for
//! the file format.
//!
//! The library is `no_std` without an allocator; unit tests run on the host
//! with std.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod codec;
pub mod error;
pub mod files;
pub mod kernel;
pub mod livepatch;
pub mod modinfo;
pub mod out;
pub mod rt;
pub mod state;
pub mod sys;
pub mod trust;
