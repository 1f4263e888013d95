//! Batches as OTLP `ExportMetricsServiceRequest`s, as an operator reading them next to the OpenTelemetry
//! collector's Kubernetes receivers expects:
//!
//! - **One resource per metric set**, its attributes from the set's labels in the Kubernetes semantic
//!   conventions: `nodename` is `k8s.node.name`, `namespace_name` `k8s.namespace.name`, `pod_name` `k8s.pod.name`,
//!   `pod_id` `k8s.pod.uid`, a pod container's `container_name` `k8s.container.name`, `hostname` `host.name`,
//!   `host_id` `host.id`, the pod's or node's `labels` one `k8s.pod.label.<key>` / `k8s.node.label.<key>` each,
//!   `cluster_name=` `k8s.cluster.name`; the set type is `heapster.type` (`pod_container`, `pod`, `ns`, `node`,
//!   `sys_container`, `cluster`), and any other label `heapster.<label>` (a system container's name is
//!   `heapster.container_name`: it is no container of a pod).
//! - **Names from heapster's**, `/` as `.` after the prefix: `cpu/usage` is `heapster.cpu.usage`,
//!   `filesystem/usage` `heapster.filesystem.usage`. The same name for a node's, a pod's and a container's value,
//!   as the resource says which it is; the unit is in the `unit` field (UCUM: `ns`, `By`, `By/s`, `{millicore}`).
//! - **Types from the catalog**: a cumulative metric is a monotonic `Sum`, `AGGREGATION_TEMPORALITY_CUMULATIVE`,
//!   starting at the set's creation time (the container's or pod's start: a restart shows as a new start time, so
//!   backends compute rates across it correctly); gauges and rates are `Gauge`s. Integer metrics are `as_int`
//!   points, float ones `as_double`.
//! - **Labelled metrics** (filesystems, disks, accelerators) are one metric per name and set, with one point per
//!   device, its labels (`resource_id`, `make`, `model`, `accelerator_id`) as the point's attributes.

use super::config::OtlpConfig;
use super::proto::{
    AggregationTemporality, Data, Gauge, InstrumentationScope, KeyValue, Metric, NumberDataPoint, Resource,
    ResourceMetrics, ScopeMetrics, Sum, Value,
};
use heapster_model::catalog::{CATALOG, MetricDescriptor, MetricType, Units, ValueType};
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, Timestamp, labels};
use std::collections::HashMap;

/// What the encoder says of one catalog metric, worked out once per sink rather than once per point.
#[derive(Debug, Clone)]
struct Shape {
    name: String,
    unit: &'static str,
    description: &'static str,
    cumulative: bool,
    int: bool,
}

/// Turns batches into request bodies; built once per sink.
#[derive(Debug, Clone)]
pub struct Encoder {
    config: OtlpConfig,
    shapes: HashMap<&'static str, Shape>,
    scope: InstrumentationScope,
}

/// One batch, encoded.
#[derive(Debug, Default)]
pub struct Encoded {
    /// Protobuf `ExportMetricsServiceRequest`s (not compressed), with the data points each holds.
    pub bodies: Vec<(Vec<u8>, u64)>,
    /// Data points in `bodies`.
    pub points: usize,
}

impl Encoder {
    pub fn new(config: &OtlpConfig) -> Encoder {
        let shapes = CATALOG
            .iter()
            .map(|d| {
                let shape = Shape {
                    name: metric_name(&config.prefix, d.name),
                    unit: unit(d),
                    description: d.description,
                    cumulative: d.metric_type == MetricType::Cumulative,
                    int: d.value_type == ValueType::Int64,
                };
                (d.name, shape)
            })
            .collect();
        let scope = InstrumentationScope { name: "heapster".into(), version: env!("CARGO_PKG_VERSION").into() };
        Encoder { config: config.clone(), shapes, scope }
    }

