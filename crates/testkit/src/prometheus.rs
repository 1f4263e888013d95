//! Prometheus (`prometheus`, Debian package of that name) with its remote-write receiver on, for the Prometheus
//! remote-write sink: what it stored is read back with PromQL.

use crate::{Probe, Server, free_port, http};
use serde_json::Value;

/// One Prometheus that scrapes nothing and takes remote writes at `/api/v1/write`; stopped and removed on drop.
pub struct Prometheus {
    _server: Server,
    pub port: u16,
}

impl Prometheus {
    /// Starts Prometheus on a free port and waits until `/-/ready` answers.
    pub fn start() -> Prometheus {
        // No scrape jobs: every sample in it came through remote write.
        Prometheus::with_config("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
    }

    /// Starts Prometheus with `config` as its `prometheus.yml` (scrape jobs, intervals), so a test can have it
    /// scrape heapster; remote write stays on.
    pub fn with_config(config: &str) -> Prometheus {
        let server = Server::new(&["prometheus"], "the Debian package prometheus");
        let port = free_port();
        let dir = server.dir().to_owned();
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let ready = Probe::Http { url: format!("http://127.0.0.1:{port}/-/ready"), status: 200 };
        let args = [
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-remote-write-receiver".to_owned(),
        ];
        Prometheus { _server: server.start(args, ready), port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where a remote-write sink sends.
    pub fn remote_write_url(&self) -> String {
        format!("{}/api/v1/write", self.url())
    }

    /// The `data.result` of an instant PromQL query (`/api/v1/query`).
    pub fn query(&self, promql: &str) -> Vec<Value> {
        instant_query(&self.url(), promql, None)
    }

    /// The `data.result` of an instant PromQL query evaluated at `time` (Unix seconds).
    pub fn query_at(&self, promql: &str, time: f64) -> Vec<Value> {
        instant_query(&self.url(), promql, Some(time))
    }
}

/// The `data.result` of `GET base/api/v1/query`, the PromQL HTTP API that Prometheus and VictoriaMetrics share;
/// `nocache=1` keeps VictoriaMetrics from answering a poll from the result it cached before the data arrived.
pub fn instant_query(base: &str, promql: &str, time: Option<f64>) -> Vec<Value> {
    let mut url = url::Url::parse(&format!("{base}/api/v1/query")).unwrap();
    url.query_pairs_mut().append_pair("query", promql).append_pair("nocache", "1");
    if let Some(t) = time {
        url.query_pairs_mut().append_pair("time", &format!("{t:.3}"));
    }
    let (status, body) = http("GET", url.as_str(), None);
    assert_eq!(status, 200, "{promql}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{promql}: not JSON ({e}): {body}"));
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}
