//! What the cluster autoscaler and capacity dashboards read from nodes, as Heapster 1.6's
//! `node_autoscaling_enricher.go`:
//!
//! - `cpu|memory/node_capacity` and `/node_allocatable` from the node's status, always set for a known node;
//!   `ephemeral_storage/*` likewise when the node reports both ephemeral capacity and allocatable;
//! - `*/node_utilization` = usage / allocatable: `cpu/usage_rate` (millicores), `memory/usage` (Heapster's choice;
//!   [`NodeAutoscalingConfig::memory_utilization_metric`] can name `memory/working_set`, which the kubelet evicts
//!   by and which Heapster's forks moved to later), `ephemeral_storage/usage`;
//! - `*/node_reservation` = requests summed by the node aggregator / allocatable;
//! - the node's Kubernetes labels through the same [`LabelCopier`] as pods (Heapster did this too), and
//!   `schedulable` = `true` or `false`.
//!
//! Utilization and reservation are left out when allocatable is 0, as in Heapster.
//!
//! Deviations from Heapster, which read a missing value as 0:
//! - no utilization when the usage is missing (the first round has no `cpu/usage_rate` yet): a node at 0% and an
//!   unmeasured node must not look alike to an autoscaler;
//! - no reservation when the node has no request sum, unless metadata knows no pod on the node, in which case
//!   the reservation is truly 0.
//!
//! It runs after the node aggregator: it needs the node's request sums. Heapster ran it last, after the cluster
//! aggregator; here it runs before the namespace and cluster sums, in each node's scrape (see [`crate::per_source`]),
//! which changes no value: they read nothing it adds.

use crate::label_copier::{LabelCopier, PodEnricherConfig};
use crate::metadata::{ClusterMetadata, NodeMeta};
use crate::{Counter, DataProcessor};
use heapster_model::keys::MetricSetType;
use heapster_model::{DataBatch, MetricSet, MetricValue, labels};
use std::sync::Arc;

/// Choices Heapster hard-coded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAutoscalingConfig {
    /// The usage `memory/node_utilization` divides by allocatable: `memory/usage` (Heapster, the default) or
    /// `memory/working_set`.
    pub memory_utilization_metric: &'static str,
}

impl Default for NodeAutoscalingConfig {
    fn default() -> Self {
        NodeAutoscalingConfig { memory_utilization_metric: "memory/usage" }
    }
}

/// See the module docs.
pub struct NodeAutoscalingEnricher {
    metadata: Arc<dyn ClusterMetadata>,
    copier: LabelCopier,
    config: NodeAutoscalingConfig,
    unknown: Counter,
}

impl NodeAutoscalingEnricher {
    /// Reads nodes from `metadata`; `labels` are the same label flags the pod enricher takes.
    pub fn new(metadata: Arc<dyn ClusterMetadata>, labels: &PodEnricherConfig, config: NodeAutoscalingConfig) -> Self {
        NodeAutoscalingEnricher { metadata, copier: LabelCopier::new(labels), config, unknown: Counter::default() }
    }

    /// Node sets left unenriched so far because their node was unknown to metadata.
    pub fn unenriched_sets(&self) -> Counter {
        self.unknown.clone()
    }

