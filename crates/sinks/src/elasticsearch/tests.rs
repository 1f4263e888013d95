//! The Elasticsearch sinks against testkit's strict fake of Elasticsearch 2/5/6/7/8 (built from Elastic's REST
//! spec): what it stored, read back through Heapster's aliases, equals the batch and the events; every document
//! fits the mapping the sink installed; refused items are counted and not sent again; busy items and a server that
//! is down are retried, and a batch sent again (a retry, a restart) overwrites instead of duplicating.

use super::*;
use crate::events::EventSink as _;
use heapster_model::events::{Change, Event, EventSource, EventVersion, ObjectMeta, ObjectReference};
use heapster_model::{Labels, MetricSet, MetricValue};
use heapster_testkit::ElasticsearchFake;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;

fn registry() -> (prometheus_client::registry::Registry, SinkMetrics) {
    let mut r = prometheus_client::registry::Registry::default();
    let m = SinkMetrics::register(&mut r);
    (r, m)
}

use crate::util::test_support::metrics_text as text;

fn sink(url: &str, opts: &str, m: &SinkMetrics) -> ElasticsearchSink {
    ElasticsearchSink::new(&format!("elasticsearch:{url}?{opts}").parse().unwrap(), m).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// 2023-11-14T22:13:20.5Z.
const TS: i64 = 1_700_000_000_500;

fn batch() -> DataBatch {
    let mut node = MetricSet {
        labels: labels(&[("type", "node"), ("nodename", "node-1"), ("hostname", "node-1")]),
        ..Default::default()
    };
    node.set("cpu/usage", MetricValue::Int(123_456_789));
    node.set("cpu/usage_rate", MetricValue::Int(250));
    node.set("memory/working_set", MetricValue::Int(1 << 30));
    node.set("network/rx_rate", MetricValue::Float(1234.5));
    node.set("uptime", MetricValue::Int(3_600_000));
    node.set("memory/usage", MetricValue::Float(f64::NAN));
    let sda: std::sync::Arc<Labels> = std::sync::Arc::new(labels(&[("resource_id", "/dev/sda1")]));
    node.add_labeled("filesystem/usage", sda.clone(), MetricValue::Int(4096));
    node.add_labeled("filesystem/limit", sda, MetricValue::Int(8192));
    node.add_labeled("filesystem/usage", labels(&[("resource_id", "/dev/sdb")]), MetricValue::Int(1));
    let mut pod = MetricSet {
        labels: labels(&[
            ("type", "pod_container"),
            ("pod_name", "web-1"),
            ("namespace_name", "default"),
            ("container_name", "web"),
            ("labels", "app:web"),
        ]),
        ..Default::default()
    };
    pod.set("cpu/limit", MetricValue::Int(500));
    pod.metrics.insert(Cow::Owned("custom/qps".into()), MetricValue::Float(12.25));
    DataBatch {
        timestamp: TS,
        sets: [("node:node-1".to_owned(), node), ("pod:default/web-1/web".to_owned(), pod)].into(),
    }
}

/// (type, tags, metric) -> value, as the test reads the batch (not through the encoder).
type Want = BTreeMap<(String, BTreeMap<String, String>, String), f64>;

fn want(b: &DataBatch) -> Want {
    let family = |m: &str| -> &str {
        match m {
            "cpu/usage" | "cpu/usage_rate" | "cpu/limit" => "cpu",
            "memory/working_set" => "memory",
            "network/rx_rate" => "network",
            "filesystem/usage" | "filesystem/limit" => "filesystem",
            _ => "general",
        }
    };
    let mut w = Want::new();
    for set in b.sets.values() {
        let base: BTreeMap<String, String> = set
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("cluster_name".to_owned(), "k8s-prod".to_owned())])
            .collect();
        for (name, v) in set.metrics.iter() {
            if v.as_f64().is_finite() {
                w.insert((family(name).into(), base.clone(), name.to_string()), v.as_f64());
            }
        }
        for m in &set.labeled_metrics {
            let mut tags = base.clone();
            tags.extend(m.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            w.insert((family(&m.name).into(), tags, m.name.to_string()), m.value.as_f64());
        }
    }
    w
}

