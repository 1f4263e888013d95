//! 150,000 pods in the store: a page answer stays small and is still right.

use super::{keys, rt, store_state};
use crate::ApiState;
use crate::tests::get_ok;
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, labels as l};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const PODS: usize = 150_000;

/// Pod `i`: namespace `ns-{i % 500}`, node `node-{i % 5000}`, CPU `(i * 7919) % 100_000 / 10` millicores (a
/// permutation, so every value is distinct), working set `i * 1024` bytes.
pub fn cpu_of(i: usize) -> f64 {
    ((i * 7919) % 100_000) as f64 / 10.0 + (i / 100_000) as f64 * 0.01
}

/// One batch of [`PODS`] pods at `ts`.
pub fn pods_batch(ts: i64) -> DataBatch {
    let mut b = DataBatch { timestamp: ts, ..Default::default() };
    for i in 0..PODS {
        let (ns, pod, node) = (format!("ns-{}", i % 500), format!("pod-{i}"), format!("node-{}", i % 5000));
        let labels: Labels = [(l::TYPE, "pod"), (l::NAMESPACE_NAME, &ns), (l::POD_NAME, &pod), (l::NODENAME, &node)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut s = MetricSet { labels, ..Default::default() };
        s.set("cpu/usage_rate", MetricValue::Float(cpu_of(i)));
        s.set("memory/working_set", MetricValue::Int(i as i64 * 1024));
        b.sets.insert(format!("namespace:{ns}/pod:{pod}"), s);
    }
    b
}

/// A store holding two batches of [`PODS`] pods.
pub fn big_state() -> ApiState {
    let st = store_state(Duration::from_secs(900));
    let now = chrono::Utc::now().timestamp_millis() / 1000 * 1000;
    st.store.ingest(Arc::new(pods_batch(now - 10_000)));
    st.store.ingest(Arc::new(pods_batch(now)));
    st
}

#[test]
fn a_page_of_150k_pods_is_small_and_right() {
    let st = big_state();
    let rt = rt();
    let uri = "/api/v1/dashboard/pods?sort=cpu&order=desc&per_page=50";
    let r = rt.block_on(crate::tests::get(&st, uri));
    // 50 rows of a few hundred bytes each: far from the megabytes of a whole list.
    assert!(r.body.len() < 32 * 1024, "{} bytes", r.body.len());
    let v = r.json();
    assert_eq!((v["total"].clone(), v["all"].clone()), (json!(PODS), json!(PODS)));
    // The top 50 by CPU, computed here from the formula the batch was built with.
    let mut want: Vec<usize> = (0..PODS).collect();
    want.sort_by(|&a, &b| cpu_of(b).total_cmp(&cpu_of(a)));
    let want: Vec<String> = want[..50].iter().map(|i| format!("namespace:ns-{}/pod:pod-{i}", i % 500)).collect();
    assert_eq!(keys(&v), want);
    let i: usize = want[0].rsplit('-').next().unwrap().parse().unwrap();
    assert_eq!(v["items"][0]["cpu"], json!(cpu_of(i)));
    assert_eq!(v["items"][0]["memory"], json!(i * 1024));

    // The last page, by name: page 3000 of 50.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?per_page=50&page=3000"));
    assert_eq!(keys(&v).len(), 50);
    let mut all: Vec<String> = (0..PODS).map(|i| format!("namespace:ns-{}/pod:pod-{i}", i % 500)).collect();
    all.sort();
    assert_eq!(keys(&v), all[PODS - 50..]);

    // Search narrows 150,000 to the few that match, with the total.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?q=pod-14999&per_page=200"));
    // pod-14999 and pod-149990..=pod-149999.
    assert_eq!(v["total"], json!(11));
    // A node filter: node-42 holds pods 42, 5042, ... (30 of them).
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?node=node-42&per_page=200"));
    assert_eq!(v["total"], json!(PODS / 5000));
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/overview"));
    assert_eq!(v["pods"], json!(PODS));
}
