//! Batches and Kubernetes events as Honeycomb batch-API events (`[{"time":..,"data":{..}},..]`), with Heapster's
//! fields (`metrics/sinks/honeycomb`, `events/sinks/honeycomb`):
//!
//! - a metric set is one event: its metrics by name (`cpu/usage_rate`, `memory/usage`, ...) but for Heapster's
//!   [`BLACKLIST`] of cumulative counters, then its labels (a label wins over a metric of the same name, as in
//!   Heapster); labelled metrics (per filesystem) are not sent, as Heapster did not;
//! - a Kubernetes event is one event with `namespace, kind, name, subobject, source.component, source.host, count,
//!   type, reason, message`, plus `event_id` (uid.resourceVersion), by which queries can count an event version
//!   once when a batch was sent twice (see the module's README text on duplicates);
//! - `time`: the batch's time, or the event's last time, RFC 3339. Heapster's Go client sent `Timestamp`, a key the
//!   API does not know, so Honeycomb stamped every event with its arrival time.

use crate::util::google::rfc3339_millis;
use heapster_model::events::EventVersion;
use heapster_model::{DataBatch, MetricSet, MetricValue};
use serde::Serialize;
use std::collections::BTreeMap;

/// Heapster's cumulative metrics, left out: their rates are sent instead.
pub const BLACKLIST: &[&str] = &[
    "cpu/usage",
    "memory/major_page_faults",
    "memory/page_faults",
    "network/rx_errors",
    "network/rx",
    "network/tx_errors",
    "network/tx",
];

/// A field's value.
#[derive(Serialize)]
#[serde(untagged)]
enum Field<'a> {
    Value(MetricValue),
    Text(&'a str),
}

#[derive(Serialize)]
struct Event<'a, D: Serialize> {
    time: &'a str,
    data: D,
}

/// One metric set's event (without the time), and how many values it carries; values that are not finite numbers
/// (which JSON cannot carry; in Heapster they failed the whole batch's encoding) are left out and counted.
pub struct SetEvent {
    pub json: String,
    pub values: usize,
    pub unrepresentable: usize,
}

/// The event of one metric set at `time` (RFC 3339).
pub fn set_event(set: &MetricSet, time: &str) -> SetEvent {
    let mut data: BTreeMap<&str, Field> = BTreeMap::new();
    let mut unrepresentable = 0;
    for (name, value) in set.metrics.iter() {
        if BLACKLIST.contains(&&**name) {
            continue;
        }
        if !value.as_f64().is_finite() {
            unrepresentable += 1;
            continue;
        }
        data.insert(name, Field::Value(*value));
    }
    let values = data.len();
    for (k, v) in set.labels.iter() {
        data.insert(k, Field::Text(v));
    }
    let json = serde_json::to_string(&Event { time, data }).expect("strings and finite numbers serialise");
    SetEvent { json, values, unrepresentable }
}

/// The events of a batch keyed by their set's key, and how many values were left out as not finite.
pub fn metrics(batch: &DataBatch) -> (Vec<(String, SetEvent)>, usize) {
    let time = rfc3339_millis(batch.timestamp);
    let events: Vec<(String, SetEvent)> = batch.sets.iter().map(|(k, s)| (k.clone(), set_event(s, &time))).collect();
    let unrepresentable = events.iter().map(|(_, e)| e.unrepresentable).sum();
    (events, unrepresentable)
}

/// Heapster's fields of a Kubernetes event.
#[derive(Serialize)]
struct EventData<'a> {
    namespace: &'a str,
    kind: &'a str,
    name: &'a str,
    subobject: &'a str,
    #[serde(rename = "source.component")]
    source_component: &'a str,
    #[serde(rename = "source.host")]
    source_host: &'a str,
    count: i32,
    #[serde(rename = "type")]
    type_: &'a str,
    reason: &'a str,
    message: &'a str,
    event_id: &'a str,
}

