//! heapster's own bill against the kernel's: the real binary scrapes a simulated cluster of 100 nodes × 10 pods
//! every 3 s and writes to a real InfluxDB, until it has used 20 s of CPU (or 40 s have passed: the test's
//! machine may be slow or shared). Over that interval the sum of `heapster_cpu_seconds_total` must agree with
//! utime + stime in `/proc/<pid>/stat` within 10 %, every named stage must have counted CPU, and `/api/v1/cost`
//! must say the same split, per round and per node. The split is printed, for the README.

mod common;

use common::Heapster;
use heapster_testkit::influxd::Influxd;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const NODES: usize = 100;

/// utime + stime of process `pid`, in seconds (clock ticks of 1/100 s on Linux).
fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command may hold spaces: fields are counted after its closing parenthesis (state is field 3).
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// `heapster_cpu_seconds_total` by stage, from a `/metrics` page.
fn cpu_by_stage(h: &Heapster) -> BTreeMap<String, f64> {
    let (status, text) = h.get("/metrics");
    assert_eq!(status, 200);
    text.lines()
        .filter_map(|l| l.strip_prefix("heapster_cpu_seconds_total{stage=\""))
        .map(|l| {
            let (stage, value) = l.split_once("\"} ").unwrap();
            (stage.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn gauge(h: &Heapster, name: &str) -> Option<f64> {
    let (_, text) = h.get("/metrics");
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heapsters_own_bill_agrees_with_proc_stat() {
    use heapster_sim::{SimConfig, Simulation};
    let sim = Simulation::start(SimConfig { nodes: NODES, pods_per_node: 10, ..Default::default() }).await.unwrap();
    let source = format!(
        "--source=kubernetes.summary_api:http://{}?inClusterConfig=false&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
        sim.api_server,
        sim.nodes[0].addr.port()
    );
    // The simulation serves from this runtime's workers; heapster, InfluxDB and the blocking reads run beside it.
    tokio::task::spawn_blocking(move || {
        let influx = Influxd::start();
        let sink = format!("--sink=influxdb:{}?db=k8s", influx.url());
        let h = Heapster::start(&["--metric_resolution=3s", &source, &sink]);
        let pid = h.child.id();
        let until = Instant::now() + Duration::from_secs(60);
        // Two rounds in, with most nodes: on a loaded machine a few scrapes may miss their deadline.
        while gauge(&h, "heapster_batches_total").unwrap_or(0.0) < 2.0
            || gauge(&h, "heapster_round_nodes_scraped").unwrap_or(0.0) < NODES as f64 / 2.0
        {
            assert!(Instant::now() < until, "heapster never scraped half of the {NODES} nodes in a round");
            std::thread::sleep(Duration::from_millis(500));
        }

        let (proc0, bill0) = (proc_cpu_seconds(pid), cpu_by_stage(&h));
        let started = Instant::now();
        let mut proc1 = proc0;
        while proc1 - proc0 < 20.0 && started.elapsed() < Duration::from_secs(40) {
            std::thread::sleep(Duration::from_secs(1));
            // Some API work to bill: the dashboard's overview, as an open page would ask.
            h.json("/api/v1/dashboard/overview");
            proc1 = proc_cpu_seconds(pid);
        }
        let bill1 = cpu_by_stage(&h);
        proc1 = proc_cpu_seconds(pid);
        let kernel = proc1 - proc0;
        let split: BTreeMap<&str, f64> =
            bill1.iter().map(|(s, v)| (s.as_str(), v - bill0.get(s).unwrap_or(&0.0))).collect();
        let billed: f64 = split.values().sum();
        eprintln!("{:.1} s: kernel {kernel:.2} s CPU, bill {billed:.2} s", started.elapsed().as_secs_f64());
        for (stage, s) in &split {
            eprintln!("  {stage:<40} {s:8.3} s  {:5.1} %", 100.0 * s / billed);
        }
        assert!(
            kernel >= 2.0,
            "heapster used only {kernel} s of CPU in {:?}: too little to compare",
            started.elapsed()
        );
        // Ten percent, and two ticks of /proc's clock at each end.
        assert!(
            (billed - kernel).abs() <= 0.1 * kernel + 0.04,
            "the bill says {billed:.3} s, /proc/{pid}/stat {kernel:.3} s: {split:?}"
        );
        // The sink's stage is named by the sink's own name (its URL as the sink spells it).
        let sink_stage = split.keys().find(|s| s.starts_with("sink:influxdb:")).expect("the sink's stage").to_string();
        let named = ["scrape", "decode", "processors", "store", "api"];
        for stage in named.iter().copied().chain([sink_stage.as_str()]) {
            assert!(split.get(stage).is_some_and(|s| *s > 0.0), "stage {stage} counted no CPU: {split:?}");
        }
        assert_eq!(split.len(), named.len() + 2, "the named stages, the sink's and other: {split:?}");

        // The same split per round and per node at /api/v1/cost.
        let cost = h.json("/api/v1/cost?rounds=5");
        assert_eq!(cost["rounds"], 5, "{cost}");
        assert_eq!(cost["nodes"].as_f64(), gauge(&h, "heapster_round_nodes_scraped"), "{cost}");
        let nodes = cost["nodesMean"].as_f64().unwrap();
        assert!(nodes > 0.0 && nodes <= NODES as f64, "{cost}");
        let stages = cost["stages"].as_array().unwrap();
        let total = cost["cpuSeconds"].as_f64().unwrap();
        let sum: f64 = stages.iter().map(|s| s["cpuSeconds"].as_f64().unwrap()).sum();
        assert!((sum - total).abs() < 1e-6, "stages sum to {sum}, total {total}: {cost}");
        assert_eq!(stages.last().unwrap()["stage"], "other");
        for s in stages {
            let per_round = s["cpuMsPerRound"].as_f64().unwrap();
            let per_node = s["cpuMsPerNodePerRound"].as_f64().unwrap();
            assert!((per_round / nodes - per_node).abs() < 1e-9 * per_round.max(1.0), "{s}");
            assert!((s["cpuSeconds"].as_f64().unwrap() * 1e3 / 5.0 - per_round).abs() < 1e-6, "{s}");
        }
        let decode = stages.iter().find(|s| s["stage"] == "decode").unwrap();
        assert!(decode["cpuMsPerNodePerRound"].as_f64().unwrap() > 0.0, "{cost}");
        let store = &cost["store"];
        assert!(store["series"].as_u64().unwrap() > NODES as u64 * 10, "{store}");
        assert!(store["bytesPerSeries"].as_f64().unwrap() > 0.0 && store["bytesPerNode"].as_f64().unwrap() > 0.0);
        eprintln!("/api/v1/cost?rounds=5: {cost:#}");
        // The sink's rate since start: on a loaded machine InfluxDB may not have taken a batch in the last five.
        let all = h.json("/api/v1/cost?rounds=all");
        assert_eq!(all["sinceStart"], true);
        let sinks = all["sinks"].as_array().unwrap();
        assert_eq!(sinks.len(), 1, "{all}");
        assert_eq!(sinks[0]["sink"].as_str(), sink_stage.strip_prefix("sink:"));
        assert!(sinks[0]["pointsPerSecond"].as_f64().unwrap() > 0.0, "{all}");
        assert_eq!(sinks[0]["spooled"], false);
    })
    .await
    .unwrap();
    drop(sim);
}