    /// Encodes `batch` into bodies of at most `batch_points` points and `max_body_bytes` bytes. A set whose
    /// metrics do not fit the room left in a body goes on in the next one, under the same resource; only a
    /// single metric with more points than the bound (a node with more disks than `batch_points`) makes a larger
    /// body.
    pub fn encode(&self, batch: &DataBatch) -> Encoded {
        let mut bodies = Cutter::new(self.config.batch_points, self.config.max_body_bytes);
        for set in batch.sets.values() {
            let resource = self.resource(set);
            let mut rest = self.metrics(set, batch.timestamp).into_iter().peekable();
            while rest.peek().is_some() {
                let room = bodies.room();
                let (mut chunk, mut n) = (Vec::new(), 0);
                while let Some(m) = rest.next_if(|m| chunk.is_empty() || n + points(m) <= room) {
                    n += points(&m);
                    chunk.push(m);
                }
                bodies.push(&self.resource_metrics(resource.clone(), chunk), n);
            }
        }
        bodies.finish()
    }

    /// One set as one `ResourceMetrics` (what the tests compare with what a receiver decoded).
    pub fn set(&self, set: &MetricSet, ts: Timestamp) -> ResourceMetrics {
        self.resource_metrics(self.resource(set), self.metrics(set, ts))
    }

    fn resource_metrics(&self, resource: Resource, metrics: Vec<Metric>) -> ResourceMetrics {
        ResourceMetrics {
            resource: Some(resource),
            scope_metrics: vec![ScopeMetrics { scope: Some(self.scope.clone()), metrics, schema_url: String::new() }],
            schema_url: String::new(),
        }
    }

    /// The set's labels as resource attributes (see the module's doc), each key once.
    fn resource(&self, set: &MetricSet) -> Resource {
        let kind = set.set_type().unwrap_or_default();
        let mut attributes = Vec::with_capacity(set.labels.len() + 4);
        if !self.config.cluster_name.is_empty() {
            attributes.push(KeyValue::string("k8s.cluster.name", &self.config.cluster_name));
        }
        for (k, v) in set.labels.iter() {
            if v.is_empty() {
                continue;
            }
            let key: &str = k;
            let semconv = match key {
                labels::TYPE => "heapster.type",
                labels::NODENAME => "k8s.node.name",
                labels::HOSTNAME => "host.name",
                labels::HOST_ID => "host.id",
                labels::NAMESPACE_NAME | labels::POD_NAMESPACE => "k8s.namespace.name",
                labels::POD_NAME => "k8s.pod.name",
                labels::POD_ID => "k8s.pod.uid",
                labels::CONTAINER_NAME if kind == "pod_container" => "k8s.container.name",
                labels::CLUSTER_NAME if !self.config.cluster_name.is_empty() => continue,
                labels::CLUSTER_NAME => "k8s.cluster.name",
                labels::LABELS => {
                    let object = match kind {
                        "pod" | "pod_container" => Some("k8s.pod.label."),
                        "node" => Some("k8s.node.label."),
                        _ => None,
                    };
                    match object.and_then(|o| kubernetes_labels(v).map(|l| (o, l))) {
                        Some((object, pairs)) => {
                            attributes.extend(pairs.map(|(k, v)| KeyValue::string(format!("{object}{k}"), v)));
                            continue;
                        }
                        None => "heapster.labels",
                    }
                }
                _ => {
                    attributes.push(KeyValue::string(format!("heapster.{key}"), v));
                    continue;
                }
            };
            attributes.push(KeyValue::string(semconv, v));
        }
        // Attribute keys must be unique; `namespace_name` and `pod_namespace` both say the namespace.
        attributes.sort_by(|a, b| a.key.cmp(&b.key));
        attributes.dedup_by(|b, a| a.key == b.key);
        Resource { attributes, dropped_attributes_count: 0 }
    }

