//! The cardinality governor end to end: the heapster binary scraping a simulated cluster whose pods each carry a
//! build id of their own (`labels` has one value per pod), writing into a real InfluxDB 1.x (`influxd`, installed
//! by scripts/test) through two sinks: one with a series budget (`max_series=150`), one that drops the per-pod
//! labels (`labels_deny=labels,pod_name,pod_id`), so that pods' containers of one app on one node merge.
//!
//! What InfluxDB holds is compared with what the governor says it wrote: the same series in every round, exactly
//! the budget's count, and the cut counted exactly (`heapster_sink_series_cut_total` grows by offered - written
//! per round). `/api/v1/cardinality` is read against `/metrics`.

mod common;

use common::Heapster;
use heapster_sim::{SimConfig, Simulation};
use heapster_testkit::{Influxd, wait};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const BUDGET: usize = 150;

/// The sum of every sample of family `name` whose labels include `sink="<sink>"`.
fn sample(text: &str, name: &str, sink: &str) -> f64 {
    let sink = format!("sink=\"{sink}\"");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&sink))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// One reading of a sink's governor families.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Governed {
    rounds: f64,
    cut: f64,
    merged: f64,
    offered: f64,
    written: f64,
}

fn governed(h: &Heapster, sink: &str) -> Governed {
    let (_, text) = h.get("/metrics");
    Governed {
        rounds: sample(&text, "heapster_sink_governor_rounds_total", sink),
        cut: sample(&text, "heapster_sink_series_cut_total", sink),
        merged: sample(&text, "heapster_sink_series_merged_total", sink),
        offered: sample(&text, "heapster_sink_series_offered", sink),
        written: sample(&text, "heapster_sink_series_written", sink),
    }
}

/// Two readings one round apart (polled every 50 ms; a round is 2 s).
fn one_round(h: &Heapster, sink: &str) -> (Governed, Governed) {
    let a = governed(h, sink);
    let b = std::cell::Cell::new(a);
    wait("the next round", Duration::from_secs(10), || {
        b.set(governed(h, sink));
        b.get().rounds > a.rounds
    });
    let b = b.get();
    assert_eq!(b.rounds, a.rounds + 1.0, "{a:?} {b:?}");
    (a, b)
}

/// Every series InfluxDB holds in `db` (measurement and tags, as text) with the timestamps of its points.
fn stored(influx: &Influxd, db: &str) -> BTreeMap<String, BTreeSet<i64>> {
    let mut out = BTreeMap::new();
    for s in influx.query(db, "SELECT \"value\" FROM /.*/ GROUP BY *") {
        let tags: BTreeMap<String, String> = serde_json::from_value(s["tags"].clone()).unwrap_or_default();
        let key = format!("{}{tags:?}", s["name"].as_str().unwrap());
        let times = s["values"].as_array().unwrap().iter().map(|r| r[0].as_i64().unwrap()).collect();
        out.insert(key, times);
    }
    out
}

/// Per timestamp, the series with a point at it.
fn by_time(series: &BTreeMap<String, BTreeSet<i64>>) -> BTreeMap<i64, BTreeSet<&str>> {
    let mut out: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
    for (k, times) in series {
        for t in times {
            out.entry(*t).or_default().insert(k.as_str());
        }
    }
    out
}

fn show_series_count(influx: &Influxd, db: &str) -> usize {
    influx.query(db, "SHOW SERIES").first().and_then(|s| s["values"].as_array().map(Vec::len)).unwrap_or(0)
}

