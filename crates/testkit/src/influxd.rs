//! InfluxDB 1.x (`influxd`, Debian package `influxdb`), and the InfluxQL the tests ask it.

use crate::{Probe, Server, free_port, http};
use serde_json::Value;
use std::collections::BTreeMap;

/// One `influxd` with its own config and data; stopped and removed on drop.
pub struct Influxd {
    server: Server,
    pub port: u16,
}

impl Influxd {
    /// Whether `influxd` is installed, for a benchmark that skips the real server without it.
    pub fn installed() -> bool {
        crate::find_program(&["influxd"]).is_some()
    }

    /// Starts `influxd` on a free port (and a free one for its RPC service) and waits until `/ping` answers.
    pub fn start() -> Influxd {
        Self::start_with("")
    }

    /// As [`Influxd::start`], with `auth-enabled = true` and one admin user, `user` with password `password`
    /// (made as InfluxDB lets the first one be made, without credentials): requests without them answer 401.
    pub fn start_with_auth(user: &str, password: &str) -> Influxd {
        let influxd = Self::start_with("  auth-enabled = true\n");
        let q = format!("CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES");
        let mut url = url::Url::parse(&format!("{}/query", influxd.url())).unwrap();
        url.query_pairs_mut().append_pair("q", &q);
        let (status, body) = http("POST", url.as_str(), None);
        assert_eq!(status, 200, "{q}: {body}");
        influxd
    }

    fn start_with(http_options: &str) -> Influxd {
        let server = Server::new(&["influxd"], "the Debian package influxdb");
        let (port, rpc) = (free_port(), free_port());
        let d = server.dir().display();
        // Nothing kept outside the directory; no reporting, monitoring or query logs to slow a test down.
        let config = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n{http_options}\
             [monitor]\n  store-enabled = false\n\
             [continuous_queries]\n  enabled = false\n"
        );
        let conf = server.dir().join("influxdb.conf");
        std::fs::write(&conf, config).unwrap();
        let ping = Probe::Http { url: format!("http://127.0.0.1:{port}/ping"), status: 204 };
        let server = server.start([std::ffi::OsString::from("-config"), conf.into()], ping);
        Influxd { server, port }
    }

    /// Starts the server again after [`Influxd::stop`], on the same port and data.
    pub fn launch(&mut self) {
        self.server.launch();
    }

    /// Kills the server (an outage); [`Influxd::launch`] brings it back.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `influxd version`'s answer, for benchmark reports.
    pub fn version(&self) -> String {
        let out = std::process::Command::new(self.server.program()).arg("version").output().expect("influxd version");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The server's CPU seconds so far (see [`Server::cpu_seconds`]).
    pub fn cpu_seconds(&self) -> f64 {
        self.server.cpu_seconds()
    }

    /// The whole answer of `GET /query` for one InfluxQL query, timestamps as epoch milliseconds: `results[i]`
    /// with `series` or `error` per statement. Panics only when the HTTP request itself fails.
    pub fn query_json(&self, db: &str, q: &str) -> Value {
        let mut url = url::Url::parse(&format!("{}/query", self.url())).unwrap();
        url.query_pairs_mut().append_pair("db", db).append_pair("epoch", "ms").append_pair("q", q);
        let (status, body) = http("GET", url.as_str(), None);
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
        let (status, body) = http("POST", url.as_str(), Some(lines.unwrap_or_default().as_bytes()));
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
