//! The `klpctl` executable: the process entry point, and nothing else.
//!
//! On musl (the shipped, static build) this is `no_std` and `no_main`, and
//! links no C library: the start-up code in `sys` calls the `main` below. Elsewhere (a developer's glibc host,
//! and the host build cargo makes for integration tests) it is an ordinary
//! std program around the same library, so `cargo build` and `cargo test`
//! work anywhere; the tests still run the musl binary.
//!
//! The library's `sys` module holds every unsafe operation. The C entry
//! point has to be exported under the unmangled name `main`, which Rust
//! 2024 spells `#[unsafe(no_mangle)]`, and it hands argv to `sys::args`:
//! those two are the only unsafe items here.
#![cfg_attr(target_env = "musl", no_std, no_main)]
#![deny(unsafe_code)]

/// The entry point of the static musl build, with C's signature, called by
/// the start-up code in `sys` (the binary is `no_main`).
#[cfg(target_env = "musl")]
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(argc: i32, argv: *const *const u8) -> i32 {
    klpctl::sys::open_std_fds();
    klpctl::sys::ignore_sigpipe();
    klpctl::sys::reserve_stack();
    // SAFETY: argc and argv come straight from the process's initial stack
    // (via `sys`), where argv[0..argc] are valid NUL-terminated strings
    // that live until exit.
    let args = unsafe { klpctl::sys::args(argc, argv) };
    klpctl::cli::run(&args)
}

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
