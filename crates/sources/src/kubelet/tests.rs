//! The recorded kubelet responses in `/work/shared/fixtures` (see its README) decode and convert, and every value
//! lands where it should. Expected values are read from the same JSON through `serde_json::Value`, independently of
//! the typed structs, so a misspelt field name cannot make both sides agree on "absent".

use super::{decode, summary_to_sets};
use heapster_model::{MetricSet, MetricValue, labels};
use serde_json::Value;
use std::collections::HashSet;

const K116: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/kubelet_stats_summary_k8s1.16_docker_cgroupv1.json"
));
const K128: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/kubelet_stats_summary_k8s1.28_multicontainer.json"
));
const K135: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/kubelet_stats_summary_k8s1.35_cgroupv2.json"
));
const LEGACY: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/kubelet_stats_summary_legacy_no_pod_cpu.json"
));

const ALL: [(&str, &[u8]); 4] = [("1.16", K116), ("1.28", K128), ("1.35", K135), ("legacy", LEGACY)];

/// Round time passed in; no fixture sample is anywhere near it, so a set that used it would show.
const ROUND: i64 = 1;

type Sets = Vec<(String, MetricSet)>;

fn convert(bytes: &[u8]) -> (Value, Sets) {
    let raw: Value = serde_json::from_slice(bytes).unwrap();
    let node = raw["node"]["nodeName"].as_str().unwrap().to_owned();
    let sets = summary_to_sets(&decode(bytes).unwrap(), &node, Some("host-1"), ROUND);
    (raw, sets)
}

fn get<'a>(sets: &'a Sets, key: &str) -> &'a MetricSet {
    sets.iter().find(|(k, _)| k == key).map(|(_, s)| s).unwrap_or_else(|| panic!("no set {key}"))
}

fn int(v: &Value) -> Option<MetricValue> {
    v.as_u64().map(|v| MetricValue::Int(v as i64))
}

fn labeled(set: &MetricSet, name: &str, resource_id: &str) -> Option<MetricValue> {
    let mut found = set
        .labeled_metrics
        .iter()
        .filter(|m| m.name == name && m.labels.get_str(labels::RESOURCE_ID) == Some(resource_id));
    let first = found.next().map(|m| m.value);
    assert!(found.next().is_none(), "{name} {resource_id} twice");
    first
}

fn millis(v: &Value) -> Option<i64> {
    v.as_str().map(|s| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis())
}

/// CPU, memory and PSI of one node, pod or container object, against its set. Absent in the JSON means absent in the
/// set, not zero.
fn check_cpu_memory(what: &str, raw: &Value, set: &MetricSet) {
    let pairs = [
        ("cpu/usage", &raw["cpu"]["usageCoreNanoSeconds"]),
        ("memory/usage", &raw["memory"]["usageBytes"]),
        ("memory/working_set", &raw["memory"]["workingSetBytes"]),
        ("memory/rss", &raw["memory"]["rssBytes"]),
        ("memory/page_faults", &raw["memory"]["pageFaults"]),
        ("memory/major_page_faults", &raw["memory"]["majorPageFaults"]),
        ("cpu/pressure_some", &raw["cpu"]["psi"]["some"]["total"]),
        ("cpu/pressure_full", &raw["cpu"]["psi"]["full"]["total"]),
        ("memory/pressure_some", &raw["memory"]["psi"]["some"]["total"]),
        ("memory/pressure_full", &raw["memory"]["psi"]["full"]["total"]),
        ("io/pressure_some", &raw["io"]["psi"]["some"]["total"]),
        ("io/pressure_full", &raw["io"]["psi"]["full"]["total"]),
    ];
    for (metric, v) in pairs {
        assert_eq!(set.get(metric), int(v), "{what} {metric}");
    }
    assert_eq!(set.create_time, millis(&raw["startTime"]).unwrap_or(0), "{what} create time");
    let sample = millis(&raw["cpu"]["time"]).or(millis(&raw["memory"]["time"])).or(millis(&raw["network"]["time"]));
    assert_eq!(set.scrape_time, sample.unwrap_or(ROUND), "{what} scrape time");
    if set.create_time > 0 {
        assert_eq!(set.get("uptime"), Some(MetricValue::Int((set.scrape_time - set.create_time).max(0))), "{what}");
    }
}

