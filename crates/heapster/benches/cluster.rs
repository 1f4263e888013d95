//! heapster against a simulated cluster: CPU and memory per node, scrape completeness, round time, and what the
//! simulator itself costs.
//!
//! `cargo bench -p heapster --bench cluster` with `NODES` (default 1000), `PODS` (30), `RESOLUTION_S` (15), `ROUNDS`
//! (8) and `WINDOW_ROUNDS` (60: the store keeps this many rounds, as 15 minutes at 15 s does). The store is filled
//! first (WINDOW_ROUNDS rounds), then ROUNDS more are measured. heapster is the release binary, measured from /proc.
//! The simulator runs in this process (and in helper processes beyond its open-file limit, see below), on two threads
//! each, and its CPU is theirs (the bench's own work, a /metrics read per round, is small beside it): reported apart,
//! since on one machine the two share the cores. The figures are printed and written as JSON to `BENCH_JSON` (default
//! `<target>/bench/cluster-<nodes>.json`), so that runs can be compared. Runs on machines of different speeds compare
//! through the calibration: the decode of the simulator's Summary, timed before heapster starts and after it stops
//! (`common::calibrate`), by which heapster's CPU is scaled to the reference machine's.
//!
//! The bench raises its open-file limit to four per node (it may raise the hard limit only with CAP_SYS_RESOURCE);
//! short of that, heapster gets a limit under which the connections it keeps fit beside the simulator's listeners,
//! and the rest of the kubelets reconnect each round. `HEAPSTER_NOFILE` sets heapster's limit instead (2048: no
//! kept connections). When the simulator's kubelets (a listener and a connection each) do not fit in one process's
//! limit at all, helper processes (this bench again, told by `CLUSTER_BENCH_KUBELETS`) serve the rest, each within a
//! limit of its own, and heapster keeps what its own limit allows; the simulator's CPU is then theirs too.

mod common;

use common::{
    REFERENCE_DECODE_US, calibrate, env, metric, metric_sum, metrics_page, raise_open_files, start_heapster_limited,
    target_dir, usage,
};
use heapster_sim::kubelet::Template;
use heapster_sim::{SimConfig, Simulation};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

/// Set in a helper process: the kubelets it serves (`FIRST..END`), with [`HELPER_SIM`].
const HELPER_KUBELETS: &str = "CLUSTER_BENCH_KUBELETS";
/// The simulation a helper joins: `<kubelet port>,<epoch in ms>`.
const HELPER_SIM: &str = "CLUSTER_BENCH_SIM";

/// A helper process's whole work: serve `kubelets` of the simulation `sim` ([`HELPER_SIM`]) until the bench closes
/// its standard input (or dies).
async fn serve_kubelets(kubelets: &str, sim: &str) {
    let range = |s: &str| -> Option<(usize, usize)> {
        let (a, b) = s.split_once("..")?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let (first, end) = range(kubelets).expect("CLUSTER_BENCH_KUBELETS=FIRST..END");
    let (port, epoch) = sim.split_once(',').expect("CLUSTER_BENCH_SIM=PORT,EPOCH_MS");
    let epoch = chrono::DateTime::from_timestamp_millis(epoch.parse().expect("epoch ms")).expect("epoch");
    raise_open_files(2 * (end - first) as u64 + 1024);
    let config = sim_config(env("NODES", 1000) as usize, env("PODS", 30) as usize, first..end);
    let config = SimConfig { kubelet_port: port.parse().expect("kubelet port"), ..config };
    let _sim = Simulation::start_with(config, Template::builtin(), epoch).await.expect("helper simulator");
    println!("ready");
    let _ = tokio::task::spawn_blocking(|| std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())).await;
}

/// The simulation the bench and its helpers serve together, each the `kubelets` of its share.
fn sim_config(nodes: usize, pods: usize, kubelets: std::ops::Range<usize>) -> SimConfig {
    SimConfig { nodes, pods_per_node: pods, kubelets: Some(kubelets), ..Default::default() }
}

