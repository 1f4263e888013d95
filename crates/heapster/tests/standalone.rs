//! End to end on a running binary: heapster in standalone mode on this host, with real cgroups made by the test
//! (a CPU burner and a process holding 200 MB), answering the model API over HTTP and stopping on SIGTERM.
//!
//! Needs root: cgroups are created under /sys/fs/cgroup. Where that fails the test fails and says why.

mod common;

use common::Heapster;
use common::cgroups::Fixture;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn latest(v: &Value) -> f64 {
    v["metrics"].as_array().and_then(|m| m.last()).and_then(|p| p["value"].as_f64()).unwrap_or(f64::NAN)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

#[test]
fn standalone_heapster_serves_this_host_and_its_cgroups() {
    let tag = format!("heapster-e2e-{}", std::process::id());
    let (burn, mem) = (format!("{tag}-burn"), format!("{tag}-mem"));
    let mut fx = Fixture::default();
    let burn_dirs = fx.cgroup(&burn);
    fx.spawn_in(&burn_dirs, "sh -c 'while :; do :; done'");
    let mem_dirs = fx.cgroup(&mem);
    fx.spawn_in(
        &mem_dirs,
        "python3 -c 'import time; b = bytearray(200 << 20); b[::4096] = b\"\\x01\" * len(b[::4096]); time.sleep(600)'",
    );

    // A process in its own network namespace sends 5,000 datagrams of 1,000 bytes to the host end of its veth.
    let net = format!("{tag}-net");
    let ns = fx.netns(&std::process::id().to_string());
    let net_dirs = fx.cgroup(&net);
    let sent_bytes = 5_000_000.0;
    fx.spawn_in(
        &net_dirs,
        &format!(
            "ip netns exec {ns} python3 -c 'import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             for i in range(5000):\n    s.sendto(b\"x\" * 1000, (\"169.254.77.1\", 9))\ntime.sleep(600)'"
        ),
    );

    let node = "e2e-node";
    let h = Heapster::start(&["--metric_resolution=2s", &format!("--source=local?hostname={node}")]);
    h.wait_for("/healthz", Duration::from_secs(20), |_| true);

    // The node and both containers appear, with a CPU rate once two rounds have run.
    let nodes = h.json("/api/v1/model/nodes/");
    assert_eq!(strings(&nodes), vec![node.to_string()], "{nodes}");
    let free = h.json(&format!("/api/v1/model/nodes/{node}/freecontainers/"));
    let free = strings(&free);
    assert!(free.contains(&burn) && free.contains(&mem), "{free:?}");

    let rate_path = format!("/api/v1/model/nodes/{node}/freecontainers/{burn}/metrics/cpu/usage_rate");
    // Let a few rounds pass so the rate covers a full period of burning.
    let rate =
        h.wait_for(&rate_path, Duration::from_secs(20), |v| v["metrics"].as_array().is_some_and(|m| m.len() >= 3));
    let millicores = latest(&rate);
    assert!((850.0..=1150.0).contains(&millicores), "burner used {millicores} millicores, want 1000 ± 15%: {rate}");

    let two_hundred_mb = 200.0 * 1024.0 * 1024.0;
    for metric in ["memory/usage", "memory/working_set"] {
        let path = format!("/api/v1/model/nodes/{node}/freecontainers/{mem}/metrics/{metric}");
        let v = h.wait_for(&path, Duration::from_secs(20), |v| latest(v) >= two_hundred_mb);
        assert!(latest(&v) >= two_hundred_mb, "{metric}: {v}");
    }

    let tx_path = format!("/api/v1/model/nodes/{node}/freecontainers/{net}/metrics/network/tx");
    let tx = h.wait_for(&tx_path, Duration::from_secs(20), |v| latest(v) >= sent_bytes);
    assert!(latest(&tx) >= sent_bytes, "network/tx of the namespaced container: {tx}");
    let burn_metrics = strings(&h.json(&format!("/api/v1/model/nodes/{node}/freecontainers/{burn}/metrics/")));
    assert!(
        !burn_metrics.iter().any(|m| m.starts_with("network/")),
        "host-namespace cgroups get no network: {burn_metrics:?}"
    );
    // Hierarchies merged by path: CPU from v1 cpuacct, memory from v1 memory, PSI from cgroup2, one container.
    if ["/sys/fs/cgroup/unified/cpu.pressure", "/sys/fs/cgroup/cpu.pressure"].iter().any(|p| PathBuf::from(p).exists())
    {
        for m in ["cpu/usage", "memory/usage", "cpu/pressure_some"] {
            assert!(burn_metrics.iter().any(|n| n == m), "{burn} lacks {m}: {burn_metrics:?}");
        }
    }

    // The node's own metrics, and the cluster roll-up of it.
    let node_metrics = strings(&h.json(&format!("/api/v1/model/nodes/{node}/metrics/")));
    for m in ["cpu/usage", "cpu/usage_rate", "memory/usage", "memory/working_set", "uptime"] {
        assert!(node_metrics.iter().any(|n| n == m), "node lacks {m}: {node_metrics:?}");
    }
    let node_cpu = latest(&h.json(&format!("/api/v1/model/nodes/{node}/metrics/cpu/usage_rate")));
    assert!(node_cpu >= millicores * 0.8, "node {node_cpu} mcores < burner {millicores}");
    let cluster_cpu = latest(&h.json("/api/v1/model/metrics/cpu/usage_rate"));
    assert!(cluster_cpu >= node_cpu * 0.5, "cluster {cluster_cpu}");

    let keys = h.json("/api/v1/model/debug/allkeys");
    let keys = strings(&keys);
    assert!(keys.contains(&format!("node:{node}/container:{burn}")), "{keys:?}");
    assert!(keys.contains(&"cluster".to_string()));

    let export = h.json("/api/v1/metric-export");
    assert!(export.as_array().is_some_and(|a| a.len() >= 3), "metric-export: {export}");
    let schema = h.json("/api/v1/metric-export-schema");
    assert!(schema["metrics"].as_array().is_some_and(|a| a.len() >= 50), "schema: {schema}");
    let (status, text) = h.get("/metrics");
    assert_eq!(status, 200);
    assert!(text.contains("heapster_scrape_duration_seconds"), "{text}");
    // The original Heapster's names beside them: its summaries and go-restful's request counts by handler.
    for name in [
        "heapster_scraper_duration_milliseconds_count{source=",
        "heapster_scraper_last_time_seconds{source=",
        "heapster_processor_duration_milliseconds{processor=\"rate_calculator\",quantile=\"0.99\"}",
        "http_requests_total{handler=\"nodeMetrics\",method=\"get\",code=\"200\"}",
        "http_request_duration_microseconds_count{handler=\"nodeMetrics\"}",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics: {text}");
    }

    // SIGTERM: a clean exit, promptly.
    let mut h = h;
    let pid = h.child.id() as i32;
    send_sigterm(pid);
    let until = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = h.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "heapster did not stop within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "heapster exited with {status} after SIGTERM");
}

fn send_sigterm(pid: i32) {
    let ok = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap().success();
    assert!(ok, "kill -TERM {pid}");
}

#[test]
fn bad_flags_are_rejected_with_one_clear_line() {
    for (args, want) in [
        (vec!["--no_such_flag=1"], "no_such_flag"),
        (vec!["--sink=nosuchsink"], "unknown sink"),
        (vec!["--source=nosuchsource"], "unknown source"),
        (vec!["--metric_resolution=soon"], "not a duration"),
        (vec!["--sink=:http://x"], "has no key"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_heapster"))
            .args(&args)
            .args(["--heapster_port=1", "--listen_ip=127.0.0.1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(err.contains(want), "{args:?}: stderr does not say {want:?}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_heapster")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--source", "--sink", "--metric_resolution", "--store_window", "--heapster_port", "--listen_ip"] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_heapster")).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}
