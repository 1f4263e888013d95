//! What the Prometheus remote-write sink costs per point: building the sorted series, protobuf, snappy.
//!
//! `cargo bench -p heapster-sinks --bench remote_write_encode`, with `NODES` (default 100), `PODS` (30 per node)
//! and `ROUNDS` (5). Each node, pod and container set carries twenty catalog metrics and Kubernetes-like labels.
//! Figures are this thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) per 100,000 points, the median of the rounds.

use heapster_model::catalog::CATALOG;
use heapster_model::{DataBatch, MetricSet, MetricValue, Options};
use heapster_sinks::prometheus::{PrometheusConfig, config::OPTIONS, encoder};
use heapster_testkit::bench::median_cpu;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn batch(nodes: usize, pods: usize) -> DataBatch {
    let mut b = DataBatch { timestamp: 1_700_000_000_000, ..Default::default() };
    let mut add = |key: String, pairs: Vec<(&'static str, String)>| {
        let mut s = MetricSet::default();
        for (k, v) in pairs {
            s.labels.insert(k, v);
        }
        for (i, d) in CATALOG.iter().filter(|d| !d.labeled).take(20).enumerate() {
            s.set(d.name, MetricValue::Int((key.len() * 7919 + i) as i64));
        }
        b.sets.insert(key, s);
    };
    for n in 0..nodes {
        let node = format!("node-{n:04}.cluster.example.com");
        add(format!("node:{node}"), vec![("type", "node".into()), ("nodename", node.clone())]);
        for p in 0..pods {
            let (ns, pod) = (format!("team-{}", p % 7), format!("web-{n}-{p}-7d9f8c6b5-x2k4q"));
            let pod_labels = vec![
                ("nodename", node.clone()),
                ("namespace_name", ns.clone()),
                ("pod_name", pod.clone()),
                ("pod_id", format!("0c3b{n:04x}-{p:04x}-4f1e-9a7b-5d2e8c1f3a6b")),
                ("labels", format!("app:web-{p},tier:frontend")),
            ];
            let mut l = pod_labels.clone();
            l.push(("type", "pod".into()));
            add(format!("namespace:{ns}/pod:{pod}"), l);
            let mut l = pod_labels;
            l.extend([("type", "pod_container".into()), ("container_name", "nginx".into())]);
            add(format!("namespace:{ns}/pod:{pod}/container:nginx"), l);
        }
    }
    b
}

fn main() {
    let (nodes, pods, rounds) = (env("NODES", 100), env("PODS", 30), env("ROUNDS", 5).max(1));
    let b = batch(nodes, pods);
    let points = b.point_count();
    let uri = "prometheus:http://127.0.0.1:1/api/v1/write".parse().unwrap();
    let config = PrometheusConfig::from_options(&Options::new("--sink", &uri, OPTIONS).unwrap()).unwrap();
    println!("batch: {nodes} nodes x {pods} pods: {} sets, {points} values; median of {rounds} runs", b.sets.len());
    let per_100k = |secs: f64| secs * 1e3 * 100_000.0 / points as f64;
    let secs = median_cpu(rounds, || {
        std::hint::black_box(encoder::series(&b, &config));
    });
    println!("  series (names, labels, sort, merge) {:7.1} ms CPU per 100k points", per_100k(secs));
    let mut out = encoder::Encoded::default();
    let secs = median_cpu(rounds, || out = encoder::encode(&b, &config));
    let bytes: usize = out.bodies.iter().map(|(b, _)| b.len()).sum();
    println!(
        "  + protobuf + snappy (the sink's)    {:7.1} ms CPU per 100k points; {:.1} bytes/point on the wire, {} requests",
        per_100k(secs),
        bytes as f64 / out.points as f64,
        out.bodies.len()
    );
}
