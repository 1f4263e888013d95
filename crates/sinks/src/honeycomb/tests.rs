//! The Honeycomb sinks against testkit's strict fake of the batch events API (no Honeycomb server runs outside
//! its SaaS): values and fields read back from what the fake stored, per-event refusals and retries, a server
//! that is down.

use super::*;
use crate::util::test_support::{metrics_text, runtime, set};
use heapster_model::MetricValue;
use heapster_model::events::{Change, Event, EventVersion};
use heapster_testkit::HoneycombFake;
use prometheus_client::registry::Registry;

const KEY: &str = "abc123writekey";

fn batch(ts: i64, pods: usize) -> DataBatch {
    let mut b = DataBatch { timestamp: ts, ..Default::default() };
    let mut node = set(&[("type", "node"), ("hostname", "node-1"), ("nodename", "node-1")]);
    node.set("cpu/usage", MetricValue::Int(987_654_321_000));
    node.set("cpu/usage_rate", MetricValue::Int(1500));
    node.set("cpu/node_utilization", MetricValue::Float(0.4375));
    node.set("memory/working_set", MetricValue::Int(3 << 30));
    b.sets.insert("node:node-1".into(), node);
    for i in 0..pods {
        let pod_name = format!("web-{i}");
        let mut p = set(&[("type", "pod"), ("pod_name", &pod_name), ("namespace_name", "default")]);
        p.set("memory/usage", MetricValue::Int(1000 + i as i64));
        p.set("network/rx", MetricValue::Int(5));
        b.sets.insert(format!("pod:default/{pod_name}"), p);
    }
    b
}

fn uri(fake: &HoneycombFake, extra: &str) -> SpecUri {
    format!("honeycomb:?dataset=k8s metrics&writekey={KEY}&apihost={}{extra}", fake.url()).parse().unwrap()
}

fn sink(fake: &HoneycombFake, extra: &str, metrics: &SinkMetrics) -> HoneycombSink {
    HoneycombSink::new(&uri(fake, extra), metrics, None).unwrap()
}

#[test]
fn every_metric_set_is_one_event_with_the_batchs_values_and_time() {
    let fake = HoneycombFake::start(KEY);
    let b = batch(1_764_756_000_250, 3);
    runtime().block_on(sink(&fake, "", &SinkMetrics::detached()).export(Arc::new(b.clone()))).unwrap();
    let events = fake.events();
    assert_eq!(events.len(), b.sets.len());
    let (requests, gzipped) = fake.requests();
    assert_eq!((requests, gzipped), (1, 1));
    for (e, (key, s)) in events.iter().zip(&b.sets) {
        assert_eq!(e.dataset, "k8s metrics");
        assert_eq!(e.time.unwrap().timestamp_millis(), b.timestamp, "{key}");
        for (name, value) in s.metrics.iter() {
            let name: &str = name;
            let got = e.data.get(name);
            if encoder::BLACKLIST.contains(&name) {
                assert_eq!(got, None, "{key} {name}");
            } else {
                assert_eq!(got.and_then(|v| v.as_f64()), Some(value.as_f64()), "{key} {name}");
            }
        }
        for (k, v) in s.labels.iter() {
            assert_eq!(e.data[&**k].as_str(), Some(v.as_str()), "{key} {k}");
        }
    }
    assert_eq!(events[0].data["cpu/usage_rate"], 1500);
    assert_eq!(events[0].data["cpu/node_utilization"], 0.4375);
}

#[test]
fn batches_are_cut_at_batch_events_and_a_wrong_key_is_refused_and_counted() {
    let fake = HoneycombFake::start(KEY);
    let sink = sink(&fake, "&batch_events=2&gzip=false", &SinkMetrics::detached());
    runtime().block_on(sink.export(Arc::new(batch(1_000, 4)))).unwrap();
    assert_eq!((fake.requests(), fake.events().len()), ((3, 0), 5));

    let mut registry = Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let wrong: SpecUri = format!("honeycomb:?writekey=nope&apihost={}", fake.url()).parse().unwrap();
    let e = runtime().block_on(HoneycombSink::new(&wrong, &metrics, None).unwrap().export(Arc::new(batch(1_000, 1))));
    assert!(matches!(&e, Err(SinkError::Reject(m)) if m.contains("unknown API key")), "{e:?}");
    let t = metrics_text(&registry);
    assert!(t.contains("cause=\"unauthorized\"} 4"), "{t}");
}

#[test]
fn refused_events_are_counted_by_cause_and_the_rest_written() {
    let fake = HoneycombFake::start(KEY);
    let mut registry = Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let mut b = batch(1_000, 1);
    let mut wide = set(&[("type", "pod_container")]);
    for i in 0..2100 {
        wide.labels.insert(format!("label_{i}"), "x");
    }
    wide.set("memory/usage", MetricValue::Int(1));
    wide.set("memory/rss", MetricValue::Float(f64::INFINITY));
    b.sets.insert("wide".into(), wide);
    let e = runtime().block_on(sink(&fake, "", &metrics).export(Arc::new(b))).unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("refused 1 points (event has too many columns)")), "{e}");
    assert_eq!(fake.events().len(), 2);
    assert_eq!(fake.refused(), ["Event has too many columns."]);
    let t = metrics_text(&registry);
    for want in [
        "heapster_sink_honeycomb_points_rejected_total{sink=\"honeycomb:URL\",cause=\"event has too many columns\"} 1",
        "heapster_sink_honeycomb_points_dropped_total{sink=\"honeycomb:URL\",cause=\"not a finite number\"} 1",
        // node: 3 values (cpu/usage is left out), pod: 1 (network/rx is left out).
        "heapster_sink_honeycomb_points_written_total{sink=\"honeycomb:URL\"} 4",
    ] {
        let want = want.replace("URL", &format!("{}/1/batch/k8s%20metrics", fake.url()));
        assert!(t.contains(&want), "{want}\n{t}");
    }
}