    fn enrich(&self, set: &mut MetricSet, node: &NodeMeta) {
        self.copier.copy(&node.labels, &mut set.labels);
        set.labels.insert(labels::SCHEDULABLE, node.schedulable.to_string());
        let no_pods = || self.metadata.pods_on_node(&node.name).is_empty();
        let resources = [
            (
                "cpu/usage_rate",
                "cpu/request",
                Some((node.cpu_capacity_millis, node.cpu_allocatable_millis)),
                ["cpu/node_capacity", "cpu/node_allocatable", "cpu/node_utilization", "cpu/node_reservation"],
            ),
            (
                self.config.memory_utilization_metric,
                "memory/request",
                Some((node.memory_capacity, node.memory_allocatable)),
                [
                    "memory/node_capacity",
                    "memory/node_allocatable",
                    "memory/node_utilization",
                    "memory/node_reservation",
                ],
            ),
            (
                "ephemeral_storage/usage",
                "ephemeral_storage/request",
                node.ephemeral_capacity.zip(node.ephemeral_allocatable),
                [
                    "ephemeral_storage/node_capacity",
                    "ephemeral_storage/node_allocatable",
                    "ephemeral_storage/node_utilization",
                    "ephemeral_storage/node_reservation",
                ],
            ),
        ];
        for (usage, request, amounts, [capacity_m, allocatable_m, utilization_m, reservation_m]) in resources {
            let Some((capacity, allocatable)) = amounts else { continue };
            set.set(capacity_m, MetricValue::Float(capacity as f64));
            set.set(allocatable_m, MetricValue::Float(allocatable as f64));
            if allocatable == 0 {
                continue;
            }
            let allocatable = allocatable as f64;
            if let Some(used) = set.get(usage) {
                set.set(utilization_m, MetricValue::Float(used.as_f64() / allocatable));
            }
            let requested = set.get(request).map(MetricValue::as_f64).or_else(|| no_pods().then_some(0.0));
            if let Some(requested) = requested {
                set.set(reservation_m, MetricValue::Float(requested / allocatable));
            }
        }
    }
}

