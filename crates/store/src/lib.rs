//! The embedded store: every metric of every metric set for the last `window`, at `resolution`.
//!
//! The model API, the resource-metrics API and the dashboard read from here; sinks do not. Sets that stop
//! appearing in batches age out once their newest point is older than the window.
//!
//! # Layout
//! Batches share one timestamp, so the store keeps one ring of batch timestamps and every series refers to
//! batches by sequence number. A set's values are kept as rows, one per batch, in a few [`block::Block`]s of
//! [`block::SLOTS`] batches, coded bit by bit: one compressed byte stream per set rather than one per series, so a
//! series costs its two interned ids (metric name, label set), its coder state and its compressed values. See the
//! `store` benchmark for bytes per point.
//!
//! # Ageing out
//! A set's blocks begin at batches that differ from set to set (see [`block::Writer::new`]), and a set that gets
//! a new row drops its blocks that left the window then, so about one set in [`block::SLOTS`] frees a block each
//! batch and the store's size stays flat. Dropping the blocks of sets that no longer come, and the sets, means
//! visiting every set, which is most of the store's memory traffic, so it runs every [`SWEEP_EVERY`] batches
//! rather than every batch. In between, reads skip what is older than the window, so the sweep's timing is
//! invisible from outside.
//!
//! # Timestamps
//! A batch with the timestamp of one in the window adds to that batch, its values replacing any the set had there
//! (a re-run round, or a round stored in parts: see [`Store::ingest_part`]). Each set's rows only grow: values
//! older than the set's newest are ignored, and so is a batch older than the window or than the newest batch
//! without being in the window; both are counted in [`StoreStats::out_of_order`].

mod bitcode;
mod block;
mod packed;

use block::{Chain, Writer};
use foldhash::HashMap;
use heapster_model::batch::MetricName;
use heapster_model::shared::Shared;
use heapster_model::{DataBatch, LabelValue, LabeledMetric, Labels, MetricSet, MetricSetType, MetricValue, Timestamp};
use indexmap::IndexSet;
use packed::PackedLabels;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Batches between two sweeps of expired blocks and sets.
pub const SWEEP_EVERY: u64 = 8;

/// Sets stored per hold of the lock (see [`Store::store_sets`]): a few hundred microseconds.
const INGEST_CHUNK: usize = 256;

/// How much the store keeps.
#[derive(Debug, Clone, Copy)]
pub struct StoreConfig {
    /// How far back points are kept (`--store_window`).
    pub window: Duration,
    /// Expected spacing of batches (`--metric_resolution`).
    pub resolution: Duration,
}

/// One stored value: the type a historical source answers too, so the API renders both alike.
pub use heapster_model::historical::Sample as Point;

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
    /// Series of the sets in the window, each counted once it was seen in one of them (a series a live set
    /// stopped sending is counted until the set leaves the window): exact for the steady state, and cheap enough
    /// to read at every `/metrics` scrape.
    pub series: usize,
    pub points: usize,
    /// Heap bytes of sets, series, blocks and interned names, counted from lengths and capacities (hash tables
    /// at their bucket size); allocator overhead is not included.
    pub bytes: usize,
    /// Batches, and sets of a batch, ignored because they were older than what the store had (see the module docs).
    pub out_of_order: u64,
}

