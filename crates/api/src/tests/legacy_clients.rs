//! Kubernetes 1.x's clients of Heapster's model API, reproduced: the requests they send and the types they decode
//! into. The HPA's legacy client (`pkg/controller/podautoscaler/metrics/legacy_metrics_client.go`,
//! `GetRawMetric`) asks for a pod list's metric since five minutes ago and decodes Heapster's
//! `types.MetricResultList`, whose `value` is a Go `uint64`: a JSON fraction fails it with "cannot unmarshal number
//! ... of type uint64". serde's `u64` refuses fractions the same way, so these structs stand in for the Go types.

use super::*;
use serde::Deserialize;

/// `types.MetricPoint` (`metrics/api/v1/types/model_types.go`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MetricPoint {
    timestamp: String,
    value: u64,
    float_value: Option<f64>,
}

/// `types.MetricResult`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MetricResult {
    metrics: Vec<MetricPoint>,
    latest_timestamp: String,
}

/// `types.MetricResultList`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricResultList {
    items: Vec<MetricResult>,
}

fn millis(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
}

/// The client's `collapseTimeSamples`: the mean of the points within a minute of the newest, times 1000 (so
/// milli-units), from `value`, or from `floatValue` when the newest point has one.
fn collapse(r: &MetricResult) -> Option<(i64, i64)> {
    let newest = r.metrics.iter().max_by_key(|p| millis(&p.timestamp))?;
    let newest_ms = millis(&newest.timestamp);
    let recent: Vec<&MetricPoint> = r.metrics.iter().filter(|p| millis(&p.timestamp) + 60_000 > newest_ms).collect();
    let value = match newest.float_value {
        Some(_) => {
            let floats: Vec<f64> = recent.iter().filter_map(|p| p.float_value).collect();
            (floats.iter().sum::<f64>() / floats.len() as f64 * 1000.0) as i64
        }
        None => recent.iter().map(|p| p.value as i64).sum::<i64>() * 1000 / recent.len() as i64,
    };
    Some((value, newest_ms))
}

/// `GetRawMetric` for pods p1, a pod heapster does not know, and p2: one item per pod in order (the client refuses
/// a list of another length), the unknown pod's empty, the values in whole units.
#[tokio::test]
async fn the_hpa_legacy_client_decodes_pod_list_metrics() {
    let st = state();
    let start = crate::types::rfc3339(chrono::Utc::now().timestamp_millis() / 1000 * 1000 - 300_000);
    for (metric, want_p1, want_p2) in [("memory/usage", 302_000, 402_000), ("cpu/usage_rate", 14_000, 0)] {
        let uri = format!("/api/v1/model/namespaces/ns1/pod-list/p1,ghost,p2/metrics/{metric}?start={start}");
        let body = get(&st, &uri).await;
        assert_eq!(body.status, StatusCode::OK, "{uri}: {}", body.body);
        let list: MetricResultList = serde_json::from_str(&body.body)
            .unwrap_or_else(|e| panic!("{uri}: a Go client fails too: {e}: {}", body.body));
        assert_eq!(list.items.len(), 3, "{uri}");
        let (p1, at) = collapse(&list.items[0]).unwrap_or_else(|| panic!("{uri}: no points for p1"));
        assert_eq!(p1, want_p1, "{uri}");
        assert_eq!(at, times()[2], "{uri}: the newest point's time");
        assert_eq!(millis(&list.items[0].latest_timestamp), times()[2]);
        assert!(list.items[1].metrics.is_empty() && list.items[1].latest_timestamp == "0001-01-01T00:00:00Z");
        match collapse(&list.items[2]) {
            Some((p2, _)) => assert_eq!(p2, want_p2, "{uri}"),
            None => assert_eq!(want_p2, 0, "{uri}: p2 has no {metric}"),
        }
    }

    // With --api_typed_values the rate is a fraction, which the Go client cannot decode: that is why it is off.
    let mut typed = state();
    typed.values = crate::types::ValueStyle::Typed;
    let body =
        get(&typed, &format!("/api/v1/model/namespaces/ns1/pod-list/p1/metrics/cpu/usage_rate?start={start}")).await;
    let e = serde_json::from_str::<MetricResultList>(&body.body).unwrap_err();
    assert!(e.to_string().contains("invalid type: floating point"), "{e}");
}

/// The old Kubernetes Dashboard's Heapster integration (`src/app/backend/integration/metric/heapster`): its health
/// check is a GET of `/`, nodes are asked one by one (`/model/nodes/N/metrics/M`) and pods all in one
/// (`/model/namespaces/NS/pod-list/P1,P2/metrics/M`, refused unless one item comes back per pod), without `start`,
/// for `cpu/usage_rate` and `memory/usage`, decoded into Heapster's `MetricResult`/`MetricResultList`.
#[tokio::test]
async fn the_old_dashboards_heapster_client_decodes_nodes_and_pod_lists() {
    let st = state();
    assert_eq!(get(&st, "/").await.status, StatusCode::OK, "the Dashboard's health check");
    for metric in ["cpu/usage_rate", "memory/usage"] {
        let uri = format!("/api/v1/model/nodes/n1/metrics/{metric}");
        let body = get(&st, &uri).await;
        let r: MetricResult =
            serde_json::from_str(&body.body).unwrap_or_else(|e| panic!("{uri}: a Go client fails too: {e}"));
        assert_eq!(r.metrics.len(), 3, "{uri}: every stored point without start=");
        let uri = format!("/api/v1/model/namespaces/ns1/pod-list/p1,p2/metrics/{metric}");
        let body = get(&st, &uri).await;
        let list: MetricResultList =
            serde_json::from_str(&body.body).unwrap_or_else(|e| panic!("{uri}: a Go client fails too: {e}"));
        assert_eq!(list.items.len(), 2, "{uri}: one item per pod, or the Dashboard refuses the answer");
        assert!(!list.items[0].metrics.is_empty(), "{uri}");
    }
}
