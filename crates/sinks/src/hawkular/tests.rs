//! The Hawkular sink against testkit's strict fake of Hawkular Metrics' REST API (no Hawkular installs here):
//! values read back per tenant, type and id, definition tags, filters, credentials, refusals, a server that is
//! down.

use super::*;
use crate::util::test_support::{fs, metrics_text, runtime, set};
use heapster_model::MetricValue;
use heapster_testkit::HawkularFake;
use prometheus_client::registry::Registry;

const BASE: &str = "/hawkular/metrics";

fn batch(ts: i64) -> DataBatch {
    let mut node = set(&[("type", "node"), ("nodename", "node-1"), ("hostname", "node-1")]);
    node.set("cpu/usage", MetricValue::Int(987_654_321_000));
    node.set("cpu/node_utilization", MetricValue::Float(0.4375));
    node.add_labeled("filesystem/usage", fs("/dev/vda1"), MetricValue::Int(1 << 33));
    let mut c = set(&[
        ("type", "pod_container"),
        ("container_name", "web"),
        ("pod_id", "uid-1"),
        ("namespace_name", "team-a"),
        ("labels", "app:web"),
    ]);
    c.set("memory/usage", MetricValue::Int(123_456_789));
    c.set("network/rx", MetricValue::Int(77));
    DataBatch { timestamp: ts, sets: [("node:node-1".to_owned(), node), ("pod:c".to_owned(), c)].into() }
}

fn key(tenant: &str, kind: &str, id: &str) -> (String, String, String) {
    (tenant.into(), kind.into(), id.into())
}

