//! The embedded store: every metric of every metric set for the last `window`, at `resolution`.
//!
//! The model API, the resource-metrics API and the dashboard read from here; sinks do not. Sets that stop
//! appearing in batches age out once their newest point is older than the window.
//!
//! # Layout
//! Batches share one timestamp, so the store keeps one ring of batch timestamps and every series refers to
//! batches by sequence number. A series is a handful of [`chunk::Chunk`]s (64 batches each: a presence bitmap
//! and a compressed value stream). Metric names and the label sets of labelled metrics are interned to `u32`s, so
//! a series costs two ids and its chunks. See the `store` benchmark for bytes per point.
//!
//! # Ageing out
//! Dropping expired chunks and sets means visiting every series, which is most of the store's memory traffic, so
//! it runs every [`SWEEP_EVERY`] batches rather than every batch. In between, reads skip what is older than the
//! window, so the sweep's timing is invisible from outside.
//!
//! # Timestamps
//! A batch with the newest timestamp again replaces that batch's values (a re-run round); a batch older than the
//! newest is ignored and counted in [`StoreStats::out_of_order`]: the window is append-only.

mod chunk;

use chunk::Chunk;
use foldhash::{HashMap, HashMapExt};
use heapster_model::{DataBatch, LabeledMetric, Labels, MetricSet, MetricSetType, MetricValue, Timestamp};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Batches between two sweeps of expired chunks and sets.
pub const SWEEP_EVERY: u64 = 8;

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
    /// Heap bytes of sets, series, chunks and interned names, counted from lengths and capacities (hash tables
    /// at their bucket size); allocator overhead is not included.
    pub bytes: usize,
    /// Batches ignored because they were older than the newest one.
    pub out_of_order: u64,
}

/// A thread-safe store. Readers take a shared lock; `ingest` takes it exclusively once per batch.
pub struct Store {
    config: StoreConfig,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Timestamps of the batches in the window, oldest first; `times[i]` is batch `first_seq + i`.
    times: VecDeque<Timestamp>,
    first_seq: u64,
    sets: HashMap<Box<str>, StoredSet>,
    names: Interner<Box<str>>,
    label_sets: Interner<Labels>,
    out_of_order: u64,
    /// `first_seq` at the last sweep of expired chunks and sets.
    swept_at: u64,
}

/// Values to small ids and back.
struct Interner<T> {
    ids: HashMap<T, u32>,
    values: Vec<T>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner { ids: HashMap::new(), values: Vec::new() }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Interner<T> {
    fn id<Q>(&self, q: &Q) -> Option<u32>
    where
        T: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.ids.get(q).copied()
    }

    fn intern<Q>(&mut self, q: &Q) -> u32
    where
        T: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized + ToOwned,
        Q::Owned: Into<T>,
    {
        if let Some(&id) = self.ids.get(q) {
            return id;
        }
        let id = self.values.len() as u32;
        let v: T = q.to_owned().into();
        self.values.push(v.clone());
        self.ids.insert(v, id);
        id
    }
}

struct StoredSet {
    labels: Labels,
    create_time: Timestamp,
    last_seq: u64,
    /// Sorted by (name id, label-set id).
    series: Vec<Series>,
}

struct Series {
    name: u32,
    labels: u32,
    chunks: Vec<Chunk>,
}

impl Series {
    fn append(&mut self, seq: u64, value: MetricValue) {
        match self.chunks.last_mut() {
            Some(c) if c.accepts(seq, value) => c.push(seq, value),
            Some(c) if c.last_seq() == seq => {
                let replaced = c.with_last_replaced(value);
                self.chunks.pop();
                self.chunks.extend(replaced);
            }
            last => {
                if let Some(c) = last {
                    c.seal();
                }
                // A series spans two chunks at most in a 64-batch window: grow by one, not to Vec's minimum of 4.
                self.chunks.reserve_exact(1);
                self.chunks.push(Chunk::new(seq, value));
            }
        }
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Series>()
            + self.chunks.iter().map(Chunk::bytes).sum::<usize>()
            + (self.chunks.capacity() - self.chunks.len()) * std::mem::size_of::<Chunk>()
    }
}

