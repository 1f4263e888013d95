//! Batches as Hawkular Metrics data and definitions, with Heapster's ids and tags (`metrics/sinks/hawkular`):
//!
//! - id: by set type, `machine/<node>/<metric>` (node: `nodename`, or the `labelNodeId=` label),
//!   `sys_container/<container>/<pod_id>/<metric>`, `cluster/<metric>`, `ns/<namespace>/<metric>`,
//!   `pod/<pod_id>/<metric>`, `<container>/<pod_id>/<metric>`; a labelled metric's metric part is
//!   `<metric>/<resource_id>` (`filesystem/usage//dev/sda1`);
//! - type: `counter` for the catalog's cumulative metrics, else `gauge`; counters carry whole numbers;
//! - data: `[{"id":..,"data":[{"timestamp":<ms>,"value":..}]}]` per tenant and type (`POST /gauges/raw`,
//!   `/counters/raw`);
//! - definition tags (`PUT /<type>s/<id>/tags`) for catalog metrics: `units`, `descriptor_name`, `group_id`
//!   (`<container>/<metric>`), `<label>_description` for the labels a metric carries, every label of the set and
//!   the metric, and each `k:v` of the pod's `labels` as `<labelTagPrefix>k`.

use super::config::HawkularConfig;
use heapster_model::catalog::{self, MetricType};
use heapster_model::{DataBatch, Labels, MetricSet, MetricValue, labels};
use serde::Serialize;
use std::collections::BTreeMap;
use std::hash::{BuildHasher as _, Hasher};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    /// The collection in the API's paths.
    pub fn path(self) -> &'static str {
        match self {
            Kind::Gauge => "gauges",
            Kind::Counter => "counters",
        }
    }
}

/// The labels whose descriptions Heapster put on every definition, and `resource_id` on labelled metrics'.
const DESCRIBED: &[&str] = &[
    labels::NODENAME,
    labels::HOSTNAME,
    labels::HOST_ID,
    labels::CONTAINER_NAME,
    labels::CONTAINER_BASE_IMAGE,
    labels::POD_NAME,
    labels::POD_ID,
    labels::NAMESPACE_ID,
    labels::LABELS,
];

/// One catalog metric's definition as it should be on the server; its tags are made only when the server may not
/// have them (see [`Definition::fingerprint`]), which is the exception once the sink runs.
#[derive(Debug, Clone)]
pub struct Definition<'a> {
    pub tenant: &'a str,
    pub kind: Kind,
    pub id: String,
    /// A hash of all the tags are made of (type, id, metric, the set's and the metric's labels): equal
    /// fingerprints, equal tags.
    pub fingerprint: u64,
    set: &'a MetricSet,
    name: &'a str,
    own: Option<&'a Labels>,
    desc: &'static catalog::MetricDescriptor,
}

impl Definition<'_> {
    pub fn tags(&self, c: &HawkularConfig) -> BTreeMap<String, String> {
        definition(self.set, self.name, self.own, self.desc, c)
    }
}

fn hasher() -> impl Hasher {
    foldhash::fast::FixedState::with_seed(0x6861_776b).build_hasher()
}

fn hash_labels(h: &mut impl Hasher, labels: &Labels) {
    for (k, v) in labels.iter() {
        h.write(k.as_bytes());
        h.write_u8(0xff);
        h.write(v.as_bytes());
        h.write_u8(0xfe);
    }
}

#[derive(Serialize)]
struct Point {
    timestamp: i64,
    value: Value,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Value {
    Int(i64),
    Float(f64),
}

#[derive(Serialize)]
struct Header<'a> {
    id: &'a str,
    data: [Point; 1],
}

#[derive(Debug, Default)]
pub struct Encoded<'a> {
    /// Per tenant and type, each metric's `{"id":..,"data":[..]}`, keyed by its id.
    pub data: BTreeMap<(String, Kind), Vec<(String, String)>>,
    pub definitions: Vec<Definition<'a>>,
    /// Metrics left out by `filter=`.
    pub filtered: usize,
    /// NaN and infinite values, which JSON cannot carry.
    pub unrepresentable: usize,
}

fn node_name<'a>(set: &'a MetricSet, c: &HawkularConfig) -> &'a str {
    c.label_node_id
        .as_deref()
        .and_then(|l| set.labels.get(l))
        .or_else(|| set.labels.get(labels::NODENAME))
        .map_or("", |v| v.as_str())
}

