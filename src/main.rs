//! The `klpctl` executable.
//!
//! On musl (the shipped, static build) this is a `no_std`, `no_main` entry
//! point: musl's startup code calls `main`. Elsewhere (a developer's glibc
//! host, and the host build cargo makes for integration tests) it is an
//! ordinary std program around the same library, so `cargo build` and
//! `cargo test` work anywhere; the tests still run the musl binary.
#![cfg_attr(target_env = "musl", no_std, no_main)]

#[cfg(target_env = "musl")]
mod entry {
    // musl's libc.a provides the C runtime start-up and memcpy & co.
    #[link(name = "c", kind = "static")]
    unsafe extern "C" {}

    /// C entry point called by musl's `__libc_start_main`.
    #[unsafe(no_mangle)]
    extern "C" fn main(argc: i32, argv: *const *const u8) -> i32 {
        // SAFETY: argc and argv come straight from the C runtime, which
        // guarantees argv[0..argc] are valid NUL-terminated strings that
        // live until exit.
        let args = unsafe { klpctl::sys::args(argc, argv) };
        klpctl::cli::run(&args)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        // A panic is a bug; keep formatting machinery out of the image and
        // exit with the documented internal-error code.
        klpctl::sys::die(b"klpctl: internal error (panic)\n")
    }
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
