//! NodeMetrics, and the core `/api/v1/nodes` that `kubectl top node` reads beside them for allocatable CPU and
//! memory (its percentage columns).
//!
//! With a kubernetes source, `/api/v1/nodes` is the API server's answer, and a NodeMetrics label selector is
//! resolved by asking the API server which nodes it selects (the store does not keep node labels). Without one,
//! every node in the store is answered as a Node heapster makes up: labels `kubernetes.io/hostname`,
//! `kubernetes.io/os` and `kubernetes.io/arch`, capacity and allocatable from the node's `cpu/limit` and
//! `memory/limit` (the machine's CPUs and memory; allocatable equals capacity, nothing is reserved), Ready.

use super::objects::{Meta, NodeMetrics, ResourceList, time};
use super::quantity::go_duration;
use super::{ApiVersion, ListParams, Selectors, Status, UsageReader, int, pass_through, path_param};
use crate::ApiState;
use axum::Json;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use heapster_model::quantity::{binary_si, decimal_si};
use heapster_model::{Labels, MetricSetType, keys};
use serde_json::{Value, json};
use std::collections::HashSet;

pub(crate) fn core_routes() -> Router<ApiState> {
    Router::new().route("/api/v1/nodes", get(core_list)).route("/api/v1/nodes/{name}", get(core_get))
}

/// Names of the nodes in the store, sorted.
fn node_names(st: &ApiState) -> Vec<String> {
    let keys = st.store.keys_of_type(MetricSetType::Node);
    keys.into_iter().filter_map(|k| k.strip_prefix("node:").map(str::to_owned)).collect()
}

/// The labels a kubelet would give this node, for nodes heapster answers itself.
pub(crate) fn host_labels(name: &str) -> Labels {
    Labels::from([
        ("kubernetes.io/arch".to_owned(), super::discovery::go_arch().to_owned()),
        ("kubernetes.io/hostname".to_owned(), name.to_owned()),
        ("kubernetes.io/os".to_owned(), std::env::consts::OS.to_owned()),
    ])
}

/// Names of the nodes the label selector picks: the API server's answer when there is one.
async fn selected_by_labels(st: &ApiState, sel: &Selectors) -> Result<Option<HashSet<String>>, Status> {
    if sel.labels.is_empty() {
        return Ok(None);
    }
    let Some(proxy) = &st.kube_api else {
        let names = node_names(st).into_iter().filter(|n| sel.labels.matches(&host_labels(n))).collect();
        return Ok(Some(names));
    };
    let path = format!("/api/v1/nodes?labelSelector={}", percent_encode(sel.label_text.as_deref().unwrap_or("")));
    let r = proxy.get(&path).await.map_err(|e| {
        Status::unavailable(format!("cannot ask the Kubernetes API server which nodes the selector picks: {e}"))
    })?;
    if r.status != 200 {
        return Err(Status::unavailable(format!(
            "the Kubernetes API server answered {} to {path}: {}",
            r.status,
            String::from_utf8_lossy(&r.body).chars().take(200).collect::<String>().replace('\n', " ")
        )));
    }
    let list: Value = serde_json::from_slice(&r.body)
        .map_err(|e| Status::unavailable(format!("the Kubernetes API server's node list is not JSON: {e}")))?;
    let items = list["items"].as_array().map(Vec::as_slice).unwrap_or_default();
    Ok(Some(items.iter().filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned)).collect()))
}

/// Percent-encodes a query value (everything but unreserved characters).
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn item<'a>(name: &'a str, window: &'a str, u: super::Usage, typed: Option<ApiVersion>) -> NodeMetrics<'a> {
    NodeMetrics {
        kind: typed.map(|_| "NodeMetrics"),
        api_version: typed.map(ApiVersion::api_version),
        metadata: Meta { name, namespace: None, creation_timestamp: time(u.timestamp), labels: None },
        timestamp: time(u.timestamp),
        window,
        usage: ResourceList::from(u),
    }
}

