//! Every `/api/v1/model` route: status and JSON.

use super::*;
use crate::types::rfc3339;
use serde_json::{Value, json};

const M: &str = "/api/v1/model";

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|s| s.as_str().unwrap()).collect()
}

/// The values of a `MetricResult`, checking its shape on the way.
fn values(v: &Value) -> Vec<Value> {
    let pts = v["metrics"].as_array().unwrap_or_else(|| panic!("no metrics in {v}"));
    let ts: Vec<&str> = pts.iter().map(|p| p["timestamp"].as_str().unwrap()).collect();
    let latest = v["latestTimestamp"].as_str().unwrap();
    assert_eq!(latest, ts.iter().max().copied().unwrap_or("0001-01-01T00:00:00Z"));
    pts.iter().map(|p| p["value"].clone()).collect()
}

#[tokio::test]
async fn cluster_routes() {
    let st = state();
    assert_eq!(strings(&get_ok(&st, &format!("{M}/metrics/")).await), ["cpu/usage_rate", "memory/usage"]);
    let v = get_ok(&st, &format!("{M}/metrics/memory/usage")).await;
    assert_eq!(values(&v), [json!(1000), json!(1001), json!(1002)]);
    let t = times();
    assert_eq!(v["metrics"][0]["timestamp"], json!(rfc3339(t[0])));
    assert_eq!(v["latestTimestamp"], json!(rfc3339(t[2])));
    // Heapster's uint64: rates truncated toward zero.
    let v = get_ok(&st, &format!("{M}/metrics/cpu/usage_rate")).await;
    assert_eq!(values(&v), [json!(100), json!(101), json!(102)]);
}

#[tokio::test]
async fn node_routes() {
    let st = state();
    assert_eq!(strings(&get_ok(&st, &format!("{M}/nodes/")).await), ["n1"]);
    assert_eq!(
        strings(&get_ok(&st, &format!("{M}/nodes/n1/metrics/")).await),
        ["cpu/usage", "cpu/usage_rate", "filesystem/usage", "memory/usage"]
    );
    let v = get_ok(&st, &format!("{M}/nodes/n1/metrics/cpu/usage")).await;
    assert_eq!(values(&v), [json!(1_000_000), json!(2_000_000), json!(3_000_000)]);
    assert_eq!(strings(&get_ok(&st, &format!("{M}/nodes/n1/pods/")).await), ["ns1/p1"]);
    assert_eq!(strings(&get_ok(&st, &format!("{M}/nodes/n2/pods/")).await), ["ns1/p2"]);
}

#[tokio::test]
async fn values_are_heapsters_uint64_unless_typed_values_are_asked_for() {
    let st = state();
    let v = get_ok(&st, &format!("{M}/nodes/n1/metrics/memory/usage")).await;
    let vals = values(&v);
    assert!(vals.iter().all(Value::is_u64), "{vals:?}");
    assert_eq!(vals[0].as_i64(), Some(BIG), "big integers must not go through f64");
    assert!(v.to_string().contains("9007199254740993"));
    let v = get_ok(&st, &format!("{M}/nodes/n1/metrics/cpu/usage_rate")).await;
    assert_eq!(values(&v), [json!(250), json!(251), json!(252)], "truncated as Go's uint64(int64(f))");
    assert!(!v.to_string().contains("floatValue"), "the model API never sent floatValue");

    // --api_typed_values: the stored types.
    let mut st = state();
    st.values = crate::types::ValueStyle::Typed;
    let v = get_ok(&st, &format!("{M}/nodes/n1/metrics/memory/usage")).await;
    assert!(values(&v).iter().all(Value::is_i64));
    let v = get_ok(&st, &format!("{M}/nodes/n1/metrics/cpu/usage_rate")).await;
    let vals = values(&v);
    assert!(vals.iter().all(Value::is_f64), "{vals:?}");
    assert_eq!(vals, [json!(250.25), json!(251.25), json!(252.25)], "rates are not truncated");
}

#[tokio::test]
async fn free_container_routes() {
    let st = state();
    assert_eq!(strings(&get_ok(&st, &format!("{M}/nodes/n1/freecontainers/")).await), ["system.slice/docker"]);
    let c = "system.slice%2Fdocker";
    assert_eq!(strings(&get_ok(&st, &format!("{M}/nodes/n1/freecontainers/{c}/metrics/")).await), ["memory/usage"]);
    assert_eq!(strings(&get_ok(&st, &format!("{M}/nodes/n1/freecontainers/{c}/metrics")).await), ["memory/usage"]);
    let v = get_ok(&st, &format!("{M}/nodes/n1/freecontainers/{c}/metrics/memory/usage")).await;
    assert_eq!(values(&v), [json!(500), json!(501), json!(502)]);
}

