//! The metrics API through the router: discovery, NodeMetrics and PodMetrics in every version, selectors, the
//! core routes kubectl reads, pass-through to a (recording) API server, and random input.

use super::{KubeApiProxy, ProxyResponse};
use crate::ApiState;
use crate::tests::{Reply, empty_state, get};
use async_trait::async_trait;
use axum::http::StatusCode;
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, Timestamp, labels as l};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MIB: i64 = 1 << 20;
const V1B1: &str = "/apis/metrics.k8s.io/v1beta1";

fn set(pairs: &[(&str, &str)], values: &[(&'static str, MetricValue)]) -> MetricSet {
    let mut s = MetricSet {
        labels: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Labels>(),
        create_time: 1_700_000_000_000,
        ..Default::default()
    };
    for (name, v) in values {
        s.set(name, *v);
    }
    s
}

fn usage(cpu: f64, mem: i64) -> Vec<(&'static str, MetricValue)> {
    vec![("cpu/usage_rate", MetricValue::Float(cpu)), ("memory/working_set", MetricValue::Int(mem))]
}

fn container(b: &mut DataBatch, ns: &str, pod: &str, c: &str, labels: &str, values: &[(&'static str, MetricValue)]) {
    let pairs = [
        (l::TYPE, "pod_container"),
        (l::NAMESPACE_NAME, ns),
        (l::POD_NAME, pod),
        (l::CONTAINER_NAME, c),
        (l::NODENAME, "n1"),
        (l::LABELS, labels),
    ];
    b.sets.insert(format!("namespace:{ns}/pod:{pod}/container:{c}"), set(&pairs, values));
    let pod_pairs =
        [(l::TYPE, "pod"), (l::NAMESPACE_NAME, ns), (l::POD_NAME, pod), (l::NODENAME, "n1"), (l::LABELS, labels)];
    b.sets.insert(format!("namespace:{ns}/pod:{pod}"), set(&pod_pairs, &[]));
}

/// A cluster: node n1 (full usage), node n2 (no memory), pods in ns1 and ns2, one pod with a container without
/// data, one pod seen only five minutes ago, and a kubelet system container that is no pod.
fn cluster_state() -> (ApiState, Timestamp) {
    let st = empty_state(Duration::from_secs(300));
    let now = chrono::Utc::now().timestamp_millis() / 1000 * 1000;
    let mut old = DataBatch { timestamp: now - 300_000, ..Default::default() };
    container(&mut old, "ns1", "gone", "c", "app:web", &usage(5.0, MIB));
    st.store.ingest(Arc::new(old));

    let mut b = DataBatch { timestamp: now, ..Default::default() };
    let mut n1 = usage(250.25, 2048 * MIB);
    n1.extend([("cpu/limit", MetricValue::Int(4000)), ("memory/limit", MetricValue::Int(8192 * MIB))]);
    b.sets.insert("node:n1".into(), set(&[(l::TYPE, "node"), (l::NODENAME, "n1")], &n1));
    let n2 = [("cpu/usage_rate", MetricValue::Float(1.0))];
    b.sets.insert("node:n2".into(), set(&[(l::TYPE, "node"), (l::NODENAME, "n2")], &n2));
    let kubelet = [(l::TYPE, "sys_container"), (l::NODENAME, "n1"), (l::CONTAINER_NAME, "kubelet")];
    b.sets.insert("node:n1/container:kubelet".into(), set(&kubelet, &usage(9.0, MIB)));
    container(&mut b, "ns1", "web-1", "c1", "app:web,tier:front", &usage(12.5, 100 * MIB));
    container(&mut b, "ns1", "web-1", "c2", "app:web,tier:front", &[("memory/working_set", MetricValue::Int(MIB))]);
    container(&mut b, "ns1", "db-1", "main", "app:db", &usage(80.6664, 300 * MIB + 4096));
    container(&mut b, "ns2", "web-2", "c1", "app:web", &usage(1000.0, 1000));
    st.store.ingest(Arc::new(b));
    (st, now)
}

/// This host in standalone mode: node h1 and three cgroups.
fn standalone_state() -> ApiState {
    let st = empty_state(Duration::from_secs(300));
    let now = chrono::Utc::now().timestamp_millis();
    let mut b = DataBatch { timestamp: now, ..Default::default() };
    let mut node = usage(500.0, 1024 * MIB);
    node.extend([("cpu/limit", MetricValue::Int(2000)), ("memory/limit", MetricValue::Int(4096 * MIB + 1024))]);
    b.sets.insert("node:h1".into(), set(&[(l::TYPE, "node"), (l::HOSTNAME, "h1")], &node));
    for (path, cpu) in [
        ("system.slice/docker.service", 100.0),
        ("init.scope", 1.0),
        ("user.slice/user-1000.slice/session-2.scope", 7.5),
    ] {
        let pairs = [(l::TYPE, "sys_container"), (l::HOSTNAME, "h1"), (l::CONTAINER_NAME, path)];
        b.sets.insert(format!("node:h1/container:{path}"), set(&pairs, &usage(cpu, 10 * MIB)));
    }
    st.store.ingest(Arc::new(b));
    st
}

async fn ok(st: &ApiState, uri: &str) -> Value {
    let r = get(st, uri).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
    assert!(r.content_type.starts_with("application/json"), "{uri}: {}", r.content_type);
    r.json()
}

/// Asserts a Kubernetes Status with `code` and a one-line message mentioning `needle`.
fn assert_status(r: &Reply, uri: &str, code: u16, reason: &str, needle: &str) {
    assert_eq!(r.status.as_u16(), code, "{uri}: {}", r.body);
    let v = r.json();
    assert_eq!(v["kind"], "Status", "{uri}: {v}");
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["code"], code);
    assert_eq!(v["reason"], reason, "{uri}: {v}");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains(needle) && !msg.contains('\n'), "{uri}: {msg:?} does not mention {needle:?}");
}

async fn status(st: &ApiState, uri: &str, code: u16, reason: &str, needle: &str) {
    assert_status(&get(st, uri).await, uri, code, reason, needle);
}

fn names(list: &Value) -> Vec<String> {
    let items = list["items"].as_array().unwrap_or_else(|| panic!("no items in {list}"));
    items
        .iter()
        .map(|i| match i["metadata"]["namespace"].as_str() {
            Some(ns) => format!("{ns}/{}", i["metadata"]["name"].as_str().unwrap()),
            None => i["metadata"]["name"].as_str().unwrap().to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn discovery_documents() {
    let st = empty_state(Duration::from_secs(60));
    let v = ok(&st, "/api").await;
    assert_eq!((v["kind"].as_str(), v["versions"].clone()), (Some("APIVersions"), json!(["v1"])));
    let v = ok(&st, "/apis").await;
    assert_eq!(v["kind"], "APIGroupList");
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups[0]["name"], "metrics.k8s.io");
    assert_eq!(groups[0]["preferredVersion"]["groupVersion"], "metrics.k8s.io/v1beta1");
    assert_eq!(groups[0]["versions"][1]["version"], "v1alpha1");
    assert_eq!(groups[1]["name"], "metrics");
    let v = ok(&st, "/apis/metrics.k8s.io").await;
    assert_eq!((v["kind"].as_str(), v["name"].as_str()), (Some("APIGroup"), Some("metrics.k8s.io")));
    assert_eq!(ok(&st, "/apis/metrics").await["preferredVersion"]["groupVersion"], "metrics/v1alpha1");
    for (path, gv) in [
        (V1B1, "metrics.k8s.io/v1beta1"),
        ("/apis/metrics.k8s.io/v1alpha1", "metrics.k8s.io/v1alpha1"),
        ("/apis/metrics/v1alpha1", "metrics/v1alpha1"),
    ] {
        let v = ok(&st, path).await;
        assert_eq!((v["kind"].as_str(), v["groupVersion"].as_str()), (Some("APIResourceList"), Some(gv)));
        let kinds: Vec<&str> = v["resources"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["NodeMetrics", "PodMetrics"]);
        assert_eq!(v["resources"][1]["namespaced"], true);
    }
    let v = ok(&st, "/api/v1").await;
    assert_eq!(v["resources"][0]["name"], "nodes");
    let v = ok(&st, "/version").await;
    assert_eq!(v["major"], "1");
    assert!(v["gitVersion"].as_str().unwrap().starts_with("v1."), "{v}");
}

#[tokio::test]
async fn node_metrics_in_every_version() {
    let (st, now) = cluster_state();
    for (prefix, api_version) in [
        (V1B1, "metrics.k8s.io/v1beta1"),
        ("/apis/metrics.k8s.io/v1alpha1", "metrics.k8s.io/v1alpha1"),
        ("/apis/metrics/v1alpha1", "metrics/v1alpha1"),
    ] {
        let list = ok(&st, &format!("{prefix}/nodes")).await;
        assert_eq!((list["kind"].as_str(), list["apiVersion"].as_str()), (Some("NodeMetricsList"), Some(api_version)));
        // n2 has no memory/working_set: not reported rather than reported as zero.
        assert_eq!(names(&list), ["n1"]);
        let n1 = &list["items"][0];
        assert_eq!(n1["usage"], json!({"cpu": "250250u", "memory": "2Gi"}));
        assert_eq!(n1["window"], "1m0s");
        assert_eq!(n1["timestamp"], crate::types::rfc3339(now));
        let one = ok(&st, &format!("{prefix}/nodes/n1")).await;
        assert_eq!((one["kind"].as_str(), one["apiVersion"].as_str()), (Some("NodeMetrics"), Some(api_version)));
        assert_eq!(one["usage"], n1["usage"]);
        // With a trailing slash, as Heapster's router answered.
        assert_eq!(ok(&st, &format!("{prefix}/nodes/")).await, list);
        assert_eq!(ok(&st, &format!("{prefix}/nodes/n1/")).await, one);
        assert_eq!(ok(&st, &format!("{prefix}/pods/")).await, ok(&st, &format!("{prefix}/pods")).await);
        let group = if prefix.contains("k8s") { "metrics.k8s.io" } else { "metrics" };
        status(&st, &format!("{prefix}/nodes/n2"), 404, "NotFound", &format!("nodemetrics.{group} \"n2\" not found"))
            .await;
        status(&st, &format!("{prefix}/nodes/n9"), 404, "NotFound", "\"n9\"").await;
    }
    // A name reaching into another set through its key finds nothing.
    status(&st, &format!("{V1B1}/nodes/n1%2Fcontainer:kubelet"), 404, "NotFound", "not found").await;
    // Selectors on nodes: the made-up labels without an API server, and the name.
    assert_eq!(names(&ok(&st, &format!("{V1B1}/nodes?labelSelector=kubernetes.io/hostname%3Dn1")).await), ["n1"]);
    assert!(names(&ok(&st, &format!("{V1B1}/nodes?labelSelector=kubernetes.io/hostname%3Dn2")).await).is_empty());
    assert_eq!(names(&ok(&st, &format!("{V1B1}/nodes?fieldSelector=metadata.name%3Dn1")).await), ["n1"]);
    assert!(names(&ok(&st, &format!("{V1B1}/nodes?fieldSelector=metadata.name!%3Dn1")).await).is_empty());
    status(&st, &format!("{V1B1}/nodes?labelSelector=a%3D%3D%3D"), 400, "BadRequest", "labelSelector").await;
    status(&st, &format!("{V1B1}/nodes?fieldSelector=spec.x%3D1"), 400, "BadRequest", "spec.x").await;
}

#[tokio::test]
async fn pod_metrics_lists_and_gets() {
    let (st, now) = cluster_state();
    let all = ok(&st, &format!("{V1B1}/pods")).await;
    assert_eq!(all["kind"], "PodMetricsList");
    // Sorted by namespace and name; "gone" is too old, the kubelet's system container is no pod.
    assert_eq!(names(&all), ["ns1/db-1", "ns1/web-1", "ns2/web-2"]);
    let db = &all["items"][0];
    assert_eq!(db["timestamp"], crate::types::rfc3339(now));
    assert_eq!(db["window"], "1m0s");
    assert_eq!(db["containers"], json!([{"name": "main", "usage": {"cpu": "80666400n", "memory": "307204Ki"}}]));
    // web-1's c2 has no CPU yet: the pod is reported with c1 alone.
    let web = &all["items"][1];
    assert_eq!(web["containers"], json!([{"name": "c1", "usage": {"cpu": "12500u", "memory": "100Mi"}}]));
    // Issue 16, finding 6: items of a list carry their labels, as single GETs and metrics-server's lists do.
    assert_eq!(web["metadata"]["labels"], json!({"app": "web", "tier": "front"}));
    assert_eq!(all["items"][2]["containers"][0]["usage"], json!({"cpu": "1", "memory": "1k"}));

    let ns1 = ok(&st, &format!("{V1B1}/namespaces/ns1/pods")).await;
    assert_eq!(names(&ns1), ["ns1/db-1", "ns1/web-1"]);
    assert!(names(&ok(&st, &format!("{V1B1}/namespaces/nope/pods")).await).is_empty());
    let one = ok(&st, "/apis/metrics/v1alpha1/namespaces/ns1/pods/web-1").await;
    assert_eq!((one["kind"].as_str(), one["apiVersion"].as_str()), (Some("PodMetrics"), Some("metrics/v1alpha1")));
    assert_eq!(one["metadata"]["labels"], json!({"app": "web", "tier": "front"}));
    status(&st, &format!("{V1B1}/namespaces/ns1/pods/gone"), 404, "NotFound", "podmetrics.metrics.k8s.io \"gone\"")
        .await;
    status(&st, &format!("{V1B1}/namespaces/ns2/pods/web-1"), 404, "NotFound", "web-1").await;
    status(&st, &format!("{V1B1}/namespaces/ns1%2Fpod:web-1/pods/c1"), 404, "NotFound", "c1").await;
}

#[tokio::test]
async fn pod_selectors() {
    let (st, _) = cluster_state();
    let q = |sel: &str| format!("{V1B1}/pods?labelSelector={}", super::nodes::percent_encode(sel));
    for (sel, want) in [
        ("app=web", vec!["ns1/web-1", "ns2/web-2"]),
        ("app==db", vec!["ns1/db-1"]),
        ("app!=web", vec!["ns1/db-1"]),
        ("app in (db, web)", vec!["ns1/db-1", "ns1/web-1", "ns2/web-2"]),
        ("app notin (web)", vec!["ns1/db-1"]),
        ("tier", vec!["ns1/web-1"]),
        ("!tier", vec!["ns1/db-1", "ns2/web-2"]),
        ("app=web,tier=front", vec!["ns1/web-1"]),
        ("app=nothing", vec![]),
    ] {
        assert_eq!(names(&ok(&st, &q(sel)).await), want, "{sel}");
    }
    let f = |sel: &str| format!("{V1B1}/pods?fieldSelector={}", super::nodes::percent_encode(sel));
    assert_eq!(names(&ok(&st, &f("metadata.name=web-2")).await), ["ns2/web-2"]);
    assert_eq!(names(&ok(&st, &f("metadata.namespace=ns1,metadata.name!=db-1")).await), ["ns1/web-1"]);
    let both = format!("{}&labelSelector=app%3Dweb", f("metadata.namespace==ns2"));
    assert_eq!(names(&ok(&st, &both).await), ["ns2/web-2"]);
    for (sel, needle) in [("app in web", "expected '('"), ("app=web,", "label key"), ("a b", "after key")] {
        status(&st, &q(sel), 400, "BadRequest", needle).await;
    }
    status(&st, &f("status.phase=Running"), 400, "BadRequest", "status.phase").await;
    status(&st, &format!("{V1B1}/pods?labelSelector=a&labelSelector=b"), 400, "BadRequest", "query").await;
}

#[tokio::test]
async fn standalone_cgroups_are_pods_and_the_host_a_node() {
    let st = standalone_state();
    let all = ok(&st, &format!("{V1B1}/pods")).await;
    assert_eq!(
        names(&all),
        ["root/init.scope", "system.slice/docker.service", "user.slice.user-1000.slice/session-2.scope"]
    );
    let docker = &all["items"][1];
    assert_eq!(docker["containers"], json!([{"name": "docker.service", "usage": {"cpu": "100m", "memory": "10Mi"}}]));
    assert_eq!(
        docker["metadata"]["labels"],
        json!({"heapster.k8s.io/cgroup-parent": "system.slice", "kubernetes.io/hostname": "h1"})
    );
    let sel = format!("{V1B1}/pods?labelSelector=heapster.k8s.io%2Fcgroup-parent%3Droot");
    assert_eq!(names(&ok(&st, &sel).await), ["root/init.scope"]);
    assert_eq!(names(&ok(&st, &format!("{V1B1}/namespaces/system.slice/pods")).await), ["system.slice/docker.service"]);
    assert_eq!(
        ok(&st, &format!("{V1B1}/namespaces/root/pods/init.scope")).await["containers"][0]["name"],
        "init.scope"
    );

    let nodes = ok(&st, "/api/v1/nodes").await;
    assert_eq!(nodes["kind"], "NodeList");
    let h1 = &nodes["items"][0];
    assert_eq!(h1["metadata"]["name"], "h1");
    assert_eq!(h1["metadata"]["labels"]["kubernetes.io/hostname"], "h1");
    assert_eq!(h1["status"]["capacity"], json!({"cpu": "2", "memory": "4194305Ki"}));
    assert_eq!(h1["status"]["allocatable"], h1["status"]["capacity"]);
    assert_eq!(h1["status"]["conditions"][0]["type"], "Ready");
    let one = ok(&st, "/api/v1/nodes/h1").await;
    assert_eq!((one["kind"].as_str(), one["metadata"]["name"].as_str()), (Some("Node"), Some("h1")));
    status(&st, "/api/v1/nodes/h2", 404, "NotFound", "nodes \"h2\" not found").await;
    assert!(names(&ok(&st, "/api/v1/nodes?labelSelector=kubernetes.io%2Fhostname%3Dh2").await).is_empty());
    status(&st, "/api/v1/nodes?labelSelector=%3D", 400, "BadRequest", "labelSelector").await;

    let pods = ok(&st, "/api/v1/pods").await;
    assert_eq!(pods["kind"], "PodList");
    assert_eq!(names(&pods).len(), 3);
    assert_eq!(names(&ok(&st, "/api/v1/namespaces/root/pods").await), ["root/init.scope"]);
    assert_eq!(ok(&st, "/api/v1/namespaces/root/pods/init.scope").await["kind"], "Pod");
    status(&st, "/api/v1/namespaces/root/pods/nope", 404, "NotFound", "pods \"nope\"").await;
}

#[tokio::test]
async fn core_pods_from_the_store() {
    let (st, _) = cluster_state();
    let pods = ok(&st, "/api/v1/namespaces/ns1/pods?labelSelector=app%3Dweb").await;
    assert_eq!(names(&pods), ["ns1/web-1"]);
    let web = &pods["items"][0];
    assert_eq!(web["spec"]["nodeName"], "n1");
    assert_eq!(web["spec"]["containers"], json!([{"name": "c1"}, {"name": "c2"}]));
    assert_eq!(web["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
}

#[tokio::test]
async fn unknown_paths_are_status_404() {
    let (st, _) = cluster_state();
    for path in ["/apis/metrics.k8s.io/v2", "/apis/other", "/api/v2/x", "/apis/metrics.k8s.io/v1beta1/nodes/n1/x"] {
        status(&st, path, 404, "NotFound", path).await;
    }
}

#[tokio::test]
async fn a_big_list_streams_in_chunks() {
    let st = empty_state(Duration::from_secs(60));
    let now = chrono::Utc::now().timestamp_millis();
    let mut b = DataBatch { timestamp: now, ..Default::default() };
    for i in 0..3000 {
        container(&mut b, &format!("ns{}", i % 7), &format!("pod-{i:05}"), "app", "app:x", &usage(i as f64, MIB));
    }
    st.store.ingest(Arc::new(b));
    let r = get(&st, &format!("{V1B1}/pods")).await;
    assert!(r.body.len() > 3 * 64 * 1024, "the body spans several chunks: {} bytes", r.body.len());
    let list = r.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 3000);
    let ns3 = ok(&st, &format!("{V1B1}/namespaces/ns3/pods?labelSelector=app%3Dx")).await;
    assert_eq!(ns3["items"].as_array().unwrap().len(), 3000 / 7 + usize::from(3000 % 7 > 3));
}

/// An API server that records what it was asked and answers from a table.
struct FakeApiServer {
    asked: Mutex<Vec<String>>,
    down: bool,
}

#[async_trait]
impl KubeApiProxy for FakeApiServer {
    async fn get(&self, path_and_query: &str) -> Result<ProxyResponse, String> {
        self.asked.lock().unwrap().push(path_and_query.to_owned());
        if self.down {
            return Err("connection refused".into());
        }
        let (status, body) = match path_and_query {
            "/version" => (200, json!({"major": "1", "minor": "27", "gitVersion": "v1.27.3"})),
            "/api/v1/nodes/missing" => (404, json!({"kind": "Status", "code": 404, "reason": "NotFound"})),
            p if p.starts_with("/api/v1/nodes?labelSelector=pool") => {
                (200, json!({"kind": "NodeList", "items": [{"metadata": {"name": "n1"}}]}))
            }
            _ => (200, json!({"kind": "NodeList", "items": [], "from": "apiserver"})),
        };
        let body = serde_json::to_vec(&body).unwrap().into();
        Ok(ProxyResponse { status, content_type: Some("application/json".into()), body })
    }
}

#[tokio::test]
async fn pass_through_to_the_api_server() {
    let (mut st, _) = cluster_state();
    let fake = Arc::new(FakeApiServer { asked: Mutex::new(Vec::new()), down: false });
    st.kube_api = Some(fake.clone());
    assert_eq!(ok(&st, "/version").await["gitVersion"], "v1.27.3");
    assert_eq!(ok(&st, "/api/v1/nodes?labelSelector=a%3Db&limit=500").await["from"], "apiserver");
    let r = get(&st, "/api/v1/nodes/missing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["reason"], "NotFound");
    // A NodeMetrics label selector is resolved by the API server, which knows node labels.
    let sel = ok(&st, &format!("{V1B1}/nodes?labelSelector=pool%20in%20(a,b)")).await;
    assert_eq!(names(&sel), ["n1"]);
    let asked = fake.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            "/version",
            "/api/v1/nodes?labelSelector=a%3Db&limit=500",
            "/api/v1/nodes/missing",
            "/api/v1/nodes?labelSelector=pool%20in%20%28a%2Cb%29",
        ]
    );
    // Pods never go to the API server.
    assert_eq!(names(&ok(&st, "/api/v1/namespaces/ns2/pods").await), ["ns2/web-2"]);
    assert_eq!(fake.asked.lock().unwrap().len(), 4);

    st.kube_api = Some(Arc::new(FakeApiServer { asked: Mutex::new(Vec::new()), down: true }));
    status(&st, "/api/v1/nodes", 503, "ServiceUnavailable", "connection refused").await;
    status(&st, &format!("{V1B1}/nodes?labelSelector=x"), 503, "ServiceUnavailable", "connection refused").await;
    // Usage itself never needs the API server.
    assert_eq!(names(&ok(&st, &format!("{V1B1}/nodes")).await), ["n1"]);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const TEMPLATES: &[&str] = &[
        "/apis/metrics.k8s.io/v1beta1/{}",
        "/apis/metrics.k8s.io/v1beta1/nodes/{}",
        "/apis/metrics.k8s.io/v1alpha1/namespaces/{}/pods",
        "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods/{}",
        "/apis/metrics/v1alpha1/pods",
        "/apis/metrics/v1alpha1/nodes",
        "/apis/{}",
        "/api/v1/nodes/{}",
        "/api/v1/namespaces/{}/pods/{}",
        "/api/v1/pods",
        "/api/{}",
    ];

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("ns1".to_owned()),
            Just("web-1".to_owned()),
            Just("n1".to_owned()),
            Just("system.slice".to_owned()),
            Just("%2F".to_owned()),
            Just("%FF".to_owned()),
            "[a-zA-Z0-9_.:,~%/-]{0,12}",
        ]
    }

    /// Selector-shaped text: operators, parentheses, commas, keys with prefixes, and junk.
    fn selector() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            Just("app".to_owned()),
            Just("example.com/app".to_owned()),
            Just("metadata.name".to_owned()),
            Just("metadata.namespace".to_owned()),
            Just(" in ".to_owned()),
            Just(" notin ".to_owned()),
            Just("!".to_owned()),
            Just("=".to_owned()),
            Just("==".to_owned()),
            Just("!=".to_owned()),
            Just(">".to_owned()),
            Just("<".to_owned()),
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just(",".to_owned()),
            Just("\\".to_owned()),
            "[a-z0-9.-]{0,8}",
            "\\PC{0,3}",
        ];
        proptest::collection::vec(atom, 0..8).prop_map(|v| v.concat())
    }

    fn query() -> impl Strategy<Value = String> {
        let key = prop_oneof![Just("labelSelector"), Just("fieldSelector"), Just("limit"), Just("%FF")];
        proptest::collection::vec((key, selector()), 0..3).prop_map(|kv| {
            let q: Vec<String> =
                kv.into_iter().map(|(k, v)| format!("{k}={}", super::super::nodes::percent_encode(&v))).collect();
            q.join("&")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn no_input_gives_a_server_error(
            template in proptest::sample::select(TEMPLATES),
            segments in proptest::collection::vec(segment(), 2),
            q in query(),
            standalone in any::<bool>(),
        ) {
            let mut parts = template.split("{}");
            let mut uri = parts.next().unwrap_or("").to_owned();
            for (i, rest) in parts.enumerate() {
                uri.push_str(&segments[i]);
                uri.push_str(rest);
            }
            if !q.is_empty() {
                uri = format!("{uri}?{q}");
            }
            prop_assume!(uri.parse::<axum::http::Uri>().is_ok());
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let st = if standalone { STANDALONE.with(Clone::clone) } else { CLUSTER.with(Clone::clone) };
            let r = rt.block_on(get(&st, &uri));
            prop_assert!(!r.status.is_server_error(), "{uri}: {} {}", r.status, r.body);
            // Every answer is JSON: an object, a list or a Status.
            prop_assert!(serde_json::from_str::<Value>(&r.body).is_ok(), "{uri}: not JSON: {}", r.body);
        }

        #[test]
        fn selectors_never_panic(text in selector()) {
            let _ = super::super::selector::LabelSelector::parse(&text);
            let _ = super::super::selector::FieldSelector::parse(&text);
        }
    }

    thread_local! {
        static CLUSTER: ApiState = cluster_state().0;
        static STANDALONE: ApiState = standalone_state();
    }
}

/// 150,000 pods: the list is streamed in chunks of about 64 KiB (never one body built whole) and every pod is in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_150k_pods_streams() {
    use futures_util::StreamExt;
    use tower::ServiceExt;
    const PODS: usize = 150_000;
    let st = empty_state(Duration::from_secs(60));
    let now = chrono::Utc::now().timestamp_millis();
    let mut b = DataBatch { timestamp: now, ..Default::default() };
    for i in 0..PODS {
        let (ns, pod) = (format!("ns{}", i % 100), format!("pod-{i:06}"));
        let key = format!("namespace:{ns}/pod:{pod}/container:app");
        let pairs = [(l::TYPE, "pod_container"), (l::NAMESPACE_NAME, ns.as_str()), (l::POD_NAME, pod.as_str())];
        b.sets.insert(key, set(&pairs, &usage(i as f64, MIB)));
    }
    st.store.ingest(Arc::new(b));
    let started = std::time::Instant::now();
    let req = axum::http::Request::builder().uri(format!("{V1B1}/pods")).body(axum::body::Body::empty()).unwrap();
    let resp = crate::router(st.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.into_body().into_data_stream();
    let (mut chunks, mut biggest, mut body) = (0, 0, Vec::new());
    let mut first_chunk = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        first_chunk.get_or_insert_with(|| started.elapsed());
        chunks += 1;
        biggest = biggest.max(chunk.len());
        body.extend_from_slice(&chunk);
    }
    let total = started.elapsed();
    let list: Value = serde_json::from_slice(&body).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), PODS);
    assert_eq!(items[PODS - 1]["containers"][0]["usage"]["memory"], "1Mi");
    assert!(chunks > body.len() / (80 * 1024), "{chunks} chunks for {} bytes", body.len());
    assert!(biggest < 80 * 1024, "a chunk of {biggest} bytes");
    println!(
        "150k pods: {} bytes in {chunks} chunks (largest {biggest}), first chunk after {:?}, all after {total:?}",
        body.len(),
        first_chunk.unwrap_or_default()
    );
}

#[test]
fn cgroup_paths_become_namespaces_and_pods() {
    use super::pods::{cgroup_pod_name, parse_pod_labels};
    let name = |node, path, several| cgroup_pod_name(node, path, several);
    assert_eq!(name("h", "init.scope", false), ("root".into(), "init.scope".into()));
    assert_eq!(name("h", "system.slice/docker.service", false), ("system.slice".into(), "docker.service".into()));
    assert_eq!(name("h", "a/b/c", false), ("a.b".into(), "c".into()));
    // Several hosts (cAdvisor mode): the node keeps same-named cgroups of different hosts apart.
    assert_eq!(name("h2", "system.slice/docker.service", true), ("h2.system.slice".into(), "docker.service".into()));
    let l = parse_pod_labels("app:web,example.com/tier:front;x:");
    assert_eq!(l.len(), 3);
    assert_eq!((l["app"].as_str(), l["example.com/tier"].as_str(), l["x"].as_str()), ("web", "front", ""));
    assert!(parse_pod_labels("").is_empty());
}
