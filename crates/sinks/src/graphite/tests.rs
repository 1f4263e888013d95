//! The Graphite sink against the real carbon-cache (values read back from its whisper files) and
//! VictoriaMetrics' Graphite listener (read back through its export API), a server that is down, and what is
//! counted.

use super::*;
use crate::util::test_support::{fs, metrics_text, runtime, set};
use heapster_model::MetricValue;
use heapster_testkit::{Carbon, VictoriaMetrics, free_port, wait};
use std::time::Duration;

/// A node and one of its pod containers, with integer, float and labelled values, at `ts` (ms).
fn batch(ts: i64) -> DataBatch {
    let mut node = set(&[("type", "node"), ("hostname", "node-1"), ("nodename", "node-1")]);
    node.set("cpu/usage_rate", MetricValue::Int(1250));
    node.set("memory/usage", MetricValue::Int(123_456_789_012));
    node.set("cpu/node_utilization", MetricValue::Float(0.4375));
    node.add_labeled("filesystem/usage", fs("/dev/vda1"), MetricValue::Int(1 << 33));
    node.add_labeled("filesystem/usage", fs("/dev/vdb"), MetricValue::Int(5 << 30));
    let mut c = set(&[
        ("type", "pod_container"),
        ("hostname", "node-1"),
        ("namespace_name", "default"),
        ("pod_name", "web-7d9f8"),
        ("container_name", "nginx"),
    ]);
    c.set("uptime", MetricValue::Int(86_400_000));
    c.set("cpu/usage_rate", MetricValue::Int(250));
    DataBatch {
        timestamp: ts,
        sets: [("node:node-1".to_owned(), node), ("pod:default/web-7d9f8/nginx".to_owned(), c)].into(),
    }
}

/// Every path the batch writes, with the value it holds.
fn expected(prefix: &str) -> Vec<(String, f64)> {
    let n = format!("{prefix}.nodes.node-1");
    let c = format!("{n}.pods.default.web-7d9f8.containers.nginx");
    vec![
        (format!("{n}.cpu.usage_rate"), 1250.0),
        (format!("{n}.memory.usage"), 123_456_789_012.0),
        (format!("{n}.cpu.node_utilization"), 0.4375),
        (format!("{n}.filesystem._dev_vda1.usage"), (1u64 << 33) as f64),
        (format!("{n}.filesystem._dev_vdb.usage"), (5u64 << 30) as f64),
        (format!("{c}.uptime"), 86_400_000.0),
        (format!("{c}.cpu.usage_rate"), 250.0),
    ]
}

fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn carbon_stores_every_value_at_heapsters_paths() {
    let carbon = Carbon::start();
    let sink = GraphiteSink::from_uri(&format!("graphite:tcp://{}?prefix=k8s.test", carbon.address()).parse().unwrap())
        .unwrap();
    let ts = now_s() - 5;
    runtime().block_on(sink.export(Arc::new(batch(ts * 1000)))).unwrap();
    for (path, value) in expected("k8s.test") {
        wait(&format!("carbon to store {path}"), Duration::from_secs(20), || carbon.values(&path).contains_key(&ts));
        assert_eq!(carbon.values(&path)[&ts], value, "{path}");
    }
    // Nothing else: the two filesystems are two paths, not one overwritten (Heapster's resourceId bug).
    let files = walk(&carbon.whisper_file("k8s.test").with_extension(""));
    assert_eq!(files, expected("k8s.test").len(), "whisper files under k8s/test");
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { walk(&p) } else { 1 }
        })
        .sum()
}

