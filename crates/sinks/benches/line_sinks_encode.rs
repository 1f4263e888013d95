//! What the Graphite, OpenTSDB and Wavefront sinks cost to encode, per 100,000 points.
//!
//! `cargo bench -p heapster-sinks --bench line_sinks_encode`, with `NODES` (default 100), `PODS` (30 per node) and
//! `ROUNDS` (5; the median is printed). Per node the batch holds the node's set, and per pod a pod set and a
//! container set, each with the catalog's unlabelled metrics and two filesystems' labelled ones, with
//! Kubernetes-like names. Figures: this thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) per 100,000 points and
//! bytes per point on the wire.

use heapster_model::catalog::{CATALOG, ValueType};
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue};
use heapster_sinks::graphite::encoder as graphite;
use heapster_sinks::opentsdb::encoder as opentsdb;
use heapster_sinks::wavefront::encoder as wavefront;
use std::sync::Arc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A set of type `kind` with `labels`, every unlabelled catalog metric and two filesystems.
fn set(kind: &str, labels: &[(&'static str, String)], seed: i64) -> MetricSet {
    let mut s = MetricSet::default();
    s.labels.insert("type", kind.to_owned());
    for (k, v) in labels {
        s.labels.insert(*k, v.clone());
    }
    for (i, d) in CATALOG.iter().enumerate() {
        let v = seed.wrapping_mul(2_654_435_761).wrapping_add(i as i64 * 7919).rem_euclid(1 << 40);
        let value = match d.value_type {
            ValueType::Int64 => MetricValue::Int(v),
            ValueType::Float => MetricValue::Float(v as f64 / 1024.0),
        };
        if d.labeled {
            if d.name.starts_with("filesystem/") {
                for dev in ["/dev/nvme0n1p1", "overlay"] {
                    s.add_labeled(d.name, Arc::new(Labels::from([("resource_id", dev.to_owned())])), value);
                }
            }
        } else {
            s.set(d.name, value);
        }
    }
    s
}

fn batch(nodes: usize, pods: usize) -> DataBatch {
    let mut b = DataBatch { timestamp: 1_764_000_000_000, ..Default::default() };
    for n in 0..nodes {
        let host = format!("ip-10-0-{}-{}.eu-west-1.compute.internal", n / 256, n % 256);
        let node = [("hostname", host.clone()), ("nodename", host.clone()), ("host_id", format!("i-0{n:016x}"))];
        b.sets.insert(format!("node:{host}"), set("node", &node, n as i64));
        for p in 0..pods {
            let ns = format!("team-{}", p % 9);
            let pod = format!("checkout-{p}-6b8f9c7d4-q{n:x}z");
            let mut l = node.to_vec();
            l.extend([
                ("namespace_name", ns.clone()),
                ("pod_name", pod.clone()),
                ("pod_id", format!("3f6c{n:04x}-{p:04x}-4bde-9a1c-7e2b5d8f0a61")),
                ("labels", format!("app:checkout,pod-template-hash:6b8f9c7d4,tier:web{}", p % 3)),
            ]);
            b.sets.insert(format!("namespace:{ns}/pod:{pod}"), set("pod", &l, (n * pods + p) as i64));
            l.extend([
                ("container_name", "server".to_owned()),
                ("container_base_image", "registry/app:1.4.2".to_owned()),
            ]);
            b.sets.insert(format!("namespace:{ns}/pod:{pod}/container:server"), set("pod_container", &l, p as i64));
        }
    }
    b
}

/// Median CPU seconds of `rounds` runs of `f`, which returns (points, bytes) of its output.
fn measure(rounds: usize, mut f: impl FnMut() -> (usize, usize)) -> (f64, usize, usize) {
    let mut times = Vec::new();
    let mut out = (0, 0);
    for _ in 0..rounds {
        let start = heapster_testkit::bench::thread_cpu();
        out = f();
        times.push(heapster_testkit::bench::thread_cpu() - start);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], out.0, out.1)
}

fn report(what: &str, (secs, points, bytes): (f64, usize, usize)) {
    println!(
        "{what:<28} {:>7.1} ms CPU per 100k points  {:>5.2} M points/CPU-s  {:>4} bytes/point",
        secs * 1e3 * 100_000.0 / points as f64,
        points as f64 / secs / 1e6,
        bytes / points.max(1)
    );
}

fn main() {
    let (nodes, pods, rounds) = (env("NODES", 100), env("PODS", 30), env("ROUNDS", 5));
    let b = batch(nodes, pods);
    println!("{nodes} nodes x {pods} pods: {} sets, {} points; median of {rounds}", b.sets.len(), b.point_count());
    report(
        "graphite",
        measure(rounds, || {
            let e = graphite::encode(&b, "kubernetes", graphite::CHUNK_BYTES);
            (e.points, e.chunks.iter().map(String::len).sum())
        }),
    );
    report(
        "opentsdb (max_tags=8)",
        measure(rounds, || {
            let e = opentsdb::encode(&b, "k8s-cluster", 8, 1000);
            (e.points(), e.bodies.iter().map(String::len).sum())
        }),
    );
    let shape = wavefront::Shape {
        cluster_name: "k8s-cluster",
        prefix: "heapster.",
        include_labels: true,
        include_containers: true,
    };
    report(
        "wavefront (includeLabels)",
        measure(rounds, || {
            let e = wavefront::encode(&b, &shape, graphite::CHUNK_BYTES);
            (e.points, e.chunks.iter().map(String::len).sum())
        }),
    );
}
