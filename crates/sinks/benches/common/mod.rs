//! What the socket sinks' benchmarks (statsd, Riemann) share: the batch they encode; CPU time is read by
//! `heapster_testkit::bench`, as every sink benchmark reads it.

#![allow(dead_code, reason = "each benchmark uses its part")]

use heapster_model::{DataBatch, Labels, MetricSet, MetricValue};
use std::sync::Arc;

pub use heapster_testkit::bench::median_cpu;

pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const METRICS: &[&str] = &[
    "cpu/usage",
    "cpu/usage_rate",
    "cpu/request",
    "cpu/limit",
    "memory/usage",
    "memory/working_set",
    "memory/rss",
    "memory/cache",
    "memory/page_faults",
    "memory/page_faults_rate",
    "network/rx",
    "network/rx_rate",
    "network/tx",
    "network/tx_rate",
    "uptime",
];

fn metric_set(pairs: Vec<(&'static str, String)>, seed: i64) -> MetricSet {
    let mut s = MetricSet::default();
    for (k, v) in pairs {
        s.labels.insert(k, v);
    }
    for (i, m) in METRICS.iter().enumerate() {
        let v = seed * 31 + i as i64;
        s.set(m, if m.ends_with("_rate") { MetricValue::Float(v as f64 / 8.0) } else { MetricValue::Int(v * 1_000) });
    }
    let fs = Arc::new(Labels::from([("resource_id".to_owned(), "/dev/vda1".to_owned())]));
    for m in ["filesystem/usage", "filesystem/limit", "filesystem/available"] {
        s.add_labeled(m, fs.clone(), MetricValue::Int(seed * 4096));
    }
    s
}

pub fn batch(nodes: usize, pods: usize) -> DataBatch {
    let mut b = DataBatch { timestamp: 1_700_000_000_000, ..Default::default() };
    for n in 0..nodes {
        let host = format!("node-{n:04}.cluster.example.com");
        b.sets.insert(
            format!("node:{host}"),
            metric_set(vec![("type", "node".into()), ("hostname", host.clone())], n as i64),
        );
        for p in 0..pods {
            let pod = vec![
                ("hostname", host.clone()),
                ("namespace_name", format!("team-{}", p % 7)),
                ("pod_name", format!("web-{n}-{p}-7d9f8c6b5-x2k4q")),
                ("pod_id", format!("0c3b{n:04x}-{p:04x}-4f1e-9a7b-5d2e8c1f3a6b")),
                ("labels", format!("app:web-{p},pod-template-hash:7d9f8c6b5,tier:frontend")),
            ];
            let seed = (n * 1000 + p) as i64;
            let mut l = pod.clone();
            l.push(("type", "pod".into()));
            b.sets.insert(format!("pod:{n}/{p}"), metric_set(l, seed));
            let mut l = pod;
            l.extend([("type", "pod_container".into()), ("container_name", "nginx".into())]);
            b.sets.insert(format!("container:{n}/{p}"), metric_set(l, seed + 1));
        }
    }
    b
}

pub fn per_100k(secs: f64, points: usize) -> String {
    let (ms, ns) = (secs * 1e3 * 100_000.0 / points as f64, secs * 1e9 / points as f64);
    format!("{ms:7.1} ms CPU per 100k points ({ns:5.0} ns/point)")
}