/// A thread-safe store. Readers take a shared lock; ingests take it exclusively, a few hundred sets at a time.
pub struct Store {
    config: StoreConfig,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Timestamps of the batches in the window, oldest first; `times[i]` is batch `first_seq + i`.
    times: VecDeque<Timestamp>,
    /// Values stored for each batch in `times`, counted at ingest: `/metrics` reads the store's size every scrape,
    /// and counting by walking every block's rows cost as much as a tenth of heapster's CPU at 1,000 nodes.
    points: VecDeque<usize>,
    first_seq: u64,
    /// Boxed: a hash table is between 44 and 88 % full, and its empty slots are as large as its entries. Inline,
    /// a 200-byte set and its key took 451 bytes per set in the table at 400 nodes (16 of the store's 112 bytes
    /// per series); boxed, a slot is 24 bytes.
    sets: HashMap<Box<str>, Box<StoredSet>>,
    /// Catalog names stay `&'static str`: the set's name is then the same pointer, equal without a compare.
    names: Interner<MetricName>,
    label_sets: Interner<Labels>,
    /// Every set's series list and value order, each kept once.
    ///
    /// Every container set of a cluster has the same series (the same metric names, and the same interned label
    /// sets for its filesystems) in the same order, and so has every pod set: a list of its own was about 12 of the
    /// store's 132 bytes per series at 5,000 nodes. Shared, a set holds a pointer; a set whose series change gets
    /// the shared list of its new series, made once. Lists no set holds any more are dropped at the sweep.
    series_lists: Shared<[(u32, u32)]>,
    /// The labels each pod's (or node's) sets share, kept once for them all ([`PackedLabels`]).
    label_parts: Shared<[u8]>,
    orders: Shared<[u32]>,
    out_of_order: u64,
    /// The newest batch stored whole ([`Store::ingest`]); parts of a newer one may be in ([`Store::ingest_part`]).
    complete: Option<u64>,
    /// `first_seq` at the last sweep of expired blocks and sets.
    swept_at: u64,
}

/// Values to small ids (their index) and back, each value kept once.
struct Interner<T>(IndexSet<T, foldhash::fast::RandomState>);

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner(IndexSet::default())
    }
}

impl<T: std::hash::Hash + Eq> Interner<T> {
    fn id<Q>(&self, q: &Q) -> Option<u32>
    where
        T: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.get_index_of(q).map(|i| i as u32)
    }

    fn intern<Q>(&mut self, q: &Q) -> u32
    where
        T: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized + ToOwned,
        Q::Owned: Into<T>,
    {
        match self.id(q) {
            Some(id) => id,
            None => self.0.insert_full(q.to_owned().into()).0 as u32,
        }
    }

    /// [`Interner::intern`] of a value that is cloned as it is (a borrowed name stays borrowed).
    fn intern_cloned(&mut self, v: &T) -> u32
    where
        T: Clone,
    {
        match self.id(v) {
            Some(id) => id,
            None => self.0.insert_full(v.clone()).0 as u32,
        }
    }

    fn get(&self, id: u32) -> &T {
        &self.0[id as usize]
    }

    /// Heap bytes: each value's own heap (`heap`), its slot (the value, its hash) and its index in the table.
    fn bytes(&self, heap: impl Fn(&T) -> usize) -> usize {
        self.0.iter().map(|v| heap(v) + std::mem::size_of::<T>() + 16).sum()
    }
}

struct StoredSet {
    labels: PackedLabels,
    create_time: Timestamp,
    last_seq: u64,
    /// Scrape time of the newest row: the interval from it to the next one is what that one's rates were computed
    /// over, which codes them in a few bits (see [`block`]'s docs).
    scraped: Timestamp,
    /// (name id, label-set id + 1, or 0 when unlabelled) of each series, in order of first appearance: the order
    /// of values in the set's rows, which only ever grows. Shared with the sets that have the same ([`Shared`]).
    series: Arc<[(u32, u32)]>,
    /// Indexes into `series` in the order of the last batch's values: a set's values come in the same order batch
    /// after batch, so each is matched with one compare against the series this predicts, and neither hashed nor
    /// searched. That order is not `series`' own once series were added later (rates, from a set's second batch).
    /// Shared, as `series` is.
    order: Arc<[u32]>,
    writer: Writer,
    chain: Chain,
}

impl StoredSet {
    fn find(&self, id: (u32, u32)) -> Option<usize> {
        self.series.iter().position(|&s| s == id)
    }

    /// Series with at least one point in batches `first..`, by index.
    fn live_series(&self, first: u64) -> Vec<bool> {
        let mut live = vec![false; self.series.len()];
        self.chain.presence(|seq, i| {
            if seq >= first {
                live[i] = true;
            }
        });
        live
    }

    /// Points of series `i` in batches `first..`, oldest first.
    fn points_of(&self, i: usize, first: u64, mut f: impl FnMut(u64, MetricValue)) {
        self.chain.decode_series(i, |seq, v| {
            if seq >= first {
                f(seq, v)
            }
        });
    }