#[tokio::test]
async fn namespace_pod_and_container_routes() {
    let st = state();
    assert_eq!(strings(&get_ok(&st, &format!("{M}/namespaces/")).await), ["ns1"]);
    assert_eq!(strings(&get_ok(&st, &format!("{M}/namespaces/ns1/metrics")).await), ["memory/usage"]);
    let v = get_ok(&st, &format!("{M}/namespaces/ns1/metrics/memory/usage")).await;
    assert_eq!(values(&v), [json!(700), json!(701), json!(702)]);

    assert_eq!(strings(&get_ok(&st, &format!("{M}/namespaces/ns1/pods/")).await), ["p1", "p2"]);
    assert_eq!(
        strings(&get_ok(&st, &format!("{M}/namespaces/ns1/pods/p1/metrics")).await),
        ["cpu/usage_rate", "memory/usage"]
    );
    let v = get_ok(&st, &format!("{M}/namespaces/ns1/pods/p1/metrics/cpu/usage_rate")).await;
    assert_eq!(values(&v), [json!(12), json!(13), json!(14)]);

    assert_eq!(strings(&get_ok(&st, &format!("{M}/namespaces/ns1/pods/p1/containers/")).await), ["c1"]);
    assert_eq!(
        strings(&get_ok(&st, &format!("{M}/namespaces/ns1/pods/p1/containers/c1/metrics")).await),
        ["cpu/usage", "filesystem/usage", "memory/usage"]
    );
    let v = get_ok(&st, &format!("{M}/namespaces/ns1/pods/p1/containers/c1/metrics/cpu/usage")).await;
    assert_eq!(values(&v), [json!(5000), json!(10000), json!(15000)]);
    // p2 exists but has no containers: an empty list, not a 404.
    assert_eq!(strings(&get_ok(&st, &format!("{M}/namespaces/ns1/pods/p2/containers/")).await), Vec::<&str>::new());
}

#[tokio::test]
async fn pod_list() {
    let st = state();
    let v = get_ok(&st, &format!("{M}/namespaces/ns1/pod-list/p2,p1,ghost/metrics/memory/usage")).await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(values(&items[0]), [json!(400), json!(401), json!(402)]);
    assert_eq!(values(&items[1]), [json!(300), json!(301), json!(302)]);
    assert_eq!(values(&items[2]), Vec::<Value>::new());
    // Only p1 has the rate: p2 gets an empty result in its place.
    let v = get_ok(&st, &format!("{M}/namespaces/ns1/pod-list/p1,p2/metrics/cpu-usage")).await;
    assert_eq!(values(&v["items"][0]).len(), 3);
    assert_eq!(values(&v["items"][1]).len(), 0);
    let start = rfc3339(times()[2]);
    let v = get_ok(&st, &format!("{M}/namespaces/ns1/pod-list/p1/metrics/memory/usage?start={start}")).await;
    assert_eq!(values(&v["items"][0]), [json!(302)]);
    // Unknown pods or metrics: empty results, as Heapster answered.
    let v = get_ok(&st, &format!("{M}/namespaces/ns1/pod-list/x,y/metrics/memory/usage")).await;
    assert_eq!(v, json!({"items": [EMPTY.clone(), EMPTY.clone()]}));
    let v = get_ok(&st, &format!("{M}/namespaces/ns1/pod-list/p1/metrics/nope")).await;
    assert_eq!(v, json!({"items": [EMPTY.clone()]}));
    get_err(&st, &format!("{M}/namespaces/ns1/pod-list/p1/metrics/memory/usage?end=x"), StatusCode::BAD_REQUEST, "end")
        .await;
}

#[tokio::test]
async fn all_keys() {
    let st = state();
    assert_eq!(
        strings(&get_ok(&st, &format!("{M}/debug/allkeys")).await),
        [
            "cluster",
            "namespace:ns1",
            "namespace:ns1/pod:p1",
            "namespace:ns1/pod:p1/container:c1",
            "namespace:ns1/pod:p2",
            "node:n1",
            "node:n1/container:system.slice/docker",
        ]
    );
}

