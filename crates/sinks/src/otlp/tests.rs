//! The sink against a real OTLP/HTTP receiver (oteltest's `otelsink`, which parses with OpenTelemetry's own
//! generated classes) read back in the protobuf JSON mapping, and against the strict OTLP fake for the answers a
//! real receiver does not give on demand (400, 503, 429, partial success) and for gzip, which otelsink cannot read.

use super::*;
use crate::self_metrics::{self, SinkCauseLabels, SinkOutcomeLabels};
use heapster_model::catalog::{self, MetricType, ValueType};
use heapster_model::{LabeledMetric, MetricSet, MetricValue};
use heapster_testkit::otlp_fake::{OtlpFake, Reply};
use heapster_testkit::{Otelsink, wait};
use serde_json::Value as Json;
use std::time::Duration;

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

const T0: i64 = 1_700_000_000_000;

/// A node, a pod, and one of its containers with two filesystems, every value distinct, at `ts`.
fn batch(ts: i64, bump: i64) -> DataBatch {
    let mut node = MetricSet { create_time: T0 - 86_400_000, ..MetricSet::default() };
    for (k, v) in [("type", "node"), ("nodename", "node-1"), ("hostname", "node-1.example"), ("labels", "zone:a")] {
        node.labels.insert(k, v);
    }
    node.set("cpu/usage", MetricValue::Int(9_000_000_000 + bump));
    node.set("memory/working_set", MetricValue::Int((3 << 30) + bump));
    node.set("cpu/node_utilization", MetricValue::Float(0.25));
    let pod_labels = [
        ("nodename", "node-1"),
        ("namespace_name", "default"),
        ("pod_name", "web-1"),
        ("pod_id", "6b1c-uid"),
        ("labels", "app:web,tier:front"),
    ];
    let mut pod = MetricSet { create_time: T0 - 60_000, ..MetricSet::default() };
    for (k, v) in pod_labels.iter().chain(&[("type", "pod")]) {
        pod.labels.insert(*k, *v);
    }
    pod.set("network/rx", MetricValue::Int(1_000_000 + bump));
    pod.set("network/rx_rate", MetricValue::Float(1234.5 + bump as f64));
    let mut c = MetricSet { create_time: T0 - 30_000, ..MetricSet::default() };
    for (k, v) in pod_labels.iter().chain(&[("type", "pod_container"), ("container_name", "nginx")]) {
        c.labels.insert(*k, *v);
    }
    c.set("cpu/usage", MetricValue::Int(123_456_789 + bump));
    c.set("cpu/usage_rate", MetricValue::Int(250 + bump));
    c.set("memory/usage", MetricValue::Int((1 << 20) + bump));
    c.set("uptime", MetricValue::Int(30_000 + bump));
    for (dev, v) in [("/dev/sda1", 42), ("/dev/sdb1", 43)] {
        c.labeled_metrics.push(LabeledMetric {
            name: "filesystem/usage".into(),
            labels: heapster_model::labels::resource_id(dev),
            value: MetricValue::Int(v + bump),
        });
    }
    DataBatch {
        timestamp: ts,
        sets: [("node:node-1".into(), node), ("pod:web-1".into(), pod), ("c:web-1/nginx".into(), c)].into(),
    }
}

/// The resource attributes each set of [`batch`] must arrive with, written out from the documented mapping.
fn resource_of(set: &MetricSet) -> Vec<(&'static str, &'static str)> {
    let pod = [
        ("k8s.cluster.name", "c1"),
        ("k8s.namespace.name", "default"),
        ("k8s.node.name", "node-1"),
        ("k8s.pod.label.app", "web"),
        ("k8s.pod.label.tier", "front"),
        ("k8s.pod.name", "web-1"),
        ("k8s.pod.uid", "6b1c-uid"),
    ];
    let mut want = match set.set_type().unwrap() {
        "node" => vec![
            ("heapster.type", "node"),
            ("host.name", "node-1.example"),
            ("k8s.cluster.name", "c1"),
            ("k8s.node.label.zone", "a"),
            ("k8s.node.name", "node-1"),
        ],
        "pod" => [&[("heapster.type", "pod")][..], &pod].concat(),
        "pod_container" => [&[("heapster.type", "pod_container"), ("k8s.container.name", "nginx")][..], &pod].concat(),
        t => panic!("{t}"),
    };
    want.sort();
    want
}

/// One data point as text: resource, name, unit, kind, start, time, value, point attributes.
fn line(resource: &[(String, String)], name: &str, unit: &str, kind: &str, point: &[String]) -> String {
    let r: Vec<String> = resource.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}} {name} [{unit}] {kind} {}", r.join(","), point.join(" "))
}