    fn bytes(&self) -> usize {
        self.labels.bytes() + self.writer.bytes() + self.chain.bytes()
    }
}

fn labels_bytes(l: &Labels) -> usize {
    // One vector of (name, value) pairs; names are mostly borrowed `&'static str`s. Values are shared with the
    // other sets of a pod; each holder is charged the whole value, an upper bound.
    let owned = |k: &heapster_model::batch::MetricName| match k {
        std::borrow::Cow::Owned(k) => k.capacity(),
        std::borrow::Cow::Borrowed(_) => 0,
    };
    l.iter()
        .map(|(k, v)| owned(k) + v.len() + std::mem::size_of::<(heapster_model::batch::MetricName, LabelValue)>())
        .sum()
}

/// Whether two metric names are equal: the same catalog name is the same pointer, found without reading it.
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    heapster_model::metric_map::cmp_names(a, b).is_eq()
}

/// What [`Inner::ingest_set`] reuses from set to set, so that storing a set allocates nothing.
#[derive(Default)]
struct Scratch {
    row: Vec<(u32, MetricValue)>,
    packed: packed::Parts,
    slots: Vec<Option<MetricValue>>,
    order: Vec<u32>,
    /// Series a set gets in this batch, after its shared list's.
    added: Vec<(u32, u32)>,
    /// The set's new series list, before it is shared.
    series: Vec<(u32, u32)>,
}

impl Inner {
    /// Stores one set's values as batch `seq`, dropping its blocks older than `first`; returns how many values.
    fn ingest_set(&mut self, seq: u64, first: u64, key: &str, set: &MetricSet, scratch: &mut Scratch) -> usize {
        let inner = self;
        let Scratch { row, packed, slots, order, added, series } = scratch;
        // Sets made one after another get consecutive phases, so their blocks end at different batches.
        let phase = inner.sets.len() as u64;
        let stored = match inner.sets.get_mut(key) {
            Some(s) => s,
            None => {
                let (series, order) = (inner.series_lists.get(&[]), inner.orders.get(&[]));
                inner.sets.entry(key.into()).or_insert_with(|| {
                    Box::new(StoredSet {
                        labels: PackedLabels::default(),
                        create_time: 0,
                        last_seq: seq,
                        scraped: 0,
                        series,
                        order,
                        writer: Writer::new(phase),
                        chain: Chain::default(),
                    })
                })
            }
        };
        if seq < stored.last_seq {
            // Already stored in a newer batch (the older one's rest came late): the window is append-only per set.
            inner.out_of_order += 1;
            return 0;
        }
        if !stored.labels.matches(&set.labels) {
            PackedLabels::pack_into(&set.labels, packed);
            stored.labels = PackedLabels::from_parts(inner.label_parts.get(&packed.shared), &packed.own);
        }
        stored.create_time = set.create_time;
        // A batch stored again keeps its row's interval (see `Writer::append`).
        let interval = if seq > stored.last_seq && stored.scraped > 0 {
            set.scrape_time.checked_sub(stored.scraped).and_then(|d| u64::try_from(d).ok()).unwrap_or(0)
        } else {
            0
        };
        stored.scraped = set.scrape_time;
        stored.last_seq = seq;
        // A set's metrics come in the order of its series almost always: check the next series first and
        // search (interning the name) only when it is not the one.
        // Each value goes to its series' slot, so the row comes out sorted by series without a sort, and a
        // labelled metric given twice keeps its later value, as a map would.
        let known = stored.series.len();
        slots.clear();
        slots.resize(known, None);
        added.clear();
        // Series new to the set go to `added`, after the shared list's, with an empty slot for this batch's value.
        let add = |id: (u32, u32), added: &mut Vec<(u32, u32)>, slots: &mut Vec<Option<MetricValue>>| {
            added.push(id);
            slots.push(None);
            known + added.len() - 1
        };
        let names = &mut inner.names;
        let mut changed = false;
        let mut k = 0;
        for (name, value) in &set.metrics {
            let predicted = stored.order.get(k).map(|&i| i as usize);
            let i = match predicted.map(|i| (i, stored.series[i])) {
                Some((i, (n, 0))) if same_name(names.get(n), name) => i,
                _ => {
                    changed = true;
                    match stored
                        .series
                        .iter()
                        .chain(added.iter())
                        .position(|&(n, l)| l == 0 && same_name(names.get(n), name))
                    {
                        Some(i) => i,
                        None => add((names.intern_cloned(name), 0), added, slots),
                    }
                }
            };
            slots[i] = Some(*value);
            order.push(i as u32);
            k += 1;
        }
        for m in &set.labeled_metrics {
            let same = |&(n, l): &(u32, u32)| {
                l != 0 && same_name(names.get(n), &m.name) && *inner.label_sets.get(l - 1) == *m.labels
            };
            let predicted = stored.order.get(k).map(|&i| i as usize);
            let i = match predicted {
                Some(i) if same(&stored.series[i]) => i,
                _ => {
                    changed = true;
                    match stored.series.iter().chain(added.iter()).position(same) {
                        Some(i) => i,
                        None => {
                            let id = (names.intern_cloned(&m.name), inner.label_sets.intern(&*m.labels) + 1);
                            add(id, added, slots)
                        }
                    }
                }
            };
            slots[i] = Some(m.value);
            order.push(i as u32);
            k += 1;
        }
        if !added.is_empty() {
            series.clear();
            series.extend_from_slice(&stored.series);
            series.append(added);
            stored.series = inner.series_lists.get(series);
        }
        if changed || k != stored.order.len() {
            stored.order = inner.orders.get(order);
        }
        order.clear();
        row.clear();
        row.extend(slots.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i as u32, v))));
        // A block that left the window is dropped here, at the batch it expired, not at the next sweep: each
        // batch, the sets whose phase ends a block then free one, and the store's size stays flat.
        stored.chain.drop_before(first);
        stored.writer.append(&mut stored.chain, seq, stored.series.len(), row, interval);
        row.len()
    }
}

