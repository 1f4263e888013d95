//! custom.metrics.k8s.io end to end: the real heapster binary scraping the simulated cluster, whose pods receive
//! known network rates, read the way the HPA controller reads it.
//!
//! - The requests are built as `k8s.io/metrics/pkg/client/custom_metrics` (`versioned_client.go`) builds them:
//!   the version picked from `/apis` discovery, `GetForObjects` as `.../namespaces/NS/pods/*/METRIC?labelSelector=`,
//!   a namespace's own metric as `.../namespaces/NS/metrics/METRIC`, `GetForObject` requiring exactly one item;
//!   answers of both versions decoded into the API's types and v1beta1 converted to v1beta2 as its converter does.
//! - The replica counts are computed from those answers by a port of `pkg/controller/podautoscaler/
//!   replica_calculator.go` (`calcPlainMetricReplicas` for Pods metrics, `GetObjectMetricReplicas` and
//!   `GetObjectPerPodMetricReplicas` for Object metrics; values as `Quantity.MilliValue()`, 10 % tolerance) with the
//!   pods the simulated API server lists, and compared with a table worked out by hand from the known rates.
//! - `kubectl get --raw` reads the same documents.

mod common;

use common::kubectl::Kubectl;
use heapster_sim::kubelet::Template;
use heapster_sim::{SimConfig, Simulation};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Each node's pods in namespace `web` and the bytes a second each receives: four `app=web` pods the HPA scales
/// and a `db` pod its selector leaves out. Two nodes: 8 web pods, 6.1 MB/s between them (762.5 kB/s on
/// average); the namespace, 6.184 MB/s.
const PODS: [(&str, f64); 5] =
    [("web", 250_000.0), ("web", 500_000.0), ("web", 1_000_000.0), ("web", 1_300_000.0), ("db", 42_000.0)];
const NODES: usize = 2;
const RESOLUTION_S: i64 = 2;

struct Heapster(Child, String);

