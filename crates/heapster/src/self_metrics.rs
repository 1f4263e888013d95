//! heapster's own health, served at `/metrics`: how scrapes and batches go.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

/// Counters and gauges of the scrape loop.
pub struct PipelineMetrics {
    pub scrape_seconds: Family<SourceLabels, Histogram>,
    pub scrape_errors: Family<SourceLabels, Counter>,
    pub round_seconds: Histogram,
    pub batch_sets: Gauge,
    pub batch_points: Gauge,
    pub last_batch_timestamp: Gauge<f64, AtomicU64>,
    pub batches: Counter,
}

impl PipelineMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let buckets = || Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        let m = PipelineMetrics {
            scrape_seconds: Family::new_with_constructor(buckets),
            scrape_errors: Family::default(),
            round_seconds: buckets(),
            batch_sets: Gauge::default(),
            batch_points: Gauge::default(),
            last_batch_timestamp: Gauge::default(),
            batches: Counter::default(),
        };
        registry.register("heapster_scrape_duration_seconds", "Time to scrape one source", m.scrape_seconds.clone());
        registry.register(
            "heapster_scrape_errors",
            "Scrapes that produced no batch, by source",
            m.scrape_errors.clone(),
        );
        registry.register(
            "heapster_round_duration_seconds",
            "Time of one whole round: scrape, process, store",
            m.round_seconds.clone(),
        );
        registry.register("heapster_batch_sets", "Metric sets in the newest batch", m.batch_sets.clone());
        registry.register("heapster_batch_points", "Values in the newest batch", m.batch_points.clone());
        registry.register(
            "heapster_last_batch_timestamp_seconds",
            "Unix time of the newest batch",
            m.last_batch_timestamp.clone(),
        );
        registry.register("heapster_batches", "Batches produced", m.batches.clone());
        m
    }
}
