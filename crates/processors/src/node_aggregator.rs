//! Node requests and limits as the sum of the pods on the node, as Heapster 1.6's `node_aggregator.go` with its
//! `metricsToAggregateForNode` ([`DEFAULT_METRICS`]). Node usage is not summed: the kubelet measures the node.
//!
//! A pod is attributed to the node in its `nodename` label; pods without one are skipped, and so are pods whose
//! node has no set in the batch (Heapster did not invent node sets either). Each pod set is one key of the batch
//! and counted once. A value the node set already has is kept.

use crate::DataProcessor;
use crate::aggregate::{Sums, Wanted};
use heapster_model::batch::MetricName;
use heapster_model::keys::{self, MetricSetType};
use heapster_model::{DataBatch, labels};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Heapster 1.6's `metricsToAggregateForNode`.
pub const DEFAULT_METRICS: &[&str] = &[
    "cpu/request",
    "cpu/limit",
    "memory/request",
    "memory/limit",
    "ephemeral_storage/request",
    "ephemeral_storage/limit",
];

/// See the module docs.
pub struct NodeAggregator {
    metrics: Wanted,
}

impl NodeAggregator {
    /// Sums `metrics` of pods into their node.
    pub fn new(metrics: impl IntoIterator<Item = MetricName>) -> Self {
        NodeAggregator { metrics: Wanted::new(metrics) }
    }
}

impl Default for NodeAggregator {
    /// Sums [`DEFAULT_METRICS`].
    fn default() -> Self {
        NodeAggregator::new(DEFAULT_METRICS.iter().map(|&m| Cow::Borrowed(m)))
    }
}

impl DataProcessor for NodeAggregator {
    fn name(&self) -> &'static str {
        "node_aggregator"
    }

    /// A node's pods come from the node's own kubelet, with the node's set.
    fn for_one_source(&self) -> Option<Box<dyn DataProcessor>> {
        Some(Box::new(NodeAggregator { metrics: self.metrics.clone() }))
    }

    fn process(&mut self, mut batch: DataBatch) -> DataBatch {
        let mut nodes: BTreeMap<&str, Sums> = BTreeMap::new();
        for (key, set) in &batch.sets {
            if set.set_type() != Some(MetricSetType::Pod.as_str()) {
                continue;
            }
            let Some(node) = set.labels.get(labels::NODENAME).filter(|n| !n.is_empty()) else {
                tracing::trace!(set = %key, "pod set names no node: not aggregated");
                continue;
            };
            nodes.entry(node.as_str()).or_default().add_wanted(set, &self.metrics);
        }
        let nodes: Vec<(String, Sums)> = nodes.into_iter().map(|(node, sums)| (node.to_owned(), sums)).collect();
        for (node, sums) in nodes {
            match batch.sets.get_mut(&keys::node_key(&node)) {
                Some(set) => sums.fill(set),
                None => tracing::debug!(node = %node, "pods on a node with no node set: not aggregated"),
            }
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::{Labels, MetricSet, MetricValue};

    fn pod(node: &str, cpu_req: i64, mem_lim: i64) -> MetricSet {
        let mut s = MetricSet {
            labels: Labels::from([(labels::TYPE, "pod".to_owned()), (labels::NODENAME, node.to_owned())]),
            ..Default::default()
        };
        s.set("cpu/request", MetricValue::Int(cpu_req));
        s.set("memory/limit", MetricValue::Int(mem_lim));
        s.set("cpu/usage_rate", MetricValue::Float(999.0));
        s
    }

    fn node(usage: f64) -> MetricSet {
        let mut s = MetricSet::default();
        s.labels.insert(labels::TYPE, "node");
        s.set("cpu/usage_rate", MetricValue::Float(usage));
        s
    }

    #[test]
    fn sums_pod_requests_and_limits_into_existing_nodes() {
        let mut b = DataBatch::default();
        b.sets.insert(keys::node_key("n1"), node(1500.0));
        b.sets.insert(keys::pod_key("a", "1"), pod("n1", 250, 1 << 30));
        b.sets.insert(keys::pod_key("a", "2"), pod("n1", 100, 0));
        b.sets.insert(keys::pod_key("a", "3"), pod("n2", 7, 7));
        b.sets.insert(keys::pod_key("a", "4"), pod("", 7, 7));
        let mut c = pod("n1", 1000, 1000);
        c.labels.insert(labels::TYPE, "pod_container");
        b.sets.insert(keys::pod_container_key("a", "1", "c"), c);
        let out = NodeAggregator::default().process(b);
        let n1 = &out.sets[&keys::node_key("n1")];
        assert_eq!(n1.get("cpu/request"), Some(MetricValue::Int(350)));
        assert_eq!(n1.get("memory/limit"), Some(MetricValue::Int(1 << 30)));
        assert_eq!(n1.get("cpu/usage_rate"), Some(MetricValue::Float(1500.0)), "usage is the node's own");
        assert_eq!(n1.get("memory/request"), None, "absent in pods: absent");
        assert!(!out.sets.contains_key(&keys::node_key("n2")), "no node set invented");
    }
}