/// Heapster's id of `metric` (with `/<resource_id>` for a labelled one) in `set`.
pub fn id_name(set: &MetricSet, metric: &str, c: &HawkularConfig) -> String {
    let l = |k: &str| set.labels.get_str(k).unwrap_or("");
    let parts: Vec<&str> = match set.set_type().unwrap_or("") {
        "node" => vec!["machine", node_name(set, c)],
        "sys_container" => vec!["sys_container", l(labels::CONTAINER_NAME), l(labels::POD_ID)],
        "cluster" => vec!["cluster"],
        "ns" => vec!["ns", l(labels::NAMESPACE_NAME)],
        "pod" => vec!["pod", l(labels::POD_ID)],
        "pod_container" => vec![l(labels::CONTAINER_NAME), l(labels::POD_ID)],
        _ => {
            let pod = l(labels::POD_ID);
            vec![l(labels::CONTAINER_NAME), if pod.is_empty() { node_name(set, c) } else { pod }]
        }
    };
    let mut id = parts.join("/");
    id.push('/');
    id.push_str(metric);
    id
}

fn definition(
    set: &MetricSet,
    name: &str,
    own: Option<&Labels>,
    d: &catalog::MetricDescriptor,
    c: &HawkularConfig,
) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for l in heapster_model::labels::ALL {
        if DESCRIBED.contains(&l.key) || (own.is_some() && l.key == labels::RESOURCE_ID) {
            tags.insert(format!("{}_description", l.key), l.description.to_owned());
        }
    }
    tags.insert("units".into(), d.units.as_str().into());
    for (k, v) in set.labels.iter() {
        tags.insert(k.to_string(), v.to_string());
        if &**k == labels::LABELS {
            for pair in v.split(',') {
                // Heapster kept only `k:v` pairs that split in exactly two.
                let parts: Vec<&str> = pair.split(':').collect();
                if let [key, value] = parts[..] {
                    tags.insert(format!("{}{key}", c.label_tag_prefix), value.to_owned());
                }
            }
        }
    }
    for (k, v) in own.into_iter().flat_map(|l| l.iter()) {
        tags.insert(k.to_string(), v.to_string());
    }
    let container = set.labels.get_str(labels::CONTAINER_NAME).unwrap_or("");
    tags.insert("group_id".into(), format!("{container}/{name}"));
    tags.insert("descriptor_name".into(), name.to_owned());
    tags
}

