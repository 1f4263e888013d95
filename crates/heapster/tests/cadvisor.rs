//! End to end on two running binaries: heapster A in local mode serves cAdvisor's `/api/v1.3/` endpoints, and
//! heapster B scrapes it as a plain host listed in a hosts file (`--source=cadvisor:external?hostsFile=...`).
//! B's figures for the host must be A's, and B must follow the hosts file as it changes.
//!
//! Needs what the local source needs: a host with cgroups mounted (readable; no root needed, nothing is created).

mod common;

use common::Heapster;
use serde_json::Value;
use std::time::Duration;

/// (timestamp, value) of every point of a model API metric answer.
fn points(v: &Value) -> Vec<(String, f64)> {
    let pts = v["metrics"].as_array().cloned().unwrap_or_default();
    pts.iter()
        .map(|p| (p["timestamp"].as_str().unwrap_or("").to_owned(), p["value"].as_f64().unwrap_or(f64::NAN)))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// The value of a Prometheus counter line that contains every one of `needles`, if any.
fn counter(text: &str, needles: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && needles.iter().all(|n| l.contains(n)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn a_central_heapster_scrapes_a_local_one_through_the_cadvisor_api() {
    let a = Heapster::start(&["--metric_resolution=2s"]);
    a.wait_for("/healthz", Duration::from_secs(20), |_| true);
    let a_nodes = strings(&a.json("/api/v1/model/nodes/"));
    assert_eq!(a_nodes.len(), 1, "{a_nodes:?}");
    let a_node = &a_nodes[0];

    // A answers cAdvisor's endpoints itself.
    let subs = a.json("/api/v1.3/subcontainers/");
    assert_eq!(subs[0]["name"], "/", "the node comes first: {}", &subs.to_string()[..200.min(subs.to_string().len())]);
    let machine = a.json("/api/v1.3/machine/");
    assert!(machine["num_cores"].as_u64().is_some_and(|n| n >= 1), "{machine}");

    let dir = std::env::temp_dir().join(format!("heapster-cadvisor-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hosts = dir.join("hosts.json");
    std::fs::write(&hosts, r#"{"Items":[{"Name":"host-a","IP":"127.0.0.1"}]}"#).unwrap();
    let source = format!("--source=cadvisor:external?hostsFile={}&cadvisorPort={}", hosts.display(), a.port);
    let b = Heapster::start(&["--metric_resolution=2s", &source]);

    // B sees host-a with a CPU rate (two samples of A apart) and memory.
    let rate = b.wait_for("/api/v1/model/nodes/host-a/metrics/cpu/usage_rate", Duration::from_secs(30), |v| {
        points(v).iter().any(|(_, x)| *x > 0.0)
    });
    assert!(points(&rate).iter().all(|(_, x)| *x >= 0.0), "{rate}");
    let b_mem = b
        .wait_for("/api/v1/model/nodes/host-a/metrics/memory/usage", Duration::from_secs(20), |v| points(v).len() >= 2);

    // Every memory/usage B holds is one of A's readings, exactly, from a batch within a few ticks of B's: B's round
    // reads A's newest batch, usually A's round of the same tick or the one before; on a loaded machine B's scrape
    // can start late enough to find A's next round done, so the tick of the reading may also be later than B's.
    let a_mem = points(&a.json(&format!("/api/v1/model/nodes/{a_node}/metrics/memory/usage")));
    let ms = |ts: &str| chrono::DateTime::parse_from_rfc3339(ts).map(|t| t.timestamp_millis()).unwrap_or(i64::MIN / 2);
    for (b_ts, b_val) in points(&b_mem) {
        assert!(
            a_mem.iter().any(|(a_ts, a_val)| *a_val == b_val && (ms(a_ts) - ms(&b_ts)).abs() <= 3 * 2000),
            "B's memory/usage {b_val} at {b_ts} is none of A's readings within 3 ticks: {a_mem:?}"
        );
    }
    // A's cgroups are B's free containers under the same names.
    let a_free = strings(&a.json(&format!("/api/v1/model/nodes/{a_node}/freecontainers/")));
    let b_free = strings(&b.json("/api/v1/model/nodes/host-a/freecontainers/"));
    assert!(!b_free.is_empty(), "B has no containers of host-a");
    let renamed = ["docker-daemon", "kubelet"];
    for c in b_free.iter().filter(|c| !renamed.contains(&c.as_str())) {
        assert!(a_free.contains(c), "B's container {c:?} is not one of A's: {a_free:?}");
    }

    // A second host that does not answer (nothing listens on 127.0.0.2): B re-reads the file, counts the failures
    // and keeps scraping host-a.
    let before = points(&b.json("/api/v1/model/nodes/host-a/metrics/memory/usage")).len();
    std::fs::write(&hosts, r#"{"Items":[{"Name":"host-a","IP":"127.0.0.1"},{"Name":"host-dead","IP":"127.0.0.2"}]}"#)
        .unwrap();
    let metrics = b.wait_for("/metrics", Duration::from_secs(20), |v| {
        v.as_str().and_then(|t| counter(t, &["heapster_scrape_errors", "cadvisor:host-dead"])).is_some_and(|n| n >= 1.0)
    });
    let text = metrics.as_str().unwrap();
    assert!(
        counter(text, &["heapster_cadvisor_scrape_errors", "subcontainers", "connect"]).is_some_and(|n| n >= 1.0),
        "no connect error counted: {text}"
    );
    assert!(counter(text, &["heapster_scrape_errors", "cadvisor:host-a"]).is_none(), "host-a failed: {text}");
    b.wait_for("/api/v1/model/nodes/host-a/metrics/memory/usage", Duration::from_secs(20), |v| {
        points(v).len() >= before + 2
    });
    let nodes = strings(&b.json("/api/v1/model/nodes/"));
    assert_eq!(nodes, ["host-a"], "the dead host has no data");
    let _ = std::fs::remove_dir_all(&dir);
}
