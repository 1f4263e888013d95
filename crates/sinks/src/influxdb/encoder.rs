//! Batches as InfluxDB line protocol, in one of the three schemas of [`Schema`].
//!
//! `measurement,tag=v,tag=v field=value timestamp` with timestamps in milliseconds (written with
//! `precision=ms`). Escaping follows the line protocol reference: commas and spaces in measurements; commas,
//! spaces and equals signs in tag keys, tag values and field keys. Tags are sorted by key, as InfluxDB
//! recommends, and empty tag values are left out because InfluxDB rejects them (Heapster did the same).

use super::config::{InfluxdbConfig, Schema};
use crate::util::http::Bodies;
use heapster_model::catalog::{self, MetricType, Units, ValueType};
use heapster_model::{DataBatch, Labels, MetricValue, labels};
use std::borrow::Cow;
use std::fmt::Write as _;

/// Labels Heapster 1.x never wrote to InfluxDB: UIDs and host names that change on every restart and would only
/// multiply series (its `influxdbBlacklistLabels`), and the two labels heapster-rs adds that Heapster's sets did
/// not carry (`pod_namespace`, `schedulable`): a tag more changes every series key, so a database Heapster
/// filled would not continue its series. The legacy schema keeps them all, as the seed stored every label.
pub const BLACKLIST: &[&str] = &[
    labels::POD_ID,
    labels::NAMESPACE_ID,
    labels::HOSTNAME,
    labels::HOST_ID,
    labels::POD_NAMESPACE,
    labels::SCHEDULABLE,
];

/// One batch, encoded and cut into request bodies.
#[derive(Debug, Default)]
pub struct Encoded {
    /// Request bodies of at most `batch_points` lines each, newline-terminated.
    pub bodies: Vec<String>,
    /// Points written into `bodies`.
    pub points: usize,
    /// Values left out because line protocol cannot carry them (NaN or infinite floats).
    pub unrepresentable: usize,
}

/// Where the sink's bodies are compressed; here for the tests and benchmarks that measure it with the encoder.
pub use crate::util::http::gzip;

/// Encodes `batch` as `config` says.
pub fn encode(batch: &DataBatch, config: &InfluxdbConfig) -> Encoded {
    // Cut by points only: InfluxDB's own bound is on points per request.
    let mut enc = Encoder { config, bodies: Bodies::new(config.batch_points, usize::MAX), unrepresentable: 0 };
    let cluster = match config.schema {
        Schema::Legacy if !config.cluster_name_set => None,
        _ => Some(config.cluster_name.as_str()),
    };
    for set in batch.sets.values() {
        let set_tags = tags(&set.labels, None, cluster, config.schema);
        for (name, value) in &set.metrics {
            enc.point(name, &set_tags, *value, batch.timestamp);
        }
        for m in &set.labeled_metrics {
            let t = tags(&set.labels, Some(&m.labels), cluster, config.schema);
            enc.point(&m.name, &t, m.value, batch.timestamp);
        }
    }
    let points = enc.bodies.points();
    Encoded { bodies: enc.bodies.finish(), points, unrepresentable: enc.unrepresentable }
}

struct Encoder<'a> {
    config: &'a InfluxdbConfig,
    bodies: Bodies,
    unrepresentable: usize,
}

impl Encoder<'_> {
    fn point(&mut self, metric: &str, tags: &str, value: MetricValue, ts: i64) {
        let desc = catalog::find(metric);
        if self.config.disable_counter_metrics && desc.is_some_and(|d| d.metric_type == MetricType::Cumulative) {
            return;
        }
        // The catalog's value type, not the value's, decides the field type: one metric written as an integer by
        // one source and a float by another would be a field type conflict and a rejected write.
        let as_float = match desc.map(|d| d.value_type) {
            Some(ValueType::Float) => true,
            Some(ValueType::Int64) => false,
            None => matches!(value, MetricValue::Float(_)),
        };
        let f = value.as_f64();
        if !f.is_finite() {
            self.unrepresentable += 1;
            return;
        }
        let (measurement, field): (Cow<str>, &str) = match self.config.schema {
            Schema::Heapster => (Cow::Borrowed(metric), "value"),
            Schema::WithFields => match metric.split_once('/') {
                Some((m, f)) => (Cow::Borrowed(m), f),
                None => (Cow::Borrowed(metric), "value"),
            },
            Schema::Legacy => (legacy_name(metric), "value"),
        };
        self.bodies.line(|b| {
            escape(b, &measurement, &[',', ' ']);
            b.push_str(tags);
            b.push(' ');
            escape(b, field, &[',', '=', ' ']);
            b.push('=');
            match (as_float, value) {
                (true, _) => write!(b, "{f:?}").unwrap(),
                (false, MetricValue::Int(v)) => write!(b, "{v}i").unwrap(),
                (false, MetricValue::Float(v)) => write!(b, "{}i", v.round() as i64).unwrap(),
            }
            write!(b, " {ts}").unwrap();
        });
    }
}

