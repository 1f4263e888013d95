//! Query parameters of the metric routes: `start`, `end` and `labels`, parsed as Heapster parsed them.

use crate::error::ApiError;
use chrono::DateTime;
use heapster_model::{Labels, Timestamp};
use std::collections::HashMap;

/// Metric names Heapster 0.x clients used; Heapster 1.x kept accepting them ("deprecated, switch ASAP").
const DEPRECATED_METRIC_NAMES: &[(&str, &str)] = &[
    ("cpu-usage", "cpu/usage_rate"),
    ("cpu-limit", "cpu/limit"),
    ("memory-limit", "memory/limit"),
    ("memory-usage", "memory/usage"),
    ("memory-working", "memory/working_set"),
];

/// Maps a deprecated metric name to its current name; other names pass through. A trailing `/` (the path catches
/// everything after `metrics/`, and clients add one) is dropped.
pub fn metric_name(raw: &str) -> &str {
    let name = raw.trim_end_matches('/');
    DEPRECATED_METRIC_NAMES.iter().find(|(old, _)| *old == name).map_or(name, |(_, new)| new)
}

/// What a metric-values request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    /// Inclusive lower bound; `None` is Heapster's zero time (everything in the window).
    pub start: Option<Timestamp>,
    /// Inclusive upper bound; Heapster's default is now.
    pub end: Timestamp,
    /// The labelled series asked for; `None` selects the unlabelled series, as in Heapster.
    pub labels: Option<Labels>,
}

impl MetricQuery {
    /// Parses `start`, `end` and `labels`; `now` is the default end.
    pub fn parse(query: &HashMap<String, String>, now: Timestamp) -> Result<Self, ApiError> {
        let start = query.get("start").filter(|s| !s.is_empty()).map(|s| parse_time("start", s)).transpose()?;
        let end = query.get("end").filter(|s| !s.is_empty()).map(|s| parse_time("end", s)).transpose()?.unwrap_or(now);
        if let Some(start) = start
            && start > end
        {
            return Err(ApiError::bad_request(format!("start ({start} ms) is after end ({end} ms)")));
        }
        let labels = query.get("labels").map(|s| parse_labels(s)).transpose()?.flatten();
        Ok(MetricQuery { start, end, labels })
    }
}

/// Parses an RFC 3339 time into milliseconds since the epoch.
///
/// A `+` in a query string decodes to a space, so `2024-01-01T00:00:00+01:00` sent unescaped arrives as
/// `...00 01:00`; the space is read back as `+` instead of failing on what the user obviously meant.
pub fn parse_time(param: &str, raw: &str) -> Result<Timestamp, ApiError> {
    let fixed = raw.trim().replace(' ', "+");
    DateTime::parse_from_rfc3339(&fixed).map(|t| t.timestamp_millis()).map_err(|e| {
        ApiError::bad_request(format!("{param}: timestamp argument {raw:?} cannot be parsed as RFC 3339: {e}"))
    })
}

/// Parses Heapster's `labels=key1:val1,key2:val2`. An empty string means "no labels" (`None`), as in Heapster; a
/// pair without a key or a value is an error. Values may contain `:` (only the first one splits).
pub fn parse_labels(raw: &str) -> Result<Option<Labels>, ApiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let mut labels = Labels::new();
    for pair in raw.split(',') {
        match pair.split_once(':') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                labels.insert(k.to_owned(), v.to_owned());
            }
            _ => return Err(ApiError::bad_request(format!("labels: invalid label pair {pair:?}, want key:value"))),
        }
    }
    Ok(Some(labels))
}

/// Now, in the store's unit.
pub fn now_millis() -> Timestamp {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deprecated_names_convert() {
        assert_eq!(metric_name("cpu-usage"), "cpu/usage_rate");
        assert_eq!(metric_name("memory-working"), "memory/working_set");
        assert_eq!(metric_name("cpu/usage/"), "cpu/usage");
        assert_eq!(metric_name("network/rx"), "network/rx");
    }

    #[test]
    fn times_parse_with_offsets_and_unescaped_plus() {
        assert_eq!(parse_time("start", "1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(parse_time("start", "1970-01-01T01:00:01+01:00").unwrap(), 1000);
        assert_eq!(parse_time("start", "1970-01-01T01:00:01 01:00").unwrap(), 1000);
        assert_eq!(parse_time("start", "1970-01-01T00:00:01.5Z").unwrap(), 1500);
        assert!(parse_time("start", "yesterday").is_err());
        assert!(parse_time("start", "").is_err());
    }

    #[test]
    fn labels_parse_like_heapster() {
        assert_eq!(parse_labels("").unwrap(), None);
        let l = parse_labels("resource_id:/dev/sda1,a:b:c").unwrap().unwrap();
        assert_eq!(l.get("resource_id").unwrap(), "/dev/sda1");
        assert_eq!(l.get("a").unwrap(), "b:c");
        for bad in ["a", "a:", ":b", "a:b,", ",a:b"] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_defaults_and_order() {
        let q = MetricQuery::parse(&HashMap::new(), 42).unwrap();
        assert_eq!(q, MetricQuery { start: None, end: 42, labels: None });
        let mut m = HashMap::new();
        m.insert("start".to_owned(), "1970-01-01T00:00:02Z".to_owned());
        m.insert("end".to_owned(), "1970-01-01T00:00:01Z".to_owned());
        assert_eq!(MetricQuery::parse(&m, 0).unwrap_err().status, axum::http::StatusCode::BAD_REQUEST);
    }
}
