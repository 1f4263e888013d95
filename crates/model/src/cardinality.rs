//! What `/api/v1/cardinality` shows: per sink with a cardinality governor (`max_series=`, `labels_deny=`, ...),
//! its budget, the series offered, written, cut and merged in the last round, and the metrics and labels that
//! make the most series. The sinks' governor answers it; the API only serves it, through [`CardinalityReport`],
//! so the API does not depend on the sinks.

use serde::Serialize;

/// Answers `/api/v1/cardinality`.
pub trait CardinalityReport: Send + Sync {
    /// Every governed sink, in `--sink` order, with at most `top` metrics and `top` labels each.
    fn cardinality(&self, top: usize) -> Vec<SinkCardinality>;
}

/// One sink's governor after its last round.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SinkCardinality {
    pub sink: String,
    pub budget: Budget,
    /// Timestamp (ms) of the last batch governed; 0 before the first.
    pub timestamp: i64,
    /// Series in the last batch, after the label lists (merged series counted once).
    pub offered: usize,
    /// Series handed to the sink.
    pub written: usize,
    /// Series over a budget, left out: `offered - written`.
    pub cut: usize,
    /// Series that became equal to another once labels were dropped, and were written as one.
    pub merged: usize,
    /// The metrics with the most series offered, most first.
    pub top_metrics: Vec<MetricCardinality>,
    /// The labels with the most distinct values among the series offered (before the label lists), most first.
    pub top_labels: Vec<LabelCardinality>,
}

/// The options of a sink's governor.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Budget {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_series: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_series_per_metric: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels_allow: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels_deny: Vec<String>,
}

/// One metric's series in the last round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricCardinality {
    pub metric: String,
    pub offered: usize,
    pub written: usize,
    pub cut: usize,
}

/// One label's distinct values in the last round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelCardinality {
    pub label: String,
    pub values: usize,
    /// Whether the label lists drop it before writing.
    pub dropped: bool,
}
