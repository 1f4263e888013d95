//! JSON shapes of Heapster's `metrics/api/v1/types` (`model_types.go`, `types.go`), field names unchanged.

use heapster_model::{Labels, MetricValue, Timestamp};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

pub use heapster_model::time::{GO_ZERO_TIME, rfc3339};

/// A timestamp that serializes as RFC 3339; `None` is Go's zero time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Time(pub Option<Timestamp>);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(ts) => s.serialize_str(&rfc3339(ts)),
            None => s.serialize_str(GO_ZERO_TIME),
        }
    }
}

/// How the model and historical APIs write a point's `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueStyle {
    /// Heapster's `uint64` (`types.MetricPoint.Value`): a fraction truncated toward zero as Go's
    /// `uint64(int64(f))`, so Go clients of the original (the HPA's legacy client, the old dashboard) decode it.
    #[default]
    Heapster,
    /// The stored type: integers for counters and gauges, fractions for rates (`--api_typed_values`).
    Typed,
}

impl ValueStyle {
    /// `v` as this style writes it.
    pub fn value(self, v: MetricValue) -> MetricValue {
        match (self, v) {
            (ValueStyle::Typed, v) | (ValueStyle::Heapster, v @ MetricValue::Int(_)) => v,
            // Go's int64(f) truncates toward zero; NaN and infinities, which Go leaves undefined, become 0.
            (ValueStyle::Heapster, MetricValue::Float(f)) => MetricValue::Int(if f.is_finite() { f as i64 } else { 0 }),
        }
    }
}

/// One value of a metric, written as [`ValueStyle`] says.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricPoint {
    pub timestamp: Time,
    #[serde(serialize_with = "heapster_uint64")]
    pub value: MetricValue,
}

/// Heapster's `value` was a `uint64`: an integer below zero (which no metric should carry) wraps as Go's
/// `uint64(int64)` does, so the JSON stays a valid `uint64` for Go clients.
fn heapster_uint64<S: Serializer>(v: &MetricValue, s: S) -> Result<S::Ok, S::Error> {
    match *v {
        MetricValue::Int(i) => s.serialize_u64(i as u64),
        MetricValue::Float(f) => s.serialize_f64(f),
    }
}

/// A metric's points, oldest first, and the newest timestamp among them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    pub metrics: Vec<MetricPoint>,
    pub latest_timestamp: Time,
}

impl MetricResult {
    pub fn from_points(points: &[heapster_store::Point], style: ValueStyle) -> Self {
        MetricResult {
            metrics: points
                .iter()
                .map(|p| MetricPoint { timestamp: Time(Some(p.timestamp)), value: style.value(p.value) })
                .collect(),
            latest_timestamp: Time(points.iter().map(|p| p.timestamp).max()),
        }
    }
}

/// The answer of `pod-list`: one result per requested pod, in request order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricResultList {
    pub items: Vec<MetricResult>,
}

/// A value of an aggregation (Heapster's `types.MetricValue`): `{"intValue":N}` or `{"floatValue":X}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregationValue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_value: Option<f64>,
}

impl From<MetricValue> for AggregationValue {
    fn from(v: MetricValue) -> Self {
        match v {
            MetricValue::Int(i) => AggregationValue { int_value: Some(i), float_value: None },
            MetricValue::Float(f) => AggregationValue { int_value: None, float_value: Some(f) },
        }
    }
}

/// One bucket of `metrics-aggregated` (Heapster's `MetricAggregationBucket`): its start, and each requested
/// aggregation; the ones not requested are left out, percentiles keyed `"50"`, `"95"`, `"99"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricAggregationBucket {
    pub timestamp: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average: Option<AggregationValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<AggregationValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<AggregationValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median: Option<AggregationValue>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub percentiles: BTreeMap<String, AggregationValue>,
}

/// The buckets of one entity, oldest first, and their size in nanoseconds (Go's `time.Duration`); 0 when one
/// bucket spans the whole range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricAggregationResult {
    pub buckets: Vec<MetricAggregationBucket>,
    pub bucket_size: i64,
}

/// The answer of `pod-list/.../metrics-aggregated`: one result per requested pod, in request order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricAggregationResultList {
    pub items: Vec<MetricAggregationResult>,
}

/// One entity of `metric-export`: its labels and, per metric, its latest value(s).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeseries {
    pub metrics: BTreeMap<String, Vec<Point>>,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
}

/// A value of `metric-export`. `start` is the entity's create time for cumulative metrics (the counter's origin),
/// the batch time otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub start: Time,
    pub end: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    pub value: MetricValue,
}

/// `metric-export-schema`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeseriesSchema {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricDescriptor>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub common_labels: Vec<LabelDescriptor>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pod_labels: Vec<LabelDescriptor>,
}

/// A metric as Heapster's schema described it (`type`: cumulative/gauge, `value_type`: int64/double).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricDescriptor {
    pub name: &'static str,
    pub description: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<LabelDescriptor>,
    #[serde(rename = "type")]
    pub metric_type: &'static str,
    pub value_type: &'static str,
    pub units: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelDescriptor {
    pub key: &'static str,
    pub description: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_like_go() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1500), "1970-01-01T00:00:01.500Z");
        assert_eq!(serde_json::to_string(&Time(None)).unwrap(), "\"0001-01-01T00:00:00Z\"");
        assert_eq!(rfc3339(i64::MAX), GO_ZERO_TIME);
    }
}
