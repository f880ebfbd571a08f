//! berth-pause: the process that holds a pod sandbox's namespaces (network, IPC, UTS and,
//! when the pod shares it, PID) while the pod's containers come and go, as the
//! Kubernetes pause container does. It blocks every signal and waits for them with
//! sigtimedwait(2): SIGCHLD reaps zombies (it is PID 1 of a shared PID namespace),
//! SIGINT and SIGTERM end it, anything else is ignored. Blocked signals are queued even
//! for a namespace's init, which the kernel would otherwise drop without a handler.
//!
//! berthd's build script compiles this file alone with `rustc` (static C library, no
//! Rust standard library, panics abort) and embeds the binary; berthd turns it into
//! its internal sandbox image. Only the C library's signal and wait calls are used.

#![no_std]
#![no_main]

/// glibc's `sigset_t` (1024 bits).
#[repr(C)]
struct SigSet([u64; 16]);

const SIG_BLOCK: i32 = 0;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
const SIGCHLD: i32 = 17;
const WNOHANG: i32 = 1;

extern "C" {
    fn sigfillset(set: *mut SigSet) -> i32;
    fn sigprocmask(how: i32, set: *const SigSet, old: *mut SigSet) -> i32;
    fn sigtimedwait(set: *const SigSet, info: *mut u8, timeout: *const u8) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(code: i32) -> !;
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: _exit(2) ends the process at once; it has no preconditions.
    unsafe { _exit(2) }
}

/// The C entry point.
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let mut all = SigSet([0; 16]);
    // SAFETY: `all` is a valid, writable sigset_t of glibc's size; sigfillset and
    // sigprocmask only read and write it (and the thread's signal mask).
    let blocked = unsafe {
        sigfillset(&mut all) == 0 && sigprocmask(SIG_BLOCK, &all, core::ptr::null_mut()) == 0
    };
    if !blocked {
        return 1;
    }
    loop {
        // SAFETY: `all` is initialised; null info and timeout mean "no siginfo wanted"
        // and "wait forever", both allowed by sigtimedwait(2).
        let sig = unsafe { sigtimedwait(&all, core::ptr::null_mut(), core::ptr::null()) };
        match sig {
            SIGINT | SIGTERM => return 0,
            SIGCHLD => {
                // SAFETY: a null status pointer is allowed; WNOHANG never blocks.
                while unsafe { waitpid(-1, core::ptr::null_mut(), WNOHANG) } > 0 {}
            }
            _ => {}
        }
    }
}
