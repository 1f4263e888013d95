//! Batches as Prometheus remote-write 1.0 requests: a protobuf `WriteRequest` of `TimeSeries`, each its sorted
//! labels (with `__name__`) and its samples in time order, compressed as one snappy block.
//!
//! Names follow Prometheus' conventions, derived from the catalog: `/` and other characters a name cannot hold
//! become `_`, the unit is spelled out as a suffix (`_bytes`, `_nanoseconds`, `_millicores`), rates of byte and
//! count counters get `_per_second`, and cumulative metrics end in `_total`, so `cpu/usage` is
//! `heapster_cpu_usage_nanoseconds_total`. Values keep heapster's units (nanoseconds stay nanoseconds), so that
//! what PromQL returns is what the model API serves.

use super::config::PrometheusConfig;
use heapster_model::catalog::{self, MetricType, Units};
use heapster_model::{DataBatch, Labels, MetricValue, Timestamp};
use prost::Message as _;
use std::collections::HashMap;

/// `prometheus.WriteRequest` of remote write 1.0 (field 2 and 3 are reserved in 1.0).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// One batch, encoded.
#[derive(Debug, Default)]
pub struct Encoded {
    /// Snappy-compressed `WriteRequest`s of at most `batch_points` samples, with the samples each holds.
    pub bodies: Vec<(Vec<u8>, u64)>,
    /// Samples in `bodies`.
    pub points: usize,
    /// Values left out because another value of the batch has the same series and time after sanitising (two
    /// label names that differ only in a character Prometheus cannot hold): a receiver refuses the whole request
    /// for a duplicate with another value.
    pub duplicates: usize,
}

/// The series of `batch`, merged by label set, without compressing them (what tests read back). The spec orders
/// labels within a series and samples in time, not series: they come in the batch's order.
pub fn series(batch: &DataBatch, config: &PrometheusConfig) -> (Vec<TimeSeries>, usize) {
    use std::hash::BuildHasher as _;
    let hasher = foldhash::fast::FixedState::with_seed(0x5eed);
    let mut names: HashMap<&'static str, String> = HashMap::new();
    let mut all: Vec<(u64, TimeSeries)> = Vec::with_capacity(batch.point_count());
    for set in batch.sets.values() {
        let base = labels(&set.labels, None, config);
        for (name, value) in &set.metrics {
            let ts = one(&mut names, config, name, base.clone(), *value, batch.timestamp);
            all.push((hasher.hash_one(&ts.labels), ts));
        }
        for m in &set.labeled_metrics {
            let l = labels(&set.labels, Some(&m.labels), config);
            let ts = one(&mut names, config, &m.name, l, m.value, batch.timestamp);
            all.push((hasher.hash_one(&ts.labels), ts));
        }
    }
    // One series per label set, as the spec asks. Sorting by the hash compares integers; labels are compared only
    // between series of equal hash, which are nearly always the same series. Then back to the batch's order, in
    // which neighbours share most labels: snappy packs that order into 40% fewer bytes than the hash's.
    let mut all: Vec<(u64, usize, TimeSeries)> = all.into_iter().enumerate().map(|(i, (h, ts))| (h, i, ts)).collect();
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.labels.cmp(&b.2.labels)));
    let mut merged: Vec<(usize, TimeSeries)> = Vec::with_capacity(all.len());
    let mut last_hash = None;
    for (hash, seq, ts) in all {
        match merged.last_mut() {
            Some((_, last)) if last_hash == Some(hash) && last.labels == ts.labels => last.samples.extend(ts.samples),
            _ => merged.push((seq, ts)),
        }
        last_hash = Some(hash);
    }
    merged.sort_unstable_by_key(|(seq, _)| *seq);
    let mut merged: Vec<TimeSeries> = merged.into_iter().map(|(_, ts)| ts).collect();
    let mut duplicates = 0;
    for ts in &mut merged {
        if ts.samples.len() > 1 {
            ts.samples.sort_by_key(|s| s.timestamp);
            let before = ts.samples.len();
            ts.samples.dedup_by_key(|s| s.timestamp);
            duplicates += before - ts.samples.len();
        }
    }
    (merged, duplicates)
}

