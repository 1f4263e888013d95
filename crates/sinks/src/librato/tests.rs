//! The Librato sink against testkit's strict fake of `/v1/measurements` (no Librato server exists outside the
//! service): values, names and tags read back from what the fake stored, refusals, a server that is down.

use super::*;
use crate::util::test_support::{fs, metrics_text, runtime, set};
use heapster_model::MetricValue;
use heapster_testkit::LibratoFake;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

fn batch(ts: i64) -> DataBatch {
    let mut node = set(&[("type", "node"), ("hostname", "Node-1"), ("nodename", "node-1"), ("host_id", "")]);
    node.set("cpu/usage", MetricValue::Int(987_654_321_000));
    node.set("cpu/usage_rate", MetricValue::Int(0));
    node.set("cpu/node_utilization", MetricValue::Float(0.4375));
    node.add_labeled("filesystem/usage", fs("/dev/vda1"), MetricValue::Int(1 << 33));
    let mut c = set(&[("type", "pod_container"), ("pod_name", "web-7d9f8"), ("labels", "app:web,tier=db")]);
    c.set("memory/usage", MetricValue::Int(123_456_789));
    DataBatch { timestamp: ts, sets: [("node:node-1".to_owned(), node), ("pod:c".to_owned(), c)].into() }
}

fn uri(fake: &LibratoFake, extra: &str) -> SpecUri {
    format!(
        "librato:?username=me@example.com&token=tok&api={}&prefix=k8s&tags=cluster&tag_cluster=Staging{extra}",
        fake.url()
    )
    .parse()
    .unwrap()
}

#[test]
fn librato_stores_the_batchs_values_under_heapsters_names_and_tags() {
    let fake = LibratoFake::start("me@example.com", "tok");
    let b = batch(1_764_756_000_500);
    let sink = LibratoSink::new(&uri(&fake, ""), &SinkMetrics::detached()).unwrap();
    runtime().block_on(sink.export(Arc::new(b.clone()))).unwrap();
    let stored = fake.measurements();
    assert_eq!(stored.len(), b.point_count());
    let find = |name: &str, tag: (&str, &str)| {
        stored.iter().find(|m| m.name == name && m.tags.get(tag.0).map(String::as_str) == Some(tag.1)).unwrap()
    };
    let node = &b.sets["node:node-1"];
    for metric in ["cpu/usage", "cpu/usage_rate", "cpu/node_utilization"] {
        let m = find(&format!("k8s.{}", metric.replace('/', ".")), ("type", "node"));
        assert_eq!(m.value, node.get(metric).unwrap().as_f64(), "{metric}");
        assert_eq!(m.time, Some(1_764_756_000));
        // Librato keeps tags in lower case; the empty host_id is not sent (Librato refuses empty values).
        let want: BTreeMap<String, String> =
            [("cluster", "staging"), ("type", "node"), ("hostname", "node-1"), ("nodename", "node-1")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        assert_eq!(m.tags, want);
    }
    let fsu = find("k8s.filesystem.usage", ("resource_id", "_dev_vda1"));
    assert_eq!(fsu.value, (1u64 << 33) as f64);
    let mem = find("k8s.memory.usage", ("type", "pod_container"));
    assert_eq!((mem.value, mem.tags["labels"].as_str()), (123_456_789.0, "app:web_tier_db"));
}

#[test]
fn requests_hold_batch_points_and_a_retry_sends_only_what_was_not_taken() {
    let fake = LibratoFake::start("me@example.com", "tok");
    let sink = LibratoSink::new(&uri(&fake, "&batch_points=2"), &SinkMetrics::detached()).unwrap();
    let b = Arc::new(batch(1_000_000));
    let rt = runtime();
    rt.block_on(sink.export(b.clone())).unwrap();
    assert_eq!((fake.requests(), fake.measurements().len()), (3, 5));
}

#[test]
fn a_server_that_is_down_or_failing_is_retried() {
    let mut registry = Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let down: SpecUri =
        format!("librato:?username=u&token=t&api=http://127.0.0.1:{}", heapster_testkit::free_port()).parse().unwrap();
    let e = runtime().block_on(LibratoSink::new(&down, &metrics).unwrap().export(Arc::new(batch(1_000))));
    assert!(matches!(&e, Err(SinkError::Retry(m)) if m.contains("connect")), "{e:?}");
    assert!(metrics_text(&registry).contains("outcome=\"connect\"} 1"));

    let fake = LibratoFake::start("me@example.com", "tok");
    let sink = LibratoSink::new(&uri(&fake, "&batch_points=2"), &metrics).unwrap();
    let b = Arc::new(batch(3_000_000));
    let rt = runtime();
    // The first request is taken, the second answered 429: a retry, which sends the second and third only.
    fake.fail_after(1, 429, 1);
    let e = rt.block_on(sink.export(b.clone())).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("429")), "{e}");
    assert_eq!((fake.requests(), fake.measurements().len()), (2, 2));
    rt.block_on(sink.export(b.clone())).unwrap();
    assert_eq!(fake.requests(), 4);
    let at = |t: i64| fake.measurements().iter().filter(|m| m.time == Some(t)).count();
    assert_eq!(at(3_000), 5, "each measurement of the retried batch once");
}

#[test]
fn refusals_are_counted_by_cause_and_not_retried() {
    let mut registry = Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let fake = LibratoFake::start("me@example.com", "tok");
    let wrong: SpecUri = format!("librato:?username=me@example.com&token=nope&api={}", fake.url()).parse().unwrap();
    let e = runtime().block_on(LibratoSink::new(&wrong, &metrics).unwrap().export(Arc::new(batch(1_000))));
    assert!(matches!(&e, Err(SinkError::Reject(m)) if m.contains("Authorization Required")), "{e:?}");
    // A set without any label and no tags= : Librato refuses a measurement without tags, the whole request.
    let sink = LibratoSink::new(
        &format!("librato:?username=me@example.com&token=tok&api={}&batch_points=1", fake.url()).parse().unwrap(),
        &metrics,
    )
    .unwrap();
    let mut b = batch(1_000);
    let mut bare = heapster_model::MetricSet::default();
    bare.set("uptime", MetricValue::Int(5));
    bare.set("memory/rss", MetricValue::Float(f64::NAN));
    b.sets.insert("bare".into(), bare);
    let e = runtime().block_on(sink.export(Arc::new(b))).unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("refused 1 points (tags is not present)")), "{e}");
    assert_eq!(fake.measurements().len(), 5, "the other requests are still sent");
    let t = metrics_text(&registry);
    for (family, cause, n) in
        [("rejected", "unauthorized", 5), ("rejected", "tags is not present", 1), ("dropped", "not a finite number", 1)]
    {
        let want = format!("heapster_sink_librato_points_{family}_total{{sink=");
        assert!(
            t.lines().any(|l| l.starts_with(&want) && l.ends_with(&format!("cause=\"{cause}\"}} {n}"))),
            "{cause}\n{t}"
        );
    }
}
