//! The Riemann sinks against testkit's strict fake of Riemann's TCP protocol: what it decoded equals the batch
//! and the events, refusals are counted and not retried, a dropped connection is.

use super::*;
use crate::events::EventSink as _;
use heapster_model::events::{Change, Event, EventSource, EventVersion, ObjectReference};
use heapster_model::{Labels, MetricSet, MetricValue};
use heapster_testkit::RiemannFake;
use heapster_testkit::riemann::Event as Got;
use std::collections::BTreeMap;

fn registry() -> (prometheus_client::registry::Registry, SinkMetrics) {
    let mut r = prometheus_client::registry::Registry::default();
    let m = SinkMetrics::register(&mut r);
    (r, m)
}

fn text(r: &prometheus_client::registry::Registry) -> String {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, r).unwrap();
    s
}

fn sink(fake: &RiemannFake, opts: &str, m: &SinkMetrics) -> RiemannSink {
    RiemannSink::new(&format!("riemann:http://{}?{opts}", fake.address()).parse().unwrap(), m).unwrap()
}

fn batch() -> DataBatch {
    let mut node = MetricSet::default();
    node.labels.insert("type", "node".to_owned());
    node.labels.insert("hostname", "node-1".to_owned());
    node.set("cpu/usage", MetricValue::Int(-123));
    node.set("cpu/usage_rate", MetricValue::Float(0.25));
    node.set("memory/usage", MetricValue::Float(f64::NAN));
    let fs: Labels = [("resource_id".to_owned(), "/dev/sda1".to_owned())].into_iter().collect();
    node.add_labeled("filesystem/usage", fs, MetricValue::Int(4096));
    let mut cluster = MetricSet::default();
    cluster.labels.insert("type", "cluster".to_owned());
    cluster.set("memory/limit", MetricValue::Int(1 << 40));
    DataBatch {
        timestamp: 1_700_000_000_999,
        sets: [("node".to_owned(), node), ("cluster".to_owned(), cluster)].into(),
    }
}

/// service -> (host, metric as f64, attributes, ttl, tags, state, time).
type Row = (Option<String>, f64, BTreeMap<String, String>, Option<f32>, Vec<String>, Option<String>, Option<i64>);

