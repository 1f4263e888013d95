//! Heap bytes of one kubelet's data at each stage: the response body, the decoded Summary, and the metric sets
//! it becomes. Counts live allocations with a counting allocator, so the figures are exact for this build.
//!
//! `cargo bench -p heapster-sources --bench batch_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        ALLOCS.fetch_sub(1, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> (usize, usize) {
    (LIVE.load(Ordering::Relaxed), ALLOCS.load(Ordering::Relaxed))
}

fn main() {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sim/fixtures/kubelet_stats_summary_k8s1.28_multicontainer.json"
    ))
    .expect("fixture");
    let (b0, a0) = live();
    let summary = heapster_sources::kubelet::decode(&body).expect("decode");
    let (b1, a1) = live();
    let sets = heapster_sources::kubelet::summary_to_sets(&summary, "node-1", None, 0);
    let (b2, a2) = live();
    let n = sets.len();
    let labels: usize = sets.iter().map(|(_, s)| s.labels.len()).sum();
    let metrics: usize = sets.iter().map(|(_, s)| s.metrics.len()).sum();
    let labeled: usize = sets.iter().map(|(_, s)| s.labeled_metrics.len()).sum();
    println!("fixture: {} pods, body {} bytes", summary.pods.len(), body.len());
    println!("decoded Summary: {} bytes in {} allocations", b1 - b0, a1 - a0);
    println!(
        "{n} metric sets: {} bytes in {} allocations ({} bytes and {} allocations per set; {} labels, {} metrics, {} labelled metrics per set)",
        b2 - b1,
        a2 - a1,
        (b2 - b1) / n,
        (a2 - a1) / n,
        labels / n,
        metrics / n,
        labeled / n
    );
    drop(sets);
    drop(summary);
}
