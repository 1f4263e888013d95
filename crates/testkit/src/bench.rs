//! What the sink benchmarks measure with: this thread's CPU time, which other load on a shared 2-core machine
//! disturbs far less than wall time, and the median of several rounds.

/// CPU seconds this thread has used (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; this clock always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Runs `f` `rounds` times; the median CPU seconds of one run.
pub fn median_cpu(rounds: usize, mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let t = thread_cpu();
            f();
            thread_cpu() - t
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}
