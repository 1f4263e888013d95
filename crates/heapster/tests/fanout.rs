//! Reading a sharded heapster from any replica: two heapsters, each scraping its own simulated cluster and naming
//! the other in `--peers`, answer the model API, metrics.k8s.io and custom.metrics.k8s.io for both; with the other
//! replica hung or dead, a replica still answers its own part and counts the failure.
//!
//! The simulator names nodes `sim-node-N` in every simulation, so the two shards differ in size: A scrapes
//! `sim-node-0..1`, B `sim-node-0..2`; `sim-node-2` and its pods (named after the node index) exist only in B.

use heapster_sim::{SimConfig, Simulation};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts heapster on `port` (127.0.0.1) with `args`.
fn spawn(port: u16, args: &[&str]) -> Replica {
    let child = Command::new(env!("CARGO_BIN_EXE_heapster"))
        .args(["--listen_ip=127.0.0.1", &format!("--heapster_port={port}")])
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Replica { child, base: format!("http://127.0.0.1:{port}") }
}

/// A replica scraping `sim`, with the replica on `peer_port` as its peer.
fn start(sim: &Simulation, port: u16, peer_port: u16) -> Replica {
    let kubelet_port = sim.nodes[0].addr.port();
    let source = format!(
        "--source=kubernetes.summary_api:http://{}?inClusterConfig=false&kubeletPort={kubelet_port}&kubeletPreferredAddressTypes=InternalIP",
        sim.api_server
    );
    let peers = format!("--peers=http://127.0.0.1:{peer_port}");
    spawn(port, &[&source, "--metric_resolution=2s", &peers, "--peers_timeout=2s"])
}

