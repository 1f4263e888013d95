//! Router-level tests: a store fed with hand-made batches, queried through `tower::ServiceExt::oneshot`.

mod cadvisor;
mod cardinality;
mod cost;
mod export;
mod fuzz;
mod historical;
mod legacy_clients;
mod model_api;
mod ops;

use crate::{ApiState, router};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, Timestamp, labels as l};
use heapster_store::{Store, StoreConfig};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// A big integer that an `f64` cannot hold exactly: it must come back unchanged.
pub const BIG: i64 = 9_007_199_254_740_993;

/// Timestamps of the three fixture batches: three, two and one minute ago (recent, so `/healthz` is happy and the
/// default `end=now` includes all of them).
pub fn times() -> [Timestamp; 3] {
    // Taken once per test process: a test that builds its state and then asks for the times again must get the
    // same three, even when a second boundary passes in between on a loaded machine.
    static NOW: std::sync::OnceLock<Timestamp> = std::sync::OnceLock::new();
    let now = *NOW.get_or_init(|| chrono::Utc::now().timestamp_millis() / 1000 * 1000);
    [now - 180_000, now - 120_000, now - 60_000]
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn set(pairs: &[(&str, &str)], create_time: Timestamp, scrape_time: Timestamp) -> MetricSet {
    MetricSet { labels: labels(pairs), create_time, scrape_time, ..Default::default() }
}

/// One batch: cluster, node n1, its system container `system.slice/docker`, namespace ns1, pod ns1/p1 on n1 and its
/// container c1, plus pod ns1/p2 on another node. `i` (0, 1, 2) varies the values.
pub fn batch(ts: Timestamp, i: i64) -> DataBatch {
    let mut b = DataBatch { timestamp: ts, ..Default::default() };
    // The same start time in every batch (batches are a minute apart): an hour before the first batch.
    let create = ts - i * 60_000 - 3_600_000;

    let mut cluster = set(&[(l::TYPE, "cluster")], 0, ts);
    cluster.set("cpu/usage_rate", MetricValue::Float(100.5 + i as f64));
    cluster.set("memory/usage", MetricValue::Int(1000 + i));
    b.sets.insert("cluster".into(), cluster);

    let mut node = set(&[(l::TYPE, "node"), (l::HOSTNAME, "n1"), (l::NODENAME, "n1"), (l::HOST_ID, "h-1")], create, ts);
    node.set("cpu/usage", MetricValue::Int(1_000_000 * (i + 1)));
    node.set("cpu/usage_rate", MetricValue::Float(250.25 + i as f64));
    node.set("memory/usage", MetricValue::Int(BIG + i));
    node.add_labeled("filesystem/usage", labels(&[(l::RESOURCE_ID, "/dev/sda1")]), MetricValue::Int(10 + i));
    node.add_labeled("filesystem/usage", labels(&[(l::RESOURCE_ID, "/dev/sdb1")]), MetricValue::Int(20 + i));
    b.sets.insert("node:n1".into(), node);

    let mut sys = set(
        &[
            (l::TYPE, "sys_container"),
            (l::HOSTNAME, "n1"),
            (l::NODENAME, "n1"),
            (l::CONTAINER_NAME, "system.slice/docker"),
        ],
        create,
        ts,
    );
    sys.set("memory/usage", MetricValue::Int(500 + i));
    b.sets.insert("node:n1/container:system.slice/docker".into(), sys);

    let mut ns = set(&[(l::TYPE, "ns"), (l::NAMESPACE_NAME, "ns1")], 0, ts);
    ns.set("memory/usage", MetricValue::Int(700 + i));
    b.sets.insert("namespace:ns1".into(), ns);

    let pod_labels = |pod: &str, node: &str| {
        vec![
            (l::TYPE, "pod"),
            (l::NAMESPACE_NAME, "ns1"),
            (l::POD_NAMESPACE, "ns1"),
            (l::POD_NAME, pod),
            (l::POD_ID, "uid-1"),
            (l::NODENAME, node),
            (l::HOSTNAME, node),
            (l::LABELS, "app:web"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<Labels>()
    };
    let mut pod =
        MetricSet { labels: pod_labels("p1", "n1"), create_time: create, scrape_time: ts, ..Default::default() };
    pod.set("cpu/usage_rate", MetricValue::Float(12.75 + i as f64));
    pod.set("memory/usage", MetricValue::Int(300 + i));
    b.sets.insert("namespace:ns1/pod:p1".into(), pod);
    let mut pod2 =
        MetricSet { labels: pod_labels("p2", "n2"), create_time: create, scrape_time: ts, ..Default::default() };
    pod2.set("memory/usage", MetricValue::Int(400 + i));
    b.sets.insert("namespace:ns1/pod:p2".into(), pod2);

    let mut c = set(
        &[
            (l::TYPE, "pod_container"),
            (l::NAMESPACE_NAME, "ns1"),
            (l::POD_NAME, "p1"),
            (l::CONTAINER_NAME, "c1"),
            (l::NODENAME, "n1"),
            (l::HOSTNAME, "n1"),
        ],
        create,
        ts,
    );
    c.set("cpu/usage", MetricValue::Int(5_000 * (i + 1)));
    c.set("memory/usage", MetricValue::Int(200 + i));
    c.add_labeled("filesystem/usage", labels(&[(l::RESOURCE_ID, "/")]), MetricValue::Int(4096 + i));
    b.sets.insert("namespace:ns1/pod:p1/container:c1".into(), c);
    b
}

pub fn empty_state(max_staleness: Duration) -> ApiState {
    let store = Store::new(StoreConfig { window: Duration::from_secs(3600), resolution: Duration::from_secs(60) });
    ApiState::new(Arc::new(store), Arc::new(Registry::default()), Duration::from_secs(60), max_staleness)
}

/// The store holding the three fixture batches.
pub fn state() -> ApiState {
    let st = empty_state(Duration::from_secs(300));
    for (i, ts) in times().into_iter().enumerate() {
        st.store.ingest(Arc::new(batch(ts, i as i64)));
    }
    st
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub async fn get(st: &ApiState, uri: &str) -> Reply {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let resp = router(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let content_type =
        resp.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    Reply { status, content_type, body: String::from_utf8_lossy(&body).into_owned() }
}

/// GETs `uri`, asserts 200 and returns the JSON.
pub async fn get_ok(st: &ApiState, uri: &str) -> serde_json::Value {
    let r = get(st, uri).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
    assert!(r.content_type.starts_with("application/json"), "{uri}: {}", r.content_type);
    r.json()
}

/// GETs `uri`, asserts `status` and a one-line JSON error that mentions `needle`.
pub async fn get_err(st: &ApiState, uri: &str, status: StatusCode, needle: &str) {
    let r = get(st, uri).await;
    assert_eq!(r.status, status, "{uri}: {}", r.body);
    assert!(!r.body.contains('\n'), "{uri}: multi-line error {}", r.body);
    // Handlers answer `{"error":...}`; unknown paths a Kubernetes Status, whose reason is in `message`.
    let v = r.json();
    let field = if v["kind"] == "Status" { "message" } else { "error" };
    let msg = v[field].as_str().unwrap_or_else(|| panic!("{uri}: no {field} field in {}", r.body)).to_owned();
    assert!(msg.contains(needle), "{uri}: {msg:?} does not mention {needle:?}");
}
