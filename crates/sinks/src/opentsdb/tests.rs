//! The OpenTSDB sink against VictoriaMetrics' OpenTSDB HTTP listener (values and tags read back through its
//! export API), a server that is down, and OpenTSDB's `?details` refusals (no OpenTSDB installs here: those
//! answers come from a fake in the form OpenTSDB's `/api/put` documentation gives).

use super::*;
use crate::util::http::test_support::fake_server;
use crate::util::test_support::{fs, metrics_text, runtime, set};
use heapster_model::MetricValue;
use heapster_testkit::{VictoriaMetrics, free_port, wait};
use std::time::Duration;

/// A node and one of its pod containers (with every label a container has), at `ts` (ms).
fn batch(ts: i64) -> DataBatch {
    let mut node = set(&[("type", "node"), ("hostname", "node-1"), ("nodename", "node-1"), ("host_id", "i-0abc")]);
    node.set("cpu/usage", MetricValue::Int(987_654_321_000));
    node.set("cpu/node_utilization", MetricValue::Float(0.4375));
    node.add_labeled("filesystem/usage", fs("/dev/vda1"), MetricValue::Int(1 << 33));
    node.add_labeled("filesystem/usage", fs("/dev/vdb"), MetricValue::Int(5 << 30));
    let mut c = set(&[
        ("type", "pod_container"),
        ("hostname", "node-1"),
        ("nodename", "node-1"),
        ("host_id", "i-0abc"),
        ("namespace_name", "default"),
        ("namespace_id", "ns-uid"),
        ("pod_name", "web-7d9f8"),
        ("pod_id", "pod-uid"),
        ("container_name", "nginx"),
        ("container_base_image", "nginx:1.25"),
        ("labels", "app:web"),
    ]);
    c.set("memory/usage", MetricValue::Int(123_456_789));
    DataBatch { timestamp: ts, sets: [("node:node-1".to_owned(), node), ("pod:c".to_owned(), c)].into() }
}

#[test]
fn victoriametrics_stores_the_values_and_tags_of_the_batch() {
    let port = free_port();
    let vm = VictoriaMetrics::start_with(&[format!("-opentsdbHTTPListenAddr=127.0.0.1:{port}")]);
    let sink =
        OpentsdbSink::from_uri(&format!("opentsdb:http://127.0.0.1:{port}?cluster=test").parse().unwrap()).unwrap();
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - 60;
    runtime().block_on(sink.export(Arc::new(batch(ts * 1000)))).unwrap();
    let node = r#"type="node",nodename="node-1",cluster="test""#;
    for (selector, value) in [
        (format!("{{__name__=\"cpu_usage_cumulative\",{node}}}"), 987_654_321_000.0),
        (format!("{{__name__=\"cpu_node_utilization_gauge\",{node}}}"), 0.4375),
        (format!("{{__name__=\"filesystem_usage_gauge\",{node},resource_id=\"/dev/vda1\"}}"), (1u64 << 33) as f64),
        (format!("{{__name__=\"filesystem_usage_gauge\",{node},resource_id=\"/dev/vdb\"}}"), (5u64 << 30) as f64),
        ("{__name__=\"memory_usage_gauge\",type=\"pod_container\"}".to_owned(), 123_456_789.0),
    ] {
        wait(&selector, Duration::from_secs(20), || !vm.export(&selector).is_empty());
        let series = vm.export(&selector);
        assert_eq!(series.len(), 1, "{selector}: {series:?}");
        assert_eq!(series[0].1.get(&(ts * 1000)), Some(&vec![value]), "{selector}: {series:?}");
    }
    // The container's tags, cut to OpenTSDB's default eight: UIDs and the host name are given up first.
    let (labels, _) = vm.export("{__name__=\"memory_usage_gauge\"}").pop().unwrap();
    let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "__name__",
            "cluster",
            "container_base_image",
            "container_name",
            "labels",
            "namespace_name",
            "nodename",
            "pod_name",
            "type"
        ]
    );
    assert_eq!((labels["container_base_image"].as_str(), labels["labels"].as_str()), ("nginx_1.25", "app_web"));
}

#[test]
fn a_server_that_is_down_is_retried() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let port = free_port();
    let sink = OpentsdbSink::new(&format!("opentsdb:http://127.0.0.1:{port}").parse().unwrap(), &metrics).unwrap();
    let e = runtime().block_on(sink.export(Arc::new(batch(1_700_000_000_000)))).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("connect")), "{e}");
    let t = metrics_text(&registry);
    assert!(t.contains("outcome=\"connect\"} 1"), "{t}");
    // A 503 (OpenTSDB overloaded, or a proxy whose backend is down) is worth a retry too.
    let (url, server) = fake_server(vec![(503, r#"{"error":{"code":503,"message":"busy"}}"#)]);
    let sink = OpentsdbSink::from_uri(&format!("opentsdb:{url}").parse().unwrap()).unwrap();
    let e = runtime().block_on(sink.export(Arc::new(batch(1_700_000_000_000)))).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("busy")), "{e}");
    let seen = server.join().unwrap();
    assert!(seen[0].head.starts_with("post /api/put?details "), "{}", seen[0].head);
}

#[test]
fn refused_points_are_counted_by_cause_and_not_retried() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    // OpenTSDB's answer with ?details when some points fail: 400, what was stored and each failure.
    let details = r#"{"success":2,"failed":2,"errors":[
        {"datapoint":{"metric":"a","timestamp":1,"value":1,"tags":{"x":"y"}},"error":"Too many tags: 9 maximum allowed: 8, tags: {..}"},
        {"datapoint":{"metric":"b","timestamp":1,"value":1,"tags":{"x":"y"}},"error":"Unable to parse value to a number"}]}"#;
    let (url, server) = fake_server(vec![(400, details), (400, r#"{"error":{"code":400,"message":"bad JSON"}}"#)]);
    let sink = OpentsdbSink::new(&format!("opentsdb:{url}?batch_points=4").parse().unwrap(), &metrics).unwrap();
    let mut b = batch(1_700_000_000_000);
    b.sets.get_mut("node:node-1").unwrap().set("memory/rss", MetricValue::Float(f64::NAN));
    let e = runtime().block_on(sink.export(Arc::new(b))).unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("refused 2 of 4 points")), "{e}");
    assert_eq!(server.join().unwrap().len(), 2, "the body after the refused one is still sent");
    let t = metrics_text(&registry);
    let name = format!("opentsdb:{url}/?cluster=k8s-cluster");
    for (family, labels, n) in [
        ("points_written", String::new(), 2),
        ("points_rejected", ",cause=\"too many tags\"".to_owned(), 1),
        ("points_rejected", ",cause=\"unable to parse value to a number\"".to_owned(), 1),
        ("points_rejected", ",cause=\"http 400\"".to_owned(), 1),
        ("points_dropped", ",cause=\"not a finite number\"".to_owned(), 1),
    ] {
        let want = format!("heapster_sink_opentsdb_{family}_total{{sink=\"{name}\"{labels}}} {n}");
        assert!(t.contains(&want), "{want}\n{t}");
    }
}
