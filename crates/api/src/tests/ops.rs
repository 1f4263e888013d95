//! `/healthz` and `/metrics`.

use super::*;
use prometheus_client::metrics::counter::Counter;

#[tokio::test]
async fn healthz_is_ok_while_batches_are_fresh() {
    let st = state();
    let r = get(&st, "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn healthz_fails_without_a_batch() {
    let st = empty_state(Duration::from_secs(60));
    let r = get(&st, "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "no batch yet"));
}

#[tokio::test]
async fn healthz_fails_when_the_newest_batch_is_stale() {
    // Newest batch a minute old, 30 s allowed.
    let st = empty_state(Duration::from_secs(30));
    st.store.ingest(Arc::new(batch(times()[2], 0)));
    let r = get(&st, "/healthz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    // At least the minute it was made ago; more when the test binary ran long (the fixture times are made once).
    let age: f64 = r
        .body
        .strip_prefix("newest batch is ")
        .and_then(|rest| rest.split_once("s old"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.body));
    assert!(age >= 60.0, "{}", r.body);
    assert!(!r.body.contains('\n'));
}

#[tokio::test]
async fn metrics_renders_the_registry_and_the_store_size() {
    let mut registry = Registry::default();
    let scrapes = Counter::<u64>::default();
    scrapes.inc_by(7);
    registry.register("heapster_scrapes", "Scrape rounds", scrapes);
    let mut st = state();
    st.registry = Arc::new(registry);
    let stats = st.store.stats();
    assert!(stats.points > 0);

    let r = get(&st, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, crate::self_metrics::CONTENT_TYPE);
    let body = &r.body;
    assert!(body.contains("heapster_scrapes_total 7"), "{body}");
    assert!(body.contains(&format!("heapster_store_sets {}\n", stats.sets)), "{body}");
    assert!(body.contains(&format!("heapster_store_series {}\n", stats.series)), "{body}");
    assert!(body.contains(&format!("heapster_store_points {}\n", stats.points)), "{body}");
    assert!(body.contains("# TYPE heapster_store_bytes gauge"), "{body}");
    assert!(body.ends_with("# EOF\n"));
    assert_eq!(body.matches("# EOF").count(), 1, "one document, one EOF: {body}");
}

// The front page (`/`) is the dashboard now: its tests are in `crate::dashboard::tests`.