/// Status and body of `GET path`, `local` asking for the replica's own part only. The client's deadline is far
/// beyond the replicas' `--peers_timeout`: a request that waited on a hung peer would not come back at all.
async fn get(base: &str, path: &str, local: bool) -> (u16, String) {
    heapster_sources::ensure_crypto_provider();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut req = client.get(format!("{base}{path}"));
    if local {
        req = req.header("X-Heapster-Local", "1");
    }
    match req.send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

async fn json(base: &str, path: &str, local: bool) -> Value {
    let (status, body) = get(base, path, local).await;
    assert_eq!(status, 200, "GET {base}{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls until `ok` accepts the (local) JSON at `path`.
async fn wait_for(base: &str, path: &str, local: bool, ok: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(base, path, local).await;
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if ok(&v) {
                return v;
            }
        }
        assert!(Instant::now() < until, "GET {base}{path}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether a simulated pod (`NAME-NODE-SLOT-gGENERATION`) runs on `sim-node-2`, which only B scrapes.
fn on_node_2(pod: &str) -> bool {
    pod.rsplit('-').nth(2) == Some("2")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

fn item_names(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_owned()).collect()
}

/// A model-API answer as RFC 3339 timestamp -> integer value (Heapster's `uint64` values).
fn points(v: &Value) -> BTreeMap<String, u64> {
    let list = v["metrics"].as_array().unwrap();
    list.iter().map(|p| (p["timestamp"].as_str().unwrap().to_owned(), p["value"].as_u64().unwrap())).collect()
}

/// `heapster_fanout_errors_total` for `peer` on `/metrics`, 0 when absent.
async fn fanout_errors(base: &str, peer: &str) -> f64 {
    let (_, text) = get(base, "/metrics", false).await;
    let prefix = format!("heapster_fanout_errors_total{{peer=\"{peer}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_replica_answers_for_the_whole_cluster() {
    let sim_a = Simulation::start(SimConfig { nodes: 2, pods_per_node: 3, ..Default::default() }).await.unwrap();
    let sim_b = Simulation::start(SimConfig { nodes: 3, pods_per_node: 3, ..Default::default() }).await.unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let a = start(&sim_a, port_a, port_b);
    let b = start(&sim_b, port_b, port_a);
    let (base_a, base_b) = (a.base.clone(), b.base.clone());

    // Each replica's own part first: A has two nodes, B three.
    let has_rate = |v: &Value| v["metrics"].as_array().is_some_and(|m| !m.is_empty());
    let node_rate = "/api/v1/model/nodes/sim-node-2/metrics/cpu/usage_rate";
    wait_for(&base_b, node_rate, true, has_rate).await;
    let a_node_rate = "/api/v1/model/nodes/sim-node-1/metrics/cpu/usage_rate";
    wait_for(&base_a, a_node_rate, true, has_rate).await;
    assert_eq!(strings(&json(&base_a, "/api/v1/model/nodes/", true).await), ["sim-node-0", "sim-node-1"]);

    // From A: every node of both shards, and B's node with its metrics.
    let nodes = strings(&json(&base_a, "/api/v1/model/nodes/", false).await);
    assert_eq!(nodes, ["sim-node-0", "sim-node-1", "sim-node-2"]);
    let via_a = json(&base_a, node_rate, false).await;
    assert!(has_rate(&via_a), "B's node has no cpu/usage_rate through A: {via_a}");
    let metric_names = strings(&json(&base_a, "/api/v1/model/nodes/sim-node-2/metrics/", false).await);
    assert!(metric_names.iter().any(|m| m == "memory/working_set"), "{metric_names:?}");

    // metrics.k8s.io from A: NodeMetrics of both shards, PodMetrics of B's node.
    let node_metrics = json(&base_a, "/apis/metrics.k8s.io/v1beta1/nodes", false).await;
    assert_eq!(item_names(&node_metrics), ["sim-node-0", "sim-node-1", "sim-node-2"], "{node_metrics}");
    let pods_b = item_names(&json(&base_b, "/apis/metrics.k8s.io/v1beta1/pods", true).await);
    let only_b: Vec<&String> = pods_b.iter().filter(|p| on_node_2(p)).collect();
    assert!(!only_b.is_empty(), "B has no pod of sim-node-2: {pods_b:?}");
    let pods_a = item_names(&json(&base_a, "/apis/metrics.k8s.io/v1beta1/pods", false).await);
    for p in &only_b {
        assert!(pods_a.contains(p), "{p} of B missing from A's PodMetrics list: {pods_a:?}");
    }
    let ns = json(&base_b, "/apis/metrics.k8s.io/v1beta1/pods", true).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| on_node_2(i["metadata"]["name"].as_str().unwrap()))
        .unwrap()["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/{}", only_b[0]);
    assert_eq!(json(&base_a, &one, false).await["metadata"]["name"], only_b[0].as_str());

    // custom.metrics.k8s.io from A: B's pods in a selector list and one by one, B's node, and the namespace's
    // value the sum of both replicas' own (read until neither replica's part changed around the merged read).
    let cm = "/apis/custom.metrics.k8s.io/v1beta2";
    let described = |v: &Value| -> Vec<String> {
        let items = v["items"].as_array().unwrap();
        items.iter().map(|i| i["describedObject"]["name"].as_str().unwrap().to_owned()).collect()
    };
    let custom_pods = described(&json(&base_a, &format!("{cm}/namespaces/{ns}/pods/*/cpu_usage_rate"), false).await);
    assert!(custom_pods.contains(only_b[0]), "{} missing from A's list: {custom_pods:?}", only_b[0]);
    assert!(custom_pods.iter().any(|p| !on_node_2(p)), "A's own pods missing: {custom_pods:?}");
    let one = json(&base_a, &format!("{cm}/namespaces/{ns}/pods/{}/cpu_usage_rate", only_b[0]), false).await;
    assert_eq!(described(&one), [only_b[0].clone()]);
    let node = json(&base_a, &format!("{cm}/nodes/sim-node-2/memory_working_set"), false).await;
    assert_eq!(described(&node), ["sim-node-2"]);
    let ns_cpu = format!("{cm}/namespaces/{ns}/metrics/cpu_usage_rate");
    let value = |v: Value| heapster_model::quantity::parse(v["items"][0]["value"].as_str().unwrap()).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (a1, b1) = (value(json(&base_a, &ns_cpu, true).await), value(json(&base_b, &ns_cpu, true).await));
        let merged = value(json(&base_a, &ns_cpu, false).await);
        let (a2, b2) = (value(json(&base_a, &ns_cpu, true).await), value(json(&base_b, &ns_cpu, true).await));
        if a1 == a2 && b1 == b2 {
            assert!(a1 > 0.0 && b1 > 0.0, "a part is 0: the sum would prove nothing");
            assert!((merged - a1 - b1).abs() < 1e-3, "{ns}: merged {merged}, A {a1} + B {b1}");
            break;
        }
        assert!(Instant::now() < until, "the replicas' parts never held still for one read");
    }

    // The namespace's cpu/usage_rate from A is the sum of both replicas' own roll-ups, point by point.
    let ns_rate = format!("/api/v1/model/namespaces/{ns}/metrics/cpu/usage_rate");
    wait_for(&base_b, &ns_rate, true, |v| points(v).len() >= 2).await;
    let merged = points(&json(&base_a, &ns_rate, false).await);
    let own_a = points(&json(&base_a, &ns_rate, true).await);
    let own_b = points(&json(&base_b, &ns_rate, true).await);
    let common: Vec<&String> = own_b.keys().filter(|t| own_a.contains_key(*t) && merged.contains_key(*t)).collect();
    assert!(!common.is_empty(), "no timestamp in all three: {merged:?} {own_a:?} {own_b:?}");
    for t in common {
        assert!(own_b[t] > 0, "B's part of {ns} at {t} is 0: the sum would prove nothing");
        assert_eq!(merged[t], own_a[t] + own_b[t], "{ns} at {t}: A {} + B {}", own_a[t], own_b[t]);
    }

    // The dashboard from A: B's node in the node list, node counts and the cluster's CPU chart summed.
    let page = json(&base_a, "/api/v1/dashboard/nodes?sort=name", false).await;
    let keys: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["node:sim-node-0", "node:sim-node-1", "node:sim-node-2"], "{page}");
    let series = json(&base_a, "/api/v1/dashboard/series?key=node:sim-node-2", false).await;
    assert!(series["timestamps"].as_array().is_some_and(|t| !t.is_empty()), "{series}");
    let overview = json(&base_a, "/api/v1/dashboard/overview", false).await;
    let own_nodes = |v: Value| v["nodes"].as_u64().unwrap();
    let sum = own_nodes(json(&base_a, "/api/v1/dashboard/overview", true).await)
        + own_nodes(json(&base_b, "/api/v1/dashboard/overview", true).await);
    assert_eq!(overview["nodes"].as_u64(), Some(sum), "{overview}");
    let chart = |v: &Value| -> BTreeMap<i64, f64> {
        let times = v["timestamps"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap());
        let cpu = v["series"]["cpu/usage_rate"].as_array().unwrap().iter().map(|c| c.as_f64());
        times.zip(cpu).filter_map(|(t, c)| Some((t, c?))).collect()
    };
    let cluster = "/api/v1/dashboard/series?key=cluster";
    let merged = chart(&json(&base_a, cluster, false).await);
    let (own_a, own_b) = (chart(&json(&base_a, cluster, true).await), chart(&json(&base_b, cluster, true).await));
    let common: Vec<&i64> = own_b.keys().filter(|t| own_a.contains_key(*t) && merged.contains_key(*t)).collect();
    assert!(!common.is_empty(), "no timestamp in all three: {merged:?} {own_a:?} {own_b:?}");
    for t in common {
        assert!(own_b[t] > 0.0, "B's cluster CPU at {t} is 0: the sum would prove nothing");
        assert!(
            (merged[t] - own_a[t] - own_b[t]).abs() < 1e-6,
            "cluster at {t}: {} vs {} + {}",
            merged[t],
            own_a[t],
            own_b[t]
        );
    }

    // B hung (stopped: its port still accepts connections, nothing answers): A answers its own part after the
    // deadline instead of waiting for ever, and counts the failure.
    let peer_b = format!("http://127.0.0.1:{port_b}");
    let before = fanout_errors(&base_a, &peer_b).await;
    let pid = b.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let nodes = strings(&json(&base_a, "/api/v1/model/nodes/", false).await);
    assert_eq!(nodes, ["sim-node-0", "sim-node-1"]);
    let after_hang = fanout_errors(&base_a, &peer_b).await;
    assert!(after_hang > before, "fan-out errors for {peer_b}: {before} then {after_hang}");

    // B dead: the same, at once.
    drop(b);
    let node_metrics = json(&base_a, "/apis/metrics.k8s.io/v1beta1/nodes", false).await;
    assert_eq!(item_names(&node_metrics), ["sim-node-0", "sim-node-1"]);
    let after_kill = fanout_errors(&base_a, &peer_b).await;
    assert!(after_kill > after_hang, "fan-out errors for {peer_b}: {after_hang} then {after_kill}");
    drop(a);
}

/// Peers over https that require a token: each replica verifies the others' serving certificates against
/// `--peers_ca_file` and sends the token of `--peers_token_file`. A replica without the token is refused by its
/// peer (401), answers its own part and counts the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_peers_are_verified_and_sent_the_token() {
    use heapster_sim::tls::TestPki;
    let dir = std::env::temp_dir().join(format!("heapster-fanout-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).unwrap();
        dir.join(name).display().to_string()
    };
    let pki = TestPki::new("heapster serving CA");
    let (cert, key) = pki.server_cert(&[std::net::Ipv4Addr::LOCALHOST.into()]);
    let (cert, key, ca) = (write("tls.crt", &cert), write("tls.key", &key), write("ca.crt", &pki.ca_pem));
    let tokens = write("tokens.csv", "peer-token,heapster,uid-1\nreader-token,alice,uid-2\n");
    let peer_token = write("peer-token", "peer-token\n");
    let (port_a, port_b, port_c) = (free_port(), free_port(), free_port());
    let replica = |name: &str, port: u16, peer: u16, token: &str| {
        spawn(
            port,
            &[
                &format!("--source=local?hostname={name}"),
                "--metric_resolution=1s",
                &format!("--tls_cert={cert}"),
                &format!("--tls_key={key}"),
                &format!("--token_auth_file={tokens}"),
                &format!("--peers=https://127.0.0.1:{peer}"),
                &format!("--peers_ca_file={ca}"),
                &format!("--peers_token_file={token}"),
            ],
        )
    };
    let _a = replica("replica-a", port_a, port_b, &peer_token);
    let _b = replica("replica-b", port_b, port_a, &peer_token);
    let _c = replica("replica-c", port_c, port_b, &dir.join("no-such-token").display().to_string());

    heapster_sources::ensure_crypto_provider();
    let roots = vec![reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()];
    let client = reqwest::Client::builder().tls_certs_only(roots).timeout(Duration::from_secs(30)).build().unwrap();
    let nodes = |port: u16, local: bool| {
        let mut req = client.get(format!("https://127.0.0.1:{port}/api/v1/model/nodes/")).bearer_auth("reader-token");
        if local {
            req = req.header("X-Heapster-Local", "1");
        }
        async move {
            match req.send().await {
                Ok(r) if r.status() == 200 => r.json::<Vec<String>>().await.unwrap_or_default(),
                _ => Vec::new(),
            }
        }
    };
    let until = Instant::now() + Duration::from_secs(60);
    for port in [port_a, port_b, port_c] {
        while nodes(port, true).await.len() != 1 {
            assert!(Instant::now() < until, "replica on {port} has no node of its own");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    assert_eq!(nodes(port_a, false).await, ["replica-a", "replica-b"]);
    assert_eq!(nodes(port_c, false).await, ["replica-c"]);
    let metrics = |port: u16| {
        let req = client.get(format!("https://127.0.0.1:{port}/metrics")).bearer_auth("reader-token");
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let series = format!("heapster_fanout_errors_total{{peer=\"https://127.0.0.1:{port_b}\"}}");
    assert!(!metrics(port_a).await.contains(&series), "A counted errors reading B");
    let text = metrics(port_c).await;
    let errors = text.lines().find_map(|l| l.strip_prefix(&series)).map(|v| v.trim().parse::<f64>().unwrap());
    assert!(errors.is_some_and(|e| e >= 1.0), "C did not count B's refusal: {errors:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A peer address that is not a base URL stops heapster at start-up with one line saying what to write.
#[test]
fn a_bad_peer_url_is_one_line_at_start_up() {
    for (peer, want) in [("10.0.0.7:8082", "not an http:// or https:// URL"), ("http://a:1/api", "without a path")] {
        let out = Command::new(env!("CARGO_BIN_EXE_heapster"))
            .args([&format!("--peers={peer}"), "--heapster_port=1", "--listen_ip=127.0.0.1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--peers={peer} was accepted");
        assert!(err.lines().any(|l| l.contains("--peers") && l.contains(want)), "{peer}: {err}");
    }
}
