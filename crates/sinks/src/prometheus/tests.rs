//! The sink against real receivers: Prometheus (`--web.enable-remote-write-receiver`) and VictoriaMetrics, read
//! back with PromQL; and a strict local server for what no real one does on demand (a 503, the request's headers).

use super::*;
use crate::self_metrics::{self, SinkCauseLabels, SinkOutcomeLabels};
use heapster_model::{LabeledMetric, Labels, MetricSet, MetricValue};
use heapster_testkit::{Prometheus, VictoriaMetrics, wait};
use std::time::Duration;

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// A node and a pod container of a cluster, every value distinct, at `ts`.
fn batch(ts: i64, bump: i64) -> DataBatch {
    let mut node = MetricSet::default();
    node.labels.insert("type", "node");
    node.labels.insert("nodename", "node-1");
    node.set("cpu/usage", MetricValue::Int(9_000_000_000 + bump));
    node.set("memory/working_set", MetricValue::Int((3 << 30) + bump));
    node.set("cpu/usage_rate", MetricValue::Int(1500 + bump));
    let mut pod = MetricSet::default();
    for (k, v) in [("type", "pod_container"), ("nodename", "node-1"), ("namespace_name", "default")] {
        pod.labels.insert(k, v);
    }
    pod.labels.insert("pod_name", "web-1");
    pod.labels.insert("container_name", "nginx");
    pod.labels.insert("labels", "app:web");
    pod.set("cpu/usage", MetricValue::Int(123_456_789 + bump));
    pod.set("memory/usage", MetricValue::Int((1 << 20) + bump));
    pod.set("network/rx_rate", MetricValue::Float(1234.5 + bump as f64));
    let mut fs = Labels::default();
    fs.insert("resource_id", "/dev/sda1");
    pod.labeled_metrics.push(LabeledMetric {
        name: "filesystem/usage".into(),
        labels: std::sync::Arc::new(fs),
        value: MetricValue::Int(42 + bump),
    });
    DataBatch { timestamp: ts, sets: [("node:node-1".into(), node), ("pod:web-1/nginx".into(), pod)].into() }
}

/// Every value of `batch` as the PromQL selector that finds it and the value it must have.
fn expected(batch: &DataBatch, cluster: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for set in batch.sets.values() {
        let who = format!(
            "cluster_name=\"{cluster}\",type=\"{}\",container_name=\"{}\"",
            set.labels.get("type").unwrap(),
            set.labels.get("container_name").map_or("", |s| s.as_str())
        );
        for (name, v) in &set.metrics {
            out.push((format!("{}{{{who}}}", encoder::metric_name("heapster_", name)), v.as_f64()));
        }
        for m in &set.labeled_metrics {
            let sel = format!("{}{{{who},resource_id=\"/dev/sda1\"}}", encoder::metric_name("heapster_", &m.name));
            out.push((sel, m.value.as_f64()));
        }
    }
    out
}

