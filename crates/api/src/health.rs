//! `/healthz`: healthy while batches keep arriving, so Kubernetes restarts a heapster whose scrape loop stalled,
//! and, with a Kubernetes source, only once the API server listed a node (before, the batches are empty).

use crate::ApiState;
use crate::params::now_millis;
use axum::extract::State;
use axum::http::StatusCode;
use heapster_model::Timestamp;

/// The verdict for a newest batch at `latest`, at time `now`: `Ok` or the one-line reason it is unhealthy.
pub fn check(latest: Option<Timestamp>, now: Timestamp, max_staleness_ms: i64) -> Result<(), String> {
    let Some(latest) = latest else { return Err("no batch yet".to_owned()) };
    let age = now.saturating_sub(latest);
    if age > max_staleness_ms {
        return Err(format!(
            "newest batch is {:.1}s old, more than the allowed {:.1}s",
            age as f64 / 1000.0,
            max_staleness_ms as f64 / 1000.0
        ));
    }
    Ok(())
}

/// 200 `ok`, or 503 with the reason.
pub async fn healthz(State(st): State<ApiState>) -> (StatusCode, String) {
    if let Some(Err(reason)) = st.ready.as_ref().map(|ready| ready()) {
        return (StatusCode::SERVICE_UNAVAILABLE, reason);
    }
    let max = i64::try_from(st.max_staleness.as_millis()).unwrap_or(i64::MAX);
    match check(st.store.latest_timestamp(), now_millis(), max) {
        Ok(()) => (StatusCode::OK, "ok".to_owned()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(check(None, 0, 1000).unwrap_err(), "no batch yet");
        assert!(check(Some(1000), 1500, 1000).is_ok());
        assert!(check(Some(1000), 2000, 1000).is_ok());
        assert!(check(Some(1000), 900, 1000).is_ok(), "a batch from the future is fresh");
        let e = check(Some(0), 61_000, 60_000).unwrap_err();
        assert!(e.contains("61.0s old"), "{e}");
        assert!(check(Some(i64::MIN), i64::MAX, 0).is_err());
    }
}
