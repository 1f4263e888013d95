//! Pod sets as the sum of their containers, as Heapster 1.6's `pod_aggregator.go`, for every metric the pod set
//! does not already have.
//!
//! The kubelet measures pods itself (CPU and memory on the pod cgroup, network on the pod's interface, ephemeral
//! storage, volumes); those values are kept, and the sum of containers only fills in what is missing (for
//! example `memory/rss`, `restart_count`, `cpu/load`, or everything when the pod set came from the pod enricher).
//! Heapster did the same: a metric present on the pod before aggregation was left alone.
//!
//! Summed: the gauges of the catalog (rates included), as Heapster summed every non-cumulative metric.
//! Not summed:
//! - cumulative counters (Heapster skipped them too: containers restart at different times, so the sum of
//!   counters is not a counter; the rates carry the same information);
//! - labelled metrics (filesystems, disks, accelerators name their own devices, and Heapster left them too);
//! - ratios and pressure (PSI) rates: a share of time stalled does not add up across containers (deviation);
//! - `custom/*` metrics: their meaning is the application's, and a sum of, say, latencies means nothing
//!   (deviation: Heapster summed them).
//!
//! Each container set is one key of the batch, so it is counted once; sources already keep only the live one of
//! a dead and a live container with the same name.
//!
//! A pod set is created for containers whose pod has none (their pod was unknown to the pod enricher), with the
//! labels Heapster copied (`pod_id`, `pod_name`, `pod_namespace`, `namespace_name`, `namespace_id`, `hostname`,
//! `host_id`) plus `nodename` and `labels` (deviation: so that the node aggregator and queries by node find it).

use crate::DataProcessor;
use crate::aggregate::{Sums, Wanted};
use heapster_model::catalog::{self, MetricType};
use heapster_model::keys::{self, MetricSetType};
use heapster_model::{DataBatch, Labels, MetricSet, Units, labels};
use std::borrow::Cow;

/// Labels a created pod set takes from its first container.
const LABELS_TO_POPULATE: [&str; 9] = [
    labels::POD_ID,
    labels::POD_NAME,
    labels::POD_NAMESPACE,
    labels::NAMESPACE_NAME,
    labels::NAMESPACE_ID,
    labels::HOSTNAME,
    labels::HOST_ID,
    labels::NODENAME,
    labels::LABELS,
];

/// Whether containers' values of `name` add up to the pod's.
pub fn summed_into_pods(name: &str) -> bool {
    summed().contains(name)
}

/// The metrics [`summed_into_pods`] accepts, resolved from the catalog once: they are looked for in every
/// container set each round.
fn summed() -> &'static Wanted {
    use std::sync::LazyLock;
    static SUMMED: LazyLock<Wanted> = LazyLock::new(|| {
        Wanted::new(catalog::CATALOG.iter().map(|d| d.name).filter(|n| summed_by_catalog(n)).map(Cow::Borrowed))
    });
    &SUMMED
}

/// [`summed_into_pods`] from the catalog's description of `name`.
fn summed_by_catalog(name: &str) -> bool {
    catalog::find(name).is_some_and(|d| {
        d.metric_type == MetricType::Gauge && !d.labeled && d.units != Units::Ratio && !name.contains("/pressure_")
    })
}

/// See the module docs.
#[derive(Default)]
pub struct PodAggregator;

impl PodAggregator {
    /// The aggregator; it has no configuration, as in Heapster.
    pub fn new() -> Self {
        PodAggregator
    }
}

fn new_pod_set(container: &Labels) -> MetricSet {
    let mut set = MetricSet::default();
    set.set_kind(MetricSetType::Pod);
    for key in LABELS_TO_POPULATE {
        if let Some(v) = container.get(key) {
            set.labels.insert(key, v.clone());
        }
    }
    set
}