fn tags(v: &Value) -> BTreeMap<String, String> {
    v.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect()
}

/// The documents of type `t` under its alias (which, in Heapster's layout for 2 and 5, names the whole day's
/// index, every type in it).
fn typed(fake: &ElasticsearchFake, t: &str) -> Vec<heapster_testkit::elasticsearch::Doc> {
    fake.docs(&format!("heapster-{t}")).into_iter().filter(|d| d.type_ == t || d.type_ == "_doc").collect()
}

/// What the fake holds under Heapster's aliases, in the shape of [`want`]; checks each document's timestamp.
fn stored(fake: &ElasticsearchFake) -> Want {
    let mut got = Want::new();
    for t in ["cpu", "filesystem", "memory", "network"] {
        let ts_field = format!("{}{}MetricsTimestamp", t[..1].to_uppercase(), &t[1..]);
        for d in typed(fake, t) {
            assert_eq!(d.source[&ts_field], "2023-11-14T22:13:20.5Z", "{d:?}");
            for (name, v) in d.source["Metrics"].as_object().unwrap() {
                got.insert((t.into(), tags(&d.source["MetricsTags"]), name.clone()), v["value"].as_f64().unwrap());
            }
        }
    }
    for d in typed(fake, "general") {
        assert_eq!(d.source["GeneralMetricsTimestamp"], "2023-11-14T22:13:20.5Z", "{d:?}");
        let name = d.source["MetricsName"].as_str().unwrap().to_owned();
        got.insert(
            ("general".into(), tags(&d.source["MetricsTags"]), name),
            d.source["MetricsValue"]["value"].as_f64().unwrap(),
        );
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_stores_the_batch_under_heapsters_aliases_and_a_resend_overwrites() {
    for (ver, index) in [
        (2, "heapster-2023.11.14"),
        (5, "heapster-2023.11.14"),
        (6, "heapster-cpu-2023.11.14"),
        (7, "heapster-cpu-2023.11.14"),
        (8, "heapster-cpu-2023.11.14"),
    ] {
        let fake = ElasticsearchFake::start(ver, None);
        let (r, m) = registry();
        let s = sink(&fake.url(), &format!("ver={ver}&cluster_name=k8s-prod"), &m);
        let b = Arc::new(batch());
        s.export(b.clone()).await.unwrap();
        assert_eq!(stored(&fake), want(&b), "ver={ver}");
        assert!(fake.refused().is_empty(), "ver={ver}: {:?}", fake.refused());
        assert!(fake.indices().contains(&index.to_owned()), "ver={ver}: {:?}", fake.indices());
        // Filesystem values with the same resource_id share a document, as in Heapster: two documents, not three.
        assert_eq!(typed(&fake, "filesystem").len(), 2, "ver={ver}");
        let before: Vec<_> = fake.docs("heapster-cpu");
        // The same batch again (a retry, or heapster restarted with it in its spool): the same documents.
        s.export(b.clone()).await.unwrap();
        let after = fake.docs("heapster-cpu");
        assert_eq!(after.len(), before.len(), "ver={ver}");
        assert!(after.iter().all(|d| d.version == 2), "ver={ver}: {after:?}");
        let bulks = fake.seen().iter().filter(|s| s.method == "POST" && s.path == "/_bulk").count();
        assert_eq!(bulks, 2, "ver={ver}: one bulk request per export");
        let installs = fake.seen().iter().filter(|s| s.method == "PUT").count();
        assert_eq!(installs, if ver <= 5 { 1 } else { 6 }, "ver={ver}: templates installed once");
        assert_eq!(fake.seen()[0].method, "GET", "ver={ver}: the health check comes first");
        let t = text(&r);
        assert!(t.contains("cause=\"not a finite number\"} 2"), "{t}");
        assert!(
            t.contains(&format!("heapster_sink_elasticsearch_points_written_total{{sink=\"{}\"}} 20", s.name())),
            "{t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installed_mapping_types_every_field_as_heapster_did() {
    let fake = ElasticsearchFake::start(7, None);
    let (_r, m) = registry();
    sink(&fake.url(), "ver=7", &m).export(Arc::new(batch())).await.unwrap();
    let cpu = fake.mapping("heapster-cpu-2023.11.14", "_doc").unwrap();
    let p = &cpu["properties"];
    assert_eq!(p["CpuMetricsTimestamp"]["type"], "date");
    assert_eq!(p["Metrics"]["properties"]["cpu/usage"]["properties"]["value"]["type"], "double");
    assert_eq!(
        p["MetricsTags"]["properties"]["pod_name"],
        json!({"type": "text", "fields": {"raw": {"type": "keyword"}}})
    );
    assert_eq!(p["MetricsTags"]["properties"]["type"], json!({"type": "keyword"}));
    assert_eq!(fake.aliases("heapster-cpu-2023.11.14"), ["heapster-cpu"]);
    let general = fake.mapping("heapster-general-2023.11.14", "_doc").unwrap();
    assert_eq!(general["properties"]["MetricsValue"]["properties"]["value"]["type"], "double");
    // Heapster's 5.x layout: one index, a type per family, every alias on it.
    let fake5 = ElasticsearchFake::start(5, None);
    sink(&fake5.url(), "", &m).export(Arc::new(batch())).await.unwrap();
    let host_id =
        &fake5.mapping("heapster-2023.11.14", "memory").unwrap()["properties"]["MetricsTags"]["properties"]["host_id"];
    assert_eq!(*host_id, json!({"type": "string", "index": "not_analyzed"}));
    assert_eq!(fake5.aliases("heapster-2023.11.14").len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_does_not_match_the_server_is_refused_with_a_hint() {
    let fake = ElasticsearchFake::start(7, None);
    let (_r, m) = registry();
    // Heapster's default ver=5 against a 7: its `string` mapping is refused, and the message says what to set.
    let e = sink(&fake.url(), "", &m).export(Arc::new(batch())).await.unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("does ver=5 match the server?")), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_is_sent_and_wrong_credentials_are_rejected_not_retried() {
    let fake = ElasticsearchFake::start(8, Some(("elastic", "s3cret")));
    let (r, m) = registry();
    sink(&fake.url(), "ver=8&esUserName=elastic&esUserSecret=s3cret", &m).export(Arc::new(batch())).await.unwrap();
    assert_eq!(stored(&fake).len(), 10);
    let bad = sink(&fake.url(), "ver=8&esUserName=elastic&esUserSecret=wrong&healthCheck=false", &m);
    let e = bad.export(Arc::new(batch())).await.unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("401 security_exception")), "{e:?}");
    assert!(!bad.name().contains("wrong") && !text(&r).contains("wrong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_documents_are_counted_per_cause_and_not_sent_again() {
    let fake = ElasticsearchFake::start(6, None);
    let (r, m) = registry();
    // Someone's template maps pod_name as a number in the cpu indices: that document is refused, the rest kept.
    let conflict = json!({"index_patterns": ["heapster-cpu-*"], "order": 1,
        "mappings": {"cpu": {"properties": {"MetricsTags": {"properties": {"pod_name": {"type": "long"}}}}}}});
    let client = heapster_net::client_builder(std::time::Duration::from_secs(10)).build().unwrap();
    let plain =
        client.put(format!("{}/_template/conflict", fake.url())).body(conflict.to_string()).send().await.unwrap();
    assert_eq!(plain.status(), 406, "the fake wants a JSON Content-Type");
    let put = client.put(format!("{}/_template/conflict", fake.url())).json(&conflict).send().await.unwrap();
    assert_eq!(put.status(), 200);
    let s = sink(&fake.url(), "ver=6&maxRetries=2", &m);
    s.export(Arc::new(batch())).await.unwrap();
    assert_eq!(fake.refused(), [("mapper_parsing_exception".to_owned(), 1)].into());
    assert_eq!(fake.docs("heapster-cpu").len(), 1, "the node's cpu document is kept");
    let bulks = fake.seen().iter().filter(|s| s.path == "/_bulk").count();
    assert_eq!(bulks, 1, "a refused document is not sent again, even with maxRetries");
    assert!(text(&r).contains("cause=\"mapper_parsing_exception\"} 1"), "{}", text(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_items_are_sent_again_alone_and_a_busy_server_keeps_the_batch() {
    let fake = ElasticsearchFake::start(7, None);
    let (_r, m) = registry();
    // maxRetries=1: the two items refused as busy go again in a second request of their own.
    let s = sink(&fake.url(), "ver=7&maxRetries=1", &m);
    fake.busy_items(2);
    s.export(Arc::new(batch())).await.unwrap();
    assert_eq!(stored(&fake), want_k8s_default(&batch()));
    assert!(fake.docs("heapster-general").iter().chain(fake.docs("heapster-cpu").iter()).all(|d| d.version == 1));
    assert_eq!(fake.refused(), [("es_rejected_execution_exception".to_owned(), 2)].into());

    // maxRetries=0: the batch goes back to the queue; its next export completes it without duplicates.
    let fake = ElasticsearchFake::start(7, None);
    let s = sink(&fake.url(), "ver=7", &m);
    fake.busy_items(3);
    let e = s.export(Arc::new(batch())).await.unwrap_err();
    assert!(
        matches!(&e, SinkError::Retry(m) if m.contains("3 of 8 documents not taken yet: 429 es_rejected_execution_exception")),
        "{e:?}"
    );
    s.export(Arc::new(batch())).await.unwrap();
    assert_eq!(stored(&fake), want_k8s_default(&batch()));
    let all: usize = ["cpu", "filesystem", "memory", "network", "general"]
        .iter()
        .map(|t| fake.docs(&format!("heapster-{t}")).len())
        .sum();
    assert_eq!(all, 8);

    // A whole request answered 503 is retried too.
    fake.fail_next(1, 503);
    let e = s.export(Arc::new(batch())).await.unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("503 cluster_block_exception")), "{e:?}");
}

fn want_k8s_default(b: &DataBatch) -> Want {
    want(b)
        .into_iter()
        .map(|((t, mut tags, n), v)| {
            tags.insert("cluster_name".into(), "default".into());
            ((t, tags, n), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_is_down_is_retried_on_the_next_node_or_later() {
    let fake = ElasticsearchFake::start(7, None);
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (r, m) = registry();
    let alone = sink("", &format!("nodes={down}&ver=7"), &m);
    let e = alone.export(Arc::new(batch())).await.unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("connect")), "{e:?}");
    assert!(text(&r).contains("outcome=\"connect\"} 1"), "{}", text(&r));
    // Two nodes, the first down: maxRetries=1 moves to the second within the export.
    let two = sink("", &format!("nodes={down}&nodes={}&ver=7&maxRetries=1", fake.url()), &m);
    two.export(Arc::new(batch())).await.unwrap();
    assert_eq!(stored(&fake), want_k8s_default(&batch()));
}

fn event(uid: &str, rv: &str, reason: &str) -> EventVersion {
    let e = Event {
        metadata: ObjectMeta {
            name: format!("web-1.{uid}"),
            namespace: "default".into(),
            self_link: format!("/api/v1/namespaces/default/events/web-1.{uid}"),
            uid: uid.into(),
            resource_version: rv.into(),
            creation_timestamp: Some("2026-12-03T10:00:00Z".into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: "Pod".into(),
            namespace: "default".into(),
            name: "web-1".into(),
            uid: "pod-uid".into(),
            api_version: "v1".into(),
            resource_version: "700".into(),
            field_path: "spec.containers{web}".into(),
        },
        reason: reason.into(),
        message: format!("{reason} \"quoted\" happened"),
        source: EventSource { component: "kubelet".into(), host: "node-1".into() },
        first_timestamp: Some("2026-12-03T10:00:00Z".into()),
        last_timestamp: Some("2026-12-03T10:05:00Z".into()),
        count: 3,
        type_: "Normal".into(),
        ..Default::default()
    };
    EventVersion { change: Change::Added, event: Arc::new(e) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_as_heapsters_documents_and_a_repeated_batch_overwrites() {
    for ver in [5, 7] {
        let fake = ElasticsearchFake::start(ver, None);
        let (_r, m) = registry();
        let uri = format!("elasticsearch:{}?ver={ver}&cluster_name=prod", fake.url()).parse().unwrap();
        let s = ElasticsearchEventSink::new(&uri, &m).unwrap();
        let mut only_event_time = event("e3", "103", "Scheduled");
        let e = Arc::make_mut(&mut only_event_time.event);
        (e.first_timestamp, e.last_timestamp, e.event_time) = (None, None, Some("2026-12-02T23:59:59.250000Z".into()));
        let b = EventBatch {
            timestamp: 1,
            events: vec![event("e1", "101", "Pulled"), event("e2", "102", "Started"), only_event_time],
        };
        s.export(&b).await.unwrap();
        let docs = fake.docs("heapster-events");
        assert_eq!(docs.len(), 3, "ver={ver}");
        let e1 = docs.iter().find(|d| d.id == "e1-101").unwrap();
        assert_eq!(
            e1.source,
            json!({
                "Count": 3,
                "Metadata": {"name": "web-1.e1", "namespace": "default", "selfLink": "/api/v1/namespaces/default/events/web-1.e1",
                    "uid": "e1", "resourceVersion": "101", "creationTimestamp": "2026-12-03T10:00:00Z"},
                "InvolvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "pod-uid", "apiVersion": "v1",
                    "resourceVersion": "700", "fieldPath": "spec.containers{web}"},
                "Source": {"component": "kubelet", "host": "node-1"},
                "FirstOccurrenceTimestamp": "2026-12-03T10:00:00Z",
                "LastOccurrenceTimestamp": "2026-12-03T10:05:00Z",
                "Message": "Pulled \"quoted\" happened",
                "Reason": "Pulled",
                "Type": "Normal",
                "EventTags": {"cluster_name": "prod", "eventID": "e1", "hostname": "node-1", "pod_id": "pod-uid", "pod_name": "web-1"},
            }),
            "ver={ver}"
        );
        let day = |d: &str| if ver <= 5 { format!("heapster-{d}") } else { format!("heapster-events-{d}") };
        assert_eq!(e1.index, day("2026.12.03"));
        // An event with only an eventTime is filed under that day, not Heapster's 0001.01.01.
        let e3 = docs.iter().find(|d| d.id == "e3-103").unwrap();
        assert_eq!(
            (e3.index.as_str(), &e3.source["LastOccurrenceTimestamp"]),
            (day("2026.12.02").as_str(), &json!("2026-12-02T23:59:59.25Z"))
        );
        // heapster eventer killed after the write but before its cursor moved: the same batch comes again, from a
        // new process, and replaces the documents.
        let again = ElasticsearchEventSink::new(&uri, &m).unwrap();
        again.export(&b).await.unwrap();
        let docs = fake.docs("heapster-events");
        assert_eq!(docs.len(), 3, "ver={ver}");
        assert!(docs.iter().all(|d| d.version == 2), "ver={ver}");
        assert!(fake.refused().is_empty(), "{:?}", fake.refused());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_batches_are_cut_into_requests_of_heapsters_bulk_size_sent_by_several_workers() {
    let fake = ElasticsearchFake::start(7, None);
    let (_r, m) = registry();
    let s = sink(&fake.url(), "ver=7&bulkWorkers=3", &m);
    let mut b = DataBatch { timestamp: TS, ..Default::default() };
    for i in 0..2500 {
        let mut set =
            MetricSet { labels: labels(&[("type", "pod"), ("pod_name", &format!("p{i}"))]), ..Default::default() };
        set.set("uptime", MetricValue::Int(i));
        b.sets.insert(format!("pod:{i}"), set);
    }
    s.export(Arc::new(b)).await.unwrap();
    assert_eq!(fake.docs("heapster-general").len(), 2500);
    assert_eq!(fake.seen().iter().filter(|s| s.path == "/_bulk").count(), 3, "1000 + 1000 + 500 items");
}
