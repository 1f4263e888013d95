//! Batches and Kubernetes events as the JSON messages Heapster's kafka sinks produced, byte for byte where Go's
//! `encoding/json` fixes the bytes: a metric is
//! `{"MetricsName":..,"MetricsValue":{"value":..},"MetricsTimestamp":..,"MetricsTags":{..}}`, an event
//! `{"EventValue":"<the Event as json.MarshalIndent(event, \"\", \" \")>","EventTimestamp":..,"EventTags":{..}}`.
//! Field order is the Go structs', map keys sorted, times RFC 3339 with Go's trimmed fraction, and `<`, `>`, `&`,
//! U+2028, U+2029 escaped as Go escapes them.

use crate::influxdb::events::go_marshal_indent;
use chrono::{DateTime, TimeZone as _, Utc};
use heapster_model::events::{EventBatch, EventVersion};
use heapster_model::{DataBatch, MetricValue, labels};
use rskafka::record::Record;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One message, and which partition it should stay on when order matters.
#[derive(Debug, Clone)]
pub struct Message {
    pub record: Record,
    /// Versions of one event go to one partition, so a consumer reads them in order; `None`: any partition.
    pub affinity: Option<u32>,
}

/// One batch's messages, and the values that could not be one.
#[derive(Debug, Default)]
pub struct Encoded {
    pub messages: Vec<Message>,
    /// NaN or infinite values: JSON has no number for them (Go's json.Marshal failed on them, losing the message).
    pub unrepresentable: usize,
}

pub fn metrics(batch: &DataBatch) -> Encoded {
    let mut out = Encoded { messages: Vec::with_capacity(batch.point_count()), unrepresentable: 0 };
    let time = go_time(ms_time(batch.timestamp));
    let timestamp = ms_time(batch.timestamp);
    let mut tags = String::new();
    for set in batch.sets.values() {
        let set_labels = || set.labels.iter().map(|(k, v)| (k.as_ref(), v.as_str()));
        // Every value of a set carries the same tags: rendered once (most of a message's bytes).
        tags.clear();
        go_map(&mut tags, set_labels());
        for (name, value) in set.metrics.iter() {
            point(&mut out, &time, timestamp, name, *value, &tags);
        }
        for m in &set.labeled_metrics {
            // The metric's own labels win over the set's, as Heapster copied them over the set's.
            let mut merged: BTreeMap<&str, &str> = set_labels().collect();
            merged.extend(m.labels.iter().map(|(k, v)| (k.as_ref(), v.as_str())));
            let mut own = String::new();
            go_map(&mut own, merged.into_iter());
            point(&mut out, &time, timestamp, &m.name, m.value, &own);
        }
    }
    out
}

fn point(out: &mut Encoded, time: &str, timestamp: DateTime<Utc>, name: &str, value: MetricValue, tags: &str) {
    let mut json = String::with_capacity(80 + name.len() + time.len() + tags.len());
    json.push_str("{\"MetricsName\":");
    go_string(&mut json, name);
    json.push_str(",\"MetricsValue\":{\"value\":");
    match value {
        MetricValue::Int(i) => {
            let _ = write!(json, "{i}");
        }
        MetricValue::Float(f) => match serde_json::Number::from_f64(f) {
            Some(n) => {
                let _ = write!(json, "{n}");
            }
            None => {
                out.unrepresentable += 1;
                return;
            }
        },
    }
    json.push_str("},\"MetricsTimestamp\":\"");
    json.push_str(time);
    json.push_str("\",\"MetricsTags\":");
    json.push_str(tags);
    json.push('}');
    let record = Record { key: None, value: Some(json.into_bytes()), headers: BTreeMap::new(), timestamp };
    out.messages.push(Message { record, affinity: None });
}

