//! `/api/v1/cost` through the router: its figures from a ledger of rounds, and its refusals.

use super::{get, state};
use axum::http::StatusCode;
use std::sync::Arc;

#[tokio::test]
async fn cost_answers_per_round_and_per_node_figures() {
    let mut st = state();
    assert_eq!(get(&st, "/api/v1/cost").await.status, StatusCode::NOT_FOUND, "no ledger, no bill");

    let ledger = Arc::new(heapster_cost::Ledger::new(10).with_sinks(|| {
        vec![heapster_cost::SinkReading { name: "log".into(), queued_batches: 3, ..Default::default() }]
    }));
    st.cost = Some(ledger.clone());
    let stage = heapster_cost::Stage::named("api-test");
    for nodes in [4, 6] {
        let _cpu = stage.start();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        drop(_cpu);
        ledger.round_ended(nodes);
    }
    let v = get(&st, "/api/v1/cost?rounds=all").await.json();
    assert_eq!((v["rounds"].as_u64(), v["nodes"].as_u64(), v["nodesMean"].as_f64()), (Some(2), Some(6), Some(5.0)));
    assert_eq!(v["sinceStart"], true);
    let stages = v["stages"].as_array().unwrap();
    assert_eq!(stages.last().unwrap()["stage"], "other");
    let sum: f64 = stages.iter().map(|s| s["cpuSeconds"].as_f64().unwrap()).sum();
    assert!((sum - v["cpuSeconds"].as_f64().unwrap()).abs() < 1e-9, "{v}");
    let ours = stages.iter().find(|s| s["stage"] == "api-test").unwrap();
    let per_round = ours["cpuMsPerRound"].as_f64().unwrap();
    assert!(per_round > 0.0, "{v}");
    assert!((ours["cpuMsPerNodePerRound"].as_f64().unwrap() - per_round / 5.0).abs() < 1e-9, "{v}");
    let stats = st.store.stats();
    assert_eq!(v["store"]["series"], stats.series);
    assert_eq!(v["store"]["bytesPerNode"].as_f64(), Some(stats.bytes as f64 / 6.0));
    assert_eq!(v["sinks"][0]["sink"], "log");
    assert_eq!(v["sinks"][0]["queuedBatches"], 3);

    let last = get(&st, "/api/v1/cost?rounds=1").await.json();
    assert_eq!((last["rounds"].as_u64(), last["nodesMean"].as_f64()), (Some(1), Some(6.0)));
    assert_eq!(last["sinceStart"], false);
    for bad in ["rounds=0", "rounds=x", "round=3", "rounds=1&rounds=2"] {
        let r = get(&st, &format!("/api/v1/cost?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
}
