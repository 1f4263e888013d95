//! The InfluxDB sink against a real InfluxDB 1.x (`influxd` from the Debian package `influxdb`, installed by
//! scripts/test), started per test on free 127.0.0.1 ports with a temporary directory.
//!
//! Heapster runs standalone on this host; what InfluxDB stored is compared with what heapster's own model API
//! serves for the same timestamps, in each of the three schemas, and again across an InfluxDB outage. Bodies are
//! gzip-compressed by default, so these tests write gzip to influxd; one test writes both ways.
//!
//! The InfluxDB 2.x/3.x write API (`/api/v2/write`) is tested against VictoriaMetrics (Debian package
//! `victoria-metrics`, also installed by scripts/test), which accepts that API: no InfluxDB 2 or 3 server can be
//! installed here.

mod common;

use common::{Heapster, model_points};
use heapster_testkit::{Influxd, VictoriaMetrics, wait};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

/// Every model point up to the newest timestamp InfluxDB has is in InfluxDB, once, with the same value.
fn assert_same(what: &str, model: &BTreeMap<i64, f64>, stored: &BTreeMap<i64, Vec<f64>>, at_least: usize) -> usize {
    assert_within(what, model, stored, at_least, 1e-12)
}

/// [`assert_same`] with a relative tolerance of `rel` on values.
fn assert_within(
    what: &str,
    model: &BTreeMap<i64, f64>,
    stored: &BTreeMap<i64, Vec<f64>>,
    at_least: usize,
    rel: f64,
) -> usize {
    let newest = *stored.keys().last().unwrap_or_else(|| panic!("{what}: nothing stored"));
    let mut compared = 0;
    for (t, v) in model.range(..=newest) {
        let got = stored.get(t).unwrap_or_else(|| panic!("{what}: model point at {t} missing in InfluxDB: {stored:?}"));
        assert_eq!(got.len(), 1, "{what}: {t} stored {} times", got.len());
        assert!((got[0] - v).abs() <= v.abs() * rel, "{what} at {t}: InfluxDB {} != model {v}", got[0]);
        compared += 1;
    }
    // A batch that landed between reading the model API and reading the server is only in the server, newer than
    // the newest model point: not compared.
    let newest_model = model.keys().last().copied().unwrap_or(i64::MIN);
    for t in stored.keys().filter(|t| **t <= newest_model) {
        assert!(model.contains_key(t), "{what}: InfluxDB has {t}, the model API does not: {model:?}");
    }
    assert!(compared >= at_least, "{what}: only {compared} points compared");
    compared
}

