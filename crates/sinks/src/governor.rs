//! A cardinality governor per sink: options every sink takes in its `--sink` URI, applied by the
//! [`crate::manager::SinkManager`] to each batch before that sink sees it.
//!
//! - `labels_allow=a,b` keeps only these labels, `labels_deny=a,b` drops these (both may be given; deny wins).
//!   Series that become equal once labels are dropped are written once (the first in set-key order) and counted
//!   in `heapster_sink_series_merged_total`.
//! - `max_series=N` is the sink's series budget per batch, `max_series_per_metric=N` each metric's.
//!
//! A series is one metric of one metric set with its labels (the set's labels, after the lists, plus a labelled
//! metric's own): what InfluxDB calls a series and Prometheus a time series.
//!
//! # The cut rule
//! Each round the offered series are ranked, and admitted in that order while the budgets allow:
//! 1. by level: cluster, then namespace, node, system container, pod, pod container, anything else, so that the
//!    roll-ups an operator looks at first are the last to go;
//! 2. within a level, series written the round before come first: a new series (a pod with a fresh build id)
//!    never evicts one already being written, and the same series are written round after round;
//! 3. then by a stable hash of the entity's labels, then of the series: a pod is written with all its metrics or
//!    cut with all of them, and which pods go is the same in every run of the same version.
//!
//! Only a series of a higher level (a node that joined) takes the place of an admitted one of a lower level.
//! What was cut is counted per round in `heapster_sink_series_cut_total{sink,metric,label}`, `label` being the
//! label whose distinct values grew most among that metric's cut series (values no written series of the metric
//! has), and one log line names each change of the cut set, never every round.

use crate::self_metrics::{SinkCutLabels, SinkLabels, SinkMetrics};
use heapster_model::cardinality::{Budget, LabelCardinality, MetricCardinality, SinkCardinality};
use heapster_model::{ConfigError, DataBatch, Labels, MetricSet, MetricSetType, OptionSpec, SpecUri};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

/// The options every sink takes, read by [`crate::build`] before the sink's own.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("labels_allow", "", "write only these labels (comma-separated); series made equal are merged"),
    OptionSpec::new("labels_deny", "", "drop these labels (comma-separated) before writing"),
    OptionSpec::new("max_series", "", "series budget per batch; series over it are cut, the same ones each round"),
    OptionSpec::new("max_series_per_metric", "", "series budget per metric per batch"),
];

/// A sink's governor options, as given in its URI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GovernorConfig {
    pub labels_allow: Option<Vec<String>>,
    pub labels_deny: Vec<String>,
    pub max_series: Option<usize>,
    pub max_series_per_metric: Option<usize>,
}

impl GovernorConfig {
    /// Takes the governor's options out of `uri`: the config (`None` when none was given) and the URI the sink
    /// itself reads. `secrets` are the sink's secret options, masked in errors.
    pub fn take(uri: &SpecUri, secrets: &[OptionSpec]) -> Result<(Option<GovernorConfig>, SpecUri), ConfigError> {
        let error = |reason: String| ConfigError::new("--sink", uri, secrets, reason);
        let mut config = GovernorConfig::default();
        let mut rest = uri.clone();
        rest.options.clear();
        let mut any = false;
        for (k, v) in &uri.options {
            let list = || v.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
            let count = || {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| error(format!("{k}={v:?}: expected a whole number above 0")))
            };
            match k.as_str() {
                "labels_allow" => config.labels_allow = Some(list()),
                "labels_deny" => config.labels_deny = list(),
                "max_series" => config.max_series = Some(count()?),
                "max_series_per_metric" => config.max_series_per_metric = Some(count()?),
                _ => {
                    rest.options.push((k.clone(), v.clone()));
                    continue;
                }
            }
            any = true;
        }
        Ok((any.then_some(config), rest))
    }

    /// Whether the label lists let `label` through.
    pub fn keeps(&self, label: &str) -> bool {
        self.labels_allow.as_ref().is_none_or(|a| a.iter().any(|l| l == label))
            && !self.labels_deny.iter().any(|l| l == label)
    }

    fn filters(&self) -> bool {
        self.labels_allow.is_some() || !self.labels_deny.is_empty()
    }

    fn budget(&self) -> Budget {
        Budget {
            max_series: self.max_series,
            max_series_per_metric: self.max_series_per_metric,
            labels_allow: self.labels_allow.clone(),
            labels_deny: self.labels_deny.clone(),
        }
    }
}

