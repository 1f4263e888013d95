//! Heapster's Elasticsearch documents, index names and mapping, and the `_bulk` items that carry them.
//!
//! Documents are Heapster's, field for field: a metric set's values of one family (`cpu`, `filesystem`, `memory`,
//! `network`) with the same tags are one document `{"CpuMetricsTimestamp", "Metrics": {"cpu/usage": {"value"}},
//! "MetricsTags"}`; any other metric is a `general` document of its own `{"GeneralMetricsTimestamp",
//! "MetricsTags", "MetricsName", "MetricsValue": {"value"}}`; an event is `{"Count", "Metadata",
//! "InvolvedObject", "Source", "FirstOccurrenceTimestamp", "LastOccurrenceTimestamp", "Message", "Reason",
//! "Type", "EventTags"}`. Every document gets an `_id` made from what it says (Heapster drew a random UUID), so
//! that sending a batch again overwrites what arrived the first time instead of adding it twice.

use super::config::{ElasticsearchConfig, Layout};
use base64::Engine as _;
use heapster_model::events::{EventBatch, EventVersion};
use heapster_model::{DataBatch, MetricValue, Timestamp};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Heapster's metric families (`core.MetricFamilies`): a metric is in one only when named here; every other
/// metric, including those added since, is `general`.
pub const FAMILIES: &[(&str, &[&str])] = &[
    (
        "cpu",
        &[
            "cpu/limit",
            "cpu/request",
            "cpu/usage",
            "cpu/load",
            "cpu/usage_rate",
            "cpu/node_allocatable",
            "cpu/node_capacity",
            "cpu/node_reservation",
            "cpu/node_utilization",
        ],
    ),
    (
        "filesystem",
        &[
            "filesystem/available",
            "filesystem/limit",
            "filesystem/usage",
            "filesystem/inodes",
            "filesystem/inodes_free",
        ],
    ),
    (
        "memory",
        &[
            "memory/limit",
            "memory/major_page_faults",
            "memory/major_page_faults_rate",
            "memory/page_faults",
            "memory/page_faults_rate",
            "memory/request",
            "memory/usage",
            "memory/rss",
            "memory/cache",
            "memory/working_set",
            "memory/node_allocatable",
            "memory/node_capacity",
            "memory/node_utilization",
            "memory/node_reservation",
        ],
    ),
    (
        "network",
        &[
            "network/rx",
            "network/rx_errors",
            "network/rx_errors_rate",
            "network/rx_rate",
            "network/tx",
            "network/tx_errors",
            "network/tx_errors_rate",
            "network/tx_rate",
        ],
    ),
];

pub const GENERAL: &str = "general";
pub const EVENTS: &str = "events";

/// Every document type, in the order of Heapster's mapping.
pub const TYPES: &[&str] = &["cpu", "filesystem", "memory", "network", GENERAL, EVENTS];

/// The family of a metric, by the family lists' exact names (`core.MetricFamilyForName`).
pub fn family(metric: &str) -> &'static str {
    let prefix = metric.split('/').next().unwrap_or("");
    FAMILIES.iter().find(|(f, names)| *f == prefix && names.contains(&metric)).map_or(GENERAL, |(f, _)| f)
}

/// `Cpu` + `MetricsTimestamp` (`strings.Title(family)`).
fn timestamp_field(family: &str) -> &'static str {
    match family {
        "cpu" => "CpuMetricsTimestamp",
        "filesystem" => "FilesystemMetricsTimestamp",
        "memory" => "MemoryMetricsTimestamp",
        "network" => "NetworkMetricsTimestamp",
        _ => "GeneralMetricsTimestamp",
    }
}

