//! The `klpctl` executable.
//!
//! On musl (the shipped, static build) this is `no_std` and `no_main`: the C
//! entry point and the panic handler live in the library's `sys` module,
//! the one place with `unsafe`. Elsewhere (a developer's glibc host, and the
//! host build cargo makes for integration tests) it is an ordinary std
//! program around the same library, so `cargo build` and `cargo test` work
//! anywhere; the tests still run the musl binary.
#![cfg_attr(target_env = "musl", no_std, no_main)]
#![forbid(unsafe_code)]

// Links the library, whose `sys` module provides `main` on musl.
#[cfg(target_env = "musl")]
use klpctl as _;

#[cfg(not(target_env = "musl"))]
fn main() {
    use std::os::unix::ffi::OsStringExt;
    // Arguments with an interior NUL cannot come from execve; skip them.
    let args: Vec<&'static core::ffi::CStr> = std::env::args_os()
        .take(klpctl::sys::MAX_ARGS)
        .filter_map(|a| std::ffi::CString::new(a.into_vec()).ok())
        .map(|c| &*Box::leak(c.into_boxed_c_str()))
        .collect();
    std::process::exit(klpctl::cli::run(&args))
}
