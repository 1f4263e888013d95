//! What the Honeycomb, Librato and Hawkular sinks cost per point: the encoder alone (JSON events, measurements,
//! data and definitions), and whole exports to testkit's fakes of their APIs on loopback (this thread's CPU only:
//! the fakes' threads, which parse and check every request, are not counted).
//!
//! `cargo bench -p heapster-sinks --bench http_json_sinks_encode`, with `NODES` (default 100), `PODS` (30 per
//! node) and `ROUNDS` (default 5); figures are this thread's CPU time per 100,000 points (the batch's values),
//! the median of the rounds.

mod common;

use common::{batch, env, median_cpu, per_100k};
use heapster_model::DataBatch;
use heapster_sinks::hawkular::{HawkularConfig, HawkularSink};
use heapster_sinks::honeycomb::HoneycombSink;
use heapster_sinks::librato::LibratoSink;
use heapster_sinks::{DataSink, SinkMetrics, hawkular, honeycomb, librato};
use std::collections::BTreeMap;
use std::sync::Arc;

/// CPU seconds of whole exports of `b` (the median of `rounds`), each at a new time so that the sink's record of
/// what it delivered does not skip it.
fn exports(rt: &tokio::runtime::Runtime, sink: &dyn DataSink, b: &DataBatch, rounds: usize) -> f64 {
    let mut next = b.clone();
    median_cpu(rounds, || {
        next.timestamp += 60_000;
        rt.block_on(sink.export(Arc::new(next.clone()))).unwrap()
    })
}

fn main() {
    let (nodes, pods, rounds) = (env("NODES", 100), env("PODS", 30), env("ROUNDS", 5).max(1));
    let b = Arc::new(batch(nodes, pods));
    let points = b.point_count();
    println!("batch: {nodes} nodes x {pods} pods: {points} values; median of {rounds} runs");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let metrics = SinkMetrics::detached();

    let mut bytes = 0;
    let secs = median_cpu(rounds, || bytes = honeycomb::encoder::metrics(&b).0.iter().map(|(_, e)| e.json.len()).sum());
    println!(
        "\n== honeycomb events from the batch       {}; {:5.0} bytes/point",
        per_100k(secs, points),
        bytes as f64 / points as f64
    );
    let fake = heapster_testkit::HoneycombFake::start("key");
    let uri = format!("honeycomb:?writekey=key&apihost={}", fake.url());
    let sink = HoneycombSink::new(&uri.parse().unwrap(), &metrics, None).unwrap();
    let secs = exports(&rt, &sink, &b, rounds);
    println!("== honeycomb whole exports (gzip) to the fake {}", per_100k(secs, points));

    let tags = BTreeMap::from([("cluster".to_owned(), "prod".to_owned())]);
    let secs = median_cpu(rounds, || {
        bytes = librato::encoder::encode(&b, "k8s.", &tags, 1000).bodies.iter().map(|x| x.text.len()).sum();
    });
    println!(
        "\n== librato measurements from the batch   {}; {:5.0} bytes/point",
        per_100k(secs, points),
        bytes as f64 / points as f64
    );
    let fake = heapster_testkit::LibratoFake::start("u", "t");
    let uri = format!("librato:?username=u&token=t&api={}&prefix=k8s", fake.url());
    let sink = LibratoSink::new(&uri.parse().unwrap(), &metrics).unwrap();
    let secs = exports(&rt, &sink, &b, rounds);
    println!("== librato whole exports to the fake       {}", per_100k(secs, points));

    let c = HawkularConfig::from_uri(&"hawkular:http://127.0.0.1:1".parse().unwrap()).unwrap();
    let secs = median_cpu(rounds, || {
        let e = hawkular::encoder::encode(&b, &c);
        bytes = e.data.values().flatten().map(|(_, j)| j.len()).sum();
    });
    println!(
        "\n== hawkular data + definitions           {}; {:5.0} data bytes/point",
        per_100k(secs, points),
        bytes as f64 / points as f64
    );
    let fake = heapster_testkit::HawkularFake::start("/hawkular/metrics", None);
    let sink = HawkularSink::new(&format!("hawkular:{}", fake.url()).parse().unwrap(), &metrics).unwrap();
    // The first export also sends every definition's tags; the rounds after it only the data.
    rt.block_on(sink.export(b.clone())).unwrap();
    let secs = exports(&rt, &sink, &b, rounds);
    println!("== hawkular whole exports to the fake (tags cached) {}", per_100k(secs, points));
}