/// The one value `query` finds in `result`.
fn one_value(result: &[serde_json::Value], query: &str) -> Option<f64> {
    assert!(result.len() <= 1, "{query}: {result:?}");
    result.first().map(|r| r["value"][1].as_str().unwrap().parse().unwrap())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn counted(metrics: &SinkMetrics, name: &str) -> (u64, impl Fn(&str) -> u64 + use<>, impl Fn(&str) -> u64 + use<>) {
    let kind = metrics.for_kind("prometheus");
    let written = kind.points_written.get_or_create(&self_metrics::sink(name)).get();
    let (k2, n2) = (kind.clone(), name.to_owned());
    let rejected = move |cause: &str| {
        k2.points_rejected.get_or_create(&SinkCauseLabels { sink: n2.clone(), cause: cause.into() }).get()
    };
    let n3 = name.to_owned();
    let requests = move |outcome: &str| {
        kind.requests.get_or_create(&SinkOutcomeLabels { sink: n3.clone(), outcome: outcome.into() }).get()
    };
    (written, rejected, requests)
}

#[test]
fn real_prometheus_stores_what_the_batch_held_and_refuses_out_of_order_samples_once() {
    let prom = Prometheus::start();
    let metrics = SinkMetrics::detached();
    let uri = format!("prometheus:{}?cluster_name=c1&batch_points=3", prom.remote_write_url());
    let sink = PrometheusSink::new(&uri.parse().unwrap(), &metrics).unwrap();
    // Two minutes back, so the samples are never "in the future", and a second batch 15 s later.
    let t1 = now_ms() - 120_000;
    let (b1, b2) = (batch(t1, 0), batch(t1 + 15_000, 7));
    run(sink.export(Arc::new(b1.clone()))).unwrap();
    run(sink.export(Arc::new(b2.clone()))).unwrap();
    for (b, t) in [(&b1, t1), (&b2, t1 + 15_000)] {
        for (query, want) in expected(b, "c1") {
            let got = one_value(&prom.query_at(&query, t as f64 / 1000.0), &query);
            assert_eq!(got, Some(want), "{query} at {t}");
        }
    }
    // Both samples of a series, in time order: PromQL sees the first at its time and the second at its own.
    let q = "count_over_time(heapster_cpu_usage_nanoseconds_total{type=\"node\"}[1m])";
    assert_eq!(one_value(&prom.query_at(q, (t1 + 20_000) as f64 / 1000.0), q), Some(2.0));
    let (written, _, _) = counted(&metrics, &sink.name());
    assert_eq!(written, 2 * b1.point_count() as u64);

    // The first batch again, older than what is stored: Prometheus refuses it (400) and it is not retried.
    let err = run(sink.export(Arc::new(batch(t1 - 30_000, 1)))).unwrap_err();
    assert!(matches!(&err, SinkError::Reject(m) if m.contains("out_of_order")), "{err:?}");
    let (_, rejected, requests) = counted(&metrics, &sink.name());
    assert_eq!(rejected("out_of_order"), b1.point_count() as u64);
    // Seven samples in bodies of 3: three requests, each refused once.
    assert_eq!((requests("rejected"), requests("ok")), (3, 6));
    // Nothing of the refused requests was stored: no sample before t1.
    let q = "heapster_cpu_usage_nanoseconds_total";
    assert!(prom.query_at(q, (t1 - 1_000) as f64 / 1000.0).is_empty(), "a refused sample stored");
}

#[test]
fn real_victoria_metrics_stores_what_the_batch_held() {
    let vm = VictoriaMetrics::start();
    let uri = format!("prometheus:{}/api/v1/write?cluster_name=vm&labels=replica:a", vm.url());
    let metrics = SinkMetrics::detached();
    let sink = PrometheusSink::new(&uri.parse().unwrap(), &metrics).unwrap();
    let t = now_ms() - 120_000;
    let b = batch(t, 3);
    run(sink.export(Arc::new(b.clone()))).unwrap();
    let want = expected(&b, "vm");
    let at = t as f64 / 1000.0;
    wait("the samples in VictoriaMetrics", Duration::from_secs(20), || {
        !vm.query_at("count({cluster_name=\"vm\"})", at).is_empty()
    });
    for (query, value) in want {
        let query = query.replace("{cluster_name", "{replica=\"a\",cluster_name");
        assert_eq!(one_value(&vm.query_at(&query, at), &query), Some(value), "{query}");
    }
    let q = "count({cluster_name=\"vm\"})";
    assert_eq!(one_value(&vm.query_at(q, at), q), Some(b.point_count() as f64));
    assert_eq!(counted(&metrics, &sink.name()).0, b.point_count() as u64);
}

/// A request's head (lower-cased) and body.
type Request = (String, Vec<u8>);

/// A server that answers each connection's request with the next of `statuses` and hands back the request heads
/// and bodies it read.
fn fake(statuses: Vec<u16>) -> (String, std::thread::JoinHandle<Vec<Request>>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for status in statuses {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            let (head, length) = loop {
                let n = conn.read(&mut chunk).unwrap();
                assert!(n > 0, "closed before the head ended");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end + 4]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    buf.drain(..end + 4);
                    break (head, length);
                }
            };
            while buf.len() < length {
                let n = conn.read(&mut chunk).unwrap();
                assert!(n > 0, "closed before the body ended");
                buf.extend_from_slice(&chunk[..n]);
            }
            let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy");
            conn.write_all(reply.as_bytes()).unwrap();
            seen.push((head, buf));
        }
        seen
    });
    (url, server)
}

#[test]
fn headers_of_the_spec_and_5xx_or_a_down_server_retried() {
    use prost::Message as _;
    let (url, server) = fake(vec![503, 204]);
    let metrics = SinkMetrics::detached();
    let sink = PrometheusSink::new(&format!("prometheus:{url}?token=s3cr3t").parse().unwrap(), &metrics).unwrap();
    let b = Arc::new(batch(1_700_000_000_000, 0));
    let e = run(sink.export(b.clone())).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("503")), "{e:?}");
    run(sink.export(b.clone())).unwrap();
    let seen = server.join().unwrap();
    let (head, body) = &seen[1];
    assert!(head.starts_with("post /api/v1/write http/1.1\r\n"), "{head}");
    for h in [
        "content-encoding: snappy",
        "content-type: application/x-protobuf",
        "x-prometheus-remote-write-version: 0.1.0",
        "authorization: bearer s3cr3t",
    ] {
        assert!(head.contains(&format!("\r\n{h}\r\n")), "{h}: {head}");
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
    let req = encoder::WriteRequest::decode(raw.as_slice()).unwrap();
    assert_eq!(req.timeseries.len(), b.point_count());
    for ts in &req.timeseries {
        assert!(ts.labels.windows(2).all(|w| w[0].name < w[1].name), "sorted, no name twice: {:?}", ts.labels);
        assert!(ts.labels.iter().all(|l| !l.value.is_empty()), "{:?}", ts.labels);
        assert_eq!(ts.samples.len(), 1);
    }
    let (written, _, requests) = counted(&metrics, &sink.name());
    assert_eq!((written, requests("server_error"), requests("ok")), (b.point_count() as u64, 1, 1));

    // Nobody listening: a retry, named.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down =
        PrometheusSink::new(&format!("prometheus:http://127.0.0.1:{port}/w").parse().unwrap(), &metrics).unwrap();
    let e = run(down.export(b)).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("connect")), "{e:?}");
}

#[test]
fn basic_auth_is_sent_when_given() {
    let (url, server) = fake(vec![204]);
    let uri = format!("prometheus:{url}?user=u&pw=p");
    let sink = PrometheusSink::new(&uri.parse().unwrap(), &SinkMetrics::detached()).unwrap();
    run(sink.export(Arc::new(batch(1_700_000_000_000, 0)))).unwrap();
    let (head, _) = &server.join().unwrap()[0];
    assert!(head.contains("\r\nauthorization: basic dtpw\r\n"), "{head}");
}
