//! `/api/v1/metric-export` and `/api/v1/metric-export-schema`.

use super::*;
use crate::types::rfc3339;
use heapster_model::CATALOG;
use serde_json::{Value, json};

#[tokio::test]
async fn export_is_heapsters_timeseries_list_of_the_latest_batch() {
    let st = state();
    let t = times();
    let v = get_ok(&st, "/api/v1/metric-export").await;
    assert_eq!(v, get_ok(&st, "/api/v1/metric-export/").await);
    let list = v.as_array().unwrap();
    // Node, system container, two pods and a container; no cluster, no namespace.
    assert_eq!(list.len(), 5, "{v:#}");
    let find = |container: &str, pod: Option<&str>| -> &Value {
        list.iter()
            .find(|ts| {
                ts["labels"]["container_name"] == json!(container)
                    && pod.is_none_or(|p| ts["labels"]["pod_name"] == json!(p))
            })
            .unwrap_or_else(|| panic!("no timeseries for {container}: {v:#}"))
    };

    let node = find("machine", None);
    assert_eq!(node["labels"]["hostname"], json!("n1"));
    assert_eq!(node["labels"]["host_id"], json!("h-1"));
    // Only the latest batch: one point per metric, with its type kept.
    let mem = node["metrics"]["memory/usage"].as_array().unwrap();
    assert_eq!(mem.len(), 1);
    assert_eq!(mem[0], json!({"start": rfc3339(t[2]), "end": rfc3339(t[2]), "value": BIG + 2}));
    assert_eq!(node["metrics"]["cpu/usage_rate"][0]["value"], json!(252.25));
    // Cumulative metrics start at the entity's create time.
    let create = t[0] - 3_600_000;
    assert_eq!(node["metrics"]["cpu/usage"][0]["start"], json!(rfc3339(create)));
    // Labelled metrics: one point per label set, labels on the point.
    let fs = node["metrics"]["filesystem/usage"].as_array().unwrap();
    assert_eq!(fs.len(), 2);
    assert_eq!(fs[0]["labels"], json!({"resource_id": "/dev/sda1"}));
    assert_eq!(fs[0]["value"], json!(12));
    assert!(node["labels"].get("type").is_some_and(|t| t == "node"));

    let pod = find("/pod", Some("p1"));
    assert_eq!(pod["labels"]["namespace_name"], json!("ns1"));
    assert_eq!(pod["labels"]["pod_id"], json!("uid-1"));
    assert_eq!(pod["labels"]["labels"], json!("app:web"));
    assert_eq!(pod["metrics"]["cpu/usage_rate"][0]["value"], json!(14.75));

    let c = find("c1", None);
    assert_eq!(c["labels"]["host_id"], json!(""), "Heapster always sent host_id, empty when unknown");
    assert_eq!(c["metrics"]["cpu/usage"][0], json!({"start": rfc3339(create), "end": rfc3339(t[2]), "value": 15000}));
    assert_eq!(c["metrics"]["filesystem/usage"][0]["labels"], json!({"resource_id": "/"}));

    let sys = find("system.slice/docker", None);
    assert_eq!(sys["metrics"]["memory/usage"][0]["value"], json!(502));

    // Before the first batch: an empty list.
    let empty = empty_state(Duration::from_secs(60));
    assert_eq!(get_ok(&empty, "/api/v1/metric-export").await, json!([]));
}

#[tokio::test]
async fn export_skips_metrics_outside_the_catalog() {
    let st = empty_state(Duration::from_secs(60));
    let mut b = batch(1_000_000, 0);
    b.sets.get_mut("node:n1").unwrap().metrics.insert("custom/qps", MetricValue::Float(3.0));
    st.store.ingest(Arc::new(b));
    let v = get_ok(&st, "/api/v1/metric-export").await;
    assert!(!v.to_string().contains("custom/qps"));
    // The model API still serves it (as Heapster's uint64).
    assert_eq!(
        get_ok(&st, "/api/v1/model/nodes/n1/metrics/custom/qps?start=1970-01-01T00:00:00Z").await["metrics"][0]["value"],
        json!(3)
    );
}

#[tokio::test]
async fn schema_lists_every_catalog_metric_and_every_label() {
    let st = state();
    let v = get_ok(&st, "/api/v1/metric-export-schema").await;
    let metrics = v["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), CATALOG.len());
    for (m, d) in metrics.iter().zip(CATALOG) {
        assert_eq!(m["name"], json!(d.name));
        assert_eq!(m["description"], json!(d.description));
        assert_eq!(m["type"], json!(d.metric_type.as_str()));
        assert_eq!(m["units"], json!(d.units.as_str()));
        let vt = m["value_type"].as_str().unwrap();
        assert!(vt == "int64" || vt == "double", "{vt}");
        assert_eq!(m.get("labels").is_some(), d.labeled, "{}", d.name);
    }
    let cpu = metrics.iter().find(|m| m["name"] == "cpu/usage").unwrap();
    assert_eq!(
        cpu,
        &json!({"name": "cpu/usage", "description": "Cumulative CPU usage on all cores", "type": "cumulative", "value_type": "int64", "units": "ns"})
    );
    // Heapster's types: cpu/usage_rate in whole millicores, the other rates fractions.
    let rate = metrics.iter().find(|m| m["name"] == "cpu/usage_rate").unwrap();
    assert_eq!((rate["type"].as_str(), rate["value_type"].as_str()), (Some("gauge"), Some("int64")));
    let rate = metrics.iter().find(|m| m["name"] == "network/rx_rate").unwrap();
    assert_eq!((rate["type"].as_str(), rate["value_type"].as_str()), (Some("gauge"), Some("double")));
    let fs = metrics.iter().find(|m| m["name"] == "filesystem/usage").unwrap();
    assert_eq!(fs["labels"][0]["key"], json!("resource_id"));
    let acc = metrics.iter().find(|m| m["name"] == "accelerator/duty_cycle").unwrap();
    assert_eq!(acc["labels"].as_array().unwrap().len(), 3);

    let mut keys: Vec<&str> = Vec::new();
    for group in ["common_labels", "pod_labels"] {
        for label in v[group].as_array().unwrap() {
            assert!(!label["description"].as_str().unwrap().is_empty());
            keys.push(label["key"].as_str().unwrap());
        }
    }
    for m in metrics {
        for label in m["labels"].as_array().into_iter().flatten() {
            keys.push(label["key"].as_str().unwrap());
        }
    }
    for d in heapster_model::labels::ALL {
        assert!(keys.contains(&d.key), "label {} missing from the schema", d.key);
    }
    assert!(v["pod_labels"].as_array().unwrap().iter().any(|l| l["key"] == "pod_name"));
    assert!(v["common_labels"].as_array().unwrap().iter().any(|l| l["key"] == "hostname"));
}
