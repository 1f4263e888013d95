use super::*;
use heapster_model::MetricSet;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn store(window_s: u64) -> Store {
    Store::new(StoreConfig { window: Duration::from_secs(window_s), resolution: Duration::from_secs(15) })
}

fn batch(ts: Timestamp, sets: &[(&str, &[(&'static str, MetricValue)])]) -> Arc<DataBatch> {
    let mut b = DataBatch { timestamp: ts, ..Default::default() };
    for (key, metrics) in sets {
        let mut s = MetricSet::default();
        s.labels.insert("type", "node");
        for (n, v) in *metrics {
            s.set(n, *v);
        }
        b.sets.insert((*key).into(), s);
    }
    Arc::new(b)
}

fn values(st: &Store, key: &str, metric: &str) -> Vec<(Timestamp, MetricValue)> {
    st.points(key, metric, &Labels::new(), None, None)
        .unwrap_or_default()
        .iter()
        .map(|p| (p.timestamp, p.value))
        .collect()
}

#[test]
fn points_come_back_with_their_timestamps_and_types() {
    let st = store(900);
    for i in 0..100i64 {
        let cpu = MetricValue::Int(i * 1_000_000_007);
        let rate = MetricValue::Float(i as f64 / 3.0);
        st.ingest(batch(i * 15_000, &[("node:a", &[("cpu/usage", cpu), ("cpu/usage_rate", rate)])]));
    }
    let v = values(&st, "node:a", "cpu/usage");
    assert_eq!(v.len(), 60, "900 s / 15 s");
    assert_eq!(v[0], (40 * 15_000, MetricValue::Int(40 * 1_000_000_007)));
    assert_eq!(*v.last().unwrap(), (99 * 15_000, MetricValue::Int(99 * 1_000_000_007)));
    let r = values(&st, "node:a", "cpu/usage_rate");
    assert_eq!(r.last().unwrap().1, MetricValue::Float(33.0));
    let p = st.points("node:a", "cpu/usage", &Labels::new(), Some(90 * 15_000), Some(92 * 15_000)).unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(st.latest("node:a", "cpu/usage_rate", &Labels::new()).unwrap().timestamp, 99 * 15_000);
    assert_eq!(st.latest_timestamp(), Some(99 * 15_000));
    let stats = st.stats();
    assert_eq!((stats.sets, stats.series, stats.points), (1, 2, 120));
}

#[test]
fn gaps_and_sets_that_age_out() {
    let st = store(60);
    st.ingest(batch(
        0,
        &[("node:a", &[("memory/usage", MetricValue::Int(1))]), ("node:b", &[("memory/usage", MetricValue::Int(9))])],
    ));
    st.ingest(batch(15_000, &[("node:a", &[("memory/usage", MetricValue::Int(2))])]));
    st.ingest(batch(30_000, &[("node:a", &[]), ("node:b", &[("memory/usage", MetricValue::Int(8))])]));
    assert_eq!(values(&st, "node:b", "memory/usage"), vec![(0, MetricValue::Int(9)), (30_000, MetricValue::Int(8))]);
    assert_eq!(values(&st, "node:a", "memory/usage").len(), 2);
    assert_eq!((st.stats().sets, st.stats().points), (2, 4));
    // node:b last seen at 30 s; at 95 s the window (35 s, 95 s] no longer has it.
    st.ingest(batch(95_000, &[("node:a", &[("memory/usage", MetricValue::Int(3))])]));
    assert_eq!(st.keys(), vec!["node:a"]);
    assert_eq!(values(&st, "node:a", "memory/usage"), vec![(95_000, MetricValue::Int(3))]);
    assert!(st.set_info("node:b").is_none());
    assert_eq!(st.label("node:a", "type").as_deref(), Some("node"));
    assert_eq!(st.label("node:a", "missing"), None);
    assert_eq!(st.label("node:b", "type"), None, "aged out");
    assert_eq!(st.set_info("node:a").unwrap().last_seen, 95_000);
    // Counted at ingest, the size follows the window: only the 95 s batch's one value is left.
    assert_eq!((st.stats().sets, st.stats().series, st.stats().points), (1, 1, 1));
}

#[test]
fn same_timestamp_replaces_and_older_is_ignored() {
    let st = store(900);
    st.ingest(batch(15_000, &[("node:a", &[("cpu/usage", MetricValue::Int(1))])]));
    st.ingest(batch(30_000, &[("node:a", &[("cpu/usage", MetricValue::Int(2))])]));
    st.ingest(batch(30_000, &[("node:a", &[("cpu/usage", MetricValue::Int(5))])]));
    st.ingest(batch(20_000, &[("node:a", &[("cpu/usage", MetricValue::Int(7))])]));
    assert_eq!(values(&st, "node:a", "cpu/usage"), vec![(15_000, MetricValue::Int(1)), (30_000, MetricValue::Int(5))]);
    assert_eq!(st.stats().out_of_order, 1);
}

/// The pipeline stores a round in parts: each node's containers as its scrape is processed, the rest once the
/// round's processors are done, at times after the next round's first parts.
#[test]
fn a_round_stored_in_parts_is_the_newest_batch_once_its_rest_is_in() {
    let st = store(900);
    let int = MetricValue::Int;
    // Before the first whole round there is no newest batch, however many parts are in.
    st.ingest_part(batch(0, &[]));
    st.ingest_part(batch(0, &[("container:a", &[("cpu/usage", int(5))])]));
    assert_eq!(st.latest_timestamp(), None);
    assert!(st.latest_batch().is_none());
    st.ingest(batch(15_000, &[("pod:a", &[("cpu/usage", int(1))]), ("container:a", &[("cpu/usage", int(10))])]));
    st.ingest_part(batch(30_000, &[("container:a", &[("cpu/usage", int(20))])]));
    // The 30 s round is not whole yet: the newest batch is still the 15 s one, values as they were then.
    assert_eq!(st.latest_timestamp(), Some(15_000));
    let latest = st.latest_batch().unwrap();
    assert_eq!(latest.timestamp, 15_000);
    assert_eq!(latest.sets["container:a"].metrics.get("cpu/usage"), Some(&int(10)));
    assert_eq!(latest.sets["pod:a"].metrics.get("cpu/usage"), Some(&int(1)));
    // The next round's first part comes before this round's rest.
    st.ingest_part(batch(45_000, &[("container:a", &[("cpu/usage", int(30))])]));
    st.ingest(batch(30_000, &[("pod:a", &[("cpu/usage", int(2))])]));
    assert_eq!(st.latest_timestamp(), Some(30_000));
    let latest = st.latest_batch().unwrap();
    assert_eq!(latest.sets["container:a"].metrics.get("cpu/usage"), Some(&int(20)));
    assert_eq!(latest.sets["pod:a"].metrics.get("cpu/usage"), Some(&int(2)));
    assert_eq!(values(&st, "pod:a", "cpu/usage"), vec![(15_000, int(1)), (30_000, int(2))]);
    assert_eq!(
        values(&st, "container:a", "cpu/usage"),
        vec![(0, int(5)), (15_000, int(10)), (30_000, int(20)), (45_000, int(30))]
    );
    assert_eq!(st.stats().out_of_order, 0);
    assert_eq!(st.stats().points, 6);
    // A set already stored in a newer batch keeps its rows; the late value is counted, not stored.
    st.ingest(batch(30_000, &[("container:a", &[("cpu/usage", int(99))])]));
    assert_eq!(values(&st, "container:a", "cpu/usage").len(), 4);
    assert_eq!(st.stats().out_of_order, 1);
    // A set that was not in the newest whole batch is left out of it even when a newer part has it.
    st.ingest_part(batch(60_000, &[("container:b", &[("cpu/usage", int(1))])]));
    assert!(!st.latest_batch().unwrap().sets.contains_key("container:b"));
    // Once the 45 s round's rest is in, that is the newest batch.
    st.ingest(batch(45_000, &[("pod:a", &[("cpu/usage", int(3))])]));
    assert_eq!(st.latest_timestamp(), Some(45_000));
    assert_eq!(st.latest_batch().unwrap().sets["container:a"].metrics.get("cpu/usage"), Some(&int(30)));
}

/// Only a whole batch moves the window on: with a window of one resolution, the next round's first part must
/// not age out the last round's pods before its own are in. An empty part puts a round in the window's list, so
/// its rest is taken after the next round's parts.
#[test]
fn parts_do_not_age_out_the_round_before_and_an_empty_part_keeps_a_round_s_place() {
    let st = store(15);
    let int = MetricValue::Int;
    st.ingest(batch(15_000, &[("pod:a", &[("cpu/usage", int(1))]), ("container:a", &[("cpu/usage", int(10))])]));
    st.ingest_part(batch(30_000, &[("container:a", &[("cpu/usage", int(20))])]));
    assert!(st.keys().contains(&"pod:a".to_string()), "the 15 s round's pod aged out by a part");
    assert_eq!(st.latest_batch().unwrap().sets.len(), 2);
    st.ingest(batch(30_000, &[("pod:a", &[("cpu/usage", int(2))])]));
    assert_eq!(values(&st, "pod:a", "cpu/usage"), vec![(30_000, int(2))]);
    assert_eq!(values(&st, "container:a", "cpu/usage"), vec![(30_000, int(20))]);
    // A round with no container part: its empty part comes first, the next round's part, then its rest.
    st.ingest_part(batch(45_000, &[]));
    st.ingest_part(batch(60_000, &[("container:a", &[("cpu/usage", int(40))])]));
    st.ingest(batch(45_000, &[("pod:a", &[("cpu/usage", int(3))])]));
    assert_eq!(st.latest_timestamp(), Some(45_000));
    assert_eq!(values(&st, "pod:a", "cpu/usage"), vec![(45_000, int(3))]);
    assert_eq!(st.stats().out_of_order, 0);
}

/// A batch larger than one hold of the lock is stored whole, its points counted once.
#[test]
fn a_batch_of_many_chunks_is_stored_whole() {
    let st = store(900);
    let n = INGEST_CHUNK * 2 + 7;
    let keys: Vec<String> = (0..n).map(|i| format!("node:{i:04}")).collect();
    let sets: Vec<(&str, &[(&'static str, MetricValue)])> =
        keys.iter().map(|k| (k.as_str(), &[("cpu/usage", MetricValue::Int(1))][..])).collect();
    st.ingest(batch(15_000, &sets));
    let again = batch(30_000, &sets);
    st.ingest(again.clone());
    assert_eq!((st.stats().sets, st.stats().points), (n, 2 * n));
    assert_eq!(values(&st, &keys[n - 1], "cpu/usage").len(), 2);
    assert_eq!(st.latest_batch().unwrap().sets.len(), n);
}

#[test]
fn labelled_metrics_are_separate_series() {
    let st = store(900);
    let mut b = DataBatch { timestamp: 1000, ..Default::default() };
    let mut s = MetricSet::default();
    for (dev, v) in [("/dev/vda", 10), ("/dev/vdb", 20)] {
        s.add_labeled("filesystem/usage", Labels::from([("resource_id", dev)]), MetricValue::Int(v));
    }
    b.sets.insert("node:a".into(), s);
    st.ingest(Arc::new(b));
    let labels = st.series_labels("node:a", "filesystem/usage");
    assert_eq!(labels.len(), 2);
    let p = st.points("node:a", "filesystem/usage", &labels[1], None, None).unwrap();
    assert_eq!(p[0].value, MetricValue::Int(20));
    assert!(st.points("node:a", "filesystem/usage", &Labels::new(), None, None).is_none());
    assert_eq!(st.set_info("node:a").unwrap().metric_names, vec!["filesystem/usage"]);
}

#[test]
fn metric_names_of_a_type_are_the_unlabelled_ones_of_live_sets() {
    let st = store(60);
    st.ingest(batch(
        0,
        &[("node:a", &[("memory/usage", MetricValue::Int(1))]), ("node:b", &[("cpu/usage_rate", MetricValue::Int(9))])],
    ));
    let mut b = (*batch(15_000, &[("node:a", &[("network/rx_rate", MetricValue::Float(1.5))])])).clone();
    let s = b.sets.get_mut("node:a").unwrap();
    s.add_labeled("filesystem/usage", Labels::from([("resource_id", "/dev/vda")]), MetricValue::Int(3));
    st.ingest(Arc::new(b));
    assert_eq!(st.metric_names_of_type(MetricSetType::Node), vec!["cpu/usage_rate", "memory/usage", "network/rx_rate"]);
    assert!(st.metric_names_of_type(MetricSetType::Pod).is_empty());
    // node:b ages out, and its metric with it.
    st.ingest(batch(90_000, &[("node:a", &[("memory/usage", MetricValue::Int(2))])]));
    assert_eq!(st.metric_names_of_type(MetricSetType::Node), vec!["memory/usage"]);
}

/// The reference: what a store must answer, kept the plain way.
/// (set key, metric) -> value, per batch.
type ModelBatch = BTreeMap<(String, String), MetricValue>;

#[derive(Default)]
struct Model {
    batches: Vec<(Timestamp, ModelBatch)>,
}

fn arb_value() -> impl Strategy<Value = MetricValue> {
    prop_oneof![
        any::<i64>().prop_map(MetricValue::Int),
        (0i64..1000).prop_map(MetricValue::Int),
        any::<f64>().prop_filter("NaN compares unequal", |f| !f.is_nan()).prop_map(MetricValue::Float),
        // Rates over the intervals `matches_a_plain_model` scrapes at, which the store codes as counts.
        (-5i64..5000, prop::sample::select(vec![15_000u32, 14_999]))
            .prop_map(|(n, dt)| MetricValue::Float(n as f64 * 1000.0 / f64::from(dt))),
    ]
}

proptest! {
    #[test]
    fn matches_a_plain_model(
        steps in prop::collection::vec(
            (0i64..3, prop::collection::btree_map((0usize..4, 0usize..3), arb_value(), 0..8)),
            1..150,
        )
    ) {
        let keys = ["node:a", "node:b", "node:c", "cluster"];
        let metrics = ["cpu/usage", "memory/usage", "network/rx"];
        let window = 300_000i64;
        let st = store(300);
        let mut model = Model::default();
        let (mut ts, mut scraped) = (0, 0);
        for (step, (advance, values)) in steps.into_iter().enumerate() {
            ts += advance * 15_000; // 0 means the same timestamp again
            // Scraped 15 s, 14.999 s or 1 ms apart: rates over those intervals are coded as counts.
            scraped += advance * [15_000, 14_999, 1][step % 3];
            let mut b = DataBatch { timestamp: ts, ..Default::default() };
            let mut m = BTreeMap::new();
            for ((k, n), v) in &values {
                let set = b.sets.entry(keys[*k].to_string()).or_default();
                set.scrape_time = scraped;
                set.set(metrics[*n], *v);
                m.insert((keys[*k].to_string(), metrics[*n].to_string()), *v);
            }
            st.ingest(Arc::new(b));
            match model.batches.last_mut() {
                Some((t, old)) if *t == ts => old.extend(m),
                _ => model.batches.push((ts, m)),
            }
        }
        let oldest = ts - window;
        for k in keys {
            for n in metrics {
                let want: Vec<(Timestamp, MetricValue)> = model.batches.iter()
                    .filter(|(t, _)| *t > oldest)
                    .filter_map(|(t, m)| m.get(&(k.to_string(), n.to_string())).map(|v| (*t, *v)))
                    .collect();
                prop_assert_eq!(values(&st, k, n), want, "{} {}", k, n);
            }
        }
    }
}

#[test]
fn the_latest_batch_is_rebuilt_with_its_sets_labels_and_values() {
    let st = store(900);
    assert!(st.latest_batch().is_none());
    st.ingest(batch(15_000, &[("node:gone", &[("memory/usage", MetricValue::Int(1))])]));
    let mut b = DataBatch { timestamp: 30_000, ..Default::default() };
    let mut s = MetricSet { create_time: 7, scrape_time: 29_000, ..Default::default() };
    s.labels.insert("type", "pod");
    s.set("cpu/usage_rate", MetricValue::Float(12.5));
    s.set("memory/usage", MetricValue::Int(1 << 40));
    s.metrics.insert(std::borrow::Cow::Owned("custom/qps".into()), MetricValue::Int(3));
    s.add_labeled("filesystem/usage", heapster_model::labels::resource_id("/"), MetricValue::Int(99));
    b.sets.insert("namespace:a/pod:p".into(), s.clone());
    st.ingest(Arc::new(b));
    let latest = st.latest_batch().unwrap();
    assert_eq!(latest.timestamp, 30_000);
    assert_eq!(latest.sets.keys().collect::<Vec<_>>(), ["namespace:a/pod:p"], "only the newest batch's sets");
    // Scrape times are not stored: they come back as the batch timestamp.
    assert_eq!(latest.sets["namespace:a/pod:p"], MetricSet { scrape_time: 30_000, ..s });
}

/// A store that keeps getting the same sets holds about the same bytes from one batch to the next once its window
/// is full: sets drop their oldest block at different batches. With one block boundary for all sets, every set held
/// 60 to 124 batches and the bytes swung by about 2x in 64 batches (RSS by 30 % in issue 16's soak).
#[test]
fn bytes_stay_flat_once_the_window_is_full() {
    let st = store(60 * 15);
    let keys: Vec<String> = (0..256).map(|i| format!("namespace:ns/pod:p{i}")).collect();
    let mut bytes = Vec::new();
    for b in 0..300i64 {
        let mut batch = DataBatch { timestamp: b * 15_000, ..Default::default() };
        for (i, key) in keys.iter().enumerate() {
            let mut s = MetricSet::default();
            s.labels.insert("type", "pod");
            let i = i as i64;
            s.set("cpu/usage", MetricValue::Int(b * (1_000_003 + i * 7919) + (b * b * i) % 1_000_003));
            s.set("memory/usage", MetricValue::Int((64 << 20) + (b * 7_654_321 * (i + 1)) % (32 << 20)));
            s.set("cpu/usage_rate", MetricValue::Float((b * (i + 3)) as f64 / 7.0));
            batch.sets.insert(key.clone(), s);
        }
        st.ingest(Arc::new(batch));
        if b >= 130 {
            bytes.push(st.stats().bytes);
        }
    }
    let (min, max) = (*bytes.iter().min().unwrap(), *bytes.iter().max().unwrap());
    assert!(max as f64 <= min as f64 * 1.05, "bytes from {min} to {max} once the window was full");
}

/// A batch the store holds alone is taken apart as it is stored; one a sink still holds is read in place. Both
/// store the same, and the shared one is left whole for its other holder.
#[test]
fn a_batch_shared_with_a_sink_is_stored_as_one_held_alone() {
    let (alone, shared) = (store(900), store(900));
    for ts in [15_000, 30_000, 45_000] {
        let v = MetricValue::Int(ts);
        let sets: &[(&str, &[(&'static str, MetricValue)])] =
            &[("node:a", &[("cpu/usage", v), ("memory/usage", v)]), ("node:b", &[("uptime", v)])];
        alone.ingest(batch(ts, sets));
        let held = batch(ts, sets);
        shared.ingest(held.clone());
        assert_eq!(held.sets.len(), 2, "the sink's batch is untouched");
    }
    for (key, metric) in [("node:a", "cpu/usage"), ("node:a", "memory/usage"), ("node:b", "uptime")] {
        assert_eq!(values(&alone, key, metric).len(), 3, "{key} {metric}");
        assert_eq!(values(&alone, key, metric), values(&shared, key, metric), "{key} {metric}");
    }
    assert_eq!(alone.latest_batch().unwrap().sets, shared.latest_batch().unwrap().sets);
}

#[test]
fn sets_with_the_same_series_share_one_list_and_part_when_one_changes() {
    let st = store(60);
    let int = MetricValue::Int;
    let keys: Vec<String> = (0..100).map(|i| format!("node:n{i}")).collect();
    let two = [("cpu/usage", int(1)), ("memory/usage", int(2))];
    st.ingest(batch(0, &keys.iter().map(|k| (k.as_str(), &two[..])).collect::<Vec<_>>()));
    let shared = |a: &str, b: &str| {
        let inner = st.inner.read().unwrap();
        let (a, b) = (&inner.sets[a], &inner.sets[b]);
        (Arc::ptr_eq(&a.series, &b.series), Arc::ptr_eq(&a.order, &b.order))
    };
    assert_eq!(shared("node:n0", "node:n99"), (true, true), "100 sets alike hold one list and one order");
    // One set gets a series more, as rates come with a set's second batch: it alone moves to a list of its own.
    let three = [("cpu/usage", int(3)), ("cpu/usage_rate", MetricValue::Float(0.5)), ("memory/usage", int(4))];
    let two_again = [("cpu/usage", int(5)), ("memory/usage", int(6))];
    let mut sets: Vec<(&str, &[(&'static str, MetricValue)])> =
        keys.iter().map(|k| (k.as_str(), &two_again[..])).collect();
    sets[0].1 = &three;
    st.ingest(batch(15_000, &sets));
    assert_eq!(shared("node:n0", "node:n1"), (false, false));
    assert_eq!(shared("node:n1", "node:n99"), (true, true));
    assert_eq!(values(&st, "node:n0", "cpu/usage"), [(0, int(1)), (15_000, int(3))]);
    assert_eq!(values(&st, "node:n0", "cpu/usage_rate"), [(15_000, MetricValue::Float(0.5))]);
    assert_eq!(values(&st, "node:n0", "memory/usage"), [(0, int(2)), (15_000, int(4))]);
    assert_eq!(values(&st, "node:n1", "memory/usage"), [(0, int(2)), (15_000, int(6))]);
    assert_eq!(st.points("node:n1", "cpu/usage_rate", &Labels::new(), None, None), None);
    // Once every set has left the window, the sweep drops the lists that no set holds.
    for i in 2..=(2 + 60 / 15 + SWEEP_EVERY as i64) {
        st.ingest(batch(i * 15_000, &[]));
    }
    let inner = st.inner.read().unwrap();
    assert!(inner.sets.is_empty());
    assert_eq!((inner.series_lists.len(), inner.orders.len()), (0, 0));
}
