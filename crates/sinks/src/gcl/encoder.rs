//! Kubernetes events as Cloud Logging v2 `LogEntry` JSON, and `entries.write` bodies cut by size.
//!
//! An entry is one event VERSION: its `insertId` is the event's uid and resource version, so a resend after a
//! retry or a restart is the same entry, which the service keeps once; its `operation` is the event's uid, so the
//! versions of one event (its `count` going up) read as one operation in the Logs Explorer.

use crate::util::google::{Identity, rfc3339_millis};
use heapster_model::events::{Change, EventVersion};
use serde::Serialize;
use std::collections::BTreeMap;

/// The service's limit of one entry; a little is kept back for the service's own accounting of the entry.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024 - 1024;
/// The service's limit of one `entries.write` request.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// Entries per request at most: a smaller request is never refused, and one refused request loses less.
pub const MAX_ENTRIES_PER_REQUEST: usize = 1000;
/// The label that says an entry's message was cut to fit.
pub const TRUNCATED_LABEL: &str = "heapster.k8s.io/truncated";
/// Names the eventer as the producer of the entries' operations.
pub const PRODUCER: &str = "k8s.io/heapster-eventer";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryDoc<'a> {
    log_name: &'a str,
    resource: ResourceDoc<'a>,
    timestamp: String,
    severity: &'static str,
    insert_id: String,
    json_payload: &'a heapster_model::events::Event,
    operation: OperationDoc<'a>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct ResourceDoc<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    labels: BTreeMap<&'static str, &'a str>,
}

#[derive(Serialize)]
struct OperationDoc<'a> {
    id: &'a str,
    producer: &'static str,
    first: bool,
}

/// `projects/P/logs/kubernetes.io%2Fevents`: the log Heapster wrote, its name URL-encoded as the API wants.
pub fn log_name(project: &str) -> String {
    format!("projects/{project}/logs/kubernetes.io%2Fevents")
}

/// Cloud Logging's severity of an event type. Heapster wrote NOTICE for all.
pub fn severity(event_type: &str) -> &'static str {
    match event_type {
        "Warning" => "WARNING",
        "Normal" => "INFO",
        _ => "DEFAULT",
    }
}

/// The stable key of one event version: the same version gives the same key after any restart.
pub fn insert_id(v: &EventVersion) -> String {
    let m = &v.event.metadata;
    let id = if m.uid.is_empty() { format!("{}/{}", m.namespace, m.name) } else { m.uid.clone() };
    format!("{id}.{}", m.resource_version)
}

/// One event version as an entry; `None` when even with its message cut it is over [`MAX_ENTRY_BYTES`].
pub fn entry(v: &EventVersion, identity: &Identity, log_name: &str, fallback_time: i64) -> Option<Vec<u8>> {
    let e = &*v.event;
    let o = &e.involved_object;
    let mut labels = BTreeMap::from([
        ("project_id", identity.project.as_str()),
        ("location", identity.location.as_str()),
        ("cluster_name", identity.cluster_name.as_str()),
    ]);
    let kind = match o.kind.as_str() {
        "Pod" if !o.namespace.is_empty() && !o.name.is_empty() => {
            labels.insert("namespace_name", &o.namespace);
            labels.insert("pod_name", &o.name);
            "k8s_pod"
        }
        "Node" if !o.name.is_empty() => {
            labels.insert("node_name", &o.name);
            "k8s_node"
        }
        _ => "k8s_cluster",
    };
    let uid = if e.metadata.uid.is_empty() { e.metadata.name.as_str() } else { e.metadata.uid.as_str() };
    let doc = |payload: &heapster_model::events::Event, extra: BTreeMap<&'static str, String>| {
        serde_json::to_vec(&EntryDoc {
            log_name,
            resource: ResourceDoc { kind, labels: labels.clone() },
            timestamp: rfc3339_millis(e.last_time().unwrap_or(fallback_time)),
            severity: severity(&e.type_),
            insert_id: insert_id(v),
            json_payload: payload,
            operation: OperationDoc { id: uid, producer: PRODUCER, first: v.change == Change::Added },
            labels: extra,
        })
        .expect("an entry always serializes")
    };
    let whole = doc(e, BTreeMap::new());
    if whole.len() <= MAX_ENTRY_BYTES {
        return Some(whole);
    }
    // Over the limit: cut the message (what grows without bound in practice) and say so on the entry.
    let over = whole.len() - MAX_ENTRY_BYTES;
    let keep = e.message.len().checked_sub(over + 200)?;
    let mut cut = keep;
    while !e.message.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut shorter = e.clone();
    shorter.message.truncate(cut);
    let note = format!("message cut from {} to {cut} bytes to fit Cloud Logging's 256 KB entry", e.message.len());
    let entry = doc(&shorter, BTreeMap::from([(TRUNCATED_LABEL, note)]));
    (entry.len() <= MAX_ENTRY_BYTES).then_some(entry)
}