impl Store {
    pub fn new(config: StoreConfig) -> Self {
        Store { config, inner: RwLock::new(Inner::default()) }
    }

    pub fn config(&self) -> StoreConfig {
        self.config
    }

    /// Adds every value of `batch` under the batch's timestamp and drops what fell out of the window. The batch is
    /// then the newest stored whole: what [`Store::latest_timestamp`] and [`Store::latest_batch`] answer with.
    pub fn ingest(&self, batch: Arc<DataBatch>) {
        self.store_batch(batch, true);
    }

    /// Adds part of a batch, as [`Store::ingest`] does, without making it the newest whole batch: the pipeline
    /// stores a node's container and pod sets as soon as its scrape is processed, and the rest of the round
    /// (nodes, roll-ups) with [`Store::ingest`] once the round's processors are done. Readers see each set's new
    /// values as soon as they are in; what asks for "the newest batch" keeps answering with the last whole one
    /// until then.
    pub fn ingest_part(&self, batch: Arc<DataBatch>) {
        self.store_batch(batch, false);
    }

    fn store_batch(&self, batch: Arc<DataBatch>, whole: bool) {
        let Some(seq) = self.seq_of(batch.timestamp, whole) else { return };
        // The batch in hand alone (no sink holds it): each set is freed as soon as it is stored, so the batch's
        // memory goes back as the store's grows instead of all at once after it. At 1,000 nodes this took RSS
        // between rounds from 0.50 to 0.44 MiB per node; CPU and the peak stayed as they were.
        let shared = match Arc::try_unwrap(batch) {
            Ok(batch) => {
                self.store_sets(seq, batch.sets.into_iter(), whole);
                None
            }
            Err(batch) => {
                self.store_sets(seq, batch.sets.iter(), whole);
                Some(batch)
            }
        };
        // A batch shared with the sinks is let go outside the lock, so readers wait less.
        drop(shared);
    }