pub fn encode<'a>(batch: &'a DataBatch, c: &'a HawkularConfig) -> Encoded<'a> {
    let mut out = Encoded::default();
    for set in batch.sets.values() {
        let tenant =
            c.label_to_tenant.as_deref().and_then(|l| set.labels.get(l)).map_or(c.tenant.as_str(), |v| v.as_str());
        let mut h = hasher();
        hash_labels(&mut h, &set.labels);
        let set_hash = h.finish();
        for (name, value, own) in crate::util::json_batch::values(set) {
            if c.filters.iter().any(|f| f.drops(&set.labels, name)) {
                out.filtered += 1;
                continue;
            }
            if !value.as_f64().is_finite() {
                out.unrepresentable += 1;
                continue;
            }
            let desc = catalog::find(name);
            let kind = match desc.map(|d| d.metric_type) {
                Some(MetricType::Cumulative) => Kind::Counter,
                _ => Kind::Gauge,
            };
            let id = match own.and_then(|l| l.get(labels::RESOURCE_ID)) {
                Some(r) => id_name(set, &format!("{name}/{r}"), c),
                None => id_name(set, name, c),
            };
            let value = match (kind, value) {
                (_, MetricValue::Int(v)) => Value::Int(v),
                (Kind::Counter, MetricValue::Float(v)) => Value::Int(v.round() as i64),
                (Kind::Gauge, MetricValue::Float(v)) => Value::Float(v),
            };
            let header = Header { id: &id, data: [Point { timestamp: batch.timestamp, value }] };
            let json = serde_json::to_string(&header).expect("strings and finite numbers serialise");
            if let Some(desc) = desc {
                let mut h = hasher();
                h.write_u64(set_hash);
                h.write_u8(kind as u8);
                h.write(id.as_bytes());
                h.write_u8(0xff);
                h.write(name.as_bytes());
                if let Some(own) = own {
                    hash_labels(&mut h, own);
                }
                let fingerprint = h.finish();
                out.definitions.push(Definition { tenant, kind, id: id.clone(), fingerprint, set, name, own, desc });
            }
            out.data.entry((tenant.to_string(), kind)).or_default().push((id, json));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::test_support::{fs, set};
    use serde_json::{Value as Json, json};

    fn config(extra: &str) -> HawkularConfig {
        HawkularConfig::from_uri(&format!("hawkular:http://h:8080?{extra}").parse().unwrap()).unwrap()
    }

    #[test]
    fn ids_are_heapsters_for_every_set_type() {
        let c = config("");
        let cases = [
            (vec![("type", "node"), ("nodename", "n1")], "machine/n1/cpu/usage"),
            (
                vec![("type", "sys_container"), ("container_name", "kubelet"), ("nodename", "n1")],
                "sys_container/kubelet//cpu/usage",
            ),
            (vec![("type", "cluster")], "cluster/cpu/usage"),
            (vec![("type", "ns"), ("namespace_name", "default")], "ns/default/cpu/usage"),
            (vec![("type", "pod"), ("pod_id", "uid-1")], "pod/uid-1/cpu/usage"),
            (vec![("type", "pod_container"), ("container_name", "web"), ("pod_id", "uid-1")], "web/uid-1/cpu/usage"),
        ];
        for (labels, want) in cases {
            assert_eq!(id_name(&set(&labels), "cpu/usage", &c), want);
        }
        let node = set(&[("type", "node"), ("nodename", "n1"), ("host_id", "i-1")]);
        assert_eq!(id_name(&node, "m", &config("labelNodeId=host_id")), "machine/i-1/m");
        assert_eq!(id_name(&node, "m", &config("labelNodeId=missing")), "machine/n1/m");
    }

    #[test]
    fn data_and_definitions_carry_the_batch_and_heapsters_tags() {
        let mut c = set(&[
            ("type", "pod_container"),
            ("container_name", "web"),
            ("pod_id", "uid-1"),
            ("namespace_name", "team-a"),
            ("labels", "app:web,tier:db,broken"),
        ]);
        c.set("cpu/usage", MetricValue::Int(5_000));
        c.set("memory/usage", MetricValue::Int(1 << 20));
        c.set("cpu/node_utilization", MetricValue::Float(0.5));
        c.set("custom/thing", MetricValue::Float(f64::NAN));
        c.add_labeled("filesystem/usage", fs("/dev/sda1"), MetricValue::Int(42));
        let b = DataBatch { timestamp: 1_700_000_000_123, sets: [("c".to_owned(), c)].into() };
        let conf = config("labelToTenant=namespace_name&filter=name(^memory/)");
        let e = encode(&b, &conf);
        assert_eq!((e.filtered, e.unrepresentable), (1, 1));
        let data = |kind| -> Vec<Json> {
            e.data[&("team-a".to_owned(), kind)].iter().map(|(_, j)| serde_json::from_str(j).unwrap()).collect()
        };
        assert_eq!(
            data(Kind::Counter),
            [json!({"id": "web/uid-1/cpu/usage", "data": [{"timestamp": 1_700_000_000_123_i64, "value": 5000}]})]
        );
        assert_eq!(
            data(Kind::Gauge),
            [
                json!({"id": "web/uid-1/cpu/node_utilization", "data": [{"timestamp": 1_700_000_000_123_i64, "value": 0.5}]}),
                json!({"id": "web/uid-1/filesystem/usage//dev/sda1", "data": [{"timestamp": 1_700_000_000_123_i64, "value": 42}]}),
            ]
        );
        let fsd = e.definitions.iter().find(|d| d.id.ends_with("/dev/sda1")).unwrap();
        assert_eq!((fsd.tenant, fsd.kind), ("team-a", Kind::Gauge));
        let tags = fsd.tags(&conf);
        for (k, v) in [
            ("descriptor_name", "filesystem/usage"),
            ("group_id", "web/filesystem/usage"),
            ("units", "bytes"),
            ("resource_id", "/dev/sda1"),
            ("labels.app", "web"),
            ("labels.tier", "db"),
            ("namespace_name", "team-a"),
        ] {
            assert_eq!(tags.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(tags.contains_key("resource_id_description") && tags.contains_key("pod_id_description"));
        assert!(!tags.keys().any(|k| k == "labels.broken"));
        let cpu = e.definitions.iter().find(|d| d.id.ends_with("cpu/usage")).unwrap();
        assert!(!cpu.tags(&conf).contains_key("resource_id_description"));
        assert_ne!(cpu.fingerprint, fsd.fingerprint);
        // The same set again: the same fingerprints; a label changed: others.
        let again = encode(&b, &conf);
        assert_eq!(
            again.definitions.iter().map(|d| d.fingerprint).collect::<Vec<_>>(),
            e.definitions.iter().map(|d| d.fingerprint).collect::<Vec<_>>()
        );
        let mut b2 = b.clone();
        b2.sets.get_mut("c").unwrap().labels.insert("labels", "app:api".to_owned());
        assert_ne!(encode(&b2, &conf).definitions[0].fingerprint, e.definitions[0].fingerprint);
    }
}
