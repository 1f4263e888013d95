//! Per-second rates of cumulative counters (`cpu/usage` -> `cpu/usage_rate`, ...), as Heapster's
//! `rate_calculator.go`, but restart-aware.
//!
//! A rate needs two readings of the same counter in the same lifetime of its entity. A new segment starts, and
//! no rate is emitted for that round, when:
//! - the set's `create_time` changed (the container restarted, even if its counter already grew past the old value),
//! - the counter went down (a reset we could not see from `create_time`, or a wrap),
//! - the scrape time did not advance (the source served the same reading twice).
//!
//! So a rate is never negative and never spans a restart.

use crate::DataProcessor;
use foldhash::HashMap;
use heapster_model::batch::MetricName;
use heapster_model::catalog::{self, MetricDescriptor};
use heapster_model::metric_map::cmp_names;
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, Timestamp};
use std::hash::BuildHasher;
use std::sync::Arc;

/// Counters of one set from the previous round.
#[derive(Default)]
struct Previous {
    create_time: Timestamp,
    scrape_time: Timestamp,
    counters: Box<[Counter]>,
}

/// One counter reading: which of [`Pairs::all`] it is, which labels a labelled counter has (a hash of them, odd;
/// 0 for none), and its value. A set has a dozen at most, so a slice scanned in order beats a map.
///
/// Two words: the calculator keeps every set's counters between rounds. The value is kept as its bits and kind,
/// not as a [`MetricValue`], whose tag would pad the reading to 32 bytes, and the labels as a hash, not as the
/// metric's shared labels, which took a word and kept the batch's labels alive between rounds. Two label sets of
/// one counter of one set that hash alike (2^-31 odds) would only make a rate out of the other's reading.
struct Counter {
    bits: u64,
    labels: u32,
    pair: u16,
    float: bool,
}

impl Counter {
    fn new(pair: usize, labels: u32, value: MetricValue) -> Self {
        let (bits, float) = match value {
            MetricValue::Int(v) => (v as u64, false),
            MetricValue::Float(v) => (v.to_bits(), true),
        };
        // The catalog has a few dozen rate metrics (`pairs` checks that they fit).
        Counter { bits, labels, pair: pair as u16, float }
    }

    fn value(&self) -> MetricValue {
        if self.float { MetricValue::Float(f64::from_bits(self.bits)) } else { MetricValue::Int(self.bits as i64) }
    }
}

/// Computes the `_rate` twin of every cumulative metric the catalog gives one.
#[derive(Default)]
pub struct RateCalculator {
    /// Last round's sets in key order as the batch was, each by a 64-bit hash of its key ([`Self::keys`]). A set
    /// of this round is looked for where the one before it was found, plus one: a source's sets come in the same
    /// order round after round, so this is right but for sets new or gone, where a map of the previous sets by hash
    /// (made only then) finds it. What is not matched (a set gone) is dropped.
    ///
    /// A hash, not the key: a copy of each set's key was about 4 KiB per node of 30 pods. Two keys of one source
    /// that hash alike (odds of about 2^-52 for a node's hundred sets, with a seed of the calculator's own) would only
    /// make a rate out of the other set's counters.
    previous: Vec<(u64, Previous)>,
    keys: foldhash::quality::RandomState,
    /// The counters of the set at hand, moved into its [`Previous`] ones afterwards. Those keep their own slice,
    /// sized to the set's counters: nothing is allocated per set and round once every set has been seen, and no
    /// vector carries the slack of growing by doubling (swapping this vector with a set's let every set's grow to
    /// the largest: the calculator's state was 28.5 KiB per node of 30 pods).
    scratch: Vec<(Counter, Option<Arc<Labels>>)>,
    /// The set at hand's unlabelled rates, added to it together: one merge into its sorted metrics, and its
    /// vector grown once, rather than a search and a shift per rate.
    rates: Vec<(MetricName, MetricValue)>,
}

impl RateCalculator {
    pub fn new() -> Self {
        Self::default()
    }
}

