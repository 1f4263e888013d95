//! The Kafka sinks against testkit's strict broker fake, every message read back by an independent client
//! (Python's kafka-python) and compared with the batch and the events; or, with `HEAPSTER_TEST_KAFKA=HOST:PORT`
//! (scripts/kafka-tansu), the read-back tests against that real broker. Refusals are counted per cause and not
//! retried; a broker that is down is retried and then delivered to.

use super::*;
use crate::events::EventSink as _;
use crate::util::test_support::metrics_text as text;
use heapster_model::events::{Change, Event, EventSource, EventVersion, ObjectMeta, ObjectReference};
use heapster_model::{Labels, MetricSet, MetricValue};
use heapster_testkit::KafkaFake;
use heapster_testkit::kafka::{ReadBack, errors, read_back, real_broker};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn registry() -> (prometheus_client::registry::Registry, SinkMetrics) {
    let mut r = prometheus_client::registry::Registry::default();
    let m = SinkMetrics::register(&mut r);
    (r, m)
}

/// Where the read-back tests produce: the fake (checked for violations when dropped) or the real broker.
struct Broker {
    fake: Option<KafkaFake>,
    address: String,
}

impl Broker {
    /// A broker with `topic` of `partitions` partitions: on the fake, or created on the real broker under a name
    /// of its own (so runs do not read each other's messages); returns the topic's name.
    async fn with_topic(topic: &str, partitions: i32) -> (Broker, String) {
        match real_broker() {
            None => {
                let fake = KafkaFake::start(&[(topic, partitions as usize)]);
                let address = fake.address();
                (Broker { fake: Some(fake), address }, topic.to_owned())
            }
            Some(address) => {
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
                let name = format!("{topic}-{nanos}");
                let client = rskafka::client::ClientBuilder::new(vec![address.clone()]).build().await.unwrap();
                client.controller_client().unwrap().create_topic(&name, partitions, 1, 5_000).await.unwrap();
                (Broker { fake: None, address }, name)
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(f) = &self.fake
            && !std::thread::panicking()
        {
            assert_eq!(f.violations(), Vec::<String>::new());
        }
    }
}

/// Reads back on a thread of its own: the Python client blocks.
async fn read(address: &str, topic: &str, sasl: Option<(&str, &str)>) -> Vec<ReadBack> {
    let (a, t) = (address.to_owned(), topic.to_owned());
    let sasl = sasl.map(|(u, p)| (u.to_owned(), p.to_owned()));
    tokio::task::spawn_blocking(move || read_back(&a, &t, sasl.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))))
        .await
        .unwrap()
}

fn batch() -> DataBatch {
    let mut node = MetricSet::default();
    node.labels.insert("type", "node".to_owned());
    node.labels.insert("hostname", "node-1".to_owned());
    node.labels.insert("labels", "tier:<front>&x".to_owned());
    node.set("cpu/usage", MetricValue::Int(-123));
    node.set("cpu/usage_rate", MetricValue::Float(0.25));
    node.set("memory/usage", MetricValue::Float(f64::NAN));
    let fs: Labels = [("resource_id".to_owned(), "/dev/sda1".to_owned())].into_iter().collect();
    node.add_labeled("filesystem/usage", fs, MetricValue::Int(4096));
    let mut cluster = MetricSet::default();
    cluster.labels.insert("type", "cluster".to_owned());
    cluster.set("memory/limit", MetricValue::Int(1 << 40));
    cluster.set("cpu/request", MetricValue::Float(1e-7));
    DataBatch {
        timestamp: 1_700_000_000_999,
        sets: [("node".to_owned(), node), ("cluster".to_owned(), cluster)].into(),
    }
}

