//! The global allocator, and when it gives freed memory back to the kernel.
//!
//! Every round builds a batch of some 75 sets per node (labels, metrics, the decoded Summaries), hands it to the
//! store and the sinks, and frees it. mimalloc returns ("purges") freed pages to the kernel one second after they
//! fall empty, by default. Between rounds that is every page of the batch, and the next round faults them all in
//! again, zeroed by the kernel: at 1,000 simulated nodes those faults were about a sixth of heapster's CPU
//! (`cargo bench -p heapster --bench cluster`: 82 mCPU with the default delay, 69 without purging), while the
//! resident size between rounds only dipped for a moment before the next round took the pages back.
//!
//! So pages are kept for two resolutions: a page the next round will reuse is never purged, and memory a shrunk
//! cluster no longer needs still goes back within two rounds. Peak memory (what must be provisioned) is the
//! same either way.

use std::time::Duration;

/// glibc's malloc spent about 40 % of heapster's CPU on a 500-node cluster (many small maps built and freed per
/// round, across threads) and kept freed memory in per-thread arenas; mimalloc does both better.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (libmimalloc-sys declares the functions, not this one
/// constant): milliseconds before an empty page is purged, 0 at once, -1 never.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed pages for two rounds of `resolution` before they go back to the kernel (see the module docs).
pub fn keep_freed_pages_for_rounds_of(resolution: Duration) {
    let ms = (resolution.as_millis() * 2).min(i32::MAX as u128) as std::ffi::c_long;
    // SAFETY: sets one of mimalloc's integer options; mimalloc reads it on its next purge and allows changes at
    // any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option number is mimalloc 3's: its default there is 1,000 ms (mimalloc 2 numbered it differently,
    /// with a default of 10). A libmimalloc-sys that moved the option would fail here, not purge at odd times.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: reads an option.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000, "option {MI_OPTION_PURGE_DELAY} is not mimalloc 3's purge_delay");
        keep_freed_pages_for_rounds_of(Duration::from_secs(15));
        // SAFETY: reads an option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }, 30_000);
    }
}
