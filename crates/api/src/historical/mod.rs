//! Heapster's historical API, `/api/v1/historical/...` (Heapster's "Oldtimer", `metrics/api/v1/historical_handlers.go`):
//! the model API's routes answered from a long-term store instead of the embedded 15-minute window, plus
//! `metrics-aggregated/{aggregations}/{metric}` (average, max, min, median, count, 50/95/99-perc, over `bucket=`
//! sized buckets).
//!
//! The store is behind [`HistoricalSource`], as Heapster's `core.HistoricalSource` was, so this crate knows no
//! database: the InfluxDB implementation lives with the InfluxDB sink (`heapster_sinks::influxdb::historical`) and
//! the binary wires it in with `--historical_source`. Without one, every historical route answers 404 saying so.
//!
//! As in Heapster, `start` is required (a sink asked for "everything since 1970" can take minutes), `end` defaults
//! to now, both inclusive here (Heapster's InfluxQL used `>`/`<` on whole seconds, which dropped the points at the
//! bounds). Raw values come back as the model API's `MetricResult`, aggregations as Heapster's
//! `MetricAggregationResult`: `{"buckets":[{"timestamp":..,"count":..,"average":{"floatValue":..},
//! "maximum":{"intValue":..},"percentiles":{"95":{..}}}],"bucketSize":<nanoseconds>}`.

mod handlers;
pub mod params;

pub use params::{Aggregation, parse_aggregations, parse_bucket};

use crate::ApiState;
use crate::model::Entity;
use async_trait::async_trait;
use axum::Router;
use heapster_model::{Labels, MetricValue, Timestamp};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// One stored value of a metric.
pub use heapster_store::Point as Sample;

/// Why a historical source could not answer (the database is down, refused the query, answered nonsense).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoricalError(pub String);

impl fmt::Display for HistoricalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HistoricalError {}

/// One bucket of an aggregation: its start, the number of points (when `count` was asked for) and the other
/// requested aggregations. An aggregation the source had no value for is absent.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatedBucket {
    pub timestamp: Timestamp,
    pub count: Option<u64>,
    pub values: BTreeMap<Aggregation, MetricValue>,
}

/// A long-term store that heapster writes to and can read back (Heapster's `core.HistoricalSource`).
///
/// Entities are named as in the model API ([`Entity`]). The multi-entity calls answer one list per entity, in the
/// order asked. `labels` selects a labelled series (`resource_id=/dev/sda1`); `None` puts no condition on labels.
/// `bucket` of `None` asks for one bucket spanning `start..=end`.
#[async_trait]
pub trait HistoricalSource: Send + Sync {
    /// Names the source in error messages (`influxdb:http://h:8086?db=k8s`), without credentials.
    fn name(&self) -> String;

    /// The metrics stored for `entity`, sorted.
    async fn metric_names(&self, entity: &Entity) -> Result<Vec<String>, HistoricalError>;

    /// The values of `metric` for each entity between `start` and `end` (inclusive), oldest first.
    async fn values(
        &self,
        metric: &str,
        labels: Option<&Labels>,
        entities: &[Entity],
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Vec<Sample>>, HistoricalError>;

    /// `aggregations` of `metric` for each entity, per bucket, oldest first; buckets without points are left out.
    #[allow(clippy::too_many_arguments)]
    async fn aggregations(
        &self,
        metric: &str,
        labels: Option<&Labels>,
        aggregations: &[Aggregation],
        entities: &[Entity],
        start: Timestamp,
        end: Timestamp,
        bucket: Option<Duration>,
    ) -> Result<Vec<Vec<AggregatedBucket>>, HistoricalError>;

    /// Every node with metrics, sorted.
    async fn nodes(&self) -> Result<Vec<String>, HistoricalError>;
    /// Every namespace with metrics, sorted.
    async fn namespaces(&self) -> Result<Vec<String>, HistoricalError>;
    /// The pods of a namespace with metrics, sorted.
    async fn pods_of_namespace(&self, namespace: &str) -> Result<Vec<String>, HistoricalError>;
    /// The containers of a pod with metrics, sorted (not in Heapster, which had no such list).
    async fn containers_of_pod(&self, namespace: &str, pod: &str) -> Result<Vec<String>, HistoricalError>;
    /// The system containers of a node with metrics, sorted.
    async fn free_containers_of_node(&self, node: &str) -> Result<Vec<String>, HistoricalError>;
}

/// Every `/api/v1/historical` route.
pub fn routes() -> Router<ApiState> {
    handlers::routes()
}