/// Every value of `batch` as [`line`]s, from the model and the catalog alone.
fn expected(batch: &DataBatch) -> Vec<String> {
    let mut out = Vec::new();
    for set in batch.sets.values() {
        let resource: Vec<(String, String)> =
            resource_of(set).into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let values = set.metrics.iter().map(|(n, v)| (n.as_ref(), None, *v));
        let labelled = set.labeled_metrics.iter().map(|m| (m.name.as_ref(), Some(&m.labels), m.value));
        for (name, labels, value) in values.chain(labelled) {
            let d = catalog::find(name).unwrap();
            let cumulative = d.metric_type == MetricType::Cumulative;
            let kind = if cumulative { "sum(AGGREGATION_TEMPORALITY_CUMULATIVE,monotonic)" } else { "gauge" };
            let mut point = Vec::new();
            if cumulative {
                point.push(format!("start={}", set.create_time * 1_000_000));
            }
            point.push(format!("time={}", batch.timestamp * 1_000_000));
            point.push(match (d.value_type, value) {
                (ValueType::Int64, MetricValue::Int(i)) => format!("int={i}"),
                (ValueType::Float, v) => format!("double={}", v.as_f64()),
                (t, v) => panic!("{name}: a {v:?} for a {t:?} metric in the test batch"),
            });
            if let Some(l) = labels {
                point.extend(l.iter().map(|(k, v)| format!("@{k}={v}")));
            }
            let unit = encoder::unit(d);
            out.push(line(&resource, &format!("heapster.{}", name.replace('/', ".")), unit, kind, &point));
        }
    }
    out.sort();
    out
}

/// What a receiver decoded, in the protobuf JSON mapping, as [`line`]s.
fn lines_of_json(request: &Json) -> Vec<String> {
    let attrs = |v: &Json| -> Vec<(String, String)> {
        let mut a: Vec<(String, String)> = v
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|kv| (kv["key"].as_str().unwrap().to_owned(), kv["value"]["stringValue"].as_str().unwrap().to_owned()))
            .collect();
        a.sort();
        a
    };
    let mut out = Vec::new();
    for rm in request["resourceMetrics"].as_array().unwrap() {
        let resource = attrs(&rm["resource"]["attributes"]);
        for sm in rm["scopeMetrics"].as_array().unwrap() {
            assert_eq!(sm["scope"]["name"], "heapster", "{sm}");
            for m in sm["metrics"].as_array().unwrap() {
                let name = m["name"].as_str().unwrap();
                let d = catalog::find(&name["heapster.".len()..].replacen('.', "/", 1)).unwrap();
                assert_eq!(m["description"], d.description, "{m}");
                let (kind, points) = match (m.get("sum"), m.get("gauge")) {
                    (Some(s), None) => {
                        let temporality = s["aggregationTemporality"].as_str().unwrap();
                        let monotonic = if s["isMonotonic"] == true { "monotonic" } else { "not monotonic" };
                        (format!("sum({temporality},{monotonic})"), &s["dataPoints"])
                    }
                    (None, Some(g)) => ("gauge".to_owned(), &g["dataPoints"]),
                    _ => panic!("neither a sum nor a gauge: {m}"),
                };
                for p in points.as_array().unwrap() {
                    let mut point = Vec::new();
                    if let Some(s) = p.get("startTimeUnixNano") {
                        point.push(format!("start={}", s.as_str().unwrap()));
                    }
                    point.push(format!("time={}", p["timeUnixNano"].as_str().unwrap()));
                    point.push(match (p.get("asInt"), p.get("asDouble")) {
                        (Some(i), None) => format!("int={}", i.as_str().unwrap()),
                        (None, Some(f)) => format!("double={}", f.as_f64().unwrap()),
                        _ => panic!("a point without exactly one value: {p}"),
                    });
                    point.extend(attrs(&p["attributes"]).into_iter().map(|(k, v)| format!("@{k}={v}")));
                    out.push(line(&resource, name, m["unit"].as_str().unwrap(), &kind, &point));
                }
            }
        }
    }
    out
}

struct Counted {
    kind: crate::self_metrics::KindMetrics,
    sink: String,
}

impl Counted {
    fn new(metrics: &SinkMetrics, sink: &OtlpSink) -> Counted {
        Counted { kind: metrics.for_kind("otlp"), sink: sink.name() }
    }
    fn written(&self) -> u64 {
        self.kind.points_written.get_or_create(&self_metrics::sink(&self.sink)).get()
    }
    fn rejected(&self, cause: &str) -> u64 {
        let labels = SinkCauseLabels { sink: self.sink.clone(), cause: cause.into() };
        self.kind.points_rejected.get_or_create(&labels).get()
    }
    fn requests(&self, outcome: &str) -> u64 {
        let labels = SinkOutcomeLabels { sink: self.sink.clone(), outcome: outcome.into() };
        self.kind.requests.get_or_create(&labels).get()
    }
}

