//! The fuzz targets: each decodes bytes the way heapster meets them, and must answer with an error, never a panic.

use crate::Target;
use heapster_api::historical::{Aggregation, aggregation_result};
use heapster_api::metrics_api::selector::{FieldSelector, LabelSelector};
use heapster_api::types::{MetricResult, ValueStyle};
use heapster_model::options::Options;
use heapster_model::uri::SpecUri;
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue};
use heapster_sinks::influxdb::historical::{column_strings, parse_buckets, parse_results, parse_samples};
use heapster_sinks::spool::{codec, record};
use heapster_sources::{cadvisor, kubelet};
use std::sync::Arc;
use std::time::Duration;

/// Every target, in the order `scripts/fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "spool_record",
        seeds: spool_segments,
        fixtures: &[],
        run: spool_record,
        dictionary: &["HSRC", "hspool"],
    },
    Target { name: "spool_batch", seeds: spool_batches, fixtures: &[], run: spool_batch, dictionary: &[] },
    Target {
        name: "kubelet_summary",
        seeds: Vec::new,
        fixtures: &[
            "kubelet_stats_summary_legacy_no_pod_cpu.json",
            "kubelet_stats_summary_k8s1.16_docker_cgroupv1.json",
        ],
        run: kubelet_summary,
        dictionary: &[
            "\"node\":",
            "\"pods\":",
            "\"podRef\":",
            "\"containers\":",
            "\"cpu\":",
            "\"memory\":",
            "\"fs\":",
            "\"network\":",
            "\"interfaces\":",
            "\"volume\":",
            "\"startTime\":",
            "\"time\":",
            "\"usageNanoCores\":",
            "\"systemContainers\":",
            "null",
            "[]",
            "{}",
            "\"2017-01-01T00:00:00Z\"",
        ],
    },
    Target {
        name: "cadvisor",
        seeds: Vec::new,
        fixtures: &["cadvisor_v1.3_machine_k8s1.2.json"],
        run: cadvisor_json,
        dictionary: &[
            "\"name\":",
            "\"aliases\":",
            "\"spec\":",
            "\"stats\":",
            "\"timestamp\":",
            "\"cpu\":",
            "\"usage\":",
            "\"per_cpu_usage\":",
            "\"filesystem\":",
            "\"labels\":",
            "\"num_cores\":",
            "null",
            "[]",
            "{}",
        ],
    },
    Target {
        name: "source_sink_uri",
        seeds: Vec::new,
        fixtures: &[],
        run: source_sink_uri,
        dictionary: &[
            "?",
            "&",
            "=",
            ":",
            "//",
            "%",
            "%zz",
            "kubernetes.summary_api:",
            "influxdb:",
            "cadvisor:",
            "local",
            "inClusterConfig=",
            "useServiceAccount=",
            "kubeletPort=",
            "kubeletHttps=",
            "timeout=",
            "db=",
            "withfields=",
            "hostsFile=",
            "standalone=",
            "true",
            "false",
            "10s",
            "-1",
            "18446744073709551616",
        ],
    },
    Target {
        name: "selector",
        seeds: selectors,
        fixtures: &[],
        run: selector,
        dictionary: &[
            ",",
            " ",
            "!",
            "=",
            "==",
            "!=",
            ">",
            "<",
            "(",
            ")",
            " in ",
            " notin ",
            "app",
            "example.com/",
            "/",
            "-",
            "_",
            ".",
            "\\",
            "\\,",
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "9223372036854775808",
            "a123456789012345678901234567890123456789012345678901234567890bc",
        ],
    },
    Target {
        name: "influxql_answer",
        seeds: influxql_answers,
        fixtures: &[],
        run: influxql_answer,
        dictionary: &[
            "\"results\":",
            "\"statement_id\":",
            "\"series\":",
            "\"name\":",
            "\"columns\":",
            "\"values\":",
            "\"tags\":",
            "\"error\":",
            "\"database not found: k8s\"",
            "\"time\"",
            "\"value\"",
            "[1700000000000,1]",
            "9223372036854775807",
            "-9223372036854775808",
            "1.7976931348623157e308",
            "null",
            "[]",
            "{}",
        ],
    },
];

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn sample_batch(ts: i64) -> DataBatch {
    let mut set = MetricSet { create_time: 5, scrape_time: ts - 1, ..Default::default() };
    set.labels.insert("type", "pod");
    set.labels.insert("pod_name", "web-0");
    set.set("uptime", MetricValue::Int(ts));
    set.set("cpu/usage_rate", MetricValue::Float(12.5));
    let fs: Arc<Labels> = Arc::new([("resource_id".to_string(), "/dev/sda1".to_string())].into());
    set.add_labeled("filesystem/usage", fs.clone(), MetricValue::Int(7));
    set.add_labeled("filesystem/limit", fs, MetricValue::Int(i64::MAX));
    DataBatch { timestamp: ts, sets: [("namespace:a/pod:web-0".to_string(), set)].into() }
}