    /// The set's metrics: unlabelled ones in name order, then one per labelled name, with a point per label set.
    fn metrics(&self, set: &MetricSet, ts: Timestamp) -> Vec<Metric> {
        let time = nanos(ts);
        let start = if set.create_time > 0 { nanos(set.create_time.min(ts)) } else { 0 };
        let mut out: Vec<Metric> = Vec::with_capacity(set.metrics.len() + set.labeled_metrics.len());
        for (name, value) in &set.metrics {
            out.push(self.metric(name, None, *value, start, time));
        }
        let labelled_from = out.len();
        for m in &set.labeled_metrics {
            let point = self.point(&m.name, Some(&m.labels), m.value, start, time);
            let name = self.shapes.get(&*m.name).map(|s| s.name.clone());
            let name = name.unwrap_or_else(|| metric_name(&self.config.prefix, &m.name));
            match out[labelled_from..].iter_mut().find(|o| o.name == name) {
                Some(Metric { data: Some(Data::Gauge(Gauge { data_points })), .. })
                | Some(Metric { data: Some(Data::Sum(Sum { data_points, .. })), .. }) => data_points.push(point),
                _ => out.push(self.metric(&m.name, Some(&m.labels), m.value, start, time)),
            }
        }
        out
    }

    fn metric(&self, metric: &str, labels: Option<&Labels>, value: MetricValue, start: u64, time: u64) -> Metric {
        let point = self.point(metric, labels, value, start, time);
        let Some(shape) = self.shapes.get(metric) else {
            // Outside the catalog (`custom/...`): a gauge of whatever type the value has.
            let data = Some(Data::Gauge(Gauge { data_points: vec![point] }));
            return Metric { name: metric_name(&self.config.prefix, metric), data, ..Metric::default() };
        };
        let data = if shape.cumulative {
            Data::Sum(Sum {
                data_points: vec![point],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })
        } else {
            Data::Gauge(Gauge { data_points: vec![point] })
        };
        Metric {
            name: shape.name.clone(),
            description: shape.description.into(),
            unit: shape.unit.into(),
            data: Some(data),
        }
    }

    fn point(
        &self,
        metric: &str,
        labels: Option<&Labels>,
        value: MetricValue,
        start: u64,
        time: u64,
    ) -> NumberDataPoint {
        let shape = self.shapes.get(metric);
        let value = match (shape.map(|s| s.int), value) {
            (Some(true), v) | (None, v @ MetricValue::Int(_)) => Value::AsInt(match v {
                MetricValue::Int(i) => i,
                MetricValue::Float(f) => f.round() as i64,
            }),
            (_, v) => Value::AsDouble(v.as_f64()),
        };
        let attributes = labels
            .into_iter()
            .flat_map(|l| l.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| KeyValue::string(&**k, v))
            .collect();
        NumberDataPoint {
            attributes,
            // Only a cumulative value has a start; a gauge's is left unset, as the data model says.
            start_time_unix_nano: if shape.is_some_and(|s| s.cumulative) { start } else { 0 },
            time_unix_nano: time,
            value: Some(value),
            flags: 0,
        }
    }
}

/// Encoded `ResourceMetrics` (field 1 of the request, so a body is their concatenation) gathered into bodies.
struct Cutter {
    max_points: usize,
    max_bytes: usize,
    out: Encoded,
    body: Vec<u8>,
    in_body: usize,
}

impl Cutter {
    fn new(max_points: usize, max_bytes: usize) -> Cutter {
        Cutter { max_points: max_points.max(1), max_bytes, out: Encoded::default(), body: Vec::new(), in_body: 0 }
    }

    /// Points the open body can still take.
    fn room(&self) -> usize {
        self.max_points - self.in_body
    }

    fn push(&mut self, rm: &ResourceMetrics, points: usize) {
        if self.in_body > 0 && self.in_body + points > self.max_points {
            self.close();
        }
        // Encoded in place, then moved to a body of its own if it took this one past its size: sizing it first
        // would walk every point once more.
        let start = self.body.len();
        prost::encoding::message::encode(1, rm, &mut self.body);
        if self.body.len() > self.max_bytes && start > 0 {
            let tail = self.body.split_off(start);
            self.close();
            self.body = tail;
        }
        self.in_body += points;
        if self.in_body >= self.max_points || self.body.len() >= self.max_bytes {
            self.close();
        }
    }

