//! A real Prometheus scrapes heapster's `/metrics/cadvisor` and `/metrics/resource` while heapster collects from the
//! simulated cluster: PromQL over what it stored agrees with heapster's model API, and `?node=` splits the page.

mod common;

use heapster_sim::{SimConfig, Simulation};
use heapster_testkit::prometheus::Prometheus;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An instant PromQL query (the testkit's client blocks, so off the async workers).
async fn query(prom: &Arc<Prometheus>, promql: &str) -> Vec<Value> {
    let (prom, promql) = (prom.clone(), promql.to_owned());
    tokio::task::spawn_blocking(move || prom.query(&promql)).await.unwrap()
}

fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

/// (namespace, pod, container) -> value of each sample.
fn by_container(samples: &[Value]) -> BTreeMap<(String, String, String), f64> {
    let label = |s: &Value, k: &str| s["metric"][k].as_str().unwrap_or("").to_owned();
    samples.iter().map(|s| ((label(s, "namespace"), label(s, "pod"), label(s, "container")), value(s))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_rate_of_the_cadvisor_page_agrees_with_the_model_api() {
    let sim = Simulation::start(SimConfig { nodes: 3, pods_per_node: 4, ..Default::default() }).await.unwrap();
    let kubelet_port = sim.nodes[0].addr.port();
    let source = format!(
        "--source=kubernetes.summary_api:http://{}?inClusterConfig=false&kubeletPort={kubelet_port}&kubeletPreferredAddressTypes=InternalIP",
        sim.api_server
    );
    let heapster = common::Heapster::start(&[&source, "--metric_resolution=2s"]);
    let port = heapster.port;
    let base = format!("http://127.0.0.1:{port}");
    // Three jobs on the one heapster: the whole cAdvisor page, one node's shard of it, and the resource page.
    let config = format!(
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\nscrape_configs:\n\
         - job_name: cadvisor\n  metrics_path: /metrics/cadvisor\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n\
         - job_name: shard\n  metrics_path: /metrics/cadvisor\n  params: {{node: [sim-node-1]}}\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n\
         - job_name: resource\n  metrics_path: /metrics/resource\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    );
    let prom = Arc::new(tokio::task::spawn_blocking(move || Prometheus::with_config(&config)).await.unwrap());

    // rate(..[1m]) extrapolates only a little past the first sample: it equals the counter's slope once a minute
    // of samples is stored. Wait for that, then for a rate of every container.
    let containers = r#"container_cpu_usage_seconds_total{job="cadvisor",container!=""}"#;
    let until = Instant::now() + Duration::from_secs(60);
    while query(&prom, containers).await.len() < 12 {
        assert!(Instant::now() < until, "Prometheus has not scraped every container from heapster");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(64)).await;
    let rates = by_container(&query(&prom, &format!("rate({containers}[1m])")).await);
    let listed = query(&prom, containers).await;
    assert!(rates.len() >= 12, "a rate per simulated container: {rates:?}");
    assert_eq!(rates.len(), listed.len(), "{rates:?}");

    let client = reqwest::Client::new();
    let mut worst: f64 = 0.0;
    for ((ns, pod, container), cores) in &rates {
        let url =
            format!("{base}/api/v1/model/namespaces/{ns}/pods/{pod}/containers/{container}/metrics/cpu/usage_rate");
        let v: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        let points = v["metrics"].as_array().unwrap_or_else(|| panic!("{url}: {v}"));
        // The model's rate is per batch (2s); average the last minute's, which is what rate(..[1m]) spans.
        let last: Vec<f64> = points.iter().rev().take(30).filter_map(|p| p["value"].as_f64()).collect();
        assert!(!last.is_empty(), "{url}: {v}");
        let model = last.iter().sum::<f64>() / last.len() as f64 / 1000.0;
        // cpu/usage_rate is whole millicores (Heapster's int64, truncated): allow that step besides 3%.
        let off = ((cores - model).abs() - 0.001).max(0.0) / model.max(0.001);
        worst = worst.max((cores - model).abs() * 1000.0);
        println!("{ns}/{pod}/{container}: PromQL {cores:.6} cores, model API {model:.6} cores");
        assert!(off < 0.03, "{ns}/{pod}/{container}: rate() {cores} cores, model cpu/usage_rate {model} cores");
    }
    println!(
        "largest difference between rate(container_cpu_usage_seconds_total[1m]) and cpu/usage_rate: {worst:.3} \
         millicores"
    );

    // The shard holds exactly sim-node-1's share of the page.
    let per_node = |job: &str| format!(r#"count by (node) (container_memory_working_set_bytes{{job="{job}"}})"#);
    let all: BTreeMap<String, f64> = query(&prom, &per_node("cadvisor"))
        .await
        .iter()
        .map(|s| (s["metric"]["node"].as_str().unwrap_or("").to_owned(), value(s)))
        .collect();
    let shard = query(&prom, &per_node("shard")).await;
    assert_eq!(shard.len(), 1, "{shard:?}");
    assert_eq!(shard[0]["metric"]["node"], "sim-node-1", "{shard:?}");
    assert_eq!(Some(&value(&shard[0])), all.get("sim-node-1"), "{all:?}");
    assert_eq!(all.len(), 3, "{all:?}");

    // The resource page: every node, pod and container, with rates that agree with the cAdvisor page's.
    let nodes = query(&prom, r#"rate(node_cpu_usage_seconds_total{job="resource"}[1m])"#).await;
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    let pods = query(&prom, r#"pod_memory_working_set_bytes{job="resource"}"#).await;
    assert_eq!(pods.len(), 12, "{pods:?}");
    // The same counters, scraped by another job: the two may differ by the one batch one job has not scraped yet.
    let resource = by_container(&query(&prom, r#"rate(container_cpu_usage_seconds_total{job="resource"}[1m])"#).await);
    let rates = by_container(&query(&prom, &format!("rate({containers}[1m])")).await);
    assert_eq!(resource.len(), rates.len(), "{resource:?}");
    for (k, v) in &resource {
        assert!((v - rates[k]).abs() <= rates[k] * 0.05 + 1e-4, "{k:?}: {v} vs {}", rates[k]);
    }
    let errors = query(&prom, r#"resource_scrape_error{job="resource"}"#).await;
    assert_eq!(errors.iter().map(value).collect::<Vec<_>>(), [0.0], "{errors:?}");
}

/// Standalone heapster (this host, no cluster): Prometheus scrapes the node's own series (`id="/"`) and the rate it
/// computes agrees with the model API's node `cpu/usage_rate` over the same minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_rate_of_a_standalone_heapsters_node_agrees_with_the_model_api() {
    let node = format!("prom-standalone-{}", std::process::id());
    let heapster = common::Heapster::start(&["--metric_resolution=2s", &format!("--source=local?hostname={node}")]);
    let port = heapster.port;
    let config = format!(
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\nscrape_configs:\n\
         - job_name: standalone\n  metrics_path: /metrics/cadvisor\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    );
    let prom = Arc::new(tokio::task::spawn_blocking(move || Prometheus::with_config(&config)).await.unwrap());
    let series = format!(r#"container_cpu_usage_seconds_total{{job="standalone",id="/",node="{node}"}}"#);
    let until = Instant::now() + Duration::from_secs(60);
    while query(&prom, &series).await.is_empty() {
        assert!(Instant::now() < until, "Prometheus has not scraped the node's series from heapster");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(64)).await;
    let rate = query(&prom, &format!("rate({series}[1m])")).await;
    assert_eq!(rate.len(), 1, "{rate:?}");
    let cores = value(&rate[0]);

    let url = format!("http://127.0.0.1:{port}/api/v1/model/nodes/{node}/metrics/cpu/usage_rate");
    let v: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    let points = v["metrics"].as_array().unwrap_or_else(|| panic!("{url}: {v}"));
    let last: Vec<f64> = points.iter().rev().take(30).filter_map(|p| p["value"].as_f64()).collect();
    assert!(last.len() >= 20, "{url}: {v}");
    let model = last.iter().sum::<f64>() / last.len() as f64 / 1000.0;
    println!("standalone node: PromQL {cores:.4} cores, model API {model:.4} cores");
    // The host's load moves between the two reads by at most a batch at either end of the minute: 10 %, plus the
    // model's whole-millicore step.
    assert!((cores - model).abs() <= model * 0.10 + 0.002, "rate() {cores} cores, model cpu/usage_rate {model} cores");
}
