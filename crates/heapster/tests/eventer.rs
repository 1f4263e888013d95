//! `heapster eventer` against the simulator's API server: 10,000 event changes (created, updated, deleted) while
//! the eventer is SIGKILLed twice, its watch is cut and the API server compacts its history; afterwards every
//! sink (a log file, a real InfluxDB) holds every event version exactly once. And two replicas: only the Lease
//! holder ships, and the other takes over from where it stopped.
//!
//! Prints the eventer's CPU per 1,000 event versions and the versions per second through the pipeline.

use heapster_model::events::Event;
use heapster_sim::events::{EventStore, WatchKind, sample_event};
use heapster_sim::{SimConfig, Simulation};
use heapster_testkit::Influxd;
use heapster_testkit::google::GoogleFake;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One eventer process and what it costs.
struct Eventer {
    child: Child,
    port: u16,
}

impl Eventer {
    fn start(args: &[String]) -> Eventer {
        Self::start_with_env(args, &[])
    }

    fn start_with_env(args: &[String], env: &[(&str, &Path)]) -> Eventer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_heapster"))
            .envs(env.iter().copied())
            .env_remove("GCE_METADATA_HOST")
            .arg("eventer")
            .args(["--healthz-ip=127.0.0.1".to_owned(), format!("--healthz-port={port}")])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("start heapster eventer");
        Eventer { child, port }
    }

    /// The samples of one self-metric, by their label text.
    fn metric(&self, name: &str) -> BTreeMap<String, f64> {
        let (status, text) = heapster_testkit::http("GET", &format!("http://127.0.0.1:{}/metrics", self.port), None);
        if status != 200 {
            return BTreeMap::new();
        }
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k[name.len()..].to_owned(), v.parse().ok()?))
            })
            .collect()
    }

    /// CPU seconds the process used so far (utime + stime).
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        let ticks: f64 =
            fields.get(11..13).map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()).unwrap_or(0.0);
        ticks / 100.0
    }

    /// Waits until every one of `sinks` sinks holds everything through `rv`.
    fn wait_caught_up(&self, sinks: usize, rv: u64, limit: Duration) {
        let until = Instant::now() + limit;
        loop {
            let cursors = self.metric("heapster_eventer_resource_version");
            if cursors.len() == sinks && cursors.values().all(|v| *v as u64 >= rv) {
                return;
            }
            assert!(Instant::now() < until, "sinks not at resource version {rv} within {limit:?}: {cursors:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn kill(mut self) -> f64 {
        let cpu = self.cpu_seconds();
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        cpu
    }

    fn terminate(mut self) -> f64 {
        let cpu = self.cpu_seconds();
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                assert!(exit.success(), "eventer exited with {exit}");
                return cpu;
            }
            assert!(Instant::now() < until, "eventer did not exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Eventer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every event version the API server made (created or updated, not deleted), as (uid, resourceVersion).
fn versions_made(events: &EventStore) -> BTreeMap<(String, u64), usize> {
    events
        .history()
        .into_iter()
        .filter(|c| !matches!(c.kind, WatchKind::Deleted))
        .map(|c| ((c.event.metadata.uid.clone(), c.revision), 1))
        .collect()
}

/// How many times each (uid, resourceVersion) occurs among `events`.
fn count<'a>(events: impl Iterator<Item = &'a Event>) -> BTreeMap<(String, u64), usize> {
    let mut out = BTreeMap::new();
    for e in events {
        *out.entry((e.metadata.uid.clone(), e.resource_version().unwrap())).or_insert(0) += 1;
    }
    out
}

fn log_file_versions(path: &Path) -> BTreeMap<(String, u64), usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let events: Vec<Event> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("log file line is not JSON ({e}): {l}"));
            serde_json::from_value(v["event"].clone()).unwrap()
        })
        .collect();
    count(events.iter())
}

fn logging_versions(fake: &GoogleFake) -> BTreeMap<(String, u64), usize> {
    let events: Vec<Event> = fake
        .log_entries()
        .into_iter()
        .map(|e| serde_json::from_value(e.json_payload.expect("jsonPayload")).unwrap())
        .collect();
    count(events.iter())
}

fn influx_versions(influx: &Influxd, db: &str) -> BTreeMap<(String, u64), usize> {
    let mut events = Vec::new();
    for series in influx.query(db, r#"SELECT "value" FROM "log/events""#) {
        for row in series["values"].as_array().unwrap() {
            let e: Event = serde_json::from_str(row[1].as_str().unwrap()).unwrap();
            events.push(e);
        }
    }
    count(events.iter())
}