/// One heapster, three sinks into one InfluxDB: the default schema, `withfields=true` and `schema=legacy`, each
/// in its own database.
#[test]
fn heapster_schemas_in_a_real_influxdb_match_the_model_api() {
    let influx = Influxd::start();
    let node = "influx-e2e";
    let base = influx.url();
    // A database where `uptime` already holds floats: heapster's integer uptime is a field type conflict there.
    influx.post("", "CREATE DATABASE \"k8s_conflict\"", None);
    // (Now, not at some old time: InfluxDB checks field types per shard, and shards are per week.)
    let now_ns = std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    influx.post("k8s_conflict", "", Some(&format!("uptime,type=node value=1.5 {now_ns}")));
    let h = Heapster::start(&[
        &format!("--sink=influxdb:{base}?db=k8s_conflict"),
        "--metric_resolution=2s",
        &format!("--source=local?hostname={node}"),
        &format!("--sink=influxdb:{base}?db=k8s"),
        &format!("--sink=influxdb:{base}?db=k8s_fields&withfields=true&cluster_name=e2e"),
        &format!("--sink=influxdb:{base}?db=k8s_legacy&schema=legacy&retention=7d"),
    ]);
    h.wait_for(&format!("/api/v1/model/nodes/{node}/metrics/cpu/usage_rate"), Duration::from_secs(30), |v| {
        v["metrics"].as_array().is_some_and(|m| m.len() >= 3)
    });
    // The sinks write right after the store; give the newest batch a moment to arrive.
    wait("the newest batch in every database", Duration::from_secs(10), || {
        let newest = *model_points(&h, node, "memory/usage").keys().last().unwrap();
        [
            ("k8s", "memory/usage", "value"),
            ("k8s_fields", "memory", "usage"),
            ("k8s_legacy", "memory/usage_bytes_gauge", "value"),
        ]
        .iter()
        .all(|(db, m, f)| influx.node_values(db, m, f, node).contains_key(&newest))
    });

    // Every metric of the node is a measurement, named as each schema says.
    let node_metrics: Vec<String> = h
        .json(&format!("/api/v1/model/nodes/{node}/metrics/"))
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    let default = influx.measurements("k8s");
    let fields = influx.measurements("k8s_fields");
    let legacy = influx.measurements("k8s_legacy");
    for m in &node_metrics {
        assert!(default.contains(m), "default schema lacks {m}: {default:?}");
        let group = m.split('/').next().unwrap();
        assert!(fields.contains(&group.to_owned()), "withfields lacks {group}: {fields:?}");
    }
    for m in [
        "cpu/usage_ns_cumulative",
        "cpu/usage_rate_millicores_gauge",
        "memory/usage_bytes_gauge",
        "uptime_ms_cumulative",
    ] {
        assert!(legacy.contains(&m.to_owned()), "legacy lacks {m}: {legacy:?}");
    }
    assert!(!legacy.iter().any(|m| m == "memory/usage"), "legacy uses only the seed's names: {legacy:?}");

    // Values and timestamps: the same as the model API serves.
    for (metric, group, field, legacy_name) in [
        ("memory/usage", "memory", "usage", "memory/usage_bytes_gauge"),
        ("cpu/usage_rate", "cpu", "usage_rate", "cpu/usage_rate_millicores_gauge"),
        ("uptime", "uptime", "value", "uptime_ms_cumulative"),
    ] {
        let model = model_points(&h, node, metric);
        assert_same(metric, &model, &influx.node_values("k8s", metric, "value", node), 3);
        assert_same(&format!("{group}.{field}"), &model, &influx.node_values("k8s_fields", group, field, node), 3);
        assert_same(legacy_name, &model, &influx.node_values("k8s_legacy", legacy_name, "value", node), 3);
    }

    // Tags: Heapster's blacklist out of the default schema, cluster_name in; the legacy schema keeps hostname.
    let tag_keys = |db: &str, m: &str| -> Vec<String> {
        let s = influx.query(db, &format!("SHOW TAG KEYS FROM \"{m}\""));
        s[0]["values"].as_array().unwrap().iter().map(|r| r[0].as_str().unwrap().to_owned()).collect()
    };
    let keys = tag_keys("k8s", "memory/usage");
    assert!(keys.contains(&"cluster_name".into()) && keys.contains(&"nodename".into()), "{keys:?}");
    assert!(!keys.contains(&"hostname".into()), "hostname is on Heapster's blacklist: {keys:?}");
    let clusters = influx.query("k8s_fields", "SHOW TAG VALUES FROM \"memory\" WITH KEY = \"cluster_name\"");
    assert_eq!(clusters[0]["values"][0][1], "e2e", "{clusters:?}");
    assert!(tag_keys("k8s_legacy", "memory/usage_bytes_gauge").contains(&"hostname".into()));

    // retention=7d made the legacy database with a 7-day default policy, named "default" as Heapster named it.
    let rps = influx.query("k8s_legacy", "SHOW RETENTION POLICIES ON \"k8s_legacy\"");
    assert_eq!(rps[0]["values"][0][0], "default", "{rps:?}");
    assert_eq!(rps[0]["values"][0][1], "168h0m0s", "{rps:?}");
    let rps = influx.query("k8s", "SHOW RETENTION POLICIES ON \"k8s\"");
    assert_eq!((&rps[0]["values"][0][0], &rps[0]["values"][0][4]), (&"default".into(), &true.into()), "{rps:?}");

    // The conflicting points are reported by cause and not retried; the rest of each batch is stored.
    let (_, metrics) = h.get("/metrics");
    assert!(metrics.contains("heapster_sink_influxdb_points_written_total"), "{metrics}");
    let rejected = metrics
        .lines()
        .find(|l| l.starts_with("heapster_sink_influxdb_points_rejected_total{") && l.contains("k8s_conflict"))
        .unwrap_or_else(|| panic!("no rejected points counted: {metrics}"));
    assert!(rejected.contains("cause=\"field type conflict\""), "{rejected}");
    let model = model_points(&h, node, "memory/usage");
    assert_same(
        "memory/usage beside a conflict",
        &model,
        &influx.node_values("k8s_conflict", "memory/usage", "value", node),
        3,
    );
    let retries =
        metrics.lines().find(|l| l.starts_with("heapster_sink_export_retries_total{") && l.contains("k8s_conflict"));
    assert!(retries.is_none_or(|l| l.ends_with(" 0")), "a rejection is not retried: {retries:?}");
}