impl DataProcessor for PodAggregator {
    fn name(&self) -> &'static str {
        "pod_aggregator"
    }

    /// A pod's containers all come from its node's kubelet.
    fn for_one_source(&self) -> Option<Box<dyn DataProcessor>> {
        Some(Box::new(PodAggregator))
    }

    fn process(&mut self, mut batch: DataBatch) -> DataBatch {
        // Pods in the order first seen: (pod key, sums, labels of its first container). A pod's containers are
        // mostly next to each other in key order, so the last pod is tried before formatting a key and looking
        // it up; either way containers are summed in key order, as before.
        let mut pods: Vec<(String, Sums, &Labels)> = Vec::new();
        let mut index: foldhash::HashMap<String, usize> = foldhash::HashMap::default();
        let mut last: Option<(&str, &str, usize)> = None;
        for (key, set) in &batch.sets {
            if set.set_type() != Some(MetricSetType::PodContainer.as_str()) {
                continue;
            }
            let (Some(ns), Some(pod)) = (set.labels.get(labels::NAMESPACE_NAME), set.labels.get(labels::POD_NAME))
            else {
                tracing::debug!(set = %key, "container set names no pod: not aggregated");
                continue;
            };
            let i = match last {
                Some((n, p, i)) if n == ns && p == pod => i,
                _ => {
                    let pod_key = keys::pod_key(ns, pod);
                    let i = *index.entry(pod_key).or_insert_with_key(|k| {
                        pods.push((k.clone(), Sums::default(), &set.labels));
                        pods.len() - 1
                    });
                    last = Some((ns, pod, i));
                    i
                }
            };
            pods[i].1.add_wanted(set, summed());
        }
        drop(index);
        // Find the pods' sets by merging their sorted keys with the batch's, twice (once to see which are missing
        // while the first containers' labels can still be read, once to fill the others): two walks over the
        // batch compare fewer strings than a search of it for every pod. The keys come mostly sorted already.
        pods.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut keys = batch.sets.keys().peekable();
        let pods: Vec<(String, Sums, Option<MetricSet>)> = pods
            .into_iter()
            .map(|(key, sums, first)| {
                while keys.next_if(|k| k.as_str() < key.as_str()).is_some() {}
                let present = keys.peek().is_some_and(|k| **k == key);
                (key, sums, (!present).then(|| new_pod_set(first)))
            })
            .collect();
        let mut sets = batch.sets.iter_mut().peekable();
        let mut created = Vec::new();
        for (key, sums, new) in pods {
            match new {
                Some(mut set) => {
                    (set.create_time, set.scrape_time) = (sums.create_time, sums.scrape_time);
                    tracing::debug!(pod = %key, "no pod set: creating one from its containers");
                    sums.fill(&mut set);
                    created.push((key, set));
                }
                None => {
                    while sets.next_if(|(k, _)| k.as_str() < key.as_str()).is_some() {}
                    if let Some((_, set)) = sets.next_if(|(k, _)| **k == key) {
                        sums.fill(set);
                    }
                }
            }
        }
        batch.sets.extend(created);
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::{LabeledMetric, MetricValue};
    use std::borrow::Cow;

    fn container(pod: &str, name: &str, cpu_rate: f64, mem: i64) -> MetricSet {
        let mut s = MetricSet { create_time: 5_000, scrape_time: 60_000, ..Default::default() };
        s.labels = Labels::from([
            (labels::TYPE, "pod_container".to_owned()),
            (labels::NAMESPACE_NAME, "shop".to_owned()),
            (labels::POD_NAME, pod.to_owned()),
            (labels::POD_ID, format!("uid-{pod}")),
            (labels::NODENAME, "n1".to_owned()),
            (labels::CONTAINER_NAME, name.to_owned()),
        ]);
        s.set("cpu/usage_rate", MetricValue::Float(cpu_rate));
        s.set("memory/usage", MetricValue::Int(mem));
        s.set("cpu/request", MetricValue::Int(100));
        s.set("cpu/usage", MetricValue::Int(123_456));
        s
    }

    fn batch(sets: Vec<(String, MetricSet)>) -> DataBatch {
        DataBatch { timestamp: 60_000, sets: sets.into_iter().collect() }
    }

    #[test]
    fn sums_containers_into_a_created_pod() {
        let mut a = container("web", "a", 100.0, 1000);
        a.set("restart_count", MetricValue::Int(2));
        a.set("memory/rss", MetricValue::Int(600));
        a.labeled_metrics.push(LabeledMetric {
            name: Cow::Borrowed("filesystem/usage"),
            labels: labels::resource_id("/"),
            value: MetricValue::Int(1),
        });
        a.metrics.insert(Cow::Owned("custom/qps".to_owned()), MetricValue::Float(5.0));
        let mut b_ = container("web", "b", 50.5, 24);
        b_.set("restart_count", MetricValue::Int(1));
        b_.create_time = 4_000;
        let out = PodAggregator.process(batch(vec![
            (keys::pod_container_key("shop", "web", "a"), a),
            (keys::pod_container_key("shop", "web", "b"), b_),
        ]));
        let pod = &out.sets[&keys::pod_key("shop", "web")];
        assert_eq!(pod.set_type(), Some("pod"));
        assert_eq!(pod.labels[labels::POD_ID], "uid-web");
        assert_eq!(pod.labels[labels::NODENAME], "n1");
        assert!(!pod.labels.contains_key(labels::CONTAINER_NAME));
        assert_eq!((pod.create_time, pod.scrape_time), (4_000, 60_000));
        assert_eq!(pod.get("cpu/usage_rate"), Some(MetricValue::Float(150.5)));
        assert_eq!(pod.get("memory/usage"), Some(MetricValue::Int(1024)));
        assert_eq!(pod.get("cpu/request"), Some(MetricValue::Int(200)));
        assert_eq!(pod.get("restart_count"), Some(MetricValue::Int(3)));
        assert_eq!(pod.get("memory/rss"), Some(MetricValue::Int(600)), "one container's rss is the sum");
        assert_eq!(pod.get("memory/working_set"), None, "absent everywhere: absent, not zero");
        assert_eq!(pod.get("cpu/usage"), None, "counters are not summed");
        assert_eq!(pod.get("custom/qps"), None);
        assert!(pod.labeled_metrics.is_empty());
    }

    #[test]
    fn does_not_overwrite_what_the_pod_measured_itself() {
        let mut pod = MetricSet::default();
        pod.labels.insert(labels::TYPE, "pod");
        pod.set("cpu/usage_rate", MetricValue::Float(180.0));
        pod.set("memory/usage", MetricValue::Int(2048));
        pod.set("cpu/request", MetricValue::Int(250));
        let out = PodAggregator.process(batch(vec![
            (keys::pod_key("shop", "web"), pod),
            (keys::pod_container_key("shop", "web", "a"), container("web", "a", 100.0, 1000)),
            (keys::pod_container_key("shop", "web", "b"), container("web", "b", 50.0, 24)),
        ]));
        let pod = &out.sets[&keys::pod_key("shop", "web")];
        assert_eq!(pod.get("cpu/usage_rate"), Some(MetricValue::Float(180.0)));
        assert_eq!(pod.get("memory/usage"), Some(MetricValue::Int(2048)));
        assert_eq!(pod.get("cpu/request"), Some(MetricValue::Int(250)), "the enricher's sum stands");
        assert_eq!(out.sets.len(), 3);
    }

    #[test]
    fn pods_are_kept_apart_and_other_sets_untouched() {
        let mut node = MetricSet::default();
        node.labels.insert(labels::TYPE, "node");
        node.set("memory/usage", MetricValue::Int(1));
        let out = PodAggregator.process(batch(vec![
            (keys::pod_container_key("shop", "web", "a"), container("web", "a", 1.0, 10)),
            (keys::pod_container_key("shop", "db", "a"), container("db", "a", 2.0, 20)),
            (keys::node_key("n1"), node.clone()),
        ]));
        assert_eq!(out.sets[&keys::pod_key("shop", "web")].get("memory/usage"), Some(MetricValue::Int(10)));
        assert_eq!(out.sets[&keys::pod_key("shop", "db")].get("memory/usage"), Some(MetricValue::Int(20)));
        assert_eq!(out.sets[&keys::node_key("n1")], node);
    }

    #[test]
    fn the_lookup_agrees_with_the_catalog() {
        for d in catalog::CATALOG {
            assert_eq!(summed_into_pods(d.name), summed_by_catalog(d.name), "{}", d.name);
        }
        assert!(!summed_into_pods("custom/memory/usage"));
    }

    /// Sets are grouped by their labels, not their keys, so one pod's containers need not be next to each
    /// other in key order.
    #[test]
    fn interleaved_pods_are_summed_apart() {
        let out = PodAggregator.process(batch(vec![
            ("c1".into(), container("web", "a", 1.0, 10)),
            ("c2".into(), container("web-2", "a", 2.0, 20)),
            ("c3".into(), container("web", "b", 4.0, 40)),
        ]));
        let web = &out.sets[&keys::pod_key("shop", "web")];
        assert_eq!(web.get("memory/usage"), Some(MetricValue::Int(50)));
        assert_eq!(web.get("cpu/usage_rate"), Some(MetricValue::Float(5.0)));
        assert_eq!(out.sets[&keys::pod_key("shop", "web-2")].get("memory/usage"), Some(MetricValue::Int(20)));
    }

    #[test]
    fn which_metrics_add_up() {
        for m in ["cpu/usage_rate", "memory/working_set", "network/rx_rate", "restart_count", "cpu/limit"] {
            assert!(summed_into_pods(m), "{m}");
        }
        for m in
            ["cpu/usage", "uptime", "filesystem/usage", "cpu/node_utilization", "cpu/pressure_some_rate", "custom/x"]
        {
            assert!(!summed_into_pods(m), "{m}");
        }
    }
}