fn spool_batches() -> Vec<Vec<u8>> {
    [1, 1_700_000_000_000]
        .into_iter()
        .map(|ts| {
            let mut out = Vec::new();
            codec::encode(&sample_batch(ts), &mut out);
            out
        })
        .chain([codec_empty()])
        .collect()
}

fn codec_empty() -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode(&DataBatch::default(), &mut out);
    out
}

/// Segments of the current format (three records) and of the unversioned one before it.
fn spool_segments() -> Vec<Vec<u8>> {
    let mut current = record::segment_header().to_vec();
    let mut v1 = Vec::new();
    for (seq, payload) in spool_batches().into_iter().enumerate() {
        let seq = seq as u64 + 1;
        current.extend(record::encode(seq, seq as i64, &payload));
        let mut rest = seq.to_le_bytes().to_vec();
        rest.extend_from_slice(&(seq as i64).to_le_bytes());
        rest.extend_from_slice(&payload);
        v1.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        v1.extend_from_slice(&crc32fast::hash(&rest).to_le_bytes());
        v1.extend_from_slice(&rest);
    }
    vec![current, v1]
}

/// A segment as the spool reads it at start: its version, every record, and each record's payload decoded.
fn spool_record(input: &[u8]) {
    let Some(version) = record::version_of(input) else { return };
    let found = record::scan(input, version, 0);
    for r in &found.records {
        let start = r.offset as usize;
        let end = start + record::header_len(version) + r.len as usize;
        assert!(end <= input.len() && r.offset <= found.end, "a record outside the segment: {r:?}");
        let payload = record::payload(&input[start..end], version, r.seq).expect("a record scan kept reads back");
        let _ = codec::decode(payload);
    }
    // Both readings of the same bytes, whatever the header says.
    let _ = record::scan(input, 3 - version.min(2), 0);
}

fn spool_batch(input: &[u8]) {
    if let Ok(batch) = codec::decode(input) {
        // What decodes encodes to bytes that decode and encode to themselves (bytes, as NaN is not equal to NaN).
        let mut once = Vec::new();
        codec::encode(&batch, &mut once);
        let again = codec::decode(&once).expect("an encoded batch decodes");
        let mut twice = Vec::new();
        codec::encode(&again, &mut twice);
        assert!(once == twice, "re-encoding changed the batch");
    }
}

fn kubelet_summary(input: &[u8]) {
    if let Ok(summary) = kubelet::decode(input) {
        let _ = kubelet::summary_to_sets(&summary, "node-1", Some("host"), 1_700_000_000_000);
    }
}

fn cadvisor_json(input: &[u8]) {
    let machine = cadvisor::decode_machine(input).ok();
    if let Ok(containers) = cadvisor::decode_subcontainers(input) {
        let _ = cadvisor::containers_to_sets(&containers, machine.as_ref(), "host", 1_700_000_000_000);
    }
}