fn check_fs(what: &str, raw: &Value, set: &MetricSet, resource_id: &str) {
    let pairs = [
        ("filesystem/usage", "usedBytes"),
        ("filesystem/limit", "capacityBytes"),
        ("filesystem/available", "availableBytes"),
        ("filesystem/inodes", "inodes"),
        ("filesystem/inodes_free", "inodesFree"),
    ];
    for (metric, field) in pairs {
        assert_eq!(labeled(set, metric, resource_id), int(&raw[field]), "{what} {metric} {resource_id}");
    }
}

/// Expected network counter, of nodes and pods alike: the flat field (the default interface), else the sum over
/// `interfaces`.
fn net(raw: &Value, field: &str) -> Option<MetricValue> {
    let summed = || match raw["interfaces"].as_array() {
        Some(ifaces) if !ifaces.is_empty() => {
            let vals: Vec<u64> = ifaces.iter().filter_map(|i| i[field].as_u64()).collect();
            (!vals.is_empty()).then(|| MetricValue::Int(vals.iter().sum::<u64>() as i64))
        }
        _ => None,
    };
    int(&raw[field]).or_else(summed)
}

fn check_network(what: &str, raw: &Value, set: &MetricSet) {
    for (metric, field) in [
        ("network/rx", "rxBytes"),
        ("network/rx_errors", "rxErrors"),
        ("network/tx", "txBytes"),
        ("network/tx_errors", "txErrors"),
    ] {
        assert_eq!(set.get(metric), net(&raw["network"], field), "{what} {metric}");
    }
}

/// Walks every node, system container, pod and container of every fixture and checks every mapped value.
#[test]
fn every_fixture_converts_value_for_value() {
    for (name, bytes) in ALL {
        let (raw, sets) = convert(bytes);
        let node_name = raw["node"]["nodeName"].as_str().unwrap();
        let keys: HashSet<_> = sets.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.len(), sets.len(), "{name}: duplicate keys");

        let node = get(&sets, &format!("node:{node_name}"));
        assert_eq!(node.set_type(), Some("node"));
        assert_eq!(node.labels[labels::NODENAME], node_name);
        assert_eq!(node.labels[labels::HOST_ID], "host-1");
        check_cpu_memory(name, &raw["node"], node);
        check_network(name, &raw["node"], node);
        check_fs(name, &raw["node"]["fs"], node, "/");
        assert_eq!(node.get("ephemeral_storage/usage"), int(&raw["node"]["fs"]["usedBytes"]));

        let sys = raw["node"]["systemContainers"].as_array().cloned().unwrap_or_default();
        for c in &sys {
            let cname = match c["name"].as_str().unwrap() {
                "runtime" => "docker-daemon",
                "misc" => "system",
                other => other,
            };
            let set = get(&sets, &format!("node:{node_name}/container:{cname}"));
            assert_eq!(set.set_type(), Some("sys_container"));
            assert_eq!(set.labels[labels::CONTAINER_NAME], cname);
            check_cpu_memory(&format!("{name} sys {cname}"), c, set);
        }

        let pods = raw["pods"].as_array().unwrap();
        let mut containers = 0;
        for p in pods {
            let (ns, pod) = (p["podRef"]["namespace"].as_str().unwrap(), p["podRef"]["name"].as_str().unwrap());
            let what = format!("{name} {ns}/{pod}");
            let set = get(&sets, &format!("namespace:{ns}/pod:{pod}"));
            assert_eq!(set.set_type(), Some("pod"));
            assert_eq!(set.labels[labels::POD_ID], p["podRef"]["uid"].as_str().unwrap());
            assert_eq!(set.labels[labels::POD_NAME], pod);
            assert_eq!(set.labels[labels::NAMESPACE_NAME], ns);
            assert_eq!(set.labels[labels::POD_NAMESPACE], ns);
            assert_eq!(set.labels[labels::NODENAME], node_name);
            check_cpu_memory(&what, p, set);
            check_network(&what, p, set);
            assert_eq!(set.get("ephemeral_storage/usage"), int(&p["ephemeral-storage"]["usedBytes"]), "{what}");
            let vols = p["volume"].as_array().cloned().unwrap_or_default();
            for v in &vols {
                check_fs(&what, v, set, &format!("Volume:{}", v["name"].as_str().unwrap()));
            }
            assert_eq!(set.labeled_metrics.len(), vols.len() * 5, "{what}: only volumes are labelled on a pod");

            for c in p["containers"].as_array().unwrap() {
                containers += 1;
                let cname = c["name"].as_str().unwrap();
                let what = format!("{what}/{cname}");
                let set = get(&sets, &format!("namespace:{ns}/pod:{pod}/container:{cname}"));
                assert_eq!(set.set_type(), Some("pod_container"));
                assert_eq!(set.labels[labels::CONTAINER_NAME], cname);
                assert_eq!(set.labels[labels::POD_NAME], pod);
                assert_eq!(set.labels[labels::HOSTNAME], node_name);
                check_cpu_memory(&what, c, set);
                check_fs(&what, &c["rootfs"], set, "/");
                check_fs(&what, &c["logs"], set, "logs");
                let eph = c["rootfs"]["usedBytes"].as_u64().unwrap() + c["logs"]["usedBytes"].as_u64().unwrap();
                assert_eq!(set.get("ephemeral_storage/usage"), Some(MetricValue::Int(eph as i64)), "{what}");
                assert!(set.get("network/rx").is_none(), "containers share the pod's network: {what}");
            }
        }
        assert_eq!(sets.len(), 1 + sys.len() + pods.len() + containers, "{name}: set count");
    }
}