#[test]
fn victoriametrics_graphite_listener_over_tcp_and_udp() {
    let (tcp, udp) = (free_port(), free_port());
    // One listener per protocol's test: VictoriaMetrics serves its Graphite address on TCP and UDP both.
    let vm_tcp = VictoriaMetrics::start_with(&[format!("-graphiteListenAddr=127.0.0.1:{tcp}")]);
    let vm_udp = VictoriaMetrics::start_with(&[format!("-graphiteListenAddr=127.0.0.1:{udp}")]);
    let ts = now_s() - 60;
    let rt = runtime();
    for (vm, uri) in
        [(&vm_tcp, format!("graphite:tcp://127.0.0.1:{tcp}")), (&vm_udp, format!("graphite:udp://127.0.0.1:{udp}"))]
    {
        let sink = GraphiteSink::from_uri(&uri.parse().unwrap()).unwrap();
        rt.block_on(sink.export(Arc::new(batch(ts * 1000)))).unwrap();
        for (path, value) in expected("kubernetes") {
            let sel = format!("{{__name__={path:?}}}");
            wait(&format!("{uri}: {path}"), Duration::from_secs(20), || !vm.export(&sel).is_empty());
            let series = vm.export(&sel);
            assert_eq!(series.len(), 1, "{sel}: {series:?}");
            assert_eq!(series[0].1.get(&(ts * 1000)), Some(&vec![value]), "{uri}: {path}: {series:?}");
        }
    }
}

#[test]
fn a_server_that_is_down_is_retried_and_gets_the_batch_when_back() {
    let port = free_port();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let sink =
        GraphiteSink::new(&format!("graphite:tcp://127.0.0.1:{port}?timeout=2s").parse().unwrap(), &metrics).unwrap();
    let rt = runtime();
    let b = Arc::new(batch(1_700_000_000_000));
    let e = rt.block_on(sink.export(b.clone())).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("connect")), "{e}");
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        // The writer backs off after the failure; the manager's next try comes later than that.
        tokio::time::sleep(Duration::from_millis(300)).await;
        sink.export(b).await.expect("written once the server is back");
        let (mut s, _) = l.accept().await.unwrap();
        drop(sink);
        let mut got = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut s, &mut got).await.unwrap();
        assert_eq!(got.lines().count(), 7, "{got}");
        assert!(got.contains("kubernetes.nodes.node-1.memory.usage 123456789012 1700000000\n"), "{got}");
    });
    let t = metrics_text(&registry);
    let name = format!("graphite:tcp://127.0.0.1:{port}?prefix=kubernetes");
    assert!(
        t.contains(&format!("heapster_sink_graphite_requests_total{{sink=\"{name}\",outcome=\"connect\"}} 1")),
        "{t}"
    );
    assert!(t.contains(&format!("heapster_sink_graphite_points_written_total{{sink=\"{name}\"}} 7")), "{t}");
}

#[test]
fn values_graphite_cannot_carry_are_counted_by_cause() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let rt = runtime();
    let server = rt.block_on(tokio::net::UdpSocket::bind("127.0.0.1:0")).unwrap();
    let port = server.local_addr().unwrap().port();
    let sink = GraphiteSink::new(&format!("graphite:udp://127.0.0.1:{port}").parse().unwrap(), &metrics).unwrap();
    let mut b = batch(1_700_000_000_000);
    let node = b.sets.get_mut("node:node-1").unwrap();
    node.set("memory/rss", MetricValue::Float(f64::INFINITY));
    node.set("memory/cache", MetricValue::Float(f64::NAN));
    // A line no UDP datagram can carry.
    node.labels.insert("hostname", "h".repeat(70_000));
    rt.block_on(sink.export(Arc::new(b))).unwrap();
    let t = metrics_text(&registry);
    let name = format!("graphite:udp://127.0.0.1:{port}?prefix=kubernetes");
    for want in [
        format!("heapster_sink_graphite_points_dropped_total{{sink=\"{name}\",cause=\"not a finite number\"}} 2"),
        format!(
            "heapster_sink_graphite_points_dropped_total{{sink=\"{name}\",cause=\"longer than a UDP datagram\"}} 5"
        ),
        format!("heapster_sink_graphite_points_written_total{{sink=\"{name}\"}} 2"),
    ] {
        assert!(t.contains(&want), "{want}\n{t}");
    }
}