/// The seed's series name: `<metric>_<units>_<type>`, units left out when they are a count.
///
/// The seed's own list spells two names against this rule (`memory/page_faults_gauge`, `filesystem/usage`). We
/// follow the rule for every metric, so `memory/page_faults` is `memory/page_faults_cumulative` (it is a
/// counter) and `filesystem/usage` is `filesystem/usage_bytes_gauge`: one rule a user can apply to any metric
/// beats two exceptions nobody can guess. Metrics outside the catalog (`custom/...`) keep their name.
pub fn legacy_name(metric: &str) -> Cow<'_, str> {
    match catalog::find(metric) {
        Some(d) if d.units == Units::Count => Cow::Owned(format!("{metric}_{}", d.metric_type.as_str())),
        Some(d) => Cow::Owned(format!("{metric}_{}_{}", d.units.as_str(), d.metric_type.as_str())),
        None => Cow::Borrowed(metric),
    }
}

/// `,k=v,k=v` for one point: the set's labels, the metric's own labels (which win on a clash) and the cluster.
fn tags(set: &Labels, metric: Option<&Labels>, cluster: Option<&str>, schema: Schema) -> String {
    let keep = |k: &str, v: &str| !v.is_empty() && (schema == Schema::Legacy || !BLACKLIST.contains(&k));
    let mut all: Vec<(&str, &str)> = set
        .iter()
        .filter(|(k, _)| metric.is_none_or(|m| !m.contains_key(k)))
        .chain(metric.into_iter().flatten())
        .map(|(k, v)| (&**k, v.as_str()))
        .filter(|(k, v)| keep(k, v) && *k != labels::CLUSTER_NAME)
        .collect();
    if let Some(c) = cluster.filter(|c| !c.is_empty()) {
        all.push((labels::CLUSTER_NAME, c));
    }
    all.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut s = String::new();
    for (k, v) in all {
        s.push(',');
        escape(&mut s, k, &[',', '=', ' ']);
        s.push('=');
        escape(&mut s, v, &[',', '=', ' ']);
    }
    s
}