#[test]
fn pod_and_container_counts_match_the_fixture_readme() {
    for (bytes, sys, pods, containers) in [(K116, 3, 15, 15), (K128, 2, 18, 23), (K135, 2, 17, 17), (LEGACY, 0, 2, 3)] {
        let (_, sets) = convert(bytes);
        let count = |t: &str| sets.iter().filter(|(_, s)| s.set_type() == Some(t)).count();
        assert_eq!((count("sys_container"), count("pod"), count("pod_container")), (sys, pods, containers));
        assert_eq!(count("node"), 1);
    }
}

#[test]
fn known_values_from_the_1_16_docker_node() {
    let (_, sets) = convert(K116);
    let keys: Vec<_> = sets.iter().take(4).map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "node:minikube",
            "node:minikube/container:kubelet",
            "node:minikube/container:docker-daemon",
            "node:minikube/container:pods"
        ]
    );
    let pod = get(&sets, "namespace:scraper/pod:e2e-ds-8zz8h");
    assert_eq!(pod.get("cpu/usage"), Some(MetricValue::Int(69_596_536)));
    assert_eq!(labeled(pod, "filesystem/usage", "Volume:an-empty-dir"), Some(MetricValue::Int(4096)));
    assert_eq!(labeled(pod, "filesystem/usage", "Volume:default-token-tdc8v"), Some(MetricValue::Int(12288)));
    let c = get(&sets, "namespace:scraper/pod:e2e-ds-8zz8h/container:busybox");
    assert_eq!(c.get("cpu/usage"), Some(MetricValue::Int(18_098_430)));
    assert_eq!(c.get("memory/working_set"), Some(MetricValue::Int(557_056)));
    assert_eq!(get(&sets, "node:minikube").get("memory/working_set"), Some(MetricValue::Int(1_446_182_912)));
    // sit0 reports zeros and eth0 the traffic: the sum is eth0's.
    assert_eq!(get(&sets, "node:minikube").get("network/rx"), Some(MetricValue::Int(811_882_573)));
    assert!(get(&sets, "node:minikube").get("cpu/pressure_some").is_none(), "cgroup v1: no PSI");
}