/// A `--source`/`--sink` value: parsed, shown and parsed again, and checked against every kind's options with
/// every typed accessor.
fn source_sink_uri(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else { return };
    let Ok(uri) = text.parse::<SpecUri>() else { return };
    let _ = uri.url();
    let shown = uri.to_string();
    let _ = shown.parse::<SpecUri>();
    let sources = heapster_sources::SOURCES.iter().map(|k| ("--source", &k.doc));
    let sinks = heapster_sinks::SINKS.iter().map(|k| ("--sink", &k.doc));
    for (flag, doc) in sources.chain(sinks) {
        let Ok(o) = Options::new(flag, &uri, doc.options) else { continue };
        let _ = o.redacted();
        for spec in doc.options {
            let _ = o.bool(spec.name, false);
            let _ = o.duration(spec.name, std::time::Duration::from_secs(1));
            let _ = o.positive(spec.name, 1);
            let _ = o.string(spec.name, spec.default);
        }
    }
}

/// Label selectors as `kubectl top -l` and the HPA send them, and field selectors as `kubectl` sends them.
fn selectors() -> Vec<Vec<u8>> {
    [
        "",
        "app=web,tier!=back",
        "environment in (production, qa),tier notin (frontend)",
        "!partition,app",
        "replicas>3,replicas<10",
        "app.kubernetes.io/name==web",
        "app in (a,),b in ()",
        "metadata.name=web-0,metadata.namespace!=kube-system",
        "metadata.name==a\\,b\\=c\\\\",
    ]
    .into_iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// The same text read as the metrics API reads `labelSelector` and `fieldSelector`, then matched.
fn selector(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if let Ok(labels) = LabelSelector::parse(&text) {
        let web: heapster_model::Labels = [("app", "web"), ("replicas", "3"), ("example.com/tier", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let matched = labels.matches(&web);
        let _ = labels.matches(&heapster_model::Labels::default());
        assert!(!labels.is_empty() || matched, "the empty selector selects everything");
    }
    if let Ok(fields) = FieldSelector::parse(&text) {
        let _ = fields.matches("default", "web-0");
        // The metrics API goes straight to the pinned name: no other name may match.
        if let Some(name) = fields.exact_name() {
            assert!(!fields.matches("default", &format!("{name}x")), "exact_name {name:?} but another name matches");
        }
    }
}

/// Answers at the edges of what the decoder reads (the real ones, from InfluxDB 1.6, are in the corpus).
fn influxql_answers() -> Vec<Vec<u8>> {
    use serde_json::json;
    let series = |columns: serde_json::Value, values: serde_json::Value| json!({"results": [{"statement_id": 0, "series": [{"name": "memory/usage", "columns": columns, "values": values}]}]});
    [
        series(json!(["time", "value"]), json!([[i64::MIN, 1], [i64::MAX, -1], [0, 1.5e300], [1, null], ["x", 2]])),
        series(
            json!(["time", "mean", "max", "min", "median", "count", "percentile", "percentile_1", "percentile_2"]),
            json!([[i64::MAX, 0.5, 7, -7, null, -1, 1e300, "x", u64::MAX], [1700000000000i64]]),
        ),
        json!({"results": [{"statement_id": 0, "error": "error parsing query: found EOF"}]}),
        json!({"error": "authorization failed"}),
        json!({"results": null}),
    ]
    .iter()
    .map(|v| v.to_string().into_bytes())
    .collect()
}

/// An InfluxDB `/query` answer as `--historical_source` decodes it for every historical route: raw values, every
/// aggregation with and without buckets, and name lists; then written out as the API answers.
fn influxql_answer(input: &[u8]) {
    let Ok(statements) = parse_results(200, &String::from_utf8_lossy(input)) else { return };
    for series in &statements {
        // An integer metric, a fractional one, and one outside the catalog (typed by the JSON number).
        for metric in ["memory/usage", "cpu/usage_rate", "custom/queue_length"] {
            let samples = parse_samples(series, metric);
            assert!(samples.is_sorted_by_key(|s| s.timestamp), "samples out of time order");
            for style in [ValueStyle::Heapster, ValueStyle::Typed] {
                serde_json::to_vec(&MetricResult::from_points(&samples, style)).expect("a metric result serializes");
            }
            for bucket in [None, Some(Duration::from_secs(60))] {
                let buckets = parse_buckets(series, metric, &Aggregation::ALL, 1_700_000_000_000, bucket);
                serde_json::to_vec(&aggregation_result(&buckets, bucket)).expect("an aggregation result serializes");
            }
        }
        let _ = column_strings(series, "value");
        let _ = column_strings(series, "name");
    }
}
