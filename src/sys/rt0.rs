//! The static build's own process start-up, the C memory functions the
//! compiler emits calls to, and (aarch64) the `getauxval` a dependency
//! calls, so that no C library is linked at all (docs/architecture.md,
//! "Entry point").
//!
//! The memory functions are written in assembly: the same loops in Rust
//! could be recognised by the optimiser as a copy or a fill and compiled
//! back into a call to the very function being defined. They are the plain
//! byte-at-a-time versions: klpctl copies headers, names and small records,
//! and hashes bundles in place, so speed does not matter here.

use core::ffi::c_char;
#[cfg(target_arch = "aarch64")]
use core::sync::atomic::{AtomicPtr, Ordering};

unsafe extern "C" {
    /// klpctl's C-style entry point, defined in `main.rs`.
    fn main(argc: i32, argv: *const *const c_char) -> i32;
}

/// Runs `main` and ends the process with its status. `_start` calls it
/// with the stack pointer the kernel started the process with.
///
/// # Safety
/// `sp` must be that initial stack pointer: it points at argc, followed by
/// the argv pointers, a null, the environment and the auxiliary vector.
unsafe extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: per the contract, sp points at argc and the argv array
    // follows it, all within the initial stack, which lives (unchanged:
    // nothing writes above the stack pointer) until the process exits.
    let (argc, argv) = unsafe { (*sp, sp.add(1).cast::<*const c_char>()) };
    #[cfg(target_arch = "aarch64")]
    find_auxv(argv.cast(), argc);
    // SAFETY: argv[0..argc] are pointers to NUL-terminated strings the
    // kernel copied onto the initial stack, valid for the whole process,
    // which is what `main` needs. argc fits an i32: the kernel caps it far
    // lower (MAX_ARG_STRINGS).
    let status = unsafe { main(argc as i32, argv) };
    super::exit(status)
}

/// The auxiliary vector, found at start-up, for [`getauxval`].
#[cfg(target_arch = "aarch64")]
static AUXV: AtomicPtr<usize> = AtomicPtr::new(core::ptr::null_mut());

/// Finds the auxiliary vector past the end of the environment, which
/// itself follows argv's terminating null.
#[cfg(target_arch = "aarch64")]
fn find_auxv(argv: *const usize, argc: usize) {
    // SAFETY: the initial stack holds argv[0..argc], a null, then envp
    // entries up to a null, then the auxiliary vector: every pointer
    // formed here stays inside that layout, as the walk stops at the null.
    unsafe {
        let mut p = argv.add(argc + 1);
        while *p != 0 {
            p = p.add(1);
        }
        AUXV.store(p.add(1).cast_mut(), Ordering::Relaxed);
    }
}

/// C's `getauxval`: the value of auxiliary vector entry `key`, 0 if there
/// is none. The sha2 crate asks it (through `cpufeatures`) whether the CPU
/// has the SHA-256 instructions.
#[cfg(target_arch = "aarch64")]
#[unsafe(no_mangle)]
extern "C" fn getauxval(key: core::ffi::c_ulong) -> core::ffi::c_ulong {
    let mut p = AUXV.load(Ordering::Relaxed).cast_const();
    if p.is_null() {
        return 0;
    }
    loop {
        // SAFETY: p walks the (key, value) pairs of the auxiliary vector
        // that `find_auxv` found, which live on the initial stack for the
        // whole process; the walk ends at its AT_NULL (key 0) entry.
        let (k, v) = unsafe { (*p, *p.add(1)) };
        if k == 0 {
            return 0;
        }
        if k as core::ffi::c_ulong == key {
            return v as core::ffi::c_ulong;
        }
        // SAFETY: as above: k was not AT_NULL, so another pair follows.
        p = unsafe { p.add(2) };
    }
}

// The ELF entry point. The kernel starts the process with the stack
// pointer 16-byte aligned, pointing at argc (both ABIs promise that, and
// aarch64 cannot run otherwise); it is handed on as `start`'s argument.
// x86_64 aligns once more for safety, and the `call` leaves the stack as
// the ABI wants at a function's entry (8 bytes below a 16-byte boundary).
// The frame pointer and (aarch64) link register are zeroed so that a
// debugger's backtrace ends here. `start` never returns.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text._start, \"ax\", %progbits",
    ".globl _start",
    ".type _start, %function",
    "_start:",
    "    xor ebp, ebp",
    "    mov rdi, rsp",
    "    and rsp, -16",
    "    call {start}",
    "    ud2",
    ".size _start, . - _start",
    ".popsection",
    start = sym start,
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".pushsection .text._start, \"ax\", %progbits",
    ".globl _start",
    ".type _start, %function",
    "_start:",
    "    mov x29, #0",
    "    mov x30, #0",
    "    mov x0, sp",
    "    bl {start}",
    "    brk #1",
    ".size _start, . - _start",
    ".popsection",
    start = sym start,
);

