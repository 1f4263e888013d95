//! `/api/v1/metric-export` (the latest value of every catalog metric of every container, pod, system container and
//! node) and `/api/v1/metric-export-schema` (what those metrics and labels mean), as Heapster's `api.go` served them
//! for GKE's monitoring agent.

use crate::ApiState;
use crate::types::{LabelDescriptor, MetricDescriptor, Point, Time, Timeseries, TimeseriesSchema};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use heapster_model::catalog::{self, MetricType, ValueType};
use heapster_model::labels::{self as l, ALL};
use heapster_model::{DataBatch, Labels, MetricSetType, MetricValue};

/// Labels of pod-level entities; Heapster's schema listed them apart (`pod_labels`).
const POD_LABELS: &[&str] = &[l::POD_ID, l::POD_NAME, l::POD_NAMESPACE, l::NAMESPACE_NAME, l::NAMESPACE_ID, l::LABELS];

/// Labels that belong to one value of a labelled metric rather than to the entity.
const ACCELERATOR_LABELS: &[&str] = &[l::ACCELERATOR_MAKE, l::ACCELERATOR_MODEL, l::ACCELERATOR_ID];

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/metric-export", get(metric_export))
        .route("/api/v1/metric-export/", get(metric_export))
        .route("/api/v1/metric-export-schema", get(metric_export_schema))
        .route("/api/v1/metric-export-schema/", get(metric_export_schema))
}

fn label(key: &str) -> Option<LabelDescriptor> {
    ALL.iter().find(|d| d.key == key).map(|d| LabelDescriptor { key: d.key, description: d.description })
}

/// Point labels of a labelled metric: the accelerator triple for `accelerator/*`, `resource_id` otherwise.
fn point_labels(d: &catalog::MetricDescriptor) -> Vec<LabelDescriptor> {
    if !d.labeled {
        return Vec::new();
    }
    if d.name.starts_with("accelerator/") {
        ACCELERATOR_LABELS.iter().filter_map(|k| label(k)).collect()
    } else {
        label(l::RESOURCE_ID).into_iter().collect()
    }
}

fn is_point_label(key: &str) -> bool {
    key == l::RESOURCE_ID || ACCELERATOR_LABELS.contains(&key)
}

/// Every catalog metric, and every label split as Heapster split them: entity labels in `common_labels`, pod labels
/// in `pod_labels`, and the labels of labelled metrics under each metric.
///
/// `value_type` is spelled `int64`/`double` and `type` `cumulative`/`gauge` as in Heapster. `units` is always set
/// (Heapster left `count` out by oversight; a schema consumer is better off with it).
pub fn schema() -> TimeseriesSchema {
    let metrics = catalog::CATALOG
        .iter()
        .map(|d| MetricDescriptor {
            name: d.name,
            description: d.description,
            labels: point_labels(d),
            metric_type: d.metric_type.as_str(),
            value_type: match d.value_type {
                ValueType::Int64 => "int64",
                ValueType::Float => "double",
            },
            units: d.units.as_str(),
        })
        .collect();
    let desc = |d: &l::LabelDescriptor| LabelDescriptor { key: d.key, description: d.description };
    TimeseriesSchema {
        metrics,
        common_labels: ALL
            .iter()
            .filter(|d| !POD_LABELS.contains(&d.key) && !is_point_label(d.key))
            .map(desc)
            .collect(),
        pod_labels: ALL.iter().filter(|d| POD_LABELS.contains(&d.key)).map(desc).collect(),
    }
}

/// The latest batch as Heapster's `[]Timeseries`: one per node, pod, container and system container (namespaces
/// and the cluster are left out, as in Heapster), ordered by key. Only catalog metrics are exported, so every value
/// has a schema entry; entity labels are those the schema lists. Nodes get `container_name=machine` and pods
/// `container_name=/pod`, the names GKE's agent expects.
pub fn export(batch: &DataBatch) -> Vec<Timeseries> {
    let mut out = Vec::new();
    for set in batch.sets.values() {
        let set_type = set.set_type().and_then(|t| t.parse::<MetricSetType>().ok());
        let container_name = match set_type {
            Some(MetricSetType::Node) => Some("machine"),
            Some(MetricSetType::Pod) => Some("/pod"),
            Some(MetricSetType::PodContainer | MetricSetType::SysContainer) => None,
            _ => continue,
        };
        let mut labels: Labels = set
            .labels
            .iter()
            .filter(|(k, _)| label(k).is_some() && !is_point_label(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(c) = container_name {
            labels.insert(l::CONTAINER_NAME.to_owned(), c.to_owned());
        }
        // Heapster's sources gave every set a host_id, empty without host_id_annotation=, and clients (GKE's
        // agent) read the key.
        if labels.get(l::HOST_ID).is_none() {
            labels.insert(l::HOST_ID.to_owned(), String::new());
        }
        let mut ts = Timeseries { metrics: Default::default(), labels };
        let mut add = |name: &str, point_labels: Option<&Labels>, value: MetricValue| {
            let Some(d) = catalog::find(name) else { return };
            let start = if d.metric_type == MetricType::Cumulative && set.create_time > 0 {
                set.create_time
            } else {
                batch.timestamp
            };
            ts.metrics.entry(name.to_owned()).or_default().push(Point {
                start: Time(Some(start)),
                end: Time(Some(batch.timestamp)),
                labels: point_labels.cloned(),
                value,
            });
        };
        for (name, value) in &set.metrics {
            add(name, None, *value);
        }
        for m in &set.labeled_metrics {
            add(&m.name, Some(&m.labels), m.value);
        }
        out.push(ts);
    }
    out
}

pub async fn metric_export(State(st): State<ApiState>) -> Json<Vec<Timeseries>> {
    Json(st.store.latest_batch().map(|b| export(&b)).unwrap_or_default())
}

pub async fn metric_export_schema() -> Json<TimeseriesSchema> {
    Json(schema())
}
