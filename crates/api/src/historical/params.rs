//! The historical API's own parameters: the `{aggregations}` path segment and `bucket=`, parsed as Heapster did
//! (`getAggregations`, `getBucketSize`).

use crate::error::ApiError;
use heapster_model::historical::Aggregation;
use std::time::Duration;

/// Parses `average,max,95-perc`. Unknown names and empty lists are 400 (Heapster logged the error and went on
/// with what it had). A name given twice counts once; the order of first mention is kept.
pub fn parse_aggregations(raw: &str) -> Result<Vec<Aggregation>, ApiError> {
    let mut out = Vec::new();
    for name in raw.split(',').filter(|s| !s.is_empty()) {
        let a = Aggregation::ALL.iter().copied().find(|a| a.as_str() == name).ok_or_else(|| {
            let known: Vec<&str> = Aggregation::ALL.iter().map(|a| a.as_str()).collect();
            ApiError::bad_request(format!("unknown aggregation {name:?}; known: {}", known.join(", ")))
        })?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    if out.is_empty() {
        return Err(ApiError::bad_request("no aggregation given: name one or more, as in average,max,95-perc"));
    }
    Ok(out)
}

/// Parses `bucket=`: a whole number with `ms`, `s`, `m`, `h` or `d`, as Heapster took it. Absent, empty or zero
/// means one bucket over the whole range (`None`).
pub fn parse_bucket(raw: Option<&str>) -> Result<Option<Duration>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else { return Ok(None) };
    let bad = || ApiError::bad_request(format!("bucket={raw:?}: expected a whole number and ms, s, m, h or d, as 1h"));
    let split = raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
    Ok((ms > 0).then(|| Duration::from_millis(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregations_as_heapster_names_them() {
        let all = parse_aggregations("average,max,min,median,count,50-perc,95-perc,99-perc").unwrap();
        assert_eq!(all, Aggregation::ALL.to_vec());
        assert_eq!(parse_aggregations("max,average,max").unwrap(), [Aggregation::Max, Aggregation::Average]);
        let e = parse_aggregations("avg").unwrap_err();
        assert!(e.message.contains("unknown aggregation \"avg\"") && e.message.contains("95-perc"), "{e:?}");
        assert!(parse_aggregations("").is_err());
        assert!(parse_aggregations("90-perc").is_err());
    }

    #[test]
    fn buckets_as_heapster_took_them() {
        assert_eq!(parse_bucket(None).unwrap(), None);
        assert_eq!(parse_bucket(Some("")).unwrap(), None);
        assert_eq!(parse_bucket(Some("0s")).unwrap(), None);
        assert_eq!(parse_bucket(Some("500ms")).unwrap(), Some(Duration::from_millis(500)));
        assert_eq!(parse_bucket(Some("10s")).unwrap(), Some(Duration::from_secs(10)));
        assert_eq!(parse_bucket(Some("5m")).unwrap(), Some(Duration::from_secs(300)));
        assert_eq!(parse_bucket(Some("1h")).unwrap(), Some(Duration::from_secs(3600)));
        assert_eq!(parse_bucket(Some("2d")).unwrap(), Some(Duration::from_secs(172_800)));
        for bad in ["1", "h", "1.5h", "-1h", "1w", "1hm", "99999999999999999999d"] {
            assert!(parse_bucket(Some(bad)).is_err(), "{bad}");
        }
    }
}