fn labels_bytes(l: &Labels) -> usize {
    // A BTreeMap node holds up to 11 entries; count each entry's two Strings and a share of the node.
    l.iter().map(|(k, v)| k.capacity() + v.capacity() + 2 * std::mem::size_of::<String>() + 16).sum()
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
        let mut guard = self.inner.write().unwrap();
        let inner = &mut *guard;
        let seq = match inner.times.back() {
            Some(&last) if ts < last => {
                inner.out_of_order += 1;
                return;
            }
            Some(&last) if ts == last => inner.first_seq + inner.times.len() as u64 - 1,
            _ => {
                inner.times.push_back(ts);
                inner.first_seq + inner.times.len() as u64 - 1
            }
        };
        for (key, set) in &batch.sets {
            let stored = match inner.sets.get_mut(key.as_str()) {
                Some(s) => s,
                None => inner.sets.entry(key.as_str().into()).or_insert_with(|| StoredSet {
                    labels: Labels::new(),
                    create_time: 0,
                    last_seq: seq,
                    series: Vec::new(),
                }),
            };
            if stored.labels != set.labels {
                stored.labels = set.labels.clone();
            }
            stored.create_time = set.create_time;
            stored.last_seq = seq;
            for (name, value) in &set.metrics {
                let id = inner.names.intern::<str>(name);
                append(&mut stored.series, id, 0, seq, *value);
            }
            for m in &set.labeled_metrics {
                let id = inner.names.intern::<str>(&m.name);
                let labels = inner.label_sets.intern(&m.labels) + 1;
                append(&mut stored.series, id, labels, seq, m.value);
            }
        }
        // Keep batches newer than `ts - window`.
        let oldest = ts - self.config.window.as_millis() as Timestamp;
        while inner.times.front().is_some_and(|&t| t <= oldest) {
            inner.times.pop_front();
            inner.first_seq += 1;
        }
        let first = inner.first_seq;
        if first >= inner.swept_at + SWEEP_EVERY {
            inner.swept_at = first;
            inner.sets.retain(|_, s| {
                s.series.retain_mut(|series| {
                    series.chunks.retain(|c| c.last_seq() >= first);
                    !series.chunks.is_empty()
                });
                s.last_seq >= first
            });
        }
        drop(guard);
        // Freeing the batch (tens of thousands of maps) is done outside the lock, so readers wait less.
        drop(batch);
    }

    /// The batch most recently ingested, rebuilt from the store (for `metric-export`): every set of that batch with
    /// its labels, create time and values. Scrape times are not stored; they read as the batch's timestamp.
    ///
    /// Rebuilt rather than kept: a batch as it came is a map per set and per labelled metric, several times the size
    /// of its compressed points, and keeping one alive beside the next round's doubled heapster's peak memory.
    pub fn latest_batch(&self) -> Option<DataBatch> {
        let inner = self.inner.read().unwrap();
        let timestamp = *inner.times.back()?;
        let newest = inner.first_seq + inner.times.len() as u64 - 1;
        let mut batch = DataBatch { timestamp, ..Default::default() };
        for (key, s) in inner.sets.iter().filter(|(_, s)| s.last_seq == newest) {
            let mut set = MetricSet {
                create_time: s.create_time,
                scrape_time: timestamp,
                labels: s.labels.clone(),
                ..Default::default()
            };
            for series in &s.series {
                let Some(c) = series.chunks.last().filter(|c| c.last_seq() == newest) else { continue };
                let name = &*inner.names.values[series.name as usize];
                let name: Cow<'static, str> = match heapster_model::catalog::find(name) {
                    Some(d) => Cow::Borrowed(d.name),
                    None => Cow::Owned(name.to_owned()),
                };
                if series.labels == 0 {
                    set.metrics.insert(name, c.last_value());
                } else {
                    let labels = Arc::new(inner.label_sets.values[series.labels as usize - 1].clone());
                    set.labeled_metrics.push(LabeledMetric { name, labels, value: c.last_value() });
                }
            }
            batch.sets.insert(key.to_string(), set);
        }
        Some(batch)
    }

    /// Timestamp of the batch most recently ingested.
    pub fn latest_timestamp(&self) -> Option<Timestamp> {
        self.inner.read().unwrap().times.back().copied()
    }

    /// Every set key in the window, sorted.
    pub fn keys(&self) -> Vec<String> {
        let inner = self.inner.read().unwrap();
        let mut keys: Vec<String> =
            inner.sets.iter().filter(|(_, s)| inner.is_live(s)).map(|(k, _)| k.to_string()).collect();
        keys.sort();
        keys
    }

    /// Keys of the sets whose `type` label is `set_type`, sorted.
    pub fn keys_of_type(&self, set_type: MetricSetType) -> Vec<String> {
        let inner = self.inner.read().unwrap();
        let mut keys: Vec<String> = inner
            .sets
            .iter()
            .filter(|(_, s)| inner.is_live(s))
            .filter(|(_, s)| s.labels.get(heapster_model::labels::TYPE).map(String::as_str) == Some(set_type.as_str()))
            .map(|(k, _)| k.to_string())
            .collect();
        keys.sort();
        keys
    }

    pub fn set_info(&self, key: &str) -> Option<SetInfo> {
        let inner = self.inner.read().unwrap();
        let s = inner.sets.get(key).filter(|s| inner.is_live(s))?;
        let mut metric_names: Vec<String> = s
            .series
            .iter()
            .filter(|series| inner.has_points(series))
            .map(|series| inner.names.values[series.name as usize].to_string())
            .collect();
        metric_names.sort();
        metric_names.dedup();
        Some(SetInfo {
            labels: s.labels.clone(),
            set_type: s.labels.get(heapster_model::labels::TYPE).and_then(|t| t.parse().ok()),
            create_time: s.create_time,
            metric_names,
            last_seen: inner.time_of(s.last_seq).unwrap_or(0),
        })
    }

    /// Label sets under which `metric` of set `key` has points (one empty `Labels` for an unlabelled metric).
    pub fn series_labels(&self, key: &str, metric: &str) -> Vec<Labels> {
        let inner = self.inner.read().unwrap();
        let (Some(s), Some(name)) = (inner.sets.get(key), inner.names.id(metric)) else { return Vec::new() };
        let mut out: Vec<Labels> = s
            .series
            .iter()
            .filter(|x| x.name == name && inner.has_points(x))
            .map(|x| if x.labels == 0 { Labels::new() } else { inner.label_sets.values[x.labels as usize - 1].clone() })
            .collect();
        out.sort();
        out
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
        let series = inner.series(key, metric, labels)?;
        let mut out = Vec::new();
        for c in &series.chunks {
            c.decode(|seq, value| {
                if let Some(timestamp) = inner.time_of(seq)
                    && start.is_none_or(|s| timestamp >= s)
                    && end.is_none_or(|e| timestamp <= e)
                {
                    out.push(Point { timestamp, value });
                }
            });
        }
        Some(out)
    }

    /// The newest point of one series.
    pub fn latest(&self, key: &str, metric: &str, labels: &Labels) -> Option<Point> {
        let inner = self.inner.read().unwrap();
        let c = inner.series(key, metric, labels)?.chunks.last()?;
        let mut last = None;
        c.decode(|seq, value| last = inner.time_of(seq).map(|timestamp| Point { timestamp, value }));
        last
    }

    pub fn stats(&self) -> StoreStats {
        let inner = self.inner.read().unwrap();
        let mut st = StoreStats { out_of_order: inner.out_of_order, ..Default::default() };
        let entry = std::mem::size_of::<(Box<str>, StoredSet)>() + 1;
        st.bytes += inner.sets.capacity() * entry + inner.times.capacity() * 8;
        for (key, s) in &inner.sets {
            st.sets += usize::from(inner.is_live(s));
            st.series += s.series.iter().filter(|x| inner.has_points(x)).count();
            st.bytes += key.len() + labels_bytes(&s.labels);
            st.bytes += (s.series.capacity() - s.series.len()) * std::mem::size_of::<Series>();
            for series in &s.series {
                st.bytes += series.bytes();
                st.points += series
                    .chunks
                    .iter()
                    .map(|c| {
                        let skip = inner.first_seq.saturating_sub(c.start).min(64);
                        let mask = if skip == 64 { 0 } else { u64::MAX << skip };
                        (c.present & mask).count_ones() as usize
                    })
                    .sum::<usize>();
            }
        }
        st.bytes += inner.names.values.iter().map(|n| 2 * n.len() + 40).sum::<usize>();
        st.bytes += inner.label_sets.values.iter().map(|l| 2 * labels_bytes(l) + 40).sum::<usize>();
        st
    }
}

