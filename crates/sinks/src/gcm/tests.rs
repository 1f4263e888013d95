//! The Cloud Monitoring sinks against the local fake of Monitoring v3 (`heapster_testkit::google`), which refuses
//! what the service refuses: every rule the encoder keeps is also checked there, so a break shows up as a refusal.

use super::*;
use crate::util::google::fake_tests::{nowhere, temp_dir};
use crate::util::google::now_millis;
use heapster_model::{Labels, MetricSet, MetricSetType, MetricValue, labels as l};
use heapster_testkit::google::{GoogleFake, Service};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

const PROJECT: &str = "gcm-test-project";

struct Setup {
    fake: GoogleFake,
    env: Env,
    metrics: SinkMetrics,
    registry: Registry,
}

fn setup(name: &str) -> Setup {
    let fake = GoogleFake::start_blocking();
    let key = fake.write_service_account_key(&temp_dir(name), PROJECT);
    let env = Env { credentials_file: Some(key), project_id: None, metadata_host: Some(nowhere()) };
    let mut registry = Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    Setup { fake, env, metrics, registry }
}

impl Setup {
    fn sink(&self, kind: &str, options: &str) -> GcmSink {
        let uri =
            format!("{kind}:?endpoint={}&cluster_name=c1&cluster_location=europe-west1{options}", self.fake.url());
        let uri = if kind == "gcm" { uri.replace("&cluster_name=c1&cluster_location=europe-west1", "") } else { uri };
        GcmSink::new(&uri.parse().unwrap(), &self.metrics, &self.env).unwrap()
    }

    /// The sink's self-metrics as text, `name{labels} value` per line.
    fn metrics_text(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry).unwrap();
        s
    }

    fn metric(&self, prefix: &str) -> f64 {
        self.metrics_text()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    }
}