/// InfluxDB stopped for several periods while heapster runs: once it is back, every point the model API has is
/// in InfluxDB exactly once, because the sink's queue held the batches and retried them in order.
#[test]
fn an_influxdb_outage_loses_no_point() {
    let mut influx = Influxd::start();
    let node = "influx-outage";
    let h = Heapster::start(&[
        "--metric_resolution=2s",
        &format!("--source=local?hostname={node}"),
        &format!("--sink=influxdb:{}?db=k8s", influx.url()),
    ]);
    wait("first points in InfluxDB", Duration::from_secs(30), || {
        !influx.node_values("k8s", "uptime", "value", node).is_empty()
    });
    influx.stop();
    let down_since = model_points(&h, node, "uptime").len();
    // Four periods or more without InfluxDB.
    std::thread::sleep(Duration::from_secs(9));
    let missed = model_points(&h, node, "uptime").len() - down_since;
    assert!(missed >= 3, "only {missed} rounds ran during the outage");
    influx.launch();
    wait("the newest batch after the outage", Duration::from_secs(40), || {
        let newest = *model_points(&h, node, "uptime").keys().last().unwrap();
        influx.node_values("k8s", "uptime", "value", node).contains_key(&newest)
    });
    for metric in ["uptime", "memory/usage", "cpu/usage"] {
        // InfluxDB first: a batch written between the two reads is then only in the model API, past the newest
        // stored point, where it is not compared.
        let stored = influx.node_values("k8s", metric, "value", node);
        let model = model_points(&h, node, metric);
        // At least the rounds before and during the outage; how many more ran is the machine's business.
        let n = assert_same(metric, &model, &stored, 4);
        assert!(n >= down_since + missed, "{metric}: {n} points compared");
    }

    // The database dropped while heapster runs: the sink makes it again and goes on.
    influx.post("", "DROP DATABASE \"k8s\"", None);
    let dropped_at = *model_points(&h, node, "uptime").keys().last().unwrap();
    wait("writes after DROP DATABASE", Duration::from_secs(20), || {
        influx.node_values("k8s", "uptime", "value", node).keys().any(|t| *t > dropped_at)
    });

    let (_, metrics) = h.get("/metrics");
    let retried = metrics.lines().any(|l| l.starts_with("heapster_sink_export_retries_total{") && !l.ends_with(" 0"));
    assert!(retried, "retries counted: {metrics}");
    assert!(!metrics.lines().any(|l| l.starts_with("heapster_sink_batches_dropped_total{") && !l.ends_with(" 0")));
}

/// The sink's bodies are gzip-compressed unless `gzip=false`; influxd 1.6 stores both. The same compressed bytes
/// without `Content-Encoding: gzip` are refused, so the stored points did go through influxd's decompression.
#[test]
fn influxd_stores_gzip_bodies_and_plain_ones() {
    use heapster_model::{DataBatch, MetricSet, MetricValue};
    use heapster_sinks::DataSink;
    let influx = Influxd::start();
    let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut set = MetricSet::default();
    set.labels.insert("type", "node");
    set.labels.insert("nodename", "gz");
    set.set("uptime", MetricValue::Int(42));
    set.set("network/rx_rate", MetricValue::Float(1.25));
    let mut batch = DataBatch { timestamp: now, ..Default::default() };
    batch.sets.insert("node:gz".into(), set);
    let batch = std::sync::Arc::new(batch);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (db, opts) in [("k8s_gzip", ""), ("k8s_plain", "&gzip=false")] {
        let uri = format!("influxdb:{}?db={db}{opts}", influx.url()).parse().unwrap();
        let sink = heapster_sinks::influxdb::InfluxdbSink::from_uri(&uri).unwrap();
        rt.block_on(sink.export(batch.clone())).unwrap_or_else(|e| panic!("{db}: {e}"));
        assert_eq!(influx.node_values(db, "uptime", "value", "gz"), BTreeMap::from([(now, vec![42.0])]), "{db}");
        assert_eq!(influx.node_values(db, "network/rx_rate", "value", "gz"), BTreeMap::from([(now, vec![1.25])]));
    }
    let packed = heapster_sinks::influxdb::encoder::gzip(format!("uptime,type=node value=1i {now}\n").as_bytes());
    // Over a bare socket: influxd repeats the unparsable bytes in an `X-Influxdb-Error` header, which HTTP
    // clients refuse to read.
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", influx.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /write?db=k8s_gzip&precision=ms HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        packed.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&packed).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 400 ") && answer.contains("unable to parse"),
        "gzip bytes without Content-Encoding are not line protocol: {answer}"
    );
}