/// Each event version as one message keyed `<event uid>/<resourceVersion>`: Heapster sent no key; the key lets a
/// consumer drop the copies a resend after a crash makes (the eventer repeats a batch it could not confirm).
pub fn events(batch: &EventBatch) -> Encoded {
    let mut out = Encoded::default();
    for EventVersion { event, .. } in &batch.events {
        let mut json = String::with_capacity(2048);
        json.push_str("{\"EventValue\":");
        go_string(&mut json, &go_marshal_indent(event));
        // Heapster took lastTimestamp as it was: Go's zero time when the event has none.
        let last = event
            .last_timestamp
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        json.push_str(",\"EventTimestamp\":\"");
        json.push_str(&last.map(go_time).unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned()));
        json.push_str("\",\"EventTags\":");
        let mut tags = BTreeMap::from([("eventID", event.metadata.uid.as_str())]);
        if event.involved_object.kind == "Pod" {
            tags.insert(labels::POD_ID, &event.involved_object.uid);
            tags.insert(labels::POD_NAME, &event.involved_object.name);
        }
        tags.insert(labels::HOSTNAME, &event.source.host);
        go_map(&mut json, tags.into_iter());
        json.push('}');
        let key = format!("{}/{}", event.metadata.uid, event.metadata.resource_version);
        let timestamp = ms_time(event.last_time().unwrap_or(batch.timestamp));
        let record =
            Record { key: Some(key.into_bytes()), value: Some(json.into_bytes()), headers: BTreeMap::new(), timestamp };
        out.messages.push(Message { record, affinity: Some(crc32fast::hash(event.metadata.uid.as_bytes())) });
    }
    out
}

fn ms_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Go's `time.Time` in JSON (RFC 3339 with nanoseconds, trailing zeros of the fraction dropped), in UTC.
pub fn go_time(t: DateTime<Utc>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// A map[string]string as Go marshals it; `pairs` come sorted by key, as Go sorts them.
fn go_map<'a>(json: &mut String, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    json.push('{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            json.push(',');
        }
        go_string(json, k);
        json.push(':');
        go_string(json, v);
    }
    json.push('}');
}

