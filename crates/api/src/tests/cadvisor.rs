//! cAdvisor's v1.3 endpoints rebuilt from the fixture store: names, samples and values.

use super::{BIG, get_err, get_ok, state, times};
use axum::http::StatusCode;
use heapster_model::cadvisor::ContainerInfo;

fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn subcontainers_list_the_node_its_cgroups_and_its_pod_containers() {
    let st = state();
    for uri in ["/api/v1.3/subcontainers/", "/api/v1.3/subcontainers"] {
        let all: Vec<ContainerInfo> = decode(get_ok(&st, uri).await);
        let names: Vec<&str> = all.iter().map(|c| c.reference.name.as_str()).collect();
        assert_eq!(names, ["/", "/kubepods/ns1/p1/c1", "/system.slice/docker"], "{uri}");
    }
    let all: Vec<ContainerInfo> = decode(get_ok(&st, "/api/v1.3/subcontainers/").await);
    let node = &all[0];
    let t = times();
    // The three batches, oldest first, stamped with the batch times.
    let stamps: Vec<i64> = node.stats.iter().map(|s| s.timestamp.unwrap().timestamp_millis()).collect();
    assert_eq!(stamps, t);
    let newest = node.stats.last().unwrap();
    assert_eq!(newest.memory.as_ref().unwrap().usage, Some(BIG as u64 + 2), "big integers stay exact");
    assert_eq!(newest.cpu.as_ref().unwrap().usage.as_ref().unwrap().total, Some(3_000_000));
    let fs: Vec<(&str, Option<u64>)> = newest.filesystem.iter().map(|f| (f.device.as_str(), f.usage)).collect();
    assert_eq!(fs, [("/dev/sda1", Some(12)), ("/dev/sdb1", Some(22))]);
    assert_eq!(node.spec.has_cpu, Some(true));
    assert_eq!(node.spec.has_network, Some(false));
    assert!(node.spec.creation_time.is_some());
    assert!(newest.network.is_none(), "no network figures, no network block");

    let pod = &all[1];
    assert_eq!(pod.reference.labels["io.kubernetes.pod.name"], "p1");
    assert_eq!(pod.reference.labels["io.kubernetes.pod.namespace"], "ns1");
    assert_eq!(pod.reference.labels["io.kubernetes.container.name"], "c1");
    assert_eq!(pod.stats.last().unwrap().filesystem[0].device, "/");

    let sys: Vec<ContainerInfo> = decode(get_ok(&st, "/api/v1.3/subcontainers/system.slice").await);
    assert_eq!(sys.len(), 1);
    assert_eq!(sys[0].stats.last().unwrap().memory.as_ref().unwrap().usage, Some(502));
}

#[tokio::test]
async fn containers_answer_one_container_with_its_children_named() {
    let st = state();
    let root: ContainerInfo = decode(get_ok(&st, "/api/v1.3/containers/").await);
    assert_eq!(root.reference.name, "/");
    let children: Vec<&str> = root.subcontainers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(children, [] as [&str; 0], "both containers are two levels down");
    let docker: ContainerInfo = decode(get_ok(&st, "/api/v1.3/containers/system.slice/docker").await);
    assert_eq!(docker.stats.len(), 3);
    get_err(&st, "/api/v1.3/containers/no/such", StatusCode::NOT_FOUND, "no container \"/no/such\"").await;
    get_err(&st, "/api/v1.3/subcontainers/?node=n9", StatusCode::NOT_FOUND, "no node \"n9\"").await;
}

#[tokio::test]
async fn machine_info_is_this_hosts() {
    let st = state();
    let m = get_ok(&st, "/api/v1.3/machine/").await;
    assert!(m["num_cores"].as_u64().is_some_and(|n| n >= 1), "{m}");
    assert!(m["memory_capacity"].as_u64().is_some_and(|n| n > 0), "{m}");
}

#[tokio::test]
async fn an_empty_store_says_why() {
    let st = super::empty_state(std::time::Duration::from_secs(60));
    get_err(&st, "/api/v1.3/subcontainers/", StatusCode::NOT_FOUND, "first scrape").await;
}
