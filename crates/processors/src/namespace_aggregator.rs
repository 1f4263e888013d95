//! Namespace sets as the sum of their pods, as Heapster 1.6's `namespace_aggregator.go`.
//!
//! Heapster summed `cpu/usage_rate`, `memory/usage`, `cpu/request`, `cpu/limit`, `memory/request` and
//! `memory/limit` ([`HEAPSTER_METRICS`]). The default here adds `memory/working_set` (what `kubectl top` and the
//! HPA read), the network rates and ephemeral storage ([`DEFAULT_METRICS`]); all are gauges that add up across
//! pods. The list is configurable.
//!
//! Pods without `namespace_name` are skipped. A created namespace set carries `type=ns`, `namespace_name` and,
//! from its pods, `namespace_id`. A value the namespace set already has is kept (no source produces namespace sets
//! today; this only guards against counting twice).
//!
//! It runs per source (see [`crate::per_source`]): each node's instance sums that node's pods, and the nodes' sums
//! of one namespace are added up as the round's sets are gathered ([`DataProcessor::merge_partial`]), as sums
//! are: values added, the oldest non-zero create time, the newest scrape time. So a node's pods, like its
//! containers, can go to the store from its scrape instead of waiting in the round's batch for the sum of the
//! cluster's pods. Each pod is counted once because each pod is one node's: the kubelet source drops a pod the
//! API server places on another node (a kubelet still reporting a pod that moved).

use crate::DataProcessor;
use crate::aggregate::{Sums, Wanted};
use heapster_model::batch::MetricName;
use heapster_model::keys::{self, MetricSetType};
use heapster_model::{DataBatch, LabelValue, MetricSet, labels};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Heapster 1.6's `metricsToAggregate`, used for namespaces and the cluster.
pub const HEAPSTER_METRICS: &[&str] =
    &["cpu/usage_rate", "memory/usage", "cpu/request", "cpu/limit", "memory/request", "memory/limit"];

/// [`HEAPSTER_METRICS`] and other gauges that add up across pods.
pub const DEFAULT_METRICS: &[&str] = &[
    "cpu/usage_rate",
    "memory/usage",
    "cpu/request",
    "cpu/limit",
    "memory/request",
    "memory/limit",
    "memory/working_set",
    "network/rx_rate",
    "network/tx_rate",
    "network/rx_errors_rate",
    "network/tx_errors_rate",
    "ephemeral_storage/usage",
    "ephemeral_storage/request",
    "ephemeral_storage/limit",
];

/// See the module docs.
pub struct NamespaceAggregator {
    metrics: Wanted,
}

impl NamespaceAggregator {
    /// Sums `metrics` of pods into their namespace.
    pub fn new(metrics: impl IntoIterator<Item = MetricName>) -> Self {
        NamespaceAggregator { metrics: Wanted::new(metrics) }
    }
}

impl Default for NamespaceAggregator {
    /// Sums [`DEFAULT_METRICS`].
    fn default() -> Self {
        NamespaceAggregator::new(DEFAULT_METRICS.iter().map(|&m| Cow::Borrowed(m)))
    }
}

