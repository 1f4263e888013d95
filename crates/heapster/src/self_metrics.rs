//! heapster's own health, served at `/metrics`: how scrapes and batches go, and what the processors count.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
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
    /// Sources (nodes, for a kubernetes source) the newest round got sets from.
    pub round_nodes_scraped: Gauge,
    pub last_batch_timestamp: Gauge<f64, AtomicU64>,
    pub batches: Counter,
    /// The same events under the original Heapster's names.
    pub heapster: crate::heapster_summaries::HeapsterSummaries,
}

impl PipelineMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let buckets = || Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        let m = PipelineMetrics {
            scrape_seconds: Family::new_with_constructor(buckets),
            scrape_errors: Family::default(),
            // Finer near the default 15 s resolution, so that "every round within its resolution" can be read
            // off the histogram.
            round_seconds: Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 20.0, 30.0, 60.0]),
            batch_sets: Gauge::default(),
            batch_points: Gauge::default(),
            round_nodes_scraped: Gauge::default(),
            last_batch_timestamp: Gauge::default(),
            batches: Counter::default(),
            heapster: crate::heapster_summaries::HeapsterSummaries::register(registry),
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
            "heapster_round_nodes_scraped",
            "Sources (nodes, for a kubernetes source) the newest round got sets from",
            m.round_nodes_scraped.clone(),
        );
        registry.register_collector(Box::new(CpuSeconds));
        registry.register(
            "heapster_last_batch_timestamp_seconds",
            "Unix time of the newest batch",
            m.last_batch_timestamp.clone(),
        );
        registry.register("heapster_batches", "Batches produced", m.batches.clone());
        m
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

/// `heapster_cpu_seconds_total{stage}`: heapster's own CPU by pipeline stage ([`heapster_cost`]), read at each
/// scrape; `other` is the rest of the process's, so the stages sum to its utime + stime.
#[derive(Debug)]
struct CpuSeconds;

impl Collector for CpuSeconds {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "heapster_cpu_seconds",
            "heapster's own CPU time by stage (scrape, decode, processors, store, api, sink:<name>, other); they \
             sum to the process's",
            None,
            MetricType::Counter,
        )?;
        for (stage, ns) in heapster_cost::snapshot().with_other() {
            ConstCounter::new(ns as f64 / 1e9).encode(family.encode_family(&StageLabels { stage })?)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProcessorLabels {
    pub processor: String,
}

/// The processors' own counts ([`heapster_processors::DataProcessor::counters`]), read at each scrape of
/// `/metrics`: `heapster_processor_<what>_total{processor="<name>"}`.
#[derive(Debug)]
pub struct ProcessorCounters(Vec<(&'static str, &'static str, heapster_processors::Counter)>);

impl ProcessorCounters {
    /// Registers the counters of `processors` (none for a chain that keeps none).
    pub fn register(registry: &mut Registry, processors: &[Box<dyn heapster_processors::DataProcessor>]) {
        let counters = processors
            .iter()
            .flat_map(|p| p.counters().into_iter().map(|(what, c)| (p.name(), what, c)))
            .collect::<Vec<_>>();
        if !counters.is_empty() {
            registry.register_collector(Box::new(ProcessorCounters(counters)));
        }
    }
}

fn processor_help(what: &str) -> &'static str {
    match what {
        heapster_processors::UNENRICHED_SETS => {
            "Sets an enricher left as the source made them because their pod, namespace or node was unknown to the \
             API server's metadata (yet), by processor"
        }
        _ => "A count kept by a processor, by processor",
    }
}

impl Collector for ProcessorCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut whats: Vec<&str> = self.0.iter().map(|(_, what, _)| *what).collect();
        whats.sort_unstable();
        whats.dedup();
        for what in whats {
            let name = format!("heapster_processor_{what}");
            let mut family = encoder.encode_descriptor(&name, processor_help(what), None, MetricType::Counter)?;
            for (processor, _, counter) in self.0.iter().filter(|(_, w, _)| *w == what) {
                let labels = ProcessorLabels { processor: (*processor).to_owned() };
                ConstCounter::new(counter.get()).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::{DataBatch, Labels, MetricSet, labels};
    use heapster_processors::{NodeAutoscalingConfig, PodEnricherConfig, StaticMetadata};

    /// The Kubernetes chain's counters land on `/metrics` with the processors' names, and later rounds show.
    #[test]
    fn processor_counters_are_in_the_registry_output() {
        let md = StaticMetadata::new().with_namespace("shop", "uid-shop").shared();
        let mut chain =
            heapster_processors::kubernetes_chain(md, PodEnricherConfig::default(), NodeAutoscalingConfig::default());
        let mut registry = Registry::default();
        ProcessorCounters::register(&mut registry, &chain);

        // A container of a pod the metadata does not know, in a namespace it does not know either, and a node it
        // does not know.
        let mut batch = DataBatch { timestamp: 1000, ..Default::default() };
        let container = Labels::from([
            (labels::TYPE, "pod_container".to_owned()),
            (labels::NAMESPACE_NAME, "ghosts".to_owned()),
            (labels::POD_NAMESPACE, "ghosts".to_owned()),
            (labels::POD_NAME, "casper".to_owned()),
            (labels::CONTAINER_NAME, "c".to_owned()),
            (labels::NODENAME, "n1".to_owned()),
        ]);
        let node = Labels::from([(labels::TYPE, "node".to_owned()), (labels::NODENAME, "n1".to_owned())]);
        batch.sets.insert(
            "namespace:ghosts/pod:casper/container:c".into(),
            MetricSet { labels: container, ..Default::default() },
        );
        batch.sets.insert("node:n1".into(), MetricSet { labels: node, ..Default::default() });
        for _ in 0..2 {
            chain.iter_mut().fold(batch.clone(), |b, p| p.process(b));
        }

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("# TYPE heapster_processor_unenriched_sets counter"), "{text}");
        assert_eq!(text.matches("# TYPE heapster_processor_unenriched_sets").count(), 1, "one family: {text}");
        let value = |processor: &str| -> u64 {
            let prefix = format!("heapster_processor_unenriched_sets_total{{processor=\"{processor}\"}} ");
            let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{prefix}: {text}"));
            line[prefix.len()..].parse().unwrap()
        };
        assert_eq!(value("pod_based_enricher"), 2, "the container, each round");
        // The container and the pod set the aggregator makes for it are in an unknown namespace: the namespace
        // enricher runs before the aggregators, so only the container counts, once a round.
        assert_eq!(value("namespace_based_enricher"), 2);
        assert_eq!(value("node_autoscaling_enricher"), 2);
    }
}
