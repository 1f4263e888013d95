//! A batch as Cloud Monitoring `TimeSeries` JSON, under the service's rules, checked here so that the service never
//! has to refuse what heapster sends: one point per series, points of a series at least 5 s apart and newer than
//! its last, GAUGE intervals with start = end, CUMULATIVE intervals with a fixed start (the entity's create time)
//! and a growing end, end times no older than 25 h and no more than 5 min ahead. What breaks a rule is left out and
//! counted by cause; a resend of points already written is left out silently.

use super::mapping::{self, Extra, Kind, Mapping, Resource, Source, Value};
use crate::util::google::{Identity, rfc3339_millis};
use heapster_model::{DataBatch, Labels, MetricDescriptor, MetricSet, MetricValue, labels as l};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// The oldest end time the service takes: 25 hours back.
pub const MAX_AGE_MS: i64 = 25 * 3600 * 1000;
/// The newest: 5 minutes ahead.
pub const MAX_AHEAD_MS: i64 = 5 * 60 * 1000;
/// Points of one series at least this far apart.
pub const MIN_SPACING_MS: i64 = 5_000;

/// What the sink remembers of a series it wrote: its interval's start, its last end, and the create time the start
/// came from (a new create time is a restart, and a cumulative series starts again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesState {
    pub start: i64,
    pub end: i64,
    pub created: i64,
}

/// One encoded series, keyed by a hash of its metric and resource (type and labels).
#[derive(Debug, Clone)]
pub struct Series {
    pub key: u64,
    pub state: SeriesState,
    pub json: String,
}

/// A batch's series, and what was left out, by cause.
#[derive(Debug, Default)]
pub struct Encoded {
    pub series: Vec<Series>,
    pub dropped: BTreeMap<&'static str, u64>,
}

/// Which of the two sinks' layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Stackdriver,
    Gcm { autoscaling_only: bool },
}

/// What encoding one batch needs to know.
pub struct Context<'a> {
    pub identity: &'a Identity,
    /// Put before every metric name (`custom.googleapis.com/kubernetes.io/`).
    pub prefix: &'a str,
    pub schema: Schema,
    /// The wall clock, for the 25 h / 5 min window.
    pub now: i64,
    /// Points of a series at least this far apart (5 s, or Heapster's `min_interval_sec`).
    pub min_spacing: i64,
    pub states: &'a HashMap<u64, SeriesState>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TimeSeriesDoc<'a> {
    metric: TypedLabels<'a>,
    resource: TypedLabels<'a>,
    metric_kind: &'static str,
    value_type: &'static str,
    points: [PointDoc<'a>; 1],
}

#[derive(Serialize, Hash)]
struct TypedLabels<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct PointDoc<'a> {
    interval: IntervalDoc<'a>,
    value: ValueDoc,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IntervalDoc<'a> {
    start_time: &'a str,
    end_time: &'a str,
}

/// `TypedValue`: an `int64Value` is a string in JSON (the discovery document's `format: int64`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ValueDoc {
    Int64Value(String),
    DoubleValue(f64),
}

/// Encodes `batch` as `cx` says.
pub fn encode(batch: &DataBatch, cx: &Context) -> Encoded {
    // Every point of a batch ends at the batch's time; names are the prefix and the mapping's name: both made once.
    let mut e = Encoder {
        cx,
        out: Encoded::default(),
        seen: HashSet::new(),
        end: batch.timestamp,
        end_text: rfc3339_millis(batch.timestamp),
        stackdriver_types: mapping::STACKDRIVER.iter().map(|m| format!("{}{}", cx.prefix, m.name)).collect(),
    };
    if batch.timestamp < cx.now - MAX_AGE_MS {
        e.drop_all(batch, "older than 25 hours");
        return e.out;
    }
    if batch.timestamp > cx.now + MAX_AHEAD_MS {
        e.drop_all(batch, "more than 5 minutes ahead");
        return e.out;
    }
    for set in batch.sets.values() {
        match cx.schema {
            Schema::Stackdriver => e.stackdriver_set(set),
            Schema::Gcm { autoscaling_only } => e.gcm_set(set, autoscaling_only),
        }
    }
    e.out
}

