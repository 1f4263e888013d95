//! heapster on the simulated cluster, writing to Google Cloud Monitoring through `--sink=stackdriver` and
//! `--sink=gcm`, both at the local fake of Monitoring v3 and its token endpoint (`heapster_testkit::google`): the
//! live Google services are not used, and no emulator of them exists. The fake refuses what the service refuses
//! (schema of the published discovery document, 200 series a request, one point per series, 5 s apart, intervals,
//! resource labels), so the test checks that nothing was refused and that every point heapster wrote equals the
//! model API's value for the same time.

mod common;

use common::{Heapster, points};
use heapster_sim::{SimConfig, Simulation};
use heapster_testkit::google::{GoogleFake, TimeSeriesPoint};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROJECT: &str = "e2e-project";

/// The points of one series in the fake, by end time (ms).
fn series(fake: &GoogleFake, keep: impl Fn(&TimeSeriesPoint) -> bool) -> BTreeMap<i64, f64> {
    let mut out = BTreeMap::new();
    for p in fake.time_series().iter().filter(|p| keep(p)) {
        let t = p.end.timestamp_millis();
        assert!(out.insert(t, p.value.as_f64().unwrap()).is_none(), "{} twice at {t}", p.metric_type);
    }
    out
}

/// Every point written is the model's value at that time (times `scale`), and every model point up to the newest
/// written one was written. Returns how many were compared.
fn assert_written(what: &str, model: &BTreeMap<i64, f64>, written: &BTreeMap<i64, f64>, scale: f64) -> usize {
    assert!(!written.is_empty(), "{what}: nothing written");
    for (t, v) in written {
        let want = model.get(t).unwrap_or_else(|| panic!("{what}: written at {t}, not in the model API: {model:?}"));
        assert!((v - want * scale).abs() <= (want * scale).abs() * 1e-9, "{what} at {t}: wrote {v}, model {want}");
    }
    let newest = *written.keys().last().unwrap();
    let oldest = *written.keys().next().unwrap();
    for t in model.keys().filter(|t| (oldest..=newest).contains(*t)) {
        assert!(written.contains_key(t), "{what}: the model's point at {t} was not written: {written:?}");
    }
    written.len()
}