/// A time as Go's `time.Time` marshals it in UTC: RFC 3339 with as many fraction digits as it needs.
pub fn go_time(ms: Timestamp) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = ms.rem_euclid(1000);
    if frac != 0 {
        let f = format!(".{frac:03}");
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// The index a document of `type_` dated `ms` goes to: Heapster's `<index>-YYYY.MM.DD` holding every type
/// (Elasticsearch 2 and 5), or `<index>-<type>-YYYY.MM.DD` where an index holds one type (6 and later).
pub fn index_name(config: &ElasticsearchConfig, type_: &str, ms: Timestamp) -> String {
    let date = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y.%m.%d");
    match config.layout() {
        Layout::Typed => format!("{}-{date}", config.index),
        _ => format!("{}-{type_}-{date}", config.index),
    }
}

/// The alias every index of `type_` is reachable by (Heapster's `IndexAlias`): `heapster-cpu`, `heapster-events`.
pub fn alias(config: &ElasticsearchConfig, type_: &str) -> String {
    format!("{}-{type_}", config.index)
}

// --- The mapping -------------------------------------------------------------------------------------------------

/// Field types in the spelling of the server's version: Elasticsearch 2 and 5 had `string` with `index:
/// analyzed|not_analyzed`; 6 and later have `text` and `keyword`.
struct Fields(u8);

impl Fields {
    fn string(&self, analyzed: Option<bool>, raw: bool) -> Value {
        if self.0 <= 5 {
            let mut f = json!({"type": "string"});
            if let Some(a) = analyzed {
                f["index"] = json!(if a { "analyzed" } else { "not_analyzed" });
            }
            if raw {
                f["fields"] = json!({"raw": {"type": "string", "index": "not_analyzed"}});
            }
            f
        } else if analyzed == Some(false) {
            json!({"type": "keyword"})
        } else if raw {
            json!({"type": "text", "fields": {"raw": {"type": "keyword"}}})
        } else {
            json!({"type": "text"})
        }
    }
    /// Analyzed, with a `raw` keyword beside it.
    fn analyzed(&self) -> Value {
        self.string(Some(true), true)
    }
    /// Heapster's fields with a `raw` twin but no explicit `index` (the server's default, analyzed).
    fn text_raw(&self) -> Value {
        self.string(None, true)
    }
    fn keyword(&self) -> Value {
        self.string(Some(false), false)
    }
    fn date(&self) -> Value {
        json!({"type": "date", "format": "strict_date_optional_time||epoch_millis"})
    }
}

fn metrics_tags(f: &Fields) -> Value {
    json!({"properties": {
        "container_base_image": f.analyzed(),
        "container_name": f.analyzed(),
        "host_id": f.keyword(),
        "hostname": f.analyzed(),
        "labels": f.analyzed(),
        "namespace_id": f.keyword(),
        "namespace_name": f.text_raw(),
        "nodename": f.analyzed(),
        "cluster_name": f.keyword(),
        "pod_id": f.keyword(),
        "pod_name": f.analyzed(),
        "resource_id": f.keyword(),
        "type": f.keyword(),
    }})
}

/// The properties of one type, as Heapster's `mapping.go` declared them.
pub fn properties(type_: &str, version: u8) -> Value {
    let f = Fields(version);
    let value = json!({"properties": {"value": {"type": "double"}}});
    match type_ {
        GENERAL => json!({
            "MetricsTags": metrics_tags(&f),
            "MetricsName": f.analyzed(),
            "GeneralMetricsTimestamp": f.date(),
            "MetricsValue": value,
        }),
        EVENTS => json!({
            "EventTags": {"properties": {
                "eventID": f.keyword(),
                "cluster_name": f.keyword(),
                "hostname": f.analyzed(),
                "pod_id": f.keyword(),
                "pod_name": f.analyzed(),
            }},
            "InvolvedObject": {"properties": {
                "apiVersion": f.keyword(),
                "fieldPath": f.text_raw(),
                "kind": f.keyword(),
                "name": f.text_raw(),
                "namespace": f.text_raw(),
                "resourceVersion": f.keyword(),
                "uid": f.keyword(),
            }},
            "FirstOccurrenceTimestamp": f.date(),
            "LastOccurrenceTimestamp": f.date(),
            "Type": f.keyword(),
            "Message": f.text_raw(),
            "Reason": f.keyword(),
            "Count": {"type": "long"},
            "Metadata": {"properties": {
                "creationTimestamp": f.date(),
                "name": f.text_raw(),
                "namespace": f.text_raw(),
                "resourceVersion": f.keyword(),
                "selfLink": f.keyword(),
                "uid": f.keyword(),
            }},
            "Source": {"properties": {
                "component": f.keyword(),
                "host": f.text_raw(),
            }},
        }),
        family => {
            let names = FAMILIES.iter().find(|(n, _)| *n == family).map_or(&[][..], |(_, m)| m);
            let metrics: serde_json::Map<String, Value> =
                names.iter().map(|m| ((*m).to_owned(), value.clone())).collect();
            json!({
                "MetricsTags": metrics_tags(&f),
                timestamp_field(family): f.date(),
                "Metrics": {"properties": metrics},
            })
        }
    }
}

/// One index template to install before the first write: where it goes (`_template/NAME` or, for
/// Elasticsearch 8, `_index_template/NAME`) and its body. Heapster created each day's index with the mapping
/// and added the alias before every write, three requests per family per batch; a template does the same once,
/// for every index the bulk writes then create.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub path: String,
    pub body: Value,
}

