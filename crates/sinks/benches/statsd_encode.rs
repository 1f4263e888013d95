//! What the statsd sink costs per point: encoding in each layout, and whole exports through the UDP writer to a
//! socket on loopback that only reads (the sink's side alone; statsd's own cost is statsd's).
//!
//! `cargo bench -p heapster-sinks --bench statsd_encode`, with `NODES` (default 100) and `PODS` (30 per node)
//! shaping the batch and `ROUNDS` (default 5) repetitions; figures are this thread's CPU time per 100,000 points,
//! the median of the rounds, and bytes per point.

mod common;

use common::{batch, env, median_cpu, per_100k};
use heapster_sinks::DataSink;
use heapster_sinks::statsd::encoder::encode;
use heapster_sinks::statsd::{StatsdConfig, StatsdSink};
use std::sync::Arc;

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