#[tokio::test]
async fn every_list_route_answers_with_and_without_trailing_slash() {
    let st = state();
    for path in [
        "/metrics",
        "/nodes",
        "/nodes/n1/metrics",
        "/nodes/n1/pods",
        "/nodes/n1/freecontainers",
        "/nodes/n1/freecontainers/system.slice%2Fdocker/metrics",
        "/namespaces",
        "/namespaces/ns1/metrics",
        "/namespaces/ns1/pods",
        "/namespaces/ns1/pods/p1/metrics",
        "/namespaces/ns1/pods/p1/containers",
        "/namespaces/ns1/pods/p1/containers/c1/metrics",
        "/debug/allkeys",
    ] {
        let a = get_ok(&st, &format!("{M}{path}")).await;
        let b = get_ok(&st, &format!("{M}{path}/")).await;
        assert_eq!(a, b, "{path}");
        assert!(!a.as_array().unwrap().is_empty(), "{path}");
    }
    // A trailing slash after a metric name is ignored too.
    assert_eq!(values(&get_ok(&st, &format!("{M}/metrics/memory/usage/")).await).len(), 3);
}

#[tokio::test]
async fn start_and_end_filter_inclusively() {
    let st = state();
    let t = times();
    let url = |q: &str| format!("{M}/nodes/n1/metrics/memory/usage?{q}");
    let (t0, t1, t2) = (rfc3339(t[0]), rfc3339(t[1]), rfc3339(t[2]));
    assert_eq!(values(&get_ok(&st, &url(&format!("start={t1}"))).await), [json!(BIG + 1), json!(BIG + 2)]);
    assert_eq!(values(&get_ok(&st, &url(&format!("end={t1}"))).await), [json!(BIG), json!(BIG + 1)]);
    assert_eq!(values(&get_ok(&st, &url(&format!("start={t1}&end={t1}"))).await), [json!(BIG + 1)]);
    assert_eq!(values(&get_ok(&st, &url(&format!("start={t0}&end={t2}"))).await).len(), 3);
    // Empty parameters mean "not given", as in Heapster.
    assert_eq!(values(&get_ok(&st, &url("start=&end=")).await).len(), 3);
    // An offset other than Z, with the `+` left unescaped (it decodes to a space).
    let plus_one = chrono::DateTime::from_timestamp_millis(t[2])
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap());
    let raw = plus_one.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    assert!(raw.ends_with("+01:00"));
    assert_eq!(values(&get_ok(&st, &url(&format!("start={raw}"))).await), [json!(BIG + 2)]);
    assert_eq!(values(&get_ok(&st, &url(&format!("start={}", raw.replace('+', "%2B")))).await), [json!(BIG + 2)]);
    // A window with no points: empty, and Go's zero time as latestTimestamp.
    let v = get_ok(&st, &url("end=2000-01-01T00:00:00Z")).await;
    assert_eq!(v, json!({"metrics": [], "latestTimestamp": "0001-01-01T00:00:00Z"}));
}

#[tokio::test]
async fn labelled_metrics() {
    let st = state();
    let url = |q: &str| format!("{M}/nodes/n1/metrics/filesystem/usage{q}");
    let v = get_ok(&st, &url("?labels=resource_id:/dev/sdb1")).await;
    assert_eq!(values(&v), [json!(20), json!(21), json!(22)]);
    let v = get_ok(&st, &url("?labels=resource_id:%2Fdev%2Fsda1")).await;
    assert_eq!(values(&v), [json!(10), json!(11), json!(12)]);
    // Heapster: a labelled metric without labels selects the unlabelled series, which has no points.
    assert_eq!(values(&get_ok(&st, &url("")).await), Vec::<Value>::new());
    assert_eq!(values(&get_ok(&st, &url("?labels=")).await), Vec::<Value>::new());
    // Labels must match exactly (no subset matching), as in Heapster.
    assert_eq!(values(&get_ok(&st, &url("?labels=resource_id:/dev/sda1,extra:x")).await), Vec::<Value>::new());
    assert_eq!(values(&get_ok(&st, &url("?labels=resource_id:/dev/nvme0")).await), Vec::<Value>::new());
    // On a container, with start.
    let start = rfc3339(times()[1]);
    let v = get_ok(
        &st,
        &format!(
            "{M}/namespaces/ns1/pods/p1/containers/c1/metrics/filesystem/usage?labels=resource_id:/&start={start}"
        ),
    )
    .await;
    assert_eq!(values(&v), [json!(4097), json!(4098)]);
    for bad in ["resource_id", "resource_id:", ":x", "a:b,,c:d"] {
        get_err(&st, &url(&format!("?labels={bad}")), StatusCode::BAD_REQUEST, "label").await;
    }
}