/// Cumulative counts of `heapster_round_duration_seconds`' buckets: (upper bound, rounds at or under it).
fn round_buckets(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("heapster_round_duration_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, rest) = l.split_once('"')?;
            Some((le.to_string(), rest.split_whitespace().last()?.parse().ok()?))
        })
        .collect()
}

/// Upper bound of the bucket holding the 99th percentile of the rounds that ended between `before` and `after`
/// (two readings of the histogram), so that start-up rounds do not count.
fn round_p99(before: &str, after: &str) -> Option<String> {
    let before = round_buckets(before);
    let buckets: Vec<(String, f64)> = round_buckets(after)
        .into_iter()
        .map(|(le, n)| {
            let was = before.iter().find(|(l, _)| *l == le).map_or(0.0, |(_, n)| *n);
            (le, n - was)
        })
        .collect();
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets.into_iter().find(|(_, n)| *n >= 0.99 * total).map(|(le, _)| le)
}

/// The 1, 5 and 15 minute load averages: the machine is shared, and a loaded one slows both sides.
fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [it.next().unwrap_or(0.0), it.next().unwrap_or(0.0), it.next().unwrap_or(0.0)]
}

/// The machine's CPU time so far, all of it and the part the hypervisor gave to other guests (steal), in clock
/// ticks, from /proc/stat: on a shared VM a measured stretch can run slower from neighbours' load alone.
fn cpu_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|l| l.split_whitespace().filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal (guest time is counted in user already).
    (fields.iter().take(8).sum(), fields.get(7).copied().unwrap_or(0))
}

