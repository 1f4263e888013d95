//! `/api/v1/dashboard/series?key=` and `/set?key=`: what the charts and the detail view of one metric set draw.
//!
//! The series come aligned on one time axis (the union of their timestamps, `null` where a series has no point),
//! which is the shape uPlot draws without any work in the browser.

use super::params::{self, Pairs};
use crate::ApiState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use heapster_model::{Labels, MetricSetType, MetricValue, Timestamp};
use heapster_store::Store;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The metrics the charts draw, in chart order. Labelled ones (`filesystem/usage`, per `resource_id`) are summed.
pub const CHART_METRICS: &[&str] =
    &["cpu/usage_rate", "memory/working_set", "memory/usage", "network/rx_rate", "network/tx_rate", "filesystem/usage"];

/// One set's chart data over the store's window.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    pub key: String,
    /// Milliseconds since the epoch, ascending.
    pub timestamps: Vec<Timestamp>,
    /// Metric name to one value (or `null`) per timestamp; metrics without any point are left out.
    pub series: BTreeMap<&'static str, Vec<Option<MetricValue>>>,
    /// Metrics the `cluster` set lacks (the cluster roll-up has no filesystem, standalone mode no memory/usage),
    /// drawn instead as the sum over the nodes, so the overview still charts them; named so the page can say so.
    pub summed_from_nodes: Vec<&'static str>,
}

/// One set's identity for the detail view.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SetDetails {
    pub key: String,
    #[serde(rename = "type")]
    pub set_type: Option<MetricSetType>,
    pub labels: Labels,
    pub create_time: Timestamp,
    pub last_seen: Timestamp,
    pub metrics: Vec<String>,
}

/// `/api/v1/dashboard/series?key=`: the four charts of one set in one answer, so a refresh is one request.
pub async fn series(State(st): State<ApiState>, q: Pairs) -> Result<Json<Series>, ApiError> {
    let key = params::key(q)?;
    let store = st.store.clone();
    super::blocking(move || chart_series(&store, &key)).await?.map(Json)
}

/// `/api/v1/dashboard/set?key=`: the detail view's header, labels and metric names.
pub async fn set(State(st): State<ApiState>, q: Pairs) -> Result<Json<SetDetails>, ApiError> {
    let key = params::key(q)?;
    let info = st.store.set_info(&key).ok_or_else(|| unknown(&key))?;
    Ok(Json(SetDetails {
        key,
        set_type: info.set_type,
        labels: info.labels,
        create_time: info.create_time,
        last_seen: info.last_seen,
        metrics: info.metric_names,
    }))
}

fn unknown(key: &str) -> ApiError {
    ApiError::not_found(format!("no metric set {key:?} in the store's window; /api/v1/model/debug/allkeys lists them"))
}

/// The chart series of `key`; 404 when the store does not hold the set.
pub fn chart_series(store: &Arc<Store>, key: &str) -> Result<Series, ApiError> {
    let info = store.set_info(key).ok_or_else(|| unknown(key))?;
    let mut per_metric: Vec<(&'static str, BTreeMap<Timestamp, MetricValue>)> = Vec::new();
    let mut summed_from_nodes = Vec::new();
    for &metric in CHART_METRICS {
        let mut points = summed(store, [key], metric);
        if points.is_empty() && info.set_type == Some(MetricSetType::Cluster) {
            let snapshot = super::rows::snapshot(store);
            points = summed(store, snapshot.rows(super::rows::Kind::Nodes).rows.iter().map(|r| &*r.key), metric);
            if !points.is_empty() {
                summed_from_nodes.push(metric);
            }
        }
        if !points.is_empty() {
            per_metric.push((metric, points));
        }
    }
    let timestamps: Vec<Timestamp> =
        per_metric.iter().flat_map(|(_, p)| p.keys().copied()).collect::<BTreeSet<_>>().into_iter().collect();
    let series = per_metric
        .into_iter()
        .map(|(metric, points)| (metric, timestamps.iter().map(|t| points.get(t).copied()).collect()))
        .collect();
    Ok(Series { key: key.to_owned(), timestamps, series, summed_from_nodes })
}

/// Points of `metric` summed per timestamp over `keys` and over every label set (filesystems) of each.
fn summed<'a>(
    store: &Store,
    keys: impl IntoIterator<Item = &'a str>,
    metric: &str,
) -> BTreeMap<Timestamp, MetricValue> {
    let mut out: BTreeMap<Timestamp, MetricValue> = BTreeMap::new();
    for key in keys {
        for labels in store.series_labels(key, metric) {
            for p in store.points(key, metric, &labels, None, None).unwrap_or_default() {
                out.entry(p.timestamp).and_modify(|v| *v = add(*v, p.value)).or_insert(p.value);
            }
        }
    }
    out
}

/// Integers stay integers (byte counts are exact), anything else is a float.
fn add(a: MetricValue, b: MetricValue) -> MetricValue {
    match (a, b) {
        (MetricValue::Int(x), MetricValue::Int(y)) => MetricValue::Int(x.saturating_add(y)),
        _ => MetricValue::Float(a.as_f64() + b.as_f64()),
    }
}

/// The sum of `values` by [`add`]'s rule; `Int(0)` for none.
pub fn sum(values: impl IntoIterator<Item = MetricValue>) -> MetricValue {
    values.into_iter().fold(MetricValue::Int(0), add)
}