fn rows(events: &[Got]) -> BTreeMap<String, Row> {
    events
        .iter()
        .map(|e| {
            let metric = e.metric_sint64.map(|i| i as f64).or(e.metric_d).or(e.metric_f.map(f64::from)).unwrap();
            let attrs = e.attributes.iter().map(|a| (a.key.clone(), a.value.clone().unwrap_or_default())).collect();
            let row = (e.host.clone(), metric, attrs, e.ttl, e.tags.clone(), e.state.clone(), e.time);
            (e.service.clone().unwrap(), row)
        })
        .collect()
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_values_arrive_as_the_batch_held_them() {
    let fake = RiemannFake::start();
    let (r, m) = registry();
    let s = sink(&fake, "ttl=30&state=ok&tags=k8s&tags=prod", &m);
    s.export(Arc::new(batch())).await.unwrap();
    let tags = vec!["k8s".to_owned(), "prod".to_owned()];
    let node = [("hostname", "node-1"), ("type", "node")];
    let host = Some("node-1".to_owned());
    let (ok, t) = (Some("ok".to_owned()), Some(1_700_000_000));
    let want: BTreeMap<String, Row> = [
        ("cpu/usage", (host.clone(), -123.0, attrs(&node), Some(30.0), tags.clone(), ok.clone(), t)),
        ("cpu/usage_rate", (host.clone(), 0.25, attrs(&node), Some(30.0), tags.clone(), ok.clone(), t)),
        (
            "filesystem/usage",
            (
                host,
                4096.0,
                attrs(&[node[0], ("resource_id", "/dev/sda1"), node[1]]),
                Some(30.0),
                tags.clone(),
                ok.clone(),
                t,
            ),
        ),
        ("memory/limit", (None, (1u64 << 40) as f64, attrs(&[("type", "cluster")]), Some(30.0), tags, ok, t)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let got = fake.events();
    assert_eq!(got.len(), 4);
    assert_eq!(rows(&got), want);
    // Integers stay integers, fractions doubles.
    assert!(got.iter().filter(|e| e.service.as_deref() != Some("cpu/usage_rate")).all(|e| e.metric_sint64.is_some()));
    let t = text(&r);
    assert!(t.contains(&format!("heapster_sink_riemann_points_written_total{{sink=\"{}\"}} 4", s.name())), "{t}");
    assert!(t.contains("cause=\"not a finite number\"} 1"), "{t}");
}

fn event(kind: &str, reason: &str, type_: &str, count: i32) -> EventVersion {
    let e = Event {
        involved_object: ObjectReference {
            kind: kind.into(),
            namespace: "default".into(),
            name: "web-1".into(),
            uid: "a1".into(),
            api_version: "v1".into(),
            resource_version: "700".into(),
            field_path: "spec.containers{web}".into(),
        },
        reason: reason.into(),
        message: format!("{reason} happened"),
        source: EventSource { component: "kubelet".into(), host: "node-1".into() },
        first_timestamp: Some("2026-12-03T10:00:00Z".into()),
        last_timestamp: Some("2026-12-03T10:05:00Z".into()),
        count,
        type_: type_.into(),
        ..Default::default()
    };
    EventVersion { change: Change::Added, event: Arc::new(e) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_events_arrive_with_heapsters_fields() {
    let fake = RiemannFake::start();
    let (_r, m) = registry();
    let uri = format!("riemann:http://{}?batchsize=1", fake.address()).parse().unwrap();
    let s = RiemannEventSink::new(&uri, &m).unwrap();
    let b = EventBatch {
        timestamp: 1_764_756_000_000,
        events: vec![event("Pod", "Pulled", "Normal", 3), event("Node", "OOM", "Warning", 1)],
    };
    s.export(&b).await.unwrap();
    let got = fake.events();
    assert_eq!(fake.messages(), 2, "batchsize=1: one message per event");
    let common = [
        ("api-version", "v1"),
        ("component", "kubelet"),
        ("field-path", "spec.containers{web}"),
        ("first-timestamp", "1796292000"),
        ("last-timestamp", "1796292300"),
        ("name", "web-1"),
        ("namespace", "default"),
        ("resource-version", "700"),
        ("uid", "a1"),
    ];
    let host = Some("node-1".to_owned());
    let tags = vec!["heapster".to_owned()];
    let want: BTreeMap<String, Row> = [
        (
            "Pod.Pulled",
            (host.clone(), 3.0, attrs(&common), Some(60.0), tags.clone(), Some("ok".into()), Some(1_764_756_000)),
        ),
        ("Node.OOM", (host, 1.0, attrs(&common), Some(60.0), tags, Some("warning".into()), Some(1_764_756_000))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(rows(&got), want);
    assert_eq!(got[0].description.as_deref(), Some("Pulled happened"));

    let off =
        RiemannEventSink::new(&format!("riemann:http://{}?storeEvents=false", fake.address()).parse().unwrap(), &m)
            .unwrap();
    off.export(&b).await.unwrap();
    assert_eq!(fake.messages(), 2, "storeEvents=false sends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_counted_and_the_batch_dropped_not_retried() {
    let fake = RiemannFake::start();
    let (r, m) = registry();
    let s = sink(&fake, "batchsize=2", &m);
    fake.refuse_next(1);
    // Four representable values in two messages: the first refused, the second taken.
    let e = s.export(Arc::new(batch())).await.unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("refused by the test")), "{e:?}");
    assert_eq!((fake.messages(), fake.events().len()), (2, 2));
    let t = text(&r);
    assert!(t.contains("cause=\"refused by the test\"} 2"), "{t}");
    assert!(t.contains("outcome=\"rejected\"} 1") && t.contains("outcome=\"ok\"} 1"), "{t}");

    // Events the fake's rules refuse (no service) are answered ok=false too, with the server's reason.
    let mut b = batch();
    b.sets.get_mut("cluster").unwrap().metrics.insert(String::new(), MetricValue::Int(1));
    let e = s.export(Arc::new(b)).await.unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("without a service")), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_retried_and_then_delivered() {
    let fake = RiemannFake::start();
    let (_r, m) = registry();
    let s = sink(&fake, "", &m);
    fake.drop_next(1);
    let e = s.export(Arc::new(batch())).await.unwrap_err();
    assert!(matches!(&e, SinkError::Retry(_)), "{e:?}");
    assert!(fake.events().is_empty());
    // What the manager does next: the same batch again, on a new connection.
    s.export(Arc::new(batch())).await.unwrap();
    assert_eq!(fake.events().len(), 4);

    // Nothing listening: worth a retry too.
    let port = fake.port;
    drop(fake);
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert_ne!(port, nobody);
    let down = RiemannSink::new(&format!("riemann:tcp://127.0.0.1:{nobody}").parse().unwrap(), &m).unwrap();
    let e = down.export(Arc::new(batch())).await.unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("connect")), "{e:?}");
}
