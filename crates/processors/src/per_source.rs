//! The leading processors of a chain that need only one source's sets, run in each source's scrape task on that
//! source's sets alone, before the sets join the round's batch.
//!
//! Why: at 5,000 nodes a round's batch is about a gigabyte, and each processor walking it in turn read it from
//! memory again, on one thread (half of the pod enricher's and the pod aggregator's time was spent waiting for
//! memory; at 15,000 nodes the chain took 7.7 s of a 15 s round). Run in a node's scrape right after its Summary
//! was converted, the same work finds the node's few dozen sets in the CPU's caches, and runs on every core.
//!
//! This is right when a set's inputs all come from the source that gave the set, as with the kubelet source: a
//! node's kubelet reports the node, its system containers, its pods and their containers, so a pod's containers,
//! a pod's node and a rate's previous reading are all in that node's sets. Processors say whether they can run so
//! ([`DataProcessor::for_one_source`]); the chain is split after the last of its leading run that can.
//!
//! State: each source has instances of its own (its own rate calculator with its own previous counters). A source
//! that gave no sets in a round (it failed, timed out, or left the cluster) loses them, so its next sets start
//! afresh: the whole-batch rate calculator likewise forgets sets absent from the previous batch.

use crate::DataProcessor;
use heapster_model::{DataBatch, MetricSet};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The per-source part of a chain: one instance of each for every source, made from the templates.
pub struct PerSource {
    /// Never run: what each source's instances are made from, and their names.
    templates: Vec<Box<dyn DataProcessor>>,
    /// Each source's instances, with that source's state, between its scrapes.
    chains: Mutex<HashMap<String, SourceChain>>,
    /// Nanoseconds each template's instances spent this round, summed over sources.
    spent: Vec<AtomicU64>,
}

/// One source's instances of the per-source processors, in chain order.
pub struct SourceChain(Vec<Box<dyn DataProcessor>>);

/// Splits `chain` into its leading processors that can run per source and the rest, which run on the whole batch
/// after them, in order.
pub fn split(mut chain: Vec<Box<dyn DataProcessor>>) -> (PerSource, Vec<Box<dyn DataProcessor>>) {
    let leading = chain.iter().take_while(|p| p.for_one_source().is_some()).count();
    let rest = chain.split_off(leading);
    let spent = chain.iter().map(|_| AtomicU64::new(0)).collect();
    (PerSource { templates: chain, chains: Mutex::default(), spent }, rest)
}