#[test]
fn hawkular_stores_the_batchs_values_per_tenant_type_and_id_with_heapsters_tags() {
    let fake = HawkularFake::start(BASE, Some("Basic dTpwdw=="));
    let uri = format!("hawkular:{}?user=u&pass=pw&labelToTenant=namespace_name&batchSize=2", fake.url());
    let sink = HawkularSink::new(&uri.parse().unwrap(), &SinkMetrics::detached()).unwrap();
    let b = batch(1_764_756_000_250);
    let rt = runtime();
    rt.block_on(sink.export(Arc::new(b.clone()))).unwrap();
    let data = fake.data();
    let ts = b.timestamp;
    let want = [
        (key("heapster", "counter", "machine/node-1/cpu/usage"), 987_654_321_000.0),
        (key("heapster", "gauge", "machine/node-1/cpu/node_utilization"), 0.4375),
        (key("heapster", "gauge", "machine/node-1/filesystem/usage//dev/vda1"), (1u64 << 33) as f64),
        (key("team-a", "gauge", "web/uid-1/memory/usage"), 123_456_789.0),
        (key("team-a", "counter", "web/uid-1/network/rx"), 77.0),
    ];
    assert_eq!(data.len(), want.len(), "{data:?}");
    for (k, v) in want {
        assert_eq!(data.get(&k), Some(&vec![(ts, v)]), "{k:?}");
    }
    let tags = fake.tags();
    let mem = &tags[&key("team-a", "gauge", "web/uid-1/memory/usage")];
    for (k, v) in [
        ("descriptor_name", "memory/usage"),
        ("group_id", "web/memory/usage"),
        ("units", "bytes"),
        ("labels.app", "web"),
    ] {
        assert_eq!(mem.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(
        tags[&key("heapster", "gauge", "machine/node-1/filesystem/usage//dev/vda1")]["resource_id"],
        "/dev/vda1"
    );
    let requests = fake.requests();
    // heapster: one counter and two gauges (two bodies of batchSize=2 would be 1+2); team-a: one each.
    assert_eq!(requests.get("POST gauges/raw"), Some(&2));
    assert_eq!(requests.get("POST counters/raw"), Some(&2));
    assert_eq!(requests.get("PUT tags"), Some(&5));
    assert_eq!(requests.get("GET metrics"), Some(&1));
    // The next batch: same definitions, so no tag is sent again; the data is.
    rt.block_on(sink.export(Arc::new(batch(ts + 60_000)))).unwrap();
    assert_eq!(fake.requests().get("PUT tags"), Some(&5));
    assert_eq!(fake.data()[&key("team-a", "gauge", "web/uid-1/memory/usage")].len(), 2);
}

#[test]
fn a_restarted_sink_reads_the_definitions_and_filters_leave_metrics_out() {
    let fake = HawkularFake::start(BASE, None);
    let uri = format!("hawkular:{}?filter=name(^network/)&filter=label(type:^node$)", fake.url());
    let mut registry = Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let rt = runtime();
    rt.block_on(HawkularSink::new(&uri.parse().unwrap(), &metrics).unwrap().export(Arc::new(batch(1_000)))).unwrap();
    assert_eq!(fake.data().keys().map(|k| k.2.as_str()).collect::<Vec<_>>(), ["web/uid-1/memory/usage"]);
    assert!(metrics_text(&registry).contains("cause=\"filter=\"} 4"));
    // A new sink (heapster restarted) reads what the server has and sends no tag again.
    rt.block_on(HawkularSink::new(&uri.parse().unwrap(), &metrics).unwrap().export(Arc::new(batch(2_000)))).unwrap();
    assert_eq!(fake.requests().get("PUT tags"), Some(&1));
    assert_eq!(fake.requests().get("GET metrics"), Some(&2));
}

#[test]
fn a_server_that_is_down_or_failing_is_retried_and_the_retry_sends_only_what_was_not_taken() {
    let mut registry = Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let down = format!("hawkular:http://127.0.0.1:{}", heapster_testkit::free_port());
    let e = runtime().block_on(HawkularSink::new(&down.parse().unwrap(), &metrics).unwrap().export(Arc::new(batch(1))));
    assert!(matches!(&e, Err(SinkError::Retry(m)) if m.contains("connect")), "{e:?}");
    let t = metrics_text(&registry);
    assert!(t.contains("outcome=\"connect\"} 2"), "one per data request, none for tags: {t}");

    let fake = HawkularFake::start("/custom", None);
    let uri = format!("hawkular:{}/custom?concurrencyLimit=1&disablePreCache=true", fake.url());
    let sink = HawkularSink::new(&uri.parse().unwrap(), &metrics).unwrap();
    let b = Arc::new(batch(5_000));
    let rt = runtime();
    // The gauges' request is taken, the counters' answered 503.
    fake.fail_after(1, 503, 1);
    let e = rt.block_on(sink.export(b.clone())).unwrap_err();
    assert!(matches!(&e, SinkError::Retry(m) if m.contains("503")), "{e}");
    rt.block_on(sink.export(b)).unwrap();
    let data = fake.data();
    assert_eq!(data.len(), 5);
    assert!(data.values().all(|points| points.len() == 1), "{data:?}");
    assert_eq!(fake.requests().get("POST gauges/raw"), Some(&1));
    assert_eq!(fake.requests().get("POST counters/raw"), Some(&2));
    assert_eq!(fake.requests().get("GET metrics"), None);
}

#[test]
fn refusals_are_counted_by_cause_and_credentials_and_tokens_are_sent() {
    let mut registry = Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let fake = HawkularFake::start(BASE, Some("Bearer sa-token-1"));
    let dir = std::env::temp_dir().join(format!("heapster-hawkular-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "sa-token-0\n").unwrap();
    let uri = format!("hawkular:{}?useServiceAccount=true&tokenFile={}", fake.url(), token.display());
    let sink = HawkularSink::new(&uri.parse().unwrap(), &metrics).unwrap();
    let rt = runtime();
    let e = rt.block_on(sink.export(Arc::new(batch(1_000)))).unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("401")), "{e}");
    // The token was rotated: the next export reads the new one.
    std::fs::write(&token, "sa-token-1\n").unwrap();
    rt.block_on(sink.export(Arc::new(batch(2_000)))).unwrap();
    assert_eq!(fake.data().len(), 5);
    // A counter that is not a whole number (a custom metric typed as the catalog's counter is not possible, so the
    // server's refusal is forced): a 400 with Hawkular's errorMsg is counted by its cause and not retried.
    fake.fail_after(0, 400, 1);
    let e = rt.block_on(sink.export(Arc::new(batch(3_000)))).unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("injected failure")), "{e}");
    let t = metrics_text(&registry);
    assert!(t.contains("cause=\"unauthorized\"} 5"), "{t}");
    assert!(t.lines().any(|l| l.contains("points_rejected") && l.contains("cause=\"injected failure\"}")), "{t}");
    let _ = std::fs::remove_dir_all(&dir);
}
