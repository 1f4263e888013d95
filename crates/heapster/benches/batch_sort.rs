//! The end of a scrape round: every node's sets, gathered node by node, made into the batch's map, which sorts
//! them by key. Times the map built from the vector as gathered against the vector sorted unstably first (what
//! `pipeline::scrape` does), on keys shaped like the simulator's: per node the node, two system containers and 30
//! pods of 500 namespaces with one or two containers each.
//!
//! `cargo bench -p heapster --bench batch_sort` (`NODES`, default 1,000).

use heapster_model::{MetricSet, keys};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

/// Every node's sets in the order a round gathers them: node after node, each node's sorted.
fn gathered(nodes: usize) -> Vec<(String, MetricSet)> {
    let mut all = Vec::new();
    for n in 0..nodes {
        let node = format!("sim-node-{n}");
        let mut sets = vec![keys::node_key(&node)];
        sets.extend(["kubelet", "runtime"].map(|c| keys::node_container_key(&node, c)));
        for p in 0..30 {
            let ns = format!("namespace-{}", (n * 30 + p) % 500);
            let pod = format!("workload-{}-7c9d8f{n:04x}-x{p}", (n * 7 + p) % 97);
            sets.push(keys::pod_key(&ns, &pod));
            sets.extend((0..1 + usize::from(p % 3 == 0)).map(|c| keys::pod_container_key(&ns, &pod, &format!("c{c}"))));
        }
        sets.sort();
        all.extend(sets.into_iter().map(|k| (k, MetricSet::default())));
    }
    all
}

/// Milliseconds of the best of five runs of `f` on a fresh copy of the gathered sets.
fn best(nodes: usize, f: impl Fn(Vec<(String, MetricSet)>) -> BTreeMap<String, MetricSet>) -> f64 {
    (0..5)
        .map(|_| {
            let sets = gathered(nodes);
            let started = Instant::now();
            black_box(f(sets));
            started.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let nodes = std::env::var("NODES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let sets = gathered(nodes).len();
    let as_gathered = best(nodes, |sets| sets.into_iter().collect());
    let sorted_first = best(nodes, |mut sets| {
        sets.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        sets.into_iter().collect()
    });
    println!(
        "{nodes} nodes, {sets} sets: map from the gathered vector {as_gathered:.1} ms, sorted unstably first \
         {sorted_first:.1} ms ({:.0} and {:.0} us per node)",
        as_gathered * 1e3 / nodes as f64,
        sorted_first * 1e3 / nodes as f64
    );
}
