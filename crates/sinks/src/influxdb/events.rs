//! `heapster eventer --sink=influxdb:http://host:8086?...`: Kubernetes events into InfluxDB in the original
//! eventer's schema, through the metrics sink's options ([`super::config`]) and transport ([`super::service`]).
//!
//! Heapster's schema: measurement `log/events`, tags `uid`, `pod_id` and `pod_name` (for Pod objects),
//! `hostname`, `cluster_name`, and the field `value` holding the event as Go's `json.MarshalIndent(event, "",
//! " ")` writes it. With `withfields=true`: measurement `events`, field `message`, tags `uid`, `pod_id`,
//! `object_name`, `type`, `kind`, `component`, `reason`, `namespace_name`, `hostname`, `cluster_name`.
//!
//! A point's time is the event's last time in whole seconds, as Heapster wrote it, **plus the resource version
//! modulo 10^9 as nanoseconds**. InfluxDB keys a point by measurement, tags and time: Heapster's bare seconds
//! made two versions of one event within a second (its `count` going 3 -> 4) one point, the later overwriting
//! the earlier; with the version in the nanoseconds each version is its own point, an update stays on the
//! event's series (same `uid` tag), and a resend of the same version lands on the same key and overwrites
//! itself, which is what makes the eventer's at-least-once delivery exactly once here.

use super::config::{self, InfluxdbConfig, Schema};
use super::encoder::escape;
use super::service::Transport;
use crate::events::{EventSink, EventSinkKind};
use crate::util::http::Bodies;
use crate::{ConfigError, SinkError, SinkMetrics};
use async_trait::async_trait;
use heapster_model::events::{Event, EventBatch};
use heapster_model::{KindDoc, Options, SpecUri, labels};
use std::fmt::Write as _;
use std::sync::Arc;

/// The InfluxDB event sink in [`crate::events::EVENT_SINKS`].
pub const KIND: EventSinkKind = EventSinkKind {
    doc: KindDoc {
        key: "influxdb",
        aliases: &[],
        usage: "influxdb:http://HOST:8086?opts",
        summary: "Events as the original eventer wrote them (measurement log/events, the event JSON as value; \
                  withfields=true: measurement events, field message); one point per event version.",
        options: config::OPTIONS,
    },
    build: |uri, metrics| Ok(Arc::new(InfluxdbEventSink::new(uri, metrics)?)),
};

/// Request bodies stay under this many bytes: an event's JSON runs to a few KB, and InfluxDB refuses bodies over
/// its `max-body-size` (25 MB by default).
const MAX_BODY_BYTES: usize = 4 << 20;

/// Events as line protocol over the metrics sink's transport, with nanosecond timestamps.
pub struct InfluxdbEventSink {
    config: InfluxdbConfig,
    transport: Arc<Transport>,
    name: String,
}

impl InfluxdbEventSink {
    /// Parses the `--sink` value with the metrics sink's options; contacts no server.
    pub fn new(uri: &SpecUri, metrics: &SinkMetrics) -> Result<Self, ConfigError> {
        let options = Options::new("--sink", uri, config::OPTIONS)?;
        let config = InfluxdbConfig::from_options(&options)?;
        if config.schema == Schema::Legacy {
            return Err(options
                .error("schema=legacy is a metrics schema; events have Heapster's (the default) or withfields=true"));
        }
        let name = config.name();
        let counters = metrics.for_kind(KIND.doc.key).sink(&name);
        let transport = Transport::new(config.clone(), name.clone(), counters).map_err(|e| options.error(e))?;
        Ok(InfluxdbEventSink { config, transport: Arc::new(transport.with_precision("ns")), name })
    }
}

#[async_trait]
impl EventSink for InfluxdbEventSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: &EventBatch) -> Result<(), SinkError> {
        let bodies = encode(batch, &self.config);
        if bodies.is_empty() {
            return Ok(());
        }
        self.transport.write_all(bodies).await
    }
}

