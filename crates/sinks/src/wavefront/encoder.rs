//! Batches as Wavefront proxy lines, `NAME VALUE TIMESTAMP source="SOURCE" key="value" ...`, in Heapster's form
//! (`metrics/sinks/wavefront/wavefront.go`):
//!
//! - NAME: prefix + set type + `.` + the metric name with `/` as `.` (`heapster.node.cpu.usage_rate`);
//! - SOURCE: the cluster's name for `cluster` sets, `NAMESPACE-ns` for namespaces, the host name otherwise;
//! - tags: `cluster=<clusterName>` and the set's labels but the UIDs and the host name (a labelled metric adds
//!   its own, `resource_id`); with `includeLabels=true` the pod's labels as `label.KEY`;
//! - system containers under `system.slice/` are left out, and containers altogether with
//!   `includeContainers=false`; timestamps in seconds; integers as integers, floats with six decimals.
//!
//! Heapster wrote labels as they came; the proxy refuses a line whose tag key holds a `/` (`label.app.kubernetes.io/name`),
//! whose value holds an unescaped quote, or whose key and value are longer than 254 characters, and Heapster lost
//! such points. Here keys and names are cut to the proxy's characters (others become `_`), quotes are escaped,
//! and values cut to fit.

use crate::influxdb::encoder::BLACKLIST;
use crate::util::http::Bodies;
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, labels};
use std::fmt::Write as _;

/// Longest metric name, source, and point tag (key and value together) a proxy accepts.
pub const MAX_NAME: usize = 256;
pub const MAX_SOURCE: usize = 128;
pub const MAX_TAG: usize = 254;

const SYSTEM_SUBCONTAINER: &str = "system.slice/";

/// What [`encode`] needs of the options.
#[derive(Debug, Clone)]
pub struct Shape<'a> {
    pub cluster_name: &'a str,
    pub prefix: &'a str,
    pub include_labels: bool,
    pub include_containers: bool,
}

#[derive(Debug, Default)]
pub struct Encoded {
    pub chunks: Vec<String>,
    pub points: usize,
    pub unrepresentable: usize,
}

pub fn encode(batch: &DataBatch, shape: &Shape, chunk_bytes: usize) -> Encoded {
    let mut bodies = Bodies::new(usize::MAX, chunk_bytes);
    let mut unrepresentable = 0;
    let ts = batch.timestamp.div_euclid(1000);
    for set in batch.sets.values() {
        let kind = set.set_type().unwrap_or("");
        let get = |k: &str| set.labels.get_str(k).unwrap_or("");
        if get(labels::CONTAINER_NAME).contains(SYSTEM_SUBCONTAINER)
            || (!shape.include_containers && kind == "pod_container")
        {
            continue;
        }
        let source = match kind {
            "cluster" => shape.cluster_name.to_owned(),
            "ns" => format!("{}-ns", get(labels::NAMESPACE_NAME)),
            _ => get(labels::HOSTNAME).to_owned(),
        };
        let source = if source.is_empty() { shape.cluster_name } else { &source };
        let mut head = String::new();
        write!(head, "source=\"").unwrap();
        name_chars(&mut head, source, MAX_SOURCE);
        head.push('"');
        let set_tags = tags(set, shape);
        let mut line = |name: &str, value: MetricValue, own: Option<&Labels>| {
            if !value.as_f64().is_finite() {
                unrepresentable += 1;
                return;
            }
            bodies.line(|b| {
                let full = format!("{}{kind}.{}", shape.prefix, name.replace('/', "."));
                name_chars(b, &full, MAX_NAME);
                match value {
                    MetricValue::Int(v) => write!(b, " {v} {ts} ").unwrap(),
                    MetricValue::Float(v) => write!(b, " {v:.6} {ts} ").unwrap(),
                }
                b.push_str(&head);
                b.push_str(&set_tags);
                for (k, v) in own.into_iter().flatten() {
                    tag(b, k, v);
                }
            });
        };
        for (name, value) in &set.metrics {
            line(name, *value, None);
        }
        for m in &set.labeled_metrics {
            line(&m.name, m.value, Some(&m.labels));
        }
    }
    let points = bodies.points();
    Encoded { chunks: bodies.finish(), points, unrepresentable }
}

/// ` key="value"` for each of the set's tags, in key order.
fn tags(set: &MetricSet, shape: &Shape) -> String {
    let mut all: Vec<(String, &str)> = vec![("cluster".to_owned(), shape.cluster_name)];
    for (k, v) in &set.labels {
        if &**k == labels::LABELS {
            if shape.include_labels {
                all.extend(v.split(',').filter_map(|l| l.split_once(':')).map(|(k, v)| (format!("label.{k}"), v)));
            }
        } else if !BLACKLIST.contains(&&**k) {
            all.push((k.to_string(), v));
        }
    }
    all.sort_unstable();
    let mut s = String::new();
    for (k, v) in all {
        tag(&mut s, &k, v);
    }
    s
}

