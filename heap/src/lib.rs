//! Handing freed heap back to the kernel. glibc keeps what a daemon frees after a burst
//! (a hundred containers started and removed) in its per-thread arenas, so an idle
//! daemon would stay at its peak; fewer arenas and a periodic trim let it shrink back.
//! berthd and berth-supervisor both use it; it owns nothing else.

use std::time::Duration;

/// At most this many malloc arenas (glibc's default is 8 per core, each kept at its
/// high-water mark).
const ARENAS: i32 = 2;

/// Caps glibc's arenas; call before any thread starts.
pub fn limit_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets a glibc tunable; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Every `every`, returns free heap pages to the kernel (glibc's malloc_trim); a no-op
/// elsewhere. Needs a tokio runtime.
pub fn trim_periodically(every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            #[cfg(target_env = "gnu")]
            // SAFETY: malloc_trim only releases glibc's own free memory.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
}
