//! Batches as OpenTSDB `/api/put` bodies, with Heapster's names and tags (`metrics/sinks/opentsdb/driver.go`):
//!
//! - metric: the name with every character outside `A-Z a-z 0-9 - _ . /` replaced by `_`, then `/` by `_`, then
//!   `_` and the metric's type: `cpu/usage` is `cpu_usage_cumulative`, `memory/usage` is `memory_usage_gauge`
//!   (metrics outside the catalog are `_gauge`);
//! - tags: the set's labels, keys and values sanitised the same way, empty values left out, plus
//!   `cluster=<cluster>`; a labelled metric adds its own labels (`resource_id`);
//! - timestamp: the batch's, in seconds; value: an integer or a float, as the value is.
//!
//! OpenTSDB refuses a point with more tags than its `tsd.storage.max_tags` (8 by default), and Heapster sent
//! twelve or more for every container, so a stock OpenTSDB stored none of them. Here, over `max_tags`, the
//! labels least useful for queries go first (see [`DROP_FIRST`]); a point still over the limit is left out and
//! counted.

use heapster_model::catalog;
use heapster_model::{DataBatch, Labels, MetricValue, labels};
use std::borrow::Cow;
use std::fmt::Write as _;

/// The labels given up, in this order, when a point has more tags than `max_tags`: heapster-rs' additions, then
/// UIDs, which change at every restart and only multiply series, then what repeats another tag or is free text.
pub const DROP_FIRST: &[&str] = &[
    labels::POD_NAMESPACE,
    labels::SCHEDULABLE,
    labels::POD_ID,
    labels::NAMESPACE_ID,
    labels::HOST_ID,
    labels::HOSTNAME,
    labels::LABELS,
    labels::CONTAINER_BASE_IMAGE,
];

/// The tag holding the cluster's name (Heapster's `clusterNameTagName`).
pub const CLUSTER_TAG: &str = "cluster";

#[derive(Debug, Default)]
pub struct Encoded {
    /// JSON arrays of at most `batch_points` points.
    pub bodies: Vec<String>,
    /// Points in each body.
    pub counts: Vec<usize>,
    /// NaN and infinite values, which JSON cannot carry.
    pub unrepresentable: usize,
    /// Points with more than `max_tags` tags even after [`DROP_FIRST`].
    pub too_many_tags: usize,
}

impl Encoded {
    pub fn points(&self) -> usize {
        self.counts.iter().sum()
    }
}

/// OpenTSDB's character rule for metric names, tag keys and tag values: anything else becomes `_`, one per
/// character (Heapster's `toValidOpenTsdbName`).
pub fn sanitize(s: &str) -> Cow<'_, str> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/');
    if s.chars().all(ok) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| if ok(c) { c } else { '_' }).collect())
}

/// The metric name Heapster gave `name` (`cpu/usage` -> `cpu_usage_cumulative`).
pub fn metric_name(name: &str) -> String {
    let kind = catalog::find(name).map_or("gauge", |d| d.metric_type.as_str());
    format!("{}_{kind}", sanitize(name).replace('/', "_"))
}

/// Encodes `batch` into bodies of at most `batch_points` points.
pub fn encode(batch: &DataBatch, cluster: &str, max_tags: usize, batch_points: usize) -> Encoded {
    let mut out = Encoded::default();
    let mut body = String::new();
    let mut in_body = 0;
    let ts = batch.timestamp.div_euclid(1000);
    for set in batch.sets.values() {
        let set_tags = tags(&set.labels, None, cluster, max_tags);
        let metrics = set.metrics.iter().map(|(n, v)| (&**n, *v, None));
        let labeled = set.labeled_metrics.iter().map(|m| (&*m.name, m.value, Some(&*m.labels)));
        for (name, value, own) in metrics.chain(labeled) {
            let f = value.as_f64();
            if !f.is_finite() {
                out.unrepresentable += 1;
                continue;
            }
            let own_tags;
            let tags = match own {
                None => &set_tags,
                Some(l) => {
                    own_tags = tags(&set.labels, Some(l), cluster, max_tags);
                    &own_tags
                }
            };
            let Some(tags) = tags else {
                out.too_many_tags += 1;
                continue;
            };
            body.push(if in_body == 0 { '[' } else { ',' });
            // Every string here is sanitised to `A-Za-z0-9-_./`: nothing to escape in JSON.
            write!(body, "{{\"metric\":\"{}\",\"timestamp\":{ts},\"value\":", metric_name(name)).unwrap();
            match value {
                MetricValue::Int(v) => write!(body, "{v}").unwrap(),
                MetricValue::Float(v) => write!(body, "{v:?}").unwrap(),
            }
            write!(body, ",\"tags\":{tags}}}").unwrap();
            in_body += 1;
            if in_body == batch_points {
                body.push(']');
                out.bodies.push(std::mem::take(&mut body));
                out.counts.push(in_body);
                in_body = 0;
            }
        }
    }
    if in_body > 0 {
        body.push(']');
        out.bodies.push(body);
        out.counts.push(in_body);
    }
    out
}

