//! Metric-name lists and metric values of one entity, and the `pod-list` variant for several pods at once.

use super::entity::{Entity, lookup};
use crate::ApiState;
use crate::error::ApiError;
use crate::params::{MetricQuery, metric_name, now_millis};
use crate::types::{MetricResult, MetricResultList, ValueStyle};
use axum::Json;
use axum::extract::{Path, Query, State};
use heapster_model::Labels;
use heapster_store::Store;
use std::collections::HashMap;

type Params = Query<HashMap<String, String>>;

/// Every metric the entity has points for, labelled ones included, sorted. (Heapster listed only unlabelled
/// metrics, which hid `filesystem/usage` from anyone browsing the API.)
fn names(store: &Store, entity: Entity) -> Result<Json<Vec<String>>, ApiError> {
    // An unknown entity has no metrics: `[]`, as Heapster answered.
    Ok(Json(lookup(&entity, store).map(|info| info.metric_names).unwrap_or_default()))
}

/// The points of `metric` of a known entity. A labelled metric asked without `labels` (or an unlabelled one asked
/// with them) has no series under those labels and answers an empty result, as Heapster did.
fn points(store: &Store, key: &str, metric: &str, q: &MetricQuery, style: ValueStyle) -> MetricResult {
    let empty = Labels::new();
    let labels = q.labels.as_ref().unwrap_or(&empty);
    let pts = store.points(key, metric, labels, q.start, Some(q.end)).unwrap_or_default();
    MetricResult::from_points(&pts, style)
}

fn value(
    st: &ApiState,
    entity: Entity,
    raw_metric: &str,
    params: &HashMap<String, String>,
) -> Result<Json<MetricResult>, ApiError> {
    let q = MetricQuery::parse(params, now_millis())?;
    let metric = metric_name(raw_metric);
    // An unknown entity or metric has no points: an empty result with Go's zero time, as Heapster answered.
    let known = lookup(&entity, &st.store).is_ok_and(|info| info.metric_names.iter().any(|m| m == metric));
    if !known {
        return Ok(Json(MetricResult::from_points(&[], st.values)));
    }
    Ok(Json(points(&st.store, &entity.key(), metric, &q, st.values)))
}

pub async fn cluster_metric_names(State(st): State<ApiState>) -> Result<Json<Vec<String>>, ApiError> {
    names(&st.store, Entity::Cluster)
}

pub async fn cluster_metric(
    State(st): State<ApiState>,
    Path(metric): Path<String>,
    Query(p): Params,
) -> Result<Json<MetricResult>, ApiError> {
    value(&st, Entity::Cluster, &metric, &p)
}

pub async fn node_metric_names(
    State(st): State<ApiState>,
    Path(node): Path<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    names(&st.store, Entity::Node(node))
}

pub async fn node_metric(
    State(st): State<ApiState>,
    Path((node, metric)): Path<(String, String)>,
    Query(p): Params,
) -> Result<Json<MetricResult>, ApiError> {
    value(&st, Entity::Node(node), &metric, &p)
}

pub async fn free_container_metric_names(
    State(st): State<ApiState>,
    Path((node, container)): Path<(String, String)>,
) -> Result<Json<Vec<String>>, ApiError> {
    names(&st.store, Entity::FreeContainer(node, container))
}

pub async fn free_container_metric(
    State(st): State<ApiState>,
    Path((node, container, metric)): Path<(String, String, String)>,
    Query(p): Params,
) -> Result<Json<MetricResult>, ApiError> {
    value(&st, Entity::FreeContainer(node, container), &metric, &p)
}

pub async fn namespace_metric_names(
    State(st): State<ApiState>,
    Path(ns): Path<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    names(&st.store, Entity::Namespace(ns))
}

pub async fn namespace_metric(
    State(st): State<ApiState>,
    Path((ns, metric)): Path<(String, String)>,
    Query(p): Params,
) -> Result<Json<MetricResult>, ApiError> {
    value(&st, Entity::Namespace(ns), &metric, &p)
}

pub async fn pod_metric_names(
    State(st): State<ApiState>,
    Path((ns, pod)): Path<(String, String)>,
) -> Result<Json<Vec<String>>, ApiError> {
    names(&st.store, Entity::Pod(ns, pod))
}

pub async fn pod_metric(
    State(st): State<ApiState>,
    Path((ns, pod, metric)): Path<(String, String, String)>,
    Query(p): Params,
) -> Result<Json<MetricResult>, ApiError> {
    value(&st, Entity::Pod(ns, pod), &metric, &p)
}

pub async fn pod_container_metric_names(
    State(st): State<ApiState>,
    Path((ns, pod, container)): Path<(String, String, String)>,
) -> Result<Json<Vec<String>>, ApiError> {
    names(&st.store, Entity::PodContainer(ns, pod, container))
}

pub async fn pod_container_metric(
    State(st): State<ApiState>,
    Path((ns, pod, container, metric)): Path<(String, String, String, String)>,
    Query(p): Params,
) -> Result<Json<MetricResult>, ApiError> {
    value(&st, Entity::PodContainer(ns, pod, container), &metric, &p)
}

/// `/namespaces/{ns}/pod-list/{p1,p2,...}/metrics/{metric}`: one result per listed pod, in the listed order, so a
/// client can zip them with its list. As in Heapster, a listed pod without the metric, or unknown, gets an empty
/// result.
pub async fn pod_list_metric(
    State(st): State<ApiState>,
    Path((ns, pods, metric)): Path<(String, String, String)>,
    Query(p): Params,
) -> Result<Json<MetricResultList>, ApiError> {
    let q = MetricQuery::parse(&p, now_millis())?;
    let metric = metric_name(&metric);
    let mut items = Vec::new();
    for pod in pods.split(',') {
        let entity = Entity::Pod(ns.clone(), pod.to_owned());
        let known = lookup(&entity, &st.store).is_ok_and(|info| info.metric_names.iter().any(|m| m == metric));
        items.push(match known {
            true => points(&st.store, &entity.key(), metric, &q, st.values),
            false => MetricResult::from_points(&[], st.values),
        });
    }
    Ok(Json(MetricResultList { items }))
}