/// What differs between what the API server made and what a sink holds, in words.
fn compare(sink: &str, made: &BTreeMap<(String, u64), usize>, held: &BTreeMap<(String, u64), usize>) {
    let missing: Vec<_> = made.keys().filter(|k| !held.contains_key(*k)).take(5).collect();
    let extra: Vec<_> = held.keys().filter(|k| !made.contains_key(*k)).take(5).collect();
    let twice: Vec<_> = held.iter().filter(|(_, n)| **n > 1).take(5).collect();
    let n_missing = made.keys().filter(|k| !held.contains_key(*k)).count();
    let n_twice = held.values().filter(|n| **n > 1).count();
    assert!(
        missing.is_empty() && extra.is_empty() && twice.is_empty(),
        "{sink}: {} versions made, {} held; {n_missing} missing (e.g. {missing:?}), not made {extra:?}, \
         {n_twice} held more than once (e.g. {twice:?})",
        made.len(),
        held.len()
    );
}

struct Workload {
    events: Arc<EventStore>,
    next: u64,
    /// (namespace, name) of events created, in order.
    created: Vec<(String, String)>,
}

impl Workload {
    fn create(&mut self, n: usize) {
        for _ in 0..n {
            let e = self.events.create(sample_event(self.next)).unwrap();
            self.next += 1;
            self.created.push((e.metadata.namespace.clone(), e.metadata.name.clone()));
        }
    }

    fn bump(&self, range: std::ops::Range<usize>) {
        for (ns, name) in &self.created[range] {
            self.events.bump(ns, name).unwrap();
        }
    }

    fn delete(&self, range: std::ops::Range<usize>) {
        for (ns, name) in &self.created[range] {
            self.events.delete(ns, name).unwrap();
        }
    }
}

fn source(sim: &Simulation) -> String {
    format!("--source=kubernetes:http://{}?inClusterConfig=false", sim.api_server)
}

/// The simulator, served by a runtime of its own while the test drives processes from plain threads.
fn simulation() -> (tokio::runtime::Runtime, Simulation) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt.block_on(Simulation::start(SimConfig { nodes: 1, pods_per_node: 1, ..Default::default() })).unwrap();
    (rt, sim)
}

