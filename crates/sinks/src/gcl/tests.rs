//! The Cloud Logging event sink against the local fake of Logging v2 (`heapster_testkit::google`), which keeps an
//! entry once per project, `insertId` and timestamp, refuses entries over 256 KiB and requests over 10 MiB.

use super::*;
use crate::util::google::fake_tests::{nowhere, temp_dir};
use crate::util::google::{Env, rfc3339_millis};
use heapster_model::events::{Change, Event, EventVersion};
use heapster_testkit::google::{GoogleFake, MetadataConfig, Service};
use prometheus_client::registry::Registry;

fn event(i: usize, kind: &str, rv: u64, message: &str, at: i64) -> Event {
    let mut e = Event::default();
    e.metadata.name = format!("obj-{i}.17f3");
    e.metadata.namespace = "default".into();
    e.metadata.uid = format!("uid-{i}");
    e.metadata.resource_version = rv.to_string();
    e.involved_object.kind = kind.into();
    e.involved_object.namespace = if kind == "Node" { String::new() } else { "default".into() };
    e.involved_object.name = format!("obj-{i}");
    e.reason = "BackOff".into();
    e.type_ = if i.is_multiple_of(2) { "Warning" } else { "Normal" }.into();
    e.message = message.into();
    e.count = 1;
    e.last_timestamp = Some(rfc3339_millis(at));
    e
}

fn batch(events: Vec<(Change, Event)>) -> EventBatch {
    EventBatch {
        timestamp: crate::util::google::now_millis(),
        events: events.into_iter().map(|(change, e)| EventVersion { change, event: Arc::new(e) }).collect(),
    }
}

/// A sink on the metadata server of a GKE node, as the eventer runs there.
fn sink(fake: &GoogleFake, metrics: &SinkMetrics) -> GclSink {
    let env = Env { credentials_file: None, project_id: None, metadata_host: Some(fake.metadata_host()) };
    let uri = format!("gcl:?endpoint={}", fake.url());
    GclSink::new(&uri.parse().unwrap(), metrics, &env).unwrap()
}

#[tokio::test]
async fn events_become_entries_on_their_objects_resources_once_however_often_they_are_sent() {
    let fake = GoogleFake::start().await;
    let metrics = SinkMetrics::register(&mut Registry::default());
    let gcl = sink(&fake, &metrics);
    let now = crate::util::google::now_millis() - 5_000;
    let b = batch(vec![
        (Change::Added, event(0, "Pod", 10, "Back-off restarting failed container", now)),
        (Change::Added, event(1, "Node", 11, "Node is ready", now)),
        (Change::Added, event(2, "Deployment", 12, "Scaled up", now)),
    ]);
    gcl.export(&b).await.unwrap();
    // Sent again (a retry, a restart before the cursor moved): the service keeps each entry once.
    gcl.export(&b).await.unwrap();
    let stored = fake.log_entries();
    assert_eq!(stored.len(), 3);
    assert_eq!(fake.log_duplicates(), 3);
    let m = MetadataConfig::default();
    let types: Vec<&str> = stored.iter().map(|e| e.resource_type.as_str()).collect();
    assert_eq!(types, ["k8s_pod", "k8s_node", "k8s_cluster"]);
    let pod = &stored[0];
    assert_eq!(pod.log_id, "kubernetes.io/events");
    assert_eq!(pod.log_name, format!("projects/{}/logs/kubernetes.io%2Fevents", m.project_id));
    assert_eq!(pod.resource_labels["pod_name"], "obj-0");
    assert_eq!(pod.resource_labels["cluster_name"], m.cluster_name.clone().unwrap());
    assert_eq!((pod.severity.as_str(), stored[1].severity.as_str()), ("WARNING", "INFO"));
    assert_eq!(pod.insert_id, "uid-0.10");
    assert_eq!(pod.json_payload.as_ref().unwrap(), &serde_json::to_value(&*b.events[0].event).unwrap());
    assert_eq!(pod.timestamp.timestamp_millis(), now);
    // The next version of the pod's event (its count went up): a new entry, of the same operation.
    let mut again = event(0, "Pod", 20, "Back-off restarting failed container", now + 1000);
    again.count = 2;
    gcl.export(&batch(vec![(Change::Modified, again)])).await.unwrap();
    let stored = fake.log_entries();
    assert_eq!(stored.len(), 4);
    let ops: Vec<_> =
        stored.iter().filter(|e| e.insert_id.starts_with("uid-0.")).map(|e| e.operation.clone().unwrap()).collect();
    assert_eq!(ops[0]["id"], ops[1]["id"]);
    assert_eq!((ops[0]["first"].as_bool(), ops[1]["first"].as_bool()), (Some(true), Some(false)));
}

