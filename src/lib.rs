//! klpctl: verify signed livepatch bundles and apply them to the running
//! kernel. See README.md for the command line and docs/bundle-format.md for
//! the file format.
//!
//! The library is `no_std` without an allocator; unit tests run on the host
//! with std.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

/// A [`sys::Msg`] of a string literal: `msg!("open bundle")`.
macro_rules! msg {
    ($s:literal) => {
        $crate::sys::Msg::new(
            const {
                match core::ffi::CStr::from_bytes_with_nul(concat!($s, "\0").as_bytes()) {
                    Ok(c) => c,
                    Err(_) => panic!("a message has no NUL inside"),
                }
            },
        )
    };
}

// Layers, lowest first (docs/architecture.md); no module imports from a
// layer above its own (tests/layers.rs checks that).
pub mod sys;

pub mod codec;
pub mod error;
pub mod rt;

pub mod files;
pub mod json;
pub mod out;

pub mod modinfo;
pub mod trust;

pub mod guard;
pub mod kernel;
pub mod state;

pub mod ops;

pub mod cli;
