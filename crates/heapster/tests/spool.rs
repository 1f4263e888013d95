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

/// A heapster scraping this host as `node` every 2 s into `influx`, spooling in `spool`, two batches in memory.
fn spooled_args(node: &str, influx: &Influxd, spool: &Path) -> [String; 5] {
    [
        "--metric_resolution=2s".to_string(),
        format!("--source=local?hostname={node}"),
        format!("--sink=influxdb:{}?db=k8s", influx.url()),
        format!("--sink_buffer_dir={}", spool.display()),
        "--sink_queue_batches=2".to_string(),
    ]
}

#[test]
fn a_heapster_restart_during_an_influxdb_outage_loses_and_repeats_no_point() {
    let mut influx = Influxd::start();
    let node = "spool-e2e";
    let spool = std::env::temp_dir().join(format!("heapster-spool-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    let args = spooled_args(node, &influx, &spool);
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

/// A tmpfs of `size` mounted for one test (the tests run as root), unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(tag: &str, size: &str) -> SmallDisk {
        let dir = std::env::temp_dir().join(format!("heapster-small-disk-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&dir).output();
        let out = out.expect("run mount");
        assert!(out.status.success(), "mount a tmpfs (the tests need root): {}", String::from_utf8_lossy(&out.stderr));
        SmallDisk(dir)
    }

    /// Writes a file until the filesystem is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0x5a_u8; 4096];
        loop {
            match f.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_full_spool_disk_does_not_stop_delivery_to_a_healthy_influxdb() {
    let influx = Influxd::start();
    let node = "spool-full-disk";
    let disk = SmallDisk::mount("full", "2m");
    let spool = disk.0.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let filler = disk.fill();
    let args = spooled_args(node, &influx, &spool);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let h = Heapster::start(&args);

    // Six rounds with no byte free on the spool's disk: every one of them reaches InfluxDB, from memory.
    wait("six rounds in the model API", Duration::from_secs(60), || {
        h.get(&format!("/api/v1/model/nodes/{node}/metrics/uptime")).0 == 200
            && model_points(&h, node, "uptime").len() >= 6
    });
    let model = model_points(&h, node, "uptime");
    wait("every round in InfluxDB", Duration::from_secs(60), || {
        let s = stored(&influx, node);
        model.keys().all(|t| s.contains_key(t))
    });
    let exported = self_metric(&h, "heapster_sink_batches_exported_total");
    let unspooled = self_metric(&h, "heapster_sink_batches_unspooled_total");
    assert!(exported >= model.len() as u64, "{exported} batches exported for {} rounds", model.len());
    assert!(unspooled >= exported, "{unspooled} batches sent from memory only, {exported} exported: all should be");
    assert_eq!(self_metric(&h, "heapster_sink_batches_dropped_total"), 0, "nothing was lost");

    // Room again: the spool takes the next batches (they are no longer sent from memory only).
    std::fs::remove_file(&filler).unwrap();
    wait("two batches spooled again", Duration::from_secs(60), || {
        let unspooled = self_metric(&h, "heapster_sink_batches_unspooled_total");
        self_metric(&h, "heapster_sink_batches_exported_total") >= unspooled + 2
    });
    assert!(!segment_files(&spool).is_empty(), "the spool writes again");
    assert_eq!(self_metric(&h, "heapster_sink_batches_dropped_total"), 0);
}