/// Appends `s` with a backslash before each of `special`. Line protocol has no escape for a newline, so one
/// becomes a space rather than breaking the line in two.
pub(crate) fn escape(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        let c = if matches!(c, '\n' | '\r') { ' ' } else { c };
        match c {
            c if special.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::MetricSet;

    fn config(sink: &str) -> InfluxdbConfig {
        InfluxdbConfig::from_uri(&sink.parse().unwrap()).unwrap()
    }

    fn lines(batch: &DataBatch, sink: &str) -> Vec<String> {
        encode(batch, &config(sink)).bodies.concat().lines().map(String::from).collect()
    }

    /// A pod container and a node, with a labelled filesystem metric and labels that need escaping.
    fn batch() -> DataBatch {
        let mut pod = MetricSet::default();
        for (k, v) in [
            ("type", "pod_container"),
            ("pod_name", "web 1"),
            ("namespace_name", "default"),
            ("container_name", "nginx"),
            ("pod_id", "0c3b-uid"),
            ("hostname", "node-1"),
            ("nodename", "node-1"),
            ("labels", "app:web,tier=front"),
            ("container_base_image", ""),
        ] {
            pod.labels.insert(k, v);
        }
        pod.set("cpu/usage", MetricValue::Int(123_456_789));
        pod.set("cpu/usage_rate", MetricValue::Int(250));
        pod.set("memory/page_faults", MetricValue::Int(10));
        pod.set("uptime", MetricValue::Int(5000));
        let mut node = MetricSet::default();
        node.labels.insert("type", "node");
        node.labels.insert("nodename", "node-1");
        node.add_labeled(
            "filesystem/usage",
            Labels::from([("resource_id".to_owned(), "/dev/vda1".to_owned())]),
            MetricValue::Int(4096),
        );
        let mut b = DataBatch { timestamp: 1_700_000_000_000, ..Default::default() };
        b.sets.insert("namespace:default/pod:web 1/container:nginx".into(), pod);
        b.sets.insert("node:node-1".into(), node);
        b
    }

    const POD_TAGS: &str = "cluster_name=default,container_name=nginx,labels=app:web\\,tier\\=front,\
                            namespace_name=default,nodename=node-1,pod_name=web\\ 1,type=pod_container";

    #[test]
    fn heapster_schema() {
        let t = "1700000000000";
        assert_eq!(
            lines(&batch(), "influxdb:http://h:8086"),
            vec![
                format!("cpu/usage,{POD_TAGS} value=123456789i {t}"),
                format!("cpu/usage_rate,{POD_TAGS} value=250i {t}"),
                format!("memory/page_faults,{POD_TAGS} value=10i {t}"),
                format!("uptime,{POD_TAGS} value=5000i {t}"),
                format!(
                    "filesystem/usage,cluster_name=default,nodename=node-1,resource_id=/dev/vda1,type=node value=4096i {t}"
                ),
            ]
        );
    }

    #[test]
    fn withfields_schema() {
        let t = "1700000000000";
        let tags = POD_TAGS.replace("cluster_name=default", "cluster_name=prod");
        assert_eq!(
            lines(&batch(), "influxdb:http://h:8086?withfields=true&cluster_name=prod&disable_counter_metrics=true"),
            vec![
                format!("cpu,{tags} usage_rate=250i {t}"),
                format!("filesystem,cluster_name=prod,nodename=node-1,resource_id=/dev/vda1,type=node usage=4096i {t}"),
            ],
            "counters left out, gauges kept"
        );
    }

    #[test]
    fn legacy_schema_keeps_every_label_and_follows_the_naming_rule() {
        let t = "1700000000000";
        let tags = "container_name=nginx,hostname=node-1,labels=app:web\\,tier\\=front,namespace_name=default,\
                    nodename=node-1,pod_id=0c3b-uid,pod_name=web\\ 1,type=pod_container";
        assert_eq!(
            lines(&batch(), "influxdb:http://h:8086?schema=legacy"),
            vec![
                format!("cpu/usage_ns_cumulative,{tags} value=123456789i {t}"),
                format!("cpu/usage_rate_millicores_gauge,{tags} value=250i {t}"),
                format!("memory/page_faults_cumulative,{tags} value=10i {t}"),
                format!("uptime_ms_cumulative,{tags} value=5000i {t}"),
                format!("filesystem/usage_bytes_gauge,nodename=node-1,resource_id=/dev/vda1,type=node value=4096i {t}"),
            ]
        );
    }

    #[test]
    fn the_seeds_names() {
        let seed = [
            ("cpu/usage", "cpu/usage_ns_cumulative"),
            ("memory/usage", "memory/usage_bytes_gauge"),
            ("memory/working_set", "memory/working_set_bytes_gauge"),
            ("network/rx", "network/rx_bytes_cumulative"),
            ("network/rx_errors", "network/rx_errors_cumulative"),
            ("network/tx", "network/tx_bytes_cumulative"),
            ("network/tx_errors", "network/tx_errors_cumulative"),
            ("uptime", "uptime_ms_cumulative"),
            // The seed's two rule-breakers, written by the rule (see `legacy_name`).
            ("memory/page_faults", "memory/page_faults_cumulative"),
            ("filesystem/usage", "filesystem/usage_bytes_gauge"),
            ("custom/qps", "custom/qps"),
        ];
        for (metric, want) in seed {
            assert_eq!(legacy_name(metric), want);
        }
    }

    #[test]
    fn escaping_field_types_and_odd_values() {
        let mut set = MetricSet::default();
        set.labels.insert("type", "sys_container");
        set.labels.insert("container_name", "a=b, c\nd");
        set.labels.insert("cluster_name", "from-labels");
        // Float catalog metric given as an integer, integer catalog metric given as a float, a custom float,
        // and a NaN that line protocol cannot carry.
        set.set("network/rx_rate", MetricValue::Int(3));
        set.set("memory/usage", MetricValue::Float(10.6));
        set.metrics.insert("custom/a b,c", MetricValue::Float(0.25));
        set.set("memory/page_faults_rate", MetricValue::Float(f64::NAN));
        let mut b = DataBatch { timestamp: 5, ..Default::default() };
        b.sets.insert("k".into(), set);
        let got = encode(&b, &config("influxdb:http://h?cluster_name=c%201"));
        let tags = "cluster_name=c\\ 1,container_name=a\\=b\\,\\ c\\ d,type=sys_container";
        let mut want = vec![
            format!("custom/a\\ b\\,c,{tags} value=0.25 5"),
            format!("network/rx_rate,{tags} value=3.0 5"),
            format!("memory/usage,{tags} value=11i 5"),
        ];
        want.sort();
        let mut lines: Vec<String> = got.bodies.concat().lines().map(String::from).collect();
        lines.sort();
        assert_eq!(lines, want);
        assert_eq!((got.points, got.unrepresentable), (3, 1));
    }

    #[test]
    fn gzip_bodies_decompress_to_the_line_protocol() {
        use std::io::Read as _;
        let body = encode(&batch(), &config("influxdb:http://h")).bodies.concat();
        let packed = gzip(body.as_bytes());
        assert_eq!(&packed[..2], &[0x1f, 0x8b], "gzip magic");
        let mut back = String::new();
        flate2::read::GzDecoder::new(&packed[..]).read_to_string(&mut back).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn bodies_are_cut_at_batch_points() {
        let got = encode(&batch(), &config("influxdb:http://h?batch_points=2"));
        assert_eq!(got.points, 5);
        assert_eq!(got.bodies.iter().map(|b| b.lines().count()).collect::<Vec<_>>(), vec![2, 2, 1]);
    }
}