/// (MetricsName, MetricsTags) -> value, straight from the batch: what the model API serves.
fn model(batch: &DataBatch) -> BTreeMap<(String, BTreeMap<String, String>), Value> {
    let mut out = BTreeMap::new();
    let json = |v: MetricValue| match v {
        MetricValue::Int(i) => json!(i),
        MetricValue::Float(f) => json!(f),
    };
    for set in batch.sets.values() {
        let labels: BTreeMap<String, String> = set.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for (name, v) in set.metrics.iter().filter(|(_, v)| v.as_f64().is_finite()) {
            out.insert((name.to_string(), labels.clone()), json(*v));
        }
        for m in &set.labeled_metrics {
            let mut l = labels.clone();
            l.extend(m.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            out.insert((m.name.to_string(), l), json(m.value));
        }
    }
    out
}

/// What the Python client read, parsed as Heapster's consumers parse it.
fn points(read: &[ReadBack]) -> BTreeMap<(String, BTreeMap<String, String>), Value> {
    read.iter()
        .map(|m| {
            let v: Value = serde_json::from_str(m.value.as_deref().unwrap()).unwrap();
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["MetricsName", "MetricsTags", "MetricsTimestamp", "MetricsValue"], "{v}");
            assert_eq!(v["MetricsTimestamp"], "2023-11-14T22:13:20.999Z");
            assert!(m.key.is_none());
            let tags = serde_json::from_value(v["MetricsTags"].clone()).unwrap();
            ((v["MetricsName"].as_str().unwrap().to_owned(), tags), v["MetricsValue"]["value"].clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_values_read_back_by_an_independent_client_equal_the_batch() {
    let (broker, topic) = Broker::with_topic("heapster-metrics", 3).await;
    let (r, m) = registry();
    let uri = format!("kafka:?brokers={}&timeseriestopic={topic}", broker.address);
    let s = KafkaSink::new(&uri.parse().unwrap(), &m).unwrap();
    s.export(Arc::new(batch())).await.unwrap();
    let got = read(&broker.address, &topic, None).await;
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(points(&got), model(&batch()));
    // Byte for byte what the encoder made (Go's escaping of `<`, `>`, `&` included), one message per value.
    let sent: BTreeSet<String> = encoder::metrics(&batch())
        .messages
        .iter()
        .map(|m| String::from_utf8(m.record.value.clone().unwrap()).unwrap())
        .collect();
    let read_values: BTreeSet<String> = got.iter().map(|m| m.value.clone().unwrap()).collect();
    assert_eq!(read_values, sent);
    assert!(read_values.iter().any(|v| v.contains(r#""labels":"tier:\u003cfront\u003e\u0026x""#)));
    // Round robin over the partitions, as Heapster's producer spread them.
    let partitions: BTreeSet<i32> = got.iter().map(|m| m.partition).collect();
    assert_eq!(partitions, BTreeSet::from([0, 1, 2]));
    assert!(got.iter().all(|m| m.timestamp == 1_700_000_000_999));
    if let Some(fake) = &broker.fake {
        let on_broker: Vec<String> =
            fake.records(&topic).into_iter().flatten().map(|r| String::from_utf8(r.value.unwrap()).unwrap()).collect();
        assert_eq!(on_broker.into_iter().collect::<BTreeSet<_>>(), read_values);
    }
    let t = text(&r);
    assert!(t.contains(&format!("heapster_sink_kafka_points_written_total{{sink=\"{}\"}} 5", s.name())), "{t}");
    assert!(t.contains("cause=\"not a finite number\"} 1"), "{t}");
}

fn event(uid: &str, rv: &str, kind: &str, count: i32) -> EventVersion {
    let e = Event {
        metadata: ObjectMeta {
            name: format!("web-1.{uid}"),
            namespace: "default".into(),
            uid: uid.into(),
            resource_version: rv.into(),
            creation_timestamp: Some("2026-12-03T10:00:00Z".into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: kind.into(),
            namespace: "default".into(),
            name: "web-1".into(),
            uid: "a1".into(),
            api_version: "v1".into(),
            field_path: "spec.containers{web}".into(),
            ..Default::default()
        },
        reason: "BackOff".into(),
        message: "Back-off restarting <web> & \"sidecar\"".into(),
        source: EventSource { component: "kubelet".into(), host: "node-1".into() },
        first_timestamp: Some("2026-12-03T10:00:00Z".into()),
        last_timestamp: Some("2026-12-03T10:05:00Z".into()),
        count,
        type_: "Warning".into(),
        ..Default::default()
    };
    EventVersion { change: Change::Modified, event: Arc::new(e) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_read_back_in_heapsters_format_keyed_for_deduplication() {
    let (broker, topic) = Broker::with_topic("heapster-events", 2).await;
    let (_r, m) = registry();
    let uri = format!("kafka:?brokers={}&eventstopic={topic}&compression=gzip", broker.address);
    let s = KafkaEventSink::new(&uri.parse().unwrap(), &m).unwrap();
    let events = vec![event("e1", "100", "Pod", 1), event("e2", "101", "Node", 1), event("e1", "102", "Pod", 2)];
    let b = EventBatch { timestamp: 1_764_756_000_000, events: events.clone() };
    s.export(&b).await.unwrap();
    let got = read(&broker.address, &topic, None).await;
    assert_eq!(got.len(), 3);
    let by_key: BTreeMap<String, &ReadBack> = got.iter().map(|m| (m.key.clone().unwrap(), m)).collect();
    assert_eq!(by_key.keys().collect::<Vec<_>>(), ["e1/100", "e1/102", "e2/101"]);
    // Both versions of e1 on one partition, in the order they happened.
    let (v1, v2) = (by_key["e1/100"], by_key["e1/102"]);
    assert_eq!(v1.partition, v2.partition);
    assert!(v1.offset < v2.offset);
    for ev in &events {
        let e = &ev.event;
        let m = by_key[&format!("{}/{}", e.metadata.uid, e.metadata.resource_version)];
        assert_eq!(m.timestamp, 1_796_292_300_000);
        let v: Value = serde_json::from_str(m.value.as_deref().unwrap()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["EventTags", "EventTimestamp", "EventValue"]);
        assert_eq!(v["EventTimestamp"], "2026-12-03T10:05:00Z");
        // EventValue is the event as Go's json.MarshalIndent(event, "", " ") wrote it: a string of JSON.
        let inner = v["EventValue"].as_str().unwrap();
        assert!(inner.starts_with("{\n \"metadata\": {\n  \"name\": "), "{inner}");
        assert!(inner.contains(r#""message": "Back-off restarting \u003cweb\u003e \u0026 \"sidecar\"""#), "{inner}");
        assert_eq!(serde_json::from_str::<Value>(inner).unwrap(), serde_json::to_value(e.as_ref()).unwrap());
        let mut tags = json!({"eventID": e.metadata.uid, "hostname": "node-1"});
        if e.involved_object.kind == "Pod" {
            tags["pod_id"] = json!("a1");
            tags["pod_name"] = json!("web-1");
        }
        assert_eq!(v["EventTags"], tags);
    }
    if let Some(fake) = &broker.fake {
        assert!(fake.compressions(&topic).iter().all(|c| c == "Gzip"), "{:?}", fake.compressions(&topic));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snappy_batches_decode_on_the_broker_and_a_large_batch_is_cut_below_message_max_bytes() {
    let fake = KafkaFake::start(&[("heapster-metrics", 1)]);
    let (_r, m) = registry();
    let uri = format!("kafka:?brokers={}&compression=snappy", fake.address());
    let s = KafkaSink::new(&uri.parse().unwrap(), &m).unwrap();
    let mut big = DataBatch { timestamp: 1_700_000_000_000, ..Default::default() };
    for i in 0..8000 {
        let mut set = MetricSet::default();
        set.labels.insert("type", "pod_container".to_owned());
        set.labels.insert("container_name", format!("container-{i:05}-{}", "x".repeat(64)));
        set.set("cpu/usage", MetricValue::Int(i));
        set.set("memory/usage", MetricValue::Int(i * 2));
        big.sets.insert(format!("c{i}"), set);
    }
    s.export(Arc::new(big.clone())).await.unwrap();
    let records = fake.records("heapster-metrics").remove(0);
    assert_eq!(records.len(), 16_000);
    let sent: usize = records.iter().map(|r| r.value.as_ref().unwrap().len()).sum();
    assert!(sent > 2 * 1_048_576, "{sent} bytes: not enough to need cutting");
    assert!(fake.batches("heapster-metrics") >= 3, "{}", fake.batches("heapster-metrics"));
    assert!(fake.compressions("heapster-metrics").iter().all(|c| c == "Snappy"));
    let values: BTreeMap<(String, String), i64> = records
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
            let key = (v["MetricsName"].as_str().unwrap().to_owned(), v["MetricsTags"]["container_name"].to_string());
            (key, v["MetricsValue"]["value"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(values.len(), 16_000);
    assert_eq!(values[&("memory/usage".to_owned(), format!("\"container-00007-{}\"", "x".repeat(64)))], 14);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_per_cause_and_not_retried() {
    let fake = KafkaFake::start(&[("heapster-metrics", 1)]);
    let (r, m) = registry();
    let s = KafkaSink::new(&format!("kafka:?brokers={}", fake.address()).parse().unwrap(), &m).unwrap();
    fake.refuse_next(&[errors::UNKNOWN_TOPIC_OR_PARTITION]);
    let e = s.export(Arc::new(batch())).await.unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("UnknownTopicOrPartition")), "{e:?}");
    assert_eq!(fake.produce_requests(), 1, "refused once, not retried");

    // A broker whose message.max.bytes the batch's record batch exceeds.
    fake.set_max_message_bytes(200);
    let e = s.export(Arc::new(batch())).await.unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("MessageTooLarge")), "{e:?}");
    assert_eq!(fake.produce_requests(), 2);
    assert!(fake.records("heapster-metrics")[0].is_empty());

    // A topic the brokers do not have.
    let uri = format!("kafka:?brokers={}&timeseriestopic=nosuchtopic", fake.address());
    let nosuch = KafkaSink::new(&uri.parse().unwrap(), &m).unwrap();
    let e = nosuch.export(Arc::new(batch())).await.unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("\"nosuchtopic\" does not exist")), "{e:?}");
    assert_eq!(fake.produce_requests(), 2);

    let t = text(&r);
    let sink = s.name();
    for line in [
        format!("heapster_sink_kafka_points_rejected_total{{sink=\"{sink}\",cause=\"UnknownTopicOrPartition\"}} 5"),
        format!("heapster_sink_kafka_points_rejected_total{{sink=\"{sink}\",cause=\"MessageTooLarge\"}} 5"),
        format!(
            "heapster_sink_kafka_points_rejected_total{{sink=\"{}\",cause=\"UnknownTopicOrPartition\"}} 5",
            nosuch.name()
        ),
    ] {
        assert!(t.contains(&line), "{line}\n{t}");
    }
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_down_is_retried_and_then_delivered_to() {
    let port = heapster_testkit::free_port();
    let (r, m) = registry();
    let uri = format!("kafka:?brokers=127.0.0.1:{port}").parse().unwrap();
    let s = KafkaSink::with_deadline(&uri, &m, Duration::from_secs(1)).unwrap();
    let e = s.export(Arc::new(batch())).await.unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("connect")), "{e:?}");

    // What the manager does next: the same batch again, once the broker is there.
    let fake = KafkaFake::start_on(port, &[("heapster-metrics", 2)]);
    s.export(Arc::new(batch())).await.unwrap();
    assert_eq!(fake.records("heapster-metrics").concat().len(), 5);

    // A connection that breaks before the answer: rskafka sends the request again on a new one; the records the
    // broker dropped with the connection are not there twice.
    fake.drop_next(1);
    s.export(Arc::new(batch())).await.unwrap();
    assert_eq!(fake.records("heapster-metrics").concat().len(), 10);
    drop(fake);
    let t = text(&r);
    assert!(
        t.contains(&format!("heapster_sink_kafka_requests_total{{sink=\"{}\",outcome=\"connect\"}} 1", s.name())),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_user_and_password() {
    let fake = KafkaFake::start(&[("heapster-events", 1)]);
    fake.require_sasl("heapster", "s3cret");
    let (r, m) = registry();
    let uri = format!("kafka:?brokers={}&user=heapster&password=s3cret", fake.address());
    let s = KafkaEventSink::new(&uri.parse().unwrap(), &m).unwrap();
    let b = EventBatch { timestamp: 1, events: vec![event("e1", "7", "Pod", 1)] };
    s.export(&b).await.unwrap();
    let got = read(&fake.address(), "heapster-events", Some(("heapster", "s3cret"))).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].key.as_deref(), Some("e1/7"));

    let uri = format!("kafka:?brokers={}&user=heapster&password=wrong", fake.address());
    let bad = KafkaEventSink::new(&uri.parse().unwrap(), &m).unwrap();
    let e = bad.export(&b).await.unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("SaslAuthenticationFailed")), "{e:?}");
    assert!(text(&r).contains("cause=\"SaslAuthenticationFailed\"} 1"), "{}", text(&r));
    assert_eq!(fake.records("heapster-events")[0].len(), 1);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[test]
fn tls_files_that_cannot_be_read_are_a_start_up_error_naming_the_option() {
    let m = SinkMetrics::detached();
    for (opts, says) in [
        ("cacert=/nonexistent/ca.pem", "cacert=/nonexistent/ca.pem"),
        ("cert=/nonexistent/c.pem&key=/nonexistent/k.pem", "cert=/nonexistent/c.pem"),
    ] {
        let uri = format!("kafka:?brokers=k:9093&{opts}").parse().unwrap();
        let e = KafkaSink::new(&uri, &m).err().unwrap().to_string();
        assert!(e.starts_with("--sink=kafka") && e.contains(says) && !e.contains('\n'), "{e}");
    }
}
