//! Self-metrics of the sinks, registered into heapster's `/metrics` by the binary.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

/// Labels of a per-sink self-metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
}

/// Labels of failed exports: `kind` is `transient`, `permanent` or `timeout`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkErrorLabels {
    pub sink: String,
    pub kind: String,
}

/// Labels of points a server rejected, by its reason (`field type conflict`, `unable to parse`, ...), so that an
/// operator sees which kind of data is lost without reading logs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkCauseLabels {
    pub sink: String,
    pub cause: String,
}

/// Labels of one HTTP request's outcome (`ok`, `timeout`, `connect`, `server_error`, `rejected`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkOutcomeLabels {
    pub sink: String,
    pub outcome: String,
}

/// Batches each sink accepted.
pub static EXPORTED: LazyLock<Family<SinkLabels, Counter>> = LazyLock::new(Family::default);
/// Failed exports by sink and kind.
pub static ERRORS: LazyLock<Family<SinkErrorLabels, Counter>> = LazyLock::new(Family::default);
/// Batches dropped because a sink's queue was full: data lost, oldest first.
pub static DROPPED: LazyLock<Family<SinkLabels, Counter>> = LazyLock::new(Family::default);
/// Batches waiting per sink; growing means the sink is behind or down.
pub static QUEUED: LazyLock<Family<SinkLabels, Gauge>> = LazyLock::new(Family::default);
/// Exports that failed and were tried again with the batch kept at the head of the queue.
pub static RETRIES: LazyLock<Family<SinkLabels, Counter>> = LazyLock::new(Family::default);
/// Points InfluxDB accepted.
pub static INFLUXDB_POINTS: LazyLock<Family<SinkLabels, Counter>> = LazyLock::new(Family::default);
/// Points InfluxDB refused, by cause; these are not retried.
pub static INFLUXDB_REJECTED: LazyLock<Family<SinkCauseLabels, Counter>> = LazyLock::new(Family::default);
/// Requests to InfluxDB by outcome.
pub static INFLUXDB_REQUESTS: LazyLock<Family<SinkOutcomeLabels, Counter>> = LazyLock::new(Family::default);
/// How long exports take, per sink.
pub static EXPORT_SECONDS: LazyLock<Family<SinkLabels, Histogram>> = LazyLock::new(|| {
    Family::new_with_constructor(|| Histogram::new([0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 20.0, 60.0]))
});

/// Adds every sink self-metric to heapster's `/metrics` registry.
pub fn register(registry: &mut Registry) {
    registry.register("heapster_sink_batches_exported", "Batches a sink accepted", EXPORTED.clone());
    registry.register("heapster_sink_export_errors", "Failed exports by sink and kind", ERRORS.clone());
    registry.register(
        "heapster_sink_batches_dropped",
        "Batches dropped because a sink's queue was full (oldest first)",
        DROPPED.clone(),
    );
    registry.register("heapster_sink_queue_batches", "Batches waiting in a sink's queue", QUEUED.clone());
    registry.register("heapster_sink_export_duration_seconds", "Time one export took", EXPORT_SECONDS.clone());
    registry.register(
        "heapster_sink_export_retries",
        "Exports tried again after a failure worth retrying (server down, timeout, 5xx)",
        RETRIES.clone(),
    );
    registry.register("heapster_sink_influxdb_points_written", "Points InfluxDB accepted", INFLUXDB_POINTS.clone());
    registry.register(
        "heapster_sink_influxdb_points_rejected",
        "Points InfluxDB refused (not retried), by cause",
        INFLUXDB_REJECTED.clone(),
    );
    registry.register("heapster_sink_influxdb_requests", "Requests to InfluxDB by outcome", INFLUXDB_REQUESTS.clone());
}

pub(crate) fn sink(name: &str) -> SinkLabels {
    SinkLabels { sink: name.to_owned() }
}