/// ` key="value"`, key in the proxy's characters, value escaped, both within [`MAX_TAG`]; nothing for an empty
/// value, which the proxy refuses.
fn tag(out: &mut String, k: &str, v: &str) {
    if v.is_empty() {
        return;
    }
    out.push(' ');
    let start = out.len();
    name_chars(out, k, MAX_TAG - 1);
    let room = MAX_TAG - (out.len() - start);
    out.push_str("=\"");
    for c in v.chars().take(room) {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` in the characters names, sources and tag keys may hold (`a-z A-Z 0-9 - _ .`), others as `_`, at most
/// `max` characters.
fn name_chars(out: &mut String, s: &str, max: usize) {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    out.extend(s.chars().take(max).map(|c| if ok(c) { c } else { '_' }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn shape() -> Shape<'static> {
        Shape { cluster_name: "k8s-cluster", prefix: "heapster.", include_labels: false, include_containers: true }
    }

    fn set(pairs: &[(&str, &str)]) -> MetricSet {
        let mut s = MetricSet::default();
        for (k, v) in pairs {
            s.labels.insert(k.to_string(), v.to_string());
        }
        s
    }

    fn lines(b: &DataBatch, shape: &Shape) -> Vec<String> {
        encode(b, shape, 1 << 20).chunks.concat().lines().map(String::from).collect()
    }

    #[test]
    fn heapster_names_sources_and_tags() {
        let mut node = set(&[("type", "node"), ("hostname", "node-1"), ("nodename", "node-1"), ("host_id", "i-1")]);
        node.set("cpu/usage_rate", MetricValue::Int(1250));
        node.add_labeled(
            "filesystem/usage",
            Arc::new(Labels::from([("resource_id", "/dev/vda1".to_owned())])),
            MetricValue::Int(9),
        );
        let mut ns = set(&[("type", "ns"), ("namespace_name", "default"), ("namespace_id", "u")]);
        ns.set("memory/usage", MetricValue::Float(2.5));
        let mut cl = set(&[("type", "cluster")]);
        cl.set("uptime", MetricValue::Int(7));
        let mut pod = set(&[
            ("type", "pod"),
            ("hostname", "node-1"),
            ("pod_name", "web"),
            ("namespace_name", "default"),
            ("labels", "app:web,app.kubernetes.io/name:shop \"x\""),
        ]);
        pod.set("memory/usage", MetricValue::Int(3));
        let mut sys = set(&[("type", "sys_container"), ("container_name", "system.slice/docker.service")]);
        sys.set("uptime", MetricValue::Int(1));
        let b = DataBatch {
            timestamp: 1_700_000_000_900,
            sets: [("a", node), ("b", ns), ("c", cl), ("d", pod), ("e", sys)].map(|(k, s)| (k.to_owned(), s)).into(),
        };
        assert_eq!(
            lines(&b, &shape()),
            [
                r#"heapster.node.cpu.usage_rate 1250 1700000000 source="node-1" cluster="k8s-cluster" nodename="node-1" type="node""#,
                r#"heapster.node.filesystem.usage 9 1700000000 source="node-1" cluster="k8s-cluster" nodename="node-1" type="node" resource_id="/dev/vda1""#,
                r#"heapster.ns.memory.usage 2.500000 1700000000 source="default-ns" cluster="k8s-cluster" namespace_name="default" type="ns""#,
                r#"heapster.cluster.uptime 7 1700000000 source="k8s-cluster" cluster="k8s-cluster" type="cluster""#,
                r#"heapster.pod.memory.usage 3 1700000000 source="node-1" cluster="k8s-cluster" namespace_name="default" pod_name="web" type="pod""#,
            ]
        );
        let with_labels = Shape { include_labels: true, ..shape() };
        let l = lines(&b, &with_labels);
        assert!(l[4].ends_with(r#" label.app="web" label.app.kubernetes.io_name="shop \"x\"" namespace_name="default" pod_name="web" type="pod""#), "{}", l[4]);
    }

    #[test]
    fn containers_can_be_left_out_and_long_tags_are_cut() {
        let mut c = set(&[
            ("type", "pod_container"),
            ("hostname", "n"),
            ("container_name", "app"),
            ("container_base_image", &"i".repeat(300)),
        ]);
        c.set("uptime", MetricValue::Int(1));
        c.set("memory/usage", MetricValue::Float(f64::NAN));
        let b = DataBatch { timestamp: 0, sets: [("c".to_owned(), c)].into() };
        assert!(lines(&b, &Shape { include_containers: false, ..shape() }).is_empty());
        let e = encode(&b, &shape(), 1 << 20);
        assert_eq!((e.points, e.unrepresentable), (1, 1));
        let image = format!("container_base_image=\"{}\"", "i".repeat(MAX_TAG - "container_base_image".len()));
        assert!(e.chunks[0].contains(&format!(" {image} ")), "{}", e.chunks[0]);
    }
}
