//! Batches as Graphite plaintext lines, `PREFIX.PATH VALUE TIMESTAMP\n`, with Heapster's paths
//! (`metrics/sinks/graphite/driver.go`):
//!
//! | set type | path after the prefix |
//! |---|---|
//! | `pod_container` | `nodes.HOST.pods.NAMESPACE.POD.containers.CONTAINER.METRIC` |
//! | `sys_container` | `nodes.HOST.sys-containers.CONTAINER.METRIC` |
//! | `pod` | `nodes.HOST.pods.NAMESPACE.POD.METRIC` |
//! | `ns` | `namespaces.NAMESPACE.METRIC` |
//! | `node` | `nodes.HOST.METRIC` |
//! | `cluster` | `cluster.METRIC` |
//! | other | `METRIC` |
//!
//! METRIC is the metric name with `/` as `.` (`cpu.usage_rate`); a labelled metric puts its resource after the
//! first component (`filesystem.<resource_id>.usage`). Names taken from labels have `.` and `/` replaced by `_`,
//! so that one label is one path component. Timestamps are the batch's, in seconds; integers are written as
//! integers, floats with six decimals (Go's `%f`, as Heapster did).

use crate::util::http::Bodies;
use heapster_model::{DataBatch, Labels, MetricValue, labels};
use std::fmt::Write as _;

/// Bytes per write: a whole batch (16 MB for 3,000 pods) in one write would need its whole deadline on a slow
/// link, and a failure would send all of it again.
pub const CHUNK_BYTES: usize = 1 << 20;

/// One batch as newline-terminated chunks of lines.
#[derive(Debug, Default)]
pub struct Encoded {
    pub chunks: Vec<String>,
    pub points: usize,
    /// Values left out because Graphite has no spelling for them that both carbon and other receivers read (NaN,
    /// infinities).
    pub unrepresentable: usize,
}

/// Encodes `batch` under `prefix`, in chunks of about `chunk_bytes` (whole lines).
pub fn encode(batch: &DataBatch, prefix: &str, chunk_bytes: usize) -> Encoded {
    let mut bodies = Bodies::new(usize::MAX, chunk_bytes);
    let mut unrepresentable = 0;
    let ts = batch.timestamp.div_euclid(1000);
    let mut head = String::new();
    for set in batch.sets.values() {
        head.clear();
        head.push_str(prefix);
        head.push('.');
        set_path(&mut head, set.set_type(), &set.labels);
        let mut line = |name: &str, resource: Option<&str>, value: MetricValue| {
            if !value.as_f64().is_finite() {
                unrepresentable += 1;
                return;
            }
            bodies.line(|b| {
                b.push_str(&head);
                metric_path(b, name, resource);
                match value {
                    MetricValue::Int(v) => write!(b, " {v} {ts}").unwrap(),
                    MetricValue::Float(v) => write!(b, " {v:.6} {ts}").unwrap(),
                }
            });
        };
        for (name, value) in &set.metrics {
            line(name, None, *value);
        }
        for m in &set.labeled_metrics {
            line(&m.name, resource(&m.labels), m.value);
        }
    }
    let points = bodies.points();
    Encoded { chunks: bodies.finish(), points, unrepresentable }
}

/// What tells a labelled metric's series apart within its set: the filesystem or disk, or the accelerator.
/// Heapster looked for a label `resourceId`, which no source sets (the label is `resource_id`), so every
/// filesystem of a node was written to the same path and only the last one was kept.
fn resource(l: &Labels) -> Option<&str> {
    l.get(labels::RESOURCE_ID).or_else(|| l.get(labels::ACCELERATOR_ID)).map(|v| v.as_str())
}

/// The set's part of the path, with its trailing dot (nothing for an unknown type).
fn set_path(out: &mut String, set_type: Option<&str>, l: &Labels) {
    let get = |k: &str| l.get_str(k).unwrap_or("");
    let parts: &[&str] = match set_type {
        Some("pod_container") => &[
            "nodes",
            get(labels::HOSTNAME),
            "pods",
            get(labels::NAMESPACE_NAME),
            get(labels::POD_NAME),
            "containers",
            get(labels::CONTAINER_NAME),
        ],
        Some("sys_container") => &["nodes", get(labels::HOSTNAME), "sys-containers", get(labels::CONTAINER_NAME)],
        Some("pod") => &["nodes", get(labels::HOSTNAME), "pods", get(labels::NAMESPACE_NAME), get(labels::POD_NAME)],
        Some("ns") => &["namespaces", get(labels::NAMESPACE_NAME)],
        Some("node") => &["nodes", get(labels::HOSTNAME)],
        Some("cluster") => &["cluster"],
        _ => &[],
    };
    for p in parts {
        component(out, p);
        out.push('.');
    }
}

/// The metric's part: its name with `/` as `.`, the resource (if any) after the first component.
fn metric_path(out: &mut String, name: &str, resource: Option<&str>) {
    let (section, rest) = match name.split_once('/') {
        Some((s, r)) => (s, Some(r)),
        None => (name, None),
    };
    plain(out, section);
    if let Some(r) = resource {
        out.push('.');
        component(out, r);
    }
    if let Some(r) = rest {
        out.push('.');
        plain(out, r);
    }
}