impl PerSource {
    /// The per-source processors' names, in chain order.
    pub fn names(&self) -> Vec<&'static str> {
        self.templates.iter().map(|p| p.name()).collect()
    }

    /// `source`'s instances: its own from its last round, or new ones. `None` when no processor runs per source.
    pub fn take(&self, source: &str) -> Option<SourceChain> {
        if self.templates.is_empty() {
            return None;
        }
        let kept = self.chains.lock().unwrap_or_else(|e| e.into_inner()).remove(source);
        Some(kept.unwrap_or_else(|| SourceChain(self.templates.iter().filter_map(|t| t.for_one_source()).collect())))
    }

    /// Runs `chain` on one source's sets, counting each processor's time towards [`PerSource::spent`].
    pub fn run(&self, chain: &mut SourceChain, batch: DataBatch) -> DataBatch {
        chain.0.iter_mut().zip(&self.spent).fold(batch, |b, (p, spent)| {
            let started = Instant::now();
            let b = p.process(b);
            spent.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            b
        })
    }

    /// Every source's processed sets as one batch's map. Where two sources gave one key, a per-source processor
    /// that made the set as one source's share of a sum merges the two ([`DataProcessor::merge_partial`]: the
    /// namespace aggregator's sums of each node's pods); otherwise one of the two is kept, which one being as much
    /// a matter of chance as the order in which the two scrapes ended.
    ///
    /// The sets are sorted before they become the map, whose own stable sort then finds one run: a node's few
    /// dozen sets are runs too short for the stable sort to take as they are, so it quicksorted them (about 6 % of
    /// heapster's CPU at 1,000 nodes), and the unstable sort takes a quarter less time (`batch_sort` bench).
    pub fn gather(&self, mut sets: Vec<(String, MetricSet)>) -> BTreeMap<String, MetricSet> {
        sets.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        sets.dedup_by(|(key, later), (kept_key, kept)| {
            if key != kept_key {
                return false;
            }
            if !self.templates.iter().any(|p| p.merge_partial(kept, later)) {
                std::mem::swap(kept, later);
            }
            true
        });
        sets.into_iter().collect()
    }

    /// Keeps the instances of the sources that gave sets this round, for their next round; every other source's
    /// are dropped (see the module docs).
    pub fn keep(&self, chains: HashMap<String, SourceChain>) {
        let old = std::mem::replace(&mut *self.chains.lock().unwrap_or_else(|e| e.into_inner()), chains);
        drop(old);
    }

    /// Each processor's time since the last call, summed over sources, by name: a round's share of the chain.
    pub fn spent(&self) -> Vec<(&'static str, Duration)> {
        let spent = self.spent.iter().map(|s| Duration::from_nanos(s.swap(0, Ordering::Relaxed)));
        self.names().into_iter().zip(spent).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClusterAggregator, ClusterFrom, NodeAggregator, RateCalculator};
    use heapster_model::{MetricSet, MetricSetType, MetricValue, keys};

    fn node(name: &str, t: i64, cpu_ns: i64) -> DataBatch {
        let mut set = MetricSet { create_time: 1, scrape_time: t, ..Default::default() };
        set.set_kind(MetricSetType::Node);
        set.labels.insert(heapster_model::labels::NODENAME, name);
        set.set("cpu/usage", MetricValue::Int(cpu_ns));
        let mut b = DataBatch { timestamp: t, ..Default::default() };
        b.sets.insert(keys::node_key(name), set);
        b
    }

    fn rate(b: &DataBatch, name: &str) -> Option<MetricValue> {
        b.sets[&keys::node_key(name)].get("cpu/usage_rate")
    }

    #[test]
    fn the_chain_splits_after_its_leading_per_source_processors() {
        let chain: Vec<Box<dyn DataProcessor>> = vec![
            Box::new(RateCalculator::new()),
            Box::new(NodeAggregator::default()),
            Box::new(ClusterAggregator::new(ClusterFrom::Nodes)),
            Box::new(RateCalculator::new()),
        ];
        let (per_source, rest) = split(chain);
        assert_eq!(per_source.names(), ["rate_calculator", "node_aggregator"]);
        assert_eq!(rest.iter().map(|p| p.name()).collect::<Vec<_>>(), ["cluster_aggregator", "rate_calculator"]);
    }

    #[test]
    fn each_source_keeps_its_own_state_and_a_source_without_sets_in_a_round_starts_afresh() {
        let (per_source, _) = split(vec![Box::new(RateCalculator::new())]);
        let round = |t: i64, sources: &[&str]| {
            let mut kept = HashMap::new();
            let mut out = Vec::new();
            for &s in sources {
                let mut chain = per_source.take(s).expect("a per-source processor");
                // One core's worth of CPU on a, two on b.
                let cores = if s == "a" { 1 } else { 2 };
                out.push(per_source.run(&mut chain, node(s, t, cores * t * 1_000_000)));
                kept.insert(s.to_owned(), chain);
            }
            per_source.keep(kept);
            out
        };
        let first = round(10_000, &["a", "b"]);
        assert_eq!((rate(&first[0], "a"), rate(&first[1], "b")), (None, None), "no previous reading yet");
        let second = round(20_000, &["a", "b"]);
        assert_eq!(rate(&second[0], "a"), Some(MetricValue::Int(1000)), "a's rate from a's own previous reading");
        assert_eq!(rate(&second[1], "b"), Some(MetricValue::Int(2000)));
        round(30_000, &["a"]);
        let fourth = round(40_000, &["a", "b"]);
        assert_eq!(rate(&fourth[0], "a"), Some(MetricValue::Int(1000)));
        assert_eq!(rate(&fourth[1], "b"), None, "b gave nothing last round: its reading of two rounds ago is not used");
        let spent = per_source.spent();
        assert_eq!(spent.len(), 1);
        assert!(spent[0].1 > Duration::ZERO, "the time of 7 runs is counted");
        assert_eq!(per_source.spent()[0].1, Duration::ZERO, "and handed out once");
    }
}
