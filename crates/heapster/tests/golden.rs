//! Golden outputs of one simulated cluster (2 nodes x 3 pods, two rounds 15 s apart, the Kubernetes chain):
//! the model API's answer on every route, metric-export and its schema, and InfluxDB line protocol in both
//! Heapster schemas, each compared with a file under `tests/golden/`. A change that alters any output fails here;
//! when the change is meant, `UPDATE_GOLDEN=1 cargo test -p heapster --test golden` rewrites the files and the
//! diff shows what moved.
//!
//! Beside the files, the rules read from the original's source are checked on the outputs themselves, so a
//! regenerated file cannot carry a drift silently: every model API value is a `uint64` (`model_types.go`), every
//! InfluxDB field has the type of `metrics/core/metrics.go` and the tags are the set's labels minus
//! `influxdbBlacklistLabels` plus `cluster_name` (`metrics/sinks/influxdb/influxdb.go`), and metric-export carries
//! `host_id` on every entity (`metrics/api/v1/api.go`).

#[path = "../../processors/benches/support/sim_cluster.rs"]
mod sim_cluster;

use axum::body::Body;
use axum::http::Request;
use chrono::{DateTime, Duration, Utc};
use heapster_processors::{NodeAutoscalingConfig, PodEnricherConfig, kubernetes_chain};
use heapster_sim::kubelet::{NodeSpec, Template};
use heapster_sinks::influxdb::{InfluxdbConfig, encoder};
use heapster_store::{Store, StoreConfig};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt;

/// Value types of the original's metrics (`metrics/core/metrics.go`): `false` for ValueInt64, `true` for ValueFloat.
const HEAPSTER_FLOAT: &[(&str, bool)] = &[
    ("uptime", false),
    ("restart_count", false),
    ("cpu/load", false),
    ("cpu/usage", false),
    ("cpu/usage_rate", false),
    ("cpu/request", false),
    ("cpu/limit", false),
    ("ephemeral_storage/usage", false),
    ("memory/usage", false),
    ("memory/cache", false),
    ("memory/rss", false),
    ("memory/working_set", false),
    ("memory/page_faults", false),
    ("memory/major_page_faults", false),
    ("memory/request", false),
    ("memory/limit", false),
    ("network/rx", false),
    ("network/rx_errors", false),
    ("network/tx", false),
    ("network/tx_errors", false),
    ("memory/page_faults_rate", true),
    ("memory/major_page_faults_rate", true),
    ("network/rx_rate", true),
    ("network/rx_errors_rate", true),
    ("network/tx_rate", true),
    ("network/tx_errors_rate", true),
    ("cpu/node_capacity", true),
    ("memory/node_capacity", true),
    ("cpu/node_allocatable", true),
    ("memory/node_allocatable", true),
    ("cpu/node_utilization", true),
    ("memory/node_utilization", true),
    ("cpu/node_reservation", true),
    ("memory/node_reservation", true),
    ("filesystem/usage", false),
    ("filesystem/limit", false),
    ("filesystem/available", false),
    ("filesystem/inodes", false),
    ("filesystem/inodes_free", false),
    ("disk/io_read_bytes", false),
    ("disk/io_write_bytes", false),
    ("disk/io_read_bytes_rate", true),
    ("disk/io_write_bytes_rate", true),
];

/// Labels Heapster's InfluxDB sink never wrote (`influxdbBlacklistLabels`), and the two labels heapster-rs's sets
/// carry that Heapster's did not.
const NOT_TAGS: &[&str] = &["pod_id", "namespace_id", "hostname", "host_id", "pod_namespace", "schedulable"];

fn cluster() -> (Vec<heapster_model::DataBatch>, i64) {
    let template = Template::builtin();
    let epoch = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
    let specs: Vec<NodeSpec> =
        (0..2).map(|i| NodeSpec { name: format!("node-{i}"), index: i, pods: 3, epoch, churn: None }).collect();
    let metadata = sim_cluster::metadata(&template, &specs, epoch).shared();
    let mut chain = kubernetes_chain(metadata, PodEnricherConfig::default(), NodeAutoscalingConfig::default());
    let at = |r: i64| epoch + Duration::seconds(600 + 15 * r);
    let batches = (0..2)
        .map(|r| chain.iter_mut().fold(sim_cluster::batch(&template, &specs, at(r)), |b, p| p.process(b)))
        .collect();
    (batches, at(1).timestamp_millis())
}

