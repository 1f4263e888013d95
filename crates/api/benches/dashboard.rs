//! What one dashboard request costs with 150,000 pods (and their 150,000 containers, 5,000 nodes and 500
//! namespaces) in the store: the first list request after a batch (which reads every pod's newest values) and the
//! requests after it (filter, partial sort, one page), each through the whole router, JSON included.
//!
//!     cargo bench -p heapster-api --bench dashboard
//!
//! Prints figures; asserts nothing about time (a shared machine's timings are not a test).

use axum::body::Body;
use axum::http::Request;
use heapster_api::ApiState;
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, labels as l};
use heapster_store::{Store, StoreConfig};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const PODS: usize = 150_000;
const NODES: usize = 5_000;
const NAMESPACES: usize = 500;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// One batch: every pod with one container, each with the metrics the dashboard reads.
fn batch(ts: i64, round: usize) -> DataBatch {
    let mut b = DataBatch { timestamp: ts, ..Default::default() };
    let mut cluster = MetricSet { labels: labels(&[(l::TYPE, "cluster")]), ..Default::default() };
    cluster.set("cpu/usage_rate", MetricValue::Float(1e6));
    cluster.set("memory/working_set", MetricValue::Int(1 << 40));
    b.sets.insert("cluster".into(), cluster);
    for n in 0..NODES {
        let mut s = MetricSet {
            labels: labels(&[(l::TYPE, "node"), (l::NODENAME, &format!("node-{n}"))]),
            ..Default::default()
        };
        s.set("cpu/usage_rate", MetricValue::Float((n * 31 % 4000) as f64));
        s.set("memory/working_set", MetricValue::Int(n as i64 * 1_000_000));
        b.sets.insert(format!("node:node-{n}"), s);
    }
    for ns in 0..NAMESPACES {
        let mut s = MetricSet {
            labels: labels(&[(l::TYPE, "ns"), (l::NAMESPACE_NAME, &format!("ns-{ns}"))]),
            ..Default::default()
        };
        s.set("cpu/usage_rate", MetricValue::Float(ns as f64));
        b.sets.insert(format!("namespace:ns-{ns}"), s);
    }
    for i in 0..PODS {
        let (ns, pod, node) = (format!("ns-{}", i % NAMESPACES), format!("pod-{i}"), format!("node-{}", i % NODES));
        let base = [(l::NAMESPACE_NAME, ns.as_str()), (l::POD_NAME, pod.as_str()), (l::NODENAME, node.as_str())];
        let cpu = ((i * 7919 + round) % 100_000) as f64 / 10.0;
        let mut p = MetricSet { labels: labels(&[&base[..], &[(l::TYPE, "pod")]].concat()), ..Default::default() };
        p.set("cpu/usage_rate", MetricValue::Float(cpu));
        p.set("memory/working_set", MetricValue::Int((i * 4096) as i64));
        p.set("network/rx_rate", MetricValue::Float(cpu * 3.0));
        p.set("network/tx_rate", MetricValue::Float(cpu * 2.0));
        b.sets.insert(format!("namespace:{ns}/pod:{pod}"), p);
        let mut c = MetricSet {
            labels: labels(&[&base[..], &[(l::TYPE, "pod_container"), (l::CONTAINER_NAME, "main")]].concat()),
            ..Default::default()
        };
        c.set("cpu/usage_rate", MetricValue::Float(cpu));
        c.set("memory/working_set", MetricValue::Int((i * 4096) as i64));
        c.add_labeled("filesystem/usage", labels(&[(l::RESOURCE_ID, "/")]), MetricValue::Int(i as i64));
        b.sets.insert(format!("namespace:{ns}/pod:{pod}/container:main"), c);
    }
    b
}

/// Status and body size of one request through the router.
async fn get(st: &ApiState, uri: &str) -> (u16, usize) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let resp = heapster_api::router(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, body.len())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let store =
        Arc::new(Store::new(StoreConfig { window: Duration::from_secs(900), resolution: Duration::from_secs(15) }));
    let st =
        ApiState::new(store.clone(), Arc::new(Registry::default()), Duration::from_secs(15), Duration::from_secs(60));
    let now = chrono::Utc::now().timestamp_millis() / 1000 * 1000;
    let t = Instant::now();
    for round in 0..4 {
        store.ingest(Arc::new(batch(now - (3 - round as i64) * 15_000, round)));
    }
    let s = store.stats();
    println!(
        "store: {PODS} pods, {PODS} containers, {NODES} nodes, {NAMESPACES} namespaces, 4 batches: {} sets, {} series, {} points ({:.1?} to fill)",
        s.sets,
        s.series,
        s.points,
        t.elapsed()
    );

    // The first request ever builds every list, reading every pod's and container's node from its labels.
    for uri in ["/api/v1/dashboard/pods", "/api/v1/dashboard/containers", "/api/v1/dashboard/overview"] {
        let t = Instant::now();
        let (status, bytes) = rt.block_on(get(&st, uri));
        assert_eq!(status, 200, "{uri}");
        println!("first request ever   {:>9.1?}  {bytes:>6} B  {uri}", t.elapsed());
    }
    // Each later batch: the lists are rebuilt (nodes of pods already listed are kept), and the first request
    // sorting by a column reads that column for every row of its list. This is what a dashboard left open costs
    // the server per batch, whatever the number of viewers.
    store.ingest(Arc::new(batch(now + 15_000, 4)));
    for uri in [
        "/api/v1/dashboard/overview",
        "/api/v1/dashboard/pods?sort=cpu&order=desc&per_page=10",
        "/api/v1/dashboard/pods?sort=memory&order=desc&per_page=10",
    ] {
        let t = Instant::now();
        let (status, bytes) = rt.block_on(get(&st, uri));
        assert_eq!(status, 200, "{uri}");
        println!("first after a batch  {:>9.1?}  {bytes:>6} B  {uri}", t.elapsed());
    }
    let cases = [
        "/api/v1/dashboard/overview",
        "/api/v1/dashboard/pods",
        "/api/v1/dashboard/pods?sort=cpu&order=desc&per_page=50",
        "/api/v1/dashboard/pods?sort=memory&order=desc&per_page=10",
        "/api/v1/dashboard/pods?sort=cpu&page=2999&per_page=50",
        "/api/v1/dashboard/pods?q=pod-14999&sort=cpu",
        "/api/v1/dashboard/pods?node=node-42",
        "/api/v1/dashboard/pods?per_page=200",
        "/api/v1/dashboard/containers?sort=cpu",
        "/api/v1/dashboard/nodes?sort=cpu",
        "/api/v1/dashboard/series?key=namespace:ns-1/pod:pod-1",
        "/api/v1/dashboard/series?key=cluster",
    ];
    const N: u32 = 20;
    for uri in cases {
        let (status, bytes) = rt.block_on(get(&st, uri));
        assert_eq!(status, 200, "{uri}");
        let t = Instant::now();
        for _ in 0..N {
            rt.block_on(get(&st, uri));
        }
        println!("per request          {:>9.1?}  {bytes:>6} B  {uri}", t.elapsed() / N);
    }
}
