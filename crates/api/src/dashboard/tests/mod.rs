//! The dashboard's endpoints on a store filled with known batches: values come back as ingested, and paging,
//! search, filters and sorting pick the right rows.

mod fuzz;
mod scale;

use crate::ApiState;
use crate::tests::{get, get_err, get_ok};
use axum::http::StatusCode;
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, Timestamp, labels as l};
use heapster_store::{Store, StoreConfig};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Batch timestamps: three batches a resolution (10 s) apart, recent. Fixed once per run, so that a test that
/// reads them again after a second boundary still sees the same times.
fn times() -> [Timestamp; 3] {
    static NOW: std::sync::OnceLock<Timestamp> = std::sync::OnceLock::new();
    let now = *NOW.get_or_init(|| chrono::Utc::now().timestamp_millis() / 1000 * 1000);
    [now - 30_000, now - 20_000, now - 10_000]
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Pods of the fixture: (namespace, name, node, CPU millicores or none, working set bytes).
const PODS: &[(&str, &str, &str, Option<f64>, i64)] = &[
    ("ns-a", "web-1", "n1", Some(120.5), 300_000),
    ("ns-a", "web-2", "n2", Some(80.25), 500_000),
    ("ns-a", "db-0", "n1", Some(450.0), 900_000),
    ("ns-b", "Cache-0", "n2", None, 100_000),
    ("ns-b", "job-7", "n1", Some(5.0), 700_000),
];

/// One batch: cluster, nodes n1 and n2 (two filesystems each), namespaces, [`PODS`] with one container each, and
/// a system container on n1. `i` shifts every value so that the newest batch is recognisable.
fn batch(ts: Timestamp, i: i64) -> DataBatch {
    let mut b = DataBatch { timestamp: ts, ..Default::default() };
    let fi = i as f64;
    let mut cluster = MetricSet { labels: labels(&[(l::TYPE, "cluster")]), ..Default::default() };
    cluster.set("cpu/usage_rate", MetricValue::Float(1000.5 + fi));
    cluster.set("memory/working_set", MetricValue::Int(8_000_000 + i));
    cluster.set("cpu/limit", MetricValue::Int(4000));
    cluster.set("memory/limit", MetricValue::Int(16_000_000));
    cluster.set("network/rx_rate", MetricValue::Float(2048.0 + fi));
    b.sets.insert("cluster".into(), cluster);
    for (n, node) in ["n1", "n2"].into_iter().enumerate() {
        let n = n as i64;
        let mut s = MetricSet { labels: labels(&[(l::TYPE, "node"), (l::NODENAME, node)]), ..Default::default() };
        s.set("cpu/usage_rate", MetricValue::Float(600.0 + 100.0 * n as f64 + fi));
        s.set("memory/working_set", MetricValue::Int(4_000_000 + n * 1000 + i));
        s.set("memory/usage", MetricValue::Int(5_000_000 + n * 1000 + i));
        s.set("network/rx_rate", MetricValue::Float(1000.0 + n as f64 + fi));
        s.set("network/tx_rate", MetricValue::Float(500.0 + n as f64 + fi));
        s.add_labeled("filesystem/usage", labels(&[(l::RESOURCE_ID, "/dev/sda1")]), MetricValue::Int(10_000 + i));
        s.add_labeled("filesystem/usage", labels(&[(l::RESOURCE_ID, "/dev/sdb1")]), MetricValue::Int(20_000 + n + i));
        b.sets.insert(format!("node:{node}"), s);
    }
    let mut sys = MetricSet {
        labels: labels(&[(l::TYPE, "sys_container"), (l::NODENAME, "n1"), (l::CONTAINER_NAME, "system.slice/docker")]),
        ..Default::default()
    };
    sys.set("cpu/usage_rate", MetricValue::Float(33.0 + fi));
    b.sets.insert("node:n1/container:system.slice/docker".into(), sys);
    for ns in ["ns-a", "ns-b"] {
        let mut s = MetricSet { labels: labels(&[(l::TYPE, "ns"), (l::NAMESPACE_NAME, ns)]), ..Default::default() };
        s.set("memory/working_set", MetricValue::Int(1_000_000 + i));
        b.sets.insert(format!("namespace:{ns}"), s);
    }
    for &(ns, pod, node, cpu, mem) in PODS {
        let base = [(l::NAMESPACE_NAME, ns), (l::POD_NAME, pod), (l::NODENAME, node)];
        let mut p = MetricSet { labels: labels(&[&base[..], &[(l::TYPE, "pod")]].concat()), ..Default::default() };
        if let Some(cpu) = cpu {
            p.set("cpu/usage_rate", MetricValue::Float(cpu + fi));
        }
        p.set("memory/working_set", MetricValue::Int(mem + i));
        b.sets.insert(format!("namespace:{ns}/pod:{pod}"), p);
        let mut c = MetricSet {
            labels: labels(&[&base[..], &[(l::TYPE, "pod_container"), (l::CONTAINER_NAME, "main")]].concat()),
            ..Default::default()
        };
        c.set("memory/working_set", MetricValue::Int(mem / 2 + i));
        b.sets.insert(format!("namespace:{ns}/pod:{pod}/container:main"), c);
    }
    b
}

fn store_state(window: Duration) -> ApiState {
    let store = Store::new(StoreConfig { window, resolution: Duration::from_secs(10) });
    ApiState::new(Arc::new(store), Arc::new(Registry::default()), Duration::from_secs(10), Duration::from_secs(60))
}

/// The store holding the three fixture batches; the newest has `i = 2`.
fn state() -> ApiState {
    let st = store_state(Duration::from_secs(900));
    for (i, ts) in times().into_iter().enumerate() {
        st.store.ingest(Arc::new(batch(ts, i as i64)));
    }
    st
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

/// The keys of a list answer's items, in order.
fn keys(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn overview_counts_sets_and_shows_the_newest_cluster_values() {
    let st = state();
    let v = rt().block_on(get_ok(&st, "/api/v1/dashboard/overview"));
    assert_eq!(v["timestamp"], json!(times()[2]));
    assert_eq!((v["resolutionMs"].clone(), v["windowMs"].clone()), (json!(10_000), json!(900_000)));
    assert_eq!((v["nodes"].clone(), v["namespaces"].clone()), (json!(2), json!(2)));
    // Five pods; five pod containers plus one system container.
    assert_eq!((v["pods"].clone(), v["containers"].clone()), (json!(5), json!(6)));
    let c = &v["cluster"];
    assert_eq!(c["cpu"], json!(1002.5));
    assert_eq!(c["memory"], json!(8_000_002));
    assert_eq!((c["cpuLimit"].clone(), c["memoryLimit"].clone()), (json!(4000), json!(16_000_000)));
}

#[test]
fn a_list_row_holds_the_newest_ingested_values() {
    let st = state();
    let v = rt().block_on(get_ok(&st, "/api/v1/dashboard/nodes"));
    assert_eq!((v["total"].clone(), v["all"].clone(), v["kind"].clone()), (json!(2), json!(2), json!("nodes")));
    assert_eq!(v["timestamp"], json!(times()[2]));
    let n2 = &v["items"][1];
    assert_eq!(n2["key"], "node:n2");
    assert_eq!(n2["name"], "n2");
    assert_eq!(n2["type"], "node");
    assert_eq!(n2["cpu"], json!(702.0));
    assert_eq!(n2["memory"], json!(4_001_002));
    assert_eq!((n2["rxRate"].clone(), n2["txRate"].clone()), (json!(1003.0), json!(503.0)));
    // Both filesystems of the newest batch: 10_002 + 20_003.
    assert_eq!(n2["filesystem"], json!(30_005));

    let v = rt().block_on(get_ok(&st, "/api/v1/dashboard/containers?q=docker"));
    assert_eq!(keys(&v), ["node:n1/container:system.slice/docker"]);
    let c = &v["items"][0];
    assert_eq!(
        (c["name"].clone(), c["node"].clone(), c["cpu"].clone()),
        (json!("system.slice/docker"), json!("n1"), json!(35.0))
    );
    assert_eq!(c["memory"], Value::Null);

    let v = rt().block_on(get_ok(&st, "/api/v1/dashboard/pods?q=web-2"));
    let p = &v["items"][0];
    assert_eq!(
        (p["namespace"].clone(), p["name"].clone(), p["node"].clone()),
        (json!("ns-a"), json!("web-2"), json!("n2"))
    );
    assert_eq!((p["cpu"].clone(), p["memory"].clone()), (json!(82.25), json!(500_002)));
}

#[test]
fn pages_cover_every_row_once_in_order() {
    let st = state();
    let rt = rt();
    let all = keys(&rt.block_on(get_ok(&st, "/api/v1/dashboard/containers?per_page=200")));
    assert_eq!(all.len(), 6);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "name order is key order");
    let mut paged = Vec::new();
    for page in 1..=3 {
        let v = rt.block_on(get_ok(&st, &format!("/api/v1/dashboard/containers?per_page=2&page={page}")));
        assert_eq!((v["page"].clone(), v["perPage"].clone(), v["total"].clone()), (json!(page), json!(2), json!(6)));
        paged.extend(keys(&v));
    }
    assert_eq!(paged, all);
    // Past the end: no rows, but the total, so the page can offer to go back.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/containers?per_page=2&page=4"));
    assert_eq!((keys(&v).len(), v["total"].clone()), (0, json!(6)));
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/containers?sort=name&order=desc&per_page=3"));
    assert_eq!(keys(&v), all.iter().rev().take(3).cloned().collect::<Vec<_>>());
}

#[test]
fn sorting_by_usage_ranks_rows_and_puts_missing_values_last() {
    let st = state();
    let rt = rt();
    let pod = |k: &str| format!("namespace:{k}");
    // CPU descending by default: db-0 (452), web-1 (122.5), web-2 (82.25), job-7 (7), then Cache-0 without CPU.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?sort=cpu"));
    let want = ["ns-a/pod:db-0", "ns-a/pod:web-1", "ns-a/pod:web-2", "ns-b/pod:job-7", "ns-b/pod:Cache-0"];
    assert_eq!(keys(&v), want.map(pod));
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?sort=cpu&order=asc"));
    let want = ["ns-b/pod:job-7", "ns-a/pod:web-2", "ns-a/pod:web-1", "ns-a/pod:db-0", "ns-b/pod:Cache-0"];
    assert_eq!(keys(&v), want.map(pod));
    // The top two by memory, as the overview's "top consumers" asks.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?sort=memory&order=desc&per_page=2"));
    assert_eq!(keys(&v), ["ns-a/pod:db-0", "ns-b/pod:job-7"].map(pod));
    assert_eq!(v["items"][0]["memory"], json!(900_002));
    // Page 2 of a CPU sort continues where page 1 stopped.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?sort=cpu&per_page=2&page=2"));
    assert_eq!(keys(&v), ["ns-a/pod:web-2", "ns-b/pod:job-7"].map(pod));
}

#[test]
fn search_and_filters_pick_the_matching_rows() {
    let st = state();
    let rt = rt();
    // Case-insensitive, on namespace, pod, node and container names.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?q=CACHE"));
    assert_eq!(keys(&v), ["namespace:ns-b/pod:Cache-0"]);
    assert_eq!((v["total"].clone(), v["all"].clone()), (json!(1), json!(5)));
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?q=web"));
    assert_eq!(v["total"], json!(2));
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?node=n2"));
    assert_eq!(keys(&v), ["namespace:ns-a/pod:web-2", "namespace:ns-b/pod:Cache-0"]);
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?namespace=ns-b&node=n1"));
    assert_eq!(keys(&v), ["namespace:ns-b/pod:job-7"]);
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/containers?namespace=ns-a&pod=db-0"));
    assert_eq!(keys(&v), ["namespace:ns-a/pod:db-0/container:main"]);
    assert_eq!(v["items"][0]["memory"], json!(450_002));
    // A node's containers: its pods' containers and its system containers.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/containers?node=n1"));
    assert_eq!(v["total"], json!(4));
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?q=nothing-like-this"));
    assert_eq!((v["total"].clone(), keys(&v).len()), (json!(0), 0));
    // A filter value is exact: `ns` is no namespace.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?namespace=ns"));
    assert_eq!(v["total"], json!(0));
}

#[test]
fn series_are_aligned_on_the_batch_times_with_the_ingested_values() {
    let st = state();
    let rt = rt();
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/series?key=node:n1"));
    assert_eq!(v["timestamps"], json!(times()));
    assert_eq!(v["series"]["cpu/usage_rate"], json!([600.0, 601.0, 602.0]));
    assert_eq!(v["series"]["memory/usage"], json!([5_000_000, 5_000_001, 5_000_002]));
    assert_eq!(v["series"]["network/tx_rate"], json!([500.0, 501.0, 502.0]));
    // Two filesystems summed: 10_000 + i + 20_000 + i.
    assert_eq!(v["series"]["filesystem/usage"], json!([30_000, 30_002, 30_004]));
    assert_eq!(v["summedFromNodes"], json!([]));
    // A pod without CPU has no CPU series at all, rather than a line of zeros.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/series?key=namespace:ns-b/pod:Cache-0"));
    assert!(v["series"].get("cpu/usage_rate").is_none(), "{v}");
    assert_eq!(v["series"]["memory/working_set"], json!([100_000, 100_001, 100_002]));
    // What the cluster set lacks (here: memory/usage, network/tx_rate, filesystem/usage) is the nodes' sum, and
    // the answer says so; what it has is its own.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/series?key=cluster"));
    assert_eq!(v["series"]["cpu/usage_rate"], json!([1000.5, 1001.5, 1002.5]));
    assert_eq!(v["series"]["network/rx_rate"], json!([2048.0, 2049.0, 2050.0]));
    assert_eq!(v["series"]["network/tx_rate"], json!([1001.0, 1003.0, 1005.0]));
    assert_eq!(v["series"]["filesystem/usage"], json!([60_001, 60_005, 60_009]));
    assert_eq!(v["summedFromNodes"], json!(["memory/usage", "network/tx_rate", "filesystem/usage"]));
}

#[test]
fn series_of_a_set_that_appears_later_have_gaps_not_zeros() {
    let st = store_state(Duration::from_secs(900));
    let [t0, t1, _] = times();
    st.store.ingest(Arc::new(batch(t0, 0)));
    let mut b = batch(t1, 1);
    let mut late = MetricSet { labels: labels(&[(l::TYPE, "node"), (l::NODENAME, "n3")]), ..Default::default() };
    late.set("cpu/usage_rate", MetricValue::Float(9.5));
    b.sets.insert("node:n3".into(), late);
    st.store.ingest(Arc::new(b));
    let rt = rt();
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/series?key=node:n3"));
    assert_eq!(v["timestamps"], json!([t1]));
    assert_eq!(v["series"]["cpu/usage_rate"], json!([9.5]));
    // The cluster's network series exists in both batches, its filesystem (from nodes) too.
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/series?key=cluster"));
    assert_eq!(v["timestamps"], json!([t0, t1]));
}

#[test]
fn lists_follow_new_batches() {
    let st = store_state(Duration::from_secs(900));
    let [t0, t1, t2] = times();
    st.store.ingest(Arc::new(batch(t0, 0)));
    let rt = rt();
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?q=db-0"));
    assert_eq!((v["timestamp"].clone(), v["items"][0]["cpu"].clone()), (json!(t0), json!(450.0)));
    st.store.ingest(Arc::new(batch(t1, 7)));
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?q=db-0"));
    assert_eq!((v["timestamp"].clone(), v["items"][0]["cpu"].clone()), (json!(t1), json!(457.0)));
    // A pod gone from the batches leaves the list once it ages out of the window.
    let short = store_state(Duration::from_secs(5));
    short.store.ingest(Arc::new(batch(t1, 0)));
    let mut b = batch(t2, 0);
    b.sets.retain(|k, _| !k.contains("db-0"));
    short.store.ingest(Arc::new(b));
    let v = rt.block_on(get_ok(&short, "/api/v1/dashboard/pods"));
    assert_eq!(v["total"], json!(4));
    assert!(!keys(&v).iter().any(|k| k.contains("db-0")));
}

#[test]
fn a_pod_recreated_on_another_node_shows_its_new_node() {
    let st = store_state(Duration::from_secs(900));
    let t0 = times()[0];
    st.store.ingest(Arc::new(batch(t0, 0)));
    let rt = rt();
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?node=n1"));
    assert!(keys(&v).contains(&"namespace:ns-a/pod:web-1".to_owned()));
    let moved = |ts: Timestamp| {
        let mut b = batch(ts, 0);
        b.sets.get_mut("namespace:ns-a/pod:web-1").unwrap().labels.insert(l::NODENAME, "n2");
        b
    };
    // Shown with its new node and listed under it from the next batch on.
    st.store.ingest(Arc::new(moved(t0 + 100)));
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?q=web-1"));
    assert_eq!(v["items"][0]["node"], "n2");
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?node=n2"));
    assert!(keys(&v).contains(&"namespace:ns-a/pod:web-1".to_owned()), "web-1 not listed under n2");
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods?node=n1"));
    assert!(!keys(&v).contains(&"namespace:ns-a/pod:web-1".to_owned()));
}

#[test]
fn set_details_show_labels_and_metrics() {
    let st = state();
    let v = rt().block_on(get_ok(&st, "/api/v1/dashboard/set?key=namespace:ns-a/pod:web-1"));
    assert_eq!(v["type"], "pod");
    assert_eq!(v["labels"]["nodename"], "n1");
    assert_eq!(v["metrics"], json!(["cpu/usage_rate", "memory/working_set"]));
    assert_eq!(v["lastSeen"], json!(times()[2]));
}

#[test]
fn an_empty_store_answers_zeros_not_errors() {
    let st = store_state(Duration::from_secs(900));
    let rt = rt();
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/overview"));
    assert_eq!(
        (v["timestamp"].clone(), v["pods"].clone(), v["cluster"]["cpu"].clone()),
        (Value::Null, json!(0), Value::Null)
    );
    let v = rt.block_on(get_ok(&st, "/api/v1/dashboard/pods"));
    assert_eq!((v["total"].clone(), v["items"].clone()), (json!(0), json!([])));
    rt.block_on(get_err(&st, "/api/v1/dashboard/series?key=cluster", StatusCode::NOT_FOUND, "no metric set"));
}

#[test]
fn bad_parameters_answer_400_with_the_reason() {
    let st = state();
    let rt = rt();
    let cases: &[(&str, &str)] = &[
        ("/api/v1/dashboard/pods?page=0", "page"),
        ("/api/v1/dashboard/pods?page=-1", "page"),
        ("/api/v1/dashboard/pods?page=two", "page"),
        ("/api/v1/dashboard/pods?per_page=201", "per_page"),
        ("/api/v1/dashboard/pods?per_page=0", "per_page"),
        ("/api/v1/dashboard/pods?sort=cost", "sort"),
        ("/api/v1/dashboard/pods?order=up", "order"),
        ("/api/v1/dashboard/pods?limit=5", "unknown parameter \"limit\""),
        ("/api/v1/dashboard/pods?page=1&page=2", "given twice"),
        ("/api/v1/dashboard/overview?x=1", "takes: none"),
        ("/api/v1/dashboard/series", "key: missing"),
        ("/api/v1/dashboard/series?key=", "key"),
        ("/api/v1/dashboard/set?key=cluster&metric=cpu", "unknown parameter"),
    ];
    for (uri, needle) in cases {
        rt.block_on(get_err(&st, uri, StatusCode::BAD_REQUEST, needle));
    }
    let long = "x".repeat(300);
    rt.block_on(get_err(&st, &format!("/api/v1/dashboard/pods?q={long}"), StatusCode::BAD_REQUEST, "q: longer"));
    rt.block_on(get_err(&st, "/api/v1/dashboard/series?key=node:nope", StatusCode::NOT_FOUND, "node:nope"));
    rt.block_on(get_err(&st, "/api/v1/dashboard/set?key=node:nope", StatusCode::NOT_FOUND, "node:nope"));
}

#[test]
fn the_page_and_every_file_it_loads_are_served() {
    let st = state();
    let rt = rt();
    let page = rt.block_on(get(&st, "/"));
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);
    assert!(page.body.contains("/dashboard/app.js"));
    // Every local file named by the page or imported by a module, found by following the references.
    let mut todo: Vec<String> = Vec::new();
    let refs = |body: &str, todo: &mut Vec<String>| {
        for part in body.split(['"', '\'']) {
            if let Some(f) = part.strip_prefix("/dashboard/").or_else(|| part.strip_prefix("./"))
                && (f.ends_with(".js") || f.ends_with(".css") || f.starts_with("vendor/"))
            {
                todo.push(f.to_owned());
            }
        }
    };
    refs(&page.body, &mut todo);
    let mut seen = std::collections::BTreeSet::new();
    while let Some(f) = todo.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        let r = rt.block_on(get(&st, &format!("/dashboard/{f}")));
        assert_eq!(r.status, StatusCode::OK, "/dashboard/{f}");
        let want = if f.ends_with(".js") {
            "text/javascript"
        } else if f.ends_with(".css") {
            "text/css"
        } else {
            "text/plain"
        };
        assert!(r.content_type.starts_with(want), "{f}: {}", r.content_type);
        if f.ends_with(".js") && !f.starts_with("vendor/") {
            refs(&r.body, &mut todo);
        }
    }
    for f in ["app.js", "api.js", "charts.js", "format.js", "table.js", "views.js", "vendor/uPlot.iife.min.js"] {
        assert!(seen.contains(f), "{f} not reached from the page: {seen:?}");
    }
    rt.block_on(get_err(&st, "/dashboard/nope.js", StatusCode::NOT_FOUND, "nope.js"));
    rt.block_on(get_err(&st, "/dashboard/../Cargo.toml", StatusCode::NOT_FOUND, ""));
}

#[test]
fn the_page_may_load_only_this_origin() {
    let st = state();
    let req = axum::http::Request::builder().uri("/").body(axum::body::Body::empty()).unwrap();
    let resp = rt().block_on(tower::ServiceExt::oneshot(crate::router(st), req)).unwrap();
    let csp = resp.headers().get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(!csp.contains("http"), "{csp}");
}
