//! A heapster binary started for one test, read through its HTTP API, killed when dropped.

#![allow(dead_code)] // Each test file uses its own part of this.

pub mod cgroups;
pub mod kubectl;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

pub struct Heapster {
    pub child: Child,
    pub port: u16,
}

impl Heapster {
    /// Starts the binary on a free 127.0.0.1 port with `args` after the listening flags.
    pub fn start(args: &[&str]) -> Heapster {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_heapster"))
            .args(["--listen_ip=127.0.0.1", &format!("--heapster_port={port}")])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("start heapster");
        Heapster { child, port }
    }

    /// Status and body of `GET path`; status 0 when nothing answered.
    pub fn get(&self, path: &str) -> (u16, String) {
        // reqwest has TLS without a provider of its own in this workspace: install ring before the first client.
        heapster_sources::ensure_crypto_provider();
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            match reqwest::get(&url).await {
                Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                Err(_) => (0, String::new()),
            }
        })
    }

    /// The JSON body of `GET path`, which must answer 200.
    pub fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// Polls `path` until `ok` accepts its body (JSON, or `Value::String` for text), for at most `limit`.
    pub fn wait_for(&self, path: &str, limit: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + limit;
        loop {
            let (status, body) = self.get(path);
            if status == 200 {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
                if ok(&v) {
                    return v;
                }
            }
            assert!(Instant::now() < until, "GET {path} did not become ready in {limit:?}: {status} {body}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The model API's points of one node metric: timestamp (ms) -> value.
pub fn model_points(h: &Heapster, node: &str, metric: &str) -> BTreeMap<i64, f64> {
    points(&h.json(&format!("/api/v1/model/nodes/{node}/metrics/{metric}")))
}

/// A model-API metric answer as timestamp (ms) -> value.
pub fn points(v: &Value) -> BTreeMap<i64, f64> {
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

impl Drop for Heapster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--source` for heapster scraping `sim`: nodes from its API server over plain http, kubelets on their InternalIP
/// and the simulator's one kubelet port.
pub fn sim_source(sim: &heapster_sim::Simulation) -> String {
    format!(
        "--source=kubernetes.summary_api:{}?inClusterConfig=false&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
        sim.api_url(),
        sim.nodes[0].addr.port()
    )
}
