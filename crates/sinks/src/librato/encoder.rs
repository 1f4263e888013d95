//! Batches as Librato tagged measurements (`POST /v1/measurements`), with Heapster's names and tags
//! (`metrics/sinks/librato`):
//!
//! - name: the prefix and the metric's name with `/` as `.` (`k8s.cpu.usage_rate`), every character outside
//!   `A-Za-z0-9.:-_` as `_`, at most 255 characters;
//! - tags: the set's labels and a labelled metric's own (`resource_id`), names with characters outside
//!   `-.:_A-Za-z0-9` as `_` (at most 64), values the same plus space (at most 255); the request's top-level `tags`
//!   are the `tags=` option's;
//! - value: a number; time: the batch's, in seconds.
//!
//! Heapster's bugs fixed here: its name pattern `[^A-Za-z0-9.:-_]` read `:-_` as a range, letting `;<=>?@[\]^`
//! through into names Librato refuses; its `value,omitempty` left every 0 value out, which Librato refuses
//! ("value is not present"); and it sent empty tag values, which Librato's `{1,255}` refuses. Here a 0 is sent,
//! and empty labels are left out.

use crate::util::json_batch::{JsonArrays, values};
use heapster_model::{DataBatch, Labels};
use serde::Serialize;
use std::collections::BTreeMap;

pub const MAX_NAME: usize = 255;
pub const MAX_TAG_NAME: usize = 64;
pub const MAX_TAG_VALUE: usize = 255;

fn clean(s: &str, ok: impl Fn(char) -> bool, max: usize) -> String {
    let mut out: String = s.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    // Only ASCII is left: cutting by bytes cuts by characters.
    out.truncate(max);
    out
}

pub fn measurement_name(prefix: &str, metric: &str) -> String {
    let name = format!("{prefix}{}", metric.replace('/', "."));
    clean(&name, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_'), MAX_NAME)
}

pub fn tag_name(s: &str) -> String {
    clean(s, |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_'), MAX_TAG_NAME)
}

pub fn tag_value(s: &str) -> String {
    clean(s, |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_' | ' '), MAX_TAG_VALUE)
}

#[derive(Serialize)]
struct Measurement<'a> {
    name: String,
    value: f64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: &'a BTreeMap<String, String>,
    time: i64,
}

#[derive(Debug, Default)]
pub struct Encoded {
    /// `{"tags":{..},"measurements":[..]}` bodies, keyed `b<i>`.
    pub bodies: Vec<crate::util::json_batch::JsonBody>,
    /// NaN and infinite values, which JSON cannot carry.
    pub unrepresentable: usize,
}

fn tags_of(set: &Labels, own: Option<&Labels>) -> BTreeMap<String, String> {
    set.iter()
        .chain(own.into_iter().flat_map(|l| l.iter()))
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (tag_name(k), tag_value(v)))
        .collect()
}

/// Encodes `batch` into request bodies of at most `batch_points` measurements, with `global` as every request's
/// top-level tags.
pub fn encode(batch: &DataBatch, prefix: &str, global: &BTreeMap<String, String>, batch_points: usize) -> Encoded {
    let open = if global.is_empty() {
        "{\"measurements\":[".to_owned()
    } else {
        format!("{{\"tags\":{},\"measurements\":[", serde_json::to_string(global).expect("strings serialise"))
    };
    let mut arrays = JsonArrays::new(batch_points, usize::MAX, open, "]}");
    let mut out = Encoded::default();
    let time = batch.timestamp.div_euclid(1000);
    let mut n = 0usize;
    for set in batch.sets.values() {
        let set_tags = tags_of(&set.labels, None);
        for (name, value, own) in values(set) {
            let value = value.as_f64();
            if !value.is_finite() {
                out.unrepresentable += 1;
                continue;
            }
            let own_tags = own.map(|l| tags_of(&set.labels, Some(l)));
            let m = Measurement {
                name: measurement_name(prefix, name),
                value,
                tags: own_tags.as_ref().unwrap_or(&set_tags),
                time,
            };
            arrays.push(n.to_string(), &serde_json::to_string(&m).expect("strings and finite numbers serialise"));
            n += 1;
        }
    }
    out.bodies = arrays.finish();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::{MetricSet, MetricValue};
    use serde_json::{Value, json};
    use std::sync::Arc;

    #[test]
    fn names_and_tags_follow_librato_rules_and_fix_heapsters_pattern() {
        assert_eq!(measurement_name("k8s.", "cpu/usage_rate"), "k8s.cpu.usage_rate");
        // Heapster's `:-_` range let these through.
        assert_eq!(measurement_name("", "custom/a@b[c]=d^e"), "custom.a_b_c__d_e");
        assert_eq!(measurement_name("", &"x".repeat(300)).len(), 255);
        assert_eq!(tag_name("io.kubernetes/pod name"), "io.kubernetes_pod_name");
        assert_eq!(tag_value("app:web,tier=db ü"), "app:web_tier_db _");
        assert_eq!(tag_value(&"v".repeat(300)).len(), 255);
    }

    #[test]
    fn measurements_carry_the_batchs_values_zeros_included_and_labelled_metrics_their_labels() {
        let mut s = MetricSet::default();
        for (k, v) in [("type", "pod"), ("pod_name", "web-1"), ("labels", "")] {
            s.labels.insert(k, v.to_owned());
        }
        s.set("cpu/usage_rate", MetricValue::Int(0));
        s.set("memory/usage", MetricValue::Float(f64::NAN));
        s.add_labeled(
            "filesystem/usage",
            Arc::new(Labels::from([("resource_id", "/dev/sda1".to_owned())])),
            MetricValue::Int(7),
        );
        let b = DataBatch { timestamp: 1_700_000_000_999, sets: [("p".to_owned(), s)].into() };
        let global = BTreeMap::from([("cluster".to_owned(), "staging".to_owned())]);
        let e = encode(&b, "k8s.", &global, 1000);
        assert_eq!(e.unrepresentable, 1);
        let v: Value = serde_json::from_str(&e.bodies[0].text).unwrap();
        assert_eq!(
            v,
            json!({"tags": {"cluster": "staging"}, "measurements": [
                {"name": "k8s.cpu.usage_rate", "value": 0.0, "time": 1_700_000_000, "tags": {"type": "pod", "pod_name": "web-1"}},
                {"name": "k8s.filesystem.usage", "value": 7.0, "time": 1_700_000_000,
                 "tags": {"type": "pod", "pod_name": "web-1", "resource_id": "_dev_sda1"}}]})
        );
        let e = encode(&b, "", &BTreeMap::new(), 1);
        assert_eq!(e.bodies.len(), 2);
        assert!(
            e.bodies[1].text.starts_with("{\"measurements\":[{\"name\":\"filesystem.usage\""),
            "{}",
            e.bodies[1].text
        );
    }
}
