//! heapster against the simulated cluster: nodes discovered from the (simulated) API server, every kubelet
//! scraped on its own loopback address, pods and containers in the model API with the kubelets' numbers.

use heapster_sim::{SimConfig, Simulation};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Heapster(Child, String);

impl Drop for Heapster {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    match reqwest::get(format!("{base}{path}")).await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Polls until `ok` accepts the JSON at `path`.
async fn wait_for(base: &str, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = get(base, path).await;
        if status == 200 && ok(&v) {
            return v;
        }
        assert!(Instant::now() < until, "GET {path}: {status} {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heapster_scrapes_every_simulated_kubelet() {
    let sim = Simulation::start(SimConfig { nodes: 5, pods_per_node: 10, ..Default::default() }).await.unwrap();
    let kubelet_port = sim.nodes[0].addr.port();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_heapster"))
        .args([
            &format!(
                "--source=kubernetes.summary_api:http://{}?inClusterConfig=false&kubeletPort={kubelet_port}&kubeletPreferredAddressTypes=InternalIP",
                sim.api_server
            ),
            "--metric_resolution=2s",
            "--listen_ip=127.0.0.1",
            &format!("--heapster_port={port}"),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let h = Heapster(child, format!("http://127.0.0.1:{port}"));
    let base = h.1.as_str();

    let nodes = wait_for(base, "/api/v1/model/nodes/", |v| v.as_array().is_some_and(|a| a.len() == 5)).await;
    assert!(nodes.as_array().unwrap().iter().any(|n| n == "sim-node-4"), "{nodes}");

    // Every pod of every node, with the kubelet's counters and a rate computed from them.
    let keys = wait_for(base, "/api/v1/model/debug/allkeys", |v| {
        v.as_array().is_some_and(|a| {
            a.iter().filter(|k| k.as_str().is_some_and(|k| k.contains("/pod:") && !k.contains("/container:"))).count()
                == 50
        })
    })
    .await;
    let container = keys
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str())
        .find(|k| k.ends_with("/container:compute-pi-digits"))
        .expect("a compute-pi-digits container")
        .to_owned();
    // namespace:NS/pod:POD/container:C
    let parts: Vec<&str> = container.split('/').collect();
    let (ns, pod) = (parts[0].trim_start_matches("namespace:"), parts[1].trim_start_matches("pod:"));
    let path = format!("/api/v1/model/namespaces/{ns}/pods/{pod}/containers/compute-pi-digits/metrics/cpu/usage_rate");
    let rate = wait_for(base, &path, |v| v["metrics"].as_array().is_some_and(|m| !m.is_empty())).await;
    let mcores = rate["metrics"].as_array().unwrap().last().unwrap()["value"].as_f64().unwrap();
    // The simulated container uses its recorded 80666400 ns/s: 80.67 millicores.
    assert!((mcores - 80.6664).abs() < 80.6664 * 0.05, "cpu/usage_rate {mcores}");
    let node_metrics =
        wait_for(base, "/api/v1/model/nodes/sim-node-2/metrics/", |v| v.as_array().is_some_and(|a| !a.is_empty()))
            .await;
    assert!(node_metrics.as_array().unwrap().iter().any(|m| m == "memory/working_set"), "{node_metrics}");
}