#[test]
fn known_values_from_the_1_28_multicontainer_node() {
    let (_, sets) = convert(K128);
    let node = get(&sets, "node:datagen-1-28");
    assert_eq!(node.get("memory/working_set"), Some(MetricValue::Int(884_572_160)));
    assert_eq!(node.get("cpu/usage"), Some(MetricValue::Int(117_133_655_000)));
    assert_eq!(labeled(node, "filesystem/usage", "/"), Some(MetricValue::Int(16_047_185_920)));
    assert_eq!(node.create_time, 1_699_279_684_000, "2023-11-06T14:08:04Z");
    let pod = get(&sets, "namespace:scraper/pod:e2e-statefulset-0");
    assert_eq!(pod.get("cpu/usage"), Some(MetricValue::Int(2_380_520_000)));
    assert_eq!(pod.get("ephemeral_storage/usage"), Some(MetricValue::Int(69_632)));
    let failing = get(&sets, "namespace:scraper/pod:e2e-statefulset-0/container:failing-container");
    assert_eq!(failing.get("cpu/usage"), Some(MetricValue::Int(11_739_000)));
    assert_eq!(failing.labels[labels::POD_ID], pod.labels[labels::POD_ID]);
    assert!(sets.iter().any(|(k, _)| k == "namespace:scraper/pod:e2e-statefulset-0/container:compute-pi-digits"));
}

#[test]
fn known_psi_values_from_the_1_35_cgroup_v2_node() {
    let (_, sets) = convert(K135);
    let node = get(&sets, "node:datagen-1-35");
    let want = [
        ("cpu/pressure_some", 34_335_662),
        ("cpu/pressure_full", 32_884_223),
        ("memory/pressure_some", 15),
        ("memory/pressure_full", 2),
        ("io/pressure_some", 171_148),
        ("io/pressure_full", 156_559),
    ];
    for (metric, v) in want {
        assert_eq!(node.get(metric), Some(MetricValue::Int(v)), "{metric}");
    }
    let kubelet = get(&sets, "node:datagen-1-35/container:kubelet");
    assert_eq!(kubelet.get("io/pressure_some"), Some(MetricValue::Int(2533)));
    let c =
        get(&sets, "namespace:kube-system/pod:kube-controller-manager-datagen-1-35/container:kube-controller-manager");
    assert_eq!(c.get("cpu/pressure_some"), Some(MetricValue::Int(179_184)));
    assert_eq!(c.get("cpu/pressure_full"), Some(MetricValue::Int(176_526)));
    let pod = get(&sets, "namespace:scraper/pod:e2e-deployment-79967c5968-8bnn8");
    assert_eq!(labeled(pod, "filesystem/usage", "Volume:storage"), Some(MetricValue::Int(4096)));
    assert!(pod.get("cpu/pressure_some").is_some());
}

#[test]
fn the_legacy_document_yields_pods_without_pod_level_cpu_or_memory() {
    let (_, sets) = convert(LEGACY);
    assert!(sets.iter().all(|(_, s)| s.set_type() != Some("sys_container")));
    for (key, set) in sets.iter().filter(|(_, s)| s.set_type() == Some("pod")) {
        for metric in ["cpu/usage", "memory/usage", "memory/working_set", "ephemeral_storage/usage"] {
            assert!(set.get(metric).is_none(), "{key} has {metric}");
        }
        assert!(set.get("network/rx").is_some(), "{key}");
        assert!(set.get("uptime").is_some(), "{key}");
        // No cpu/memory: the pod's sample time is its network time.
        assert!(set.scrape_time > ROUND, "{key}");
    }
    let c = get(&sets, "namespace:kube-system/pod:newrelic-infra-monitoring-pjp0v/container:newrelic-infra");
    assert_eq!(c.get("cpu/usage"), Some(MetricValue::Int(303_855_795_298)));
    assert!(c.metrics.keys().all(|k| !k.starts_with("custom/")), "userDefinedMetrics: null");
    let node = get(&sets, "node:fooNode");
    assert_eq!(node.get("network/rx"), Some(MetricValue::Int(51_419_684_038)));
    assert_eq!(node.get("cpu/usage"), Some(MetricValue::Int(353_998_913_059_080)));
}