/// `entries.write` bodies of at most [`MAX_REQUEST_BYTES`] and [`MAX_ENTRIES_PER_REQUEST`], with the number of
/// entries in each. `partialSuccess` lets the service write the good entries of a request with a bad one.
pub fn requests(entries: &[Vec<u8>]) -> Vec<(Vec<u8>, usize)> {
    const HEAD: &[u8] = b"{\"partialSuccess\":true,\"entries\":[";
    const TAIL: &[u8] = b"]}";
    let mut out = Vec::new();
    let mut body = Vec::new();
    let mut n = 0;
    for e in entries {
        let grown = body.len() + e.len() + 1 + TAIL.len();
        if n > 0 && (grown > MAX_REQUEST_BYTES || n == MAX_ENTRIES_PER_REQUEST) {
            body.extend_from_slice(TAIL);
            out.push((std::mem::take(&mut body), n));
            n = 0;
        }
        if n == 0 {
            body.extend_from_slice(HEAD);
        } else {
            body.push(b',');
        }
        body.extend_from_slice(e);
        n += 1;
    }
    if n > 0 {
        body.extend_from_slice(TAIL);
        out.push((body, n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::events::Event;
    use std::sync::Arc;

    fn identity() -> Identity {
        Identity { project: "my-project".into(), location: "europe-west1".into(), cluster_name: "prod".into() }
    }

    fn event(kind: &str, rv: &str, message: &str) -> Event {
        let mut e = Event::default();
        e.metadata.name = "web-1.17f3".into();
        e.metadata.namespace = "default".into();
        e.metadata.uid = "5c1c".into();
        e.metadata.resource_version = rv.into();
        e.involved_object.kind = kind.into();
        e.involved_object.namespace = if kind == "Node" { String::new() } else { "default".into() };
        e.involved_object.name = "web-1".into();
        e.type_ = "Warning".into();
        e.message = message.into();
        e.last_timestamp = Some("2026-12-03T10:05:00Z".into());
        e
    }

    fn version(change: Change, e: Event) -> EventVersion {
        EventVersion { change, event: Arc::new(e) }
    }

    fn doc(v: &EventVersion) -> serde_json::Value {
        let name = log_name("my-project");
        serde_json::from_slice(&entry(v, &identity(), &name, 0).unwrap()).unwrap()
    }

    #[test]
    fn an_event_as_an_entry() {
        let v = version(Change::Added, event("Pod", "812", "Back-off restarting"));
        let d = doc(&v);
        assert_eq!(d["logName"], "projects/my-project/logs/kubernetes.io%2Fevents");
        assert_eq!(
            d["resource"],
            serde_json::json!({"type": "k8s_pod", "labels": {"project_id": "my-project", "location": "europe-west1",
                "cluster_name": "prod", "namespace_name": "default", "pod_name": "web-1"}})
        );
        assert_eq!(
            (d["severity"].as_str(), d["timestamp"].as_str()),
            (Some("WARNING"), Some("2026-12-03T10:05:00.000Z"))
        );
        assert_eq!(d["insertId"], "5c1c.812");
        assert_eq!(d["operation"], serde_json::json!({"id": "5c1c", "producer": PRODUCER, "first": true}));
        assert_eq!(d["jsonPayload"], serde_json::to_value(&*v.event).unwrap());
        assert!(d.get("labels").is_none());
        // The next version of the same event: a new entry of the same operation.
        let d = doc(&version(Change::Modified, event("Pod", "900", "Back-off restarting")));
        assert_eq!((d["insertId"].as_str(), d["operation"]["first"].as_bool()), (Some("5c1c.900"), Some(false)));
        let d = doc(&version(Change::Added, event("Node", "1", "x")));
        assert_eq!(d["resource"]["type"], "k8s_node");
        assert_eq!(d["resource"]["labels"]["node_name"], "web-1");
        let d = doc(&version(Change::Added, event("Deployment", "1", "x")));
        assert_eq!(d["resource"]["type"], "k8s_cluster");
        let mut normal = event("Pod", "1", "x");
        normal.type_ = "Normal".into();
        assert_eq!(doc(&version(Change::Added, normal))["severity"], "INFO");
    }

    #[test]
    fn an_oversize_message_is_cut_and_labelled() {
        let big = "é".repeat(200_000);
        let v = version(Change::Added, event("Pod", "1", &big));
        let bytes = entry(&v, &identity(), &log_name("my-project"), 0).unwrap();
        assert!(bytes.len() <= MAX_ENTRY_BYTES, "{}", bytes.len());
        let d: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let kept = d["jsonPayload"]["message"].as_str().unwrap().len();
        assert!(kept > 200_000 && kept < 400_000, "{kept}");
        assert_eq!(
            d["labels"][TRUNCATED_LABEL],
            format!("message cut from 400000 to {kept} bytes to fit Cloud Logging's 256 KB entry")
        );
        // Large for another reason than its message: it cannot be cut to fit.
        let mut e = event("Pod", "1", "short");
        e.metadata.annotations.insert("a".into(), "x".repeat(300_000));
        assert!(entry(&version(Change::Added, e), &identity(), "l", 0).is_none());
    }

    #[test]
    fn requests_are_cut_under_10_mb_and_1000_entries() {
        let entries: Vec<Vec<u8>> =
            (0..50).map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(250_000)).into_bytes()).collect();
        let r = requests(&entries);
        assert!(r.len() >= 2);
        assert_eq!(r.iter().map(|(_, n)| n).sum::<usize>(), 50);
        for (body, n) in &r {
            assert!(body.len() <= MAX_REQUEST_BYTES);
            let d: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(d["entries"].as_array().unwrap().len(), *n);
            assert_eq!(d["partialSuccess"], true);
        }
        let small: Vec<Vec<u8>> = (0..2500).map(|i| format!("{{\"i\":{i}}}").into_bytes()).collect();
        assert_eq!(requests(&small).iter().map(|(_, n)| *n).collect::<Vec<_>>(), [1000, 1000, 500]);
        assert!(requests(&[]).is_empty());
    }
}
