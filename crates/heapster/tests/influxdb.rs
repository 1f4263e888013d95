//! The InfluxDB sink against a real InfluxDB 1.x (`influxd` from the Debian package `influxdb`, installed by
//! scripts/test), started per test on free 127.0.0.1 ports with a temporary directory.
//!
//! Heapster runs standalone on this host; what InfluxDB stored is compared with what heapster's own model API
//! serves for the same timestamps, in each of the three schemas, and again across an InfluxDB outage.

mod common;

use common::Heapster;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// One `influxd` with its own config and data under a temporary directory; stopped and removed on drop.
struct Influxd {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Influxd {
    fn start() -> Influxd {
        let (port, rpc) = (free_port(), free_port());
        let dir = std::env::temp_dir().join(format!("heapster-influxd-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let config = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [continuous_queries]\n  enabled = false\n"
        );
        std::fs::write(dir.join("influxdb.conf"), config).unwrap();
        let mut me = Influxd { child: None, port, dir };
        me.launch();
        me
    }

    /// Starts (or restarts, on the same port and data) the server and waits until `/ping` answers.
    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.join("influxd.log")).unwrap();
        let child = Command::new("influxd")
            .arg("-config")
            .arg(self.dir.join("influxdb.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run influxd ({e}): scripts/test installs the Debian package influxdb"));
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        while http("GET", &format!("http://127.0.0.1:{}/ping", self.port)).0 != 204 {
            assert!(Instant::now() < until, "influxd did not answer /ping: see {}/influxd.log", self.dir.display());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The first statement's series of an InfluxQL query, timestamps as epoch milliseconds; none while the
    /// database does not exist yet.
    fn query(&self, db: &str, q: &str) -> Vec<Value> {
        let mut url = url::Url::parse(&format!("{}/query", self.url())).unwrap();
        url.query_pairs_mut().append_pair("db", db).append_pair("epoch", "ms").append_pair("q", q);
        let (status, body) = http("GET", url.as_str());
        assert_eq!(status, 200, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let error = v["results"][0]["error"].as_str().unwrap_or_default();
        if error.starts_with("database not found") {
            return Vec::new(); // Not written yet: the same as no rows, for the polling callers.
        }
        assert!(error.is_empty(), "{q}: {body}");
        v["results"][0]["series"].as_array().cloned().unwrap_or_default()
    }

    /// Runs a statement that changes something (`CREATE`, `DROP`), or writes line protocol when `lines` is set.
    fn post(&self, db: &str, q: &str, lines: Option<&str>) {
        let mut url =
            url::Url::parse(&format!("{}/{}", self.url(), if lines.is_some() { "write" } else { "query" })).unwrap();
        url.query_pairs_mut().append_pair("db", db);
        if lines.is_none() {
            url.query_pairs_mut().append_pair("q", q);
        }
        heapster_sources::ensure_crypto_provider();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (status, body) = rt.block_on(async {
            let r = reqwest::Client::new().post(url).body(lines.unwrap_or_default().to_owned()).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        });
        assert!(status == 200 || status == 204, "{q}: {status} {body}");
    }

    fn measurements(&self, db: &str) -> Vec<String> {
        let series = self.query(db, "SHOW MEASUREMENTS");
        let rows = series.first().and_then(|s| s["values"].as_array().cloned()).unwrap_or_default();
        rows.iter().filter_map(|r| r[0].as_str().map(String::from)).collect()
    }

    /// `field` of `measurement` for the node's own metric set: timestamp (ms) -> values at that timestamp.
    fn node_values(&self, db: &str, measurement: &str, field: &str, node: &str) -> BTreeMap<i64, Vec<f64>> {
        let q = format!(
            "SELECT \"{field}\" FROM \"{measurement}\" WHERE \"type\" = 'node' AND \"nodename\" = '{node}' \
             AND \"{field}\" > -1"
        );
        let mut out: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for s in self.query(db, &q) {
            for row in s["values"].as_array().unwrap() {
                out.entry(row[0].as_i64().unwrap()).or_default().push(row[1].as_f64().unwrap());
            }
        }
        out
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Status and body of one request; status 0 when nothing answered.
fn http(method: &str, url: &str) -> (u16, String) {
    heapster_sources::ensure_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let req = client.request(method.parse().unwrap(), url);
        match req.send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    })
}

/// The model API's points of one node metric: timestamp (ms) -> value.
fn model_points(h: &Heapster, node: &str, metric: &str) -> BTreeMap<i64, f64> {
    let v = h.json(&format!("/api/v1/model/nodes/{node}/metrics/{metric}"));
    v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let t = humantime::parse_rfc3339_weak(p["timestamp"].as_str().unwrap()).unwrap();
            (t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64, p["value"].as_f64().unwrap())
        })
        .collect()
}

/// Every model point up to the newest timestamp InfluxDB has is in InfluxDB, once, with the same value.
fn assert_same(what: &str, model: &BTreeMap<i64, f64>, stored: &BTreeMap<i64, Vec<f64>>, at_least: usize) -> usize {
    let newest = *stored.keys().last().unwrap_or_else(|| panic!("{what}: nothing stored"));
    let mut compared = 0;
    for (t, v) in model.range(..=newest) {
        let got = stored.get(t).unwrap_or_else(|| panic!("{what}: model point at {t} missing in InfluxDB: {stored:?}"));
        assert_eq!(got.len(), 1, "{what}: {t} stored {} times", got.len());
        assert!((got[0] - v).abs() <= v.abs() * 1e-12, "{what} at {t}: InfluxDB {} != model {v}", got[0]);
        compared += 1;
    }
    for t in stored.keys() {
        assert!(model.contains_key(t), "{what}: InfluxDB has {t}, the model API does not: {model:?}");
    }
    assert!(compared >= at_least, "{what}: only {compared} points compared");
    compared
}

/// Polls until `ok` holds, for at most `limit`.
fn wait(what: &str, limit: Duration, ok: impl Fn() -> bool) {
    let until = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < until, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
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

    // retention=7d made the legacy database with a 7-day default policy.
    let rps = influx.query("k8s_legacy", "SHOW RETENTION POLICIES ON \"k8s_legacy\"");
    assert_eq!(rps[0]["values"][0][1], "168h0m0s", "{rps:?}");

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
        let model = model_points(&h, node, metric);
        let n = assert_same(metric, &model, &influx.node_values("k8s", metric, "value", node), 6);
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
