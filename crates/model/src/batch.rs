//! What one scrape round produces: a [`DataBatch`] of [`MetricSet`]s keyed as in [`crate::keys`].

use crate::LabelValue;
use crate::keys::MetricSetType;
pub use crate::metric_map::MetricMap;
use serde::{Serialize, Serializer};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Milliseconds since the Unix epoch. Whole milliseconds are all any source or sink resolves.
pub type Timestamp = i64;

/// Labels of a metric set or of one labelled metric, by label name. Sorted, so equal label sets compare and hash
/// equal; one vector (see [`crate::metric_map`]), with the well-known names borrowed rather than copied and the
/// values shared between the sets that carry them ([`crate::LabelValue`]).
pub type Labels = crate::metric_map::NameMap<crate::LabelValue>;

/// Catalog names are `&'static str` (no allocation per point); `custom/<name>` metrics own their name.
pub type MetricName = Cow<'static, str>;

/// A metric value that keeps its type: integer counters stay exact, rates stay fractional.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    Int(i64),
    Float(f64),
}

impl MetricValue {
    /// An integer value from an unsigned reading, saturating at `i64::MAX` instead of wrapping negative.
    pub fn from_u64(v: u64) -> Self {
        MetricValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }

    pub fn as_f64(self) -> f64 {
        match self {
            MetricValue::Int(v) => v as f64,
            MetricValue::Float(v) => v,
        }
    }
}

impl Serialize for MetricValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            MetricValue::Int(v) => s.serialize_i64(v),
            MetricValue::Float(v) => s.serialize_f64(v),
        }
    }
}

/// A metric that carries labels of its own, e.g. `filesystem/usage` with `resource_id=/dev/sda1`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledMetric {
    pub name: MetricName,
    /// Shared: a filesystem's usage, limit, available and inode counts all carry the same `resource_id`, and a
    /// label map of its own for each was most of a container's memory in a batch (a map node is ~0.5 KB).
    pub labels: Arc<Labels>,
    pub value: MetricValue,
}

/// One entity's metrics at one time.
#[derive(Debug, Clone, Default)]
pub struct MetricSet {
    /// When the entity (container, pod, node) was created or started; 0 when unknown. A change of create time
    /// means a restart, and rates start a new segment.
    pub create_time: Timestamp,
    /// When these values were read.
    pub scrape_time: Timestamp,
    pub labels: Labels,
    /// Unlabelled values by name, in name order.
    pub metrics: MetricMap,
    pub labeled_metrics: Vec<LabeledMetric>,
    /// The `type` label, parsed, when it was set with [`MetricSet::set_kind`]. Every processor asks every set its
    /// type; finding it in the label map (string compares over separately allocated keys) was a tenth of a
    /// round's CPU at 500 nodes. Not part of equality: it only caches the label.
    pub kind: Option<MetricSetType>,
}

impl PartialEq for MetricSet {
    fn eq(&self, other: &Self) -> bool {
        self.create_time == other.create_time
            && self.scrape_time == other.scrape_time
            && self.labels == other.labels
            && self.metrics == other.metrics
            && self.labeled_metrics == other.labeled_metrics
    }
}

impl MetricSet {
    /// The set's `type` label, if it has one.
    pub fn set_type(&self) -> Option<&str> {
        match self.kind {
            Some(k) => Some(k.as_str()),
            None => self.labels.get(crate::labels::TYPE).map(LabelValue::as_str),
        }
    }

    /// Sets the `type` label and remembers it parsed, so that [`MetricSet::set_type`] need not look it up. Sets
    /// whose `type` label is written directly still answer, from the label map.
    pub fn set_kind(&mut self, kind: MetricSetType) {
        self.labels.insert(crate::labels::TYPE, kind.label_value());
        self.kind = Some(kind);
    }

    /// Sets a catalog metric. Taking `&'static str` keeps catalog names free of allocation.
    pub fn set(&mut self, name: &'static str, value: MetricValue) {
        self.metrics.insert(Cow::Borrowed(name), value);
    }

    /// Sets a catalog metric from an unsigned reading, when there is one: an absent reading stays absent. Sources
    /// read counters as `u64`; beyond `i64::MAX` they cannot occur in practice, so they saturate rather than wrap.
    pub fn put_u64(&mut self, name: &'static str, v: Option<u64>) {
        if let Some(v) = v {
            self.set(name, MetricValue::from_u64(v));
        }
    }

    /// [`MetricSet::put_u64`] for a labelled metric.
    pub fn put_labeled_u64(&mut self, name: &'static str, labels: &Arc<Labels>, v: Option<u64>) {
        if let Some(v) = v {
            self.add_labeled(name, labels.clone(), MetricValue::from_u64(v));
        }
    }

    pub fn get(&self, name: &str) -> Option<MetricValue> {
        self.metrics.get(name).copied()
    }

    pub fn add_labeled(&mut self, name: &'static str, labels: impl Into<Arc<Labels>>, value: MetricValue) {
        self.labeled_metrics.push(LabeledMetric { name: Cow::Borrowed(name), labels: labels.into(), value });
    }
}

/// One scrape round: every metric set seen, under one timestamp.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataBatch {
    pub timestamp: Timestamp,
    pub sets: BTreeMap<String, MetricSet>,
}

impl DataBatch {
    /// Number of values, counting each labelled metric once.
    pub fn point_count(&self) -> usize {
        self.sets.values().map(|s| s.metrics.len() + s.labeled_metrics.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_type_in_json() {
        assert_eq!(serde_json::to_string(&MetricValue::Int(3)).unwrap(), "3");
        assert_eq!(serde_json::to_string(&MetricValue::Float(2.5)).unwrap(), "2.5");
    }

    #[test]
    fn the_set_type_is_the_label_whether_set_with_set_kind_or_written_directly() {
        let mut a = MetricSet::default();
        a.set_kind(MetricSetType::PodContainer);
        assert_eq!((a.set_type(), a.labels["type"].as_str()), (Some("pod_container"), "pod_container"));
        let mut b = MetricSet::default();
        b.labels.insert("type", "pod_container");
        assert_eq!(b.set_type(), Some("pod_container"));
        assert_eq!(a, b, "the cached kind is not part of equality");
        assert_eq!(MetricSet::default().set_type(), None);
    }
}
