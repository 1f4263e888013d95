//! Timestamps as text, in the one form every output uses: RFC 3339 in UTC as Go's `time.Time` marshals it
//! (milliseconds only when they are not zero), which Heapster's clients parse.

use crate::Timestamp;

/// Go's zero `time.Time`, which Heapster sent where there was no time (`latestTimestamp` of an empty result).
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Milliseconds since the epoch as RFC 3339 in UTC, with milliseconds only when they are not zero; a time
/// chrono cannot represent is Go's zero time.
pub fn rfc3339(ts: Timestamp) -> String {
    match chrono::DateTime::from_timestamp_millis(ts) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => GO_ZERO_TIME.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn as_go_marshals_time() {
        assert_eq!(super::rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::rfc3339(1_700_000_000_250), "2023-11-14T22:13:20.250Z");
        assert_eq!(super::rfc3339(i64::MAX), super::GO_ZERO_TIME);
    }
}