    /// The sequence number of the batch stamped `ts`: the newest's or a new one, or an older one still in the
    /// window (the rest of a round whose next round's parts are already in). `None`, counted, when it is older
    /// than the window or than a newer batch without being in the window's list.
    ///
    /// Only a whole batch moves the window on: a part of the next round must not age out the round whose rest is
    /// still to come (with a window of one resolution, the first container part of a round dropped the last
    /// round's pods and nodes before they were replaced, or before they were stored).
    fn seq_of(&self, ts: Timestamp, whole: bool) -> Option<u64> {
        let mut guard = self.inner.write().unwrap();
        let inner = &mut *guard;
        let seq = match inner.times.back() {
            Some(&last) if ts < last => match inner.times.binary_search(&ts) {
                Ok(i) => inner.first_seq + i as u64,
                Err(_) => {
                    inner.out_of_order += 1;
                    return None;
                }
            },
            Some(&last) if ts == last => inner.first_seq + inner.times.len() as u64 - 1,
            _ => {
                inner.times.push_back(ts);
                inner.points.push_back(0);
                inner.first_seq + inner.times.len() as u64 - 1
            }
        };
        // Keep batches newer than `ts - window`.
        let oldest = if whole { ts - self.config.window.as_millis() as Timestamp } else { Timestamp::MIN };
        while inner.times.front().is_some_and(|&t| t <= oldest) {
            inner.times.pop_front();
            inner.points.pop_front();
            inner.first_seq += 1;
        }
        (seq >= inner.first_seq).then_some(seq)
    }

    /// Stores `sets` as batch `seq`, taking the lock for [`INGEST_CHUNK`] sets at a time: a whole round's
    /// ingest at 5,000 nodes takes a second or two, and the parts of the next round are stored from the runtime's
    /// threads, which must not wait that long.
    fn store_sets<K: AsRef<str>, S: std::borrow::Borrow<MetricSet>>(
        &self,
        seq: u64,
        sets: impl Iterator<Item = (K, S)>,
        whole: bool,
    ) {
        let mut sets = sets.peekable();
        let mut scratch = Scratch::default();
        loop {
            let mut guard = self.inner.write().unwrap();
            let inner = &mut *guard;
            let Some(at) = seq.checked_sub(inner.first_seq) else {
                // Left the window while it was being stored (a window shorter than an ingest).
                inner.out_of_order += 1;
                return;
            };
            let first = inner.first_seq;
            let mut stored_points = 0;
            for (key, set) in sets.by_ref().take(INGEST_CHUNK) {
                stored_points += inner.ingest_set(seq, first, key.as_ref(), set.borrow(), &mut scratch);
            }
            if let Some(n) = inner.points.get_mut(at as usize) {
                *n += stored_points;
            }
            if sets.peek().is_none() {
                // The sweep visits every set under the lock: it runs with a whole batch (on the pipeline's ingest
                // thread), never in the scrape tasks that store parts.
                if whole {
                    inner.complete = Some(inner.complete.map_or(seq, |c| c.max(seq)));
                    inner.sweep_if_due();
                }
                return;
            }
        }
    }

