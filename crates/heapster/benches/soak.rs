//! A long run against a simulated cluster: does heapster's memory, file descriptors and scrape success stay flat
//! once the store window is full and turning over? The short benchmark (`--bench cluster`) cannot see a slow leak.
//!
//! `scripts/soak` (or `cargo build --release && cargo bench -p heapster --bench soak`) with `NODES` (default 1000),
//! `PODS` (30), `RESOLUTION_S` (15), `WINDOW_ROUNDS` (60: 15 minutes at 15 s) and `MINUTES` (60). Prints one line
//! a minute and a verdict: after the first window, RSS within 5 % of its first sample, fds within 5 (the
//! connection pool moves), no scrape error, every round complete.

mod common;

use common::{env, fds, metric, metric_sum, metrics_page, start_heapster, usage};
use heapster_sim::{SimConfig, Simulation};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    heapster_sources::ensure_crypto_provider();
    let nodes = env("NODES", 1000) as usize;
    let pods = env("PODS", 30) as usize;
    let resolution = env("RESOLUTION_S", 15);
    let window_rounds = env("WINDOW_ROUNDS", 60);
    let minutes = env("MINUTES", 60);
    let sim = Simulation::start(SimConfig { nodes, pods_per_node: pods, ..Default::default() })
        .await
        .expect("simulator (raise ulimit -n)");
    let (mut child, port) = start_heapster(&sim, resolution, window_rounds);
    let pid = child.id();
    let window = Duration::from_secs(resolution * window_rounds);
    println!(
        "soak: {nodes} nodes x {pods} pods, resolution {resolution}s, store window {}s, {minutes} minutes",
        window.as_secs()
    );
    println!("  minute    RSS MiB  store MiB  fds  scrape errors  rounds  sets in newest batch");
    let start = Instant::now();
    // Samples taken once the window is full: (RSS, fds).
    let mut settled: Vec<(u64, usize)> = Vec::new();
    let (mut errors, mut rounds, mut worst_sets, mut max_sets) = (0.0, 0.0, f64::MAX, 0.0f64);
    for minute in 1..=minutes {
        tokio::time::sleep_until((start + Duration::from_secs(60 * minute)).into()).await;
        let text = metrics_page(port).await.unwrap_or_default();
        let (_, rss, _) = usage(pid);
        let open = fds(pid);
        errors = metric_sum(&text, "heapster_kubelet_scrape_errors") + metric_sum(&text, "heapster_scrape_errors");
        rounds = metric(&text, "heapster_batches_total").unwrap_or(0.0);
        let sets = metric(&text, "heapster_batch_sets").unwrap_or(0.0);
        // The store's own count beside RSS, so that a saw-tooth can be told apart from allocator slack.
        let store = metric(&text, "heapster_store_bytes").unwrap_or(0.0) / 1048576.0;
        max_sets = max_sets.max(sets);
        if start.elapsed() > window + Duration::from_secs(resolution) {
            settled.push((rss, open));
            worst_sets = worst_sets.min(sets);
        }
        println!(
            "  {minute:>6} {:>10.1} {store:>10.1} {open:>4} {errors:>14} {rounds:>7} {sets:>21}",
            rss as f64 / 1048576.0
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let Some(&(rss0, fds0)) = settled.first() else {
        println!("verdict: the run ended before the store window was full; raise MINUTES above the window");
        return;
    };
    let (rss_lo, rss_hi) = settled.iter().fold((u64::MAX, 0), |(lo, hi), &(r, _)| (lo.min(r), hi.max(r)));
    let fds_hi = settled.iter().map(|&(_, f)| f).max().unwrap_or(0);
    let drift = (rss_hi as f64 - rss0 as f64).max(rss0 as f64 - rss_lo as f64) / rss0 as f64 * 100.0;
    let rss_flat = drift <= 5.0;
    let fds_flat = fds_hi <= fds0 + 5;
    let complete = worst_sets >= max_sets;
    println!(
        "verdict: RSS after the window {:.1}..{:.1} MiB ({drift:.1} % from the first settled sample: {}), fds {fds0}..{fds_hi} ({}), scrape errors {errors} ({}), newest batch {worst_sets}..{max_sets} sets ({})",
        rss_lo as f64 / 1048576.0,
        rss_hi as f64 / 1048576.0,
        if rss_flat { "flat" } else { "GROWING" },
        if fds_flat { "flat" } else { "GROWING" },
        if errors == 0.0 { "none" } else { "SOME" },
        if complete { "complete" } else { "INCOMPLETE" },
    );
    println!("  rounds: {rounds}, per minute {:.1}", rounds / minutes as f64);
}
