//! Kubernetes events as the eventer ships them: a `core/v1` Event, and what one push to the event sinks holds.
//!
//! The Event keeps the fields of `k8s.io/api/core/v1.Event` in Go's declaration order and marshals them as Go's
//! `encoding/json` does (zero times as `null`, `reportingComponent` and `reportingInstance` always present), so
//! the JSON a sink stores (InfluxDB's `log/events` value, Cloud Logging's `jsonPayload`) reads as Heapster's did.
//! Times stay the API server's RFC 3339 text: re-formatting them could only lose precision.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The object metadata an Event carries, in Go's `ObjectMeta` field order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generate_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub self_link: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Go marshals a zero `metav1.Time` as `null` even under `omitempty`.
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `core/v1.ObjectReference`: what an event is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_path: String,
}

/// `core/v1.EventSource`: the component (and host) that reported the event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventSource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub component: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}

/// `core/v1.EventSeries`, set by newer reporters instead of `count`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSeries {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: i32,
    #[serde(default)]
    pub last_observed_time: Option<String>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// `core/v1.Event`, in Go's field order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub involved_object: ObjectReference,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub source: EventSource,
    #[serde(default)]
    pub first_timestamp: Option<String>,
    #[serde(default)]
    pub last_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: i32,
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default)]
    pub event_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<EventSeries>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<ObjectReference>,
    #[serde(default)]
    pub reporting_component: String,
    #[serde(default)]
    pub reporting_instance: String,
}

impl Event {
    /// The resource version as the number the API server (etcd's revision) made it; `None` when it is not one.
    pub fn resource_version(&self) -> Option<u64> {
        self.metadata.resource_version.parse().ok()
    }

    /// When the event last happened, in milliseconds since the epoch: `lastTimestamp`, else `eventTime` (newer
    /// reporters set only that), else `firstTimestamp`, else the object's creation.
    pub fn last_time(&self) -> Option<crate::Timestamp> {
        [&self.last_timestamp, &self.event_time, &self.first_timestamp, &self.metadata.creation_timestamp]
            .into_iter()
            .flatten()
            .find_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
    }
}

/// Whether an event version is the first the eventer saw of the event or a later one (its `count` went up, its
/// message changed). Sinks that can say so deliver an update as an update of the same event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Change {
    Added,
    Modified,
}

/// One version of one event, as it goes to every event sink.
#[derive(Debug, Clone, PartialEq)]
pub struct EventVersion {
    pub change: Change,
    pub event: Arc<Event>,
}

/// What one push to the event sinks holds (Heapster's `core.EventBatch`): the versions seen since the last push,
/// in the order the API server made them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventBatch {
    /// When the batch was cut, in milliseconds since the epoch.
    pub timestamp: crate::Timestamp,
    pub events: Vec<EventVersion>,
}

impl EventBatch {
    /// The resource version of the newest event in the batch, which a sink's cursor moves to once it holds it.
    pub fn last_resource_version(&self) -> Option<u64> {
        self.events.iter().filter_map(|e| e.event.resource_version()).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = r#"{"metadata":{"name":"web-1.17f3","namespace":"default","uid":"5c1c","resourceVersion":"812",
        "creationTimestamp":"2026-12-03T10:00:00Z","managedFields":[{"manager":"kubelet"}]},
        "involvedObject":{"kind":"Pod","namespace":"default","name":"web-1","uid":"a1","apiVersion":"v1",
        "resourceVersion":"700","fieldPath":"spec.containers{web}"},"reason":"Pulled","message":"Image pulled",
        "source":{"component":"kubelet","host":"node-1"},"firstTimestamp":"2026-12-03T10:00:00Z",
        "lastTimestamp":"2026-12-03T10:05:00Z","count":3,"type":"Normal","eventTime":null,
        "reportingComponent":"kubelet","reportingInstance":"node-1"}"#;

    #[test]
    fn marshals_in_gos_field_order_with_gos_nulls() {
        let e: Event = serde_json::from_str(REAL).unwrap();
        let out = serde_json::to_string(&e).unwrap();
        let keys = ["metadata", "involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp"];
        let pos: Vec<usize> = keys.iter().map(|k| out.find(&format!("\"{k}\"")).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{out}");
        assert!(out.contains(r#""count":3,"type":"Normal","eventTime":null,"reportingComponent":"kubelet""#), "{out}");
        let empty = serde_json::to_string(&Event::default()).unwrap();
        assert_eq!(
            empty,
            r#"{"metadata":{"creationTimestamp":null},"involvedObject":{},"source":{},"firstTimestamp":null,"lastTimestamp":null,"eventTime":null,"reportingComponent":"","reportingInstance":""}"#
        );
    }

    #[test]
    fn times_and_versions() {
        let mut e: Event = serde_json::from_str(REAL).unwrap();
        assert_eq!(e.resource_version(), Some(812));
        assert_eq!(e.last_time(), Some(1_796_292_300_000));
        e.last_timestamp = None;
        e.event_time = Some("2026-12-03T10:06:00.123456Z".into());
        assert_eq!(e.last_time(), Some(1_796_292_360_123));
        let batch = EventBatch {
            timestamp: 0,
            events: vec![
                EventVersion { change: Change::Modified, event: Arc::new(e.clone()) },
                EventVersion { change: Change::Added, event: Arc::new(Event::default()) },
            ],
        };
        assert_eq!(batch.last_resource_version(), Some(812));
    }
}
