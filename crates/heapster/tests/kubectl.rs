//! The real kubectl against heapster: `kubectl top node`, `top pod -A`, `top pod -n NS --containers` and
//! `top pod -l key=value`, on this host (standalone: cgroups made by the test shown as pods) and against the
//! simulated cluster, each table checked against heapster's own model API at the same batch timestamp (CPU rounded
//! up to millicores and memory down to Mi, as kubectl prints them).
//!
//! `kubectl` is gcloud's dispatcher: it asks the server's `/version` and runs the matching kubectl (1.27 ... 1.33).
//! The simulated API server reports 1.27 and then 1.33, so the oldest and the newest kubectl both run, and the
//! test checks which one did. kubectl runs with an empty kubeconfig and its own cache directory, so nothing of the
//! user's configuration leaks in; plain http needs no TLS flag.
//!
//! Needs root (cgroups under /sys/fs/cgroup) and kubectl on PATH.

mod common;

use common::Heapster;
use common::cgroups::Fixture;
use common::kubectl::Kubectl;
use heapster_model::quantity;
use heapster_sim::{SimConfig, Simulation};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

const MIB: i64 = 1 << 20;

/// A table as kubectl prints it: the header's columns, then one row of cells per line.
fn table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    (header, lines.map(|l| l.split_whitespace().map(str::to_owned).collect()).collect())
}

