//! What the Kafka sink costs per point: Heapster's JSON message per value, and whole exports (acks=all) to
//! testkit's broker fake on loopback, uncompressed and with gzip and snappy (this thread's CPU only: rskafka's
//! tasks run on it, the fake's threads, which decode and CRC-check every batch, do not).
//!
//! `cargo bench -p heapster-sinks --bench kafka_encode`, with `NODES` (default 100), `PODS` (30 per node) and
//! `ROUNDS` (default 5); figures are this thread's CPU time per 100,000 points, the median of the rounds.

mod common;

use common::{batch, env, median_cpu, per_100k};
use heapster_sinks::kafka::{KafkaSink, encoder};
use heapster_sinks::{DataSink, SinkMetrics};
use std::sync::Arc;

fn main() {
    let (nodes, pods, rounds) = (env("NODES", 100), env("PODS", 30), env("ROUNDS", 5).max(1));
    let b = Arc::new(batch(nodes, pods));
    let points = b.point_count();
    println!("batch: {nodes} nodes x {pods} pods: {points} values; median of {rounds} runs");
    let mut bytes = 0;
    let secs = median_cpu(rounds, || {
        let e = encoder::metrics(&b);
        bytes = e.messages.iter().map(|m| m.record.approximate_size()).sum();
        std::hint::black_box(e);
    });
    println!(
        "\n== JSON messages from the batch   {}; {:5.0} bytes/point",
        per_100k(secs, points),
        bytes as f64 / points as f64
    );

    let fake = heapster_testkit::KafkaFake::start(&[("heapster-metrics", 4)]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let metrics = SinkMetrics::detached();
    for compression in ["none", "gzip", "snappy"] {
        let uri = format!("kafka:?brokers={}&compression={compression}", fake.address());
        let sink = KafkaSink::new(&uri.parse().unwrap(), &metrics).unwrap();
        let secs = median_cpu(rounds, || rt.block_on(sink.export(b.clone())).unwrap());
        println!("== whole exports, compression={compression:6} {}", per_100k(secs, points));
    }
    assert_eq!(fake.violations(), Vec::<String>::new());
}
