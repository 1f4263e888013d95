//! `heapster eventer` against the simulator's API server: CPU per 1,000 event versions and versions per second
//! from the API server into the sinks, on the watch path (events made while the eventer runs).
//!
//! `cargo build --release && cargo bench -p heapster --bench eventer` with `EVENTS` (default 50,000: half
//! created, a quarter updated, a quarter created again). Sinks: a log file, the Cloud Logging fake (which checks
//! every entry against the API's schema, in this process), and a real InfluxDB when `influxd` is installed. The simulator runs in this process; the eventer is the release binary, measured from /proc.

use heapster_sim::events::sample_event;
use heapster_sim::{SimConfig, Simulation};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields[11..13].iter().filter_map(|v| v.parse::<f64>().ok()).sum();
    ticks / 100.0
}

/// The lowest cursor over the sinks, once every sink has one.
fn cursor(port: u16, sinks: usize) -> Option<u64> {
    let (status, text) = heapster_testkit::http("GET", &format!("http://127.0.0.1:{port}/metrics"), None);
    let rvs: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("heapster_eventer_resource_version{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok().map(|v| v as u64))
        .collect();
    (status == 200 && rvs.len() == sinks).then(|| rvs.into_iter().min().unwrap_or(0))
}

fn main() {
    let n: u64 = std::env::var("EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let binary = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/heapster");
    assert!(binary.exists(), "build the release binary first: cargo build --release");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let sim = rt.block_on(Simulation::start(SimConfig { nodes: 1, pods_per_node: 1, ..Default::default() })).unwrap();
    let events = sim.events().clone();
    let dir = std::env::temp_dir().join(format!("heapster-eventer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let influx = heapster_testkit::Influxd::installed().then(heapster_testkit::Influxd::start);
    let google = heapster_testkit::google::GoogleFake::start_blocking();
    let key = google.write_service_account_key(&dir, "bench-project");
    let mut sinks = vec![
        format!("--sink=log?file={}", dir.join("events.jsonl").display()),
        format!("--sink=gcl?cluster_name=bench&cluster_location=local&endpoint={}", google.url()),
    ];
    if let Some(i) = &influx {
        sinks.push(format!("--sink=influxdb:{}?db=events", i.url()));
    }
    let port = heapster_testkit::free_port();
    let mut child = Command::new(&binary)
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .arg("eventer")
        .arg(format!("--source=kubernetes:http://{}?inClusterConfig=false", sim.api_server))
        .args(&sinks)
        .args(["--frequency=5s", "--leader_elect=false", "--healthz-ip=127.0.0.1"])
        .arg(format!("--healthz-port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    heapster_testkit::wait("the eventer's cursors", Duration::from_secs(30), || cursor(port, sinks.len()).is_some());

    let cpu_before = cpu_seconds(child.id());
    let started = Instant::now();
    let half = n / 2;
    let mut names = Vec::new();
    for i in 0..half {
        let e = events.create(sample_event(i)).unwrap();
        names.push((e.metadata.namespace.clone(), e.metadata.name.clone()));
    }
    for (ns, name) in names.iter().take((n / 4) as usize) {
        events.bump(ns, name).unwrap();
    }
    for i in half..half + n / 4 {
        events.create(sample_event(i)).unwrap();
    }
    let made = started.elapsed();
    let target = events.revision();
    heapster_testkit::wait("the sinks to catch up", Duration::from_secs(600), || {
        cursor(port, sinks.len()).is_some_and(|rv| rv >= target)
    });
    let took = started.elapsed();
    let cpu = cpu_seconds(child.id()) - cpu_before;
    let _ = child.kill();
    let _ = child.wait();
    let versions = n as f64;
    println!(
        "eventer, {n} event versions to {} sink(s) ({}): {:.1} CPU-ms per 1,000 versions; {:.0} versions/s from \
         the first change to every sink holding the last (the simulator made them in {:.2} s; pushes every 5 s or \
         every 10,000 versions)",
        sinks.len(),
        if influx.is_some() { "log file, Cloud Logging fake, InfluxDB" } else { "log file, Cloud Logging fake" },
        cpu * 1000.0 / (versions / 1000.0),
        versions / took.as_secs_f64(),
        made.as_secs_f64(),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
