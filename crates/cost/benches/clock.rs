//! What measuring heapster's bill costs: one read of the thread CPU clock, one guard (two reads and an atomic
//! add), one poll of a costed future, and what that comes to per node per round.
//!
//! A node costs each round one guard for decoding its response, one for converting it, and one per poll of its
//! scrape task (about six: the jitter's timer, the permit, connecting, the response's head and body chunks):
//! eight guards is the figure printed.
//!
//! `cargo bench -p heapster-cost --bench clock`

use heapster_cost::{CostExt, Stage, process_cpu_ns, thread_cpu_ns};
use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// The median of five runs of `n` calls of `f`, in ns per call: this thread's CPU time (what the calls cost
/// heapster, system time included), which other load on a shared machine disturbs far less than wall time.
fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = thread_cpu_ns();
            for _ in 0..n {
                f();
            }
            (thread_cpu_ns() - t) as f64 / f64::from(n)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

const GUARDS_PER_NODE: f64 = 8.0;

fn main() {
    let n = 200_000;
    let thread = per_call(n, || {
        black_box(thread_cpu_ns());
    });
    let process = per_call(n, || {
        black_box(process_cpu_ns());
    });
    let stage = Stage::named("bench");
    let guard = per_call(n, || {
        let _g = black_box(stage.start());
    });
    let by_name = per_call(n, || {
        let _g = black_box(Stage::enter("bench"));
    });
    // One costed future polled `n` times: the guard plus the poll through its box.
    let mut left = n;
    let fut = std::future::poll_fn(move |cx| {
        left -= 1;
        if left == 0 {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    });
    let mut fut = std::pin::pin!(fut.costed(&stage));
    let mut cx = Context::from_waker(Waker::noop());
    let t = thread_cpu_ns();
    while fut.as_mut().poll(&mut cx).is_pending() {}
    let poll = (thread_cpu_ns() - t) as f64 / f64::from(n);
    println!(
        "wall clock for comparison, Instant::now: {:8.1} ns",
        per_call(n, || {
            black_box(Instant::now());
        })
    );

    println!("clock read, CLOCK_THREAD_CPUTIME_ID:   {thread:8.1} ns");
    println!("clock read, CLOCK_PROCESS_CPUTIME_ID:  {process:8.1} ns");
    println!("guard (Stage::start + drop):           {guard:8.1} ns");
    println!("guard by name (Stage::enter + drop):   {by_name:8.1} ns");
    println!("costed poll (guard + boxed poll):      {poll:8.1} ns");
    let per_node = guard.max(poll) * GUARDS_PER_NODE;
    println!(
        "per node per round ({GUARDS_PER_NODE} guards):       {per_node:8.1} ns = {:.4} ms per 1,000 nodes",
        per_node * 1000.0 / 1e6
    );
}