fn set(kind: MetricSetType, labels: &[(&'static str, &str)], created: i64) -> MetricSet {
    let mut s = MetricSet { create_time: created, ..Default::default() };
    s.set_kind(kind);
    for (k, v) in labels {
        s.labels.insert(*k, (*v).to_owned());
    }
    s
}

/// A node with `containers` containers in one pod each at `t0 + offset`, everything created 10 minutes before
/// `t0`; counters grow with `round`.
fn cluster(t0: i64, offset: i64, containers: usize, round: i64) -> DataBatch {
    let (at, created) = (t0 + offset, t0 - 600_000);
    let mut sets = BTreeMap::new();
    let mut node = set(MetricSetType::Node, &[(l::NODENAME, "n1"), (l::HOSTNAME, "n1"), (l::HOST_ID, "i-1")], created);
    node.set("cpu/usage", MetricValue::Int(9_000_000_000 + round * 1_000_000_000));
    node.set("cpu/node_capacity", MetricValue::Float(4000.0));
    node.set("memory/node_capacity", MetricValue::Float(8e9));
    node.set("memory/usage", MetricValue::Int(3_000_000));
    node.set("memory/working_set", MetricValue::Int(2_000_000));
    node.set("network/rx", MetricValue::Int(1000 + round));
    sets.insert("node:n1".to_owned(), node);
    let mut kubelet = set(MetricSetType::SysContainer, &[(l::NODENAME, "n1"), (l::CONTAINER_NAME, "kubelet")], created);
    kubelet.set("cpu/usage", MetricValue::Int(5_000_000_000 + round));
    sets.insert("node:n1/container:kubelet".to_owned(), kubelet);
    for i in 0..containers {
        let pod = format!("p{i}");
        let podl = [(l::NAMESPACE_NAME, "default"), (l::POD_NAME, pod.as_str()), (l::NODENAME, "n1")];
        let mut p = set(MetricSetType::Pod, &podl, created);
        p.set("network/tx", MetricValue::Int(77 + round));
        let fs: Labels = [(l::RESOURCE_ID, "Volume:data".to_owned())].into_iter().collect();
        p.add_labeled("filesystem/usage", std::sync::Arc::new(fs), MetricValue::Int(4096));
        sets.insert(format!("namespace:default/pod:{pod}"), p);
        let mut c = set(
            MetricSetType::PodContainer,
            &[(l::NAMESPACE_NAME, "default"), (l::POD_NAME, pod.as_str()), (l::CONTAINER_NAME, "app")],
            created,
        );
        c.set("cpu/usage", MetricValue::Int(1_000_000_000 * (round + 1)));
        c.set("uptime", MetricValue::Int(600_000 + round * 10_000));
        c.set("memory/usage", MetricValue::Int(5000));
        c.set("memory/working_set", MetricValue::Int(4000));
        c.set("restart_count", MetricValue::Int(0));
        sets.insert(format!("namespace:default/pod:{pod}/container:app"), c);
    }
    DataBatch { timestamp: at, sets }
}

/// Series the stackdriver sink writes for [`cluster`]: node 6 (cpu, 2 capacities, 2 memory, rx), kubelet 1, and
/// per pod 2 (tx, volume) and per container 5 (cpu, uptime, 2 memory, restarts).
fn series_of(containers: usize) -> usize {
    6 + 1 + containers * 7
}

#[tokio::test]
async fn stackdriver_points_are_all_taken_by_the_fake_descriptors_first_and_once() {
    let s = setup("sd");
    let sink = s.sink("stackdriver", "");
    let t = now_millis() - 60_000;
    sink.export(Arc::new(cluster(t, 0, 3, 0))).await.unwrap();
    let descriptors = s.fake.requests("monitoring.projects.metricDescriptors.create");
    assert_eq!(descriptors as usize, service::descriptors(&sink.service().config).len());
    assert!(descriptors >= 20, "{descriptors}");
    sink.export(Arc::new(cluster(t, 10_000, 3, 1))).await.unwrap();
    assert_eq!(s.fake.requests("monitoring.projects.metricDescriptors.create"), descriptors, "created once");
    assert_eq!(s.fake.rejected_series(), BTreeMap::new());
    assert_eq!(s.fake.rejected_requests(), BTreeMap::new());
    let points = s.fake.time_series();
    assert_eq!(points.len(), 2 * series_of(3));
    let known: Vec<serde_json::Value> = s.fake.metric_descriptors(PROJECT);
    for p in &points {
        assert!(known.iter().any(|d| d["type"] == p.metric_type.as_str()), "{} has no descriptor", p.metric_type);
    }
    // The cumulative CPU of a container: a fixed start (its create time), a growing end, seconds.
    let cpu: Vec<_> = points
        .iter()
        .filter(|p| {
            p.metric_type == "custom.googleapis.com/kubernetes.io/container/cpu/core_usage_time"
                && p.resource_labels["pod_name"] == "p0"
        })
        .collect();
    assert_eq!(cpu.len(), 2);
    assert_eq!(cpu[0].start, cpu[1].start);
    assert_eq!(cpu[0].start.timestamp_millis(), t - 600_000);
    assert_eq!((cpu[0].value.as_f64(), cpu[1].value.as_f64()), (Some(1.0), Some(2.0)));
    assert_eq!(cpu[1].end.timestamp_millis(), t + 10_000);
    assert_eq!(s.metric("heapster_sink_stackdriver_points_written_total"), (2 * series_of(3)) as f64);
}

#[tokio::test]
async fn at_most_200_series_a_request_and_a_resend_writes_nothing_twice() {
    let s = setup("many");
    let sink = s.sink("stackdriver", "&workers=3");
    let t = now_millis() - 60_000;
    let batch = Arc::new(cluster(t, 0, 60, 0));
    sink.export(batch.clone()).await.unwrap();
    let n = series_of(60);
    assert_eq!(s.fake.time_series().len(), n);
    assert_eq!(s.fake.requests("monitoring.projects.timeSeries.create") as usize, n.div_ceil(200));
    // The same batch again, as after a retry: nothing sent, nothing refused, nothing counted as lost.
    sink.export(batch).await.unwrap();
    assert_eq!(s.fake.time_series().len(), n);
    assert_eq!(s.fake.requests("monitoring.projects.timeSeries.create") as usize, n.div_ceil(200));
    // 3 s later: too close for the service; left out here and counted.
    sink.export(Arc::new(cluster(t, 3_000, 60, 1))).await.unwrap();
    assert_eq!(s.fake.time_series().len(), n);
    assert_eq!(s.fake.rejected_series(), BTreeMap::new());
    assert_eq!(s.metric("heapster_sink_stackdriver_points_dropped_total"), n as f64);
    assert!(s.metrics_text().contains("cause=\"too soon after the series' last point (5 s, or min_interval_sec)\""));
}

#[tokio::test]
async fn a_partial_failure_is_counted_by_cause_and_not_retried() {
    let s = setup("partial");
    let t = now_millis() - 60_000;
    // Another writer got a newer point into the series of container p0 (and the node) first.
    s.sink("stackdriver", "").export(Arc::new(cluster(t, 30_000, 1, 1))).await.unwrap();
    let before = s.fake.time_series().len();
    let sink = s.sink("stackdriver", "");
    sink.export(Arc::new(cluster(t, 0, 2, 0))).await.unwrap();
    let refused = series_of(1) as f64;
    assert_eq!(s.fake.time_series().len() - before, series_of(2) - series_of(1), "the other container's points");
    assert_eq!(s.metric("heapster_sink_stackdriver_points_rejected_total"), refused);
    assert!(s.metrics_text().contains("cause=\"invalid_argument\""), "{}", s.metrics_text());
    // Not retried: the next batch goes on from there, and nothing is refused any more.
    let requests = s.fake.requests("monitoring.projects.timeSeries.create");
    sink.export(Arc::new(cluster(t, 60_000, 2, 2))).await.unwrap();
    assert_eq!(s.fake.requests("monitoring.projects.timeSeries.create"), requests + 1);
    assert_eq!(s.metric("heapster_sink_stackdriver_points_rejected_total"), refused);
}

#[tokio::test]
async fn quota_and_server_errors_are_retried_and_a_403_says_how_to_fix_it() {
    let s = setup("errors");
    let sink = s.sink("stackdriver", "");
    let t = now_millis() - 60_000;
    sink.export(Arc::new(cluster(t, 0, 1, 0))).await.unwrap();
    let stored = s.fake.time_series().len();
    for (round, status) in [(1, 429u16), (2, 503)] {
        s.fake.fail_next(Service::Monitoring, status, 1);
        let b = Arc::new(cluster(t, round * 10_000, 1, round));
        let e = sink.export(b.clone()).await.unwrap_err();
        assert!(matches!(&e, SinkError::Retry(m) if m.contains(&status.to_string())), "{e:?}");
        // The manager sends the batch again: every point once.
        sink.export(b).await.unwrap();
    }
    assert_eq!(s.fake.time_series().len(), 3 * stored);
    s.fake.deny_project(PROJECT);
    let e = sink.export(Arc::new(cluster(t, 60_000, 1, 9))).await.unwrap_err();
    let SinkError::Reject(m) = &e else { panic!("{e:?}") };
    assert!(m.contains("403 PERMISSION_DENIED") && m.contains("roles/monitoring.metricWriter"), "{m}");
    assert!(!m.contains('\n'), "{m}");
    assert!(s.metrics_text().contains("cause=\"permission_denied\""));
}

#[tokio::test]
async fn gcm_writes_heapsters_layout_and_reserved_prefixes_only_when_allowed() {
    let s = setup("gcm");
    let sink = s.sink("gcm", "");
    let t = now_millis() - 60_000;
    sink.export(Arc::new(cluster(t, 0, 1, 0))).await.unwrap();
    assert_eq!(s.fake.rejected_series(), BTreeMap::new());
    assert_eq!(s.fake.rejected_requests(), BTreeMap::new());
    let points = s.fake.time_series();
    let batch = cluster(t, 0, 1, 0);
    assert_eq!(points.len(), batch.point_count());
    assert!(points.iter().all(|p| p.resource_type == "global"));
    let cap = points.iter().find(|p| p.metric_type == "custom.googleapis.com/kubernetes.io/cpu/node_capacity").unwrap();
    assert_eq!(cap.value.as_f64(), Some(4000.0));
    assert_eq!(cap.metric_labels["resource_type"], "instance");
    let scaling = s.sink("gcm", "&metrics=autoscaling");
    scaling.export(Arc::new(cluster(t, 60_000, 1, 1))).await.unwrap();
    assert_eq!(s.fake.time_series().len(), points.len() + 2, "node capacities only");

    // Heapster's own names under kubernetes.io/: where the service allows them, written without descriptors.
    s.fake.allow_reserved_prefixes(true);
    let creates = s.fake.requests("monitoring.projects.metricDescriptors.create");
    let reserved = s.sink("stackdriver", "&metric_prefix=kubernetes.io/&allow_reserved_prefix=true");
    reserved.export(Arc::new(cluster(t, 0, 1, 0))).await.unwrap();
    assert_eq!(s.fake.requests("monitoring.projects.metricDescriptors.create"), creates);
    assert!(s.fake.time_series().iter().any(|p| p.metric_type == "kubernetes.io/container/cpu/core_usage_time"));
}