/// The stable id of one event version: the same version gives the same id after any restart.
pub fn event_id(v: &EventVersion) -> String {
    let m = &v.event.metadata;
    let id = if m.uid.is_empty() { format!("{}/{}", m.namespace, m.name) } else { m.uid.clone() };
    format!("{id}.{}", m.resource_version)
}

/// One Kubernetes event version as a Honeycomb event, at its last time (else `fallback`, the batch's, in ms).
pub fn event(v: &EventVersion, id: &str, fallback: i64) -> String {
    let e = &*v.event;
    let o = &e.involved_object;
    let time = rfc3339_millis(e.last_time().unwrap_or(fallback));
    let data = EventData {
        namespace: &o.namespace,
        kind: &o.kind,
        name: &o.name,
        subobject: &o.field_path,
        source_component: &e.source.component,
        source_host: &e.source.host,
        count: e.count,
        type_: &e.type_,
        reason: &e.reason,
        message: &e.message,
        event_id: id,
    };
    serde_json::to_string(&Event { time: &time, data }).expect("strings and numbers serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::events::{Change, Event as KubeEvent};
    use serde_json::{Value, json};
    use std::sync::Arc;

    #[test]
    fn a_metric_set_is_one_event_of_its_gauges_and_labels() {
        let mut s = MetricSet::default();
        for (k, v) in [("type", "pod"), ("pod_name", "web-1"), ("namespace_name", "default")] {
            s.labels.insert(k, v.to_owned());
        }
        s.set("cpu/usage", MetricValue::Int(123_456_789));
        s.set("cpu/usage_rate", MetricValue::Int(250));
        s.set("memory/usage", MetricValue::Int(1 << 20));
        s.set("cpu/node_utilization", MetricValue::Float(0.25));
        s.set("memory/rss", MetricValue::Float(f64::NAN));
        s.add_labeled(
            "filesystem/usage",
            heapster_model::Labels::from([("resource_id", "/".to_owned())]),
            MetricValue::Int(1),
        );
        let e = set_event(&s, "2023-11-14T22:13:20.000Z");
        assert_eq!((e.values, e.unrepresentable), (3, 1));
        let v: Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(
            v,
            json!({"time": "2023-11-14T22:13:20.000Z", "data": {
                "cpu/usage_rate": 250, "memory/usage": 1_048_576, "cpu/node_utilization": 0.25,
                "type": "pod", "pod_name": "web-1", "namespace_name": "default"}})
        );
    }

    #[test]
    fn a_kubernetes_event_has_heapsters_fields_its_id_and_its_last_time() {
        let mut k = KubeEvent::default();
        k.metadata.uid = "u-1".into();
        k.metadata.resource_version = "42".into();
        k.involved_object.kind = "Pod".into();
        k.involved_object.namespace = "default".into();
        k.involved_object.name = "web-1".into();
        k.involved_object.field_path = "spec.containers{web}".into();
        k.source.component = "kubelet".into();
        k.source.host = "node-1".into();
        k.count = 3;
        k.type_ = "Warning".into();
        k.reason = "BackOff".into();
        k.message = "Back-off \"restarting\"".into();
        k.last_timestamp = Some("2026-12-03T10:00:01Z".into());
        let v = EventVersion { change: Change::Modified, event: Arc::new(k) };
        assert_eq!(event_id(&v), "u-1.42");
        let e: Value = serde_json::from_str(&event(&v, "u-1.42", 0)).unwrap();
        assert_eq!(
            e,
            json!({"time": "2026-12-03T10:00:01.000Z", "data": {
                "namespace": "default", "kind": "Pod", "name": "web-1", "subobject": "spec.containers{web}",
                "source.component": "kubelet", "source.host": "node-1", "count": 3, "type": "Warning",
                "reason": "BackOff", "message": "Back-off \"restarting\"", "event_id": "u-1.42"}})
        );
    }
}
