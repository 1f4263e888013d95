//! What the socket sinks' benchmarks (statsd, Riemann) share: the batch they encode and how CPU time is read.

#![allow(dead_code, reason = "each benchmark uses its part")]

use heapster_model::{DataBatch, Labels, MetricSet, MetricValue};
use std::sync::Arc;

pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn thread_cpu() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; this clock always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
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

pub fn median_cpu(rounds: usize, mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = thread_cpu();
            f();
            thread_cpu() - t
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

pub fn per_100k(secs: f64, points: usize) -> String {
    let (ms, ns) = (secs * 1e3 * 100_000.0 / points as f64, secs * 1e9 / points as f64);
    format!("{ms:7.1} ms CPU per 100k points ({ns:5.0} ns/point)")
}