/// Compares `actual` with `tests/golden/NAME`, or rewrites the file with `UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != actual {
        let first = want.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "{name} differs from the golden file at line {} (want {:?}, got {:?}): if the change is meant, run \
             UPDATE_GOLDEN=1 cargo test -p heapster --test golden and review the diff",
            first + 1,
            want.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

async fn get(app: &axum::Router, uri: &str) -> Value {
    let resp = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200, "{uri}");
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20).await.unwrap();
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{uri}: {e}"))
}

/// Every `value` of a model API answer (a MetricResult or a MetricResultList) is a JSON `uint64`.
fn assert_uint64_values(uri: &str, v: &Value) {
    let results: Vec<&Value> = match v.get("items") {
        Some(items) => items.as_array().unwrap().iter().collect(),
        None => vec![v],
    };
    for r in results {
        for p in r["metrics"].as_array().unwrap() {
            assert!(p["value"].is_u64(), "{uri}: {p} is not a uint64, as Heapster's MetricPoint.Value");
            assert!(p.get("floatValue").is_none(), "{uri}: the model API never sent floatValue");
        }
    }
}

#[tokio::test]
async fn model_api_and_metric_export_as_heapster_answers_them() {
    let (batches, _) = cluster();
    let store = Arc::new(Store::new(StoreConfig {
        window: std::time::Duration::from_secs(3600),
        resolution: std::time::Duration::from_secs(15),
    }));
    for b in &batches {
        store.ingest(Arc::new(b.clone()));
    }
    let registry = Arc::new(prometheus_client::registry::Registry::default());
    let st = heapster_api::ApiState::new(store, registry, std::time::Duration::from_secs(15), std::time::Duration::MAX);
    let app = heapster_api::router(st);
    let (start, end) = ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
    let m = "/api/v1/model";
    let nodes = get(&app, &format!("{m}/nodes/")).await;
    let node = nodes[0].as_str().unwrap().to_owned();
    let namespaces = get(&app, &format!("{m}/namespaces/")).await;
    let ns = namespaces[0].as_str().unwrap().to_owned();
    let pods = get(&app, &format!("{m}/namespaces/{ns}/pods/")).await;
    let pod = pods[0].as_str().unwrap().to_owned();
    let containers = get(&app, &format!("{m}/namespaces/{ns}/pods/{pod}/containers/")).await;
    let container = containers[0].as_str().unwrap().to_owned();
    let free = get(&app, &format!("{m}/nodes/{node}/freecontainers/")).await;
    let sys = free[0].as_str().unwrap().replace('/', "%2F");
    let all_pods: Vec<&str> = pods.as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let range = format!("start={start}&end={end}");
    let routes = [
        format!("{m}/metrics/"),
        format!("{m}/metrics/cpu/usage_rate?{range}"),
        format!("{m}/metrics/memory/usage?{range}"),
        format!("{m}/nodes/"),
        format!("{m}/nodes/{node}/metrics/"),
        format!("{m}/nodes/{node}/metrics/cpu/usage_rate?{range}"),
        format!("{m}/nodes/{node}/metrics/memory/working_set?{range}"),
        format!("{m}/nodes/{node}/metrics/cpu/node_utilization?{range}"),
        format!("{m}/nodes/{node}/metrics/filesystem/usage?{range}&labels=resource_id:/"),
        format!("{m}/nodes/{node}/pods/"),
        format!("{m}/nodes/{node}/freecontainers/"),
        format!("{m}/nodes/{node}/freecontainers/{sys}/metrics/"),
        format!("{m}/nodes/{node}/freecontainers/{sys}/metrics/cpu/usage_rate?{range}"),
        format!("{m}/namespaces/"),
        format!("{m}/namespaces/{ns}/metrics/"),
        format!("{m}/namespaces/{ns}/metrics/cpu/usage_rate?{range}"),
        format!("{m}/namespaces/{ns}/metrics/memory/request?{range}"),
        format!("{m}/namespaces/{ns}/pods/"),
        format!("{m}/namespaces/{ns}/pods/{pod}/metrics/"),
        format!("{m}/namespaces/{ns}/pods/{pod}/metrics/cpu/usage_rate?{range}"),
        format!("{m}/namespaces/{ns}/pods/{pod}/metrics/network/rx_rate?{range}"),
        format!("{m}/namespaces/{ns}/pods/{pod}/containers/"),
        format!("{m}/namespaces/{ns}/pods/{pod}/containers/{container}/metrics/"),
        format!("{m}/namespaces/{ns}/pods/{pod}/containers/{container}/metrics/memory/usage?{range}"),
        format!("{m}/namespaces/{ns}/pods/{pod}/containers/{container}/metrics/cpu/limit?{range}"),
        format!("{m}/namespaces/{ns}/pod-list/{}/metrics/cpu/usage_rate?{range}", all_pods.join(",")),
        format!("{m}/namespaces/{ns}/pods/no-such-pod/metrics/cpu/usage_rate?{range}"),
        format!("{m}/debug/allkeys"),
    ];
    let mut answers = BTreeMap::new();
    for uri in &routes {
        let v = get(&app, uri).await;
        if uri.contains("/metrics/") && !uri.ends_with("/metrics/") {
            assert_uint64_values(uri, &v);
        }
        answers.insert(uri.clone(), v);
    }
    golden("model_api.json", &(serde_json::to_string_pretty(&answers).unwrap() + "\n"));

    let export = get(&app, "/api/v1/metric-export").await;
    for ts in export.as_array().unwrap() {
        assert!(ts["labels"].get("host_id").is_some(), "Heapster sent host_id on every entity: {}", ts["labels"]);
    }
    let schema = get(&app, "/api/v1/metric-export-schema").await;
    for (name, float) in HEAPSTER_FLOAT {
        let d = schema["metrics"].as_array().unwrap().iter().find(|d| d["name"] == *name);
        let d = d.unwrap_or_else(|| panic!("{name} missing from the schema"));
        assert_eq!(d["value_type"], json!(if *float { "double" } else { "int64" }), "{name}");
    }
    golden(
        "metric_export.json",
        &(serde_json::to_string_pretty(&json!({"export": export, "schema": schema})).unwrap() + "\n"),
    );
}