/// The JSON object of a point's tags, or None when even after [`DROP_FIRST`] they are more than `max_tags`.
fn tags(set: &Labels, own: Option<&Labels>, cluster: &str, max_tags: usize) -> Option<String> {
    let mut all: Vec<(Cow<str>, Cow<str>)> = set
        .iter()
        .filter(|(k, _)| own.is_none_or(|o| !o.contains_key(k)))
        .chain(own.into_iter().flatten())
        .filter(|(k, v)| !v.is_empty() && &***k != CLUSTER_TAG)
        .map(|(k, v)| (sanitize(k), sanitize(v)))
        .collect();
    all.push((Cow::Borrowed(CLUSTER_TAG), sanitize(cluster)));
    for drop in DROP_FIRST {
        if max_tags == 0 || all.len() <= max_tags {
            break;
        }
        all.retain(|(k, _)| k != drop);
    }
    if max_tags > 0 && all.len() > max_tags {
        return None;
    }
    all.sort_unstable();
    let mut s = String::from("{");
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        write!(s, "\"{k}\":\"{v}\"").unwrap();
    }
    s.push('}');
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::MetricSet;
    use serde_json::{Value, json};
    use std::sync::Arc;

    fn container() -> MetricSet {
        let mut s = MetricSet::default();
        for (k, v) in [
            ("type", "pod_container"),
            ("pod_name", "redis-test"),
            ("namespace_name", "default"),
            ("container_name", "redis"),
            ("container_base_image", "kubernetes/redis:v1"),
            ("pod_id", "redis-test-uid"),
            ("namespace_id", "namespace-test-uid"),
            ("host_id", "192.168.1.23"),
            ("hostname", "node-1"),
            ("nodename", "node-1"),
            ("labels", "app:redis,tier=db"),
            ("pod_namespace", "default"),
        ] {
            s.labels.insert(k, v.to_owned());
        }
        s
    }

    fn points(e: &Encoded) -> Vec<Value> {
        e.bodies.iter().flat_map(|b| serde_json::from_str::<Vec<Value>>(b).unwrap()).collect()
    }

    #[test]
    fn heapster_names_tags_and_values() {
        let mut s = MetricSet::default();
        s.set("cpu/limit", MetricValue::Int(1000));
        s.set("cpu/usage", MetricValue::Int(43_363_664));
        s.set("cpu/node_utilization", MetricValue::Float(0.25));
        s.metrics.insert("custom/queue depth", MetricValue::Int(-3));
        let b = DataBatch { timestamp: 1_700_000_000_500, sets: [("m1".to_owned(), s)].into() };
        let e = encode(&b, "fakeClusterName", 8, 1000);
        let tags = json!({"cluster": "fakeClusterName"});
        assert_eq!(
            points(&e),
            [
                json!({"metric": "cpu_limit_gauge", "timestamp": 1_700_000_000, "value": 1000, "tags": tags}),
                json!({"metric": "cpu_node_utilization_gauge", "timestamp": 1_700_000_000, "value": 0.25, "tags": tags}),
                json!({"metric": "cpu_usage_cumulative", "timestamp": 1_700_000_000, "value": 43_363_664, "tags": tags}),
                json!({"metric": "custom_queue_depth_gauge", "timestamp": 1_700_000_000, "value": -3, "tags": tags}),
            ]
        );
    }

    #[test]
    fn tags_are_sanitised_and_kept_within_max_tags() {
        let mut s = container();
        s.set("memory/usage", MetricValue::Int(487_424));
        s.add_labeled(
            "filesystem/usage",
            Arc::new(Labels::from([("resource_id", "/dev/sda1".to_owned())])),
            MetricValue::Int(32_768),
        );
        let b = DataBatch { timestamp: 1_000, sets: [("c".to_owned(), s.clone())].into() };
        let e = encode(&b, "prod", 8, 1000);
        let p = points(&e);
        assert_eq!(
            p[0]["tags"],
            json!({"cluster": "prod", "type": "pod_container", "pod_name": "redis-test", "namespace_name": "default",
                   "container_name": "redis", "nodename": "node-1", "labels": "app_redis_tier_db",
                   "container_base_image": "kubernetes/redis_v1"})
        );
        assert_eq!(
            p[1]["tags"],
            json!({"cluster": "prod", "type": "pod_container", "pod_name": "redis-test", "namespace_name": "default",
                   "container_name": "redis", "nodename": "node-1", "container_base_image": "kubernetes/redis_v1",
                   "resource_id": "/dev/sda1"})
        );
        assert_eq!(p[1]["metric"], "filesystem_usage_gauge");
        // max_tags=0: every label, as Heapster sent them.
        let all = points(&encode(&b, "prod", 0, 1000));
        assert_eq!(all[0]["tags"].as_object().unwrap().len(), 13);
        // Labels of the user's own that do not fit are not guessed at: the point is left out and counted.
        s.labels.insert("team", "a".to_owned());
        s.labels.insert("zone", "b".to_owned());
        s.labels.insert("tier", "c".to_owned());
        let b = DataBatch { timestamp: 1_000, sets: [("c".to_owned(), s)].into() };
        let e = encode(&b, "prod", 8, 1000);
        assert_eq!((e.points(), e.too_many_tags), (0, 2));
    }

    #[test]
    fn bodies_are_cut_at_batch_points_and_non_finite_values_left_out() {
        let mut s = MetricSet::default();
        for (i, d) in catalog::CATALOG.iter().filter(|d| !d.labeled).take(25).enumerate() {
            s.set(d.name, MetricValue::Int(i as i64));
        }
        s.set("cpu/node_utilization", MetricValue::Float(f64::NAN));
        let b = DataBatch { timestamp: 1_000, sets: [("n".to_owned(), s)].into() };
        let e = encode(&b, "c", 8, 10);
        assert_eq!(e.counts, [10, 10, 4]);
        assert_eq!(e.unrepresentable, 1);
        assert_eq!(points(&e).len(), 24);
    }

    #[test]
    fn sanitising_is_heapsters() {
        assert_eq!(sanitize("io.kubernetes.pod.name"), "io.kubernetes.pod.name");
        assert_eq!(sanitize("default/redis-test"), "default/redis-test");
        assert_eq!(sanitize("app:web, tier=ü"), "app_web__tier__");
        assert_eq!(metric_name("network/rx_rate"), "network_rx_rate_gauge");
    }
}