/// The sets a complete batch holds: per node the node, its system containers (the template's two), its pods and
/// their containers; once per cluster the cluster and each namespace.
fn expected_sets(sim: &Simulation) -> f64 {
    let now = chrono::Utc::now();
    let mut namespaces = std::collections::BTreeSet::new();
    let per_nodes: usize = sim
        .nodes
        .iter()
        .map(|n| {
            let pods = n.spec.pods(&sim.template, now);
            namespaces.extend(pods.iter().map(|p| p.namespace.clone()));
            1 + 2 + pods.len() + pods.iter().map(|p| p.containers.len()).sum::<usize>()
        })
        .sum();
    (per_nodes + 1 + namespaces.len()) as f64
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let (Ok(kubelets), Ok(sim)) = (std::env::var(HELPER_KUBELETS), std::env::var(HELPER_SIM)) {
        return serve_kubelets(&kubelets, &sim).await;
    }
    heapster_sources::ensure_crypto_provider();
    let nodes = env("NODES", 1000) as usize;
    let pods = env("PODS", 30) as usize;
    let resolution = env("RESOLUTION_S", 15);
    let rounds = env("ROUNDS", 8);
    let window_rounds = env("WINDOW_ROUNDS", 60);
    let json_path = std::env::var("BENCH_JSON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| target_dir().join(format!("bench/cluster-{nodes}.json")));
    let started = Instant::now();
    let calibration0 = calibrate();
    // The simulator holds a listener and a connection per node; heapster keeps a connection per node within what its
    // server's share leaves of its limit, less 1,024. Where this process cannot get that many descriptors (the hard
    // limit is raised only with CAP_SYS_RESOURCE), heapster gets a lower limit so that the connections it keeps fit in
    // the simulator's: the kubelets beyond its budget reconnect each round, as they would in a cluster.
    let want = 4 * nodes as u64 + 8192;
    let have = raise_open_files(want);
    // Kubelets one process can serve: a listener and a connection each, and room for the rest. Under a limit that
    // small (below 10,240) helpers are not started, since they would be many: one process serves every kubelet.
    let per_process = (have.saturating_sub(2048) / 2) as usize;
    let one_process = per_process < 4096 && nodes > per_process;
    let local = if one_process { nodes } else { nodes.min(per_process) };
    // Every process serving kubelets has room for a connection to each of them, and heapster keeps what its own
    // limit allows; but one process short of room gives half of what its listeners leave to kept connections and
    // keeps the other half for the connections of the kubelets beyond the budget, the bench's own and the API
    // server's.
    let room = have.saturating_sub(nodes as u64) / 2;
    let kept_fits = |nofile: &u64| heapster_sources::kubelet::kept_connection_budget(*nofile) as u64 <= room;
    let heapster_nofile = one_process.then(|| (1024..=have).rev().find(kept_fits).unwrap_or(have.min(1024)));
    // HEAPSTER_NOFILE sets it instead (2048: no kept connections), to compare.
    let heapster_nofile = std::env::var("HEAPSTER_NOFILE").ok().and_then(|v| v.parse().ok()).or(heapster_nofile);
    // In whole milliseconds, as the helpers are told it.
    let epoch = chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).expect("now");
    let sim = Simulation::start_with(sim_config(nodes, pods, 0..local), Template::builtin(), epoch)
        .await
        .expect("simulator (raise ulimit -n: a listener and a connection per node)");
    let mut helpers = Vec::new();
    for first in (local..nodes).step_by(per_process.max(1)) {
        let end = (first + per_process).min(nodes);
        let mut helper = tokio::process::Command::new(std::env::current_exe().expect("the bench's own path"))
            .env(HELPER_KUBELETS, format!("{first}..{end}"))
            .env(HELPER_SIM, format!("{},{}", sim.nodes[0].addr.port(), epoch.timestamp_millis()))
            .env("NODES", nodes.to_string())
            .env("PODS", pods.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("a helper simulator process");
        let mut line = String::new();
        let mut stdout = tokio::io::BufReader::new(helper.stdout.take().expect("piped"));
        let _ = stdout.read_line(&mut line).await;
        assert_eq!(line.trim(), "ready", "the helper simulator for kubelets {first}..{end} did not start");
        // Whatever else it prints is read and dropped, so that it never writes into a closed pipe.
        tokio::spawn(async move { tokio::io::copy(&mut stdout, &mut tokio::io::sink()).await });
        helpers.push(helper);
    }
    // The simulator's CPU: this process's and its helpers'.
    let sim_cpu = || {
        let helper_cpu: f64 = helpers.iter().filter_map(|h| h.id()).map(|pid| usage(pid).0).sum();
        usage(std::process::id()).0 + helper_cpu
    };
    let expected = expected_sets(&sim);
    let (mut child, port) = start_heapster_limited(&sim, resolution, window_rounds, &[], heapster_nofile);
    let pid = child.id();
    let metrics = || metrics_page(port);
    println!(
        "cluster bench: {nodes} nodes x {pods} pods, resolution {resolution}s, store window {window_rounds} rounds"
    );
    let kept = heapster_sources::kubelet::kept_connection_budget(heapster_nofile.unwrap_or(have)).min(nodes);
    println!("  kubelet connections kept by heapster: {kept} of {nodes} (the rest reconnect each round)");
    if !helpers.is_empty() {
        println!(
            "  simulator: kubelets 0..{local} here, the other {} in {} helper processes",
            nodes - local,
            helpers.len()
        );
    }
    let fill_until = Instant::now() + Duration::from_secs(resolution * window_rounds + 2);
    while Instant::now() < fill_until {
        tokio::time::sleep(Duration::from_secs(resolution)).await;
    }
    let (cpu0, _, _) = usage(pid);
    let sim_cpu0 = sim_cpu();
    let load0 = load_average();
    let ticks0 = cpu_ticks();
    let text0 = metrics().await.unwrap_or_default();
    let batches0 = metric(&text0, "heapster_batches_total").unwrap_or(0.0);
    let errors0 = metric_sum(&text0, "heapster_kubelet_scrape_errors") + metric_sum(&text0, "heapster_scrape_errors");
    let t0 = Instant::now();
    // The newest batch's sets once a round, half a round after it was started: the completeness of each round.
    let mut sets_seen = Vec::new();
    for round in 1..=rounds {
        tokio::time::sleep_until((t0 + Duration::from_secs(resolution * round)).into()).await;
        if let Some(sets) = metrics().await.and_then(|t| metric(&t, "heapster_batch_sets")) {
            sets_seen.push(sets);
        }
    }
    let (cpu1, rss, peak) = usage(pid);
    let sim_cpu1 = sim_cpu();
    let load1 = load_average();
    let ticks1 = cpu_ticks();
    let steal = 100.0 * (ticks1.1 - ticks0.1) as f64 / (ticks1.0 - ticks0.0).max(1) as f64;
    let text = metrics().await.unwrap_or_default();
    let batches = metric(&text, "heapster_batches_total").unwrap_or(0.0) - batches0;
    let errors =
        metric_sum(&text, "heapster_kubelet_scrape_errors") + metric_sum(&text, "heapster_scrape_errors") - errors0;
    let wall = t0.elapsed().as_secs_f64();
    let periods = wall / resolution as f64;
    let per_node = |v: f64| v / nodes as f64;
    let mib = |b: u64| b as f64 / 1048576.0;
    let mcpu = (cpu1 - cpu0) / wall * 1000.0;
    let cpu_ms_per_node_round = per_node((cpu1 - cpu0) * 1000.0) / periods;
    let sim_mcpu = (sim_cpu1 - sim_cpu0) / wall * 1000.0;
    let sim_cpu_ms_per_node_round = per_node((sim_cpu1 - sim_cpu0) * 1000.0) / periods;
    let min_sets = sets_seen.iter().copied().fold(f64::INFINITY, f64::min);
    let complete = sets_seen.iter().filter(|&&s| s >= expected).count();
    let completeness = if sets_seen.is_empty() { 0.0 } else { 100.0 * min_sets / expected };
    let series = metric(&text, "heapster_store_series").unwrap_or(0.0);
    let store_bytes = metric(&text, "heapster_store_bytes").unwrap_or(0.0);
    let round_sum = metric(&text, "heapster_round_duration_seconds_sum").unwrap_or(0.0)
        - metric(&text0, "heapster_round_duration_seconds_sum").unwrap_or(0.0);
    let round_mean = round_sum / batches.max(1.0);
    let p99 = round_p99(&text0, &text);
    // heapster's own account of its CPU by pipeline stage (`heapster_cpu_seconds_total{stage}`), per node and round.
    let stages: Vec<(&str, f64)> = heapster_cost::FIXED
        .into_iter()
        .chain([heapster_cost::OTHER])
        .map(|stage| {
            let name = format!("heapster_cpu_seconds_total{{stage=\"{stage}\"}}");
            let spent = metric(&text, &name).unwrap_or(0.0) - metric(&text0, &name).unwrap_or(0.0);
            (stage, per_node(spent * 1000.0) / periods)
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let sim_processes = 1 + helpers.len();
    let helpers_alive = helpers.iter_mut().all(|h| h.try_wait().is_ok_and(|exited| exited.is_none()));
    assert!(helpers_alive, "a helper simulator process died during the run: the simulator's CPU is incomplete");
    drop(helpers);
    // Again with heapster stopped: a machine whose speed changed during the run shows as two different figures.
    let calibration1 = calibrate();
    let calibration = (calibration0 + calibration1) / 2.0;
    let at_reference = cpu_ms_per_node_round * REFERENCE_DECODE_US / calibration;

    println!("  rounds measured: {batches}, wall {wall:.0}s (started {:.0}s before)", (t0 - started).as_secs_f64());
    println!(
        "  heapster CPU: {mcpu:.1} mCPU in all, {:.4} mCPU per node, {cpu_ms_per_node_round:.3} CPU-ms per node per round",
        per_node(mcpu)
    );
    println!("  RSS: {:.1} MiB in all, {:.3} MiB per node (store window full)", mib(rss), per_node(mib(rss)));
    println!("  peak RSS: {:.1} MiB in all, {:.3} MiB per node (since start)", mib(peak), per_node(mib(peak)));
    println!(
        "  completeness: newest batch sampled each round, fewest {min_sets} sets of {expected} expected ({completeness:.2} %), \
         {complete} of {} samples complete; {errors} scrape errors",
        sets_seen.len()
    );
    println!(
        "  store: {series} series, {:.0} bytes per series, {:.3} MiB per node counted by the store",
        store_bytes / series.max(1.0),
        per_node(store_bytes / 1048576.0)
    );
    match &p99 {
        Some(p99) => println!("  round time: p99 <= {p99}s (histogram bucket bound), mean {round_mean:.2}s"),
        None => println!("  round time: no rounds recorded"),
    }
    let by_stage: Vec<String> = stages.iter().map(|(stage, ms)| format!("{stage} {ms:.3}")).collect();
    println!("  heapster CPU by stage (CPU-ms per node per round): {}", by_stage.join(", "));
    println!(
        "  simulator ({}) CPU: {sim_mcpu:.1} mCPU in all, {sim_cpu_ms_per_node_round:.3} CPU-ms per node per round",
        match sim_processes - 1 {
            0 => "this process".to_owned(),
            n => format!("this process and {n} helpers"),
        }
    );
    println!("  load average: {load0:?} at the start, {load1:?} at the end; steal {steal:.1} % of the CPU time");
    println!(
        "  calibration: the fixture Summary decodes in {calibration0:.1} us at the start, {calibration1:.1} us at the end \
         ({REFERENCE_DECODE_US:.1} us on the reference machine): heapster's {cpu_ms_per_node_round:.3} CPU-ms per node per \
         round scale to {at_reference:.3} there (an estimate: not every stage scales like decoding)"
    );

    let report = serde_json::json!({
        "bench": "cluster",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "nodes": nodes,
        "pods_per_node": pods,
        "kept_connections": kept,
        "resolution_s": resolution,
        "window_rounds": window_rounds,
        "rounds_measured": batches,
        "wall_s": wall,
        "cpu_ms_per_node_per_round": cpu_ms_per_node_round,
        "cpu_ms_per_node_per_round_by_stage": stages.iter().copied().collect::<std::collections::BTreeMap<_, _>>(),
        "mcpu_per_node": per_node(mcpu),
        "mcpu": mcpu,
        "rss_mib_per_node": per_node(mib(rss)),
        "peak_rss_mib_per_node": per_node(mib(peak)),
        "rss_mib": mib(rss),
        "peak_rss_mib": mib(peak),
        "store_series": series,
        "store_bytes_per_series": store_bytes / series.max(1.0),
        "store_mib_per_node": per_node(store_bytes / 1048576.0),
        "expected_sets": expected,
        "fewest_sets": if sets_seen.is_empty() { None } else { Some(min_sets) },
        "completeness_percent": completeness,
        "complete_rounds": complete,
        "sampled_rounds": sets_seen.len(),
        "scrape_errors": errors,
        "round_p99_le_s": p99.as_ref().and_then(|p| p.parse::<f64>().ok()),
        "round_mean_s": round_mean,
        "simulator_cpu_ms_per_node_per_round": sim_cpu_ms_per_node_round,
        "simulator_mcpu": sim_mcpu,
        "simulator_processes": sim_processes,
        "load_average_start": load0,
        "load_average_end": load1,
        "steal_percent": steal,
        "calibration_decode_us": [calibration0, calibration1],
        "reference_decode_us": REFERENCE_DECODE_US,
        "cpu_ms_per_node_per_round_at_reference": at_reference,
    });
    if let Some(dir) = json_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&json_path, format!("{report:#}\n")) {
        Ok(()) => println!("  figures written to {}", json_path.display()),
        Err(e) => eprintln!("could not write {}: {e}; set BENCH_JSON to a writable path", json_path.display()),
    }
}
