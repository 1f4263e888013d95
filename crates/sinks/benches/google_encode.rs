//! What the Google sinks cost per series and per event: Cloud Monitoring `TimeSeries` JSON in the stackdriver and
//! gcm layouts (with the series rules and their state), and Cloud Logging entries.
//!
//! `cargo bench -p heapster-sinks --bench google_encode`, with `NODES` (default 100) and `PODS` (30 per node)
//! shaping the batch and `ROUNDS` (default 5) repetitions. Figures are this thread's CPU time per series (or
//! event) and bytes per series, the median of the rounds.

use heapster_model::events::{Change, Event, EventVersion};
use heapster_model::{DataBatch, MetricSet, MetricSetType, MetricValue, labels as l};
use heapster_sinks::gcl::encoder as gcl;
use heapster_sinks::gcm::encoder::{self, Context, Schema};
use heapster_sinks::util::google::Identity;
use std::collections::HashMap;
use std::sync::Arc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn set(kind: MetricSetType, labels: &[(&'static str, String)], created: i64) -> MetricSet {
    let mut s = MetricSet { create_time: created, ..Default::default() };
    s.set_kind(kind);
    for (k, v) in labels {
        s.labels.insert(*k, v.clone());
    }
    for (i, name) in ["cpu/usage", "memory/usage", "memory/working_set", "network/rx", "network/tx", "uptime"]
        .into_iter()
        .enumerate()
    {
        s.set(name, MetricValue::Int(1_000_000 * (i as i64 + 1)));
    }
    s.set("cpu/limit", MetricValue::Int(500));
    s.set("cpu/usage_rate", MetricValue::Int(120));
    s
}

fn batch(nodes: usize, pods: usize, at: i64) -> DataBatch {
    let created = at - 3_600_000;
    let mut sets = std::collections::BTreeMap::new();
    for n in 0..nodes {
        let node = format!("node-{n}");
        let mut ns = set(MetricSetType::Node, &[(l::NODENAME, node.clone()), (l::HOSTNAME, node.clone())], created);
        ns.set("cpu/node_capacity", MetricValue::Float(4000.0));
        sets.insert(format!("node:{node}"), ns);
        for p in 0..pods {
            let pod = format!("pod-{n}-{p}");
            let pl =
                [(l::NAMESPACE_NAME, "default".to_owned()), (l::POD_NAME, pod.clone()), (l::NODENAME, node.clone())];
            sets.insert(format!("namespace:default/pod:{pod}"), set(MetricSetType::Pod, &pl, created));
            let mut cl = pl.to_vec();
            cl.push((l::CONTAINER_NAME, "app".to_owned()));
            sets.insert(
                format!("namespace:default/pod:{pod}/container:app"),
                set(MetricSetType::PodContainer, &cl, created),
            );
        }
    }
    DataBatch { timestamp: at, sets }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (nodes, pods, rounds) = (env("NODES", 100), env("PODS", 30), env("ROUNDS", 5));
    let identity =
        Identity { project: "bench-project".into(), location: "europe-west1".into(), cluster_name: "c".into() };
    let now = chrono::Utc::now().timestamp_millis();
    println!("{nodes} nodes x {pods} pods, {rounds} rounds (median)");
    for (label, schema) in [("stackdriver", Schema::Stackdriver), ("gcm", Schema::Gcm { autoscaling_only: false })] {
        let mut states = HashMap::new();
        let (mut per_series, mut bytes, mut series) = (Vec::new(), 0, 0);
        for r in 0..rounds {
            // Each round 60 s after the last, as heapster's batches come, with the state of the rounds before.
            let b = batch(nodes, pods, now - (rounds - r) as i64 * 60_000);
            let cx = Context {
                identity: &identity,
                prefix: "custom.googleapis.com/kubernetes.io/",
                schema,
                now,
                min_spacing: encoder::MIN_SPACING_MS,
                states: &states,
            };
            let start = heapster_testkit::bench::thread_cpu();
            let e = encoder::encode(&b, &cx);
            let bodies = encoder::requests(&e.series, 200);
            let took = heapster_testkit::bench::thread_cpu() - start;
            assert!(e.dropped.is_empty(), "{:?}", e.dropped);
            series = e.series.len();
            bytes = bodies.iter().map(|(b, _)| b.len()).sum::<usize>();
            per_series.push(took / series as f64 * 1e6);
            states.extend(e.series.iter().map(|s| (s.key, s.state)));
        }
        println!(
            "{label:>11}: {series} series a batch, {:.2} µs CPU and {} bytes of JSON per series",
            median(per_series),
            bytes / series
        );
    }
    let events: Vec<EventVersion> = (0..10_000)
        .map(|i| {
            let mut e = Event::default();
            e.metadata.name = format!("pod-{i}.17f3a");
            e.metadata.namespace = "default".into();
            e.metadata.uid = format!("6a1c{i:08}-0000-4000-8000-000000000000");
            e.metadata.resource_version = (1000 + i).to_string();
            e.involved_object.kind = "Pod".into();
            e.involved_object.namespace = "default".into();
            e.involved_object.name = format!("pod-{i}");
            e.reason = "BackOff".into();
            e.message = "Back-off restarting failed container app in pod".into();
            e.type_ = "Warning".into();
            e.last_timestamp = Some("2026-12-03T10:05:00Z".into());
            EventVersion { change: Change::Added, event: Arc::new(e) }
        })
        .collect();
    let log_name = gcl::log_name("bench-project");
    let mut per_event = Vec::new();
    for _ in 0..rounds {
        let start = heapster_testkit::bench::thread_cpu();
        let entries: Vec<Vec<u8>> = events.iter().filter_map(|v| gcl::entry(v, &identity, &log_name, now)).collect();
        let bodies = gcl::requests(&entries);
        per_event.push((heapster_testkit::bench::thread_cpu() - start) / events.len() as f64 * 1e6);
        assert_eq!(bodies.iter().map(|(_, n)| n).sum::<usize>(), events.len());
    }
    println!("        gcl: {:.2} µs CPU per event (entry JSON and requests)", median(per_event));
}