pub fn templates(config: &ElasticsearchConfig) -> Vec<Template> {
    let v = config.version;
    let aliases =
        |types: &[&str]| -> Value { Value::Object(types.iter().map(|t| (alias(config, t), json!({}))).collect()) };
    match config.layout() {
        Layout::Typed => {
            let mut mappings = serde_json::Map::new();
            mappings.insert("_default_".into(), json!({"_all": {"enabled": false}}));
            for t in TYPES {
                mappings.insert((*t).to_owned(), json!({"properties": properties(t, v)}));
            }
            vec![Template {
                path: format!("_template/{}", config.index),
                body: json!({
                    "template": format!("{}-*", config.index),
                    "mappings": mappings,
                    "aliases": aliases(TYPES),
                }),
            }]
        }
        layout => TYPES
            .iter()
            .map(|t| {
                let name = alias(config, t);
                let pattern = format!("{name}-*");
                let mappings = match layout {
                    Layout::OneTypePerIndex => json!({ *t: {"properties": properties(t, v)} }),
                    _ => json!({"properties": properties(t, v)}),
                };
                let aliases = aliases(&[t]);
                if v >= 8 {
                    // Composable templates; 200 ranks above the stack's own (100) should `index` overlap them.
                    Template {
                        path: format!("_index_template/{name}"),
                        body: json!({
                            "index_patterns": [pattern],
                            "priority": 200,
                            "template": {"mappings": mappings, "aliases": aliases},
                        }),
                    }
                } else {
                    Template {
                        path: format!("_template/{name}"),
                        body: json!({"index_patterns": [pattern], "mappings": mappings, "aliases": aliases}),
                    }
                }
            })
            .collect(),
    }
}

// --- Documents ---------------------------------------------------------------------------------------------------

/// `_bulk` index actions, each its action line and its document ending in newlines, in one buffer (one
/// allocation per batch, not one per document), addressable one by one so that a few can be sent again.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Items {
    buf: Vec<u8>,
    /// Each item's end in `buf` and the values in its document (for the self-metrics, which count points).
    ends: Vec<(usize, u32)>,
}

impl Items {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Item `i`'s two lines.
    pub fn bytes(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1].0 };
        &self.buf[start..self.ends[i].0]
    }

    /// Item `i`'s two lines as text.
    pub fn ndjson(&self, i: usize) -> &str {
        std::str::from_utf8(self.bytes(i)).expect("serde_json writes UTF-8")
    }

    pub fn points(&self, i: usize) -> u32 {
        self.ends[i].1
    }

    /// Every item, in order, as one bulk body.
    pub fn all(&self) -> &[u8] {
        &self.buf
    }

    /// Appends the action line and the document as one item.
    fn push(&mut self, config: &ElasticsearchConfig, index: &str, type_: &str, id: &str, source: &[u8], points: u32) {
        let out = &mut self.buf;
        out.extend_from_slice(b"{\"index\":{\"_index\":");
        push_json(out, index);
        if config.layout() != Layout::Typeless {
            out.extend_from_slice(b",\"_type\":");
            push_json(out, type_);
        }
        out.extend_from_slice(b",\"_id\":");
        push_json(out, id);
        if let Some(p) = &config.pipeline {
            out.extend_from_slice(b",\"pipeline\":");
            push_json(out, p);
        }
        out.extend_from_slice(b"}}\n");
        out.extend_from_slice(source);
        out.push(b'\n');
        self.ends.push((out.len(), points));
    }
}

/// What a batch came to: its bulk items, and values no JSON number can hold (NaN, infinities).
#[derive(Debug, Default)]
pub struct Encoded {
    pub items: Items,
    pub unrepresentable: usize,
}

fn push_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(out, v).expect("serializing to a Vec cannot fail");
}

