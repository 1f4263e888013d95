//! CPU cost of the Kubernetes processor chain per node and round, on batches as heapster builds them: the
//! simulator's kubelet Summaries, decoded and converted by the kubelet source, enriched from pod, namespace and
//! node metadata like the simulator's API server lists.
//!
//! `cargo bench -p heapster-processors --bench chain` with `NODES` (default 50), `PODS` (30) and `ROUNDS` (8, at
//! 15 s; the first has no rates yet, so it is run but not measured). The batches are built before the clock
//! starts, so only the chain is timed (thread CPU time, from `/proc/thread-self/schedstat`).
//!
//! Machine load does not change instruction counts, so on a shared machine compare with callgrind, collecting
//! only inside [`measured_rounds`]:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*measured_rounds*' --callgrind-out-file=cg.out \
//!     target/release/deps/chain-<hash>
//! ```
//!
//! and divide the total `Ir` by nodes x (rounds - 1), as the bench prints.

#[path = "support/sim_cluster.rs"]
mod sim_cluster;

use chrono::{DateTime, Duration, Utc};
use heapster_model::DataBatch;
use heapster_processors::{DataProcessor, NodeAutoscalingConfig, PodEnricherConfig, kubernetes_chain};
use heapster_sim::kubelet::{NodeSpec, Template};
use sim_cluster::{batch, metadata};
use std::hint::black_box;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// This thread's CPU time in ns: the first field of `schedstat`. No clock in std reads CPU time.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs `batches` through `chain`, keeping the outputs so that dropping them is not counted: in heapster the
/// store and the sinks own the batch after the chain. Never inlined, so callgrind can collect inside it alone.
#[inline(never)]
fn measured_rounds(chain: &mut [Box<dyn DataProcessor>], batches: Vec<DataBatch>) -> Vec<DataBatch> {
    batches.into_iter().map(|b| chain.iter_mut().fold(b, |b, p| p.process(b))).collect()
}

fn main() {
    let nodes = env("NODES", 50);
    let pods = env("PODS", 30);
    let rounds = env("ROUNDS", 8).max(2);
    let template = Template::builtin();
    let epoch = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").expect("a time").with_timezone(&Utc);
    let specs: Vec<NodeSpec> =
        (0..nodes).map(|i| NodeSpec { name: format!("node-{i}"), index: i, pods, epoch, churn: None }).collect();
    let md = metadata(&template, &specs, epoch).shared();
    let at = |r: usize| epoch + Duration::seconds(600 + 15 * r as i64);
    let first = batch(&template, &specs, at(0));
    let batches: Vec<DataBatch> = (1..rounds).map(|r| batch(&template, &specs, at(r))).collect();
    let sets = first.sets.len();

    let mut chain = kubernetes_chain(md, PodEnricherConfig::default(), NodeAutoscalingConfig::default());
    // The first round only primes the rate calculator.
    // Not through `measured_rounds`, so that callgrind does not count it.
    let out_sets = chain.iter_mut().fold(first, |b, p| p.process(b)).sets.len();

    let measured = rounds - 1;
    let t0 = thread_cpu_ns();
    let out = black_box(measured_rounds(&mut chain, batches));
    let cpu_ns = thread_cpu_ns() - t0;
    drop(out);
    let per = (nodes * measured) as f64;
    println!(
        "{nodes} nodes x {pods} pods, {sets} sets in, {out_sets} out per round; {measured} measured rounds: \
         {:.1} CPU-us per node per round (callgrind: divide Ir by {})",
        cpu_ns as f64 / 1000.0 / per,
        nodes * measured
    );
}