#[test]
fn malformed_input_is_a_serde_error() {
    let truncated = &K128[..K128.len() / 2];
    let html = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body></body></html>";
    let status = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}"#;
    let cases: [(&str, &[u8]); 7] = [
        ("an API Status, not a Summary", status),
        ("truncated", truncated),
        ("html", html),
        ("empty", b""),
        ("pods not a list", br#"{"pods": 5}"#),
        ("bad timestamp", br#"{"node": {"startTime": "yesterday"}}"#),
        ("negative counter", br#"{"node": {"cpu": {"usageCoreNanoSeconds": -1}}}"#),
    ];
    for (what, bytes) in cases {
        assert!(decode(bytes).is_err(), "{what} decoded");
    }
    let err = decode(truncated).unwrap_err();
    assert!(err.is_eof(), "{err}");
    assert!(decode(html).unwrap_err().is_syntax());
}

/// Adds an unknown field of each JSON shape to every object below `v`.
fn add_unknown_fields(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                add_unknown_fields(child);
            }
            map.insert("zzFutureField".into(), serde_json::json!({"nested": [1, "two", null, {"three": 3.5}]}));
            map.insert("zzFutureCount".into(), serde_json::json!(-12));
            map.insert("zzFutureFlag".into(), serde_json::json!(true));
        }
        Value::Array(items) => items.iter_mut().for_each(add_unknown_fields),
        _ => {}
    }
}

/// Issue 3, "unknown fields": what a newer kubelet adds, at any depth, is ignored, and a system container heapster
/// has no legacy name for is kept under its own name; every known value converts as before.
#[test]
fn unknown_fields_at_every_level_and_unknown_system_containers_are_ignored() {
    for (name, bytes) in ALL {
        let mut doc: Value = serde_json::from_slice(bytes).unwrap();
        add_unknown_fields(&mut doc);
        let sys = doc["node"]["systemContainers"].as_array().cloned();
        let mut new_sys = serde_json::json!({"name": "containerd-shim-v9", "startTime": "2024-01-01T00:00:00Z",
            "cpu": {"time": "2024-01-01T00:01:00Z", "usageCoreNanoSeconds": 42}, "zzFutureField": {}});
        add_unknown_fields(&mut new_sys);
        let mut all_sys = sys.unwrap_or_default();
        all_sys.push(new_sys);
        doc["node"]["systemContainers"] = Value::Array(all_sys);
        let bytes_with_extras = serde_json::to_vec(&doc).unwrap();

        let node = doc["node"]["nodeName"].as_str().unwrap().to_owned();
        let summary = decode(&bytes_with_extras).unwrap_or_else(|e| panic!("{name}: {e}"));
        let with_extras = summary_to_sets(&summary, &node, Some("host-1"), ROUND);
        let (_, plain) = convert(bytes);

        let extra_key = format!("node:{node}/container:containerd-shim-v9");
        let extra = get(&with_extras, &extra_key);
        assert_eq!(extra.set_type(), Some("sys_container"), "{name}");
        assert_eq!(extra.get("cpu/usage"), Some(MetricValue::Int(42)), "{name}");
        let rest: Sets = with_extras.into_iter().filter(|(k, _)| *k != extra_key).collect();
        assert_eq!(rest.len(), plain.len(), "{name}");
        for ((k1, s1), (k2, s2)) in rest.iter().zip(&plain) {
            assert_eq!(k1, k2, "{name}");
            assert_eq!(s1, s2, "{name} {k1}");
        }
    }
}