/// Encodes `batch` into compressed request bodies of at most `batch_points` samples.
pub fn encode(batch: &DataBatch, config: &PrometheusConfig) -> Encoded {
    let (series, duplicates) = series(batch, config);
    let mut enc = Encoded { duplicates, ..Encoded::default() };
    let mut request = WriteRequest::default();
    let mut in_request = 0;
    let mut buf = Vec::new();
    let mut snappy = snap::raw::Encoder::new();
    let mut flush = |request: &mut WriteRequest, n: usize, enc: &mut Encoded| {
        if n == 0 {
            return;
        }
        buf.clear();
        request.encode(&mut buf).expect("a Vec grows as needed");
        let body = snappy.compress_vec(&buf).expect("snappy takes any input under 4 GiB");
        enc.bodies.push((body, n as u64));
        enc.points += n;
        request.timeseries.clear();
    };
    for ts in series {
        // One batch holds one sample per series, so a series never straddles two requests in practice; if
        // it did, each request would still hold its part in time order.
        in_request += ts.samples.len();
        request.timeseries.push(ts);
        if in_request >= config.batch_points {
            flush(&mut request, in_request, &mut enc);
            in_request = 0;
        }
    }
    flush(&mut request, in_request, &mut enc);
    enc
}

fn one(
    names: &mut HashMap<&'static str, String>,
    config: &PrometheusConfig,
    metric: &str,
    mut labels: Vec<Label>,
    value: MetricValue,
    ts: Timestamp,
) -> TimeSeries {
    let name = match catalog::find(metric) {
        Some(d) => names.entry(d.name).or_insert_with(|| metric_name(&config.prefix, metric)).clone(),
        None => metric_name(&config.prefix, metric),
    };
    // `labels` is sorted by name already: `__name__` goes in its place.
    let at = labels.partition_point(|l| l.name.as_str() < "__name__");
    labels.insert(at, Label { name: "__name__".into(), value: name });
    TimeSeries { labels, samples: vec![Sample { value: value.as_f64(), timestamp: ts }] }
}