/// The hasher of series keys: fixed, so a series has the same key in every round and every run.
fn hasher() -> impl Hasher {
    foldhash::fast::FixedState::with_seed(0x6865_6170_7374_6572).build_hasher()
}

fn hash_labels(h: &mut impl Hasher, labels: &Labels, config: &GovernorConfig, filter: bool) {
    for (k, v) in labels {
        if !filter || config.keeps(k) {
            k.hash(h);
            v.hash(h);
        }
    }
}

/// Rank of a set's level: lower is kept first.
fn level(set: &MetricSet) -> u8 {
    match set.kind.or_else(|| set.set_type().and_then(|t| t.parse().ok())) {
        Some(MetricSetType::Cluster) => 0,
        Some(MetricSetType::Namespace) => 1,
        Some(MetricSetType::Node) => 2,
        Some(MetricSetType::SysContainer) => 3,
        Some(MetricSetType::Pod) => 4,
        Some(MetricSetType::PodContainer) => 5,
        None => 6,
    }
}

/// One series of a batch, where it is: set `set` (in key order), value `idx` (unlabelled metrics first, then the
/// labelled ones).
#[derive(Clone, Copy)]
struct Series {
    level: u8,
    entity: u64,
    key: u64,
    set: u32,
    idx: u32,
}

/// Calls `f` with every series of `batch` (each set's unlabelled metrics, then its labelled ones) and the metric's
/// name; `duplicate` when an equal series came before it (the label lists made them equal).
fn series<'a>(batch: &'a DataBatch, config: &GovernorConfig, mut f: impl FnMut(Series, &'a str, &'a MetricSet)) {
    let filter = config.filters();
    for (si, set) in batch.sets.values().enumerate() {
        let mut h = hasher();
        hash_labels(&mut h, &set.labels, config, filter);
        let entity = h.finish();
        let lvl = level(set);
        for (i, (name, _)) in set.metrics.iter().enumerate() {
            let mut h = hasher();
            entity.hash(&mut h);
            name.hash(&mut h);
            f(Series { level: lvl, entity, key: h.finish(), set: si as u32, idx: i as u32 }, name, set);
        }
        let n = set.metrics.len();
        for (i, m) in set.labeled_metrics.iter().enumerate() {
            let mut h = hasher();
            entity.hash(&mut h);
            m.name.hash(&mut h);
            hash_labels(&mut h, &m.labels, config, filter);
            f(Series { level: lvl, entity, key: h.finish(), set: si as u32, idx: (n + i) as u32 }, &m.name, set);
        }
    }
}

type KeySet = HashSet<u64, foldhash::fast::FixedState>;

/// What a round left for `/api/v1/cardinality`, computed from on request.
#[derive(Default)]
struct Last {
    batch: Arc<DataBatch>,
    admitted: Arc<KeySet>,
    offered: usize,
    written: usize,
    merged: usize,
}

/// A handle on one sink's governor state that the API reads.
#[derive(Clone)]
pub struct GovernorView {
    name: String,
    config: GovernorConfig,
    last: Arc<Mutex<Last>>,
}