    fn close(&mut self) {
        if self.in_body > 0 {
            self.out.bodies.push((std::mem::take(&mut self.body), self.in_body as u64));
            self.out.points += self.in_body;
            self.in_body = 0;
        }
    }

    fn finish(mut self) -> Encoded {
        self.close();
        self.out
    }
}

fn points(m: &Metric) -> usize {
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        None => 0,
    }
}

fn nanos(ms: Timestamp) -> u64 {
    (ms.max(0) as u64).saturating_mul(1_000_000)
}

/// The OTLP name of a heapster metric: `prefix`, then the name with `/` as `.` and what an instrument name
/// cannot hold as `_`; a name must start with a letter, so one that would not gets an `m` first.
pub fn metric_name(prefix: &str, metric: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + metric.len());
    for c in prefix.chars().chain(metric.chars().map(|c| if c == '/' { '.' } else { c })) {
        s.push(if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/') { c } else { '_' });
    }
    if !s.is_empty() && !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.insert(0, 'm');
    }
    s
}

/// The UCUM unit of a catalog metric; a rate is per second, except `cpu/usage_rate`, whose millicores already
/// are one.
pub fn unit(d: &MetricDescriptor) -> &'static str {
    let rate = d.rate_of.is_some();
    match (d.units, rate) {
        (Units::Millicores, _) => "{millicore}",
        (Units::Count, false) => "{count}",
        (Units::Count, true) => "{count}/s",
        (Units::Bytes, false) => "By",
        (Units::Bytes, true) => "By/s",
        (Units::Milliseconds, false) => "ms",
        (Units::Milliseconds, true) => "ms/s",
        (Units::Microseconds, false) => "us",
        (Units::Microseconds, true) => "us/s",
        (Units::Nanoseconds, false) => "ns",
        (Units::Nanoseconds, true) => "ns/s",
        (Units::Ratio, _) => "1",
    }
}