/// The batch as line protocol with nanosecond timestamps, cut into request bodies.
pub fn encode(batch: &EventBatch, config: &InfluxdbConfig) -> Vec<String> {
    let mut bodies = Bodies::new(config.batch_points, MAX_BODY_BYTES);
    for v in &batch.events {
        bodies.line(|b| line(b, &v.event, config, batch.timestamp));
    }
    bodies.finish()
}

/// The point's time in nanoseconds: the event's last time in seconds (the batch's time when the event has
/// none, where Heapster wrote year 1, which InfluxDB refuses) plus the resource version modulo 10^9.
pub fn point_time(event: &Event, batch_ms: i64) -> i64 {
    let seconds = event.last_time().unwrap_or(batch_ms).div_euclid(1000);
    let version = event.resource_version().unwrap_or(0) % 1_000_000_000;
    seconds * 1_000_000_000 + version as i64
}

fn line(b: &mut String, event: &Event, config: &InfluxdbConfig, batch_ms: i64) {
    let object = &event.involved_object;
    let pod = object.kind == "Pod";
    let mut tags: Vec<(&str, &str)> = vec![
        ("uid", &event.metadata.uid),
        (labels::HOSTNAME, &event.source.host),
        (labels::CLUSTER_NAME, &config.cluster_name),
    ];
    if pod {
        tags.push((labels::POD_ID, &object.uid));
    }
    let (measurement, field, value) = match config.schema {
        Schema::WithFields => {
            tags.extend([
                ("object_name", object.name.as_str()),
                ("type", &event.type_),
                ("kind", &object.kind),
                ("component", &event.source.component),
                ("reason", &event.reason),
                (labels::NAMESPACE_NAME, &event.metadata.namespace),
            ]);
            ("events", "message", std::borrow::Cow::Borrowed(event.message.as_str()))
        }
        _ => {
            if pod {
                tags.push((labels::POD_NAME, &object.name));
            }
            ("log/events", "value", std::borrow::Cow::Owned(go_marshal_indent(event)))
        }
    };
    tags.sort_unstable_by(|a, b| a.0.cmp(b.0));
    escape(b, measurement, &[',', ' ']);
    // InfluxDB refuses empty tag values; Go's client left them out too.
    for (k, v) in tags.into_iter().filter(|(_, v)| !v.is_empty()) {
        b.push(',');
        escape(b, k, &[',', '=', ' ']);
        b.push('=');
        escape(b, v, &[',', '=', ' ']);
    }
    b.push(' ');
    b.push_str(field);
    b.push_str("=\"");
    // A string field escapes only quotes and backslashes; its newlines stay (line protocol allows them inside
    // a quoted field, and the indented JSON has them).
    for c in value.chars() {
        if c == '"' || c == '\\' {
            b.push('\\');
        }
        b.push(c);
    }
    let _ = write!(b, "\" {}", point_time(event, batch_ms));
}