struct Encoder<'a> {
    cx: &'a Context<'a>,
    out: Encoded,
    seen: HashSet<u64>,
    end: i64,
    end_text: String,
    /// The metric type of each of [`mapping::STACKDRIVER`], in its order.
    stackdriver_types: Vec<String>,
}

/// One point about to be encoded.
struct Point<'a> {
    metric_type: &'a str,
    metric_labels: BTreeMap<&'a str, &'a str>,
    resource: Resource,
    resource_labels: BTreeMap<&'a str, &'a str>,
    kind: Kind,
    value_type: Value,
    value: MetricValue,
    scale: f64,
    created: i64,
}

impl<'a> Encoder<'a> {
    fn drop(&mut self, cause: &'static str, n: u64) {
        *self.out.dropped.entry(cause).or_default() += n;
    }

    fn drop_all(&mut self, batch: &DataBatch, cause: &'static str) {
        let n = batch.point_count() as u64;
        if n > 0 {
            self.drop(cause, n);
        }
    }

    fn resource_labels<'s>(&self, resource: Resource, set: &'s Labels) -> Option<BTreeMap<&'s str, &'s str>>
    where
        'a: 's,
    {
        let id = self.cx.identity;
        let mut r = BTreeMap::from([("project_id", id.project.as_str())]);
        let get = |k: &str| set.get_str(k).filter(|v| !v.is_empty());
        if resource != Resource::Global {
            r.insert("location", id.location.as_str());
            r.insert("cluster_name", id.cluster_name.as_str());
        }
        match resource {
            Resource::Container => {
                r.insert("namespace_name", get(l::NAMESPACE_NAME)?);
                r.insert("pod_name", get(l::POD_NAME)?);
                r.insert("container_name", get(l::CONTAINER_NAME)?);
            }
            Resource::Pod => {
                r.insert("namespace_name", get(l::NAMESPACE_NAME)?);
                r.insert("pod_name", get(l::POD_NAME)?);
            }
            Resource::Node => {
                r.insert("node_name", get(l::NODENAME).or_else(|| get(l::HOSTNAME))?);
            }
            Resource::Global => {}
        }
        Some(r)
    }

    fn stackdriver_set(&mut self, set: &MetricSet) {
        let Some(set_type) = set.set_type() else { return };
        let types = std::mem::take(&mut self.stackdriver_types);
        for (m, metric_type) in mapping::STACKDRIVER.iter().zip(&types).filter(|(m, _)| m.set.as_str() == set_type) {
            match m.source {
                Source::Metric(name) => {
                    if let Some(v) = set.get(name) {
                        self.stackdriver_point(m, set, metric_type, None, v);
                    }
                }
                Source::Evictable => {
                    if let (Some(MetricValue::Int(usage)), Some(MetricValue::Int(ws))) =
                        (set.get("memory/usage"), set.get("memory/working_set"))
                    {
                        let v = MetricValue::Int(usage.saturating_sub(ws));
                        self.stackdriver_point(m, set, metric_type, None, v);
                    }
                }
                Source::Labeled(name) => {
                    for lm in set.labeled_metrics.iter().filter(|lm| lm.name == name) {
                        self.stackdriver_point(m, set, metric_type, Some(&lm.labels), lm.value);
                    }
                }
            }
        }
        self.stackdriver_types = types;
    }

    fn stackdriver_point(
        &mut self,
        m: &Mapping,
        set: &MetricSet,
        metric_type: &str,
        own: Option<&Labels>,
        value: MetricValue,
    ) {
        let Some(resource_labels) = self.resource_labels(m.resource, &set.labels) else {
            return self.drop("missing resource labels", 1);
        };
        let mut metric_labels: BTreeMap<&str, &str> = m.fixed.iter().copied().collect();
        let own_label = |k: &str| own.and_then(|o| o.get(k)).map(|v| v.as_str()).unwrap_or("");
        match m.extra {
            Extra::None => {}
            Extra::Component => {
                metric_labels.insert("component", set.labels.get_str(l::CONTAINER_NAME).unwrap_or(""));
            }
            Extra::Volume => {
                let id = own_label(l::RESOURCE_ID);
                metric_labels.insert("volume_name", id.strip_prefix("Volume:").unwrap_or(id));
            }
            Extra::Accelerator => {
                for k in [l::ACCELERATOR_MAKE, l::ACCELERATOR_MODEL, l::ACCELERATOR_ID] {
                    metric_labels.insert(k, own_label(k));
                }
            }
        }
        self.point(Point {
            metric_type,
            metric_labels,
            resource: m.resource,
            resource_labels,
            kind: m.kind,
            value_type: m.value,
            value,
            scale: m.scale,
            created: set.create_time,
        });
    }

    fn gcm_set(&mut self, set: &MetricSet, autoscaling_only: bool) {
        let Some(resource_labels) = self.resource_labels(Resource::Global, &set.labels) else { return };
        for (name, value) in set.metrics.iter() {
            let Some(d) = heapster_model::catalog::find(name) else {
                self.drop("not in the catalog", 1);
                continue;
            };
            let autoscaling = mapping::NODE_AUTOSCALING.contains(&d.name);
            if autoscaling_only && !autoscaling {
                continue;
            }
            let metric_labels = if autoscaling {
                let mut m = BTreeMap::new();
                m.insert("hostname", set.labels.get_str(l::HOSTNAME).unwrap_or(""));
                m.insert("resource_id", set.labels.get_str(l::HOST_ID).unwrap_or(""));
                m.insert("resource_type", "instance");
                m
            } else {
                mapping::GCM_LABELS.iter().filter_map(|k| Some((*k, set.labels.get(k)?.as_str()))).collect()
            };
            self.gcm_point(d, metric_labels, resource_labels.clone(), *value, set.create_time);
        }
        if autoscaling_only {
            return;
        }
        for lm in &set.labeled_metrics {
            let Some(d) = heapster_model::catalog::find(&lm.name) else {
                self.drop("not in the catalog", 1);
                continue;
            };
            let metric_labels = {
                let mut out = BTreeMap::new();
                for k in mapping::GCM_LABELS {
                    if let Some(v) = lm.labels.get(k).or_else(|| set.labels.get(k)) {
                        out.insert(*k, v.as_str());
                    }
                }
                out
            };
            self.gcm_point(d, metric_labels, resource_labels.clone(), lm.value, set.create_time);
        }
    }

    /// A `gcm` point: the catalog's name, kind and value type, on the global resource.
    fn gcm_point(
        &mut self,
        d: &MetricDescriptor,
        metric_labels: BTreeMap<&str, &str>,
        resource_labels: BTreeMap<&str, &str>,
        value: MetricValue,
        created: i64,
    ) {
        let (kind, value_type) = mapping::gcm_kind(d);
        self.point(Point {
            metric_type: &format!("{}{}", self.cx.prefix, d.name),
            metric_labels,
            resource: Resource::Global,
            resource_labels,
            kind,
            value_type,
            value,
            scale: 1.0,
            created,
        });
    }

    /// Applies the rules to one point and encodes it, or counts why not.
    fn point(&mut self, p: Point) {
        let metric = TypedLabels { kind: p.metric_type, labels: p.metric_labels };
        let resource = TypedLabels { kind: p.resource.as_str(), labels: p.resource_labels };
        let key = {
            let mut h = std::hash::DefaultHasher::new();
            metric.hash(&mut h);
            resource.hash(&mut h);
            h.finish()
        };
        if !self.seen.insert(key) {
            return self.drop("two values for one series", 1);
        }
        let value = match (p.value_type, p.value) {
            (Value::Int64, MetricValue::Int(v)) if p.scale == 1.0 => ValueDoc::Int64Value(v.to_string()),
            (Value::Int64, v) => {
                let f = v.as_f64() * p.scale;
                if !f.is_finite() {
                    return self.drop("not a finite number", 1);
                }
                ValueDoc::Int64Value((f.round() as i64).to_string())
            }
            (Value::Double, v) => {
                let f = v.as_f64() * p.scale;
                if !f.is_finite() {
                    return self.drop("not a finite number", 1);
                }
                ValueDoc::DoubleValue(f)
            }
        };
        let end = self.end;
        let last = self.cx.states.get(&key);
        if let Some(last) = last {
            if end == last.end {
                // Written already (a batch sent again after a retry): nothing is lost by leaving it out.
                return;
            }
            if end < last.end {
                return self.drop("older than the series' last point", 1);
            }
            if end < last.end + self.cx.min_spacing {
                return self.drop("too soon after the series' last point (5 s, or min_interval_sec)", 1);
            }
        }
        let state = match p.kind {
            Kind::Gauge => SeriesState { start: end, end, created: p.created },
            Kind::Cumulative => {
                if p.created <= 0 || p.created >= end {
                    return self.drop("cumulative without a start time", 1);
                }
                let start = match last {
                    Some(last) if last.created == p.created => last.start,
                    // A restart: the new interval must begin after the last one ended.
                    Some(last) => p.created.max(last.end + 1),
                    None => p.created,
                };
                SeriesState { start, end, created: p.created }
            }
        };
        let start_text = if state.start == end { self.end_text.clone() } else { rfc3339_millis(state.start) };
        let doc = TimeSeriesDoc {
            metric,
            resource,
            metric_kind: p.kind.as_str(),
            value_type: p.value_type.as_str(),
            points: [PointDoc { interval: IntervalDoc { start_time: &start_text, end_time: &self.end_text }, value }],
        };
        let json = serde_json::to_string(&doc).expect("a TimeSeries always serializes");
        self.out.series.push(Series { key, state, json });
    }
}

