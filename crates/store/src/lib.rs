//! The embedded store: every metric of every metric set for the last `window`, at `resolution`.
//!
//! The model API, the resource-metrics API and the dashboard read from here; sinks do not. Sets that stop
//! appearing in batches age out once their newest point is older than the window.

use heapster_model::{DataBatch, Labels, MetricSetType, MetricValue, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How much the store keeps.
#[derive(Debug, Clone, Copy)]
pub struct StoreConfig {
    /// How far back points are kept (`--store_window`).
    pub window: Duration,
    /// Expected spacing of batches (`--metric_resolution`).
    pub resolution: Duration,
}

/// One stored value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub timestamp: Timestamp,
    pub value: MetricValue,
}

/// What the store knows about one metric set, apart from its points.
#[derive(Debug, Clone, PartialEq)]
pub struct SetInfo {
    pub labels: Labels,
    pub set_type: Option<MetricSetType>,
    pub create_time: Timestamp,
    /// Names of every metric with at least one point in the window, labelled ones included, sorted.
    pub metric_names: Vec<String>,
    /// Timestamp of the newest batch that contained this set.
    pub last_seen: Timestamp,
}

/// Size of the store, for `/metrics` and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub sets: usize,
    pub series: usize,
    pub points: usize,
    /// Heap bytes used by points and series bookkeeping (an estimate from capacities, not an allocator reading).
    pub bytes: usize,
}

/// A thread-safe store. Readers take a shared lock; `ingest` takes it exclusively once per batch.
pub struct Store {
    config: StoreConfig,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    sets: HashMap<String, StoredSet>,
    latest: Option<Arc<DataBatch>>,
}

struct StoredSet {
    labels: Labels,
    create_time: Timestamp,
    last_seen: Timestamp,
    /// (metric name, labels of a labelled metric) -> points, oldest first.
    series: BTreeMap<(String, Labels), Vec<Point>>,
}

impl Store {
    pub fn new(config: StoreConfig) -> Self {
        Store { config, inner: RwLock::new(Inner::default()) }
    }

    pub fn config(&self) -> StoreConfig {
        self.config
    }

    /// Adds every value of `batch` under the batch's timestamp and drops what fell out of the window.
    pub fn ingest(&self, batch: Arc<DataBatch>) {
        let ts = batch.timestamp;
        let mut inner = self.inner.write().unwrap();
        for (key, set) in &batch.sets {
            let stored = inner.sets.entry(key.clone()).or_insert_with(|| StoredSet {
                labels: Labels::new(),
                create_time: 0,
                last_seen: ts,
                series: BTreeMap::new(),
            });
            stored.labels = set.labels.clone();
            stored.create_time = set.create_time;
            stored.last_seen = ts;
            for (name, value) in &set.metrics {
                push(&mut stored.series, name.to_string(), Labels::new(), ts, *value);
            }
            for m in &set.labeled_metrics {
                push(&mut stored.series, m.name.to_string(), m.labels.clone(), ts, m.value);
            }
        }
        let oldest = ts - self.config.window.as_millis() as Timestamp;
        inner.sets.retain(|_, s| {
            s.series.retain(|_, pts| {
                pts.retain(|p| p.timestamp > oldest);
                !pts.is_empty()
            });
            s.last_seen > oldest
        });
        inner.latest = Some(batch);
    }

    /// The batch most recently ingested, as it came (for `metric-export`).
    pub fn latest_batch(&self) -> Option<Arc<DataBatch>> {
        self.inner.read().unwrap().latest.clone()
    }

    /// Timestamp of the batch most recently ingested.
    pub fn latest_timestamp(&self) -> Option<Timestamp> {
        self.inner.read().unwrap().latest.as_ref().map(|b| b.timestamp)
    }

    /// Every set key in the window, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.inner.read().unwrap().sets.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Keys of the sets whose `type` label is `set_type`, sorted.
    pub fn keys_of_type(&self, set_type: MetricSetType) -> Vec<String> {
        let inner = self.inner.read().unwrap();
        let mut keys: Vec<String> = inner
            .sets
            .iter()
            .filter(|(_, s)| s.labels.get(heapster_model::labels::TYPE).map(String::as_str) == Some(set_type.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    pub fn set_info(&self, key: &str) -> Option<SetInfo> {
        let inner = self.inner.read().unwrap();
        let s = inner.sets.get(key)?;
        let mut metric_names: Vec<String> = s.series.keys().map(|(n, _)| n.clone()).collect();
        metric_names.dedup();
        Some(SetInfo {
            labels: s.labels.clone(),
            set_type: s.labels.get(heapster_model::labels::TYPE).and_then(|t| t.parse().ok()),
            create_time: s.create_time,
            metric_names,
            last_seen: s.last_seen,
        })
    }

    /// Label sets under which `metric` of set `key` has points (one empty `Labels` for an unlabelled metric).
    pub fn series_labels(&self, key: &str, metric: &str) -> Vec<Labels> {
        let inner = self.inner.read().unwrap();
        let Some(s) = inner.sets.get(key) else { return Vec::new() };
        s.series.keys().filter(|(n, _)| n == metric).map(|(_, l)| l.clone()).collect()
    }

    /// Points of one series with `start <= timestamp <= end` (either bound open when `None`), oldest first.
    /// `labels` selects a labelled metric's series; pass an empty set for an unlabelled metric.
    /// `None` when the set or the series is unknown.
    pub fn points(
        &self,
        key: &str,
        metric: &str,
        labels: &Labels,
        start: Option<Timestamp>,
        end: Option<Timestamp>,
    ) -> Option<Vec<Point>> {
        let inner = self.inner.read().unwrap();
        let pts = inner.sets.get(key)?.series.get(&(metric.to_owned(), labels.clone()))?;
        Some(
            pts.iter()
                .filter(|p| start.is_none_or(|s| p.timestamp >= s) && end.is_none_or(|e| p.timestamp <= e))
                .copied()
                .collect(),
        )
    }

    /// The newest point of one series.
    pub fn latest(&self, key: &str, metric: &str, labels: &Labels) -> Option<Point> {
        let inner = self.inner.read().unwrap();
        inner.sets.get(key)?.series.get(&(metric.to_owned(), labels.clone()))?.last().copied()
    }

    pub fn stats(&self) -> StoreStats {
        let inner = self.inner.read().unwrap();
        let mut st = StoreStats { sets: inner.sets.len(), ..Default::default() };
        for s in inner.sets.values() {
            st.series += s.series.len();
            for pts in s.series.values() {
                st.points += pts.len();
                st.bytes += pts.capacity() * std::mem::size_of::<Point>();
            }
        }
        st
    }
}

fn push(
    series: &mut BTreeMap<(String, Labels), Vec<Point>>,
    name: String,
    labels: Labels,
    ts: Timestamp,
    value: MetricValue,
) {
    let pts = series.entry((name, labels)).or_default();
    match pts.last() {
        Some(last) if last.timestamp == ts => *pts.last_mut().unwrap() = Point { timestamp: ts, value },
        _ => pts.push(Point { timestamp: ts, value }),
    }
}
