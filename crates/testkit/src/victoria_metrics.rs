//! VictoriaMetrics (`victoria-metrics`, Debian package of that name; `victoria-metrics-prod` in upstream's release
//! archives). It speaks the InfluxDB 2.x write API (`/api/v2/write`), storing line protocol `measurement field=`
//! as the metric `measurement_field` and tags as labels, and Prometheus remote write; its export API reads back
//! raw samples.

use crate::{Probe, Server, free_port, http};
use serde_json::Value;
use std::collections::BTreeMap;

/// Samples of one series: timestamp (ms) -> the values stored at it (more than one if written twice).
pub type Points = BTreeMap<i64, Vec<f64>>;

/// One VictoriaMetrics with its own data directory; stopped and removed on drop.
pub struct VictoriaMetrics {
    _server: Server,
    pub port: u16,
}

impl VictoriaMetrics {
    /// Starts VictoriaMetrics on a free port and waits until `/health` answers.
    pub fn start() -> VictoriaMetrics {
        Self::start_with(&[])
    }

    /// [`VictoriaMetrics::start`] with more flags, e.g. `-graphiteListenAddr=127.0.0.1:PORT` for the Graphite
    /// listener or `-opentsdbHTTPListenAddr=` for OpenTSDB's `/api/put`.
    pub fn start_with(extra: &[String]) -> VictoriaMetrics {
        let server = Server::new(&["victoria-metrics", "victoria-metrics-prod"], "the Debian package victoria-metrics");
        let port = free_port();
        let data = server.dir().join("data");
        let health = Probe::Http { url: format!("http://127.0.0.1:{port}/health"), status: 200 };
        let mut args =
            vec![format!("-httpListenAddr=127.0.0.1:{port}"), format!("-storageDataPath={}", data.display())];
        args.extend_from_slice(extra);
        VictoriaMetrics { _server: server.start(args, health), port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Raw samples of the series `selector` matches (`/api/v1/export`): labels -> timestamp (ms) -> values.
    pub fn export(&self, selector: &str) -> Vec<(BTreeMap<String, String>, Points)> {
        let mut url = url::Url::parse(&format!("{}/api/v1/export", self.url())).unwrap();
        url.query_pairs_mut().append_pair("match[]", selector);
        let (status, body) = http("GET", url.as_str(), None);
        assert_eq!(status, 200, "{selector}: {body}");
        body.lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                let labels = v["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                let mut points = Points::new();
                let values = v["values"].as_array().unwrap();
                for (t, v) in v["timestamps"].as_array().unwrap().iter().zip(values) {
                    points.entry(t.as_i64().unwrap()).or_default().push(v.as_f64().unwrap());
                }
                (labels, points)
            })
            .collect()
    }

    /// The one series of the node's own metric set named `name` with `cluster_name=cluster`; empty while there
    /// is none.
    pub fn node_values(&self, name: &str, node: &str, cluster: &str) -> Points {
        let sel = format!("{{__name__=\"{name}\",type=\"node\",nodename=\"{node}\",cluster_name=\"{cluster}\"}}");
        let mut series = self.export(&sel);
        assert!(series.len() <= 1, "{sel}: {} series: {series:?}", series.len());
        series.pop().map(|(_, points)| points).unwrap_or_default()
    }

    /// The `data.result` of an instant PromQL (MetricsQL) query evaluated at `time` (Unix seconds).
    pub fn query_at(&self, promql: &str, time: f64) -> Vec<Value> {
        crate::prometheus::instant_query(&self.url(), promql, Some(time))
    }

    /// Every metric name VictoriaMetrics holds.
    pub fn names(&self) -> Vec<String> {
        let (status, body) = http("GET", &format!("{}/api/v1/label/__name__/values", self.url()), None);
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["data"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect()
    }
}
