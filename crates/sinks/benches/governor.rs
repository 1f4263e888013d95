//! What a sink's cardinality governor costs per round: `Governor::govern` on a steady batch (the admitted set
//! already made by an earlier round), at a few cluster sizes and options.
//!
//! `cargo bench -p heapster-sinks --bench governor`, with `PODS` (30 per node) and `ROUNDS` (default 5); `NODES`
//! (e.g. `NODES=10,100,500`) picks the sizes. Figures are this thread's CPU time per series per round, the
//! median of the rounds.

mod common;

use common::{batch, env, median_cpu};
use heapster_sinks::SinkMetrics;
use heapster_sinks::governor::{Governor, GovernorConfig};
use std::sync::Arc;

fn main() {
    let (pods, rounds) = (env("PODS", 30), env("ROUNDS", 5).max(1));
    let sizes: Vec<usize> = std::env::var("NODES")
        .unwrap_or_else(|_| "10,100,500".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    println!("ns of CPU per series per round (median of {rounds}); {pods} pods per node, 18 series per set");
    for nodes in sizes {
        let b = Arc::new(batch(nodes, pods));
        let series = b.point_count();
        println!("\n== {nodes} nodes: {series} series");
        let options = [
            ("under budget (counts only)", format!("max_series={}", series * 2)),
            ("max_series = half", format!("max_series={}", series / 2)),
            ("max_series_per_metric = 1000", "max_series_per_metric=1000".to_owned()),
            ("labels_deny=labels,pod_id", "labels_deny=labels,pod_id".to_owned()),
        ];
        for (what, query) in options {
            let uri = format!("log?{query}").parse().unwrap();
            let config = GovernorConfig::take(&uri, &[]).unwrap().0.unwrap();
            let mut g = Governor::new("bench", config, SinkMetrics::detached());
            g.govern(&b);
            let secs = median_cpu(rounds, || {
                std::hint::black_box(g.govern(&b));
            });
            println!("  {what:32} {:6.0} ns/series", secs * 1e9 / series as f64);
        }
    }
}