/// `{"value":V}`.
fn push_value(out: &mut Vec<u8>, v: MetricValue) {
    out.extend_from_slice(b"{\"value\":");
    match v {
        MetricValue::Int(i) => push_json(out, &i),
        MetricValue::Float(f) => push_json(out, &f),
    }
    out.push(b'}');
}

fn finite(v: MetricValue) -> bool {
    match v {
        MetricValue::Int(_) => true,
        MetricValue::Float(f) => f.is_finite(),
    }
}

/// An `_id` made from the document and where it goes: the same document sent again gets the same `_id`.
fn content_id(index: &str, type_: &str, source: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(index.as_bytes());
    ctx.update(&[0]);
    ctx.update(type_.as_bytes());
    ctx.update(&[0]);
    ctx.update(source);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&ctx.finish().as_ref()[..18])
}

type Tags<'a> = BTreeMap<&'a str, &'a str>;

fn push_tags(out: &mut Vec<u8>, tags: &Tags) {
    out.push(b'{');
    for (i, (k, v)) in tags.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json(out, *k);
        out.push(b':');
        push_json(out, *v);
    }
    out.push(b'}');
}

/// The batch's documents. Within each metric set, values of one family whose tags are equal share a document,
/// as Heapster merged them; other metrics get one each.
pub fn metrics(batch: &DataBatch, config: &ElasticsearchConfig) -> Encoded {
    let mut enc = Encoded::default();
    let ts = go_time(batch.timestamp);
    let indices: BTreeMap<&str, String> = TYPES.iter().map(|t| (*t, index_name(config, t, batch.timestamp))).collect();
    let mut src = Vec::with_capacity(512);
    for set in batch.sets.values() {
        let mut base: Tags = set.labels.iter().map(|(k, v)| (k.as_ref(), v.as_str())).collect();
        base.insert("cluster_name", &config.cluster_name);
        // Distinct label sets of the labelled metrics; a document is (family, index of its labels here).
        let mut label_sets: Vec<Option<&heapster_model::Labels>> = vec![None];
        let mut docs: BTreeMap<(&str, usize), BTreeMap<&str, MetricValue>> = BTreeMap::new();
        let mut general: Vec<(&str, usize, MetricValue)> = Vec::new();
        let values = set.metrics.iter().map(|(n, v)| (n.as_ref(), None, *v));
        let labeled = set.labeled_metrics.iter().map(|m| (m.name.as_ref(), Some(&*m.labels), m.value));
        for (name, labels, value) in values.chain(labeled) {
            if !finite(value) {
                enc.unrepresentable += 1;
                continue;
            }
            let at = label_sets.iter().position(|l| *l == labels).unwrap_or_else(|| {
                label_sets.push(labels);
                label_sets.len() - 1
            });
            match family(name) {
                GENERAL => general.push((name, at, value)),
                f => {
                    docs.entry((f, at)).or_default().insert(name, value);
                }
            }
        }
        // The JSON of each label set's tags, written once per set rather than once per document.
        let tags_json: Vec<Vec<u8>> = label_sets
            .iter()
            .map(|labels| {
                let mut t = base.clone();
                for (k, v) in labels.iter().copied().flatten() {
                    t.insert(k.as_ref(), v.as_str());
                }
                let mut out = Vec::with_capacity(256);
                push_tags(&mut out, &t);
                out
            })
            .collect();
        for ((fam, at), values) in &docs {
            src.clear();
            src.extend_from_slice(b"{\"");
            src.extend_from_slice(timestamp_field(fam).as_bytes());
            src.extend_from_slice(b"\":\"");
            src.extend_from_slice(ts.as_bytes());
            src.extend_from_slice(b"\",\"Metrics\":{");
            for (i, (name, v)) in values.iter().enumerate() {
                if i > 0 {
                    src.push(b',');
                }
                push_json(&mut src, *name);
                src.push(b':');
                push_value(&mut src, *v);
            }
            src.extend_from_slice(b"},\"MetricsTags\":");
            src.extend_from_slice(&tags_json[*at]);
            src.push(b'}');
            let index = &indices[fam];
            enc.items.push(config, index, fam, &content_id(index, fam, &src), &src, values.len() as u32);
        }
        for (name, at, v) in general {
            src.clear();
            src.extend_from_slice(b"{\"GeneralMetricsTimestamp\":\"");
            src.extend_from_slice(ts.as_bytes());
            src.extend_from_slice(b"\",\"MetricsTags\":");
            src.extend_from_slice(&tags_json[at]);
            src.extend_from_slice(b",\"MetricsName\":");
            push_json(&mut src, name);
            src.extend_from_slice(b",\"MetricsValue\":");
            push_value(&mut src, v);
            src.push(b'}');
            let index = &indices[GENERAL];
            enc.items.push(config, index, GENERAL, &content_id(index, GENERAL, &src), &src, 1);
        }
    }
    enc
}