/// Which model value a stored point came from.
enum Model {
    Metric(&'static str),
    /// Heapster's "evictable" memory: usage - working set.
    Evictable,
}

/// The stackdriver metrics (after the prefix) and the model metric and scale each was made from.
const STACKDRIVER: &[(&str, &str, f64)] = &[
    ("container/uptime", "uptime", 1e-3),
    ("container/cpu/limit_cores", "cpu/limit", 1e-3),
    ("container/cpu/request_cores", "cpu/request", 1e-3),
    ("container/cpu/core_usage_time", "cpu/usage", 1e-9),
    ("container/memory/limit_bytes", "memory/limit", 1.0),
    ("container/memory/request_bytes", "memory/request", 1.0),
    ("container/memory/used_bytes", "memory/working_set", 1.0),
    ("container/ephemeral_storage/limit_bytes", "ephemeral_storage/limit", 1.0),
    ("container/ephemeral_storage/request_bytes", "ephemeral_storage/request", 1.0),
    ("container/ephemeral_storage/used_bytes", "ephemeral_storage/usage", 1.0),
    ("container/restart_count", "restart_count", 1.0),
    ("pod/network/received_bytes_count", "network/rx", 1.0),
    ("pod/network/sent_bytes_count", "network/tx", 1.0),
    ("node/cpu/total_cores", "cpu/node_capacity", 1e-3),
    ("node/cpu/allocatable_cores", "cpu/node_allocatable", 1e-3),
    ("node/cpu/core_usage_time", "cpu/usage", 1e-9),
    ("node/memory/total_bytes", "memory/node_capacity", 1.0),
    ("node/memory/allocatable_bytes", "memory/node_allocatable", 1.0),
    ("node/memory/used_bytes", "memory/working_set", 1.0),
    ("node/network/received_bytes_count", "network/rx", 1.0),
    ("node/network/sent_bytes_count", "network/tx", 1.0),
    ("node/ephemeral_storage/total_bytes", "ephemeral_storage/node_capacity", 1.0),
    ("node_daemon/memory/used_bytes", "memory/working_set", 1.0),
    ("node_daemon/cpu/core_usage_time", "cpu/usage", 1e-9),
];

/// The model API entity (`/nodes/n1`), metric and scale of a stored point, and for a labelled metric (a filesystem,
/// a volume) the model API's `labels=` query; `None` for accelerators, which the simulation has none of.
fn model_of(p: &TimeSeriesPoint) -> Option<(String, Model, f64, String)> {
    let name = p.metric_type.strip_prefix("custom.googleapis.com/kubernetes.io/").expect("the default prefix");
    let r = |k: &str| p.resource_labels.get(k).cloned().unwrap_or_default();
    let m = |k: &str| p.metric_labels.get(k).cloned().unwrap_or_default();
    if p.resource_type == "global" {
        // gcm: the catalog's names, the entity from Heapster's labels.
        let query = match p.metric_labels.get("resource_id") {
            Some(id) if !p.metric_labels.contains_key("resource_type") => format!("?labels=resource_id:{id}"),
            _ => String::new(),
        };
        let metric = heapster_model::catalog::find(name).expect("a catalog metric").name;
        let entity = match m("type").as_str() {
            // The autoscaling metrics carry no type: they are the node's.
            "node" | "" => format!("/nodes/{}", m("hostname")),
            "sys_container" => format!("/nodes/{}/freecontainers/{}", m("hostname"), m("container_name")),
            "pod" => format!("/namespaces/{}/pods/{}", m("namespace_name"), m("pod_name")),
            "pod_container" => {
                format!("/namespaces/{}/pods/{}/containers/{}", m("namespace_name"), m("pod_name"), m("container_name"))
            }
            "ns" => format!("/namespaces/{}", m("namespace_name")),
            "cluster" => String::new(),
            other => panic!("set type {other}"),
        };
        return Some((entity, Model::Metric(metric), 1.0, query));
    }
    let entity = match p.resource_type.as_str() {
        "k8s_node" if name.starts_with("node_daemon/") => {
            format!("/nodes/{}/freecontainers/{}", r("node_name"), m("component"))
        }
        "k8s_node" => format!("/nodes/{}", r("node_name")),
        "k8s_pod" => format!("/namespaces/{}/pods/{}", r("namespace_name"), r("pod_name")),
        "k8s_container" => {
            format!("/namespaces/{}/pods/{}/containers/{}", r("namespace_name"), r("pod_name"), r("container_name"))
        }
        other => panic!("resource type {other}"),
    };
    if name.starts_with("container/accelerator/") {
        return None;
    }
    if let Some(volume) = name.strip_prefix("pod/volume/") {
        let metric = if volume == "used_bytes" { "filesystem/usage" } else { "filesystem/limit" };
        return Some((entity, Model::Metric(metric), 1.0, format!("?labels=resource_id:Volume:{}", m("volume_name"))));
    }
    let (_, metric, scale) = STACKDRIVER.iter().find(|(n, _, _)| *n == name).unwrap_or_else(|| panic!("{name}"));
    let model = if m("memory_type") == "evictable" { Model::Evictable } else { Model::Metric(metric) };
    Some((entity, model, *scale, String::new()))
}

#[test]
fn stackdriver_and_gcm_write_the_model_apis_values_to_the_monitoring_fake() {
    // The simulation runs on this runtime's workers; the test reads heapster's API with blocking calls.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt.block_on(Simulation::start(SimConfig { nodes: 2, pods_per_node: 3, ..Default::default() })).unwrap();
    let fake = GoogleFake::start_blocking();
    let dir = std::env::temp_dir().join(format!("heapster-google-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = fake.write_service_account_key(&dir, PROJECT);
    // Nothing answers here: outside Google Cloud, the key file is all heapster has.
    let no_metadata = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kubelet_port = sim.nodes[0].addr.port();
    let child = Command::new(env!("CARGO_BIN_EXE_heapster"))
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("GCE_METADATA_HOST", &no_metadata)
        .env_remove("GOOGLE_PROJECT_ID")
        .args([
            &format!(
                "--source=kubernetes.summary_api:http://{}?inClusterConfig=false&kubeletPort={kubelet_port}\
                 &kubeletPreferredAddressTypes=InternalIP",
                sim.api_server
            ),
            // Cloud Monitoring takes a point of a series every 5 s at most.
            "--metric_resolution=5s",
            // Fractions as stored (ratios, rates), not truncated to Heapster's uint64.
            "--api_typed_values",
            "--listen_ip=127.0.0.1",
            &format!("--heapster_port={port}"),
            &format!("--sink=stackdriver:?endpoint={}&cluster_name=e2e&cluster_location=local&workers=2", fake.url()),
            &format!("--sink=gcm:?endpoint={}", fake.url()),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let h = Heapster { child, port };

    // Four rounds at least in the fake.
    let until = Instant::now() + Duration::from_secs(60);
    let node = "sim-node-0";
    let sd_cpu = "custom.googleapis.com/kubernetes.io/node/cpu/core_usage_time";
    loop {
        let n = series(&fake, |p| p.metric_type == sd_cpu && p.resource_labels["node_name"] == node).len();
        if n >= 4 {
            break;
        }
        assert!(
            Instant::now() < until,
            "only {n} points of {sd_cpu} after 60 s; refused: {:?}",
            fake.rejected_requests()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let model = |path: String| points(&h.json(&path));
    // Read the model after the fake: the model then holds every point written.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fake.rejected_requests(), BTreeMap::new(), "requests refused");
    assert_eq!(fake.rejected_series(), BTreeMap::new(), "series refused");

    // stackdriver: the node's CPU (cumulative, seconds), its working set, a container's working set and CPU.
    let node_model = |m: &str| model(format!("/api/v1/model/nodes/{node}/metrics/{m}"));
    let on_node = |metric: &'static str, memory_type: Option<&'static str>| {
        move |p: &TimeSeriesPoint| {
            p.metric_type == metric
                && p.resource_type == "k8s_node"
                && p.resource_labels["node_name"] == node
                && p.resource_labels["project_id"] == PROJECT
                && p.resource_labels["cluster_name"] == "e2e"
                && memory_type.is_none_or(|m| p.metric_labels.get("memory_type").map(String::as_str) == Some(m))
        }
    };
    let mut compared = 0;
    compared += assert_written("node cpu", &node_model("cpu/usage"), &series(&fake, on_node(sd_cpu, None)), 1e-9);
    compared += assert_written(
        "node working set",
        &node_model("memory/working_set"),
        &series(&fake, on_node("custom.googleapis.com/kubernetes.io/node/memory/used_bytes", Some("non-evictable"))),
        1.0,
    );
    let keys = h.json("/api/v1/model/debug/allkeys");
    let container = keys
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str())
        .find(|k| k.contains("/container:"))
        .expect("a pod container")
        .to_owned();
    let parts: Vec<&str> = container.split('/').collect();
    let (ns, pod, name) = (
        parts[0].trim_start_matches("namespace:"),
        parts[1].trim_start_matches("pod:"),
        parts[2].trim_start_matches("container:"),
    );
    let container_model =
        |m: &str| model(format!("/api/v1/model/namespaces/{ns}/pods/{pod}/containers/{name}/metrics/{m}"));
    let of_container = |metric: &'static str| {
        move |p: &TimeSeriesPoint| {
            p.metric_type == metric
                && p.resource_type == "k8s_container"
                && p.resource_labels["namespace_name"] == ns
                && p.resource_labels["pod_name"] == pod
                && p.resource_labels["container_name"] == name
                && p.metric_labels.get("memory_type").is_none_or(|m| m == "non-evictable")
        }
    };
    compared += assert_written(
        "container working set",
        &container_model("memory/working_set"),
        &series(&fake, of_container("custom.googleapis.com/kubernetes.io/container/memory/used_bytes")),
        1.0,
    );
    compared += assert_written(
        "container cpu",
        &container_model("cpu/usage"),
        &series(&fake, of_container("custom.googleapis.com/kubernetes.io/container/cpu/core_usage_time")),
        1e-9,
    );

    // gcm: the catalog's own names on the global resource, labelled as Heapster's GCM sink labelled them.
    let gcm_node = |metric: &'static str| {
        move |p: &TimeSeriesPoint| {
            p.metric_type == format!("custom.googleapis.com/kubernetes.io/{metric}")
                && p.resource_type == "global"
                && p.metric_labels.get("type").map(String::as_str) == Some("node")
                && p.metric_labels.get("hostname").map(String::as_str) == Some(node)
        }
    };
    for metric in ["memory/usage", "cpu/usage", "cpu/usage_rate", "network/rx"] {
        compared +=
            assert_written(&format!("gcm {metric}"), &node_model(metric), &series(&fake, gcm_node(metric)), 1.0);
    }
    let capacity = |p: &TimeSeriesPoint| {
        p.metric_type == "custom.googleapis.com/kubernetes.io/cpu/node_capacity"
            && p.metric_labels.get("hostname").map(String::as_str) == Some(node)
    };
    compared +=
        assert_written("gcm cpu/node_capacity", &node_model("cpu/node_capacity"), &series(&fake, capacity), 1.0);
    println!("{compared} points of chosen series compared with the model API, none missing");
    assert!(compared >= 30, "{compared}");

    // And every point in the fake, whatever its series, is the model's value at its time.
    let stored = fake.time_series();
    let mut cache: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut model_at = |entity: &str, metric: &str, query: &str, t: i64| -> f64 {
        let path = format!("/api/v1/model{entity}/metrics/{metric}{query}");
        let m = cache.entry(path.clone()).or_insert_with(|| model(path.clone()));
        *m.get(&t).unwrap_or_else(|| panic!("{path}: no point at {t}"))
    };
    let mut checked = 0;
    for p in &stored {
        let t = p.end.timestamp_millis();
        let (entity, metric, scale, query) = model_of(p).unwrap_or_else(|| panic!("{} is not expected", p.metric_type));
        let want = match metric {
            Model::Metric(m) => model_at(&entity, m, &query, t),
            Model::Evictable => {
                model_at(&entity, "memory/usage", "", t) - model_at(&entity, "memory/working_set", "", t)
            }
        } * scale;
        let got = p.value.as_f64().unwrap();
        let tolerance = if p.value_type == "INT64" { 0.5 } else { want.abs() * 1e-9 };
        assert!((got - want).abs() <= tolerance, "{} on {entity} at {t}: wrote {got}, model {want}", p.metric_type);
        checked += 1;
    }
    println!("all {checked} points in the fake equal the model API's");
    // Descriptors were made for what was written, and the token was fetched once for both sinks' hour.
    let descriptors = fake.metric_descriptors(PROJECT);
    assert!(descriptors.iter().any(|d| d["type"] == sd_cpu), "{descriptors:?}");
    assert!(fake.tokens_issued() <= 2, "{} tokens", fake.tokens_issued());
    let _ = std::fs::remove_dir_all(&dir);
}