/// The catalog's rate metrics, resolved once, and two views of them for finding a set's counters.
struct Pairs {
    /// (counter, its rate descriptor).
    all: Vec<(&'static str, &'static MetricDescriptor)>,
    /// (counter, index into `all`), sorted by counter: a set's metrics are sorted by name too, so one merge of
    /// the two finds them all, where looking each counter up was a map search of string compares per counter.
    sorted: Vec<(&'static str, usize)>,
    /// The labelled ones: only they can give a labelled metric a rate.
    labeled: Vec<(&'static str, usize)>,
}

fn pairs() -> &'static Pairs {
    use std::sync::LazyLock;
    static PAIRS: LazyLock<Pairs> = LazyLock::new(|| {
        let all: Vec<_> = catalog::CATALOG.iter().filter_map(|d| d.rate_of.map(|counter| (counter, d))).collect();
        assert!(all.len() <= usize::from(u16::MAX), "a counter's pair is a u16");
        let mut sorted: Vec<_> = all.iter().enumerate().map(|(i, &(c, _))| (c, i)).collect();
        sorted.sort_unstable();
        let labeled = all.iter().enumerate().filter(|(_, (_, d))| d.labeled).map(|(i, &(c, _))| (c, i)).collect();
        Pairs { all, sorted, labeled }
    });
    &PAIRS
}

/// Per-second rate of `cur - prev` over `dt_ms`, or `None` when the counter went down. `cpu/usage` is in ns and
/// its rate in whole millicores (1 core = 1e9 ns/s = 1000 millicores), an integer truncated as Heapster's
/// `1000 * delta_ns / dt_ns`, so that InfluxDB fields and API values have the original's type; every other rate
/// is a fraction.
fn rate(counter: &str, prev: MetricValue, cur: MetricValue, dt_ms: i64) -> Option<MetricValue> {
    if counter == "cpu/usage"
        && let (MetricValue::Int(p), MetricValue::Int(c)) = (prev, cur)
    {
        let delta = c.checked_sub(p).filter(|d| *d >= 0)?;
        let millicores = i128::from(delta) * 1000 / (i128::from(dt_ms) * 1_000_000);
        return Some(MetricValue::Int(i64::try_from(millicores).ok()?));
    }
    let delta = match (prev, cur) {
        (MetricValue::Int(p), MetricValue::Int(c)) => c.checked_sub(p)? as f64,
        (p, c) => c.as_f64() - p.as_f64(),
    };
    if delta < 0.0 || !delta.is_finite() {
        return None;
    }
    let per_second = delta * 1000.0 / dt_ms as f64;
    Some(MetricValue::Float(if counter == "cpu/usage" { per_second / 1e6 } else { per_second }))
}

impl DataProcessor for RateCalculator {
    fn name(&self) -> &'static str {
        "rate_calculator"
    }

    /// A set's previous reading is in the same source's previous sets.
    fn for_one_source(&self) -> Option<Box<dyn DataProcessor>> {
        Some(Box::new(RateCalculator::new()))
    }

    fn process(&mut self, mut batch: DataBatch) -> DataBatch {
        let pairs = pairs();
        let mut counters = std::mem::take(&mut self.scratch);
        let mut next = Vec::with_capacity(batch.sets.len());
        let mut previous = std::mem::take(&mut self.previous);
        let mut by_hash = None;
        let mut at = 0;
        for (key, set) in batch.sets.iter_mut() {
            counters.clear();
            counters_of(set, pairs, &self.keys, &mut counters);
            let key = self.keys.hash_one(key.as_str());
            // Sets absent from this round are skipped, so forgotten: if they come back, they start a new segment.
            match find(&previous, &mut by_hash, at, key) {
                Some(i) => {
                    at = i + 1;
                    let mut prev = std::mem::take(&mut previous[i].1);
                    if same_segment(&prev, set) {
                        let dt_ms = set.scrape_time - prev.scrape_time;
                        add_rates(set, &prev, &counters, &pairs.all, dt_ms, &mut self.rates);
                    }
                    (prev.create_time, prev.scrape_time) = (set.create_time, set.scrape_time);
                    // Each set keeps its own slice, exactly as long as its counters (see `scratch`).
                    if prev.counters.len() == counters.len() {
                        prev.counters.iter_mut().zip(counters.drain(..)).for_each(|(kept, (c, _))| *kept = c);
                    } else {
                        prev.counters = counters.drain(..).map(|(c, _)| c).collect();
                    }
                    next.push((key, prev));
                }
                None => {
                    let counters = counters.drain(..).map(|(c, _)| c).collect();
                    let prev = Previous { create_time: set.create_time, scrape_time: set.scrape_time, counters };
                    next.push((key, prev));
                }
            }
        }
        self.scratch = counters;
        self.previous = next;
        batch
    }
}

