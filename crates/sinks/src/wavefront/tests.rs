//! The Wavefront sink against the strict proxy fake of `heapster-testkit` (no Wavefront proxy installs here):
//! every line is checked against Wavefront's data format and the values read back equal the batch's.

use super::*;
use crate::util::test_support::{fs, metrics_text, runtime, set};
use heapster_model::MetricValue;
use heapster_testkit::{WavefrontProxy, free_port, wait};
use std::time::Duration;

fn batch(ts: i64) -> DataBatch {
    let mut node = set(&[("type", "node"), ("hostname", "node-1.example.com"), ("nodename", "node-1.example.com")]);
    node.set("cpu/usage_rate", MetricValue::Int(1250));
    node.set("cpu/node_utilization", MetricValue::Float(0.4375));
    node.add_labeled("filesystem/usage", fs("/dev/vda1"), MetricValue::Int(1 << 33));
    let mut pod = set(&[
        ("type", "pod"),
        ("hostname", "node-1.example.com"),
        ("namespace_name", "default"),
        ("pod_name", "web-7d9f8"),
        ("labels", "app:web,app.kubernetes.io/name:shop \"quoted\""),
    ]);
    pod.set("memory/usage", MetricValue::Int(123_456_789));
    DataBatch { timestamp: ts, sets: [("node".to_owned(), node), ("pod".to_owned(), pod)].into() }
}

#[test]
fn the_proxy_accepts_every_line_and_the_values_are_the_batchs() {
    let proxy = WavefrontProxy::start();
    let uri = format!("wavefront:{}?clusterName=prod&includeLabels=true", proxy.address());
    let sink = WavefrontSink::from_uri(&uri.parse().unwrap()).unwrap();
    let rt = runtime();
    rt.block_on(sink.export(Arc::new(batch(1_700_000_000_000)))).unwrap();
    rt.block_on(sink.export(Arc::new(batch(1_700_000_010_000)))).unwrap();
    wait("8 points", Duration::from_secs(10), || proxy.points().len() + proxy.refused().len() >= 8);
    assert_eq!(proxy.refused(), []);
    assert_eq!(proxy.connections(), 1, "one connection kept for both batches");
    let points = proxy.points();
    let find = |metric: &str, ts: i64| {
        points
            .iter()
            .find(|p| p.metric == metric && p.timestamp == Some(ts))
            .unwrap_or_else(|| panic!("{metric}@{ts}: {points:?}"))
    };
    for ts in [1_700_000_000, 1_700_000_010] {
        assert_eq!(find("heapster.node.cpu.usage_rate", ts).value, 1250.0);
        assert_eq!(find("heapster.node.cpu.node_utilization", ts).value, 0.4375);
        let fs = find("heapster.node.filesystem.usage", ts);
        assert_eq!((fs.value, fs.tags["resource_id"].as_str()), ((1u64 << 33) as f64, "/dev/vda1"));
        let pod = find("heapster.pod.memory.usage", ts);
        assert_eq!(
            (pod.value, pod.source.as_str(), pod.tags["cluster"].as_str()),
            (123_456_789.0, "node-1.example.com", "prod")
        );
        assert_eq!(pod.tags["label.app.kubernetes.io_name"], "shop \"quoted\"");
        assert_eq!(pod.tags["label.app"], "web");
    }
}

#[test]
fn a_proxy_that_is_down_is_retried_and_test_mode_sends_nothing() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let port = free_port();
    let sink =
        WavefrontSink::new(&format!("wavefront:127.0.0.1:{port}?timeout=2s").parse().unwrap(), &metrics).unwrap();
    let e = runtime().block_on(sink.export(Arc::new(batch(1_700_000_000_000)))).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("connect")), "{e}");
    let test_mode =
        WavefrontSink::new(&format!("wavefront:127.0.0.1:{port}?testMode=true").parse().unwrap(), &metrics).unwrap();
    runtime().block_on(test_mode.export(Arc::new(batch(1_700_000_000_000)))).expect("nothing to connect to");
    let t = metrics_text(&registry);
    let name = format!("wavefront:127.0.0.1:{port}?clusterName=k8s-cluster");
    assert!(
        t.contains(&format!("heapster_sink_wavefront_requests_total{{sink=\"{name}\",outcome=\"connect\"}} 1")),
        "{t}"
    );
    assert!(t.contains(&format!("heapster_sink_wavefront_points_written_total{{sink=\"{name}\"}} 4")), "{t}");
}