/// Heapster's `EsSinkPoint`, in its field order.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventDoc<'a> {
    count: i32,
    metadata: &'a heapster_model::events::ObjectMeta,
    involved_object: &'a heapster_model::events::ObjectReference,
    source: &'a heapster_model::events::EventSource,
    first_occurrence_timestamp: String,
    last_occurrence_timestamp: String,
    message: &'a str,
    reason: &'a str,
    #[serde(rename = "Type")]
    type_: &'a str,
    event_tags: Tags<'a>,
}

/// When an event happened, for its document and its day's index: `lastTimestamp`, else `eventTime`, else
/// `firstTimestamp`, else its creation, else the batch's time. Heapster took `lastTimestamp` alone and filed
/// events that only have an `eventTime` as of 0001-01-01.
fn first_and_last(v: &EventVersion, batch_ms: Timestamp) -> (Timestamp, Timestamp) {
    let e = &v.event;
    let last = e.last_time().unwrap_or(batch_ms);
    let first = [&e.first_timestamp, &e.event_time]
        .into_iter()
        .flatten()
        .find_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(last, |t| t.timestamp_millis());
    (first, last)
}

/// The `_id` of one event version: its uid and resource version, so a version sent again overwrites itself and
/// each later version of the event is a document of its own, as in Heapster.
pub fn event_id(v: &EventVersion) -> Option<String> {
    let m = &v.event.metadata;
    (!m.uid.is_empty() && !m.resource_version.is_empty()).then(|| format!("{}-{}", m.uid, m.resource_version))
}