    /// The newest batch stored whole, rebuilt from the store (for `metric-export`): every set of that batch with
    /// its labels, create time and values. Scrape times are not stored; they read as the batch's timestamp.
    ///
    /// Rebuilt rather than kept: a batch as it came is a map per set and per labelled metric, several times the size
    /// of its compressed points, and keeping one alive beside the next round's doubled heapster's peak memory.
    pub fn latest_batch(&self) -> Option<DataBatch> {
        let inner = self.inner.read().unwrap();
        let newest = inner.newest_whole()?;
        let timestamp = inner.time_of(newest)?;
        let mut batch = DataBatch { timestamp, ..Default::default() };
        for (key, s) in inner.sets.iter().filter(|(_, s)| s.last_seq >= newest) {
            let mut set = MetricSet {
                create_time: s.create_time,
                scrape_time: timestamp,
                labels: s.labels.unpack(),
                ..Default::default()
            };
            let Some(block) = s.chain.blocks().last() else { continue };
            // The newest row is that batch's unless the set's values of a newer round's part are in: then its
            // row of that batch is decoded, in one walk of its blocks (its labels and create time are the newer
            // ones).
            let mut values = vec![None; s.series.len()];
            if s.last_seq == newest {
                let last = s.writer.newest();
                for (i, v) in values.iter_mut().enumerate() {
                    *v = block.in_last_row(i).then(|| last.value(i));
                }
            } else {
                s.chain.decode_row(newest, |i, v| values[i] = Some(v));
            }
            for (&(name, labels), value) in s.series.iter().zip(values) {
                let Some(value) = value else { continue };
                let name = &**inner.names.get(name);
                let name: Cow<'static, str> = match heapster_model::catalog::find(name) {
                    Some(d) => Cow::Borrowed(d.name),
                    None => Cow::Owned(name.to_owned()),
                };
                if labels == 0 {
                    set.metrics.insert(name, value);
                } else {
                    let labels = Arc::new(inner.label_sets.get(labels - 1).clone());
                    set.labeled_metrics.push(LabeledMetric { name, labels, value });
                }
            }
            // A set newer than that batch was in it when it has a value there.
            if s.last_seq == newest || !set.metrics.is_empty() || !set.labeled_metrics.is_empty() {
                batch.sets.insert(key.to_string(), set);
            }
        }
        Some(batch)
    }

    /// Timestamp of the newest batch stored whole (see [`Store::ingest_part`]); none before the first.
    pub fn latest_timestamp(&self) -> Option<Timestamp> {
        let inner = self.inner.read().unwrap();
        inner.time_of(inner.newest_whole()?)
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
            .filter(|(_, s)| s.labels.get(heapster_model::labels::TYPE) == Some(set_type.as_str()))
            .map(|(k, _)| k.to_string())
            .collect();
        keys.sort();
        keys
    }

    /// Names of the unlabelled metrics that some set of type `set_type` has points of in the window, sorted: what
    /// can be asked of one object of that type as a single value (the custom metrics API's discovery).
    pub fn metric_names_of_type(&self, set_type: MetricSetType) -> Vec<String> {
        let inner = self.inner.read().unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for s in inner.sets.values() {
            if !inner.is_live(s) || s.labels.get(heapster_model::labels::TYPE) != Some(set_type.as_str()) {
                continue;
            }
            let live = s.live_series(inner.first_seq);
            ids.extend(s.series.iter().zip(&live).filter(|((_, l), live)| *l == 0 && **live).map(|((n, _), _)| *n));
        }
        let mut names: Vec<String> = ids.into_iter().map(|id| inner.names.get(id).to_string()).collect();
        names.sort();
        names
    }

    pub fn set_info(&self, key: &str) -> Option<SetInfo> {
        let inner = self.inner.read().unwrap();
        let s = inner.sets.get(key).filter(|s| inner.is_live(s))?;
        let live = s.live_series(inner.first_seq);
        let mut metric_names: Vec<String> = s
            .series
            .iter()
            .zip(&live)
            .filter(|(_, live)| **live)
            .map(|(&(name, _), _)| inner.names.get(name).to_string())
            .collect();
        metric_names.sort();
        metric_names.dedup();
        Some(SetInfo {
            labels: s.labels.unpack(),
            set_type: s.labels.get(heapster_model::labels::TYPE).and_then(|t| t.parse().ok()),
            create_time: s.create_time,
            metric_names,
            last_seen: inner.time_of(s.last_seq).unwrap_or(0),
        })
    }

    /// One label of set `key`, when the set is in the window: cheaper than [`Store::set_info`], which copies every
    /// label and lists the set's metrics (the dashboard reads the node of every pod this way).
    pub fn label(&self, key: &str, name: &str) -> Option<String> {
        let inner = self.inner.read().unwrap();
        let s = inner.sets.get(key).filter(|s| inner.is_live(s))?;
        s.labels.get(name).map(str::to_owned)
    }

    /// Label sets under which `metric` of set `key` has points (one empty `Labels` for an unlabelled metric).
    pub fn series_labels(&self, key: &str, metric: &str) -> Vec<Labels> {
        let inner = self.inner.read().unwrap();
        let (Some(s), Some(name)) = (inner.sets.get(key), inner.names.id(metric)) else { return Vec::new() };
        let live = s.live_series(inner.first_seq);
        let mut out: Vec<Labels> = s
            .series
            .iter()
            .zip(&live)
            .filter(|((n, _), live)| *n == name && **live)
            .map(|(&(_, l), _)| if l == 0 { Labels::new() } else { inner.label_sets.get(l - 1).clone() })
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
        let (set, i) = inner.series(key, metric, labels)?;
        let mut out = Vec::new();
        let mut any = false;
        set.points_of(i, inner.first_seq, |seq, value| {
            any = true;
            if let Some(timestamp) = inner.time_of(seq)
                && start.is_none_or(|s| timestamp >= s)
                && end.is_none_or(|e| timestamp <= e)
            {
                out.push(Point { timestamp, value });
            }
        });
        any.then_some(out)
    }

    /// The newest point of one series.
    pub fn latest(&self, key: &str, metric: &str, labels: &Labels) -> Option<Point> {
        let inner = self.inner.read().unwrap();
        let (set, i) = inner.series(key, metric, labels)?;
        let block = set.chain.blocks().last()?;
        if block.last() >= inner.first_seq && block.in_last_row(i) {
            let timestamp = inner.time_of(block.last())?;
            return Some(Point { timestamp, value: set.writer.newest_value(i) });
        }
        let mut last = None;
        set.points_of(i, inner.first_seq, |seq, value| last = Some((seq, value)));
        let (seq, value) = last?;
        Some(Point { timestamp: inner.time_of(seq)?, value })
    }

    pub fn stats(&self) -> StoreStats {
        let inner = self.inner.read().unwrap();
        let mut st = StoreStats { out_of_order: inner.out_of_order, ..Default::default() };
        let entry = std::mem::size_of::<(Box<str>, Box<StoredSet>)>() + 1;
        st.bytes += inner.sets.capacity() * entry + inner.times.capacity() * 8;
        st.points = inner.points.iter().sum();
        st.bytes += inner.points.capacity() * 8;
        for (key, s) in inner.sets.iter() {
            if inner.is_live(s) {
                st.sets += 1;
                st.series += s.series.len();
            }
            st.bytes += key.len() + std::mem::size_of::<StoredSet>() + s.bytes();
        }
        st.bytes += inner.names.bytes(|n| if let Cow::Owned(n) = n { n.capacity() } else { 0 })
            + inner.label_sets.bytes(labels_bytes)
            + inner.series_lists.bytes()
            + inner.label_parts.bytes()
            + inner.orders.bytes();
        st
    }
}