/// `json.MarshalIndent(event, "", " ")` as Go writes it: one-space indentation, and `<`, `>`, `&`, U+2028 and
/// U+2029 escaped as `\u003c` ... (Go's HTML-safe escaping; they can only occur inside strings).
pub fn go_marshal_indent(event: &Event) -> String {
    let pretty = serde_json::to_string_pretty(event).expect("an Event always serializes");
    let mut s = String::with_capacity(pretty.len());
    // serde_json indents by two spaces; a JSON string holds no raw newline, so every line's leading spaces are
    // indentation, halved here to Go's one.
    for (i, l) in pretty.lines().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let body = l.trim_start_matches(' ');
        s.extend(std::iter::repeat_n(' ', (l.len() - body.len()) / 2));
        for c in body.chars() {
            match c {
                '<' => s.push_str("\\u003c"),
                '>' => s.push_str("\\u003e"),
                '&' => s.push_str("\\u0026"),
                '\u{2028}' => s.push_str("\\u2028"),
                '\u{2029}' => s.push_str("\\u2029"),
                c => s.push(c),
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::events::{Change, EventVersion};

    /// An event as the API server sends it, with characters line protocol and Go's JSON escape.
    const FIXTURE: &str = r#"{"metadata":{"name":"web-1.17f3","namespace":"default","uid":"5c1c","resourceVersion":"812",
        "creationTimestamp":"2026-12-03T10:00:00Z"},
        "involvedObject":{"kind":"Pod","namespace":"default","name":"web-1","uid":"a1","apiVersion":"v1"},
        "reason":"BackOff","message":"Back-off \"web\" <x> & y","source":{"component":"kubelet","host":"node 1"},
        "firstTimestamp":"2026-12-03T10:00:00Z","lastTimestamp":"2026-12-03T10:05:00Z","count":3,"type":"Warning",
        "eventTime":null,"reportingComponent":"kubelet","reportingInstance":"node-1"}"#;

    fn fixture() -> Event {
        serde_json::from_str(FIXTURE).unwrap()
    }

    fn config(sink: &str) -> InfluxdbConfig {
        InfluxdbConfig::from_uri(&sink.parse().unwrap()).unwrap()
    }

    fn batch(events: Vec<(Change, Event)>) -> EventBatch {
        let events = events.into_iter().map(|(change, e)| EventVersion { change, event: Arc::new(e) }).collect();
        EventBatch { timestamp: 1_796_292_400_000, events }
    }

    #[test]
    fn heapster_schema_line_protocol() {
        let body = encode(&batch(vec![(Change::Modified, fixture())]), &config("influxdb:http://h?cluster_name=prod"));
        let expected = r#"log/events,cluster_name=prod,hostname=node\ 1,pod_id=a1,pod_name=web-1,uid=5c1c value="{
 \"metadata\": {
  \"name\": \"web-1.17f3\",
  \"namespace\": \"default\",
  \"uid\": \"5c1c\",
  \"resourceVersion\": \"812\",
  \"creationTimestamp\": \"2026-12-03T10:00:00Z\"
 },
 \"involvedObject\": {
  \"kind\": \"Pod\",
  \"namespace\": \"default\",
  \"name\": \"web-1\",
  \"uid\": \"a1\",
  \"apiVersion\": \"v1\"
 },
 \"reason\": \"BackOff\",
 \"message\": \"Back-off \\\"web\\\" \\u003cx\\u003e \\u0026 y\",
 \"source\": {
  \"component\": \"kubelet\",
  \"host\": \"node 1\"
 },
 \"firstTimestamp\": \"2026-12-03T10:00:00Z\",
 \"lastTimestamp\": \"2026-12-03T10:05:00Z\",
 \"count\": 3,
 \"type\": \"Warning\",
 \"eventTime\": null,
 \"reportingComponent\": \"kubelet\",
 \"reportingInstance\": \"node-1\"
}" 1796292300000000812
"#;
        assert_eq!(body, [expected]);
    }

    #[test]
    fn withfields_line_protocol_and_non_pod_objects() {
        let mut node = fixture();
        node.involved_object.kind = "Node".into();
        node.involved_object.name = "node-1".into();
        node.involved_object.uid = "n1".into();
        node.source.component = String::new();
        let events = vec![(Change::Added, fixture()), (Change::Added, node.clone())];
        let body = encode(&batch(events.clone()), &config("influxdb:http://h?withfields=true")).concat();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(
            lines,
            [
                r#"events,cluster_name=default,component=kubelet,hostname=node\ 1,kind=Pod,namespace_name=default,object_name=web-1,pod_id=a1,reason=BackOff,type=Warning,uid=5c1c message="Back-off \"web\" <x> & y" 1796292300000000812"#,
                r#"events,cluster_name=default,hostname=node\ 1,kind=Node,namespace_name=default,object_name=node-1,reason=BackOff,type=Warning,uid=5c1c message="Back-off \"web\" <x> & y" 1796292300000000812"#,
            ]
        );
        let plain = encode(&batch(vec![(Change::Added, node)]), &config("influxdb:http://h")).concat();
        assert!(plain.starts_with("log/events,cluster_name=default,hostname=node\\ 1,uid=5c1c value=\"{"), "{plain}");
    }

    #[test]
    fn point_times_separate_versions_within_a_second() {
        let mut e = fixture();
        let a = point_time(&e, 0);
        e.metadata.resource_version = "813".into();
        e.last_timestamp = Some("2026-12-03T10:05:00.900Z".into());
        assert_eq!(point_time(&e, 0) - a, 1, "the same second, the next version");
        e.metadata.resource_version = "3000000813".into();
        assert_eq!(point_time(&e, 0), a + 1, "the version modulo 10^9");
        let mut timeless = Event::default();
        timeless.metadata.resource_version = "5".into();
        assert_eq!(point_time(&timeless, 1_796_292_400_123), 1_796_292_400_000_000_005, "the batch's second");
    }

    #[test]
    fn refuses_the_legacy_schema() {
        let metrics = SinkMetrics::detached();
        let e = InfluxdbEventSink::new(&"influxdb:http://h?schema=legacy".parse().unwrap(), &metrics).err().unwrap();
        assert!(e.to_string().contains("schema=legacy is a metrics schema"), "{e}");
    }

    /// Against a real influxd: a batch written twice is stored once, one point per version, on one series per
    /// event, each value the event's JSON as it was sent.
    #[test]
    fn a_real_influxdb_stores_each_version_once() {
        let influx = heapster_testkit::Influxd::start();
        let metrics = SinkMetrics::detached();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let first = fixture();
        let mut bumped = fixture();
        bumped.metadata.resource_version = "813".into();
        bumped.count = 4;
        let mut other = fixture();
        other.metadata.uid = "77aa".into();
        other.metadata.resource_version = "814".into();
        other.involved_object.kind = "Node".into();
        let sent = batch(vec![(Change::Added, first), (Change::Modified, bumped), (Change::Added, other)]);
        for sink in ["db=ev", "db=evf&withfields=true"] {
            let uri = format!("influxdb:{}?{sink}", influx.url()).parse().unwrap();
            let s = InfluxdbEventSink::new(&uri, &metrics).unwrap();
            rt.block_on(s.export(&sent)).unwrap();
            rt.block_on(s.export(&sent)).unwrap();
        }

        let rows = |db: &str, q: &str| -> Vec<serde_json::Value> {
            let url = format!(
                "{}/query?db={db}&epoch=ns&q={}",
                influx.url(),
                url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
            );
            let (status, body) = heapster_testkit::http("GET", &url, None);
            assert_eq!(status, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            v["results"][0]["series"][0]["values"].as_array().cloned().unwrap_or_default()
        };
        let stored = rows("ev", r#"SELECT "value", "uid" FROM "log/events""#);
        assert_eq!(stored.len(), 3, "{stored:?}");
        for (row, version) in stored.iter().zip(&sent.events) {
            assert_eq!(row[0].as_i64().unwrap(), point_time(&version.event, 0));
            let back: Event = serde_json::from_str(row[1].as_str().unwrap()).unwrap();
            assert_eq!(&back, &*version.event);
            assert_eq!(row[2], version.event.metadata.uid.as_str());
        }
        let series = rows("ev", r#"SHOW SERIES FROM "log/events""#);
        assert_eq!(series.len(), 2, "an update stays on its event's series: {series:?}");
        let fields = rows("evf", r#"SELECT "message", "kind", "pod_id" FROM "events""#);
        assert_eq!(fields.len(), 3, "{fields:?}");
        assert_eq!(fields[0][1], "Back-off \"web\" <x> & y");
        assert_eq!((&fields[2][2], &fields[2][3]), (&serde_json::json!("Node"), &serde_json::Value::Null));
    }
}
