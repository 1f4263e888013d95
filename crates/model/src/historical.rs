//! What a long-term store answers when heapster reads metrics back from it (Heapster's
//! `metrics/core/historical_types.go`).
//!
//! The historical API (in the api crate) asks and the sinks that can read back (InfluxDB) answer; both depend on
//! this model rather than on each other, so a sink never pulls in the HTTP server to implement a reader.

use crate::batch::{Labels, MetricValue, Timestamp};
use crate::keys::{self, MetricSetType};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// One entity of the model, as the model API's paths name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    Cluster,
    Node(String),
    /// A node's system container (`freecontainers`): node, container.
    FreeContainer(String, String),
    Namespace(String),
    /// Namespace, pod.
    Pod(String, String),
    /// Namespace, pod, container.
    PodContainer(String, String, String),
}

impl Entity {
    /// The metric-set key, built as the pipeline builds it, so an entity is one store lookup.
    pub fn key(&self) -> String {
        match self {
            Entity::Cluster => keys::cluster_key(),
            Entity::Node(n) => keys::node_key(n),
            Entity::FreeContainer(n, c) => keys::node_container_key(n, c),
            Entity::Namespace(ns) => keys::namespace_key(ns),
            Entity::Pod(ns, p) => keys::pod_key(ns, p),
            Entity::PodContainer(ns, p, c) => keys::pod_container_key(ns, p, c),
        }
    }

    pub fn set_type(&self) -> MetricSetType {
        match self {
            Entity::Cluster => MetricSetType::Cluster,
            Entity::Node(_) => MetricSetType::Node,
            Entity::FreeContainer(..) => MetricSetType::SysContainer,
            Entity::Namespace(_) => MetricSetType::Namespace,
            Entity::Pod(..) => MetricSetType::Pod,
            Entity::PodContainer(..) => MetricSetType::PodContainer,
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::Cluster => write!(f, "cluster"),
            Entity::Node(n) => write!(f, "node {n:?}"),
            Entity::FreeContainer(n, c) => write!(f, "free container {c:?} of node {n:?}"),
            Entity::Namespace(ns) => write!(f, "namespace {ns:?}"),
            Entity::Pod(ns, p) => write!(f, "pod {p:?} of namespace {ns:?}"),
            Entity::PodContainer(ns, p, c) => write!(f, "container {c:?} of pod {p:?} of namespace {ns:?}"),
        }
    }
}

/// One stored value of a metric (Heapster's `TimestampedMetricValue`). The embedded store answers the same type,
/// so the API renders points from either place one way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub timestamp: Timestamp,
    pub value: MetricValue,
}

/// One aggregation of `metrics-aggregated`, named as in Heapster's URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Aggregation {
    Average,
    Max,
    Min,
    Median,
    Count,
    Percentile50,
    Percentile95,
    Percentile99,
}

impl Aggregation {
    pub const ALL: [Aggregation; 8] = [
        Aggregation::Average,
        Aggregation::Max,
        Aggregation::Min,
        Aggregation::Median,
        Aggregation::Count,
        Aggregation::Percentile50,
        Aggregation::Percentile95,
        Aggregation::Percentile99,
    ];

    /// The name in a URL: `average`, `max`, `min`, `median`, `count`, `50-perc`, `95-perc`, `99-perc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Average => "average",
            Aggregation::Max => "max",
            Aggregation::Min => "min",
            Aggregation::Median => "median",
            Aggregation::Count => "count",
            Aggregation::Percentile50 => "50-perc",
            Aggregation::Percentile95 => "95-perc",
            Aggregation::Percentile99 => "99-perc",
        }
    }

    /// The percentile, for the `percentiles` map of the JSON answer.
    pub fn percentile(self) -> Option<u8> {
        match self {
            Aggregation::Percentile50 => Some(50),
            Aggregation::Percentile95 => Some(95),
            Aggregation::Percentile99 => Some(99),
            _ => None,
        }
    }
}

/// One bucket of an aggregation: its start, the number of points (when `count` was asked for) and the other
/// requested aggregations. An aggregation the source had no value for is absent.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatedBucket {
    pub timestamp: Timestamp,
    pub count: Option<u64>,
    pub values: BTreeMap<Aggregation, MetricValue>,
}

/// Why a historical source could not answer (the database is down, refused the query, answered nonsense).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoricalError(pub String);

impl fmt::Display for HistoricalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HistoricalError {}

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