impl Inner {
    /// Drops expired blocks and sets every [`SWEEP_EVERY`] batches (see the module docs).
    fn sweep_if_due(&mut self) {
        let first = self.first_seq;
        if first >= self.swept_at + SWEEP_EVERY {
            self.swept_at = first;
            self.sets.retain(|_, s| {
                let live = s.last_seq >= first;
                if live {
                    s.chain.drop_before(first);
                }
                live
            });
            self.series_lists.sweep();
            self.label_parts.sweep();
            self.orders.sweep();
        }
    }

    /// The newest batch stored whole. None before the first: parts alone are not a batch, and `/healthz`, which
    /// goes by this, must not pass while the first round holds containers but not yet their pods and node.
    fn newest_whole(&self) -> Option<u64> {
        self.complete.filter(|&c| c >= self.first_seq)
    }

    /// Whether a set was in a batch of the window (the sweep may not have dropped it yet).
    fn is_live(&self, s: &StoredSet) -> bool {
        s.last_seq >= self.first_seq
    }

    fn time_of(&self, seq: u64) -> Option<Timestamp> {
        self.times.get(usize::try_from(seq.checked_sub(self.first_seq)?).ok()?).copied()
    }

    /// The set `key` and the index of one of its series, when the set is in the window.
    fn series(&self, key: &str, metric: &str, labels: &Labels) -> Option<(&StoredSet, usize)> {
        let name = self.names.id(metric)?;
        let labels = if labels.is_empty() { 0 } else { self.label_sets.id(labels)? + 1 };
        let s = self.sets.get(key).filter(|s| self.is_live(s))?;
        Some((s, s.find((name, labels))?))
    }
}

#[cfg(test)]
mod tests;
