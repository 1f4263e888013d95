//! The whole Kubernetes chain, in Heapster's order, over two rounds of a small cluster.

use crate::metadata::{ContainerMeta, NodeMeta, PodMeta, StaticMetadata};
use crate::{DataProcessor, NodeAutoscalingConfig, PodEnricherConfig, kubernetes_chain};
use heapster_model::keys;
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, Timestamp, labels};

const GIB: i64 = 1 << 30;

fn metadata() -> StaticMetadata {
    StaticMetadata::new()
        .with_namespace("shop", "uid-shop")
        .with_node(NodeMeta::new("n1", 4000, 16 * GIB).allocatable(3500, 14 * GIB).label("zone", "a"))
        .with_pod(
            PodMeta::new("shop", "web", "uid-web")
                .label("app", "web")
                .on_node("n1")
                .container(ContainerMeta::new("nginx", "nginx:1").cpu(Some(500), Some(1000)).memory(Some(GIB), None))
                .container(ContainerMeta::new("log", "fluent:2").cpu(Some(100), None).restarts(4)),
        )
        .with_pod(PodMeta::new("shop", "db", "uid-db").on_node("n1").container(
            ContainerMeta::new("pg", "postgres:16").cpu(Some(1000), Some(2000)).memory(Some(4 * GIB), Some(4 * GIB)),
        ))
}

fn set(kind: &str, base: &[(&str, &str)], t: Timestamp, cpu_ns: i64, mem: i64) -> MetricSet {
    let mut s = MetricSet { create_time: 1_000, scrape_time: t, ..Default::default() };
    s.labels = base.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Labels>();
    s.labels.insert(labels::TYPE, kind);
    s.labels.insert(labels::NODENAME, "n1");
    s.labels.insert(labels::HOSTNAME, "n1");
    s.set("cpu/usage", MetricValue::Int(cpu_ns));
    s.set("memory/usage", MetricValue::Int(mem));
    s.set("memory/working_set", MetricValue::Int(mem / 2));
    s
}

fn pod_labels(pod: &'static str, uid: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        (labels::NAMESPACE_NAME, "shop"),
        (labels::POD_NAMESPACE, "shop"),
        (labels::POD_NAME, pod),
        (labels::POD_ID, uid),
    ]
}

fn container(pod: &'static str, uid: &'static str, c: &'static str, t: Timestamp, cores: f64, mem: i64) -> MetricSet {
    let mut l = pod_labels(pod, uid);
    l.push((labels::CONTAINER_NAME, c));
    set("pod_container", &l, t, (cores * (t / 1000) as f64 * 1e9) as i64, mem)
}

/// Round `i` (0, 1) at t = 60 s, 120 s: web's containers use 0.5 + 0.25 cores, its pod cgroup 0.8 (overhead);
/// db's container uses 1 core and the kubelet reports no db pod set; an unknown pod uses 0.1; the node 2.5.
fn round(t: Timestamp) -> DataBatch {
    let secs = t / 1000;
    let mut b = DataBatch { timestamp: t, ..Default::default() };
    b.sets.insert(keys::node_key("n1"), set("node", &[], t, (2.5 * secs as f64 * 1e9) as i64, 10 * GIB));
    b.sets.insert(
        keys::pod_key("shop", "web"),
        set("pod", &pod_labels("web", "uid-web"), t, (0.8 * secs as f64 * 1e9) as i64, 3 * GIB),
    );
    b.sets
        .insert(keys::pod_container_key("shop", "web", "nginx"), container("web", "uid-web", "nginx", t, 0.5, 2 * GIB));
    b.sets.insert(keys::pod_container_key("shop", "web", "log"), container("web", "uid-web", "log", t, 0.25, GIB / 2));
    b.sets.insert(keys::pod_container_key("shop", "db", "pg"), container("db", "uid-db", "pg", t, 1.0, 4 * GIB));
    b.sets.insert(keys::pod_container_key("shop", "ghost", "c"), container("ghost", "uid-ghost", "c", t, 0.1, GIB / 4));
    b
}

fn f(set: &MetricSet, name: &str) -> Option<f64> {
    set.get(name).map(MetricValue::as_f64)
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-6)
}

