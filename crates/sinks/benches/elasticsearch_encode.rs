//! What the Elasticsearch sink costs per point: Heapster's documents with their `_bulk` action lines and
//! content-derived `_id`s made from a batch, and whole exports to testkit's Elasticsearch fake on loopback (this
//! thread's CPU only: the fake, which parses and checks every document against its mapping, runs on its own).
//!
//! `cargo bench -p heapster-sinks --bench elasticsearch_encode`, with `NODES` (default 100), `PODS` (30 per node)
//! and `ROUNDS` (default 5); figures are this thread's CPU time per 100,000 points, the median of the rounds.

mod common;

use common::{batch, env, median_cpu, per_100k};
use heapster_sinks::elasticsearch::{ElasticsearchConfig, ElasticsearchSink, encoder};
use heapster_sinks::{DataSink, SinkMetrics};
use std::sync::Arc;

fn main() {
    let (nodes, pods, rounds) = (env("NODES", 100), env("PODS", 30), env("ROUNDS", 5).max(1));
    let b = Arc::new(batch(nodes, pods));
    let points = b.point_count();
    println!("batch: {nodes} nodes x {pods} pods: {points} values; median of {rounds} runs");
    for ver in [5, 7] {
        let c = ElasticsearchConfig::from_uri(&format!("elasticsearch:http://127.0.0.1:1?ver={ver}").parse().unwrap())
            .unwrap();
        let mut docs = 0;
        let mut bytes = 0;
        let secs = median_cpu(rounds, || {
            let enc = encoder::metrics(&b, &c);
            docs = enc.items.len();
            bytes = enc.items.all().len();
        });
        println!(
            "\n== ver={ver}: documents + action lines  {}; {docs} documents, {:5.0} bytes/point",
            per_100k(secs, points),
            bytes as f64 / points as f64
        );
    }

    let fake = heapster_testkit::ElasticsearchFake::start(7, None);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let metrics = SinkMetrics::detached();
    let uri = format!("elasticsearch:{}?ver=7&bulkWorkers=1", fake.url());
    let sink = ElasticsearchSink::new(&uri.parse().unwrap(), &metrics).unwrap();
    let secs = median_cpu(rounds, || rt.block_on(sink.export(b.clone())).unwrap());
    println!("== whole exports to the fake (this thread only) {}", per_100k(secs, points));
}
