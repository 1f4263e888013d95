//! Entity lists: nodes, namespaces, pods, containers, free containers, and every key (debug).
//!
//! Names come from the store keys rather than from labels (Heapster read the `hostname`/`pod_name` labels), so a
//! name listed here is always a name the metric routes accept. Lists are sorted and free of duplicates. A list under
//! an unknown parent is empty (200, `[]`), as Heapster answered.

use crate::ApiState;
use axum::Json;
use axum::extract::{Path, State};
use heapster_model::{MetricSetType, labels};
use heapster_store::Store;

type ListResult = Json<Vec<String>>;

/// The part of each key of `set_type` after `prefix`, for keys with no further `/`-separated level. Container
/// names may contain `/`, so `nested_ok` lets them through.
fn children(store: &Store, set_type: MetricSetType, prefix: &str, nested_ok: bool) -> Vec<String> {
    let mut names: Vec<String> = store
        .keys_of_type(set_type)
        .into_iter()
        .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
        .filter(|rest| !rest.is_empty() && (nested_ok || !rest.contains('/')))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `/nodes/`
pub async fn nodes(State(st): State<ApiState>) -> Json<Vec<String>> {
    Json(children(&st.store, MetricSetType::Node, "node:", false))
}

/// `/namespaces/`
pub async fn namespaces(State(st): State<ApiState>) -> Json<Vec<String>> {
    Json(children(&st.store, MetricSetType::Namespace, "namespace:", false))
}

/// `/namespaces/{ns}/pods/`
pub async fn namespace_pods(State(st): State<ApiState>, Path(ns): Path<String>) -> ListResult {
    let names = children(&st.store, MetricSetType::Pod, &format!("namespace:{ns}/pod:"), false);
    Json(names)
}

/// `/namespaces/{ns}/pods/{pod}/containers/`
pub async fn pod_containers(State(st): State<ApiState>, Path((ns, pod)): Path<(String, String)>) -> ListResult {
    let names = children(&st.store, MetricSetType::PodContainer, &format!("namespace:{ns}/pod:{pod}/container:"), true);
    Json(names)
}

/// `/nodes/{node}/freecontainers/`
pub async fn free_containers(State(st): State<ApiState>, Path(node): Path<String>) -> ListResult {
    let names = children(&st.store, MetricSetType::SysContainer, &format!("node:{node}/container:"), true);
    Json(names)
}

/// `/nodes/{node}/pods/`: pods whose `nodename` (or, from older sources, `hostname`) label is the node, as
/// `namespace/pod` so that pods of the same name in two namespaces stay apart.
pub async fn node_pods(State(st): State<ApiState>, Path(node): Path<String>) -> ListResult {
    let mut names = Vec::new();
    for key in st.store.keys_of_type(MetricSetType::Pod) {
        let Some(info) = st.store.set_info(&key) else { continue };
        let on_node = info.labels.get(labels::NODENAME).or_else(|| info.labels.get(labels::HOSTNAME));
        if on_node.is_none_or(|n| *n != node) {
            continue;
        }
        if let Some((ns, pod)) = key.strip_prefix("namespace:").and_then(|r| r.split_once("/pod:")) {
            names.push(format!("{ns}/{pod}"));
        }
    }
    names.sort();
    names.dedup();
    Json(names)
}

/// `/debug/allkeys`
pub async fn all_keys(State(st): State<ApiState>) -> Json<Vec<String>> {
    Json(st.store.keys())
}