#[test]
fn a_series_budget_and_a_deny_list_hold_in_a_real_influxdb() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let sim = rt
        .block_on(Simulation::start(SimConfig {
            nodes: 1,
            pods_per_node: 30,
            pod_build_ids: true,
            ..Default::default()
        }))
        .unwrap();
    let influx = Influxd::start();
    let base = influx.url();
    let h = Heapster::start(&[
        &common::sim_source(&sim),
        "--metric_resolution=2s",
        &format!("--sink=influxdb:{base}?db=gov&max_series={BUDGET}"),
        &format!("--sink=influxdb:{base}?db=gov_deny&labels_deny=labels,pod_name,pod_id"),
    ]);
    let (gov, deny) = (format!("influxdb:{base}/?db=gov"), format!("influxdb:{base}/?db=gov_deny"));
    wait("five governed rounds", Duration::from_secs(60), || governed(&h, &gov).rounds >= 5.0);

    // The cut, counted exactly: one round's growth of the counter is that round's offered - written.
    let (a, b) = one_round(&h, &gov);
    assert_eq!(b.written, BUDGET as f64, "{b:?}");
    assert!(b.offered > 2.0 * BUDGET as f64, "30 pods with their containers make more than twice the budget: {b:?}");
    assert_eq!(b.cut - a.cut, b.offered - b.written, "{a:?} {b:?}");
    assert_eq!(b.merged, 0.0);

    // InfluxDB: from the third round on (rates start in the second), the same BUDGET series at every timestamp.
    wait("the round in InfluxDB", Duration::from_secs(10), || {
        by_time(&stored(&influx, "gov")).len() as f64 >= b.rounds
    });
    let series = stored(&influx, "gov");
    let rounds = by_time(&series);
    let steady: Vec<_> = rounds.iter().skip(2).collect();
    assert!(steady.len() >= 3, "{:?}", rounds.keys());
    for (t, s) in &steady {
        assert_eq!(s.len(), BUDGET, "at {t}");
        assert_eq!(*s, steady[0].1, "at {t}: not the series of {}", steady[0].0);
    }
    // Only the second round may have evicted pod series for the roll-ups' new rates: what InfluxDB holds is the
    // budget and those.
    let all = show_series_count(&influx, "gov");
    assert_eq!(all, series.len());
    eprintln!(
        "governed sink: {} series offered per round, {BUDGET} written (the same at {} timestamps), {all} in \
         InfluxDB in all",
        b.offered,
        steady.len()
    );
    let first_two: BTreeSet<i64> = rounds.keys().take(2).copied().collect();
    for (k, times) in &series {
        assert!(steady[0].1.contains(k.as_str()) || times.is_subset(&first_two), "{k} written at {times:?}");
    }
    // Roll-ups first (one node's and the cluster's take about 100), then pods: their build ids reach InfluxDB in `labels`.
    assert!(steady[0].1.iter().any(|k| k.contains("build:b")), "{:?}", steady[0].1);

    // The deny list: no series cut, pods' containers merged, InfluxDB holds what the governor wrote per round.
    let (_, d) = one_round(&h, &deny);
    assert!(d.merged > 0.0 && d.offered == d.written, "{d:?}");
    assert_eq!(sample(&h.get("/metrics").1, "heapster_sink_series_cut_total", &deny), 0.0);
    let deny_series = stored(&influx, "gov_deny");
    let deny_rounds = by_time(&deny_series);
    let (t, last) = deny_rounds.iter().rev().nth(1).unwrap();
    assert_eq!(last.len() as f64, d.written, "at {t}");
    let keys = influx.query("gov_deny", "SHOW TAG KEYS");
    let keys = serde_json::to_string(&keys).unwrap();
    assert!(!keys.contains("\"labels\"") && !keys.contains("\"pod_name\""), "{keys}");

    // /api/v1/cardinality agrees with /metrics.
    let v: Value = h.json("/api/v1/cardinality?top=5");
    let sinks = v["sinks"].as_array().unwrap();
    assert_eq!(sinks.len(), 2, "{v}");
    let g = &sinks[0];
    assert_eq!(g["sink"], gov.as_str());
    assert_eq!(g["budget"], serde_json::json!({"max_series": BUDGET}));
    let now = governed(&h, &gov);
    let (offered, written, cut) = (g["offered"].as_f64().unwrap(), g["written"].as_f64(), g["cut"].as_f64());
    assert_eq!((offered, written, cut), (now.offered, Some(BUDGET as f64), Some(now.offered - BUDGET as f64)), "{g}");
    let metrics = g["top_metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 5);
    let counts: Vec<u64> = metrics.iter().map(|m| m["offered"].as_u64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{g}");
    let labels = g["top_labels"].as_array().unwrap();
    let build = labels.iter().find(|l| l["label"] == "labels").unwrap_or_else(|| panic!("{g}"));
    assert!(build["values"].as_u64().unwrap() >= 30, "one value per pod: {g}");
    assert_eq!(sinks[1]["budget"], serde_json::json!({"labels_deny": ["labels", "pod_name", "pod_id"]}));
    assert!(sinks[1]["merged"].as_u64().unwrap() > 0, "{v}");
    drop(h);
    drop(sim);
}