impl GovernorView {
    /// The sink's report after its last round, with at most `top` metrics and labels.
    pub fn report(&self, top: usize) -> SinkCardinality {
        let (batch, admitted, offered, written, merged) = {
            let l = self.last.lock().unwrap_or_else(|e| e.into_inner());
            (l.batch.clone(), l.admitted.clone(), l.offered, l.written, l.merged)
        };
        let mut metrics: HashMap<&str, (usize, usize)> = HashMap::new();
        let mut seen = KeySet::default();
        series(&batch, &self.config, |s, name, _| {
            if seen.insert(s.key) {
                let m = metrics.entry(name).or_default();
                m.0 += 1;
                m.1 += usize::from(admitted.contains(&s.key));
            }
        });
        let mut top_metrics: Vec<MetricCardinality> = metrics
            .into_iter()
            .map(|(metric, (offered, written))| MetricCardinality {
                metric: metric.to_owned(),
                offered,
                written,
                cut: offered - written,
            })
            .collect();
        top_metrics.sort_by(|a, b| b.offered.cmp(&a.offered).then_with(|| a.metric.cmp(&b.metric)));
        top_metrics.truncate(top);
        let mut values: HashMap<&str, HashSet<&str>> = HashMap::new();
        for set in batch.sets.values() {
            let labels = set.labels.iter().chain(set.labeled_metrics.iter().flat_map(|m| m.labels.iter()));
            for (k, v) in labels {
                values.entry(k).or_default().insert(v);
            }
        }
        let mut top_labels: Vec<LabelCardinality> = values
            .into_iter()
            .map(|(label, v)| LabelCardinality {
                label: label.to_owned(),
                values: v.len(),
                dropped: !self.config.keeps(label),
            })
            .collect();
        top_labels.sort_by(|a, b| b.values.cmp(&a.values).then_with(|| a.label.cmp(&b.label)));
        top_labels.truncate(top);
        SinkCardinality {
            sink: self.name.clone(),
            budget: self.config.budget(),
            timestamp: batch.timestamp,
            offered,
            written,
            cut: offered - written,
            merged,
            top_metrics,
            top_labels,
        }
    }
}

/// Every governed sink of a manager, for `/api/v1/cardinality`.
pub struct Governors(pub Vec<GovernorView>);

impl heapster_model::cardinality::CardinalityReport for Governors {
    fn cardinality(&self, top: usize) -> Vec<SinkCardinality> {
        self.0.iter().map(|g| g.report(top)).collect()
    }
}

/// One sink's governor: call [`Governor::govern`] with every batch, in order.
pub struct Governor {
    view: GovernorView,
    labels: SinkLabels,
    metrics: SinkMetrics,
    /// The series written last round.
    admitted: Arc<KeySet>,
    /// Count and sum of the keys of the series cut last round: a change means the cut set changed.
    cut_print: (usize, u64),
    /// The label that grew most per metric with cut series, as of the last change of the cut set.
    grew: HashMap<String, String>,
}

/// Why a series was cut, for the option the log line names.
#[derive(Clone, Copy, PartialEq)]
enum Over {
    Total,
    PerMetric,
}

impl Governor {
    pub fn new(name: &str, config: GovernorConfig, metrics: SinkMetrics) -> Self {
        Governor {
            view: GovernorView { name: name.to_owned(), config, last: Arc::default() },
            labels: crate::self_metrics::sink(name),
            metrics,
            admitted: Arc::default(),
            cut_print: (0, 0),
            grew: HashMap::new(),
        }
    }

    /// What `/api/v1/cardinality` reads.
    pub fn view(&self) -> GovernorView {
        self.view.clone()
    }

