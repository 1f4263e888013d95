//! What the OTLP sink costs per point: the batch as `ResourceMetrics` encoded into request bodies, the same
//! gzipped (`gzip=true`), and whole exports to testkit's OTLP fake on loopback (this thread's CPU only: the fake,
//! which decompresses, decodes and checks every request, runs on its own thread).
//!
//! `cargo bench -p heapster-sinks --bench otlp_encode`, with `NODES` (default 100), `PODS` (30 per node) and
//! `ROUNDS` (default 5); figures are this thread's CPU time per 100,000 points, the median of the rounds.

mod common;

use common::{batch, env, median_cpu, per_100k};
use heapster_model::Options;
use heapster_sinks::otlp::encoder::Encoder;
use heapster_sinks::otlp::{OtlpConfig, OtlpSink, config::OPTIONS};
use heapster_sinks::util::http::gzip;
use heapster_sinks::{DataSink, SinkMetrics};
use heapster_testkit::OtlpFake;
use std::sync::Arc;

fn main() {
    let (nodes, pods, rounds) = (env("NODES", 100), env("PODS", 30), env("ROUNDS", 5).max(1));
    let b = Arc::new(batch(nodes, pods));
    let points = b.point_count();
    println!("batch: {nodes} nodes x {pods} pods: {} sets, {points} values; median of {rounds} runs", b.sets.len());
    let uri = "otlp:http://127.0.0.1:1".parse().unwrap();
    let encoder = Encoder::new(&OtlpConfig::from_options(&Options::new("--sink", &uri, OPTIONS).unwrap()).unwrap());
    let mut out = Default::default();
    let secs = median_cpu(rounds, || out = encoder.encode(&b));
    let bytes: usize = out.bodies.iter().map(|(b, _)| b.len()).sum();
    println!(
        "  protobuf (the sink's default)   {}; {:.1} bytes/point, {} requests",
        per_100k(secs, points),
        bytes as f64 / points as f64,
        out.bodies.len()
    );
    let mut zipped = 0;
    let secs = median_cpu(rounds, || {
        zipped = encoder.encode(&b).bodies.iter().map(|(body, _)| gzip(body).len()).sum();
    });
    println!(
        "  + gzip (gzip=true)              {}; {:.1} bytes/point",
        per_100k(secs, points),
        zipped as f64 / points as f64
    );

    let fake = OtlpFake::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (label, options) in
        [("whole export to the fake        ", ""), ("whole export, gzip=true         ", "?gzip=true")]
    {
        let uri = format!("otlp:{}{options}", fake.url()).parse().unwrap();
        let sink = OtlpSink::new(&uri, &SinkMetrics::detached()).unwrap();
        let secs = median_cpu(rounds, || rt.block_on(sink.export(b.clone())).unwrap());
        println!("  {label}{}", per_100k(secs, points));
    }
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}
