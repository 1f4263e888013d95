//! Self-metrics of the sinks, registered into heapster's `/metrics` by the binary.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkErrorLabels {
    pub sink: String,
    pub kind: String,
}

pub static EXPORTED: LazyLock<Family<SinkLabels, Counter>> = LazyLock::new(Family::default);
pub static ERRORS: LazyLock<Family<SinkErrorLabels, Counter>> = LazyLock::new(Family::default);
pub static DROPPED: LazyLock<Family<SinkLabels, Counter>> = LazyLock::new(Family::default);
pub static QUEUED: LazyLock<Family<SinkLabels, Gauge>> = LazyLock::new(Family::default);
pub static EXPORT_SECONDS: LazyLock<Family<SinkLabels, Histogram>> = LazyLock::new(|| {
    Family::new_with_constructor(|| Histogram::new([0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 20.0, 60.0]))
});

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
}

pub(crate) fn sink(name: &str) -> SinkLabels {
    SinkLabels { sink: name.to_owned() }
}