/// A label value as one path component: Heapster's `.` and `/` to `_`, plus whitespace, which would end the path
/// in the line (Kubernetes names never hold any).
fn component(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| if c == '.' || c == '/' || c.is_whitespace() { '_' } else { c }));
}

/// A metric name's part: `/` separates components as `.` does, and whitespace is replaced.
fn plain(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| match c {
        '/' => '.',
        c if c.is_whitespace() => '_',
        c => c,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::MetricSet;
    use std::sync::Arc;

    fn set(pairs: &[(&str, &str)]) -> MetricSet {
        let mut s = MetricSet::default();
        for (k, v) in pairs {
            s.labels.insert(k.to_string(), v.to_string());
        }
        s
    }

    fn lines(batch: &DataBatch, prefix: &str) -> Vec<String> {
        encode(batch, prefix, CHUNK_BYTES).chunks.concat().lines().map(String::from).collect()
    }

    /// Heapster's own test cases (`driver_test.go`), with its `metric/avg` and value 100.
    #[test]
    fn heapster_paths() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[
                    ("hostname", "example"),
                    ("type", "pod_container"),
                    ("namespace_name", "namespace"),
                    ("pod_name", "pod-name-12345"),
                    ("container_name", "container"),
                ],
                "nodes.example.pods.namespace.pod-name-12345.containers.container.metric.avg",
            ),
            (
                &[("hostname", "example"), ("type", "sys_container"), ("container_name", "container")],
                "nodes.example.sys-containers.container.metric.avg",
            ),
            (
                &[
                    ("hostname", "example"),
                    ("type", "pod"),
                    ("namespace_name", "namespace"),
                    ("pod_name", "pod-name-12345"),
                ],
                "nodes.example.pods.namespace.pod-name-12345.metric.avg",
            ),
            (&[("type", "ns"), ("namespace_name", "namespace")], "namespaces.namespace.metric.avg"),
            (&[("hostname", "example"), ("type", "node")], "nodes.example.metric.avg"),
            (&[("hostname", "example"), ("type", "cluster")], "cluster.metric.avg"),
            (&[("type", "something_else")], "metric.avg"),
        ];
        for (labels, path) in cases {
            let mut s = set(labels);
            s.metrics.insert("metric/avg", MetricValue::Int(100));
            let b = DataBatch { timestamp: 1_700_000_000_999, sets: [("k".to_owned(), s)].into() };
            assert_eq!(lines(&b, "kubernetes"), [format!("kubernetes.{path} 100 1700000000")]);
        }
    }

    #[test]
    fn values_labels_and_resources() {
        let mut s = set(&[
            ("hostname", "node-1.example.com"),
            ("type", "pod_container"),
            ("namespace_name", "kube-system"),
            ("pod_name", "web.1"),
            ("container_name", "nginx"),
        ]);
        s.set("cpu/usage_rate", MetricValue::Float(0.1234567));
        s.set("uptime", MetricValue::Int(-5));
        s.set("memory/usage", MetricValue::Float(f64::NAN));
        s.add_labeled(
            "filesystem/usage",
            Arc::new(Labels::from([("resource_id", "/dev/sda1".to_owned())])),
            MetricValue::Int(7),
        );
        s.add_labeled(
            "filesystem/usage",
            Arc::new(Labels::from([("resource_id", "logs".to_owned())])),
            MetricValue::Int(8),
        );
        let accel = Labels::from([
            ("make", "nvidia".to_owned()),
            ("model", "t4".to_owned()),
            ("accelerator_id", "gpu 0".to_owned()),
        ]);
        s.add_labeled("accelerator/duty_cycle", Arc::new(accel), MetricValue::Int(40));
        let b = DataBatch { timestamp: 1_700_000_123_000, sets: [("k".to_owned(), s)].into() };
        let e = encode(&b, "k8s.prod", CHUNK_BYTES);
        assert_eq!((e.points, e.unrepresentable), (5, 1));
        let p = "k8s.prod.nodes.node-1_example_com.pods.kube-system.web_1.containers.nginx";
        assert_eq!(
            lines(&b, "k8s.prod"),
            [
                format!("{p}.cpu.usage_rate 0.123457 1700000123"),
                format!("{p}.uptime -5 1700000123"),
                format!("{p}.filesystem._dev_sda1.usage 7 1700000123"),
                format!("{p}.filesystem.logs.usage 8 1700000123"),
                format!("{p}.accelerator.gpu_0.duty_cycle 40 1700000123"),
            ]
        );
    }

    #[test]
    fn chunks_hold_whole_lines() {
        let mut b = DataBatch { timestamp: 1_000, ..Default::default() };
        for i in 0..100 {
            let mut s = set(&[("type", "node"), ("hostname", &format!("n{i}"))]);
            s.set("uptime", MetricValue::Int(i));
            b.sets.insert(format!("node:{i}"), s);
        }
        let e = encode(&b, "kubernetes", 256);
        assert!(e.chunks.len() > 5, "{}", e.chunks.len());
        for c in &e.chunks {
            assert!(c.len() <= 256 && c.ends_with('\n'), "{c:?}");
        }
        assert_eq!(e.chunks.concat().lines().count(), 100);
    }
}
