//! Entity lists: nodes, namespaces, pods, containers, free containers, and every key (debug).
//!
//! Names come from the store keys rather than from labels (Heapster read the `hostname`/`pod_name` labels), so a
//! name listed here is always a name the metric routes accept. Lists are sorted and free of duplicates. A list under
//! a parent (pods of a namespace, containers of a pod) is 404 only when the parent is unknown altogether: neither
//! its own set nor any child is in the store.

use super::entity::Entity;
use crate::ApiState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use heapster_model::{MetricSetType, labels};
use heapster_store::Store;

type ListResult = Result<Json<Vec<String>>, ApiError>;

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

/// The children found, an empty list for an unknown parent as Heapster answered (200, `[]`).
fn under(_store: &Store, _parent: Entity, names: Vec<String>) -> ListResult {
    Ok(Json(names))
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
    under(&st.store, Entity::Namespace(ns), names)
}

/// `/namespaces/{ns}/pods/{pod}/containers/`
pub async fn pod_containers(State(st): State<ApiState>, Path((ns, pod)): Path<(String, String)>) -> ListResult {
    let names = children(&st.store, MetricSetType::PodContainer, &format!("namespace:{ns}/pod:{pod}/container:"), true);
    under(&st.store, Entity::Pod(ns, pod), names)
}

/// `/nodes/{node}/freecontainers/`
pub async fn free_containers(State(st): State<ApiState>, Path(node): Path<String>) -> ListResult {
    let names = children(&st.store, MetricSetType::SysContainer, &format!("node:{node}/container:"), true);
    under(&st.store, Entity::Node(node), names)
}

/// `/nodes/{node}/pods/`: pods whose `nodename` (or, from older sources, `hostname`) label is the node, as
/// `namespace/pod` so that pods of the same name in two namespaces stay apart.
pub async fn node_pods(State(st): State<ApiState>, Path(node): Path<String>) -> ListResult {
    let mut names = Vec::new();
    for key in st.store.keys_of_type(MetricSetType::Pod) {
        let Some(info) = st.store.set_info(&key) else { continue };
        let on_node = info.labels.get(labels::NODENAME).or_else(|| info.labels.get(labels::HOSTNAME));
        if on_node != Some(&node) {
            continue;
        }
        if let Some((ns, pod)) = key.strip_prefix("namespace:").and_then(|r| r.split_once("/pod:")) {
            names.push(format!("{ns}/{pod}"));
        }
    }
    names.sort();
    names.dedup();
    under(&st.store, Entity::Node(node), names)
}

/// `/debug/allkeys`
pub async fn all_keys(State(st): State<ApiState>) -> Json<Vec<String>> {
    Json(st.store.keys())
}
