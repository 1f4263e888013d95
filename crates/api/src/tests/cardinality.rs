//! `/api/v1/cardinality` serves what the governors report, with `top` passed through.

use super::{empty_state, get_err, get_ok};
use axum::http::StatusCode;
use heapster_model::cardinality::{Budget, CardinalityReport, MetricCardinality, SinkCardinality};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reports one sink and remembers the `top` it was asked for.
#[derive(Default)]
struct Fake(Mutex<Vec<usize>>);

impl CardinalityReport for Fake {
    fn cardinality(&self, top: usize) -> Vec<SinkCardinality> {
        self.0.lock().unwrap().push(top);
        vec![SinkCardinality {
            sink: "influxdb:http://h:8086/?db=k8s".into(),
            budget: Budget { max_series: Some(150), ..Default::default() },
            offered: 400,
            written: 150,
            cut: 250,
            top_metrics: vec![MetricCardinality { metric: "cpu/usage".into(), offered: 40, written: 15, cut: 25 }],
            ..Default::default()
        }]
    }
}

#[tokio::test]
async fn the_governors_report_as_json() {
    let mut st = empty_state(Duration::from_secs(60));
    assert_eq!(get_ok(&st, "/api/v1/cardinality").await, serde_json::json!({"sinks": []}));
    let fake = Arc::new(Fake::default());
    st.cardinality = Some(fake.clone());
    let v = get_ok(&st, "/api/v1/cardinality?top=3").await;
    assert_eq!(v["sinks"][0]["budget"], serde_json::json!({"max_series": 150}));
    assert_eq!((v["sinks"][0]["offered"].as_u64(), v["sinks"][0]["cut"].as_u64()), (Some(400), Some(250)));
    assert_eq!(v["sinks"][0]["top_metrics"][0]["metric"], "cpu/usage");
    get_ok(&st, "/api/v1/cardinality/").await;
    assert_eq!(*fake.0.lock().unwrap(), [3, 10]);
    get_err(&st, "/api/v1/cardinality?top=x", StatusCode::BAD_REQUEST, "top=\"x\"").await;
}