#[test]
fn every_event_version_reaches_every_sink_once_through_kills_broken_watches_and_compaction() {
    let (_rt, sim) = simulation();
    let influx = Influxd::start();
    let dir = tempdir("eventer-chaos");
    let log = dir.join("events.jsonl");
    let google = GoogleFake::start_blocking();
    let key = google.write_service_account_key(&dir, "sim-project");
    let args = vec![
        source(&sim),
        format!("--sink=log?file={}", log.display()),
        format!("--sink=influxdb:{}?db=events", influx.url()),
        format!("--sink=gcl?cluster_name=sim&cluster_location=local&endpoint={}", google.url()),
        "--frequency=5s".to_owned(),
        format!("--events_state_dir={}", dir.join("state").display()),
        "--leader_elect_lease=default/eventer".to_owned(),
        "--leader_elect_lease_duration=3s".to_owned(),
        "--leader_elect_retry_period=1s".to_owned(),
    ];
    let sinks = 3;
    let env = [("GOOGLE_APPLICATION_CREDENTIALS", key.as_path())];
    let events = sim.events().clone();
    let mut work = Workload { events: events.clone(), next: 0, created: Vec::new() };
    let limit = Duration::from_secs(60);
    let mut cpu = 0.0;

    let e = Eventer::start_with_env(&args, &env);
    // The first start ships from "now": wait until both sinks recorded where now is.
    e.wait_caught_up(sinks, events.revision(), limit);

    // Live: 2,000 created, 1,000 of them updated, 300 deleted.
    let started = Instant::now();
    let cpu_before = e.cpu_seconds();
    work.create(2000);
    work.bump(0..1000);
    work.delete(1700..2000);
    let live_versions = 3000.0;
    e.wait_caught_up(sinks, events.revision(), limit);
    let took = started.elapsed();
    let live_cpu = e.cpu_seconds() - cpu_before;

    // SIGKILL in the middle of 2,000 creations; while it is down, 500 updates and 200 deletions.
    let writer = {
        let mut w = Workload { events: events.clone(), next: work.next, created: Vec::new() };
        std::thread::spawn(move || {
            for _ in 0..20 {
                w.create(100);
                std::thread::sleep(Duration::from_millis(300));
            }
            w
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    cpu += e.kill();
    let w = writer.join().unwrap();
    work.next = w.next;
    work.created.extend(w.created);
    work.bump(1000..1500);
    work.delete(1500..1700);
    let e = Eventer::start_with_env(&args, &env);
    e.wait_caught_up(sinks, events.revision(), limit);

    // Watches cut (as a dropped connection) five times while 1,000 are created.
    for _ in 0..5 {
        work.create(200);
        events.break_watches();
        std::thread::sleep(Duration::from_millis(700));
    }
    e.wait_caught_up(sinks, events.revision(), limit);

    // SIGKILL; while down 1,500 created and 1,000 updated once each, then the history compacted away: the restart
    // finds its resource version gone (410) and lists.
    cpu += e.kill();
    work.create(1500);
    work.bump(2000..3000);
    events.compact();
    let e = Eventer::start_with_env(&args, &env);
    work.create(500);
    e.wait_caught_up(sinks, events.revision(), limit);
    let gone = e.metric("heapster_eventer_export_failures_total");
    cpu += e.terminate();

    let made = versions_made(&events);
    let changes = events.history().len();
    assert!(changes >= 10_000, "{changes} changes made");
    compare("log file", &made, &log_file_versions(&log));
    compare("influxdb", &made, &influx_versions(&influx, "events"));
    compare("Cloud Logging", &made, &logging_versions(&google));
    println!(
        "eventer: {changes} changes, {} event versions shipped to {sinks} sinks; {:.1} CPU-ms per 1,000 versions \
         over the whole run (three processes, start-ups and idle pushes included), {:.1} in the live phase; live \
         phase {:.0} versions/s end to end including the wait for the next 5 s push; retried exports {gone:?}; \
         Cloud Logging entries received {} (resends the service de-duplicated: {})",
        made.len(),
        cpu * 1000.0 / (made.len() as f64 / 1000.0),
        live_cpu * 1000.0 / (live_versions / 1000.0),
        live_versions / took.as_secs_f64(),
        google.log_entries_received(),
        google.log_duplicates(),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heapster-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether the eventer says it ships (holds the Lease).
fn leads(e: &Eventer) -> Option<bool> {
    e.metric("heapster_eventer_leader").values().next().map(|v| *v == 1.0)
}

fn shipped(e: &Eventer) -> f64 {
    e.metric("heapster_eventer_events_shipped_total").values().sum()
}

#[test]
fn of_two_replicas_only_the_lease_holder_ships_and_the_other_takes_over_where_it_stopped() {
    let (_rt, sim) = simulation();
    let influx = Influxd::start();
    let dir = tempdir("eventer-replicas");
    let args = |replica: &str| {
        vec![
            source(&sim),
            format!("--sink=influxdb:{}?db=events", influx.url()),
            "--frequency=5s".to_owned(),
            // Each replica's own disk, as each pod's emptyDir: only the Lease can hand the cursor over.
            format!("--events_state_dir={}", dir.join(replica).display()),
            "--leader_elect_lease=kube-system/heapster-eventer".to_owned(),
            "--leader_elect_lease_duration=3s".to_owned(),
            "--leader_elect_retry_period=1s".to_owned(),
        ]
    };
    let events = sim.events().clone();
    let mut work = Workload { events: events.clone(), next: 0, created: Vec::new() };
    let limit = Duration::from_secs(60);

    let a = Eventer::start(&args("a"));
    let b = Eventer::start(&args("b"));
    heapster_testkit::wait("one replica holds the Lease", limit, || {
        matches!((leads(&a), leads(&b)), (Some(true), Some(false)) | (Some(false), Some(true)))
    });
    let (leader, standby) = if leads(&a) == Some(true) { (a, b) } else { (b, a) };
    leader.wait_caught_up(1, events.revision(), limit);

    work.create(1000);
    work.bump(0..300);
    leader.wait_caught_up(1, events.revision(), limit);
    assert_eq!(shipped(&leader), 1300.0);
    assert_eq!(shipped(&standby), 0.0, "the replica without the Lease shipped events");
    let (status, body) = heapster_testkit::http("GET", &format!("http://127.0.0.1:{}/healthz", standby.port), None);
    assert_eq!((status, body.as_str()), (200, "ok"), "a waiting replica is healthy");

    // The holder dies without a word; what happens next is shipped by the other, from the holder's cursor.
    leader.kill();
    work.create(1000);
    work.bump(300..600);
    standby.wait_caught_up(1, events.revision(), limit);
    assert_eq!(leads(&standby), Some(true));
    let lease = events.lease("kube-system", "heapster-eventer").expect("the Lease exists");
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease}");
    compare("influxdb", &versions_made(&events), &influx_versions(&influx, "events"));
    standby.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The binary started as `eventer` (a symlink, as an image may ship it) is the eventer, with its flags and checks.
#[test]
fn the_binary_started_as_eventer_is_the_eventer() {
    let dir = tempdir("eventer-argv0");
    let link = dir.join("eventer");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_heapster"), &link).unwrap();
    let out = Command::new(&link).args(["--source=kubernetes", "--frequency=1s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "eventer: frequency needs to be no less than 5s, supplied 1s"
    );
    let out = Command::new(&link).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("eventer "), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