#[test]
fn influxdb_line_protocol_as_heapster_writes_it() {
    let (batches, newest) = cluster();
    let newest_batch = batches.iter().find(|b| b.timestamp == newest).unwrap();
    for (file, uri) in [
        ("influxdb_heapster.txt", "influxdb:http://h:8086?db=k8s&cluster_name=golden"),
        ("influxdb_withfields.txt", "influxdb:http://h:8086?db=k8s&withfields=true"),
    ] {
        let config = InfluxdbConfig::from_uri(&uri.parse().unwrap()).unwrap();
        let mut lines: Vec<String> =
            encoder::encode(newest_batch, &config).bodies.concat().lines().map(str::to_owned).collect();
        lines.sort();
        for line in &lines {
            let (series, rest) = line.split_once(' ').unwrap();
            let (measurement, tags) = series.split_once(',').unwrap();
            let tag_keys: Vec<&str> = tags.split(',').map(|t| t.split('=').next().unwrap()).collect();
            assert!(tag_keys.contains(&"cluster_name"), "{line}");
            for t in NOT_TAGS {
                assert!(!tag_keys.contains(t), "{file}: {t} is not one of Heapster's tags: {line}");
            }
            let (field, value) = rest.split_once(' ').unwrap().0.split_once('=').unwrap();
            let metric = if field == "value" { measurement.to_owned() } else { format!("{measurement}/{field}") };
            if let Some((_, float)) = HEAPSTER_FLOAT.iter().find(|(n, _)| *n == metric) {
                assert_eq!(!value.ends_with('i'), *float, "{file}: {metric} has Heapster's field type: {line}");
            }
        }
        assert!(lines.len() > 100, "{file}: {} lines", lines.len());
        golden(file, &(lines.join("\n") + "\n"));
    }
}