#[tokio::test]
async fn large_batches_are_split_under_10_mb_and_an_oversize_event_is_cut_not_dropped() {
    let fake = GoogleFake::start().await;
    let metrics = SinkMetrics::register(&mut Registry::default());
    let gcl = sink(&fake, &metrics);
    let now = crate::util::google::now_millis() - 5_000;
    // 60 events of 200 KB: 12 MB in all.
    let big = "x".repeat(200_000);
    let mut events: Vec<(Change, Event)> =
        (0..60).map(|i| (Change::Added, event(i, "Pod", 100 + i as u64, &big, now))).collect();
    // And one whose message alone is over the entry limit.
    events.push((Change::Added, event(99, "Pod", 999, &"y".repeat(400_000), now)));
    gcl.export(&batch(events)).await.unwrap();
    assert!(fake.requests("logging.entries.write") >= 2);
    let stored = fake.log_entries();
    assert_eq!(stored.len(), 61);
    let cut = stored.iter().find(|e| e.insert_id == "uid-99.999").unwrap();
    assert!(cut.labels[encoder::TRUNCATED_LABEL].starts_with("message cut from 400000 to "), "{:?}", cut.labels);
    let kept = cut.json_payload.as_ref().unwrap()["message"].as_str().unwrap().len();
    assert!(kept > 200_000, "{kept}");
}

#[tokio::test]
async fn a_403_is_one_line_with_the_fix_and_a_503_is_retried() {
    let fake = GoogleFake::start().await;
    let metrics = SinkMetrics::register(&mut Registry::default());
    let gcl = sink(&fake, &metrics);
    let now = crate::util::google::now_millis() - 5_000;
    let b = batch(vec![(Change::Added, event(0, "Pod", 1, "m", now))]);
    fake.fail_next(Service::Logging, 503, 1);
    assert!(matches!(gcl.export(&b).await, Err(SinkError::Retry(_))));
    gcl.export(&b).await.unwrap();
    assert_eq!(fake.log_entries().len(), 1);
    fake.deny_project(&MetadataConfig::default().project_id);
    let e = gcl.export(&b).await.unwrap_err();
    let SinkError::Reject(m) = &e else { panic!("{e:?}") };
    assert!(m.contains("Cloud Logging answered 403") && m.contains("roles/logging.logWriter"), "{m}");
    assert!(!m.contains('\n'));
}

#[test]
fn options_are_checked_at_start_up() {
    let metrics = SinkMetrics::register(&mut Registry::default());
    let env = Env { credentials_file: None, project_id: None, metadata_host: Some(nowhere()) };
    for (uri, says) in [
        ("gcl:http://x", "gcl takes no address"),
        ("gcl:?endpoint=ftp://x", "expected https://host"),
        ("gcl:?severity=x", "unknown gcl option"),
    ] {
        let e = GclSink::new(&uri.parse().unwrap(), &metrics, &env).err().unwrap().to_string();
        assert!(e.contains(says), "{uri}: {e}");
    }
    let _ = temp_dir("gcl");
}
