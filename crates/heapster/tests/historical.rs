//! The historical API (`--historical_source=influxdb:...`) against a real InfluxDB 1.x (`influxd`, started per
//! test): heapster writes its node's metrics there through `--sink=influxdb:...` and reads them back through
//! `/api/v1/historical/...`; the answers are checked against the model API's points for the same timestamps.

mod common;

use common::Heapster;
use heapster_testkit::Influxd;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, UNIX_EPOCH};

fn millis(rfc3339: &str) -> i64 {
    let t = humantime::parse_rfc3339_weak(rfc3339).unwrap_or_else(|e| panic!("{rfc3339}: {e}"));
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

use heapster_model::time::rfc3339;

/// `metrics` of a `MetricResult`: timestamp (ms) -> the JSON value, kept as JSON so integer-ness is compared too.
fn points(v: &Value) -> BTreeMap<i64, Value> {
    v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (millis(p["timestamp"].as_str().unwrap()), p["value"].clone()))
        .collect()
}

#[test]
fn historical_api_reads_back_what_the_influxdb_sink_wrote() {
    let influx = Influxd::start();
    let node = "historical-e2e";
    let sink = format!("influxdb:{}?db=k8s", influx.url());
    let h = Heapster::start(&[
        "--metric_resolution=2s",
        &format!("--source=local?hostname={node}"),
        &format!("--sink={sink}"),
        &format!("--historical_source={sink}"),
    ]);
    let model_path = format!("/api/v1/model/nodes/{node}/metrics/memory/usage");
    h.wait_for(&model_path, Duration::from_secs(40), |v| v["metrics"].as_array().is_some_and(|m| m.len() >= 5));
    let model = points(&h.json(&model_path));
    let (first, last) = (*model.keys().next().unwrap(), *model.keys().last().unwrap());
    // The range ends at the newest model point; wait until InfluxDB has it.
    let (start, end) = (rfc3339(first), rfc3339(last));
    let hist_path = format!("/api/v1/historical/nodes/{node}/metrics/memory/usage?start={start}&end={end}");
    let until = Instant::now() + Duration::from_secs(15);
    let hist = loop {
        let v = h.json(&hist_path);
        if points(&v).contains_key(&last) || Instant::now() > until {
            break v;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let hist_points = points(&hist);
    assert_eq!(hist_points, model, "historical and model points differ");
    assert!(hist_points.values().all(Value::is_i64), "memory/usage stays an integer: {hist}");
    assert_eq!(millis(hist["latestTimestamp"].as_str().unwrap()), last);
    // A range inside the points: its bounds are inclusive.
    let second = *model.keys().nth(1).unwrap();
    let inner = points(&h.json(&format!(
        "/api/v1/historical/nodes/{node}/metrics/memory/usage?start={}&end={}",
        rfc3339(second),
        rfc3339(second)
    )));
    assert_eq!(inner.keys().copied().collect::<Vec<_>>(), [second]);

    // Aggregations over 4 s buckets, computed here from the model's points. InfluxDB aligns buckets to multiples
    // of their size since the epoch.
    let vals: BTreeMap<i64, i64> = model.iter().map(|(t, v)| (*t, v.as_i64().unwrap())).collect();
    let mut expected: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (t, v) in &vals {
        expected.entry(t - t.rem_euclid(4000)).or_default().push(*v);
    }
    let agg = h.json(&format!(
        "/api/v1/historical/nodes/{node}/metrics-aggregated/average,max,min,count,median,99-perc/memory/usage\
         ?start={start}&end={end}&bucket=4s"
    ));
    assert_eq!(agg["bucketSize"], 4_000_000_000i64, "{agg}");
    let buckets = agg["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), expected.len(), "{agg}");
    for (b, (t, vs)) in buckets.iter().zip(&expected) {
        assert_eq!(millis(b["timestamp"].as_str().unwrap()), *t, "{b}");
        assert_eq!(b["count"], vs.len(), "{b}");
        assert_eq!(b["maximum"]["intValue"], *vs.iter().max().unwrap(), "{b}");
        assert_eq!(b["minimum"]["intValue"], *vs.iter().min().unwrap(), "{b}");
        // With fewer than 50 points the 99th percentile (nearest rank) is the maximum.
        assert_eq!(b["percentiles"]["99"]["intValue"], *vs.iter().max().unwrap(), "{b}");
        let mean = vs.iter().map(|v| *v as f64).sum::<f64>() / vs.len() as f64;
        let got = b["average"]["floatValue"].as_f64().unwrap_or_else(|| panic!("average is a float: {b}"));
        assert!((got - mean).abs() <= mean.abs() * 1e-12, "{b}: average {got} != {mean}");
        let mut sorted = vs.clone();
        sorted.sort();
        let n = sorted.len();
        let median =
            if n % 2 == 1 { sorted[n / 2] as f64 } else { (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0 };
        let got = b["median"]["floatValue"].as_f64().unwrap_or_else(|| panic!("median is a float: {b}"));
        assert!((got - median).abs() <= median.abs() * 1e-12, "{b}: median {got} != {median}");
    }
    // One bucket over the whole range: it starts at `start`, and counts every point.
    let one = h.json(&format!(
        "/api/v1/historical/nodes/{node}/metrics-aggregated/count,max/memory/usage?start={start}&end={end}"
    ));
    assert_eq!(one["bucketSize"], 0);
    assert_eq!(one["buckets"].as_array().unwrap().len(), 1, "{one}");
    assert_eq!(millis(one["buckets"][0]["timestamp"].as_str().unwrap()), first);
    assert_eq!(one["buckets"][0]["count"], vals.len());
    assert_eq!(one["buckets"][0]["maximum"]["intValue"], *vals.values().max().unwrap());

    // Lists and names come from InfluxDB too.
    let nodes = h.json("/api/v1/historical/nodes/");
    assert!(nodes.as_array().unwrap().iter().any(|n| n == node), "{nodes}");
    let names = h.json(&format!("/api/v1/historical/nodes/{node}/metrics/"));
    for m in ["memory/usage", "cpu/usage_rate", "uptime"] {
        assert!(names.as_array().unwrap().iter().any(|n| n == m), "{m} not in {names}");
    }
    // Points are Heapster's uint64 (cpu/usage_rate in whole millicores, fractions truncated); the cluster is
    // there as well.
    let rate = h.json(&format!("/api/v1/historical/nodes/{node}/metrics/cpu/usage_rate?start={start}&end={end}"));
    assert!(points(&rate).values().all(Value::is_u64), "{rate}");
    let rx = h.json(&format!("/api/v1/historical/nodes/{node}/metrics/network/rx_rate?start={start}&end={end}"));
    assert!(points(&rx).values().all(Value::is_u64), "{rx}");
    let cluster = h.json(&format!("/api/v1/historical/metrics/memory/usage?start={start}&end={end}"));
    assert!(!points(&cluster).is_empty(), "{cluster}");

    // Mistakes are named: no start, an unknown node or metric, an unknown aggregation, a bad bucket.
    for (path, status, says) in [
        (format!("/api/v1/historical/nodes/{node}/metrics/memory/usage"), 400, "start is required"),
        (format!("/api/v1/historical/nodes/nope/metrics/memory/usage?start={start}"), 404, "node \"nope\" not found"),
        (format!("/api/v1/historical/nodes/{node}/metrics/memory/nope?start={start}"), 404, "metric \"memory/nope\""),
        (
            format!("/api/v1/historical/nodes/{node}/metrics-aggregated/avg/memory/usage?start={start}"),
            400,
            "unknown aggregation \"avg\"",
        ),
        (
            format!("/api/v1/historical/nodes/{node}/metrics-aggregated/max/memory/usage?start={start}&bucket=1w"),
            400,
            "bucket=\"1w\"",
        ),
    ] {
        let (s, body) = h.get(&path);
        assert_eq!(s, status, "{path}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
        assert!(error["error"].as_str().unwrap().contains(says), "{path}: {body}");
    }
}