// memcpy, memmove, memset, memcmp (and bcmp, its equal/unequal form) and
// strlen, with their C signatures; x86_64 (System V: arguments in rdi, rsi,
// rdx; result in rax).
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text.klpctl_mem, \"ax\", %progbits",
    // void *memcpy(void *dst, const void *src, size_t n)
    ".globl memcpy",
    ".type memcpy, %function",
    "memcpy:",
    "    mov rax, rdi",
    "    mov rcx, rdx",
    "    rep movsb",
    "    ret",
    ".size memcpy, . - memcpy",
    // void *memmove(void *dst, const void *src, size_t n): copying forwards
    // is safe unless dst lies inside [src, src + n), that is unless
    // dst - src (unsigned) < n; then copy backwards, from the last byte.
    ".globl memmove",
    ".type memmove, %function",
    "memmove:",
    "    mov rax, rdi",
    "    mov rcx, rdx",
    "    mov r8, rdi",
    "    sub r8, rsi",
    "    cmp r8, rdx",
    "    jb 2f",
    "    rep movsb",
    "    ret",
    "2:  lea rsi, [rsi + rdx - 1]",
    "    lea rdi, [rdi + rdx - 1]",
    "    std",
    "    rep movsb",
    "    cld",
    "    ret",
    ".size memmove, . - memmove",
    // void *memset(void *dst, int c, size_t n)
    ".globl memset",
    ".type memset, %function",
    "memset:",
    "    mov r8, rdi",
    "    mov eax, esi",
    "    mov rcx, rdx",
    "    rep stosb",
    "    mov rax, r8",
    "    ret",
    ".size memset, . - memset",
    // int memcmp(const void *a, const void *b, size_t n): the difference
    // of the first unequal bytes, as unsigned char; 0 if none.
    ".globl memcmp",
    ".type memcmp, %function",
    ".globl bcmp",
    ".type bcmp, %function",
    "memcmp:",
    "bcmp:",
    "    xor eax, eax",
    "    test rdx, rdx",
    "    jz 3f",
    "2:  movzx eax, byte ptr [rdi]",
    "    movzx ecx, byte ptr [rsi]",
    "    sub eax, ecx",
    "    jnz 3f",
    "    inc rdi",
    "    inc rsi",
    "    dec rdx",
    "    jnz 2b",
    "3:  ret",
    ".size memcmp, . - memcmp",
    ".size bcmp, . - bcmp",
    // size_t strlen(const char *s)
    ".globl strlen",
    ".type strlen, %function",
    "strlen:",
    "    mov rax, rdi",
    "2:  cmp byte ptr [rax], 0",
    "    je 3f",
    "    inc rax",
    "    jmp 2b",
    "3:  sub rax, rdi",
    "    ret",
    ".size strlen, . - strlen",
    ".popsection",
);

// The same functions for aarch64 (AAPCS64: arguments in x0, x1, x2; result
// in x0).
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".pushsection .text.klpctl_mem, \"ax\", %progbits",
    // void *memcpy(void *dst, const void *src, size_t n)
    ".globl memcpy",
    ".type memcpy, %function",
    "memcpy:",
    "    mov x3, x0",
    "    cbz x2, 2f",
    "1:  ldrb w4, [x1], #1",
    "    strb w4, [x3], #1",
    "    subs x2, x2, #1",
    "    b.ne 1b",
    "2:  ret",
    ".size memcpy, . - memcpy",
    // void *memmove(void *dst, const void *src, size_t n): forwards (as
    // memcpy) unless dst - src (unsigned) < n, then from the last byte
    // down.
    ".globl memmove",
    ".type memmove, %function",
    "memmove:",
    "    sub x3, x0, x1",
    "    cmp x3, x2",
    "    b.hs memcpy",
    "1:  subs x2, x2, #1",
    "    ldrb w4, [x1, x2]",
    "    strb w4, [x0, x2]",
    "    b.ne 1b",
    "    ret",
    ".size memmove, . - memmove",
    // void *memset(void *dst, int c, size_t n)
    ".globl memset",
    ".type memset, %function",
    "memset:",
    "    mov x3, x0",
    "    cbz x2, 2f",
    "1:  strb w1, [x3], #1",
    "    subs x2, x2, #1",
    "    b.ne 1b",
    "2:  ret",
    ".size memset, . - memset",
    // int memcmp(const void *a, const void *b, size_t n)
    ".globl memcmp",
    ".type memcmp, %function",
    ".globl bcmp",
    ".type bcmp, %function",
    "memcmp:",
    "bcmp:",
    "    mov w3, #0",
    "    cbz x2, 2f",
    "1:  ldrb w3, [x0], #1",
    "    ldrb w4, [x1], #1",
    "    subs w3, w3, w4",
    "    b.ne 2f",
    "    subs x2, x2, #1",
    "    b.ne 1b",
    "2:  mov w0, w3",
    "    ret",
    ".size memcmp, . - memcmp",
    ".size bcmp, . - bcmp",
    // size_t strlen(const char *s)
    ".globl strlen",
    ".type strlen, %function",
    "strlen:",
    "    mov x1, x0",
    "1:  ldrb w2, [x1], #1",
    "    cbnz w2, 1b",
    "    sub x0, x1, x0",
    "    sub x0, x0, #1",
    "    ret",
    ".size strlen, . - strlen",
    ".popsection",
);
