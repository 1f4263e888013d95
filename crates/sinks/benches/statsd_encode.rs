//! What the statsd sink costs per point: encoding in each layout, and whole exports through the UDP writer to a
//! socket on loopback that only reads (the sink's side alone; statsd's own cost is statsd's).
//!
//! `cargo bench -p heapster-sinks --bench statsd_encode`, with `NODES` (default 100) and `PODS` (30 per node)
//! shaping the batch and `ROUNDS` (default 5) repetitions; figures are this thread's CPU time per 100,000 points,
//! the median of the rounds, and bytes per point.

use heapster_model::{DataBatch, Labels, MetricSet, MetricValue};
use heapster_sinks::DataSink;
use heapster_sinks::statsd::encoder::encode;
use heapster_sinks::statsd::{StatsdConfig, StatsdSink};
use std::sync::Arc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn thread_cpu() -> f64 {
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

fn batch(nodes: usize, pods: usize) -> DataBatch {
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

fn median_cpu(rounds: usize, mut f: impl FnMut()) -> f64 {
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

fn per_100k(secs: f64, points: usize) -> String {
    let (ms, ns) = (secs * 1e3 * 100_000.0 / points as f64, secs * 1e9 / points as f64);
    format!("{ms:7.1} ms CPU per 100k points ({ns:5.0} ns/point)")
}

fn main() {
    let (nodes, pods, rounds) = (env("NODES", 100), env("PODS", 30), env("ROUNDS", 5).max(1));
    let b = Arc::new(batch(nodes, pods));
    println!("batch: {nodes} nodes x {pods} pods: {} values; median of {rounds} runs", b.point_count());
    println!("\n== encoding (one thread)");
    let layouts = [
        ("etsystatsd (default)", ""),
        ("influxstatsd", "protocolType=influxstatsd"),
        (
            "influxstatsd, lowerCamelCase",
            "protocolType=influxstatsd&labelStyle=lowerCamelCase&renameLabels=pod_name:pod",
        ),
    ];
    for (what, opts) in layouts {
        let c = StatsdConfig::from_uri(&format!("statsd:udp://127.0.0.1:1?{opts}").parse().unwrap()).unwrap();
        let mut points = 0;
        let mut bytes = 0;
        let secs = median_cpu(rounds, || {
            let e = encode(&b, &c);
            (points, bytes) = (e.points, e.lines.len());
        });
        println!("  {what:30} {}; {:5.0} bytes/point", per_100k(secs, points), bytes as f64 / points as f64);
    }

    println!("\n== whole exports (encode + UDP datagrams to a loopback socket that reads them)");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = vec![0; 65_536];
        while receiver.recv(&mut buf).is_ok() {}
    });
    for per_msg in [5, 50] {
        let sink =
            StatsdSink::from_uri(&format!("statsd:udp://127.0.0.1:{port}?numMetricsPerMsg={per_msg}").parse().unwrap())
                .unwrap();
        let secs = median_cpu(rounds, || rt.block_on(sink.export(b.clone())).unwrap());
        println!("  numMetricsPerMsg={per_msg:<3} {}", per_100k(secs, b.point_count()));
    }
}