/// `token=`/`org=`/`bucket=` make the sink write through the InfluxDB 2.x/3.x API (`/api/v2/write`, no
/// `CREATE DATABASE`). VictoriaMetrics takes that API: what it stored, read back through its export API, is what
/// the model API serves, in the default schema (gzip, with a token and org, which VictoriaMetrics without
/// authentication ignores) and with `withfields=true` (`gzip=false`, bucket only).
#[test]
fn heapster_writes_through_the_2x_api_into_victoriametrics() {
    let vm = VictoriaMetrics::start();
    let node = "influx-v2";
    let base = vm.url();
    let h = Heapster::start(&[
        "--metric_resolution=2s",
        &format!("--source=local?hostname={node}"),
        &format!("--sink=influxdb:{base}?token=heapster-token&org=acme&bucket=k8s"),
        &format!("--sink=influxdb:{base}?bucket=k8s&withfields=true&cluster_name=vm&gzip=false"),
    ]);
    h.wait_for(&format!("/api/v1/model/nodes/{node}/metrics/cpu/usage_rate"), Duration::from_secs(30), |v| {
        v["metrics"].as_array().is_some_and(|m| m.len() >= 3)
    });
    wait("the newest batch in VictoriaMetrics", Duration::from_secs(15), || {
        let newest = *model_points(&h, node, "memory/usage").keys().last().unwrap();
        vm.node_values("memory/usage_value", node, "default").contains_key(&newest)
            && vm.node_values("memory_usage", node, "vm").contains_key(&newest)
    });

    // Values and timestamps: the same as the model API serves. (VictoriaMetrics keeps float values to about 15
    // significant digits.)
    for (metric, withfields_name) in
        [("memory/usage", "memory_usage"), ("cpu/usage_rate", "cpu_usage_rate"), ("uptime", "uptime_value")]
    {
        let model = model_points(&h, node, metric);
        let name = format!("{metric}_value");
        assert_within(&name, &model, &vm.node_values(&name, node, "default"), 3, 1e-9);
        assert_within(withfields_name, &model, &vm.node_values(withfields_name, node, "vm"), 3, 1e-9);
    }

    // Every metric of the node arrived, as `<measurement>_<field>`.
    let names = vm.names();
    let node_metrics = h.json(&format!("/api/v1/model/nodes/{node}/metrics/"));
    for m in node_metrics.as_array().unwrap().iter().map(|m| m.as_str().unwrap()) {
        assert!(names.contains(&format!("{m}_value")), "default schema lacks {m}_value: {names:?}");
        let (group, field) = m.split_once('/').unwrap_or((m, "value"));
        assert!(names.contains(&format!("{group}_{field}")), "withfields lacks {group}_{field}: {names:?}");
    }

    // Tags as in the 1.x API: Heapster's blacklist out, cluster_name in.
    let series = vm.export(&format!("{{__name__=\"memory/usage_value\",nodename=\"{node}\",type=\"node\"}}"));
    let labels = &series[0].0;
    assert_eq!(labels.get("cluster_name").map(String::as_str), Some("default"), "{labels:?}");
    assert!(!labels.contains_key("hostname"), "hostname is on Heapster's blacklist: {labels:?}");

    // Both sinks wrote and nothing was refused.
    let (_, metrics) = h.get("/metrics");
    let written = |dest: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with("heapster_sink_influxdb_points_written_total{") && l.contains(dest))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(written("org=acme&bucket=k8s") > 0.0, "{metrics}");
    assert!(written("?bucket=k8s") > 0.0, "{metrics}");
    assert!(!metrics.contains("heapster_sink_influxdb_points_rejected_total{"), "{metrics}");
}
