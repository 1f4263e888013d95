//! The `cluster` metric set: sums of node-level gauges.
//!
//! Heapster summed namespaces, which leaves out everything outside pods (the kubelet, the runtime, the kernel).
//! Summing nodes counts what the machines really spend, and works the same in standalone mode, where the cluster
//! is this one host and there are no namespaces.

use crate::DataProcessor;
use heapster_model::keys::{self, MetricSetType};
use heapster_model::{DataBatch, MetricSet, MetricValue};

/// Gauges that add up across nodes. Cumulative counters are left out: a node reboot would make their sum go
/// backwards, and their rates, which are summed, carry the same information.
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

/// Adds the `cluster` set to every batch that has at least one node.
#[derive(Default)]
pub struct ClusterAggregator;

impl DataProcessor for ClusterAggregator {
    fn name(&self) -> &'static str {
        "cluster_aggregator"
    }

    fn process(&mut self, mut batch: DataBatch) -> DataBatch {
        let mut cluster = MetricSet { scrape_time: batch.timestamp, ..Default::default() };
        cluster.set_kind(MetricSetType::Cluster);
        let mut nodes = 0;
        for set in batch.sets.values().filter(|s| s.set_type() == Some(MetricSetType::Node.as_str())) {
            nodes += 1;
            // The cluster is as old as its oldest node.
            if nodes == 1 || set.create_time < cluster.create_time {
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
        if nodes > 0 {
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
        s.labels.insert(labels::TYPE, "node".into());
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
        sys.labels.insert(labels::TYPE, "sys_container".into());
        b.sets.insert("node:a/container:x".into(), sys);
        let out = ClusterAggregator.process(b);
        let c = &out.sets["cluster"];
        assert_eq!(c.labels[labels::TYPE], "cluster");
        assert_eq!(c.get("cpu/usage_rate"), Some(MetricValue::Float(350.5)));
        assert_eq!(c.get("memory/usage"), Some(MetricValue::Int((1 << 30) + (1 << 20))));
        assert_eq!(c.get("cpu/usage"), None, "counters are not summed");
    }

    #[test]
    fn no_nodes_no_cluster() {
        let out = ClusterAggregator.process(DataBatch::default());
        assert!(out.sets.is_empty());
    }
}
