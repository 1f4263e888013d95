//! Processors turn one raw scrape round into what users read, in Heapster's order: rates first (they need the
//! raw counters), then enrichment, then roll-ups from containers up to the cluster.
//!
//! Each processor is one file named for what it does, with its tests beside it. The Kubernetes ones read the
//! cluster through [`ClusterMetadata`] and run in this order (Heapster 1.6's `createDataProcessorsOrDie`):
//!
//! 1. [`RateCalculator`] - `_rate` twins of counters, on raw sets only.
//! 2. [`PodBasedEnricher`] - `pod_id`, `labels`, image, requests/limits, restart counts; pod sets for orphans.
//! 3. [`NamespaceBasedEnricher`] - `namespace_id`.
//! 4. [`PodAggregator`] - pod = sum of its containers, where the kubelet did not measure the pod itself.
//! 5. [`NodeAggregator`] - node requests/limits = sum of its pods'.
//! 6. [`NodeAutoscalingEnricher`] - node capacity, allocatable, utilization, reservation; `schedulable`.
//! 7. [`NamespaceAggregator`] - namespace = sum of its pods.
//! 8. [`ClusterAggregator`] - cluster = sum of namespaces (or of nodes, [`ClusterFrom::Nodes`]).
//!
//! [`kubernetes_chain`] builds that list. Heapster ran the namespace aggregator, then the node aggregator, the
//! cluster aggregator and last the node autoscaling enricher. The namespace and cluster aggregators read pod,
//! namespace or node sets but none of what steps 5 and 6 add to node sets (the cluster sums
//! [`cluster_aggregator::AGGREGATED`], which holds no node capacity metric), so the order changes no value, and
//! with the node steps first, steps 1 to 7 need only one node's sets: [`per_source`] runs them in each node's
//! scrape, on both cores, while the node's sets are still in the CPU's caches (the namespace aggregator sums the
//! node's own pods, and the nodes' sums are added up as their sets are gathered).

mod aggregate;
pub mod cluster_aggregator;
pub mod label_copier;
/// The cluster metadata the enrichers read lives in the model crate, so discovery can fill it without
/// depending on the processors.
pub use heapster_model::metadata;
pub mod namespace_aggregator;
pub mod namespace_based_enricher;
pub mod node_aggregator;
pub mod node_autoscaling_enricher;
pub mod per_source;
pub mod pod_aggregator;
pub mod pod_based_enricher;
pub mod rate_calculator;

#[cfg(test)]
mod chain_tests;

pub use cluster_aggregator::{ClusterAggregator, ClusterFrom};
pub use label_copier::{LabelCopier, PodEnricherConfig};
pub use metadata::{ClusterMetadata, ContainerMeta, NamespaceMeta, NodeMeta, PodMeta, StaticMetadata};
pub use namespace_aggregator::NamespaceAggregator;
pub use namespace_based_enricher::NamespaceBasedEnricher;
pub use node_aggregator::NodeAggregator;
pub use node_autoscaling_enricher::{NodeAutoscalingConfig, NodeAutoscalingEnricher};
pub use pod_aggregator::PodAggregator;
pub use pod_based_enricher::PodBasedEnricher;
pub use rate_calculator::RateCalculator;

use heapster_model::{DataBatch, MetricSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One step of the pipeline between sources and the store/sinks.
pub trait DataProcessor: Send + Sync {
    /// Names the processor in logs and self-metrics.
    fn name(&self) -> &'static str;

    /// Transforms a batch. Processors keep whatever state they need across rounds (rates keep the last counters).
    fn process(&mut self, batch: DataBatch) -> DataBatch;

    /// The counts this processor keeps, by what they count (`unenriched_sets`), for heapster's `/metrics`
    /// (`heapster_processor_<what>_total{processor="<name>"}`). Handles stay live after the processor is boxed
    /// into the pipeline.
    fn counters(&self) -> Vec<(&'static str, Counter)> {
        Vec::new()
    }

    /// For a processor that needs only one source's sets at a time: a new instance, with no state yet, sharing
    /// this one's configuration, metadata and counters, to run on one source's sets in that source's scrape (see
    /// [`per_source`]). `None`, the default: the processor needs the whole batch.
    fn for_one_source(&self) -> Option<Box<dyn DataProcessor>> {
        None
    }

    /// Whether the processor reads or changes container sets (`pod_container`, `sys_container`) when it runs on
    /// the whole batch. Where no processor after the per-source ones does and no sink wants the batch, the
    /// pipeline stores each node's containers as soon as its scrape is processed instead of holding them in the
    /// round's batch. `true`, the default, is always safe.
    fn needs_container_sets(&self) -> bool {
        true
    }

    /// As [`DataProcessor::needs_container_sets`], for pod sets.
    fn needs_pod_sets(&self) -> bool {
        true
    }

    /// For a processor whose per-source instances make sets that add up over sources (a namespace's pods are on
    /// many nodes, so each node's instance sums its own): merges `from`, another source's set of `into`'s key,
    /// into `into`, and says whether it did. Asked when two sources gave one key ([`per_source::PerSource::gather`]);
    /// `false`, the default, leaves the choice of one of the two sets to the caller.
    fn merge_partial(&self, _into: &mut MetricSet, _from: &MetricSet) -> bool {
        false
    }
}

/// Whether a set is a container's (see [`DataProcessor::needs_container_sets`]).
pub fn is_container_set(set: &MetricSet) -> bool {
    use heapster_model::MetricSetType::{PodContainer, SysContainer};
    set.set_type().is_some_and(|t| t == PodContainer.as_str() || t == SysContainer.as_str())
}

/// Whether a set is a pod's (see [`DataProcessor::needs_pod_sets`]).
pub fn is_pod_set(set: &MetricSet) -> bool {
    set.set_type() == Some(heapster_model::MetricSetType::Pod.as_str())
}

/// What [`DataProcessor::counters`] names the count of sets an enricher could not enrich.
pub const UNENRICHED_SETS: &str = "unenriched_sets";

/// A monotonic count a processor keeps and self-metrics read, e.g. sets left unenriched because their pod was
/// not (yet) known. Clones share the count, so a handle taken before the processor is boxed into the pipeline
/// keeps working.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// The Kubernetes processor chain in Heapster's order (see the crate docs), sharing one metadata view and one
/// label configuration (Heapster's single `LabelCopier` served both the pod and the node enricher).
pub fn kubernetes_chain(
    metadata: Arc<dyn ClusterMetadata>,
    labels: PodEnricherConfig,
    autoscaling: NodeAutoscalingConfig,
) -> Vec<Box<dyn DataProcessor>> {
    kubernetes_chain_with(metadata, labels, autoscaling, ClusterFrom::Namespaces)
}

/// [`kubernetes_chain`] with the cluster summed from `cluster` (`--cluster_aggregation`).
pub fn kubernetes_chain_with(
    metadata: Arc<dyn ClusterMetadata>,
    labels: PodEnricherConfig,
    autoscaling: NodeAutoscalingConfig,
    cluster: ClusterFrom,
) -> Vec<Box<dyn DataProcessor>> {
    vec![
        Box::new(RateCalculator::new()),
        Box::new(PodBasedEnricher::new(metadata.clone(), labels.clone())),
        Box::new(NamespaceBasedEnricher::new(metadata.clone())),
        Box::new(PodAggregator::new()),
        Box::new(NodeAggregator::default()),
        Box::new(NodeAutoscalingEnricher::new(metadata, &labels, autoscaling)),
        Box::new(NamespaceAggregator::default()),
        Box::new(ClusterAggregator::new(cluster)),
    ]
}