/// Where the set hashed `key` is in `previous`: at `at` almost always (see [`RateCalculator::previous`]), else
/// in `by_hash`, a map of `previous` made at the first set not at its place.
fn find(previous: &[(u64, Previous)], by_hash: &mut Option<HashMap<u64, usize>>, at: usize, key: u64) -> Option<usize> {
    if previous.get(at).is_some_and(|(k, _)| *k == key) {
        return Some(at);
    }
    let by_hash = by_hash.get_or_insert_with(|| previous.iter().enumerate().map(|(i, (k, _))| (*k, i)).collect());
    by_hash.get(&key).copied()
}

fn same_segment(prev: &Previous, set: &MetricSet) -> bool {
    prev.create_time == set.create_time && set.scrape_time > prev.scrape_time
}

/// Appends `set`'s counters to `out`: its unlabelled metrics that have a rate, by name, then its labelled ones, in
/// order. (Labelled counters of a catalog metric that is not labelled, and the reverse, never get a rate; they
/// are left out.)
fn counters_of(
    set: &MetricSet,
    pairs: &Pairs,
    hasher: &foldhash::quality::RandomState,
    out: &mut Vec<(Counter, Option<Arc<Labels>>)>,
) {
    let mut wanted = pairs.sorted.iter().peekable();
    for (name, &value) in &set.metrics {
        while let Some(&&(counter, pair)) = wanted.peek() {
            match cmp_names(counter, name) {
                std::cmp::Ordering::Less => {
                    wanted.next();
                }
                std::cmp::Ordering::Equal => {
                    out.push((Counter::new(pair, 0, value), None));
                    wanted.next();
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        if wanted.peek().is_none() {
            break;
        }
    }
    for m in &set.labeled_metrics {
        if let Some(&(_, pair)) = pairs.labeled.iter().find(|(c, _)| *c == m.name) {
            let labels = hasher.hash_one(&*m.labels) as u32 | 1;
            out.push((Counter::new(pair, labels, m.value), Some(m.labels.clone())));
        }
    }
}

fn add_rates(
    set: &mut MetricSet,
    prev: &Previous,
    counters: &[(Counter, Option<Arc<Labels>>)],
    pairs: &[(&'static str, &'static MetricDescriptor)],
    dt_ms: i64,
    rates: &mut Vec<(MetricName, MetricValue)>,
) {
    rates.clear();
    for (cur, labels) in counters {
        let Some(before) = prev.counters.iter().find(|p| p.pair == cur.pair && p.labels == cur.labels) else {
            continue;
        };
        let (name, desc) = pairs[usize::from(cur.pair)];
        let Some(r) = rate(name, before.value(), cur.value(), dt_ms) else { continue };
        match (labels, desc.labeled) {
            (Some(labels), true) => set.add_labeled(desc.name, labels.clone(), r),
            (None, false) => rates.push((MetricName::Borrowed(desc.name), r)),
            _ => {}
        }
    }
    set.metrics.extend(rates.drain(..));
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::labels::RESOURCE_ID;

    /// Every set's counters are kept between rounds: a reading is two words, not the four a `MetricValue`'s tag
    /// and the labels' pointer made it, and gives its value back with its kind.
    #[test]
    fn a_kept_reading_is_two_words_and_keeps_its_value() {
        assert_eq!(std::mem::size_of::<Counter>(), 16);
        for v in [MetricValue::Int(-1), MetricValue::Int(i64::MAX), MetricValue::Float(-0.0), MetricValue::Float(0.5)] {
            let kept = Counter::new(3, 0, v).value();
            assert!(
                matches!((kept, v), (MetricValue::Int(a), MetricValue::Int(b)) if a == b)
                    || matches!((kept, v), (MetricValue::Float(a), MetricValue::Float(b)) if a.to_bits() == b.to_bits())
            );
        }
    }

    fn set(create: Timestamp, scrape: Timestamp, cpu_ns: i64, rx: i64) -> MetricSet {
        let mut s = MetricSet { create_time: create, scrape_time: scrape, ..Default::default() };
        s.set("cpu/usage", MetricValue::Int(cpu_ns));
        s.set("network/rx", MetricValue::Int(rx));
        s.set("memory/usage", MetricValue::Int(123));
        s
    }

    fn batch(ts: Timestamp, s: MetricSet) -> DataBatch {
        let mut b = DataBatch { timestamp: ts, ..Default::default() };
        b.sets.insert("node:n/container:c".into(), s);
        b
    }

    fn rates_over(readings: &[(Timestamp, Timestamp, i64, i64)]) -> Vec<(Option<f64>, Option<f64>)> {
        let mut rc = RateCalculator::new();
        readings
            .iter()
            .map(|&(create, scrape, cpu, rx)| {
                let out = rc.process(batch(scrape, set(create, scrape, cpu, rx)));
                let s = &out.sets["node:n/container:c"];
                (s.get("cpu/usage_rate").map(MetricValue::as_f64), s.get("network/rx_rate").map(MetricValue::as_f64))
            })
            .collect()
    }

    #[test]
    fn cpu_rate_is_in_millicores_and_byte_rate_per_second() {
        // 1.5 cores for 10 s = 15e9 ns; 1000 bytes in 10 s.
        let r = rates_over(&[(1, 10_000, 0, 0), (1, 20_000, 15_000_000_000, 1000)]);
        assert_eq!(r[0], (None, None), "no rate from a single reading");
        assert_eq!(r[1], (Some(1500.0), Some(100.0)));
    }

    /// Recorded from a container that restarted between the second and third scrape (kubelet summary values,
    /// cpu usageCoreNanoSeconds and rxBytes), and whose counters later reset without a visible restart.
    #[test]
    fn counter_resets_never_give_negative_rates() {
        let readings = [
            (1_700_000_000_000, 1_700_000_600_000, 48_135_221_356, 9_105_322),
            (1_700_000_000_000, 1_700_000_615_000, 48_502_908_120, 9_121_018),
            // Restarted: create time moved and counters restarted near zero.
            (1_700_000_612_000, 1_700_000_630_000, 211_442_001, 1_024),
            (1_700_000_612_000, 1_700_000_645_000, 576_119_874, 7_730),
            // Reset with the same create time (cgroup re-created under the same name).
            (1_700_000_612_000, 1_700_000_660_000, 3_004_112, 0),
            (1_700_000_612_000, 1_700_000_675_000, 370_998_004, 512),
        ];
        let r = rates_over(&readings);
        assert_eq!(r[0], (None, None));
        // 367,686,764 ns in 15 s = 24.51 millicores, truncated as Heapster's integer division.
        assert_eq!(r[1].0, Some(24.0), "{:?}", r[1]);
        assert_eq!(r[2], (None, None), "restart starts a new segment");
        assert_eq!(r[3].0, Some(24.0), "{:?}", r[3]);
        assert_eq!(r[4], (None, None), "counter went down: new segment, no rate");
        assert!(r[5].0.unwrap() > 0.0 && r[5].1.unwrap() > 0.0);
        for (cpu, rx) in r.iter() {
            assert!(cpu.is_none_or(|v| v >= 0.0) && rx.is_none_or(|v| v >= 0.0));
        }
    }

    #[test]
    fn restart_with_a_counter_already_past_the_old_value_gives_no_rate() {
        let r = rates_over(&[(1, 10_000, 100, 100), (2, 20_000, 5_000_000_000, 5_000)]);
        assert_eq!(r[1], (None, None));
    }

    /// Sets come and go between rounds, before, between and after the others in key order: each keeps its own
    /// history (each set's counter grows at its own rate, so a rate made from another set's reading shows), and
    /// one absent for a round starts afresh.
    #[test]
    fn sets_that_come_and_go_keep_their_own_history() {
        let mut rc = RateCalculator::new();
        // Set "a" uses 1 core, "b" 2 and so on.
        let cores = |k: &str| i64::from(k.as_bytes()[0] - b'a' + 1);
        let round = |rc: &mut RateCalculator, t: Timestamp, keys: &[&str]| {
            let mut b = DataBatch { timestamp: t, ..Default::default() };
            for k in keys {
                b.sets.insert(k.to_string(), set(1, t, t * 1_000_000 * cores(k), 0));
            }
            let out = rc.process(b);
            let rates: Vec<(String, Option<MetricValue>)> =
                out.sets.iter().map(|(k, s)| (k.clone(), s.get("cpu/usage_rate"))).collect();
            rates
        };
        let some = |k: &str| (k.to_owned(), Some(MetricValue::Int(1000 * cores(k))));
        let none = |k: &str| (k.to_owned(), None);
        assert!(round(&mut rc, 1000, &["b", "d"]).iter().all(|(_, r)| r.is_none()));
        let r = round(&mut rc, 2000, &["a", "b", "c", "e"]);
        assert_eq!(r, [none("a"), some("b"), none("c"), none("e")]);
        let r = round(&mut rc, 3000, &["a", "b", "d", "e"]);
        assert_eq!(r, [some("a"), some("b"), none("d"), some("e")]);
        let r = round(&mut rc, 4000, &["a", "b", "d", "e"]);
        assert_eq!(r, [some("a"), some("b"), some("d"), some("e")]);
    }

    #[test]
    fn same_scrape_time_twice_gives_no_rate() {
        let r = rates_over(&[(1, 10_000, 100, 100), (1, 10_000, 200, 200)]);
        assert_eq!(r[1], (None, None));
    }

    /// Every counter the catalog gives a rate gets it, labelled or not: the merge that finds a set's counters
    /// misses none, whatever else the set holds.
    #[test]
    fn every_counter_of_the_catalog_gets_its_rate() {
        let mut rc = RateCalculator::new();
        let mk = |scrape: Timestamp, v: i64| {
            let mut s = MetricSet { create_time: 1, scrape_time: scrape, ..Default::default() };
            s.set("aaa/first", MetricValue::Int(v));
            s.set("zzz/last", MetricValue::Int(v));
            for d in catalog::CATALOG {
                match d.rate_of {
                    Some(counter) if d.labeled => s.add_labeled(counter, labels_of("vda"), MetricValue::Int(v)),
                    Some(counter) => s.set(counter, MetricValue::Int(v)),
                    None => s.set(d.name, MetricValue::Int(1)),
                }
            }
            batch(scrape, s)
        };
        rc.process(mk(1000, 0));
        let out = rc.process(mk(2000, 10));
        let s = &out.sets["node:n/container:c"];
        let rates: Vec<_> = catalog::CATALOG.iter().filter(|d| d.rate_of.is_some()).collect();
        assert!(rates.len() >= 14);
        for d in rates {
            // 10 ns in a second is 0.00001 millicores: 0 in Heapster's whole millicores.
            let want = if d.rate_of == Some("cpu/usage") { MetricValue::Int(0) } else { MetricValue::Float(10.0) };
            let got = match d.labeled {
                true => s.labeled_metrics.iter().find(|m| m.name == d.name).map(|m| m.value),
                false => s.get(d.name),
            };
            assert_eq!(got, Some(want), "{}", d.name);
        }
    }

    fn labels_of(dev: &str) -> Labels {
        Labels::from([(RESOURCE_ID.to_owned(), dev.to_owned())])
    }

    #[test]
    fn labelled_counters_get_labelled_rates() {
        let mut rc = RateCalculator::new();
        let mk = |scrape, v| {
            let mut s = MetricSet { create_time: 1, scrape_time: scrape, ..Default::default() };
            for dev in ["vda", "vdb"] {
                let labels = Labels::from([(RESOURCE_ID.to_owned(), dev.to_owned())]);
                s.add_labeled("disk/io_read_bytes", labels, MetricValue::Int(if dev == "vda" { v } else { 7 }));
            }
            batch(scrape, s)
        };
        rc.process(mk(1000, 0));
        let out = rc.process(mk(3000, 4096));
        let rates: Vec<_> = out.sets["node:n/container:c"]
            .labeled_metrics
            .iter()
            .filter(|m| m.name == "disk/io_read_bytes_rate")
            .map(|m| (m.labels[RESOURCE_ID].clone(), m.value))
            .collect();
        assert_eq!(rates.len(), 2);
        assert!(rates.contains(&("vda".into(), MetricValue::Float(2048.0))));
        assert!(rates.contains(&("vdb".into(), MetricValue::Float(0.0))));
    }
}