#[test]
fn heapster_order_over_two_rounds_with_the_node_steps_first() {
    let mut chain =
        kubernetes_chain(metadata().shared(), PodEnricherConfig::default(), NodeAutoscalingConfig::default());
    let names: Vec<_> = chain.iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "rate_calculator",
            "pod_based_enricher",
            "namespace_based_enricher",
            "pod_aggregator",
            "node_aggregator",
            "node_autoscaling_enricher",
            "namespace_aggregator",
            "cluster_aggregator",
        ]
    );
    let run = |chain: &mut Vec<Box<dyn DataProcessor>>, b| chain.iter_mut().fold(b, |b, p| p.process(b));

    // Round 1: no rates yet.
    let first = run(&mut chain, round(60_000));
    let node = &first.sets[&keys::node_key("n1")];
    assert_eq!(f(node, "cpu/usage_rate"), None);
    assert_eq!(f(node, "cpu/node_utilization"), None, "no rate, no utilization (Heapster said 0)");
    assert!(close(f(node, "memory/node_utilization"), 10.0 / 14.0));
    let ns = &first.sets[&keys::namespace_key("shop")];
    assert_eq!(f(ns, "cpu/usage_rate"), None);

    // Round 2.
    let out = run(&mut chain, round(120_000));
    let get = |k: &str| out.sets.get(k).unwrap_or_else(|| panic!("{k} missing"));

    // Containers: enriched, with rates.
    let nginx = get(&keys::pod_container_key("shop", "web", "nginx"));
    assert!(close(f(nginx, "cpu/usage_rate"), 500.0));
    assert_eq!(nginx.labels[labels::LABELS], "app:web");
    assert_eq!(nginx.labels[labels::NAMESPACE_ID], "uid-shop");
    assert_eq!(nginx.get("cpu/request"), Some(MetricValue::Int(500)));

    // web: the pod cgroup's own rate and memory, not the container sums; requests from the spec.
    let web = get(&keys::pod_key("shop", "web"));
    assert!(close(f(web, "cpu/usage_rate"), 800.0), "{:?}", web.get("cpu/usage_rate"));
    assert_eq!(web.get("memory/usage"), Some(MetricValue::Int(3 * GIB)));
    assert_eq!(web.get("cpu/request"), Some(MetricValue::Int(600)));
    assert_eq!(web.get("restart_count"), Some(MetricValue::Int(4)), "filled in from containers");
    assert_eq!(web.labels[labels::NAMESPACE_ID], "uid-shop");

    // db: created by the pod enricher, usage summed by the pod aggregator.
    let db = get(&keys::pod_key("shop", "db"));
    assert_eq!(db.labels[labels::POD_ID], "uid-db");
    assert!(close(f(db, "cpu/usage_rate"), 1000.0));
    assert_eq!(db.get("memory/usage"), Some(MetricValue::Int(4 * GIB)));
    assert_eq!(db.get("memory/limit"), Some(MetricValue::Int(4 * GIB)));

    // ghost: unknown to metadata, unenriched, but aggregated and counted in its namespace.
    let ghost = get(&keys::pod_key("shop", "ghost"));
    assert!(!ghost.labels.contains_key(labels::LABELS));
    assert!(close(f(ghost, "cpu/usage_rate"), 100.0));
    assert_eq!(ghost.get("cpu/request"), None);

    // Namespace = sum of pods (each once): 800 + 1000 + 100 millicores.
    let ns = get(&keys::namespace_key("shop"));
    assert!(close(f(ns, "cpu/usage_rate"), 1900.0), "{:?}", ns.get("cpu/usage_rate"));
    assert_eq!(ns.get("memory/usage"), Some(MetricValue::Int(3 * GIB + 4 * GIB + GIB / 4)));
    assert_eq!(ns.get("cpu/request"), Some(MetricValue::Int(1600)));
    assert_eq!(ns.get("cpu/limit"), Some(MetricValue::Int(3000)));
    assert_eq!(ns.labels[labels::NAMESPACE_ID], "uid-shop");

    // Node: its own usage, the pods' requests; ratios against allocatable.
    let node = get(&keys::node_key("n1"));
    assert!(close(f(node, "cpu/usage_rate"), 2500.0));
    assert_eq!(node.get("cpu/request"), Some(MetricValue::Int(1600)));
    assert_eq!(node.get("memory/request"), Some(MetricValue::Int(5 * GIB)));
    assert!(close(f(node, "cpu/node_utilization"), 2500.0 / 3500.0));
    assert!(close(f(node, "cpu/node_reservation"), 1600.0 / 3500.0));
    assert!(close(f(node, "memory/node_reservation"), 5.0 / 14.0));
    assert_eq!(node.labels[labels::SCHEDULABLE], "true");
    assert_eq!(node.labels[labels::LABELS], "zone:a");

    // Cluster = sum of namespaces, as Heapster: what pods use, not the node's 2500.
    let cluster = get(&keys::cluster_key());
    assert!(close(f(cluster, "cpu/usage_rate"), 1900.0), "{:?}", cluster.get("cpu/usage_rate"));
    assert_eq!(cluster.get("cpu/request"), Some(MetricValue::Int(1600)));

    // Nothing but the expected sets: 6 scraped, the db pod, the ghost pod, the namespace, the cluster.
    assert_eq!(out.sets.len(), 10, "{:?}", out.sets.keys().collect::<Vec<_>>());
}

/// Every enricher of the chain exposes its count of unenriched sets, and the handles taken before the rounds see
/// what the boxed processors counted: the ghost container's set, once a round, by the pod enricher.
#[test]
fn the_chains_counters_are_exposed_and_live() {
    let mut chain =
        kubernetes_chain(metadata().shared(), PodEnricherConfig::default(), NodeAutoscalingConfig::default());
    let counters: Vec<_> =
        chain.iter().flat_map(|p| p.counters().into_iter().map(move |(what, c)| (p.name(), what, c))).collect();
    let names: Vec<_> = counters.iter().map(|(p, what, _)| (*p, *what)).collect();
    assert_eq!(
        names,
        [
            ("pod_based_enricher", crate::UNENRICHED_SETS),
            ("namespace_based_enricher", crate::UNENRICHED_SETS),
            ("node_autoscaling_enricher", crate::UNENRICHED_SETS),
        ]
    );
    for t in [60_000, 120_000] {
        let b = round(t);
        chain.iter_mut().fold(b, |b, p| p.process(b));
    }
    let values: Vec<u64> = counters.iter().map(|(_, _, c)| c.get()).collect();
    assert_eq!(values, [2, 0, 0]);
}
