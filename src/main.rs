//! The `klpctl` executable: a `no_std`, `no_main` entry point over the library.
//!
//! musl's startup code calls `main`; everything else lives in the library so
//! that it can be unit-tested on the host with std.
#![no_std]
#![no_main]

// musl's libc.a provides the C runtime start-up and memcpy & co.
#[link(name = "c", kind = "static")]
unsafe extern "C" {}

/// C entry point called by musl's `__libc_start_main`.
#[unsafe(no_mangle)]
extern "C" fn main(argc: i32, argv: *const *const u8) -> i32 {
    // SAFETY: argc and argv come straight from the C runtime, which guarantees
    // argv[0..argc] are valid NUL-terminated strings that live until exit.
    let args = unsafe { klpctl::sys::args(argc, argv) };
    klpctl::cli::run(&args)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // A panic is a bug; keep formatting machinery out of the image and exit
    // with the documented internal-error code.
    klpctl::sys::die(b"klpctl: internal error (panic)\n")
}