#[test]
fn a_real_receiver_decodes_every_value_with_its_name_type_unit_and_attributes() {
    let receiver = Otelsink::start();
    let metrics = SinkMetrics::detached();
    let uri = format!("otlp:{}?cluster_name=c1&batch_points=4", receiver.url());
    let sink = OtlpSink::new(&uri.parse().unwrap(), &metrics).unwrap();
    let (b1, b2) = (batch(T0, 0), batch(T0 + 15_000, 7));
    run(sink.export(Arc::new(b1.clone()))).unwrap();
    run(sink.export(Arc::new(b2.clone()))).unwrap();
    // 11 points per batch in bodies of at most 4: three requests each, a set split across two of them.
    let received = receiver.wait_received(6);
    assert_eq!(received.len(), 6);
    for r in &received {
        assert_eq!(r.headers["content-type"], "application/x-protobuf", "{:?}", r.headers);
        let points = lines_of_json(&r.request).len();
        assert!((1..=4).contains(&points), "{points} points in one request");
    }
    for (b, requests) in [(&b1, &received[..3]), (&b2, &received[3..])] {
        let mut got: Vec<String> = requests.iter().flat_map(|r| lines_of_json(&r.request)).collect();
        got.sort();
        assert_eq!(got, expected(b));
    }
    let counted = Counted::new(&metrics, &sink);
    assert_eq!((counted.written(), counted.requests("ok")), (2 * b1.point_count() as u64, 6));
}

#[test]
fn a_receiver_that_is_down_is_retried_and_a_dropped_connection_too() {
    let metrics = SinkMetrics::detached();
    let port = heapster_testkit::free_port();
    let sink = OtlpSink::new(&format!("otlp:http://127.0.0.1:{port}").parse().unwrap(), &metrics).unwrap();
    let e = run(sink.export(Arc::new(batch(T0, 0)))).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("connect")), "{e:?}");
    assert_eq!(Counted::new(&metrics, &sink).requests("connect"), 1);
    // otelsink cannot read gzip and drops the connection: no answer is a retry, never a loss counted as written.
    let receiver = Otelsink::start();
    let uri = format!("otlp:{}?gzip=true", receiver.url());
    let sink = OtlpSink::new(&uri.parse().unwrap(), &metrics).unwrap();
    let e = run(sink.export(Arc::new(batch(T0, 0)))).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(_)), "{e:?}");
    assert_eq!(Counted::new(&metrics, &sink).written(), 0);
}

#[test]
fn overload_is_retried_refusals_and_partial_successes_are_counted_and_not_retried() {
    let fake = OtlpFake::start();
    let metrics = SinkMetrics::detached();
    let uri = format!("otlp:{}?batch_points=6", fake.url());
    let sink = OtlpSink::new(&uri.parse().unwrap(), &metrics).unwrap();
    let counted = Counted::new(&metrics, &sink);
    let b = Arc::new(batch(T0, 0));
    let points = b.point_count() as u64;
    // Bodies of 6 and 5: the container's 6 points, then the node's and the pod's.
    assert_eq!(points, 11);

    fake.reply_next([Reply::Status(503, "queue full".into()), Reply::Status(429, "slow down".into())]);
    let e = run(sink.export(b.clone())).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("503") && m.contains("queue full")), "{e:?}");
    let e = run(sink.export(b.clone())).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("429")), "{e:?}");
    run(sink.export(b.clone())).unwrap();
    assert_eq!((counted.requests("server_error"), counted.requests("too_many_requests")), (1, 1));
    assert_eq!((counted.written(), counted.requests("ok"), fake.taken().len()), (points, 2, 2));

    // The first body refused with 400: its points counted under the cause, the second body still sent.
    fake.reply_next([Reply::Status(400, "metric name too long".into())]);
    let e = run(sink.export(b.clone())).unwrap_err();
    assert!(
        matches!(&e, SinkError::Reject(m) if m.contains("6 data points") && m.contains("metric name too long")),
        "{e:?}"
    );
    assert_eq!((counted.rejected("http 400"), counted.written()), (6, 2 * points - 6));

    // Taken, but 2 of the first body's points refused: counted as such, the rest written, nothing sent again.
    fake.reply_next([Reply::Partial { rejected: 2, message: "2 points older than the window".into() }]);
    let seen = fake.seen();
    let e = run(sink.export(b.clone())).unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("refused 2 of 6") && m.contains("older than")), "{e:?}");
    assert_eq!(fake.seen(), seen + 2);
    assert_eq!((counted.rejected(service::PARTIAL_SUCCESS), counted.written()), (2, 3 * points - 8));
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[test]
fn gzip_bodies_carry_what_the_encoder_made() {
    use prost::Message as _;
    let fake = OtlpFake::start();
    let uri = format!("otlp:{}/?gzip=true&cluster_name=c1", fake.url());
    let sink = OtlpSink::new(&uri.parse().unwrap(), &SinkMetrics::detached()).unwrap();
    let b = batch(T0, 3);
    run(sink.export(Arc::new(b.clone()))).unwrap();
    wait("one request taken", Duration::from_secs(5), || fake.taken().len() == 1);
    let taken = &fake.taken()[0];
    assert_eq!(taken.content_encoding.as_deref(), Some("gzip"));
    let encoded = sink.encoder.encode(&b);
    let want = proto::ExportMetricsServiceRequest::decode(encoded.bodies[0].0.as_slice()).unwrap();
    assert_eq!(taken.request.encode_to_vec(), want.encode_to_vec());
    assert_eq!(taken.request.resource_metrics.len(), 3);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}
