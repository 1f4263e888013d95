//! What the Riemann sink costs per point: events made from a batch, their protobuf `Msg`s of `batchsize`, and
//! whole exports to testkit's Riemann fake on loopback (this thread's CPU only: the fake's own threads, which
//! decode and check every event, are not counted).
//!
//! `cargo bench -p heapster-sinks --bench riemann_encode`, with `NODES` (default 100), `PODS` (30 per node) and
//! `ROUNDS` (default 5); figures are this thread's CPU time per 100,000 points, the median of the rounds.

mod common;

use common::{batch, env, median_cpu, per_100k};
use heapster_sinks::riemann::proto::Msg;
use heapster_sinks::riemann::{RiemannConfig, RiemannSink, encoder};
use heapster_sinks::{DataSink, SinkMetrics};
use prost::Message as _;
use std::sync::Arc;

fn main() {
    let (nodes, pods, rounds) = (env("NODES", 100), env("PODS", 30), env("ROUNDS", 5).max(1));
    let b = Arc::new(batch(nodes, pods));
    let points = b.point_count();
    println!("batch: {nodes} nodes x {pods} pods: {points} values; median of {rounds} runs");
    let c = RiemannConfig::from_uri(&"riemann:http://127.0.0.1:1".parse().unwrap()).unwrap();
    let secs = median_cpu(rounds, || {
        std::hint::black_box(encoder::metrics(&b, &c));
    });
    println!("\n== events from the batch          {}", per_100k(secs, points));
    let mut bytes = 0;
    let secs = median_cpu(rounds, || {
        let events = encoder::metrics(&b, &c).events;
        bytes = events
            .chunks(c.batch_size)
            .map(|chunk| Msg { events: chunk.to_vec(), ..Default::default() }.encode_to_vec().len())
            .sum();
    });
    println!(
        "== events + protobuf (batchsize=1000) {}; {:5.0} bytes/point",
        per_100k(secs, points),
        bytes as f64 / points as f64
    );

    let fake = heapster_testkit::RiemannFake::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let metrics = SinkMetrics::detached();
    let sink = RiemannSink::new(&format!("riemann:http://{}", fake.address()).parse().unwrap(), &metrics).unwrap();
    let secs = median_cpu(rounds, || rt.block_on(sink.export(b.clone())).unwrap());
    println!("== whole exports to the fake (this thread only) {}", per_100k(secs, points));
}
