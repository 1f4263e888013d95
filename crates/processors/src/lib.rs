//! Processors turn one raw scrape round into what users read, in Heapster's order: rates first (they need the
//! raw counters), then enrichment, then roll-ups from containers up to the cluster.
//!
//! Each processor is one file named for what it does, with its tests beside it.

pub mod cluster_aggregator;
pub mod rate_calculator;

pub use cluster_aggregator::ClusterAggregator;
pub use rate_calculator::RateCalculator;

use heapster_model::DataBatch;

/// One step of the pipeline between sources and the store/sinks.
pub trait DataProcessor: Send + Sync {
    /// Names the processor in logs and self-metrics.
    fn name(&self) -> &'static str;

    /// Transforms a batch. Processors keep whatever state they need across rounds (rates keep the last counters).
    fn process(&mut self, batch: DataBatch) -> DataBatch;
}
