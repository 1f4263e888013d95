//! A real InfluxDB 1.x (`influxd` from the Debian package `influxdb`, installed by scripts/test), started per test
//! on free 127.0.0.1 ports with a temporary directory, and the HTTP calls the tests make to it.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `influxd` with its own config and data under a temporary directory; stopped and removed on drop.
pub struct Influxd {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Influxd {
    pub fn start() -> Influxd {
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
    pub fn launch(&mut self) {
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

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The whole answer of `GET /query` for one InfluxQL query, timestamps as epoch milliseconds: `results[i]`
    /// with `series` or `error` per statement. Panics only when the HTTP request itself fails.
    pub fn query_json(&self, db: &str, q: &str) -> Value {
        let mut url = url::Url::parse(&format!("{}/query", self.url())).unwrap();
        url.query_pairs_mut().append_pair("db", db).append_pair("epoch", "ms").append_pair("q", q);
        let (status, body) = http("GET", url.as_str());
        assert!(status == 200 || status == 400, "{q}: {status} {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{q}: not JSON ({e}): {body}"))
    }

    /// The first statement's series of an InfluxQL query, timestamps as epoch milliseconds; none while the
    /// database does not exist yet.
    pub fn query(&self, db: &str, q: &str) -> Vec<Value> {
        let v = self.query_json(db, q);
        let error = v["results"][0]["error"].as_str().or(v["error"].as_str()).unwrap_or_default();
        if error.starts_with("database not found") {
            return Vec::new(); // Not written yet: the same as no rows, for the polling callers.
        }
        assert!(error.is_empty(), "{q}: {v}");
        v["results"][0]["series"].as_array().cloned().unwrap_or_default()
    }

    /// Runs a statement that changes something (`CREATE`, `DROP`), or writes line protocol when `lines` is set.
    pub fn post(&self, db: &str, q: &str, lines: Option<&str>) {
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

    pub fn measurements(&self, db: &str) -> Vec<String> {
        let series = self.query(db, "SHOW MEASUREMENTS");
        let rows = series.first().and_then(|s| s["values"].as_array().cloned()).unwrap_or_default();
        rows.iter().filter_map(|r| r[0].as_str().map(String::from)).collect()
    }

    /// `field` of `measurement` for the node's own metric set: timestamp (ms) -> values at that timestamp.
    pub fn node_values(&self, db: &str, measurement: &str, field: &str, node: &str) -> BTreeMap<i64, Vec<f64>> {
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
pub fn http(method: &str, url: &str) -> (u16, String) {
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