#[test]
fn a_server_that_is_down_or_failing_is_retried_and_a_retry_sends_only_what_was_not_taken() {
    let mut registry = Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let down: SpecUri =
        format!("honeycomb:?writekey=k&apihost=http://127.0.0.1:{}", heapster_testkit::free_port()).parse().unwrap();
    let e = runtime().block_on(HoneycombSink::new(&down, &metrics, None).unwrap().export(Arc::new(batch(1, 1))));
    assert!(matches!(&e, Err(SinkError::Retry(m)) if m.contains("connect")), "{e:?}");
    assert!(metrics_text(&registry).contains("outcome=\"connect\"} 1"));

    let fake = HoneycombFake::start(KEY);
    let sink = sink(&fake, "&batch_events=2", &metrics);
    let b = Arc::new(batch(5_000, 4));
    let rt = runtime();
    // The node's event (3 values) answered 503 on its own: a retry, for that event only.
    fake.fail_events(503, 1);
    let e = rt.block_on(sink.export(b.clone())).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("3 points to send again")), "{e}");
    assert_eq!(fake.events().len(), 4);
    fake.fail_requests(500, 1);
    assert!(matches!(rt.block_on(sink.export(b.clone())), Err(SinkError::Retry(m)) if m.contains("500")));
    rt.block_on(sink.export(b.clone())).unwrap();
    let events = fake.events();
    assert_eq!(events.len(), 5, "each set once");
    let mut names: Vec<&str> = events.iter().map(|e| e.data["type"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["node", "pod", "pod", "pod", "pod"]);
    // The same batch again later (a restart re-reading the spool): sent again, as the API has no idempotency key.
    let other = Arc::new(batch(6_000, 0));
    rt.block_on(sink.export(other)).unwrap();
    rt.block_on(sink.export(b)).unwrap();
    assert_eq!(fake.events().len(), 11);
}

fn event(i: usize, rv: u64) -> EventVersion {
    let mut e = Event::default();
    e.metadata.uid = format!("uid-{i}");
    e.metadata.resource_version = rv.to_string();
    e.involved_object.kind = "Pod".into();
    e.involved_object.namespace = "default".into();
    e.involved_object.name = format!("web-{i}");
    e.source.component = "kubelet".into();
    e.reason = "BackOff".into();
    e.type_ = "Warning".into();
    e.message = format!("Back-off restarting failed container {i}");
    e.count = i as i32 + 1;
    e.last_timestamp = Some(format!("2026-12-03T10:00:0{i}Z"));
    EventVersion { change: Change::Added, event: Arc::new(e) }
}

#[test]
fn events_are_delivered_once_through_a_retry_and_refusals_do_not_hold_the_eventer() {
    let fake = HoneycombFake::start(KEY);
    let mut registry = Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let sink = HoneycombEventSink::new(&uri(&fake, ""), &metrics, None).unwrap();
    let b = EventBatch { timestamp: 1_000, events: (0..3).map(|i| event(i, 10 + i as u64)).collect() };
    let rt = runtime();
    fake.fail_events(503, 1);
    assert!(matches!(rt.block_on(sink.export(&b)), Err(SinkError::Retry(_))));
    rt.block_on(sink.export(&b)).unwrap();
    let stored = fake.events();
    assert_eq!(stored.len(), 3);
    let mut ids: Vec<&str> = stored.iter().map(|e| e.data["event_id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["uid-0.10", "uid-1.11", "uid-2.12"]);
    let e0 = stored.iter().find(|e| e.data["event_id"] == "uid-0.10").unwrap();
    assert_eq!(e0.time.unwrap().to_rfc3339(), "2026-12-03T10:00:00+00:00");
    for (k, v) in [("kind", "Pod"), ("name", "web-0"), ("reason", "BackOff"), ("source.component", "kubelet")] {
        assert_eq!(e0.data[k], v, "{k}");
    }
    assert_eq!(e0.data["count"], 1);
    // An event over 1 MB is left out and counted; the batch is still Ok, so the eventer's cursor moves on.
    let mut big = (*event(7, 99).event).clone();
    big.message = "x".repeat(1_100_000);
    let b = EventBatch { timestamp: 1_000, events: vec![EventVersion { change: Change::Added, event: Arc::new(big) }] };
    rt.block_on(sink.export(&b)).unwrap();
    assert!(metrics_text(&registry).contains("cause=\"event over 1 MB\"} 1"));
    assert_eq!(fake.events().len(), 3);
}