impl DataProcessor for NamespaceAggregator {
    fn name(&self) -> &'static str {
        "namespace_aggregator"
    }

    /// Reads pod sets only.
    fn needs_container_sets(&self) -> bool {
        false
    }

    fn for_one_source(&self) -> Option<Box<dyn DataProcessor>> {
        Some(Box::new(NamespaceAggregator { metrics: self.metrics.clone() }))
    }

    /// Adds up two nodes' sums of one namespace (see the module docs): namespace sets at gathering are this
    /// aggregator's, since no source makes any.
    fn merge_partial(&self, into: &mut MetricSet, from: &MetricSet) -> bool {
        let namespace = Some(MetricSetType::Namespace.as_str());
        if into.set_type() != namespace || from.set_type() != namespace {
            return false;
        }
        for (name, &v) in &from.metrics {
            match into.metrics.get_mut(name) {
                Some(sum) => *sum = crate::aggregate::add(*sum, v),
                None => {
                    into.metrics.insert(name.clone(), v);
                }
            }
        }
        Sums::merge_times(&mut into.create_time, &mut into.scrape_time, from);
        if !into.labels.contains_key(labels::NAMESPACE_ID)
            && let Some(uid) = from.labels.get(labels::NAMESPACE_ID)
        {
            into.labels.insert(labels::NAMESPACE_ID, uid.clone());
        }
        true
    }

    fn process(&mut self, mut batch: DataBatch) -> DataBatch {
        // namespace -> (sums, namespace_id of a pod)
        let mut namespaces: BTreeMap<&str, (Sums, Option<&LabelValue>)> = BTreeMap::new();
        for (key, set) in &batch.sets {
            if set.set_type() != Some(MetricSetType::Pod.as_str()) {
                continue;
            }
            let Some(ns) = set.labels.get(labels::NAMESPACE_NAME) else {
                tracing::debug!(set = %key, "pod set names no namespace: not aggregated");
                continue;
            };
            let (sums, uid) = namespaces.entry(ns.as_str()).or_default();
            sums.add_wanted(set, &self.metrics);
            if uid.is_none() {
                *uid = set.labels.get(labels::NAMESPACE_ID);
            }
        }
        let namespaces: Vec<(String, Sums, Option<LabelValue>)> =
            namespaces.into_iter().map(|(ns, (sums, uid))| (ns.to_owned(), sums, uid.cloned())).collect();
        for (ns, sums, uid) in namespaces {
            let set = batch.sets.entry(keys::namespace_key(&ns)).or_insert_with(|| {
                let mut set =
                    MetricSet { create_time: sums.create_time, scrape_time: sums.scrape_time, ..Default::default() };
                set.set_kind(MetricSetType::Namespace);
                set.labels.insert(labels::NAMESPACE_NAME, ns.as_str());
                if let Some(uid) = uid {
                    set.labels.insert(labels::NAMESPACE_ID, uid);
                }
                set
            });
            sums.fill(set);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::{Labels, MetricValue};

    fn pod(ns: &str, cpu: f64, mem: i64) -> MetricSet {
        let mut s = MetricSet { create_time: 7, scrape_time: 60_000, ..Default::default() };
        s.labels = Labels::from([
            (labels::TYPE, "pod".to_owned()),
            (labels::NAMESPACE_NAME, ns.to_owned()),
            (labels::NAMESPACE_ID, format!("uid-{ns}")),
        ]);
        s.set("cpu/usage_rate", MetricValue::Float(cpu));
        s.set("memory/usage", MetricValue::Int(mem));
        s.set("memory/rss", MetricValue::Int(mem));
        s
    }

    #[test]
    fn sums_pods_per_namespace() {
        let mut b = DataBatch::default();
        b.sets.insert(keys::pod_key("a", "1"), pod("a", 10.0, 100));
        b.sets.insert(keys::pod_key("a", "2"), pod("a", 5.5, 1));
        b.sets.insert(keys::pod_key("b", "1"), pod("b", 1.0, 7));
        let mut container = pod("a", 1000.0, 1000);
        container.labels.insert(labels::TYPE, "pod_container");
        b.sets.insert(keys::pod_container_key("a", "1", "c"), container);
        let out = NamespaceAggregator::default().process(b);
        let a = &out.sets[&keys::namespace_key("a")];
        assert_eq!(a.set_type(), Some("ns"));
        assert_eq!(a.labels[labels::NAMESPACE_NAME], "a");
        assert_eq!(a.labels[labels::NAMESPACE_ID], "uid-a");
        assert_eq!(a.get("cpu/usage_rate"), Some(MetricValue::Float(15.5)), "containers are not counted again");
        assert_eq!(a.get("memory/usage"), Some(MetricValue::Int(101)));
        assert_eq!(a.get("memory/rss"), None, "not in the list");
        assert_eq!(a.get("cpu/request"), None, "absent in pods: absent, not zero");
        assert_eq!(out.sets[&keys::namespace_key("b")].get("memory/usage"), Some(MetricValue::Int(7)));
    }

    #[test]
    fn heapster_list_is_configurable() {
        let mut b = DataBatch::default();
        b.sets.insert(keys::pod_key("a", "1"), pod("a", 10.0, 100));
        let mut agg = NamespaceAggregator::new(["memory/rss"].map(Cow::Borrowed));
        let out = agg.process(b);
        let a = &out.sets[&keys::namespace_key("a")];
        assert_eq!(a.get("memory/rss"), Some(MetricValue::Int(100)));
        assert_eq!(a.get("memory/usage"), None);
        assert!(HEAPSTER_METRICS.iter().all(|m| DEFAULT_METRICS.contains(m)));
    }

    /// Run per node and gathered, the sums are those of the whole batch: a namespace's pods on two nodes add up,
    /// create times keep the oldest non-zero one and scrape times the newest; other duplicate keys keep one set.
    #[test]
    fn per_node_sums_gathered_are_the_whole_batchs() {
        let (per_source, rest) = crate::per_source::split(vec![Box::new(NamespaceAggregator::default())]);
        assert!(rest.is_empty(), "the aggregator runs per source");
        let node = |pods: Vec<(&str, &str, MetricSet)>| {
            let mut b = DataBatch::default();
            for (ns, name, set) in pods {
                b.sets.insert(keys::pod_key(ns, name), set);
            }
            b
        };
        let at = |cpu: f64, mem: i64, create_time: i64, scrape_time: i64| MetricSet {
            create_time,
            scrape_time,
            ..pod("a", cpu, mem)
        };
        let mut no_uid = pod("b", 2.0, 1);
        no_uid.labels.remove(labels::NAMESPACE_ID);
        // Node 0's pod of `a` has no start time and the newest scrape; node 1's are older, scraped earlier.
        let nodes = [
            node(vec![("a", "1", at(10.0, 100, 0, 61_000)), ("b", "1", no_uid)]),
            node(vec![
                ("a", "2", at(1.0, 2, 5, 59_000)),
                ("a", "3", at(0.25, 5, 3, 59_000)),
                ("b", "2", pod("b", 1.0, 7)),
            ]),
        ];
        let mut all = DataBatch::default();
        all.sets.extend(nodes.iter().flat_map(|b| b.sets.iter()).map(|(k, s)| (k.clone(), s.clone())));
        let whole = NamespaceAggregator::default().process(all);
        let mut sets = Vec::new();
        for (i, b) in nodes.into_iter().enumerate() {
            let mut chain = per_source.take(&format!("node-{i}")).expect("a per-source instance");
            sets.extend(per_source.run(&mut chain, b).sets);
        }
        // A key two sources gave that no processor merges: one of the two is kept.
        let mut other = pod("c", 1.0, 1);
        other.labels.insert(labels::TYPE, "node");
        sets.push((keys::node_key("n"), other.clone()));
        other.set("memory/usage", MetricValue::Int(9));
        sets.push((keys::node_key("n"), other));
        let gathered = per_source.gather(sets);
        let kept = gathered[&keys::node_key("n")].get("memory/usage");
        assert!([Some(MetricValue::Int(1)), Some(MetricValue::Int(9))].contains(&kept), "{kept:?}");
        for ns in ["a", "b"] {
            let (want, got) = (&whole.sets[&keys::namespace_key(ns)], &gathered[&keys::namespace_key(ns)]);
            assert_eq!(got.labels, want.labels, "{ns}");
            assert_eq!((got.create_time, got.scrape_time), (want.create_time, want.scrape_time), "{ns}");
            assert_eq!(got.metrics, want.metrics, "{ns}");
        }
        let a = &gathered[&keys::namespace_key("a")];
        assert_eq!((a.create_time, a.scrape_time), (3, 61_000), "the oldest known start, the newest scrape");
        assert_eq!(a.get("memory/usage"), Some(MetricValue::Int(107)));
        assert_eq!(gathered[&keys::namespace_key("b")].labels[labels::NAMESPACE_ID], "uid-b");
    }
}