    /// The batch the sink is to see: labels dropped, merged series once, series over the budgets cut.
    pub fn govern(&mut self, batch: &Arc<DataBatch>) -> Arc<DataBatch> {
        let config = &self.view.config.clone();
        let mut all: Vec<Series> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        let mut seen = KeySet::with_capacity_and_hasher(self.admitted.len() + 16, Default::default());
        let mut merged = 0;
        series(batch, config, |s, name, _| {
            if seen.insert(s.key) {
                all.push(s);
                names.push(name);
            } else {
                merged += 1;
            }
        });
        let offered = all.len();
        // keep[i]: whether all[i] is written; None: every offered series is.
        let mut keep: Option<Vec<Option<Over>>> = None;
        let per_metric = config.max_series_per_metric;
        let over_total = config.max_series.is_some_and(|m| offered > m);
        if over_total || per_metric.is_some_and(|m| m < offered) {
            let mut order: Vec<u32> = (0..offered as u32).collect();
            let fresh = |s: &Series| !self.admitted.contains(&s.key);
            order.sort_unstable_by_key(|&i| {
                let s = &all[i as usize];
                (s.level, fresh(s), s.entity, s.key)
            });
            let mut cut = vec![None; offered];
            let mut per: HashMap<&str, usize> = HashMap::new();
            let max = config.max_series.unwrap_or(usize::MAX);
            let mut written = 0;
            for i in order {
                let i = i as usize;
                if written >= max {
                    cut[i] = Some(Over::Total);
                    continue;
                }
                if let Some(pm) = per_metric {
                    let n = per.entry(names[i]).or_default();
                    if *n >= pm {
                        cut[i] = Some(Over::PerMetric);
                        continue;
                    }
                    *n += 1;
                }
                written += 1;
            }
            keep = Some(cut);
        }

        let cut_count = keep.as_ref().map_or(0, |c| c.iter().filter(|c| c.is_some()).count());
        let written = offered - cut_count;
        let mut admitted = KeySet::with_capacity_and_hasher(written, Default::default());
        let mut print = (cut_count, 0u64);
        // Cut series per metric this round.
        let mut cut_by_metric: HashMap<&str, u64> = HashMap::new();
        for (i, s) in all.iter().enumerate() {
            match keep.as_ref().and_then(|c| c[i]) {
                None => {
                    admitted.insert(s.key);
                }
                Some(_) => {
                    print.1 = print.1.wrapping_add(s.key);
                    *cut_by_metric.entry(names[i]).or_default() += 1;
                }
            }
        }
        if print != self.cut_print {
            self.cut_changed(batch, &all, &names, keep.as_deref(), &admitted, offered, merged);
            self.cut_print = print;
        }
        for (metric, n) in &cut_by_metric {
            let label = self.grew.get(*metric).cloned().unwrap_or_default();
            let l = SinkCutLabels { sink: self.labels.sink.clone(), metric: (*metric).to_owned(), label };
            self.metrics.series_cut.get_or_create(&l).inc_by(*n);
        }
        if merged > 0 {
            self.metrics.series_merged.get_or_create(&self.labels).inc_by(merged as u64);
        }
        self.metrics.series_offered.get_or_create(&self.labels).set(offered as i64);
        self.metrics.series_written.get_or_create(&self.labels).set(written as i64);
        self.metrics.governor_rounds.get_or_create(&self.labels).inc();

        let out = if cut_count == 0 && merged == 0 && !config.filters() {
            batch.clone()
        } else {
            Arc::new(self.build(batch, &all, keep.as_deref()))
        };
        self.admitted = Arc::new(admitted);
        let mut last = self.view.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = Last { batch: batch.clone(), admitted: self.admitted.clone(), offered, written, merged };
        out
    }