/// The Prometheus name of a heapster metric: `prefix`, the name with what a name cannot hold as `_`, the unit,
/// and `_total` for counters. Metrics outside the catalog (`custom/...`) get no unit or type suffix.
pub fn metric_name(prefix: &str, metric: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + metric.len() + 20);
    for c in prefix.chars().chain(metric.chars()) {
        s.push(if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' });
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    let Some(d) = catalog::find(metric) else { return s };
    let unit = match d.units {
        Units::Count => "",
        Units::Bytes => "_bytes",
        Units::Milliseconds => "_milliseconds",
        Units::Microseconds => "_microseconds",
        Units::Nanoseconds => "_nanoseconds",
        Units::Millicores => "_millicores",
        Units::Ratio => "_ratio",
    };
    if !s.ends_with(unit) {
        s.push_str(unit);
    }
    // A rate is per second, except cpu/usage_rate, whose millicores already are one.
    if d.rate_of.is_some() && d.units != Units::Millicores {
        s.push_str("_per_second");
    }
    if d.metric_type == MetricType::Cumulative && !s.ends_with("_total") {
        s.push_str("_total");
    }
    s
}

/// A label name as Prometheus takes it: letters, digits and `_`, not first a digit.
pub fn label_name(name: &str) -> String {
    let mut s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// The labels of one series: the set's, the metric's own (which win on a clash), `cluster_name` and the extra
/// ones, sorted by name. Empty values are left out: the spec forbids them (Prometheus reads an empty label as an absent one).
fn labels(set: &Labels, metric: Option<&Labels>, config: &PrometheusConfig) -> Vec<Label> {
    let mut out: Vec<Label> = Vec::with_capacity(set.len() + 4);
    let own = set.iter().filter(|(k, _)| metric.is_none_or(|m| !m.contains_key(k)));
    for (k, v) in own.chain(metric.into_iter().flatten()) {
        if v.is_empty() || &**k == heapster_model::labels::CLUSTER_NAME {
            continue;
        }
        let mut name = label_name(k);
        if name.starts_with("__") {
            // `__` names are Prometheus' own; a label of ours must not pass for one.
            name.insert_str(0, "heapster");
        }
        out.push(Label { name, value: v.to_string() });
    }
    if !config.cluster_name.is_empty() {
        out.push(Label { name: "cluster_name".into(), value: config.cluster_name.clone() });
    }
    for (k, v) in &config.extra_labels {
        out.retain(|l| l.name != *k);
        if !v.is_empty() {
            out.push(Label { name: k.clone(), value: v.clone() });
        }
    }
    // Sorted by name, each name once: two names that differ only in a character Prometheus cannot hold would
    // otherwise repeat a label, which the spec forbids; the first (in heapster's order) stays.
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|b, a| a.name == b.name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::{LabeledMetric, MetricSet};
    use std::sync::Arc;

    fn config(sink: &str) -> PrometheusConfig {
        let uri = sink.parse().unwrap();
        PrometheusConfig::from_options(
            &heapster_model::Options::new("--sink", &uri, super::super::config::OPTIONS).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        let n = |m: &str| metric_name("heapster_", m);
        assert_eq!(n("cpu/usage"), "heapster_cpu_usage_nanoseconds_total");
        assert_eq!(n("cpu/usage_rate"), "heapster_cpu_usage_rate_millicores");
        assert_eq!(n("memory/usage"), "heapster_memory_usage_bytes");
        assert_eq!(n("memory/page_faults"), "heapster_memory_page_faults_total");
        assert_eq!(n("memory/page_faults_rate"), "heapster_memory_page_faults_rate_per_second");
        assert_eq!(n("network/rx_rate"), "heapster_network_rx_rate_bytes_per_second");
        assert_eq!(n("uptime"), "heapster_uptime_milliseconds_total");
        assert_eq!(n("filesystem/usage"), "heapster_filesystem_usage_bytes");
        assert_eq!(n("custom/http-requests.5xx"), "heapster_custom_http_requests_5xx");
        assert_eq!(metric_name("", "custom/x"), "custom_x");
        assert_eq!(label_name("pod.name-x"), "pod_name_x");
        assert_eq!(label_name("9lives"), "_9lives");
        // Two names that sanitise alike: one label, the first in heapster's (name) order.
        let mut set = Labels::default();
        set.insert("a.b", "1");
        set.insert("a-b", "2");
        let got = labels(&set, None, &config("prometheus:http://h/w?cluster_name="));
        assert_eq!(got, [Label { name: "a_b".into(), value: "2".into() }]);
    }

    fn batch() -> DataBatch {
        let mut pod = MetricSet::default();
        for (k, v) in [("type", "pod_container"), ("pod_name", "web-1"), ("container_base_image", ""), ("x.y", "1")] {
            pod.labels.insert(k, v);
        }
        pod.set("cpu/usage", MetricValue::Int(123_456_789));
        pod.set("memory/usage", MetricValue::Int(1 << 20));
        let mut fs = Labels::default();
        fs.insert("resource_id", "/dev/sda1");
        pod.labeled_metrics.push(LabeledMetric {
            name: "filesystem/usage".into(),
            labels: Arc::new(fs),
            value: MetricValue::Int(42),
        });
        // Two label names that sanitise to the same (`x.y` and `x_y`, same value): one series, one sample.
        let mut twin = pod.clone();
        twin.labels.remove("x.y");
        twin.labels.insert("x_y", "1");
        DataBatch { timestamp: 1_700_000_000_000, sets: [("a".into(), pod), ("b".into(), twin)].into() }
    }

    fn text(ts: &TimeSeries) -> String {
        let l: Vec<String> = ts.labels.iter().map(|l| format!("{}={}", l.name, l.value)).collect();
        let s: Vec<String> = ts.samples.iter().map(|s| format!("{}@{}", s.value, s.timestamp)).collect();
        format!("{{{}}} {}", l.join(","), s.join(" "))
    }

    #[test]
    fn one_sorted_series_per_label_set() {
        let (series, duplicates) = series(&batch(), &config("prometheus:http://h/w?labels=replica:a"));
        let mut got: Vec<String> = series.iter().map(text).collect();
        got.sort();
        assert_eq!(
            got,
            [
                "{__name__=heapster_cpu_usage_nanoseconds_total,cluster_name=default,pod_name=web-1,replica=a,\
                 type=pod_container,x_y=1} 123456789@1700000000000",
                "{__name__=heapster_filesystem_usage_bytes,cluster_name=default,pod_name=web-1,replica=a,\
                 resource_id=/dev/sda1,type=pod_container,x_y=1} 42@1700000000000",
                "{__name__=heapster_memory_usage_bytes,cluster_name=default,pod_name=web-1,replica=a,\
                 type=pod_container,x_y=1} 1048576@1700000000000",
            ]
        );
        assert_eq!(duplicates, 3);
    }

    #[test]
    fn bodies_are_snappy_protobuf_cut_by_points() {
        let enc = encode(&batch(), &config("prometheus:http://h/w?batch_points=2"));
        assert_eq!(enc.bodies.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(enc.points, 3);
        let mut names = Vec::new();
        for (body, n) in &enc.bodies {
            let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
            let req = WriteRequest::decode(raw.as_slice()).unwrap();
            assert_eq!(req.timeseries.len() as u64, *n);
            names.extend(req.timeseries.iter().map(|ts| ts.labels[0].value.clone()));
        }
        names.sort();
        let want =
            ["heapster_cpu_usage_nanoseconds_total", "heapster_filesystem_usage_bytes", "heapster_memory_usage_bytes"];
        assert_eq!(names, want);
    }
}
