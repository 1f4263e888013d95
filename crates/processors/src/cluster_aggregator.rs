//! The `cluster` metric set: sums of namespace or node gauges.
//!
//! With Kubernetes the cluster is the sum of its namespaces, as in Heapster 1.6 (`cluster_aggregator.go`): what
//! pods use. That leaves out everything outside pods (the kubelet, the runtime, the kernel), which
//! [`ClusterFrom::Nodes`] counts: the sum of nodes, what the machines really spend
//! (`--cluster_aggregation=nodes`). Standalone, without namespaces, the cluster is this one host: nodes are summed.

use crate::DataProcessor;
use heapster_model::keys::{self, MetricSetType};
use heapster_model::{DataBatch, MetricSet, MetricValue};

/// Gauges that add up across namespaces or nodes: Heapster's six (`cpu/usage_rate`, `memory/usage`, requests and
/// limits) and the working set, cache, RSS, network rates and ephemeral storage where the summed sets carry them.
/// Cumulative counters are left out: a node reboot would make their sum go backwards, and their rates, which are
/// summed, carry the same information.
pub const AGGREGATED: &[&str] = &[
    "cpu/usage_rate",
    "cpu/request",
    "cpu/limit",
    "memory/usage",
    "memory/working_set",
    "memory/rss",
    "memory/cache",
    "memory/request",
    "memory/limit",
    "network/rx_rate",
    "network/tx_rate",
    "network/rx_errors_rate",
    "network/tx_errors_rate",
    "ephemeral_storage/usage",
];

/// Which sets the cluster is the sum of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterFrom {
    /// Namespaces: what pods use (Heapster's meaning, the default with Kubernetes).
    #[default]
    Namespaces,
    /// Nodes: what the machines use, system containers included (standalone, or `--cluster_aggregation=nodes`).
    Nodes,
}

impl ClusterFrom {
    fn set_type(self) -> MetricSetType {
        match self {
            ClusterFrom::Namespaces => MetricSetType::Namespace,
            ClusterFrom::Nodes => MetricSetType::Node,
        }
    }
}

/// Adds the `cluster` set to every batch that has at least one set to sum.
#[derive(Debug, Default)]
pub struct ClusterAggregator {
    pub from: ClusterFrom,
}

impl ClusterAggregator {
    pub fn new(from: ClusterFrom) -> Self {
        ClusterAggregator { from }
    }
}

impl DataProcessor for ClusterAggregator {
    fn name(&self) -> &'static str {
        "cluster_aggregator"
    }

    /// Reads namespace or node sets only.
    fn needs_container_sets(&self) -> bool {
        false
    }

    fn needs_pod_sets(&self) -> bool {
        false
    }

    fn process(&mut self, mut batch: DataBatch) -> DataBatch {
        let mut cluster = MetricSet { scrape_time: batch.timestamp, ..Default::default() };
        cluster.set_kind(MetricSetType::Cluster);
        let wanted = self.from.set_type().as_str();
        let mut summed = 0;
        for set in batch.sets.values().filter(|s| s.set_type() == Some(wanted)) {
            summed += 1;
            // The cluster is as old as its oldest part.
            if summed == 1 || set.create_time < cluster.create_time {
                cluster.create_time = set.create_time;
            }
            for &name in AGGREGATED {
                if let Some(v) = set.get(name) {
                    let sum = match (cluster.get(name), v) {
                        (None, v) => v,
                        (Some(MetricValue::Int(a)), MetricValue::Int(b)) => MetricValue::Int(a.saturating_add(b)),
                        (Some(a), b) => MetricValue::Float(a.as_f64() + b.as_f64()),
                    };
                    cluster.set(name, sum);
                }
            }
        }
        if summed > 0 {
            batch.sets.insert(keys::cluster_key(), cluster);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::labels;

    fn node(cpu_rate: f64, mem: i64) -> MetricSet {
        let mut s = MetricSet::default();
        s.labels.insert(labels::TYPE, "node");
        s.set("cpu/usage_rate", MetricValue::Float(cpu_rate));
        s.set("memory/usage", MetricValue::Int(mem));
        s.set("cpu/usage", MetricValue::Int(1));
        s
    }

    #[test]
    fn sums_nodes_and_keeps_types() {
        let mut b = DataBatch { timestamp: 60_000, ..Default::default() };
        b.sets.insert("node:a".into(), node(250.5, 1 << 30));
        b.sets.insert("node:b".into(), node(100.0, 1 << 20));
        let mut sys = node(999.0, 999);
        sys.labels.insert(labels::TYPE, "sys_container");
        b.sets.insert("node:a/container:x".into(), sys);
        let out = ClusterAggregator::new(ClusterFrom::Nodes).process(b);
        let c = &out.sets["cluster"];
        assert_eq!(c.labels[labels::TYPE], "cluster");
        assert_eq!(c.get("cpu/usage_rate"), Some(MetricValue::Float(350.5)));
        assert_eq!(c.get("memory/usage"), Some(MetricValue::Int((1 << 30) + (1 << 20))));
        assert_eq!(c.get("cpu/usage"), None, "counters are not summed");
    }

    #[test]
    fn no_nodes_no_cluster() {
        let out = ClusterAggregator::default().process(DataBatch::default());
        assert!(out.sets.is_empty());
    }

    /// Heapster's meaning: namespaces are summed, nodes and system containers are not.
    #[test]
    fn sums_namespaces_by_default() {
        let mut b = DataBatch { timestamp: 60_000, ..Default::default() };
        let ns = |cpu, mem| {
            let mut s = node(cpu, mem);
            s.labels.insert(labels::TYPE, "ns");
            s
        };
        b.sets.insert("namespace:a".into(), ns(10.0, 100));
        b.sets.insert("namespace:b".into(), ns(5.5, 20));
        b.sets.insert("node:n".into(), node(999.0, 999_999));
        let out = ClusterAggregator::default().process(b);
        let c = &out.sets["cluster"];
        assert_eq!(c.get("cpu/usage_rate"), Some(MetricValue::Float(15.5)));
        assert_eq!(c.get("memory/usage"), Some(MetricValue::Int(120)));
    }
}