/// A JSON string as Go's encoding/json writes it (HTML-safe, control characters as `\u00XX` but `\n \r \t`).
fn go_string(json: &mut String, s: &str) {
    json.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '<' => Some("\\u003c"),
            '>' => Some("\\u003e"),
            '&' => Some("\\u0026"),
            '\u{2028}' => Some("\\u2028"),
            '\u{2029}' => Some("\\u2029"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        json.push_str(&s[start..i]);
        match esc {
            Some(e) => json.push_str(e),
            None => {
                let _ = write!(json, "\\u{:04x}", c as u32);
            }
        }
        start = i + c.len_utf8();
    }
    json.push_str(&s[start..]);
    json.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::events::{Change, Event, EventSource, ObjectMeta, ObjectReference};
    use heapster_model::{Labels, MetricSet};
    use std::sync::Arc;

    fn text(m: &Message) -> &str {
        std::str::from_utf8(m.record.value.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn a_metric_is_heapsters_kafka_sink_point() {
        let mut set = MetricSet::default();
        set.labels.insert("type", "pod".to_owned());
        set.labels.insert("labels", "app:web,tier:<front>&".to_owned());
        set.set("cpu/usage", MetricValue::Int(-12));
        set.set("cpu/usage_rate", MetricValue::Float(0.25));
        set.set("memory/usage", MetricValue::Float(f64::INFINITY));
        let fs: Labels =
            [("resource_id".to_owned(), "/dev/sda1".to_owned()), ("type".into(), "fs".into())].into_iter().collect();
        set.add_labeled("filesystem/usage", fs, MetricValue::Int(4096));
        let batch = DataBatch { timestamp: 1_700_000_000_120, sets: [("pod".to_owned(), set)].into() };
        let e = metrics(&batch);
        assert_eq!(e.unrepresentable, 1);
        let got: Vec<&str> = e.messages.iter().map(text).collect();
        let tags = r#"{"labels":"app:web,tier:\u003cfront\u003e\u0026","type":"pod"}"#;
        assert_eq!(
            got,
            [
                format!(
                    r#"{{"MetricsName":"cpu/usage","MetricsValue":{{"value":-12}},"MetricsTimestamp":"2023-11-14T22:13:20.12Z","MetricsTags":{tags}}}"#
                ),
                format!(
                    r#"{{"MetricsName":"cpu/usage_rate","MetricsValue":{{"value":0.25}},"MetricsTimestamp":"2023-11-14T22:13:20.12Z","MetricsTags":{tags}}}"#
                ),
                r#"{"MetricsName":"filesystem/usage","MetricsValue":{"value":4096},"MetricsTimestamp":"2023-11-14T22:13:20.12Z","MetricsTags":{"labels":"app:web,tier:\u003cfront\u003e\u0026","resource_id":"/dev/sda1","type":"fs"}}"#.to_owned(),
            ]
        );
        assert!(
            e.messages
                .iter()
                .all(|m| m.record.key.is_none() && m.record.timestamp.timestamp_millis() == 1_700_000_000_120)
        );
    }

    #[test]
    fn an_event_is_heapsters_kafka_sink_point_keyed_for_deduplication() {
        let event = Event {
            metadata: ObjectMeta { uid: "e-1".into(), resource_version: "812".into(), ..Default::default() },
            involved_object: ObjectReference {
                kind: "Pod".into(),
                name: "web-1".into(),
                uid: "p-1".into(),
                ..Default::default()
            },
            reason: "BackOff".into(),
            message: "a <b> & \"c\"\u{1}".into(),
            source: EventSource { component: "kubelet".into(), host: "node-1".into() },
            last_timestamp: Some("2026-12-03T11:05:00+01:00".into()),
            ..Default::default()
        };
        let batch =
            EventBatch { timestamp: 1, events: vec![EventVersion { change: Change::Added, event: Arc::new(event) }] };
        let e = events(&batch);
        let m = &e.messages[0];
        assert_eq!(m.record.key.as_deref(), Some(&b"e-1/812"[..]));
        assert_eq!(m.record.timestamp.timestamp_millis(), 1_796_292_300_000);
        let want = concat!(
            r#"{"EventValue":"{\n \"metadata\": {\n  \"uid\": \"e-1\",\n  \"resourceVersion\": \"812\",\n  \"creationTimestamp\": null\n },\n"#,
            r#" \"involvedObject\": {\n  \"kind\": \"Pod\",\n  \"name\": \"web-1\",\n  \"uid\": \"p-1\"\n },\n \"reason\": \"BackOff\",\n"#,
            r#" \"message\": \"a \\u003cb\\u003e \\u0026 \\\"c\\\"\\u0001\",\n \"source\": {\n  \"component\": \"kubelet\",\n  \"host\": \"node-1\"\n },\n"#,
            r#" \"firstTimestamp\": null,\n \"lastTimestamp\": \"2026-12-03T11:05:00+01:00\",\n \"eventTime\": null,\n"#,
            r#" \"reportingComponent\": \"\",\n \"reportingInstance\": \"\"\n}","#,
            r#""EventTimestamp":"2026-12-03T10:05:00Z","EventTags":{"eventID":"e-1","hostname":"node-1","pod_id":"p-1","pod_name":"web-1"}}"#
        );
        assert_eq!(text(m), want);
    }

    #[test]
    fn go_times_and_strings() {
        assert_eq!(go_time(ms_time(0)), "1970-01-01T00:00:00Z");
        assert_eq!(go_time(ms_time(1_500)), "1970-01-01T00:00:01.5Z");
        let mut s = String::new();
        go_string(&mut s, "\u{7f}é\u{2028}\u{1f}\\");
        assert_eq!(s, "\"\u{7f}é\\u2028\\u001f\\\\\"");
    }
}