/// The `key:value` pairs of heapster's `labels` label, whatever `--label_separator` joined them with: neither
/// a Kubernetes label key nor its value can hold anything but letters, digits and `-_./` (and the key's `:`
/// separator), so any other character separates pairs. `None` when a pair is not `key:value`.
fn kubernetes_labels(joined: &str) -> Option<impl Iterator<Item = (&str, &str)>> {
    let part = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':');
    let pairs: Option<Vec<(&str, &str)>> =
        joined.split(|c| !part(c)).filter(|p| !p.is_empty()).map(|p| p.split_once(':')).collect();
    pairs.map(Vec::into_iter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::proto::ExportMetricsServiceRequest;
    use heapster_model::catalog;
    use heapster_model::{LabeledMetric, Options};
    use prost::Message as _;

    fn encoder(sink: &str) -> Encoder {
        let uri = sink.parse().unwrap();
        Encoder::new(
            &OtlpConfig::from_options(&Options::new("--sink", &uri, super::super::config::OPTIONS).unwrap()).unwrap(),
        )
    }

    #[test]
    fn names_and_units_follow_heapsters_names_and_ucum() {
        let u = |m: &str| unit(catalog::find(m).unwrap());
        assert_eq!(metric_name("heapster.", "cpu/usage"), "heapster.cpu.usage");
        assert_eq!(metric_name("heapster.", "memory/working_set"), "heapster.memory.working_set");
        assert_eq!(metric_name("heapster.", "custom/http requests:5xx"), "heapster.custom.http_requests_5xx");
        assert_eq!(metric_name("", "9lives"), "m9lives");
        assert_eq!((u("cpu/usage"), u("cpu/usage_rate"), u("memory/usage")), ("ns", "{millicore}", "By"));
        assert_eq!((u("network/rx_rate"), u("memory/page_faults_rate"), u("uptime")), ("By/s", "{count}/s", "ms"));
        assert_eq!((u("memory/page_faults"), u("cpu/node_utilization")), ("{count}", "1"));
        fn pairs(s: &str) -> Option<Vec<(&str, &str)>> {
            kubernetes_labels(s).map(|i| i.collect())
        }
        assert_eq!(
            pairs("app:web,app.kubernetes.io/tier:front"),
            Some(vec![("app", "web"), ("app.kubernetes.io/tier", "front")])
        );
        assert_eq!(pairs("app:web;tier:"), Some(vec![("app", "web"), ("tier", "")]));
        assert_eq!(pairs("app,web"), None);
    }

    fn set(pairs: &[(&'static str, &str)]) -> MetricSet {
        let mut s = MetricSet::default();
        for (k, v) in pairs {
            s.labels.insert(*k, v.to_string());
        }
        s
    }

    fn attributes(rm: &ResourceMetrics) -> Vec<(String, String)> {
        let r = rm.resource.as_ref().unwrap();
        r.attributes.iter().map(|kv| (kv.key.clone(), kv.as_str().unwrap().to_owned())).collect()
    }

    #[test]
    fn resources_speak_the_kubernetes_semantic_conventions() {
        let e = encoder("otlp:http://h?cluster_name=prod");
        let mut c = set(&[
            ("type", "pod_container"),
            ("nodename", "n1"),
            ("hostname", "n1.example"),
            ("namespace_name", "default"),
            ("pod_namespace", "default"),
            ("pod_name", "web-1"),
            ("pod_id", "uid-1"),
            ("container_name", "nginx"),
            ("container_base_image", "nginx:1.25"),
            ("labels", "app:web,tier:front"),
            ("cluster_name", "ignored"),
            ("pod_ip", ""),
        ]);
        c.create_time = 1_000;
        let got = attributes(&e.set(&c, 2_000));
        let want = [
            ("heapster.container_base_image", "nginx:1.25"),
            ("heapster.type", "pod_container"),
            ("host.name", "n1.example"),
            ("k8s.cluster.name", "prod"),
            ("k8s.container.name", "nginx"),
            ("k8s.namespace.name", "default"),
            ("k8s.node.name", "n1"),
            ("k8s.pod.label.app", "web"),
            ("k8s.pod.label.tier", "front"),
            ("k8s.pod.name", "web-1"),
            ("k8s.pod.uid", "uid-1"),
        ];
        assert_eq!(got, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
        // A system container is no container of a pod; a node's labels are the node's.
        let sys = set(&[("type", "sys_container"), ("nodename", "n1"), ("container_name", "kubelet")]);
        let e = encoder("otlp:http://h?cluster_name=");
        let got = attributes(&e.set(&sys, 2_000));
        assert_eq!(got[0], ("heapster.container_name".into(), "kubelet".into()));
        let node = set(&[("type", "node"), ("labels", "zone:a"), ("cluster_name", "c1")]);
        let got = attributes(&e.set(&node, 2_000));
        assert!(got.contains(&("k8s.node.label.zone".into(), "a".into())), "{got:?}");
        assert!(got.contains(&("k8s.cluster.name".into(), "c1".into())), "{got:?}");
        let ns = set(&[("type", "ns"), ("labels", "not pairs")]);
        assert!(attributes(&e.set(&ns, 2_000)).contains(&("heapster.labels".into(), "not pairs".into())));
    }

    #[test]
    fn cumulative_metrics_are_monotonic_sums_from_the_start_time_and_gauges_keep_their_catalog_type() {
        let e = encoder("otlp:http://h");
        let mut s = set(&[("type", "pod")]);
        s.create_time = 1_700_000_000_000;
        s.set("cpu/usage", MetricValue::Int(5));
        s.set("cpu/usage_rate", MetricValue::Float(250.4));
        s.set("cpu/node_utilization", MetricValue::Float(0.5));
        s.metrics.insert("custom/qps", MetricValue::Float(1.5));
        for dev in ["/dev/sda1", "/dev/sdb1"] {
            s.labeled_metrics.push(LabeledMetric {
                name: "filesystem/usage".into(),
                labels: heapster_model::labels::resource_id(dev),
                value: MetricValue::Int(dev.len() as i64),
            });
        }
        let rm = e.set(&s, 1_700_000_015_000);
        let metrics = &rm.scope_metrics[0].metrics;
        let by = |n: &str| metrics.iter().find(|m| m.name == n).unwrap_or_else(|| panic!("{n}: {metrics:?}"));
        let Some(Data::Sum(sum)) = &by("heapster.cpu.usage").data else { panic!() };
        assert_eq!((sum.aggregation_temporality, sum.is_monotonic), (AggregationTemporality::Cumulative as i32, true));
        let p = &sum.data_points[0];
        assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (1_700_000_000_000_000_000, 1_700_000_015_000_000_000));
        assert_eq!(p.value, Some(Value::AsInt(5)));
        let Some(Data::Gauge(g)) = &by("heapster.cpu.usage_rate").data else { panic!() };
        assert_eq!((g.data_points[0].value, g.data_points[0].start_time_unix_nano), (Some(Value::AsInt(250)), 0));
        let Some(Data::Gauge(g)) = &by("heapster.cpu.node_utilization").data else { panic!() };
        assert_eq!(g.data_points[0].value, Some(Value::AsDouble(0.5)));
        let custom = by("heapster.custom.qps");
        assert_eq!((custom.unit.as_str(), custom.description.as_str()), ("", ""));
        let fs = by("heapster.filesystem.usage");
        assert_eq!(
            (fs.unit.as_str(), fs.description.as_str()),
            ("By", catalog::find("filesystem/usage").unwrap().description)
        );
        let Some(Data::Gauge(g)) = &fs.data else { panic!() };
        let devices: Vec<_> = g
            .data_points
            .iter()
            .map(|p| (p.attributes[0].key.as_str(), p.attributes[0].as_str().unwrap(), p.value))
            .collect();
        assert_eq!(
            devices,
            [("resource_id", "/dev/sda1", Some(Value::AsInt(9))), ("resource_id", "/dev/sdb1", Some(Value::AsInt(9)))]
        );
        assert_eq!(metrics.len(), 5, "one metric per name: {metrics:?}");
        // No creation time known: no start time.
        s.create_time = 0;
        let rm = e.set(&s, 1_700_000_015_000);
        let usage = rm.scope_metrics[0].metrics.iter().find(|m| m.name == "heapster.cpu.usage").unwrap();
        let Some(Data::Sum(sum)) = &usage.data else { panic!() };
        assert_eq!(sum.data_points[0].start_time_unix_nano, 0);
    }

    #[test]
    fn bodies_are_cut_by_points_keeping_a_sets_resource_on_each_part() {
        let mut b = DataBatch { timestamp: 1_700_000_000_000, ..Default::default() };
        for (key, n) in [("a", 3), ("b", 4)] {
            let mut s = set(&[("type", "node"), ("nodename", key)]);
            for d in CATALOG.iter().filter(|d| !d.labeled).take(n) {
                s.set(d.name, MetricValue::Int(1));
            }
            b.sets.insert(key.into(), s);
        }
        let enc = encoder("otlp:http://h?batch_points=5").encode(&b);
        assert_eq!(enc.bodies.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [5, 2]);
        assert_eq!(enc.points, 7);
        let nodes: Vec<Vec<(String, usize)>> = enc
            .bodies
            .iter()
            .map(|(body, n)| {
                let req = ExportMetricsServiceRequest::decode(body.as_slice()).unwrap();
                let parts: Vec<(String, usize)> = req
                    .resource_metrics
                    .iter()
                    .map(|rm| {
                        let node = attributes(rm).into_iter().find(|(k, _)| k == "k8s.node.name").unwrap().1;
                        (node, rm.scope_metrics[0].metrics.iter().map(points).sum())
                    })
                    .collect();
                assert_eq!(parts.iter().map(|p| p.1).sum::<usize>() as u64, *n);
                parts
            })
            .collect();
        assert_eq!(nodes, [vec![("a".into(), 3), ("b".into(), 2)], vec![("b".into(), 2)]]);
        // And by bytes: a bound below one set's size gives each set a body of its own.
        let mut e = encoder("otlp:http://h");
        e.config.max_body_bytes = 10;
        let enc = e.encode(&b);
        assert_eq!(enc.bodies.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [3, 4]);
    }
}