pub fn events(batch: &EventBatch, config: &ElasticsearchConfig) -> Items {
    let mut src = Vec::with_capacity(1024);
    let mut items = Items::default();
    for v in &batch.events {
        let e = &v.event;
        let (first, last) = first_and_last(v, batch.timestamp);
        let mut tags: Tags = [("eventID", e.metadata.uid.as_str()), ("cluster_name", config.cluster_name.as_str())]
            .into_iter()
            .collect();
        if e.involved_object.kind == "Pod" {
            tags.insert("pod_id", &e.involved_object.uid);
            tags.insert("pod_name", &e.involved_object.name);
        }
        tags.insert("hostname", &e.source.host);
        let doc = EventDoc {
            count: e.count,
            metadata: &e.metadata,
            involved_object: &e.involved_object,
            source: &e.source,
            first_occurrence_timestamp: go_time(first),
            last_occurrence_timestamp: go_time(last),
            message: &e.message,
            reason: &e.reason,
            type_: &e.type_,
            event_tags: tags,
        };
        src.clear();
        push_json(&mut src, &doc);
        let index = index_name(config, EVENTS, last);
        let id = event_id(v).unwrap_or_else(|| content_id(&index, EVENTS, &src));
        items.push(config, &index, EVENTS, &id, &src, 1);
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::{Labels, MetricSet};

    fn config(opts: &str) -> ElasticsearchConfig {
        ElasticsearchConfig::from_uri(&format!("elasticsearch:http://h:9200?{opts}").parse().unwrap()).unwrap()
    }

    #[test]
    fn families_are_heapsters_lists_and_everything_else_is_general() {
        assert_eq!(family("cpu/usage_rate"), "cpu");
        assert_eq!(family("filesystem/inodes_free"), "filesystem");
        assert_eq!(family("memory/working_set"), "memory");
        assert_eq!(family("network/tx_errors_rate"), "network");
        for m in ["uptime", "cpu/throttled", "memory/oom_kills", "custom/x", "ephemeral_storage/usage"] {
            assert_eq!(family(m), GENERAL, "{m}");
        }
    }

    #[test]
    fn times_and_index_names_are_heapsters() {
        assert_eq!(go_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(go_time(1_700_000_000_120), "2023-11-14T22:13:20.12Z");
        assert_eq!(index_name(&config(""), "cpu", 1_700_000_000_000), "heapster-2023.11.14");
        assert_eq!(index_name(&config("ver=7&index=k8s"), "cpu", 1_700_000_000_000), "k8s-cpu-2023.11.14");
    }

    /// Heapster's own test (`TestStoreMultipleDataInput`), its expected documents byte for byte.
    #[test]
    fn documents_are_heapsters_byte_for_byte() {
        let labels = |pairs: &[(&str, &str)]| -> Labels {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let mut cpu = MetricSet {
            labels: labels(&[("namespace_id", "123"), ("container_name", "/system.slice/-.mount"), ("pod_id", "aaaa")]),
            ..Default::default()
        };
        cpu.set("cpu/usage", MetricValue::Int(123456));
        cpu.set("cpu/limit", MetricValue::Int(223456));
        cpu.set("memory/usage", MetricValue::Float(f64::NAN));
        let mut general =
            MetricSet { labels: labels(&[("namespace_id", ""), ("pod_id", "aaaa")]), ..Default::default() };
        general.metrics.insert(std::borrow::Cow::Owned("test/metric/1".into()), MetricValue::Int(123456));
        let batch = DataBatch { timestamp: 1_700_000_000_500, sets: [("a".into(), cpu), ("b".into(), general)].into() };
        let enc = metrics(&batch, &config(""));
        assert_eq!(enc.unrepresentable, 1);
        let lines: Vec<Vec<&str>> = (0..enc.items.len()).map(|i| enc.items.ndjson(i).lines().collect()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0][1],
            r#"{"CpuMetricsTimestamp":"2023-11-14T22:13:20.5Z","Metrics":{"cpu/limit":{"value":223456},"cpu/usage":{"value":123456}},"MetricsTags":{"cluster_name":"default","container_name":"/system.slice/-.mount","namespace_id":"123","pod_id":"aaaa"}}"#
        );
        assert_eq!(
            lines[1][1],
            r#"{"GeneralMetricsTimestamp":"2023-11-14T22:13:20.5Z","MetricsTags":{"cluster_name":"default","namespace_id":"","pod_id":"aaaa"},"MetricsName":"test/metric/1","MetricsValue":{"value":123456}}"#
        );
        let action: Value = serde_json::from_str(lines[0][0]).unwrap();
        assert_eq!(action["index"]["_index"], "heapster-2023.11.14");
        assert_eq!(action["index"]["_type"], "cpu");
        // The same batch again: the same ids.
        assert_eq!(metrics(&batch, &config("")).items, enc.items);
        let v7 = metrics(&batch, &config("ver=7&pipeline=p"));
        let action: Value = serde_json::from_str(v7.items.ndjson(0).lines().next().unwrap()).unwrap();
        assert_eq!(action["index"]["_index"], "heapster-cpu-2023.11.14");
        assert_eq!((action["index"].get("_type"), &action["index"]["pipeline"]), (None, &json!("p")));
    }

    #[test]
    fn templates_per_version() {
        let t5 = templates(&config(""));
        assert_eq!(t5.len(), 1);
        assert_eq!(t5[0].path, "_template/heapster");
        assert_eq!(t5[0].body["template"], "heapster-*");
        assert_eq!(
            t5[0].body["mappings"]["cpu"]["properties"]["MetricsTags"]["properties"]["host_id"]["index"],
            "not_analyzed"
        );
        assert_eq!(t5[0].body["mappings"]["events"]["properties"]["Count"]["type"], "long");
        assert!(t5[0].body["aliases"]["heapster-events"].is_object());
        let t6 = templates(&config("ver=6"));
        assert_eq!(t6.len(), TYPES.len());
        assert_eq!(t6[0].path, "_template/heapster-cpu");
        assert_eq!(
            t6[0].body["mappings"]["cpu"]["properties"]["Metrics"]["properties"]["cpu/usage"]["properties"]["value"]["type"],
            "double"
        );
        let t7 = templates(&config("ver=7"));
        assert_eq!(
            t7[5].body["mappings"]["properties"]["Message"],
            json!({"type": "text", "fields": {"raw": {"type": "keyword"}}})
        );
        let t8 = templates(&config("ver=8"));
        assert_eq!(t8[1].path, "_index_template/heapster-filesystem");
        assert_eq!(t8[1].body["index_patterns"], json!(["heapster-filesystem-*"]));
        assert!(t8[1].body["template"]["aliases"]["heapster-filesystem"].is_object());
    }
}