/// `.../nodes`: every node with fresh usage that the selectors pick.
pub(crate) async fn list(
    State(st): State<ApiState>,
    v: ApiVersion,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let sel = match Selectors::from_query(q) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let allowed = match selected_by_labels(&st, &sel).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let window = go_duration(st.resolution);
    let reader = UsageReader::new(&st);
    let names: Vec<String> = node_names(&st)
        .into_iter()
        .filter(|n| sel.fields.matches("", n) && allowed.as_ref().is_none_or(|a| a.contains(n)))
        .collect();
    let items: Vec<NodeMetrics> =
        names.iter().filter_map(|n| reader.read(&keys::node_key(n)).map(|u| item(n, &window, u, None))).collect();
    Json(json!({"kind": "NodeMetricsList", "apiVersion": v.api_version(), "metadata": {}, "items": items}))
        .into_response()
}

/// `.../nodes/{name}`: one node, 404 when it has no fresh usage.
pub(crate) async fn get_one(
    State(st): State<ApiState>,
    v: ApiVersion,
    name: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let name = match path_param(name) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = Selectors::from_query(q) {
        return e.into_response();
    }
    // A name with `/` would reach another kind of set through its key (`n1/container:kubelet`).
    if name.contains('/') {
        return Status::object_not_found(&v.resource("nodemetrics"), &name).into_response();
    }
    let window = go_duration(st.resolution);
    match UsageReader::new(&st).read(&keys::node_key(&name)) {
        Some(u) => Json(item(&name, &window, u, Some(v))).into_response(),
        None => Status::object_not_found(&v.resource("nodemetrics"), &name).into_response(),
    }
}

/// A Node heapster answers for itself: see the module documentation.
fn synthesized_node(st: &ApiState, name: &str, labels: &Labels) -> Option<Value> {
    if name.contains('/') {
        return None;
    }
    let key = keys::node_key(name);
    let info = st.store.set_info(&key)?;
    let none = Labels::new();
    let latest = |metric: &str| st.store.latest(&key, metric, &none).map(|p| int(p.value));
    let resources = |capacity_metric: &str, cpu: &str, memory_metric: &str, memory: &str| {
        let mut out = serde_json::Map::new();
        if let Some(m) = latest(capacity_metric).or_else(|| latest(cpu)) {
            out.insert("cpu".into(), Value::String(decimal_si(m, -3)));
        }
        if let Some(b) = latest(memory_metric).or_else(|| latest(memory)) {
            out.insert("memory".into(), Value::String(binary_si(b)));
        }
        Value::Object(out)
    };
    let capacity = resources("cpu/node_capacity", "cpu/limit", "memory/node_capacity", "memory/limit");
    let allocatable = resources("cpu/node_allocatable", "cpu/limit", "memory/node_allocatable", "memory/limit");
    let created = time(info.create_time);
    Some(json!({
        "metadata": {"name": name, "labels": labels, "creationTimestamp": created},
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "HeapsterScrapes",
                "message": "heapster has fresh metrics of this node", "lastHeartbeatTime": time(info.last_seen),
            }],
            "addresses": [{"type": "Hostname", "address": name}],
            "nodeInfo": {"operatingSystem": std::env::consts::OS, "architecture": super::discovery::go_arch()},
        },
    }))
}

fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
}

/// `/api/v1/nodes`: passed through, or the nodes in the store.
async fn core_list(State(st): State<ApiState>, uri: Uri, q: Result<Query<ListParams>, QueryRejection>) -> Response {
    if let Some(proxy) = &st.kube_api {
        return pass_through(proxy.as_ref(), path_and_query(&uri)).await;
    }
    let sel = match Selectors::from_query(q) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let items: Vec<Value> = node_names(&st)
        .into_iter()
        .filter(|n| sel.fields.matches("", n))
        .filter_map(|n| {
            let labels = host_labels(&n);
            sel.labels.matches(&labels).then(|| synthesized_node(&st, &n, &labels)).flatten()
        })
        .collect();
    Json(json!({"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": items})).into_response()
}

/// `/api/v1/nodes/{name}`: passed through, or the node from the store.
async fn core_get(State(st): State<ApiState>, uri: Uri, name: Result<Path<String>, PathRejection>) -> Response {
    if let Some(proxy) = &st.kube_api {
        return pass_through(proxy.as_ref(), path_and_query(&uri)).await;
    }
    let name = match path_param(name) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    match synthesized_node(&st, &name, &host_labels(&name)) {
        Some(mut node) => {
            if let Some(o) = node.as_object_mut() {
                o.insert("kind".into(), "Node".into());
                o.insert("apiVersion".into(), "v1".into());
            }
            Json(node).into_response()
        }
        None => Status::object_not_found("nodes", &name).into_response(),
    }
}
