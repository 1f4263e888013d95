//! heapster against a simulated cluster: CPU and memory per node, scrape completeness, round time.
//!
//! `cargo bench -p heapster --bench cluster` with `NODES` (default 1000), `PODS` (30), `RESOLUTION_S` (15),
//! `ROUNDS` (8) and `WINDOW_ROUNDS` (60: the store keeps this many rounds, as 15 minutes at 15 s does). The store
//! is filled first (WINDOW_ROUNDS rounds), then ROUNDS more are measured. The simulator runs in this process;
//! heapster is the release binary, measured from /proc. The simulator gets two threads: rendering 5,000 Summaries
//! every 15 s takes about one core, and one thread alone could not keep up at that size.

mod common;

use common::{env, metric, metrics_page, start_heapster, usage};
use heapster_sim::{SimConfig, Simulation};
use std::time::{Duration, Instant};

/// Upper bound of the histogram bucket holding the 99th percentile of `heapster_round_duration_seconds`.
fn round_p99(text: &str) -> Option<String> {
    let buckets: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("heapster_round_duration_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, rest) = l.split_once('"')?;
            Some((le.to_string(), rest.split_whitespace().last()?.parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    buckets.into_iter().find(|(_, n)| *n >= 0.99 * total).map(|(le, _)| le)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    heapster_sources::ensure_crypto_provider();
    let nodes = env("NODES", 1000) as usize;
    let pods = env("PODS", 30) as usize;
    let resolution = env("RESOLUTION_S", 15);
    let rounds = env("ROUNDS", 8);
    let window_rounds = env("WINDOW_ROUNDS", 60);
    let sim = Simulation::start(SimConfig { nodes, pods_per_node: pods, ..Default::default() })
        .await
        .expect("simulator (raise ulimit -n)");
    let (mut child, port) = start_heapster(&sim, resolution, window_rounds);
    let pid = child.id();
    let metrics = || metrics_page(port);
    println!(
        "cluster bench: {nodes} nodes x {pods} pods, resolution {resolution}s, store window {window_rounds} rounds"
    );
    let fill_until = Instant::now() + Duration::from_secs(resolution * window_rounds + 2);
    while Instant::now() < fill_until {
        tokio::time::sleep(Duration::from_secs(resolution)).await;
    }
    let (cpu0, _, _) = usage(pid);
    let batches0 = metrics().await.and_then(|t| metric(&t, "heapster_batches_total")).unwrap_or(0.0);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(resolution * rounds)).await;
    let (cpu1, rss, peak) = usage(pid);
    let text = metrics().await.unwrap_or_default();
    let batches = metric(&text, "heapster_batches_total").unwrap_or(0.0) - batches0;
    let wall = t0.elapsed().as_secs_f64();
    let sets = metric(&text, "heapster_batch_sets").unwrap_or(0.0);
    let expected_sets = (nodes * (1 + 2 + pods + pods * 23 / 18)) as f64; // node, system containers, pods, containers
    let mcpu = (cpu1 - cpu0) / wall * 1000.0;
    println!("  rounds measured: {batches}, wall {wall:.0}s");
    println!("  CPU: {mcpu:.1} mCPU in all, {:.4} mCPU per node", mcpu / nodes as f64);
    println!(
        "  RSS: {:.1} MiB in all, {:.3} MiB per node (store window full)",
        rss as f64 / 1048576.0,
        rss as f64 / 1048576.0 / nodes as f64
    );
    println!(
        "  peak RSS: {:.1} MiB in all, {:.3} MiB per node (since start)",
        peak as f64 / 1048576.0,
        peak as f64 / 1048576.0 / nodes as f64
    );
    println!(
        "  sets in the newest batch: {sets} of about {expected_sets} expected ({:.1} %)",
        100.0 * sets / expected_sets
    );
    println!(
        "  kubelet scrape errors: {}",
        text.lines()
            .filter(|l| l.starts_with("heapster_kubelet_scrape_errors"))
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let series = metric(&text, "heapster_store_series").unwrap_or(0.0);
    let store_bytes = metric(&text, "heapster_store_bytes").unwrap_or(0.0);
    println!(
        "  store: {series} series, {:.0} bytes per series, {:.3} MiB per node counted by the store",
        store_bytes / series.max(1.0),
        store_bytes / 1048576.0 / nodes as f64
    );
    match round_p99(&text) {
        Some(p99) => println!("  p99 round time: <= {p99}s (histogram bucket bound, whole run)"),
        None => println!("  p99 round time: no rounds recorded"),
    }
    let _ = child.kill();
    let _ = child.wait();
}