#[tokio::test]
async fn deprecated_metric_names() {
    let st = state();
    let a = get_ok(&st, &format!("{M}/nodes/n1/metrics/cpu-usage")).await;
    let b = get_ok(&st, &format!("{M}/nodes/n1/metrics/cpu/usage_rate")).await;
    assert_eq!(a, b);
    let v = get_ok(&st, &format!("{M}/namespaces/ns1/pods/p1/metrics/memory-usage")).await;
    assert_eq!(values(&v), [json!(300), json!(301), json!(302)]);
}

#[tokio::test]
async fn unknown_entities_and_metrics_are_empty_200s_as_in_heapster() {
    let st = state();
    let empty_list = json!([]);
    for (path, want) in [
        ("/metrics/nope", &*EMPTY),
        ("/nodes/n9/metrics/", &empty_list),
        ("/nodes/n9/metrics/memory/usage", &*EMPTY),
        ("/nodes/n1/metrics/nope/x", &*EMPTY),
        ("/nodes/n9/pods/", &empty_list),
        ("/nodes/n9/freecontainers/", &empty_list),
        ("/nodes/n1/freecontainers/nope/metrics/", &empty_list),
        ("/nodes/n1/freecontainers/nope/metrics/memory/usage", &*EMPTY),
        ("/namespaces/ns9/metrics", &empty_list),
        ("/namespaces/ns9/metrics/memory/usage", &*EMPTY),
        ("/namespaces/ns9/pods/", &empty_list),
        ("/namespaces/ns1/pods/p9/metrics", &empty_list),
        ("/namespaces/ns1/pods/p9/metrics/memory/usage", &*EMPTY),
        ("/namespaces/ns1/pods/p1/metrics/cpu/usage", &*EMPTY),
        ("/namespaces/ns1/pods/p9/containers/", &empty_list),
        ("/namespaces/ns1/pods/p1/containers/c9/metrics", &empty_list),
        ("/namespaces/ns1/pods/p1/containers/c9/metrics/memory/usage", &*EMPTY),
        // A name that would reach another kind of set through its key must not.
        ("/nodes/n1%2Fcontainer:system.slice%2Fdocker/metrics/", &empty_list),
        ("/namespaces/ns1%2Fpod:p1/metrics", &empty_list),
    ] {
        assert_eq!(&get_ok(&st, &format!("{M}{path}")).await, want, "{path}");
    }
    // Paths that are no route stay 404, with a Kubernetes Status.
    let nf = StatusCode::NOT_FOUND;
    get_err(&st, &format!("{M}/bogus"), nf, "/api/v1/model/bogus").await;
    get_err(&st, "/api/v2/whatever", nf, "/api/v2/whatever").await;
    // Nothing at all in the store: lists of top-level entities are empty, and so are the cluster's metrics.
    let empty = empty_state(Duration::from_secs(60));
    assert_eq!(get_ok(&empty, &format!("{M}/nodes/")).await, json!([]));
    assert_eq!(get_ok(&empty, &format!("{M}/namespaces/")).await, json!([]));
    assert_eq!(get_ok(&empty, &format!("{M}/debug/allkeys")).await, json!([]));
    assert_eq!(get_ok(&empty, &format!("{M}/metrics/")).await, json!([]));
}

/// Heapster's answer for a metric with no points: no points, and Go's zero time.
static EMPTY: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| json!({"metrics": [], "latestTimestamp": "0001-01-01T00:00:00Z"}));

#[tokio::test]
async fn bad_times_are_400() {
    let st = state();
    let bad = StatusCode::BAD_REQUEST;
    let url = |q: &str| format!("{M}/metrics/memory/usage?{q}");
    get_err(&st, &url("start=yesterday"), bad, "start").await;
    get_err(&st, &url("end=2024-13-01T00:00:00Z"), bad, "end").await;
    get_err(&st, &url("start=2024-01-01"), bad, "start").await;
    get_err(&st, &url("start=2024-01-02T00:00:00Z&end=2024-01-01T00:00:00Z"), bad, "after").await;
    // Bad parameters are reported before unknown entities, as in Heapster.
    get_err(&st, &format!("{M}/nodes/n9/metrics/x?start=bad"), bad, "start").await;
}
