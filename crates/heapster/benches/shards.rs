//! Shards: three release heapster replicas share the simulator's nodes through Leases on its API server; prints
//! each replica's CPU-ms per node per round and RSS per node (its own nodes), so that the number of replicas a
//! cluster needs can be planned from one replica's figures (README, "Sharding").
//!
//! `cargo build --release && NODES=3000 PODS=30 RESOLUTION_S=15 cargo bench -p heapster --bench shards`

mod common;

use common::{env, metric, metrics_page, start_heapster_with, usage};
use heapster_sim::{SimConfig, Simulation};
use std::time::{Duration, Instant};

const REPLICAS: usize = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    heapster_sources::ensure_crypto_provider();
    let nodes = env("NODES", 3000) as usize;
    let pods = env("PODS", 30) as usize;
    let resolution = env("RESOLUTION_S", 15);
    let rounds = env("ROUNDS", 6);
    let window_rounds = env("WINDOW_ROUNDS", 60);
    let sim = Simulation::start(SimConfig { nodes, pods_per_node: pods, ..Default::default() })
        .await
        .expect("simulator (raise ulimit -n)");
    let mut replicas: Vec<_> = (0..REPLICAS)
        .map(|i| {
            let flags = [
                "--shard_lease_namespace=monitoring".to_owned(),
                format!("--shard_identity=replica-{i}"),
                "--log_level=warn,heapster_sources::kubernetes::shard=info".to_owned(),
            ];
            start_heapster_with(&sim, resolution, window_rounds, &flags)
        })
        .collect();
    println!(
        "shards bench: {REPLICAS} replicas, {nodes} nodes x {pods} pods, resolution {resolution}s, store window \
         {window_rounds} rounds"
    );
    // Let them find each other and fill their stores (a window's worth of rounds, or 3 when the window is long).
    let warm = resolution * window_rounds.min(3) + 2;
    tokio::time::sleep(Duration::from_secs(warm)).await;
    let before: Vec<(f64, f64)> = so_far(&replicas).await;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(resolution * rounds)).await;
    let wall = t0.elapsed().as_secs_f64();
    let mut total_nodes = 0.0;
    for (i, (child, port)) in replicas.iter().enumerate() {
        let (cpu, rss, _) = usage(child.id());
        let text = metrics_page(*port).await.unwrap_or_default();
        let own = metric(&text, "heapster_shard_nodes_assigned").unwrap_or(0.0);
        let members = metric(&text, "heapster_shard_members").unwrap_or(0.0);
        let batches = metric(&text, "heapster_batches_total").unwrap_or(0.0) - before[i].1;
        total_nodes += own;
        let cpu_ms = (cpu - before[i].0) * 1000.0;
        println!(
            "  replica-{i}: {own} nodes ({members} members), {batches} rounds in {wall:.0}s: {:.3} CPU-ms per node \
             per round, {:.3} MiB RSS per node ({:.1} MiB)",
            cpu_ms / batches.max(1.0) / own.max(1.0),
            rss as f64 / 1048576.0 / own.max(1.0),
            rss as f64 / 1048576.0
        );
    }
    println!("  nodes assigned in all: {total_nodes} of {nodes}");
    for (child, _) in &mut replicas {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Each replica's CPU seconds and batches so far.
async fn so_far(replicas: &[(std::process::Child, u16)]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for (child, port) in replicas {
        let text = metrics_page(*port).await.unwrap_or_default();
        out.push((usage(child.id()).0, metric(&text, "heapster_batches_total").unwrap_or(0.0)));
    }
    out
}