impl DataProcessor for NodeAutoscalingEnricher {
    fn name(&self) -> &'static str {
        "node_autoscaling_enricher"
    }

    /// A node set is enriched from the metadata and the node's own requests, summed from its pods.
    fn for_one_source(&self) -> Option<Box<dyn DataProcessor>> {
        Some(Box::new(NodeAutoscalingEnricher {
            metadata: self.metadata.clone(),
            copier: self.copier.clone(),
            config: self.config.clone(),
            unknown: self.unknown.clone(),
        }))
    }

    fn counters(&self) -> Vec<(&'static str, Counter)> {
        vec![(crate::UNENRICHED_SETS, self.unknown.clone())]
    }

    fn process(&mut self, mut batch: DataBatch) -> DataBatch {
        let mut unknown = 0;
        for (key, set) in batch.sets.iter_mut() {
            if set.set_type() != Some(MetricSetType::Node.as_str()) {
                continue;
            }
            let name = match set.labels.get(labels::NODENAME) {
                Some(n) => n.clone(),
                None => key.strip_prefix("node:").unwrap_or(key).into(),
            };
            match self.metadata.node(&name) {
                Some(node) => self.enrich(set, &node),
                None => {
                    tracing::debug!(node = %name, "node unknown to metadata: left unenriched");
                    unknown += 1;
                }
            }
        }
        self.unknown.add(unknown);
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{PodMeta, StaticMetadata};
    use heapster_model::keys;

    const GIB: i64 = 1 << 30;

    fn node_set(name: &str) -> MetricSet {
        let mut s = MetricSet::default();
        s.labels.insert(labels::TYPE, "node");
        s.labels.insert(labels::NODENAME, name);
        s.set("cpu/usage_rate", MetricValue::Float(1900.0));
        s.set("memory/usage", MetricValue::Int(6 * GIB));
        s.set("memory/working_set", MetricValue::Int(3 * GIB));
        s.set("ephemeral_storage/usage", MetricValue::Int(25 * GIB));
        s.set("cpu/request", MetricValue::Int(1500));
        s.set("memory/request", MetricValue::Int(2 * GIB));
        s
    }

    fn metadata() -> StaticMetadata {
        StaticMetadata::new()
            .with_node(
                NodeMeta::new("n1", 4000, 16 * GIB)
                    .allocatable(3800, 12 * GIB)
                    .ephemeral(100 * GIB, 50 * GIB)
                    .label("zone", "b")
                    .label("pool", "default")
                    .schedulable(false),
            )
            .with_node(NodeMeta::new("n2", 2000, 8 * GIB))
            .with_pod(PodMeta::new("ns", "p", "u").on_node("n1"))
    }

    fn float(set: &MetricSet, name: &str) -> f64 {
        match set.get(name) {
            Some(MetricValue::Float(v)) => v,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn run(config: NodeAutoscalingConfig, sets: Vec<(String, MetricSet)>) -> DataBatch {
        let mut e = NodeAutoscalingEnricher::new(metadata().shared(), &PodEnricherConfig::default(), config);
        e.process(DataBatch { timestamp: 0, sets: sets.into_iter().collect() })
    }

    #[test]
    fn capacity_allocatable_utilization_and_reservation() {
        let out = run(NodeAutoscalingConfig::default(), vec![(keys::node_key("n1"), node_set("n1"))]);
        let n = &out.sets[&keys::node_key("n1")];
        assert_eq!(float(n, "cpu/node_capacity"), 4000.0);
        assert_eq!(float(n, "cpu/node_allocatable"), 3800.0);
        assert_eq!(float(n, "cpu/node_utilization"), 0.5);
        assert_eq!(float(n, "cpu/node_reservation"), 1500.0 / 3800.0);
        assert_eq!(float(n, "memory/node_capacity"), 16.0 * GIB as f64);
        assert_eq!(float(n, "memory/node_allocatable"), 12.0 * GIB as f64);
        assert_eq!(float(n, "memory/node_utilization"), 0.5, "memory/usage, as Heapster");
        assert_eq!(float(n, "memory/node_reservation"), 2.0 / 12.0);
        assert_eq!(float(n, "ephemeral_storage/node_capacity"), 100.0 * GIB as f64);
        assert_eq!(float(n, "ephemeral_storage/node_allocatable"), 50.0 * GIB as f64);
        assert_eq!(float(n, "ephemeral_storage/node_utilization"), 0.5);
        assert!(n.get("ephemeral_storage/node_reservation").is_none(), "no request sum, and a pod on the node");
        assert_eq!(n.labels[labels::SCHEDULABLE], "false");
        assert_eq!(n.labels[labels::LABELS], "pool:default,zone:b");
    }

    #[test]
    fn working_set_can_be_chosen_for_memory() {
        let config = NodeAutoscalingConfig { memory_utilization_metric: "memory/working_set" };
        let out = run(config, vec![(keys::node_key("n1"), node_set("n1"))]);
        assert_eq!(float(&out.sets[&keys::node_key("n1")], "memory/node_utilization"), 0.25);
    }

    #[test]
    fn missing_usage_gives_no_utilization_and_an_empty_node_reserves_zero() {
        let mut s = MetricSet::default();
        s.labels.insert(labels::TYPE, "node");
        let out = run(NodeAutoscalingConfig::default(), vec![(keys::node_key("n2"), s)]);
        let n = &out.sets[&keys::node_key("n2")];
        assert_eq!(float(n, "cpu/node_capacity"), 2000.0, "name taken from the key");
        assert!(n.get("cpu/node_utilization").is_none());
        assert!(n.get("memory/node_utilization").is_none());
        assert_eq!(float(n, "cpu/node_reservation"), 0.0, "no pod bound to n2");
        assert!(n.get("ephemeral_storage/node_capacity").is_none(), "n2 reports no ephemeral storage");
        assert_eq!(n.labels[labels::SCHEDULABLE], "true");
        assert_eq!(n.labels[labels::LABELS], "");
    }

    #[test]
    fn unknown_nodes_are_left_alone_and_counted() {
        let mut e =
            NodeAutoscalingEnricher::new(metadata().shared(), &PodEnricherConfig::default(), Default::default());
        let unknown = e.unenriched_sets();
        let set = node_set("n9");
        let out = e.process(DataBatch { timestamp: 0, sets: [(keys::node_key("n9"), set.clone())].into() });
        assert_eq!(out.sets[&keys::node_key("n9")], set);
        assert_eq!(unknown.get(), 1);
    }

    #[test]
    fn zero_allocatable_gives_capacity_but_no_ratios() {
        let md = StaticMetadata::new().with_node(NodeMeta::new("z", 1000, GIB).allocatable(0, 0));
        let mut e = NodeAutoscalingEnricher::new(md.shared(), &PodEnricherConfig::default(), Default::default());
        let out = e.process(DataBatch { timestamp: 0, sets: [(keys::node_key("z"), node_set("z"))].into() });
        let n = &out.sets[&keys::node_key("z")];
        assert_eq!(float(n, "cpu/node_capacity"), 1000.0);
        assert_eq!(float(n, "cpu/node_allocatable"), 0.0);
        assert!(n.get("cpu/node_utilization").is_none() && n.get("cpu/node_reservation").is_none());
    }
}
