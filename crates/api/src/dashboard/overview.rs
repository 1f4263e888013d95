//! `/api/v1/dashboard/overview`: the figures at the top of the page, and the page's clock (resolution and window).

use super::params::{self, Pairs};
use super::rows::{self, CPU, Kind, MEMORY};
use crate::ApiState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use heapster_model::{Labels, MetricValue, Timestamp};
use heapster_store::Store;
use serde::Serialize;
use std::sync::Arc;

/// The cluster at a glance.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// The store's newest batch; `null` before the first one.
    pub timestamp: Option<Timestamp>,
    /// `--metric_resolution`: the page refreshes this often.
    pub resolution_ms: u64,
    /// `--store_window`: how far back the charts reach.
    pub window_ms: u64,
    pub nodes: usize,
    pub namespaces: usize,
    pub pods: usize,
    /// Pod containers and system containers.
    pub containers: usize,
    pub cluster: Cluster,
}

/// The `cluster` set's newest values.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// `cpu/usage_rate`, millicores.
    pub cpu: Option<MetricValue>,
    /// `memory/working_set`, bytes.
    pub memory: Option<MetricValue>,
    /// `cpu/limit` (millicores) and `memory/limit` (bytes): what the usage is a share of.
    pub cpu_limit: Option<MetricValue>,
    pub memory_limit: Option<MetricValue>,
}

/// `/api/v1/dashboard/overview`, read by the page at every refresh (it sets the refresh period too).
pub async fn overview(State(st): State<ApiState>, q: Pairs) -> Result<Json<Overview>, ApiError> {
    params::none(q)?;
    let resolution_ms = st.resolution.as_millis() as u64;
    let store = st.store.clone();
    Ok(Json(super::blocking(move || build(&store, resolution_ms)).await?))
}

/// The overview of the store's newest batch. Counts come from the list rows, which the page asks for next anyway.
/// (The store's size is left to `/metrics`: counting points visits every series, too slow for every refresh.)
pub fn build(store: &Arc<Store>, resolution_ms: u64) -> Overview {
    let none = Labels::new();
    let cluster = |metric: &str| store.latest("cluster", metric, &none).map(|p| p.value);
    let snapshot = rows::snapshot(store);
    let count = |kind| snapshot.rows(kind).rows.len();
    Overview {
        timestamp: snapshot.timestamp,
        resolution_ms,
        window_ms: store.config().window.as_millis() as u64,
        nodes: count(Kind::Nodes),
        namespaces: count(Kind::Namespaces),
        pods: count(Kind::Pods),
        containers: count(Kind::Containers),
        cluster: Cluster {
            cpu: cluster(CPU),
            memory: cluster(MEMORY),
            cpu_limit: cluster("cpu/limit"),
            memory_limit: cluster("memory/limit"),
        },
    }
}
