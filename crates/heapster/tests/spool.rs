//! `--sink_buffer_dir`: heapster stopped (SIGTERM) while InfluxDB is down, after more rounds than its memory queue
//! holds, then InfluxDB and heapster started again with the same directory. Every point the first run had is in
//! the real InfluxDB once, and no batch was sent twice.

mod common;

use common::{Heapster, model_points};
use heapster_testkit::{Influxd, wait};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The node's `uptime` points in InfluxDB: timestamp (ms) -> values stored at it.
fn stored(influx: &Influxd, node: &str) -> BTreeMap<i64, Vec<f64>> {
    influx.node_values("k8s", "uptime", "value", node)
}

/// The sum of a self-metric's samples over its label sets.
fn self_metric(h: &Heapster, name: &str) -> u64 {
    let (status, text) = h.get("/metrics");
    assert_eq!(status, 200);
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

/// SIGTERM, then waits for a clean exit.
fn terminate(h: &mut Heapster) {
    let status = Command::new("kill").arg("-TERM").arg(h.child.id().to_string()).status().unwrap();
    assert!(status.success());
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = h.child.try_wait().unwrap() {
            assert!(exit.success(), "heapster exited with {exit}");
            return;
        }
        assert!(Instant::now() < until, "heapster did not exit within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sink in std::fs::read_dir(dir).unwrap() {
        for f in std::fs::read_dir(sink.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "seg") {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_heapster_restart_during_an_influxdb_outage_loses_and_repeats_no_point() {
    let mut influx = Influxd::start();
    let node = "spool-e2e";
    let spool = std::env::temp_dir().join(format!("heapster-spool-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    let args = [
        "--metric_resolution=2s".to_string(),
        format!("--source=local?hostname={node}"),
        format!("--sink=influxdb:{}?db=k8s", influx.url()),
        format!("--sink_buffer_dir={}", spool.display()),
        "--sink_queue_batches=2".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut first = Heapster::start(&args);
    wait("first points in InfluxDB", Duration::from_secs(30), || stored(&influx, node).len() >= 2);
    // Stop InfluxDB right after a write, so that none is in flight.
    let before = stored(&influx, node).len();
    wait("one more write", Duration::from_secs(10), || stored(&influx, node).len() > before);
    influx.stop();

    // Five rounds or more without InfluxDB: more than the two batches memory holds.
    let down_at = model_points(&first, node, "uptime").len();
    std::thread::sleep(Duration::from_secs(11));
    let model = model_points(&first, node, "uptime");
    assert!(model.len() >= down_at + 4, "only {} rounds during the outage", model.len() - down_at);
    let first_exported = self_metric(&first, "heapster_sink_batches_exported_total");
    assert!(self_metric(&first, "heapster_sink_export_retries_total") > 0);
    terminate(&mut first);
    assert!(!segment_files(&spool).is_empty(), "the unsent batches are on disk in {}", spool.display());

    // InfluxDB back, then heapster with the same spool: the first run's points arrive, in the first minute.
    influx.launch();
    let second = Heapster::start(&args);
    wait("every point of the first run in InfluxDB", Duration::from_secs(60), || {
        let s = stored(&influx, node);
        model.keys().all(|t| s.contains_key(t))
    });
    let s = stored(&influx, node);
    for (t, v) in &model {
        assert_eq!(s[t], vec![*v], "uptime at {t}: InfluxDB has {:?}, the first run's model API {v}", s[t]);
    }

    // No batch was sent twice: the batches both runs exported are as many as the timestamps InfluxDB has (each
    // batch has one uptime point of the node, at a timestamp of its own). Read when no export is under way.
    wait("both runs' exports add up to InfluxDB's timestamps", Duration::from_secs(20), || {
        let exported = self_metric(&second, "heapster_sink_batches_exported_total");
        let timestamps = stored(&influx, node).len() as u64;
        let settled = exported == self_metric(&second, "heapster_sink_batches_exported_total");
        assert!(
            !settled || first_exported + exported <= timestamps,
            "{first_exported} + {exported} batches exported, InfluxDB has {timestamps} timestamps: some were sent twice"
        );
        settled && first_exported + exported == timestamps
    });
    assert_eq!(self_metric(&second, "heapster_sink_batches_dropped_total"), 0);
    drop(second);
    let _ = std::fs::remove_dir_all(&spool);
}
