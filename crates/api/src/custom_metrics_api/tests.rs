//! custom.metrics.k8s.io through the router: discovery, each route in both versions, selectors, quantities and
//! the errors a client sees.

use super::{model_metric_name, quantity};
use crate::ApiState;
use crate::tests::{empty_state, get};
use axum::http::StatusCode;
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, labels as l};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const V2: &str = "/apis/custom.metrics.k8s.io/v1beta2";
const V1: &str = "/apis/custom.metrics.k8s.io/v1beta1";

fn set(pairs: &[(&str, &str)], values: &[(&'static str, MetricValue)]) -> MetricSet {
    let mut s = MetricSet {
        labels: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Labels>(),
        ..Default::default()
    };
    for (name, v) in values {
        s.set(name, *v);
    }
    s
}

/// Pods web-1, web-2 (app:web) and db-1 (app:db) in ns1, a pod in ns2, nodes n1 and n2, namespace ns1; and a
/// pod seen only ten minutes ago.
fn state() -> (ApiState, String) {
    let st = empty_state(Duration::from_secs(300));
    let now = chrono::Utc::now().timestamp_millis() / 1000 * 1000;
    let pod = |ns: &str, name: &str, labels: &str, rx: f64| {
        let pairs = [(l::TYPE, "pod"), (l::NAMESPACE_NAME, ns), (l::POD_NAME, name), (l::LABELS, labels)];
        let values = [("network/rx_rate", MetricValue::Float(rx)), ("cpu/usage_rate", MetricValue::Int(250))];
        (format!("namespace:{ns}/pod:{name}"), set(&pairs, &values))
    };
    let mut old = DataBatch { timestamp: now - 600_000, ..Default::default() };
    let (k, s) = pod("ns1", "gone", "app:web", 9.0);
    old.sets.insert(k, s);
    st.store.ingest(Arc::new(old));
    let mut b = DataBatch { timestamp: now, ..Default::default() };
    for (ns, name, labels, rx) in [
        ("ns1", "web-1", "app:web,tier:front", 1536.5),
        ("ns1", "web-2", "app:web", 600_000.0),
        ("ns1", "db-1", "app:db", 0.0),
        ("ns2", "web-3", "app:web", 7.0),
    ] {
        let (k, s) = pod(ns, name, labels, rx);
        b.sets.insert(k, s);
    }
    for (node, oom) in [("n1", 3), ("n2", 0)] {
        let labels = format!("role:{node}");
        let pairs = [(l::TYPE, "node"), (l::NODENAME, node), (l::LABELS, labels.as_str())];
        b.sets.insert(format!("node:{node}"), set(&pairs, &[("memory/oom_kills", MetricValue::Int(oom))]));
    }
    let ns = set(&[(l::TYPE, "ns"), (l::NAMESPACE_NAME, "ns1")], &[("network/rx_rate", MetricValue::Float(601_536.5))]);
    b.sets.insert("namespace:ns1".into(), ns);
    st.store.ingest(Arc::new(b));
    (st, super::time(now))
}

fn items(v: &Value) -> Vec<(String, String)> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["describedObject"]["name"].as_str().unwrap().to_owned(), i["value"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn discovery_lists_every_metric_of_pods_nodes_and_namespaces() {
    let (st, _) = state();
    let group = get(&st, "/apis/custom.metrics.k8s.io").await.json();
    assert_eq!(group["preferredVersion"]["groupVersion"], "custom.metrics.k8s.io/v1beta2");
    assert_eq!(group["versions"].as_array().unwrap().len(), 2);
    let apis = get(&st, "/apis").await.json();
    assert!(apis["groups"].as_array().unwrap().iter().any(|g| g["name"] == "custom.metrics.k8s.io"), "{apis}");
    for v in [V2, V1] {
        let list = get(&st, v).await.json();
        assert_eq!(list["groupVersion"], v.trim_start_matches("/apis/"));
        let resources: Vec<(String, bool)> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["name"].as_str().unwrap().to_owned(), r["namespaced"].as_bool().unwrap()))
            .collect();
        let want = [
            ("pods/cpu_usage_rate", true),
            ("pods/network_rx_rate", true),
            ("nodes/memory_oom_kills", false),
            ("namespaces/network_rx_rate", false),
        ];
        assert_eq!(resources, want.map(|(n, b)| (n.to_owned(), b)));
    }
}

#[tokio::test]
async fn one_pod_in_both_versions() {
    let (st, ts) = state();
    let v2 = get(&st, &format!("{V2}/namespaces/ns1/pods/web-1/network_rx_rate")).await;
    assert_eq!(v2.status, StatusCode::OK, "{}", v2.body);
    assert_eq!(
        v2.json(),
        json!({"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta2", "metadata": {}, "items": [{
            "describedObject": {"kind": "Pod", "namespace": "ns1", "name": "web-1", "apiVersion": "v1"},
            "metric": {"name": "network_rx_rate"}, "timestamp": ts, "windowSeconds": 60, "value": "1536500m"}]})
    );
    let v1 = get(&st, &format!("{V1}/namespaces/ns1/pods/web-1/cpu_usage_rate")).await.json();
    assert_eq!(
        v1["items"][0],
        json!({"describedObject": {"kind": "Pod", "namespace": "ns1", "name": "web-1", "apiVersion": "v1"},
               "metricName": "cpu_usage_rate", "timestamp": ts, "window": 60, "value": "250m"})
    );
    assert_eq!(v1["apiVersion"], "custom.metrics.k8s.io/v1beta1");
}

#[tokio::test]
async fn selector_lists_and_root_objects() {
    let (st, _) = state();
    let all = get(&st, &format!("{V2}/namespaces/ns1/pods/*/network_rx_rate")).await.json();
    assert_eq!(
        items(&all),
        [("db-1".into(), "0".into()), ("web-1".into(), "1536500m".into()), ("web-2".into(), "600k".into())]
    );
    let web = get(&st, &format!("{V2}/namespaces/ns1/pods/*/network_rx_rate?labelSelector=app%3Dweb")).await.json();
    assert_eq!(items(&web).len(), 2, "the pod seen ten minutes ago is not reported: {web}");
    let front = get(&st, &format!("{V1}/namespaces/ns1/pods/*/network_rx_rate?labelSelector=tier+in+(front)")).await;
    assert_eq!(items(&front.json()), [("web-1".into(), "1536500m".into())]);
    let none = get(&st, &format!("{V2}/namespaces/ns9/pods/*/network_rx_rate")).await;
    assert_eq!((none.status, none.json()["items"].as_array().unwrap().len()), (StatusCode::OK, 0));
    let nodes = get(&st, &format!("{V2}/nodes/*/memory_oom_kills?labelSelector=role%3Dn1")).await.json();
    assert_eq!(items(&nodes), [("n1".into(), "3".into())]);
    let n2 = get(&st, &format!("{V2}/nodes/n2/memory_oom_kills")).await.json();
    assert_eq!(n2["items"][0]["describedObject"], json!({"kind": "Node", "name": "n2", "apiVersion": "v1"}));
    let ns = get(&st, &format!("{V2}/namespaces/ns1/metrics/network_rx_rate")).await.json();
    assert_eq!(ns["items"][0]["describedObject"], json!({"kind": "Namespace", "name": "ns1", "apiVersion": "v1"}));
    assert_eq!(ns["items"][0]["value"], "601536500m");
}

#[tokio::test]
async fn errors_are_status_objects() {
    let (st, _) = state();
    let check = |path: String, code: StatusCode, needle: &'static str| {
        let st = st.clone();
        async move {
            let r = get(&st, &path).await;
            assert_eq!(r.status, code, "{path}: {}", r.body);
            let v = r.json();
            assert_eq!(v["kind"], "Status", "{path}");
            assert_eq!(v["code"], code.as_u16());
            assert!(v["message"].as_str().unwrap().contains(needle), "{path}: {v}");
        }
    };
    check(
        format!("{V2}/namespaces/ns1/pods/web-1/no_such_metric"),
        StatusCode::NOT_FOUND,
        "metric no_such_metric for pods",
    )
    .await;
    check(format!("{V2}/namespaces/ns1/pods/nope/network_rx_rate"), StatusCode::NOT_FOUND, "pod ns1/nope").await;
    check(format!("{V2}/namespaces/ns1/pods/gone/network_rx_rate"), StatusCode::NOT_FOUND, "last two resolutions")
        .await;
    check(format!("{V2}/nodes/n1/network_rx_rate"), StatusCode::NOT_FOUND, "for node n1").await;
    check(format!("{V1}/namespaces/ns2/metrics/network_rx_rate"), StatusCode::NOT_FOUND, "namespace ns2").await;
    check(
        format!("{V2}/namespaces/ns1/pods/*/network_rx_rate?labelSelector=a%3D%3D%3D"),
        StatusCode::BAD_REQUEST,
        "labelSelector",
    )
    .await;
    check(format!("{V2}/namespaces/ns1/services/s/network_rx_rate"), StatusCode::NOT_FOUND, "").await;
    // A metric selector that needs a label matches none of heapster's single-series metrics.
    let r = get(&st, &format!("{V2}/namespaces/ns1/pods/*/network_rx_rate?metricLabelSelector=interface%3Deth0")).await;
    assert_eq!(r.json()["items"], json!([]));
    let r =
        get(&st, &format!("{V2}/namespaces/ns1/pods/web-1/network_rx_rate?metricLabelSelector=interface%3Deth0")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[test]
fn names_and_quantities() {
    assert_eq!(model_metric_name("network_rx_rate", Vec::new).as_deref(), Some("network/rx_rate"));
    assert_eq!(model_metric_name("cpu_usage_rate", Vec::new).as_deref(), Some("cpu/usage_rate"));
    assert_eq!(model_metric_name("memory_oom_kills", Vec::new).as_deref(), Some("memory/oom_kills"));
    assert_eq!(model_metric_name("my_app_qps", || vec!["my_app/qps".into()]).as_deref(), Some("my_app/qps"));
    assert_eq!(model_metric_name("nothing", Vec::new), None);
    assert_eq!(quantity("cpu/usage_rate", 250.0), "250m");
    assert_eq!(quantity("cpu/usage_rate", 2000.0), "2");
    assert_eq!(quantity("network/rx_rate", 500_000.0), "500k");
    assert_eq!(quantity("network/rx_rate", 0.0005), "1m");
    assert_eq!(quantity("network/rx_rate", 1.25), "1250m");
    assert_eq!(quantity("memory/usage", f64::NAN), "0");
}