/// Points of a model API metric: timestamp (ms) -> value; empty when the entity or metric is unknown.
fn series(h: &Heapster, path: &str) -> BTreeMap<i64, f64> {
    let (status, body) = h.get(path);
    if status != 200 {
        return BTreeMap::new();
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let points = v["metrics"].as_array().cloned().unwrap_or_default();
    points
        .iter()
        .filter_map(|p| {
            let t = humantime::parse_rfc3339_weak(p["timestamp"].as_str()?).ok()?;
            Some((t.duration_since(UNIX_EPOCH).ok()?.as_millis() as i64, p["value"].as_f64()?))
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// Usage of one entity at one batch: nanocores (as the metrics API rounds the millicore rate) and bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    nanocores: i64,
    bytes: i64,
}

impl Usage {
    /// CPU and memory of the model API entity at `base` (`.../metrics/`) in the batch at `ts`, if it has both.
    fn at(h: &Heapster, base: &str, ts: i64) -> Option<Usage> {
        let cpu = *series(h, &format!("{base}cpu/usage_rate")).get(&ts)?;
        let mem = *series(h, &format!("{base}memory/working_set")).get(&ts)?;
        Some(Usage { nanocores: (cpu.max(0.0) * 1e6).round() as i64, bytes: mem as i64 })
    }

    fn add(self, o: Usage) -> Usage {
        Usage { nanocores: self.nanocores + o.nanocores, bytes: self.bytes + o.bytes }
    }

    /// kubectl's `123m`: MilliValue rounds up.
    fn cpu_cell(self) -> String {
        format!("{}m", (self.nanocores + 999_999) / 1_000_000)
    }

    /// kubectl's `45Mi`: whole mebibytes, rounded down.
    fn mem_cell(self) -> String {
        format!("{}Mi", self.bytes / MIB)
    }
}

/// Node -> allocatable (millicores, bytes), for the percentage columns.
type Allocatable = BTreeMap<String, (i64, i64)>;

/// What `kubectl top node` must print at batch `ts`: one row per node with both values.
fn expected_nodes(h: &Heapster, ts: i64, alloc: &Allocatable) -> BTreeMap<String, Vec<String>> {
    let mut rows = BTreeMap::new();
    for node in strings(&h.json("/api/v1/model/nodes/")) {
        let Some(u) = Usage::at(h, &format!("/api/v1/model/nodes/{node}/metrics/"), ts) else { continue };
        let (cpu_alloc, mem_alloc) = alloc[&node];
        let milli = (u.nanocores + 999_999) / 1_000_000;
        let cpu_pct = (milli as f64 / cpu_alloc as f64 * 100.0) as i64;
        let mem_pct = (u.bytes as f64 * 1000.0 / (mem_alloc as f64 * 1000.0) * 100.0) as i64;
        rows.insert(node, vec![u.cpu_cell(), format!("{cpu_pct}%"), u.mem_cell(), format!("{mem_pct}%")]);
    }
    rows
}

/// Pods at batch `ts`: (namespace, pod) -> containers with both values.
type Pods = BTreeMap<(String, String), BTreeMap<String, Usage>>;

/// Every pod container in the model API with both values at `ts` (Kubernetes mode).
fn cluster_pods(h: &Heapster, ts: i64) -> Pods {
    let mut pods = Pods::new();
    for ns in strings(&h.json("/api/v1/model/namespaces/")) {
        for pod in strings(&h.json(&format!("/api/v1/model/namespaces/{ns}/pods/"))) {
            let base = format!("/api/v1/model/namespaces/{ns}/pods/{pod}/containers/");
            for c in strings(&h.json(&base)) {
                if let Some(u) = Usage::at(h, &format!("{base}{c}/metrics/"), ts) {
                    pods.entry((ns.clone(), pod.clone())).or_default().insert(c, u);
                }
            }
        }
    }
    pods
}

/// Every cgroup of `node` with both values at `ts`, as the pods the metrics API makes of them (standalone).
fn cgroup_pods(h: &Heapster, node: &str, ts: i64) -> Pods {
    let mut pods = Pods::new();
    for path in strings(&h.json(&format!("/api/v1/model/nodes/{node}/freecontainers/"))) {
        let base = format!("/api/v1/model/nodes/{node}/freecontainers/{}/metrics/", path.replace('/', "%2F"));
        if let Some(u) = Usage::at(h, &base, ts) {
            let (ns, name) = heapster_api::metrics_api::pods::cgroup_pod_name(node, &path, false);
            pods.entry((ns, name.clone())).or_default().insert(name, u);
        }
    }
    pods
}

/// `top pod` rows: (namespace, pod) -> [cpu, memory], the containers summed as kubectl sums them.
fn pod_rows(pods: &Pods) -> BTreeMap<(String, String), Vec<String>> {
    pods.iter()
        .map(|(k, cs)| {
            let total = cs.values().fold(Usage::default(), |a, u| a.add(*u));
            (k.clone(), vec![total.cpu_cell(), total.mem_cell()])
        })
        .collect()
}

/// The newest batch's timestamp, from a node's series.
fn newest(h: &Heapster, node: &str) -> i64 {
    let s = series(h, &format!("/api/v1/model/nodes/{node}/metrics/memory/working_set"));
    s.keys().next_back().copied().unwrap_or(0)
}

/// Runs kubectl (`args`) until no batch arrived while it ran, so that it read the newest batch, and `check`s its
/// output against that batch's timestamp; fails with the last mismatch after a few tries. Only kubectl's run must
/// fall within one batch: the model API still answers for that timestamp afterwards, however long the expected
/// table takes to gather on a loaded machine.
fn at_one_batch(k: &Kubectl, h: &Heapster, node: &str, args: &[&str], check: impl Fn(i64, &str) -> Result<(), String>) {
    let what = args.join(" ");
    let mut last = String::new();
    for _ in 0..8 {
        let before = newest(h, node);
        let out = k.run(h.port, args);
        if newest(h, node) != before {
            last = "a batch arrived while kubectl ran".into();
            continue;
        }
        let result = check(before, &out);
        match result {
            Ok(()) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{what}: kubectl's table never matched the model API: {last}");
}

fn compare<K: Ord + std::fmt::Debug>(
    header: &[String],
    want_header: &[&str],
    got: BTreeMap<K, Vec<String>>,
    want: &BTreeMap<K, Vec<String>>,
) -> Result<(), String> {
    // kubectl 1.27 prints `CPU%`, 1.33 `CPU(%)`.
    let header: Vec<String> = header.iter().map(|h| h.replace("(%)", "%")).collect();
    let want_header: Vec<String> = want_header.iter().map(|h| h.replace("(%)", "%")).collect();
    if header != want_header {
        return Err(format!("header {header:?}, want {want_header:?}"));
    }
    if &got != want {
        return Err(format!("printed {got:?}\nexpected {want:?}"));
    }
    Ok(())
}

/// `kubectl top node` against the store, with `alloc` for the percentages.
fn check_top_node(k: &Kubectl, h: &Heapster, node: &str, alloc: &Allocatable) {
    at_one_batch(k, h, node, &["top", "node"], |ts, out| {
        let (header, rows) = table(out);
        let got = rows.into_iter().map(|mut r| (r.remove(0), r)).collect();
        let want = expected_nodes(h, ts, alloc);
        compare(&header, &["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"], got, &want)
    });
}

/// `kubectl top pod -A [-l selector]` against the store; `keep` picks the expected pods.
fn check_top_pod_all(
    k: &Kubectl,
    h: &Heapster,
    node: &str,
    extra: &[&str],
    pods: &dyn Fn(i64) -> Pods,
    keep: &dyn Fn(&(String, String)) -> bool,
) {
    let mut args = vec!["top", "pod", "-A"];
    args.extend(extra);
    at_one_batch(k, h, node, &args, |ts, out| {
        let (header, rows) = table(out);
        let got = rows.into_iter().map(|mut r| ((r.remove(0), r.remove(0)), r)).collect();
        let want: BTreeMap<_, _> = pod_rows(&pods(ts)).into_iter().filter(|(key, _)| keep(key)).collect();
        if want.is_empty() {
            return Err("no pod has data yet".into());
        }
        compare(&header, &["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"], got, &want)
    });
}

/// `kubectl top pod -n NS --containers` against the store: one row per container.
fn check_top_containers(k: &Kubectl, h: &Heapster, node: &str, ns: &str, pods: &dyn Fn(i64) -> Pods) {
    at_one_batch(k, h, node, &["top", "pod", "-n", ns, "--containers"], |ts, out| {
        let (header, rows) = table(out);
        let got = rows.into_iter().map(|mut r| ((r.remove(0), r.remove(0)), r)).collect();
        let want: BTreeMap<_, _> = pods(ts)
            .into_iter()
            .filter(|((pns, _), _)| pns == ns)
            .flat_map(|((_, pod), cs)| {
                cs.into_iter().map(move |(c, u)| ((pod.clone(), c), vec![u.cpu_cell(), u.mem_cell()]))
            })
            .collect();
        if want.is_empty() {
            return Err(format!("no container in {ns} has data yet"));
        }
        compare(&header, &["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"], got, &want)
    });
}

#[test]
fn kubectl_top_against_standalone_heapster() {
    let parent = format!("hs-kubectl-{}", std::process::id());
    let mut cg = Fixture::default();
    cg.cgroup(&parent);
    let burn = cg.cgroup(&format!("{parent}/burn"));
    cg.spawn_in(&burn, "sh -c 'while :; do :; done'");
    let mem = cg.cgroup(&format!("{parent}/mem"));
    cg.spawn_in(
        &mem,
        "python3 -c 'import time; b = bytearray(150 << 20); b[::4096] = b\"\\x01\" * len(b[::4096]); time.sleep(600)'",
    );

    let node = "kubectl-node";
    let h = Heapster::start(&["--metric_resolution=4s", &format!("--source=local?hostname={node}")]);
    let burn_rate = format!("/api/v1/model/nodes/{node}/freecontainers/{parent}%2Fburn/metrics/cpu/usage_rate");
    h.wait_for(&burn_rate, Duration::from_secs(30), |v| v["metrics"].as_array().is_some_and(|m| m.len() >= 2));

    let k = Kubectl::new("standalone");
    // Without an API server heapster reports itself as Kubernetes 1.33: the dispatcher runs kubectl 1.33.
    assert_eq!(k.client_minor(h.port), "33");

    // The node's allocatable is the machine: cpu/limit and memory/limit.
    let latest = |m: &str| *series(&h, &format!("/api/v1/model/nodes/{node}/metrics/{m}")).values().last().unwrap();
    let alloc = Allocatable::from([(node.to_owned(), (latest("cpu/limit") as i64, latest("memory/limit") as i64))]);
    check_top_node(&k, &h, node, &alloc);

    let pods = |ts| cgroup_pods(&h, node, ts);
    check_top_pod_all(&k, &h, node, &[], &pods, &|_| true);
    check_top_containers(&k, &h, node, &parent, &pods);
    let selector = format!("heapster.k8s.io/cgroup-parent={parent}");
    check_top_pod_all(&k, &h, node, &["-l", &selector], &pods, &|(ns, _)| ns == &parent);
    // `-l` without `-A`: the namespace named, the selector applied.
    let (_, rows) = table(&k.run(h.port, &["top", "pod", "-n", &parent, "-l", "kubernetes.io/hostname=nobody"]));
    assert!(rows.is_empty(), "{rows:?}");

    // The test's own cgroups are there with what they do: not a comparison of two empty tables.
    let (_, rows) = table(&k.run(h.port, &["top", "pod", "-n", &parent]));
    let by_name: BTreeMap<&str, &Vec<String>> = rows.iter().map(|r| (r[0].as_str(), r)).collect();
    let millicores: i64 = by_name["burn"][1].trim_end_matches('m').parse().unwrap();
    // A whole core when the machine is idle; other work on a busy 2-core machine leaves it less.
    assert!(millicores >= 100, "the burner spins, kubectl printed {:?}", by_name["burn"]);
    let mib: i64 = by_name["mem"][2].trim_end_matches("Mi").parse().unwrap();
    assert!(mib >= 150, "the memory holder has 150 MiB, kubectl printed {:?}", by_name["mem"]);

    // kubectl's errors come from the Status objects.
    let (ok, _, err) = k.try_run(h.port, &["top", "pod", "-n", &parent, "nothing"]);
    assert!(!ok && err.contains("NotFound") && err.contains("\"nothing\" not found"), "{err}");
    let (ok, _, err) = k.try_run(h.port, &["top", "node", "nowhere"]);
    assert!(!ok && err.contains("NotFound") && err.contains("nowhere"), "{err}");
}

/// The simulated API server's nodes' allocatable, parsed from its node list.
async fn sim_allocatable(sim: &Simulation) -> Allocatable {
    heapster_sources::ensure_crypto_provider();
    let list: Value = reqwest::get(format!("{}/api/v1/nodes", sim.api_url())).await.unwrap().json().await.unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let a = &n["status"]["allocatable"];
            let cpu = quantity::millicores(a["cpu"].as_str().unwrap()).unwrap();
            let mem = quantity::bytes(a["memory"].as_str().unwrap()).unwrap();
            (n["metadata"]["name"].as_str().unwrap().to_owned(), (cpu, mem))
        })
        .collect()
}

/// Pod labels as the simulated API server lists them: (namespace, name) -> labels.
async fn sim_pod_labels(sim: &Simulation) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let list: Value = reqwest::get(format!("{}/api/v1/pods", sim.api_url())).await.unwrap().json().await.unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let m = &p["metadata"];
            let labels =
                m["labels"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()));
            ((m["namespace"].as_str().unwrap().to_owned(), m["name"].as_str().unwrap().to_owned()), labels.collect())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_top_against_heapster_on_the_simulated_cluster() {
    let sim = Simulation::start(SimConfig { nodes: 2, pods_per_node: 4, ..Default::default() }).await.unwrap();
    let alloc = sim_allocatable(&sim).await;
    let labels = sim_pod_labels(&sim).await;
    let source = format!(
        "--source=kubernetes.summary_api:{}?inClusterConfig=false&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
        sim.api_url(),
        sim.nodes[0].addr.port()
    );
    let sim = std::sync::Arc::new(sim);
    let sim2 = sim.clone();
    // kubectl and the blocking HTTP helpers run off the runtime that serves the simulated cluster.
    tokio::task::spawn_blocking(move || {
        let sim = sim2;
        let h = Heapster::start(&["--metric_resolution=4s", &source]);
        let node = "sim-node-0";
        h.wait_for("/api/v1/model/namespaces/", Duration::from_secs(30), |v| {
            v.as_array().is_some_and(|a| !a.is_empty())
        });
        let pods = |ts| cluster_pods(&h, ts);
        // Wait until every pod has a CPU rate (two scrapes).
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while pods(newest(&h, node)).len() < labels.len() {
            assert!(std::time::Instant::now() < until, "pods never all had data: {:?}", pods(newest(&h, node)).keys());
            std::thread::sleep(Duration::from_millis(500));
        }
        let namespaces: BTreeSet<String> = labels.keys().map(|(ns, _)| ns.clone()).collect();
        let ns = namespaces.iter().next().unwrap().clone();
        // A label value carried by some pods but not all, so the selector has something to leave out.
        let (key, value) = labels
            .values()
            .flat_map(|l| l.iter())
            .find(|(k, v)| labels.values().filter(|l| l.get(*k) == Some(*v)).count() < labels.len())
            .map(|(k, v)| (k.clone(), v.clone()))
            .expect("a label that splits the pods");
        let selector = format!("{key}={value}");

        for (git_version, minor) in [("v1.27.16", "27"), ("v1.33.1", "33")] {
            sim.set_version(git_version);
            let k = Kubectl::new(minor);
            // /version is the API server's, passed through: the dispatcher picks the kubectl matching the cluster.
            assert_eq!(k.client_minor(h.port), minor, "server {git_version}");
            check_top_node(&k, &h, node, &alloc);
            check_top_pod_all(&k, &h, node, &[], &pods, &|_| true);
            check_top_containers(&k, &h, node, &ns, &pods);
            let keep = |p: &(String, String)| labels.get(p).is_some_and(|l| l.get(&key) == Some(&value));
            check_top_pod_all(&k, &h, node, &["-l", &selector], &pods, &keep);
            // `top pod -l` in one namespace, as the HPA asks.
            at_one_batch(&k, &h, node, &["top", "pod", "-n", &ns, "-l", &selector], |ts, out| {
                let (_, rows) = table(out);
                let got: BTreeMap<(String, String), Vec<String>> =
                    rows.into_iter().map(|mut r| ((ns.clone(), r.remove(0)), r)).collect();
                let want: BTreeMap<_, _> =
                    pod_rows(&pods(ts)).into_iter().filter(|(p, _)| p.0 == ns && keep(p)).collect();
                if got == want { Ok(()) } else { Err(format!("printed {got:?}, expected {want:?}")) }
            });
            // A node the API server does not know is its NotFound, passed through.
            let (ok, _, err) = k.try_run(h.port, &["top", "node", "sim-node-9"]);
            assert!(!ok && err.contains("NotFound"), "{err}");
        }
    })
    .await
    .unwrap();
}

/// A cluster as a real one is set up (API server on https with the cluster CA, a bearer token required): the
/// pass-through routes reach it with the kubernetes source's own kubeconfig credentials, and `kubectl top node`
/// through heapster over plain http works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_through_uses_the_sources_credentials() {
    use heapster_sim::tls::TestPki;
    let pki = TestPki::new("cluster CA");
    let mut ips: Vec<std::net::IpAddr> = (0..2).map(heapster_sim::node_ip).collect();
    ips.push(std::net::Ipv4Addr::LOCALHOST.into());
    let tls = pki.sim_tls(&ips);
    let token = "kubectl-e2e-token";
    let config = SimConfig {
        nodes: 2,
        pods_per_node: 2,
        api_tls: Some(tls.clone()),
        api_token: Some(token.into()),
        kubelet_tls: Some(tls),
        kubelet_token: Some(token.into()),
        ..Default::default()
    };
    let sim = Simulation::start(config).await.unwrap();
    sim.set_version("v1.30.2");
    let tmp = TempDir(std::env::temp_dir().join(format!("heapster-kubectl-tls-{}", std::process::id())));
    let dir = tmp.0.clone();
    fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.crt");
    fs::write(&ca, &pki.ca_pem).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: sim\n\
             clusters:\n- name: sim\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
             users:\n- name: heapster\n  user:\n    token: {token}\n\
             contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: heapster\n",
            sim.api_url(),
            ca.display()
        ),
    )
    .unwrap();
    let source = format!(
        "--source=kubernetes.summary_api:?auth={}&kubeletHttps=true&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
        kubeconfig.display(),
        sim.nodes[0].addr.port()
    );
    // Every simulated node has 3800m and 15Gi allocatable (see the simulator's node objects).
    let alloc: Allocatable = sim.nodes.iter().map(|n| (n.spec.name.clone(), (3800, 15 << 30))).collect();
    tokio::task::spawn_blocking(move || {
        let h = Heapster::start(&["--metric_resolution=4s", &source]);
        let version = h.wait_for("/version", Duration::from_secs(30), |_| true);
        assert_eq!(version["gitVersion"], "v1.30.2", "{version}");
        let nodes = h.json("/api/v1/nodes");
        assert_eq!(nodes["items"].as_array().map(Vec::len), Some(2), "{nodes}");
        assert_eq!(nodes["items"][0]["status"]["allocatable"]["cpu"], "3800m");
        let node = h.json("/api/v1/nodes/sim-node-1");
        assert_eq!(node["metadata"]["name"], "sim-node-1");
        let (status, body) = h.get("/api/v1/nodes/sim-node-7");
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("NotFound"), "{body}");

        let rate = "/api/v1/model/nodes/sim-node-0/metrics/cpu/usage_rate";
        h.wait_for(rate, Duration::from_secs(30), |v| v["metrics"].as_array().is_some_and(|m| !m.is_empty()));
        let k = Kubectl::new("tls");
        assert_eq!(k.client_minor(h.port), "30");
        check_top_node(&k, &h, "sim-node-0", &alloc);
    })
    .await
    .unwrap();
}

/// A directory removed on drop, even when an assertion fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Issue 16, finding 6: heapster serves the OpenAPI documents of the metrics API (`/openapi/v2` for the
/// aggregator, `/openapi/v3` for kubectl), so `kubectl explain` describes its kinds and fields.
#[test]
fn kubectl_explain_reads_the_metrics_api_schemas() {
    let h = Heapster::start(&["--metric_resolution=4s", "--source=local?hostname=explain-node"]);
    h.wait_for("/healthz", Duration::from_secs(30), |v| v == "ok");
    let k = Kubectl::new("explain");
    let out = k.run(h.port, &["explain", "podmetrics.containers", "--api-version=metrics.k8s.io/v1beta1"]);
    assert!(out.contains("KIND:") && out.contains("PodMetrics") && out.contains("usage"), "{out}");
    let out = k.run(h.port, &["explain", "nodemetrics", "--api-version=metrics.k8s.io/v1beta1"]);
    assert!(out.contains("NodeMetrics") && out.contains("window"), "{out}");
    let v2 = h.json("/openapi/v2");
    assert_eq!(v2["swagger"], "2.0");
    assert!(v2["definitions"]["io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList"].is_object(), "{v2}");
}
