//! `/api/v1/historical` through the router, over an in-memory [`HistoricalSource`]: routing, parameters, 404s
//! and the exact JSON of Heapster's aggregation types.

use super::{empty_state, get, get_err, get_ok};
use crate::historical::{AggregatedBucket, Aggregation, HistoricalError, HistoricalSource, Sample};
use crate::model_api::Entity;
use async_trait::async_trait;
use axum::http::StatusCode;
use heapster_model::{Labels, MetricValue, Timestamp};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Node n1 has memory/usage at 1000 and 2000 ms; every call is recorded.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl HistoricalSource for Fake {
    fn name(&self) -> String {
        "fake".into()
    }
    async fn metric_names(&self, e: &Entity) -> Result<Vec<String>, HistoricalError> {
        Ok(if *e == Entity::Node("n1".into()) { vec!["memory/usage".into()] } else { vec![] })
    }
    async fn values(
        &self,
        metric: &str,
        labels: Option<&Labels>,
        entities: &[Entity],
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Vec<Sample>>, HistoricalError> {
        self.calls.lock().unwrap().push(format!("values {metric} {labels:?} {entities:?} {start} {end}"));
        Ok(entities
            .iter()
            .map(|e| match e {
                Entity::Node(n) if n == "n1" && metric == "memory/usage" => [1000, 2000]
                    .into_iter()
                    .filter(|t| (start..=end).contains(t))
                    .map(|t| Sample { timestamp: t, value: MetricValue::Int(t / 10) })
                    .collect(),
                _ => vec![],
            })
            .collect())
    }
    async fn aggregations(
        &self,
        metric: &str,
        _labels: Option<&Labels>,
        aggregations: &[Aggregation],
        entities: &[Entity],
        start: Timestamp,
        _end: Timestamp,
        bucket: Option<Duration>,
    ) -> Result<Vec<Vec<AggregatedBucket>>, HistoricalError> {
        if metric == "boom" {
            return Err(HistoricalError("InfluxDB unreachable".into()));
        }
        self.calls.lock().unwrap().push(format!("aggregations {metric} {aggregations:?} {bucket:?}"));
        let b = AggregatedBucket {
            timestamp: start,
            count: aggregations.contains(&Aggregation::Count).then_some(2),
            values: aggregations
                .iter()
                .filter(|a| **a != Aggregation::Count)
                .map(|a| {
                    (*a, if *a == Aggregation::Average { MetricValue::Float(150.0) } else { MetricValue::Int(200) })
                })
                .collect(),
        };
        Ok(entities.iter().map(|_| vec![b.clone()]).collect())
    }
    async fn nodes(&self) -> Result<Vec<String>, HistoricalError> {
        Ok(vec!["n1".into()])
    }
    async fn namespaces(&self) -> Result<Vec<String>, HistoricalError> {
        Ok(vec!["ns1".into()])
    }
    async fn pods_of_namespace(&self, ns: &str) -> Result<Vec<String>, HistoricalError> {
        Ok(vec![format!("{ns}-pod")])
    }
    async fn containers_of_pod(&self, ns: &str, pod: &str) -> Result<Vec<String>, HistoricalError> {
        Ok(vec![format!("{ns}/{pod}/c")])
    }
    async fn free_containers_of_node(&self, node: &str) -> Result<Vec<String>, HistoricalError> {
        Ok(vec![format!("{node}/system.slice")])
    }
}

fn state() -> (crate::ApiState, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let mut st = empty_state(Duration::from_secs(60));
    st.historical = Some(fake.clone());
    (st, fake)
}

const START: &str = "start=1970-01-01T00:00:00.500Z";

#[tokio::test]
async fn off_without_a_source() {
    let st = empty_state(Duration::from_secs(60));
    get_err(&st, "/api/v1/historical/nodes/", StatusCode::NOT_FOUND, "--historical_source=influxdb:").await;
    get_err(&st, &format!("/api/v1/historical/metrics/cpu/usage?{START}"), StatusCode::NOT_FOUND, "is off").await;
}

#[tokio::test]
async fn values_and_lists() {
    let (st, fake) = state();
    let v = get_ok(&st, &format!("/api/v1/historical/nodes/n1/metrics/memory-usage?{START}&end=1970-01-01T00:00:01Z"))
        .await;
    assert_eq!(
        v,
        serde_json::json!({"metrics":[{"timestamp":"1970-01-01T00:00:01Z","value":100}],
            "latestTimestamp":"1970-01-01T00:00:01Z"})
    );
    // The deprecated name was converted, the range passed through inclusive.
    assert_eq!(fake.calls.lock().unwrap()[0], "values memory/usage None [Node(\"n1\")] 500 1000");
    // An empty answer for a metric the node has is an empty 200; unknown node or metric is 404.
    let v = get_ok(&st, "/api/v1/historical/nodes/n1/metrics/memory/usage?start=1970-01-01T00:00:03Z").await;
    assert_eq!(v["metrics"], serde_json::json!([]));
    get_err(
        &st,
        &format!("/api/v1/historical/nodes/n2/metrics/memory/usage?{START}"),
        StatusCode::NOT_FOUND,
        "node \"n2\" not found in fake",
    )
    .await;
    get_err(
        &st,
        &format!("/api/v1/historical/nodes/n1/metrics/cpu/usage?{START}"),
        StatusCode::NOT_FOUND,
        "metric \"cpu/usage\" not found",
    )
    .await;
    get_err(&st, "/api/v1/historical/nodes/n1/metrics/memory/usage", StatusCode::BAD_REQUEST, "start is required")
        .await;
    get_err(
        &st,
        &format!("/api/v1/historical/nodes/n1/metrics/memory/usage?{START}&labels=x"),
        StatusCode::BAD_REQUEST,
        "labels",
    )
    .await;

    assert_eq!(get_ok(&st, "/api/v1/historical/nodes").await, serde_json::json!(["n1"]));
    assert_eq!(get_ok(&st, "/api/v1/historical/namespaces/").await, serde_json::json!(["ns1"]));
    assert_eq!(get_ok(&st, "/api/v1/historical/namespaces/a/pods/").await, serde_json::json!(["a-pod"]));
    assert_eq!(get_ok(&st, "/api/v1/historical/namespaces/a/pods/p/containers").await, serde_json::json!(["a/p/c"]));
    assert_eq!(get_ok(&st, "/api/v1/historical/nodes/n/freecontainers/").await, serde_json::json!(["n/system.slice"]));
    assert_eq!(get_ok(&st, "/api/v1/historical/nodes/n1/metrics/").await, serde_json::json!(["memory/usage"]));
    get_err(&st, "/api/v1/historical/metrics/", StatusCode::NOT_FOUND, "cluster not found").await;

    let v = get_ok(&st, &format!("/api/v1/historical/namespaces/ns/pod-list/a,b/metrics/memory/usage?{START}")).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert!(fake.calls.lock().unwrap().last().unwrap().contains("[Pod(\"ns\", \"a\"), Pod(\"ns\", \"b\")]"));
    get_err(
        &st,
        &format!("/api/v1/historical/pod-id/u-1/metrics/cpu/usage?{START}"),
        StatusCode::NOT_FOUND,
        "pod_id tag",
    )
    .await;
}

#[tokio::test]
async fn aggregations_in_heapsters_json() {
    let (st, fake) = state();
    let r = get(
        &st,
        &format!(
            "/api/v1/historical/namespaces/ns/pods/p/metrics-aggregated/average,max,count,median,min,50-perc,95-perc,99-perc/memory/usage?{START}&bucket=1m"
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        r#"{"buckets":[{"timestamp":"1970-01-01T00:00:00.500Z","count":2,"average":{"floatValue":150.0},"maximum":{"intValue":200},"minimum":{"intValue":200},"median":{"intValue":200},"percentiles":{"50":{"intValue":200},"95":{"intValue":200},"99":{"intValue":200}}}],"bucketSize":60000000000}"#
    );
    assert!(fake.calls.lock().unwrap()[0].ends_with("Some(60s)"), "{:?}", fake.calls);
    // Only what was asked for; no bucket is one bucket of size 0.
    let v = get_ok(&st, &format!("/api/v1/historical/metrics-aggregated/max/cpu/usage?{START}")).await;
    assert_eq!(
        v,
        serde_json::json!({"buckets":[{"timestamp":"1970-01-01T00:00:00.500Z","maximum":{"intValue":200}}],"bucketSize":0})
    );
    let v = get_ok(&st, &format!("/api/v1/historical/namespaces/ns/pod-list/a,b,c/metrics-aggregated/count/m?{START}"))
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 3);
    assert_eq!(v["items"][2]["buckets"][0]["count"], 2);
    for path in [
        "/api/v1/historical/nodes/n1/freecontainers/c/metrics-aggregated/count/m",
        "/api/v1/historical/namespaces/ns/metrics-aggregated/count/m",
        "/api/v1/historical/namespaces/ns/pods/p/containers/c/metrics-aggregated/count/m",
        "/api/v1/historical/nodes/n1/metrics-aggregated/count/m",
    ] {
        get_ok(&st, &format!("{path}?{START}")).await;
    }
    get_err(
        &st,
        &format!("/api/v1/historical/metrics-aggregated/avg/m?{START}"),
        StatusCode::BAD_REQUEST,
        "unknown aggregation",
    )
    .await;
    get_err(
        &st,
        &format!("/api/v1/historical/metrics-aggregated/max/m?{START}&bucket=5"),
        StatusCode::BAD_REQUEST,
        "bucket=",
    )
    .await;
    get_err(
        &st,
        &format!("/api/v1/historical/metrics-aggregated/max/boom?{START}"),
        StatusCode::BAD_GATEWAY,
        "historical source fake: InfluxDB unreachable",
    )
    .await;
}