fn append(series: &mut Vec<Series>, name: u32, labels: u32, seq: u64, value: MetricValue) {
    match series.binary_search_by_key(&(name, labels), |s| (s.name, s.labels)) {
        Ok(i) => series[i].append(seq, value),
        Err(i) => series.insert(i, Series { name, labels, chunks: vec![Chunk::new(seq, value)] }),
    }
}

impl Inner {
    /// Whether a set was in a batch of the window (the sweep may not have dropped it yet).
    fn is_live(&self, s: &StoredSet) -> bool {
        s.last_seq >= self.first_seq
    }

    /// Whether a series has a point in the window.
    fn has_points(&self, series: &Series) -> bool {
        series.chunks.last().is_some_and(|c| c.last_seq() >= self.first_seq)
    }

    fn time_of(&self, seq: u64) -> Option<Timestamp> {
        self.times.get(usize::try_from(seq.checked_sub(self.first_seq)?).ok()?).copied()
    }

    fn series(&self, key: &str, metric: &str, labels: &Labels) -> Option<&Series> {
        let name = self.names.id(metric)?;
        let labels = if labels.is_empty() { 0 } else { self.label_sets.id(labels)? + 1 };
        let s = self.sets.get(key).filter(|s| self.is_live(s))?;
        let i = s.series.binary_search_by_key(&(name, labels), |x| (x.name, x.labels)).ok()?;
        Some(&s.series[i]).filter(|x| self.has_points(x))
    }
}

#[cfg(test)]
mod tests;