    /// The batch with the label lists applied and only the series written (`keep` as in [`Governor::govern`]).
    fn build(&self, batch: &DataBatch, all: &[Series], keep: Option<&[Option<Over>]>) -> DataBatch {
        let config = &self.view.config;
        let filter = config.filters();
        // Which values of each set are written, by set.
        let mut wanted: Vec<Vec<u32>> = vec![Vec::new(); batch.sets.len()];
        for (i, s) in all.iter().enumerate() {
            if keep.is_none_or(|c| c[i].is_none()) {
                wanted[s.set as usize].push(s.idx);
            }
        }
        let mut sets = std::collections::BTreeMap::new();
        for ((key, set), idx) in batch.sets.iter().zip(wanted) {
            if idx.is_empty() {
                continue;
            }
            let n = set.metrics.len() as u32;
            let drop = |l: &Labels| -> Labels {
                l.iter().filter(|(k, _)| config.keeps(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
            };
            let labels: Labels = if filter { drop(&set.labels) } else { set.labels.clone() };
            let slice = set.metrics.as_slice();
            let metrics = idx.iter().filter(|&&i| i < n).map(|&i| slice[i as usize].clone()).collect();
            let labeled_metrics = idx
                .iter()
                .filter(|&&i| i >= n)
                .map(|&i| {
                    let mut m = set.labeled_metrics[(i - n) as usize].clone();
                    if filter {
                        m.labels = Arc::new(drop(&m.labels));
                    }
                    m
                })
                .collect();
            let out = MetricSet {
                create_time: set.create_time,
                scrape_time: set.scrape_time,
                labels,
                metrics,
                labeled_metrics,
                // Kept even when `type` is dropped: sinks that map sets by their type still can.
                kind: set.kind,
            };
            sets.insert(key.clone(), out);
        }
        DataBatch { timestamp: batch.timestamp, sets }
    }

    /// The cut set changed: find the label that grew most per metric cut, and say it in one log line.
    #[allow(clippy::too_many_arguments)]
    fn cut_changed(
        &mut self,
        batch: &DataBatch,
        all: &[Series],
        names: &[&str],
        keep: Option<&[Option<Over>]>,
        admitted: &KeySet,
        offered: usize,
        merged: usize,
    ) {
        let config = &self.view.config;
        let sets: Vec<&MetricSet> = batch.sets.values().collect();
        let labels_of = |s: &Series| -> Vec<(&str, &str)> {
            let set = sets[s.set as usize];
            let n = set.metrics.len() as u32;
            let own = (s.idx >= n).then(|| &set.labeled_metrics[(s.idx - n) as usize].labels);
            set.labels
                .iter()
                .chain(own.into_iter().flat_map(|l| l.iter()))
                .filter(|(k, _)| config.keeps(k))
                .map(|(k, v)| (&**k, v.as_str()))
                .collect()
        };
        let cut = |i: usize| keep.and_then(|c| c[i]);
        let cut_metrics: HashSet<&str> = (0..all.len()).filter(|&i| cut(i).is_some()).map(|i| names[i]).collect();
        // Values of each label among the written series of the metrics that lost some.
        let mut written: HashMap<(&str, &str), HashSet<&str>> = HashMap::new();
        let mut grown: HashMap<(&str, &str), HashSet<&str>> = HashMap::new();
        let mut cut_per: HashMap<&str, (usize, bool)> = HashMap::new();
        for (i, s) in all.iter().enumerate() {
            if !cut_metrics.contains(names[i]) {
                continue;
            }
            if cut(i).is_none() {
                debug_assert!(admitted.contains(&s.key));
                for (k, v) in labels_of(s) {
                    written.entry((names[i], k)).or_default().insert(v);
                }
            }
        }
        for (i, s) in all.iter().enumerate() {
            let Some(why) = cut(i) else { continue };
            let e = cut_per.entry(names[i]).or_default();
            e.0 += 1;
            e.1 |= why == Over::PerMetric;
            for (k, v) in labels_of(s) {
                if !written.get(&(names[i], k)).is_some_and(|w| w.contains(v)) {
                    grown.entry((names[i], k)).or_default().insert(v);
                }
            }
        }
        self.grew.clear();
        for (&(metric, label), values) in &grown {
            let better = match self.grew.get(metric) {
                None => true,
                Some(best) => {
                    let n = grown[&(metric, best.as_str())].len();
                    values.len() > n || (values.len() == n && label < best.as_str())
                }
            };
            if better {
                self.grew.insert(metric.to_owned(), label.to_owned());
            }
        }
        let total: usize = cut_per.values().map(|c| c.0).sum();
        let name = &self.view.name;
        if total == 0 {
            tracing::info!(sink = %name, "cardinality governor: no series cut any more ({offered} offered, {merged} merged)");
            return;
        }
        let (metric, (n, per_metric)) = cut_per
            .iter()
            .max_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| b.0.cmp(a.0)))
            .map(|(m, c)| (*m, *c))
            .unwrap_or_default();
        let label = self.grew.get(metric).map(String::as_str).unwrap_or("");
        let raise = if per_metric {
            format!("max_series_per_metric={}", config.max_series_per_metric.unwrap_or(0))
        } else {
            format!("max_series={}", config.max_series.unwrap_or(0))
        };
        tracing::warn!(
            sink = %name,
            "cardinality governor: {total} of {offered} series cut ({} metrics); most from {metric} ({n} series), \
             whose label {label:?} grew most; raise {raise} or drop the label with labels_deny={label}",
            cut_per.len()
        );
    }
}
