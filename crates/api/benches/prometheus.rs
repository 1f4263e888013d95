//! What `/metrics/cadvisor` and `/metrics/resource` cost with 20,000 pods (one container each) on 200 nodes in the
//! store: time per page through the whole router (store reads, text, the streamed body), per 10,000 series, and the
//! largest chunk held, which is all of the page that is ever in memory at once.
//!
//!     cargo bench -p heapster-api --bench prometheus
//!
//! Prints figures; asserts nothing about time (a shared machine's timings are not a test).

use axum::body::Body;
use axum::http::Request;
use futures_util::StreamExt;
use heapster_api::ApiState;
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, keys, labels as l};
use heapster_store::{Store, StoreConfig};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const PODS: usize = 20_000;
const NODES: usize = 200;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The cgroup metrics a kubelet summary gives heapster for one set.
fn cgroup(s: &mut MetricSet, i: usize, round: usize) {
    let i = i as i64 + round as i64;
    s.set("cpu/usage", MetricValue::Int(i * 1_000_000_007));
    s.set("memory/usage", MetricValue::Int((1 << 20) + i * 4096));
    s.set("memory/working_set", MetricValue::Int(i * 4096));
    s.set("memory/rss", MetricValue::Int(i * 2048));
    s.set("memory/cache", MetricValue::Int(i * 1024));
    s.set("memory/page_faults", MetricValue::Int(i * 3));
    s.set("memory/major_page_faults", MetricValue::Int(i));
    s.add_labeled("filesystem/usage", labels(&[(l::RESOURCE_ID, "/")]), MetricValue::Int(i * 512));
    s.add_labeled("filesystem/limit", labels(&[(l::RESOURCE_ID, "/")]), MetricValue::Int(1 << 34));
}

fn batch(ts: i64, round: usize) -> DataBatch {
    let mut b = DataBatch { timestamp: ts, ..Default::default() };
    for n in 0..NODES {
        let node = format!("node-{n}");
        let mut s = MetricSet { labels: labels(&[(l::TYPE, "node"), (l::NODENAME, &node)]), ..Default::default() };
        cgroup(&mut s, n, round);
        s.set("network/rx", MetricValue::Int(n as i64 * 77));
        s.set("network/tx", MetricValue::Int(n as i64 * 55));
        b.sets.insert(keys::node_key(&node), s);
    }
    for i in 0..PODS {
        let (ns, pod, node) = (format!("ns-{}", i % 100), format!("pod-{i}"), format!("node-{}", i % NODES));
        let base = [(l::NAMESPACE_NAME, ns.as_str()), (l::POD_NAME, pod.as_str()), (l::NODENAME, node.as_str())];
        let mut p = MetricSet { labels: labels(&[&base[..], &[(l::TYPE, "pod")]].concat()), ..Default::default() };
        cgroup(&mut p, i, round);
        p.set("network/rx", MetricValue::Int(i as i64 * 77));
        p.set("network/tx", MetricValue::Int(i as i64 * 55));
        b.sets.insert(keys::pod_key(&ns, &pod), p);
        let extra = [(l::TYPE, "pod_container"), (l::CONTAINER_NAME, "app"), (l::CONTAINER_BASE_IMAGE, "nginx:1.27")];
        let mut c = MetricSet { labels: labels(&[&base[..], &extra[..]].concat()), ..Default::default() };
        cgroup(&mut c, i, round);
        c.set("cpu/limit", MetricValue::Int(500));
        c.set("cpu/request", MetricValue::Int(100));
        c.set("memory/limit", MetricValue::Int(1 << 28));
        b.sets.insert(keys::pod_container_key(&ns, &pod, "app"), c);
    }
    b
}

/// GETs `uri`: (seconds, bytes, sample lines, largest chunk).
async fn page(st: &ApiState, uri: &str) -> (f64, usize, usize, usize) {
    let t = Instant::now();
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let resp = heapster_api::router(st.clone()).oneshot(req).await.unwrap();
    assert!(resp.status().is_success(), "{uri}: {}", resp.status());
    let (mut bytes, mut lines, mut largest) = (0, 0, 0);
    let mut body = resp.into_body().into_data_stream();
    let mut at_line_start = true;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        largest = largest.max(chunk.len());
        bytes += chunk.len();
        for &c in chunk.iter() {
            if at_line_start && c != b'#' {
                lines += 1;
            }
            at_line_start = c == b'\n';
        }
    }
    (t.elapsed().as_secs_f64(), bytes, lines, largest)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let store = Store::new(StoreConfig { window: Duration::from_secs(900), resolution: Duration::from_secs(60) });
    let now = chrono::Utc::now().timestamp_millis() / 1000 * 1000;
    for round in 0..3 {
        store.ingest(Arc::new(batch(now - (2 - round as i64) * 60_000, round)));
    }
    let st = ApiState::new(Arc::new(store), Arc::new(Registry::default()), Duration::from_secs(60), Duration::MAX);
    println!("{PODS} pods with one container each on {NODES} nodes, 3 batches in the store");
    for uri in
        ["/metrics/cadvisor", "/metrics/resource", "/metrics/cadvisor?node=node-7", "/metrics/cadvisor?namespace=ns-3"]
    {
        page(&st, uri).await; // warm-up
        let runs = 3;
        let mut best = f64::MAX;
        let mut last = (0.0, 0, 0, 0);
        for _ in 0..runs {
            last = page(&st, uri).await;
            best = best.min(last.0);
        }
        let (_, bytes, series, largest) = last;
        println!(
            "{uri:<36} {series:>7} series {:>6.1} MB in {:>7.1} ms (best of {runs}): {:>6.2} ms per 10k series, \
             largest chunk {} KiB",
            bytes as f64 / 1e6,
            best * 1e3,
            best * 1e3 / series as f64 * 10_000.0,
            largest / 1024
        );
    }
}