impl Drop for Heapster {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get(base: &str, path: &str) -> (u16, String) {
    heapster_sources::ensure_crypto_provider();
    match reqwest::get(format!("{base}{path}")).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

// ---- The API's types (k8s.io/metrics/pkg/apis/custom_metrics/{v1beta2,v1beta1}/types.go) ----

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectReference {
    kind: String,
    #[serde(default)]
    namespace: String,
    name: String,
    #[serde(rename = "apiVersion", default)]
    api_version: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricIdentifier {
    name: String,
    selector: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetricValueV1beta2 {
    described_object: ObjectReference,
    metric: MetricIdentifier,
    timestamp: String,
    window_seconds: Option<i64>,
    value: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetricValueV1beta1 {
    described_object: ObjectReference,
    metric_name: String,
    timestamp: String,
    #[serde(rename = "window")]
    window_seconds: Option<i64>,
    value: String,
    selector: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetricValueList<T> {
    kind: String,
    api_version: String,
    #[allow(dead_code)]
    metadata: Value,
    items: Vec<T>,
}

/// v1beta1 to v1beta2, as the client's `ConvertResultToVersion` does: the name and selector move into `metric`.
impl From<MetricValueV1beta1> for MetricValueV1beta2 {
    fn from(v: MetricValueV1beta1) -> Self {
        MetricValueV1beta2 {
            described_object: v.described_object,
            metric: MetricIdentifier { name: v.metric_name, selector: v.selector },
            timestamp: v.timestamp,
            window_seconds: v.window_seconds,
            value: v.value,
        }
    }
}

/// `resource.Quantity.MilliValue()`: the value in thousandths, rounded up.
fn milli_value(q: &str) -> i64 {
    let v = heapster_model::quantity::parse(q).unwrap_or_else(|| panic!("{q:?} is not a Quantity"));
    (v * 1000.0 - 1e-6).ceil() as i64
}

// ---- The client (k8s.io/metrics/pkg/client/custom_metrics/versioned_client.go) ----

/// A custom metrics client for one version: the paths and query strings it builds, the answers it accepts.
struct CustomMetricsClient {
    base: String,
    version: String,
}

/// `MetricListOptions` as query parameters: empty selectors (`labels.Everything()`) are left out.
fn list_options(label_selector: &str, metric_label_selector: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let mut q = Vec::new();
    if !label_selector.is_empty() {
        q.push(format!("labelSelector={}", enc(label_selector)));
    }
    if !metric_label_selector.is_empty() {
        q.push(format!("metricLabelSelector={}", enc(metric_label_selector)));
    }
    if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) }
}

impl CustomMetricsClient {
    /// The version the client picks from discovery (`apiVersionsFromDiscovery`): the group's preferred version
    /// when the client supports it.
    async fn discover(base: &str) -> CustomMetricsClient {
        let (status, body) = get(base, "/apis").await;
        assert_eq!(status, 200, "{body}");
        let groups: Value = serde_json::from_str(&body).unwrap();
        let group = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "custom.metrics.k8s.io")
            .unwrap_or_else(|| panic!("custom.metrics.k8s.io is not in /apis: {groups}"))
            .clone();
        let preferred = group["preferredVersion"]["version"].as_str().unwrap().to_owned();
        assert!(["v1beta2", "v1beta1"].contains(&preferred.as_str()));
        CustomMetricsClient::for_version(base, &preferred)
    }

    fn for_version(base: &str, version: &str) -> CustomMetricsClient {
        CustomMetricsClient { base: base.to_owned(), version: version.to_owned() }
    }

    /// `GET path`, decoded as the version's MetricValueList and converted to v1beta2.
    async fn list(&self, path: &str) -> Result<Vec<MetricValueV1beta2>, String> {
        let full = format!("/apis/custom.metrics.k8s.io/{}{path}", self.version);
        let (status, body) = get(&self.base, &full).await;
        if status != 200 {
            let s: Value = serde_json::from_str(&body).map_err(|e| format!("{full}: {status}, not a Status ({e})"))?;
            assert_eq!(s["kind"], "Status", "{full}: {body}");
            return Err(format!("{status} {}: {}", s["reason"], s["message"]));
        }
        let want_api_version = format!("custom.metrics.k8s.io/{}", self.version);
        let decode_err = |e: serde_json::Error| format!("{full}: {e}: {body}");
        let (kind, api_version, items) = match self.version.as_str() {
            "v1beta2" => {
                let l: MetricValueList<MetricValueV1beta2> = serde_json::from_str(&body).map_err(decode_err)?;
                (l.kind, l.api_version, l.items)
            }
            _ => {
                let l: MetricValueList<MetricValueV1beta1> = serde_json::from_str(&body).map_err(decode_err)?;
                (l.kind, l.api_version, l.items.into_iter().map(Into::into).collect())
            }
        };
        assert_eq!((kind.as_str(), api_version.as_str()), ("MetricValueList", want_api_version.as_str()), "{full}");
        Ok(items)
    }

    /// `NamespacedMetrics(ns).GetForObjects(Pod, selector, metric, Everything())`.
    async fn pods_by_selector(
        &self,
        ns: &str,
        selector: &str,
        metric: &str,
    ) -> Result<Vec<MetricValueV1beta2>, String> {
        self.list(&format!("/namespaces/{ns}/pods/*/{metric}{}", list_options(selector, ""))).await
    }

    /// `GetForObject`: exactly one item or an error, as the client insists.
    async fn one(&self, path: &str) -> Result<MetricValueV1beta2, String> {
        let mut items = self.list(path).await?;
        if items.len() != 1 {
            return Err(format!(
                "the custom metrics API server returned {} results when we asked for exactly one",
                items.len()
            ));
        }
        Ok(items.remove(0))
    }

    /// `NamespacedMetrics(ns).GetForObject(Pod, name, metric, Everything())`.
    async fn pod(&self, ns: &str, name: &str, metric: &str) -> Result<MetricValueV1beta2, String> {
        self.one(&format!("/namespaces/{ns}/pods/{name}/{metric}")).await
    }

    /// `RootScopedMetrics().GetForObject(Namespace, ns, metric, Everything())`: the `metrics` pseudo-resource.
    async fn namespace(&self, ns: &str, metric: &str) -> Result<MetricValueV1beta2, String> {
        self.one(&format!("/namespaces/{ns}/metrics/{metric}")).await
    }

    /// `RootScopedMetrics().GetForObject(Node, name, metric, Everything())`.
    async fn node(&self, name: &str, metric: &str) -> Result<MetricValueV1beta2, String> {
        self.one(&format!("/nodes/{name}/{metric}")).await
    }
}

// ---- The HPA's replica calculator (pkg/controller/podautoscaler/replica_calculator.go) ----

const TOLERANCE: f64 = 0.1;

/// A pod as the HPA's pod lister sees it.
#[derive(Debug, Clone)]
struct HpaPod {
    name: String,
    phase: String,
    ready: bool,
    deleting: bool,
}

/// `GetMetricUtilizationRatio`: the average (integer division, as Go's int64) over the target, and the average.
fn usage_ratio(metrics: &BTreeMap<String, i64>, target: i64) -> (f64, i64) {
    let total: i64 = metrics.values().sum();
    let avg = total / metrics.len() as i64;
    (avg as f64 / target as f64, avg)
}

/// `GetMetricReplicas` → `calcPlainMetricReplicas` for a Pods metric (AverageValue `target`, milli-units).
fn pods_metric_replicas(current: i32, target: i64, mut metrics: BTreeMap<String, i64>, pods: &[HpaPod]) -> i32 {
    assert!(!pods.is_empty(), "no pods returned by selector while calculating replica count");
    // groupPods, for a metric that is not CPU: Pending pods are ignored, pods without a value are missing.
    let (mut ready, mut ignored, mut missing) = (0, Vec::new(), Vec::new());
    for p in pods {
        if p.deleting || p.phase == "Failed" {
            continue;
        }
        if p.phase == "Pending" {
            ignored.push(p.name.clone());
            continue;
        }
        if !metrics.contains_key(&p.name) {
            missing.push(p.name.clone());
            continue;
        }
        ready += 1;
    }
    for p in &ignored {
        metrics.remove(p);
    }
    assert!(!metrics.is_empty(), "did not receive metrics for any ready pods");
    let (ratio, _) = usage_ratio(&metrics, target);
    let rebalance_ignored = !ignored.is_empty() && ratio > 1.0;
    if !rebalance_ignored && missing.is_empty() {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return current;
        }
        return (ratio * ready as f64).ceil() as i32;
    }
    for p in &missing {
        // Scale-down: missing pods count as using the target; scale-up: as using nothing.
        metrics.insert(p.clone(), if ratio < 1.0 { target } else { 0 });
    }
    if rebalance_ignored {
        for p in &ignored {
            metrics.insert(p.clone(), 0);
        }
    }
    let (new_ratio, _) = usage_ratio(&metrics, target);
    if (1.0 - new_ratio).abs() <= TOLERANCE || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
        return current;
    }
    (new_ratio * metrics.len() as f64).ceil() as i32
}

/// `GetObjectMetricReplicas` → `getUsageRatioReplicaCount` for an Object metric with a Value target.
fn object_value_replicas(current: i32, target: i64, value: i64, pods: &[HpaPod]) -> i32 {
    let ratio = value as f64 / target as f64;
    if current == 0 {
        return ratio.ceil() as i32;
    }
    if (1.0 - ratio).abs() <= TOLERANCE {
        return current;
    }
    // getReadyPodsCount: Running and Ready.
    let ready = pods.iter().filter(|p| p.phase == "Running" && p.ready).count();
    (ratio * ready as f64).ceil() as i32
}

/// `GetObjectPerPodMetricReplicas` for an Object metric with an AverageValue target.
fn object_average_replicas(status_replicas: i32, target: i64, value: i64) -> i32 {
    let ratio = value as f64 / (target as f64 * status_replicas as f64);
    if (1.0 - ratio).abs() > TOLERANCE { (value as f64 / target as f64).ceil() as i32 } else { status_replicas }
}

/// The pods of namespace `web` labelled `app=<app>` that the simulated API server lists, as the HPA's pod lister
/// has them.
async fn listed_pods(sim: &Simulation, app: &str) -> Vec<HpaPod> {
    let (status, body) = get(&sim.api_url(), "/api/v1/pods").await;
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let items: Vec<k8s_openapi::api::core::v1::Pod> = serde_json::from_value(list["items"].clone()).unwrap();
    items
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some("web"))
        .filter(|p| p.metadata.labels.as_ref().is_some_and(|l| l.get("app").map(String::as_str) == Some(app)))
        .map(|p| {
            let status = p.status.unwrap_or_default();
            let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
            HpaPod {
                name: p.metadata.name.unwrap_or_default(),
                phase: status.phase.unwrap_or_default(),
                ready,
                deleting: p.metadata.deletion_timestamp.is_some(),
            }
        })
        .collect()
}