/// Request bodies of at most `max` series each (the API takes 200): `{"timeSeries": [...]}`.
pub fn requests(series: &[Series], max: usize) -> Vec<(String, &[Series])> {
    series
        .chunks(max.max(1))
        .map(|chunk| {
            let mut body = String::with_capacity(chunk.iter().map(|s| s.json.len() + 1).sum::<usize>() + 16);
            body.push_str("{\"timeSeries\":[");
            for (i, s) in chunk.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&s.json);
            }
            body.push_str("]}");
            (body, chunk)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::MetricSetType;
    use std::sync::Arc;

    const T: i64 = 1_796_292_300_000;

    fn identity() -> Identity {
        Identity { project: "my-project".into(), location: "europe-west1".into(), cluster_name: "prod".into() }
    }

    fn container(create: i64) -> MetricSet {
        let mut s = MetricSet { create_time: create, scrape_time: T, ..Default::default() };
        s.set_kind(MetricSetType::PodContainer);
        for (k, v) in [(l::NAMESPACE_NAME, "default"), (l::POD_NAME, "web-1"), (l::CONTAINER_NAME, "web")] {
            s.labels.insert(k, v.to_owned());
        }
        s.set("cpu/usage", MetricValue::Int(2_500_000_000));
        s.set("memory/usage", MetricValue::Int(1000));
        s.set("memory/working_set", MetricValue::Int(600));
        s.set("cpu/limit", MetricValue::Int(500));
        s
    }

    fn batch(at: i64, sets: Vec<(&str, MetricSet)>) -> DataBatch {
        DataBatch { timestamp: at, sets: sets.into_iter().map(|(k, s)| (k.to_owned(), s)).collect() }
    }

    fn run(b: &DataBatch, schema: Schema, states: &HashMap<u64, SeriesState>, now: i64) -> Encoded {
        let id = identity();
        let cx = Context {
            identity: &id,
            prefix: "custom.googleapis.com/kubernetes.io/",
            schema,
            now,
            min_spacing: MIN_SPACING_MS,
            states,
        };
        encode(b, &cx)
    }

    fn docs(e: &Encoded) -> Vec<serde_json::Value> {
        e.series.iter().map(|s| serde_json::from_str(&s.json).unwrap()).collect()
    }

    fn find<'d>(docs: &'d [serde_json::Value], metric: &str) -> Vec<&'d serde_json::Value> {
        docs.iter().filter(|d| d["metric"]["type"].as_str().unwrap().ends_with(metric)).collect()
    }

    #[test]
    fn stackdriver_maps_a_container_as_heapster_did() {
        let e = run(&batch(T, vec![("c", container(T - 60_000))]), Schema::Stackdriver, &HashMap::new(), T);
        let d = docs(&e);
        let cpu = find(&d, "/container/cpu/core_usage_time")[0];
        assert_eq!(
            cpu,
            &serde_json::json!({
                "metric": {"type": "custom.googleapis.com/kubernetes.io/container/cpu/core_usage_time"},
                "resource": {"type": "k8s_container", "labels": {"project_id": "my-project", "location": "europe-west1",
                    "cluster_name": "prod", "namespace_name": "default", "pod_name": "web-1", "container_name": "web"}},
                "metricKind": "CUMULATIVE", "valueType": "DOUBLE",
                "points": [{"interval": {"startTime": "2026-12-03T10:04:00.000Z", "endTime": "2026-12-03T10:05:00.000Z"},
                    "value": {"doubleValue": 2.5}}]
            })
        );
        let mem = find(&d, "/container/memory/used_bytes");
        assert_eq!(mem.len(), 2);
        let by_type: BTreeMap<&str, &str> = mem
            .iter()
            .map(|m| {
                (
                    m["metric"]["labels"]["memory_type"].as_str().unwrap(),
                    m["points"][0]["value"]["int64Value"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(by_type, BTreeMap::from([("evictable", "400"), ("non-evictable", "600")]));
        let limit = find(&d, "/container/cpu/limit_cores")[0];
        assert_eq!(limit["points"][0]["value"]["doubleValue"], 0.5);
        // A gauge's interval is one instant.
        assert_eq!(limit["points"][0]["interval"]["startTime"], limit["points"][0]["interval"]["endTime"]);
        assert_eq!(e.series.len(), 4);
        assert!(e.dropped.is_empty(), "{:?}", e.dropped);
    }

    #[test]
    fn the_rules_of_a_series_over_time() {
        let created = T - 60_000;
        let b1 = batch(T, vec![("c", container(created))]);
        let e1 = run(&b1, Schema::Stackdriver, &HashMap::new(), T);
        let mut states: HashMap<u64, SeriesState> = e1.series.iter().map(|s| (s.key, s.state)).collect();
        // The same batch again (a retry after a timeout): nothing to write, nothing lost.
        let again = run(&b1, Schema::Stackdriver, &states, T);
        assert!(again.series.is_empty() && again.dropped.is_empty());
        // 3 s later: too close to the last point.
        let close = run(&batch(T + 3_000, vec![("c", container(created))]), Schema::Stackdriver, &states, T);
        assert_eq!(close.dropped.get("too soon after the series' last point (5 s, or min_interval_sec)"), Some(&4));
        // Older than the last point.
        let old = run(&batch(T - 10_000, vec![("c", container(created))]), Schema::Stackdriver, &states, T);
        assert_eq!(old.dropped.get("older than the series' last point"), Some(&4));
        // A minute later the cumulative keeps its start and the end grows.
        let e2 = run(&batch(T + 60_000, vec![("c", container(created))]), Schema::Stackdriver, &states, T + 60_000);
        let d = docs(&e2);
        let cpu = find(&d, "core_usage_time")[0];
        assert_eq!(cpu["points"][0]["interval"]["startTime"], "2026-12-03T10:04:00.000Z");
        assert_eq!(cpu["points"][0]["interval"]["endTime"], "2026-12-03T10:06:00.000Z");
        states.extend(e2.series.iter().map(|s| (s.key, s.state)));
        // A restart whose create time falls before the last end starts right after it.
        let e3 =
            run(&batch(T + 120_000, vec![("c", container(T + 30_000))]), Schema::Stackdriver, &states, T + 120_000);
        let d = docs(&e3);
        assert_eq!(find(&d, "core_usage_time")[0]["points"][0]["interval"]["startTime"], "2026-12-03T10:06:00.001Z");
    }

    #[test]
    fn points_outside_the_window_and_without_a_start_are_counted() {
        let b = batch(T, vec![("c", container(T - 60_000))]);
        let e = run(&b, Schema::Stackdriver, &HashMap::new(), T + MAX_AGE_MS + 1);
        assert_eq!(e.dropped.get("older than 25 hours"), Some(&4));
        assert!(e.series.is_empty());
        let e = run(&b, Schema::Stackdriver, &HashMap::new(), T - MAX_AHEAD_MS - 1);
        assert_eq!(e.dropped.get("more than 5 minutes ahead"), Some(&4));
        let e = run(&batch(T, vec![("c", container(0))]), Schema::Stackdriver, &HashMap::new(), T);
        assert_eq!(e.dropped.get("cumulative without a start time"), Some(&1));
        assert_eq!(e.series.len(), 3);
    }

    #[test]
    fn gcm_writes_the_catalog_on_the_global_resource_with_heapsters_labels() {
        let mut node = MetricSet { create_time: T - 60_000, ..Default::default() };
        node.set_kind(MetricSetType::Node);
        node.labels.insert(l::NODENAME, "n1".to_owned());
        node.labels.insert(l::HOSTNAME, "n1".to_owned());
        node.labels.insert(l::HOST_ID, "i-1".to_owned());
        node.set("cpu/node_capacity", MetricValue::Float(4000.0));
        node.set("memory/usage", MetricValue::Int(5));
        let fs: Labels = [(l::RESOURCE_ID, "/dev/sda1".to_owned())].into_iter().collect();
        node.add_labeled("filesystem/usage", Arc::new(fs), MetricValue::Int(9));
        let b = batch(T, vec![("node:n1", node)]);
        let all = docs(&run(&b, Schema::Gcm { autoscaling_only: false }, &HashMap::new(), T));
        assert_eq!(all.len(), 3);
        let cap = find(&all, "kubernetes.io/cpu/node_capacity")[0];
        assert_eq!(cap["resource"], serde_json::json!({"type": "global", "labels": {"project_id": "my-project"}}));
        assert_eq!(
            cap["metric"]["labels"],
            serde_json::json!({"hostname": "n1", "resource_id": "i-1", "resource_type": "instance"})
        );
        assert_eq!(cap["points"][0]["value"]["doubleValue"], 4000.0);
        let fs = find(&all, "kubernetes.io/filesystem/usage")[0];
        assert_eq!(fs["metric"]["labels"]["resource_id"], "/dev/sda1");
        assert_eq!(fs["metric"]["labels"]["type"], "node");
        let scaling = docs(&run(&b, Schema::Gcm { autoscaling_only: true }, &HashMap::new(), T));
        assert_eq!(scaling.len(), 1);
    }

    #[test]
    fn requests_hold_at_most_200_series() {
        let series: Vec<Series> = (0..450)
            .map(|i| Series {
                key: i,
                state: SeriesState { start: 0, end: 0, created: 0 },
                json: format!("{{\"n\":{i}}}"),
            })
            .collect();
        let r = requests(&series, 200);
        assert_eq!(r.iter().map(|(_, s)| s.len()).collect::<Vec<_>>(), [200, 200, 50]);
        let doc: serde_json::Value = serde_json::from_str(&r[2].0).unwrap();
        assert_eq!(doc["timeSeries"][49]["n"], 449);
    }
}