fn extra_pod(name: &str, phase: &str, ready: bool) -> HpaPod {
    HpaPod { name: name.into(), phase: phase.into(), ready, deleting: false }
}

/// The known rate of pod `name` (`app-NODE-SLOT-gN`).
fn known_rate(name: &str) -> f64 {
    let slot: usize = name.split('-').nth(2).unwrap().parse().unwrap();
    PODS[slot].1
}

async fn start() -> (Simulation, Heapster) {
    let template = Template::with_network_rates("web", &PODS);
    let config = SimConfig { nodes: NODES, pods_per_node: PODS.len(), ..Default::default() };
    let epoch = chrono::Utc::now() - chrono::Duration::seconds(30);
    let sim = Simulation::start_with(config, template, epoch).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_heapster"))
        .args([
            &common::sim_source(&sim),
            &format!("--metric_resolution={RESOLUTION_S}s"),
            "--listen_ip=127.0.0.1",
            &format!("--heapster_port={port}"),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let h = Heapster(child, format!("http://127.0.0.1:{port}"));
    // Rates need two scrapes; wait until every pod and the namespace have one.
    let client = CustomMetricsClient::for_version(&h.1, "v1beta2");
    let until = Instant::now() + Duration::from_secs(40);
    loop {
        let pods = client.pods_by_selector("web", "", "network_rx_rate").await.unwrap_or_default();
        let ns = client.namespace("web", "network_rx_rate").await;
        if pods.len() == NODES * PODS.len() && ns.is_ok() {
            break;
        }
        assert!(Instant::now() < until, "no rates for every pod after 40 s: {} pods, namespace {ns:?}", pods.len());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (sim, h)
}

/// Reads of one moment: the web pods' values and the namespace's, from the same batch.
async fn consistent_reads(client: &CustomMetricsClient) -> (Vec<MetricValueV1beta2>, MetricValueV1beta2) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let pods = client.pods_by_selector("web", "app=web", "network_rx_rate").await.unwrap();
        let ns = client.namespace("web", "network_rx_rate").await.unwrap();
        if pods.iter().all(|p| p.timestamp == ns.timestamp) {
            return (pods, ns);
        }
        assert!(Instant::now() < until, "reads never came from one batch");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_client_requests_decode_in_both_versions() {
    let (_sim, h) = start().await;
    let client = CustomMetricsClient::discover(&h.1).await;
    assert_eq!(client.version, "v1beta2", "the preferred version");
    let v1 = CustomMetricsClient::for_version(&h.1, "v1beta1");

    // Pods by selector: only the app=web pods, each at its known rate, stamped with the resolution as window.
    let (pods, ns) = consistent_reads(&client).await;
    assert_eq!(pods.len(), NODES * 4, "{pods:?}");
    for p in &pods {
        let o = &p.described_object;
        assert_eq!((o.kind.as_str(), o.namespace.as_str(), o.api_version.as_str()), ("Pod", "web", "v1"));
        assert_eq!(p.metric, MetricIdentifier { name: "network_rx_rate".into(), selector: None });
        assert_eq!(p.window_seconds, Some(RESOLUTION_S));
        let got = milli_value(&p.value) as f64 / 1000.0;
        let want = known_rate(&o.name);
        assert!((got - want).abs() <= 1.0, "{}: {} B/s, want {want}", o.name, p.value);
        assert!(o.name.starts_with("web-"), "{} is not selected by app=web", o.name);
    }
    // The namespace object: the sum over its pods, db included.
    assert_eq!(
        ns.described_object,
        ObjectReference {
            kind: "Namespace".into(),
            namespace: String::new(),
            name: "web".into(),
            api_version: "v1".into()
        }
    );
    let ns_rate = milli_value(&ns.value) as f64 / 1000.0;
    let want: f64 = NODES as f64 * PODS.iter().map(|p| p.1).sum::<f64>();
    assert!((ns_rate - want).abs() <= 10.0, "namespace web: {ns_rate} B/s, want {want}");

    // The same through v1beta1, converted: the same objects and values (read until both come from one batch).
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let a = client.pods_by_selector("web", "app=web", "network_rx_rate").await.unwrap();
        let b = v1.pods_by_selector("web", "app=web", "network_rx_rate").await.unwrap();
        if a[0].timestamp == b[0].timestamp {
            assert_eq!(a, b);
            break;
        }
        assert!(Instant::now() < until, "v1beta1 and v1beta2 never read the same batch");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let one = v1.pod("web", "web-1-2-g0", "network_rx_rate").await.unwrap();
    assert_eq!(one.metric.name, "network_rx_rate");
    assert!((milli_value(&one.value) as f64 / 1000.0 - 1_000_000.0).abs() <= 1.0, "{one:?}");
    let ns1 = v1.namespace("web", "network_rx_rate").await.unwrap();
    assert_eq!(ns1.described_object.kind, "Namespace");

    // Other metrics and objects: CPU in cores (millicores as `m`), a node's metric.
    let cpu = client.pod("web", "web-0-0-g0", "cpu_usage_rate").await.unwrap();
    assert!(cpu.value.ends_with('m') || cpu.value.chars().all(|c| c.is_ascii_digit()), "{cpu:?}");
    let node = client.node("sim-node-1", "cpu_usage_rate").await.unwrap();
    assert_eq!((node.described_object.kind.as_str(), node.described_object.name.as_str()), ("Node", "sim-node-1"));
    let nodes = client.list(&format!("/nodes/*/memory_working_set{}", list_options("", ""))).await.unwrap();
    assert_eq!(nodes.len(), NODES);

    // What the client reports for the errors it meets.
    let e = client.pod("web", "web-9-9-g0", "network_rx_rate").await.unwrap_err();
    assert!(e.starts_with("404 \"NotFound\""), "{e}");
    let e = client.pods_by_selector("web", "app=web", "no_such_metric").await.unwrap_err();
    assert!(e.contains("NotFound") && e.contains("no_such_metric"), "{e}");
    let e = client.pods_by_selector("web", "app in (web", "network_rx_rate").await.unwrap_err();
    assert!(e.starts_with("400 \"BadRequest\""), "{e}");
    // A selector nothing matches is an empty list (the HPA then says it got no metrics), not an error.
    assert!(client.pods_by_selector("web", "app=none", "network_rx_rate").await.unwrap().is_empty());

    // Discovery lists the metric for pods (namespaced) and for namespaces and nodes (not).
    let (_, body) = get(&h.1, "/apis/custom.metrics.k8s.io/v1beta2").await;
    let resources: Value = serde_json::from_str(&body).unwrap();
    let find = |name: &str| resources["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).cloned();
    assert_eq!(find("pods/network_rx_rate").unwrap()["namespaced"], true, "{resources}");
    assert_eq!(find("namespaces/network_rx_rate").unwrap()["namespaced"], false);
    assert_eq!(find("nodes/cpu_usage_rate").unwrap()["namespaced"], false);
}

/// One row of the HPA table: a metric spec, the replicas now, extra pods the HPA's lister sees beyond the
/// simulated ones, and the replica count Kubernetes computes.
struct Case {
    what: &'static str,
    metric: Metric,
    current: i32,
    extra: Vec<HpaPod>,
    want: i32,
}

enum Metric {
    /// `type: Pods`, `target.averageValue` (bytes/s).
    PodsAverage(f64),
    /// `type: Object` on the namespace, `target.value`.
    ObjectValue(f64),
    /// `type: Object` on the namespace, `target.averageValue`.
    ObjectAverage(f64),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_replica_counts_match_what_kubernetes_computes() {
    let (sim, h) = start().await;
    let client = CustomMetricsClient::discover(&h.1).await;
    let listed = listed_pods(&sim, "web").await;
    assert_eq!(listed.len(), NODES * 4);
    assert!(listed.iter().all(|p| p.phase == "Running" && p.ready), "{listed:?}");
    let pending = || vec![extra_pod("web-new-pending", "Pending", false)];
    let no_metrics = || vec![extra_pod("web-new-running", "Running", false)];
    let failed = || vec![extra_pod("web-old-failed", "Failed", false)];
    // Web pods: 8 receiving 6.1 MB/s, 762.5 kB/s each on average; namespace web: 6.184 MB/s.
    let cases = vec![
        // Pods metric: ratio 762.5k / 500k = 1.525 → ceil(1.525 × 8) = ceil(12.2).
        Case { what: "Pods 500k", metric: Metric::PodsAverage(500e3), current: 8, extra: vec![], want: 13 },
        // 762.5k / 700k = 1.089: within the 10 % tolerance, no change.
        Case { what: "Pods 700k (tolerance)", metric: Metric::PodsAverage(700e3), current: 8, extra: vec![], want: 8 },
        Case { what: "Pods 800k (tolerance)", metric: Metric::PodsAverage(800e3), current: 8, extra: vec![], want: 8 },
        // 762.5k / 2M = 0.381 → ceil(3.05).
        Case { what: "Pods 2M", metric: Metric::PodsAverage(2e6), current: 8, extra: vec![], want: 4 },
        // The current count is the spec's; the ready pods are what is multiplied.
        Case { what: "Pods 500k, spec 3", metric: Metric::PodsAverage(500e3), current: 3, extra: vec![], want: 13 },
        // A Running pod without a value yet, scaling up: counted as 0 → 6.1M / 9 / 500k = 1.356 → ceil(12.2).
        Case {
            what: "Pods 500k + missing",
            metric: Metric::PodsAverage(500e3),
            current: 9,
            extra: no_metrics(),
            want: 13,
        },
        // Scaling down: counted at the target → (6.1M + 2M) / 9 / 2M = 0.45 → ceil(4.05).
        Case { what: "Pods 2M + missing", metric: Metric::PodsAverage(2e6), current: 9, extra: no_metrics(), want: 5 },
        // 0.953, scaling down: missing at the target → (6.1M + 0.8M) / 9 / 800k = 0.958: tolerance.
        Case {
            what: "Pods 800k + missing",
            metric: Metric::PodsAverage(800e3),
            current: 9,
            extra: no_metrics(),
            want: 9,
        },
        // A Pending pod, scaling up: rebalanced as 0 → 6.1M / 9 / 500k → ceil(12.2).
        Case {
            what: "Pods 500k + pending",
            metric: Metric::PodsAverage(500e3),
            current: 9,
            extra: pending(),
            want: 13,
        },
        // Scaling down: ignored → ceil(0.381 × 8).
        Case { what: "Pods 2M + pending", metric: Metric::PodsAverage(2e6), current: 9, extra: pending(), want: 4 },
        // A Failed pod is left out altogether.
        Case { what: "Pods 500k + failed", metric: Metric::PodsAverage(500e3), current: 8, extra: failed(), want: 13 },
        // Object Value: 6.184M / 3M = 2.061 × 8 ready pods → ceil(16.49).
        Case { what: "Object 3M", metric: Metric::ObjectValue(3e6), current: 8, extra: vec![], want: 17 },
        // 6.184M / 6M = 1.031: tolerance.
        Case { what: "Object 6M (tolerance)", metric: Metric::ObjectValue(6e6), current: 8, extra: vec![], want: 8 },
        // 0.6184 × 8 → ceil(4.95).
        Case { what: "Object 10M", metric: Metric::ObjectValue(10e6), current: 8, extra: vec![], want: 5 },
        // Only Running and Ready pods count: a Pending one does not → still × 8.
        Case { what: "Object 3M + pending", metric: Metric::ObjectValue(3e6), current: 9, extra: pending(), want: 17 },
        // From zero replicas: ceil(ratio).
        Case { what: "Object 3M from 0", metric: Metric::ObjectValue(3e6), current: 0, extra: vec![], want: 3 },
        // Object AverageValue: 6.184M / (500k × 8) = 1.546 → ceil(6.184M / 500k) = ceil(12.37).
        Case { what: "Object avg 500k", metric: Metric::ObjectAverage(500e3), current: 8, extra: vec![], want: 13 },
        // 6.184M / (800k × 8) = 0.966: tolerance.
        Case {
            what: "Object avg 800k (tolerance)",
            metric: Metric::ObjectAverage(800e3),
            current: 8,
            extra: vec![],
            want: 8,
        },
        // ceil(6.184M / 2M) = ceil(3.09).
        Case { what: "Object avg 2M", metric: Metric::ObjectAverage(2e6), current: 8, extra: vec![], want: 4 },
    ];
    let (pods, ns) = consistent_reads(&client).await;
    let metrics: BTreeMap<String, i64> =
        pods.iter().map(|p| (p.described_object.name.clone(), milli_value(&p.value))).collect();
    let ns_value = milli_value(&ns.value);
    let mut failures = Vec::new();
    let mut table = String::new();
    for c in &cases {
        let mut seen = listed.clone();
        seen.extend(c.extra.iter().cloned());
        let got = match c.metric {
            Metric::PodsAverage(t) => pods_metric_replicas(c.current, (t * 1000.0) as i64, metrics.clone(), &seen),
            Metric::ObjectValue(t) => object_value_replicas(c.current, (t * 1000.0) as i64, ns_value, &seen),
            Metric::ObjectAverage(t) => object_average_replicas(c.current, (t * 1000.0) as i64, ns_value),
        };
        table.push_str(&format!("{:<30} current {:>2} → {got:>2} (want {})\n", c.what, c.current, c.want));
        if got != c.want {
            failures.push(c.what);
        }
    }
    println!("{table}");
    assert!(failures.is_empty(), "wrong replica counts for {failures:?}:\n{table}");
    // An HPA with both metrics (the README's example) takes the larger proposal.
    let both = pods_metric_replicas(8, 500_000_000, metrics.clone(), &listed).max(object_value_replicas(
        8,
        3_000_000_000,
        ns_value,
        &listed,
    ));
    assert_eq!(both, 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_raw_reads_custom_metrics() {
    let (_sim, h) = start().await;
    let port: u16 = h.1.rsplit(':').next().unwrap().parse().unwrap();
    tokio::task::spawn_blocking(move || {
        let k = Kubectl::new("custom-metrics");
        let raw = |path: &str| -> Value {
            let out = k.run(port, &["get", "--raw", path]);
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl get --raw {path}: {e}: {out}"))
        };
        let group = raw("/apis/custom.metrics.k8s.io");
        assert_eq!(group["preferredVersion"]["version"], "v1beta2");
        let resources = raw("/apis/custom.metrics.k8s.io/v1beta2");
        let names: Vec<&str> =
            resources["resources"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
        for want in ["pods/network_rx_rate", "namespaces/network_rx_rate", "nodes/memory_working_set"] {
            assert!(names.contains(&want), "{want} not in {names:?}");
        }
        let list =
            raw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/web/pods/*/network_rx_rate?labelSelector=app%3Dweb");
        assert_eq!(list["kind"], "MetricValueList");
        assert_eq!(list["items"].as_array().unwrap().len(), NODES * 4);
        for item in list["items"].as_array().unwrap() {
            let got = milli_value(item["value"].as_str().unwrap()) as f64 / 1000.0;
            let name = item["describedObject"]["name"].as_str().unwrap();
            assert!((got - known_rate(name)).abs() <= 1.0, "{item}");
        }
        let one = raw("/apis/custom.metrics.k8s.io/v1beta1/namespaces/web/pods/web-0-3-g0/network_rx_rate");
        assert_eq!(one["items"][0]["metricName"], "network_rx_rate");
        let ns = raw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/web/metrics/network_rx_rate");
        assert_eq!(ns["items"][0]["describedObject"]["kind"], "Namespace");
        // kubectl prints the Status of a missing object as the API server's own.
        let (ok, _, err) = k.try_run(
            port,
            &["get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/web/pods/nope/network_rx_rate"],
        );
        assert!(!ok && err.contains("NotFound"), "{err}");
    })
    .await
    .unwrap();
}
